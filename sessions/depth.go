package sessions

import (
	"math"

	"imageapid/estimators/face"
)

// A flat picture turned in front of the camera moves as a plane: every
// point of the face it shows follows one homography of the frontal view.
// A head that turns does not: the nose swings across the cheeks and the
// near cheek widens while the far one narrows. The depth check fits the
// best homography from the frontal baseline's mesh points to each turned
// frame's, and reads how far the points stand off it (over the distance
// between the eyes); a turn whose points all stay on the plane is a
// picture's. fitting/cmd/depthcal measures it on corpus photos: planar
// warps of frontal photos against the same people photographed at other
// angles.

// depthPoints are the MediaPipe face-mesh indices compared: forehead, brow
// ends, eye corners, the nose's bridge, tip and wings, cheeks, mouth
// corners, jaw and chin, spread over the face's depth.
var depthPoints = [...]int{
	33, 133, 362, 263, 159, 145, 386, 374, 55, 285, 168, 6, 1, 4, 98, 327, 2, 61, 291, 13, 14, 0, 17,
}

// depthMinYaw is how far from the baseline (degrees) a frame must be
// turned for its depth to be read.
const depthMinYaw = 15.0

// depthMinFrames is how many turned frames the depth check needs to judge;
// with fewer it passes, saying so.
const depthMinFrames = 3

// DepthPoints returns the depth points of a 468-point mesh and the distance
// between the eye centres; ok is false for a short mesh.
func DepthPoints(mesh [][3]float64) (pts []face.Point, iod float64, ok bool) {
	if len(mesh) < 468 {
		return nil, 0, false
	}
	pts = make([]face.Point, len(depthPoints))
	for i, k := range depthPoints {
		pts[i] = face.Point{X: mesh[k][0], Y: mesh[k][1]}
	}
	return pts, eyeDistance(mesh), true
}

// PlanarResidual is the root-mean-square distance of b's points from a's
// mapped by the homography that best fits them (least squares on
// normalised points), over iod: near zero when b is a's plane seen from
// elsewhere. ok is false when the points do not determine a homography.
func PlanarResidual(a, b []face.Point, iod float64) (float64, bool) {
	if len(a) != len(b) || len(a) < 5 || !(iod > 0) {
		return 0, false
	}
	na, _ := normalise(a)
	nb, sb := normalise(b)
	// Unknowns h1..h8 of H = [h1 h2 h3; h4 h5 h6; h7 h8 1]; each pair
	// gives two linear equations. Solve the normal equations.
	var ata [8][8]float64
	var atb [8]float64
	add := func(row [8]float64, rhs float64) {
		for i := range row {
			for j := range row {
				ata[i][j] += row[i] * row[j]
			}
			atb[i] += row[i] * rhs
		}
	}
	for i := range na {
		x, y, u, v := na[i].X, na[i].Y, nb[i].X, nb[i].Y
		add([8]float64{x, y, 1, 0, 0, 0, -x * u, -y * u}, u)
		add([8]float64{0, 0, 0, x, y, 1, -x * v, -y * v}, v)
	}
	h, ok := solve8(ata, atb)
	if !ok {
		return 0, false
	}
	var sum float64
	for i := range na {
		x, y := na[i].X, na[i].Y
		w := h[6]*x + h[7]*y + 1
		if math.Abs(w) < 1e-9 {
			return 0, false
		}
		u := (h[0]*x + h[1]*y + h[2]) / w
		v := (h[3]*x + h[4]*y + h[5]) / w
		sum += (u-nb[i].X)*(u-nb[i].X) + (v-nb[i].Y)*(v-nb[i].Y)
	}
	// normalise scaled b by sb: distances in pixels are the normalised ones over sb.
	return math.Sqrt(sum/float64(len(na))) / sb / iod, true
}

// normalise moves the points' centroid to the origin and scales their mean
// distance from it to √2 (Hartley), returning the scale.
func normalise(p []face.Point) ([]face.Point, float64) {
	var cx, cy float64
	for _, q := range p {
		cx += q.X
		cy += q.Y
	}
	cx /= float64(len(p))
	cy /= float64(len(p))
	var d float64
	for _, q := range p {
		d += math.Hypot(q.X-cx, q.Y-cy)
	}
	d /= float64(len(p))
	s := 1.0
	if d > 0 {
		s = math.Sqrt2 / d
	}
	out := make([]face.Point, len(p))
	for i, q := range p {
		out[i] = face.Point{X: (q.X - cx) * s, Y: (q.Y - cy) * s}
	}
	return out, s
}

// solve8 solves a x = b by Gaussian elimination with partial pivoting.
func solve8(a [8][8]float64, b [8]float64) ([8]float64, bool) {
	for c := 0; c < 8; c++ {
		p := c
		for r := c + 1; r < 8; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		if math.Abs(a[p][c]) < 1e-12 {
			return b, false
		}
		a[c], a[p] = a[p], a[c]
		b[c], b[p] = b[p], b[c]
		for r := c + 1; r < 8; r++ {
			f := a[r][c] / a[c][c]
			for k := c; k < 8; k++ {
				a[r][k] -= f * a[c][k]
			}
			b[r] -= f * b[c]
		}
	}
	var x [8]float64
	for r := 7; r >= 0; r-- {
		s := b[r]
		for k := r + 1; k < 8; k++ {
			s -= a[r][k] * x[k]
		}
		x[r] = s / a[r][r]
	}
	return x, true
}
