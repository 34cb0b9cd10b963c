package verifycal

import (
	"fmt"
	"math"
	"sort"

	"imageapid/estimators/facetemplate"
)

// calibrationStep is the distance between table points.
const calibrationStep = 0.02

// Table builds the calibration table from genuine and impostor distances.
func Table(genuine, impostor []float64) (*facetemplate.Calibration, error) {
	if len(genuine) == 0 || len(impostor) == 0 {
		return nil, fmt.Errorf("calibration needs genuine and impostor pairs, got %d and %d", len(genuine), len(impostor))
	}
	g := append([]float64(nil), genuine...)
	im := append([]float64(nil), impostor...)
	sort.Float64s(g)
	sort.Float64s(im)
	atMost := func(xs []float64, t float64) float64 {
		return float64(sort.Search(len(xs), func(i int) bool { return xs[i] > t })) / float64(len(xs))
	}
	c := &facetemplate.Calibration{GenuinePairs: len(g), ImpostorPairs: len(im)}
	for i := 0; i <= int(math.Round(4/calibrationStep)); i++ {
		d := round6(float64(i) * calibrationStep)
		c.Points = append(c.Points, [3]float64{d, round6(atMost(im, d)), round6(1 - atMost(g, d))})
	}
	c.EER, c.EERThreshold = 1, 0
	gap := math.Inf(1)
	for _, t := range append(append([]float64(nil), g...), im...) {
		far, frr := atMost(im, t), 1-atMost(g, t)
		if v := math.Abs(far - frr); v < gap {
			gap, c.EER, c.EERThreshold = v, round6((far+frr)/2), round6(t)
		}
	}
	c.ScoreSlope, c.ScoreMidpoint = fitLogistic(g, im)
	return c, nil
}

// fitLogistic fits P(same | d) = 1 / (1 + exp(a (d - b))) by Newton's
// method on the log-likelihood, weighting each class to half the total.
func fitLogistic(genuine, impostor []float64) (a, b float64) {
	// Parametrize as sigmoid(w0 + w1 d) with w1 = -a, w0 = a b.
	w0, w1 := 0.0, -1.0
	wg, wi := 0.5/float64(len(genuine)), 0.5/float64(len(impostor))
	for iter := 0; iter < 50; iter++ {
		var g0, g1, h00, h01, h11 float64
		add := func(d, y, w float64) {
			p := 1 / (1 + math.Exp(-(w0 + w1*d)))
			g0 += w * (y - p)
			g1 += w * (y - p) * d
			s := w * p * (1 - p)
			h00 += s
			h01 += s * d
			h11 += s * d * d
		}
		for _, d := range genuine {
			add(d, 1, wg)
		}
		for _, d := range impostor {
			add(d, 0, wi)
		}
		det := h00*h11 - h01*h01
		if det <= 0 {
			break
		}
		d0 := (h11*g0 - h01*g1) / det
		d1 := (h00*g1 - h01*g0) / det
		w0, w1 = w0+d0, w1+d1
		if math.Abs(d0)+math.Abs(d1) < 1e-10 {
			break
		}
	}
	a = -w1
	return round6(a), round6(w0 / a)
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }
