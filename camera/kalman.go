package camera

import "time"

// boxFilter is a constant-velocity Kalman filter on a box's centre, aspect
// ratio (width/height) and height, all normalized to the frame, with their
// velocities per second: the state x = (cx, cy, a, h, vcx, vcy, va, vh).
//
// Its noise follows ByteTrack's (Zhang et al. 2022, after DeepSORT): standard
// deviations proportional to the box height, 1/20 of it for positions and
// 1/160 for velocities, per step of stepTime; the process noise grows with
// the time elapsed, so a filter fed at 10 fps or every 4th frame predicts as
// well as one fed at 30 fps.
type boxFilter struct {
	x [8]float64
	p [8][8]float64
	t time.Time // time of x
}

const (
	stepTime     = 1.0 / 30 // seconds: the frame time ByteTrack's noise weights are per
	posWeight    = 1.0 / 20
	velWeight    = 1.0 / 160
	aspectStd    = 1e-2
	aspectVelStd = 1e-5
	aspectObsStd = 1e-1
)

func measure(b Box) [4]float64 {
	h := max(b.Height(), 1e-6)
	return [4]float64{(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b.Width() / h, h}
}

func newBoxFilter(b Box, t time.Time) *boxFilter {
	z := measure(b)
	f := &boxFilter{t: t}
	copy(f.x[:4], z[:])
	h := z[3]
	std := [8]float64{2 * posWeight * h, 2 * posWeight * h, aspectStd, 2 * posWeight * h,
		10 * velWeight * h / stepTime, 10 * velWeight * h / stepTime, aspectVelStd / stepTime, 10 * velWeight * h / stepTime}
	for i, s := range std {
		f.p[i][i] = s * s
	}
	return f
}

// box is the filter's box now.
func (f *boxFilter) box() Box {
	h := max(f.x[3], 1e-6)
	w := max(f.x[2], 1e-6) * h
	return Box{f.x[0] - w/2, f.x[1] - h/2, f.x[0] + w/2, f.x[1] + h/2}
}

// predict moves the state to time t.
func (f *boxFilter) predict(t time.Time) {
	dt := t.Sub(f.t).Seconds()
	if dt <= 0 {
		return
	}
	f.t = t
	for i := 0; i < 4; i++ {
		f.x[i] += dt * f.x[i+4]
	}
	// P = F P Fᵀ with F = [[I, dt·I], [0, I]], done by rows then columns.
	for i := 0; i < 4; i++ {
		for j := 0; j < 8; j++ {
			f.p[i][j] += dt * f.p[i+4][j]
		}
	}
	for i := 0; i < 8; i++ {
		for j := 0; j < 4; j++ {
			f.p[i][j] += dt * f.p[i][j+4]
		}
	}
	h := f.x[3]
	steps := dt / stepTime
	q := [8]float64{posWeight * h, posWeight * h, aspectStd, posWeight * h,
		velWeight * h / stepTime, velWeight * h / stepTime, aspectVelStd / stepTime, velWeight * h / stepTime}
	for i, s := range q {
		f.p[i][i] += s * s * steps
	}
}

// update corrects the state, already predicted to the measurement's time, by a measured box.
func (f *boxFilter) update(b Box) {
	z := measure(b)
	h := f.x[3]
	r := [4]float64{posWeight * h, posWeight * h, aspectObsStd, posWeight * h}
	var s [4][4]float64
	for i := 0; i < 4; i++ {
		for j := 0; j < 4; j++ {
			s[i][j] = f.p[i][j]
		}
		s[i][i] += r[i] * r[i]
	}
	si, ok := invert4(s)
	if !ok {
		return
	}
	// K = P Hᵀ S⁻¹, where P Hᵀ is P's first four columns.
	var k [8][4]float64
	for i := 0; i < 8; i++ {
		for j := 0; j < 4; j++ {
			for m := 0; m < 4; m++ {
				k[i][j] += f.p[i][m] * si[m][j]
			}
		}
	}
	var y [4]float64
	for i := range y {
		y[i] = z[i] - f.x[i]
	}
	for i := 0; i < 8; i++ {
		for j := 0; j < 4; j++ {
			f.x[i] += k[i][j] * y[j]
		}
	}
	// P -= K H P, where H P is P's first four rows.
	var kp [8][8]float64
	for i := 0; i < 8; i++ {
		for j := 0; j < 8; j++ {
			for m := 0; m < 4; m++ {
				kp[i][j] += k[i][m] * f.p[m][j]
			}
		}
	}
	for i := 0; i < 8; i++ {
		for j := 0; j < 8; j++ {
			f.p[i][j] -= kp[i][j]
		}
	}
}

// invert4 inverts a 4x4 matrix by Gauss-Jordan elimination with partial pivoting.
func invert4(a [4][4]float64) ([4][4]float64, bool) {
	var inv [4][4]float64
	for i := range inv {
		inv[i][i] = 1
	}
	for c := 0; c < 4; c++ {
		piv := c
		for r := c + 1; r < 4; r++ {
			if abs(a[r][c]) > abs(a[piv][c]) {
				piv = r
			}
		}
		if abs(a[piv][c]) < 1e-300 {
			return inv, false
		}
		a[c], a[piv] = a[piv], a[c]
		inv[c], inv[piv] = inv[piv], inv[c]
		d := a[c][c]
		for j := 0; j < 4; j++ {
			a[c][j] /= d
			inv[c][j] /= d
		}
		for r := 0; r < 4; r++ {
			if r == c || a[r][c] == 0 {
				continue
			}
			m := a[r][c]
			for j := 0; j < 4; j++ {
				a[r][j] -= m * a[c][j]
				inv[r][j] -= m * inv[c][j]
			}
		}
	}
	return inv, true
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
