// Package headfit fits the attribute and liveness heads (mask, gender, age,
// emotion, the liveness heads) on features extracted from ../shared/corpus,
// deterministically, and selects each head's features and penalty by
// held-out people or sources. The heads it writes (models/heads/*.json) are
// served by estimators/attributes; nothing the daemon runs imports this
// package.
package headfit

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"

	"imageapid/estimators/attributes"
)

// Training is deterministic: the same samples in the same order give the
// same weights, bit for bit (single goroutine, fixed iteration counts, no
// randomness beyond the seeded split).

// Heldout reports whether a corpus file belongs to the held-back split (one
// in five files, chosen by a seeded hash of its path).
func Heldout(path string, seed uint64) bool { return Fold(path, seed) == 0 }

// Fold is the cross-validation fold (0..4) of a corpus file (or person);
// fold 0 is the held-back split.
func Fold(path string, seed uint64) int {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(seed >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(path))
	return int(h.Sum64() % 5)
}

// standardizer maps features to zero mean and unit variance.
type standardizer struct{ mean, std []float64 }

func newStandardizer(X [][]float32) standardizer {
	d := len(X[0])
	s := standardizer{mean: make([]float64, d), std: make([]float64, d)}
	n := float64(len(X))
	for _, x := range X {
		for i, v := range x {
			s.mean[i] += float64(v) / n
		}
	}
	for _, x := range X {
		for i, v := range x {
			dv := float64(v) - s.mean[i]
			s.std[i] += dv * dv / n
		}
	}
	for i := range s.std {
		s.std[i] = math.Sqrt(s.std[i])
		if s.std[i] < 1e-8 {
			s.std[i] = 1
		}
	}
	return s
}

func (s standardizer) apply(X [][]float32) [][]float64 {
	out := make([][]float64, len(X))
	for r, x := range X {
		z := make([]float64, len(x))
		for i, v := range x {
			z[i] = (float64(v) - s.mean[i]) / s.std[i]
		}
		out[r] = z
	}
	return out
}

// fold turns weights on standardized features into weights on raw ones.
func (s standardizer) fold(w [][]float64, b []float64) ([][]float32, []float32) {
	W := make([][]float32, len(w))
	B := make([]float32, len(b))
	for k := range w {
		W[k] = make([]float32, len(w[k]))
		bias := b[k]
		for i, v := range w[k] {
			W[k][i] = float32(v / s.std[i])
			bias -= v * s.mean[i] / s.std[i]
		}
		B[k] = float32(bias)
	}
	return W, B
}

func (s standardizer) means() []float32 {
	out := make([]float32, len(s.mean))
	for i, v := range s.mean {
		out[i] = float32(v)
	}
	return out
}

// FitLogistic fits a binary logistic regression with an L2 penalty lambda
// (on standardized features; the intercept is not penalized) by Newton's
// method. Weights per sample may be nil (all 1).
func FitLogistic(X [][]float32, y []bool, sw []float64, lambda float64) (W [][]float32, B []float32, mean []float32, err error) {
	if len(X) == 0 || len(X) != len(y) {
		return nil, nil, nil, errors.New("logistic: no samples")
	}
	st := newStandardizer(X)
	Z := st.apply(X)
	d := len(Z[0])
	w := make([]float64, d+1) // last = intercept
	for iter := 0; iter < 30; iter++ {
		H := make([][]float64, d+1)
		for i := range H {
			H[i] = make([]float64, d+1)
		}
		g := make([]float64, d+1)
		for r, z := range Z {
			s := w[d]
			for i, v := range z {
				s += w[i] * v
			}
			p := 1 / (1 + math.Exp(-s))
			t := 0.0
			if y[r] {
				t = 1
			}
			c := 1.0
			if sw != nil {
				c = sw[r]
			}
			e := c * (p - t)
			q := c * math.Max(p*(1-p), 1e-9)
			for i, vi := range z {
				g[i] += e * vi
				qi := q * vi
				row := H[i]
				for j := 0; j <= i; j++ {
					row[j] += qi * z[j]
				}
				H[d][i] += qi
			}
			g[d] += e
			H[d][d] += q
		}
		for i := 0; i < d; i++ {
			g[i] += lambda * w[i]
			H[i][i] += lambda
		}
		for i := 0; i <= d; i++ { // mirror the lower triangle
			for j := 0; j < i; j++ {
				H[j][i] = H[i][j]
			}
		}
		step, err := choleskySolve(H, g)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("logistic: %w", err)
		}
		var norm float64
		for i := range w {
			w[i] -= step[i]
			norm += step[i] * step[i]
		}
		if norm < 1e-20 {
			break
		}
	}
	Wf, Bf := st.fold([][]float64{w[:d]}, []float64{w[d]})
	return Wf, Bf, st.means(), nil
}

// FitRidge fits y = w.x + b with an L2 penalty lambda on standardized
// features, each sample weighted by sw (nil: all 1).
func FitRidge(X [][]float32, y []float64, sw []float64, lambda float64) (W [][]float32, B []float32, mean []float32, err error) {
	if len(X) == 0 || len(X) != len(y) {
		return nil, nil, nil, errors.New("ridge: no samples")
	}
	st := newStandardizer(X)
	Z := st.apply(X)
	d := len(Z[0])
	weight := func(r int) float64 {
		if sw == nil {
			return 1
		}
		return sw[r]
	}
	// The features are centred on their weighted means (the standardizer
	// centres on plain ones), or uneven weights would bias the intercept.
	var ym, wsum float64
	zm := make([]float64, d)
	for r, v := range y {
		ym += weight(r) * v
		wsum += weight(r)
		for i, zi := range Z[r] {
			zm[i] += weight(r) * zi
		}
	}
	ym /= wsum
	for i := range zm {
		zm[i] /= wsum
	}
	A := make([][]float64, d)
	for i := range A {
		A[i] = make([]float64, d)
	}
	rhs := make([]float64, d)
	zc := make([]float64, d)
	for r, z := range Z {
		c := weight(r) * float64(len(y)) / wsum
		t := y[r] - ym
		for i, vi := range z {
			zc[i] = vi - zm[i]
		}
		for i, vi := range zc {
			rhs[i] += c * vi * t
			cv := c * vi
			row := A[i]
			for j := 0; j <= i; j++ {
				row[j] += cv * zc[j]
			}
		}
	}
	for i := 0; i < d; i++ {
		A[i][i] += lambda
		for j := 0; j < i; j++ {
			A[j][i] = A[i][j]
		}
	}
	w, err := choleskySolve(A, rhs)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("ridge: %w", err)
	}
	b := ym
	for i := range w {
		b -= w[i] * zm[i]
	}
	Wf, Bf := st.fold([][]float64{w}, []float64{b})
	return Wf, Bf, st.means(), nil
}

// FitSoftmax fits a multinomial logistic regression with an L2 penalty
// lambda by Nesterov-accelerated gradient descent (a fixed number of steps
// of size 1/L, L bounded by the largest eigenvalue of the data's Gram
// matrix found by power iteration). Sample weights may be nil.
func FitSoftmax(X [][]float32, y []int, classes int, sw []float64, lambda float64) (W [][]float32, B []float32, mean []float32, err error) {
	if len(X) == 0 || len(X) != len(y) {
		return nil, nil, nil, errors.New("softmax: no samples")
	}
	st := newStandardizer(X)
	Z := st.apply(X)
	n, d := len(Z), len(Z[0])
	var wsum float64
	weight := func(r int) float64 {
		if sw == nil {
			return 1
		}
		return sw[r]
	}
	for r := range Z {
		wsum += weight(r)
	}
	// Largest eigenvalue of Z^T diag(sw) Z / wsum (with the intercept column).
	v := make([]float64, d+1)
	for i := range v {
		v[i] = 1 / math.Sqrt(float64(d+1))
	}
	var eig float64
	for it := 0; it < 50; it++ {
		u := make([]float64, d+1)
		for r, z := range Z {
			s := v[d]
			for i, x := range z {
				s += x * v[i]
			}
			s *= weight(r) / wsum
			for i, x := range z {
				u[i] += s * x
			}
			u[d] += s
		}
		var nrm float64
		for _, x := range u {
			nrm += x * x
		}
		nrm = math.Sqrt(nrm)
		eig = nrm
		for i := range u {
			v[i] = u[i] / nrm
		}
	}
	lr := 1 / (0.5*eig + lambda)
	K := classes
	w := make([][]float64, K) // d weights + intercept
	prev := make([][]float64, K)
	for k := range w {
		w[k] = make([]float64, d+1)
		prev[k] = make([]float64, d+1)
	}
	look := make([][]float64, K)
	grad := make([][]float64, K)
	for k := range look {
		look[k] = make([]float64, d+1)
		grad[k] = make([]float64, d+1)
	}
	p := make([]float64, K)
	const steps = 1500
	for it := 0; it < steps; it++ {
		mom := float64(it) / float64(it+3)
		for k := range w {
			for i := range w[k] {
				look[k][i] = w[k][i] + mom*(w[k][i]-prev[k][i])
				grad[k][i] = 0
			}
		}
		for r, z := range Z {
			for k := 0; k < K; k++ {
				s := look[k][d]
				for i, x := range z {
					s += look[k][i] * x
				}
				p[k] = s
			}
			attributes.SoftmaxInPlace(p)
			c := weight(r) / wsum
			for k := 0; k < K; k++ {
				e := p[k]
				if y[r] == k {
					e -= 1
				}
				e *= c
				g := grad[k]
				for i, x := range z {
					g[i] += e * x
				}
				g[d] += e
			}
		}
		for k := range w {
			copy(prev[k], w[k])
			for i := range w[k] {
				g := grad[k][i]
				if i < d {
					g += lambda * look[k][i]
				}
				w[k][i] = look[k][i] - lr*g
			}
		}
	}
	_ = n
	ws := make([][]float64, K)
	bs := make([]float64, K)
	for k := range w {
		ws[k] = w[k][:d]
		bs[k] = w[k][d]
	}
	Wf, Bf := st.fold(ws, bs)
	return Wf, Bf, st.means(), nil
}

// choleskySolve solves A x = b for a symmetric positive definite A.
func choleskySolve(A [][]float64, b []float64) ([]float64, error) {
	n := len(A)
	L := make([][]float64, n)
	for i := range L {
		L[i] = make([]float64, i+1)
		for j := 0; j <= i; j++ {
			s := A[i][j]
			for k := 0; k < j; k++ {
				s -= L[i][k] * L[j][k]
			}
			if i == j {
				if s <= 0 {
					return nil, errors.New("matrix is not positive definite")
				}
				L[i][i] = math.Sqrt(s)
			} else {
				L[i][j] = s / L[j][j]
			}
		}
	}
	y := make([]float64, n)
	for i := 0; i < n; i++ {
		s := b[i]
		for k := 0; k < i; k++ {
			s -= L[i][k] * y[k]
		}
		y[i] = s / L[i][i]
	}
	x := make([]float64, n)
	for i := n - 1; i >= 0; i-- {
		s := y[i]
		for k := i + 1; k < n; k++ {
			s -= L[k][i] * x[k]
		}
		x[i] = s / L[i][i]
	}
	return x, nil
}
