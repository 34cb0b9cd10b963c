package camera

import "math"

// Calibration maps a detector's raw score (an SVM margin, a logit, ...) to
// the probability that the detection is right, by Platt's logistic fit:
// p = 1 / (1 + exp(A*raw + B)). The zero value leaves scores unchanged.
type Calibration struct {
	A, B float64
}

// Probability is raw's calibrated score in [0, 1] (raw itself for the zero value).
func (c Calibration) Probability(raw float64) float64 {
	if c == (Calibration{}) {
		return raw
	}
	return 1 / (1 + math.Exp(c.A*raw+c.B))
}

// HOGScore calibrates HOGPeople's SVM margins.
var HOGScore = Calibration{}
