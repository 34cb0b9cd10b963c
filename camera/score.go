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

// HOGScore calibrates HOGPeople's SVM margins: margin 0 is 0.49, 1 is 0.69,
// 3 is 0.93. Fitted by `go run ./camera/cmd/scorefit` (see there for the data
// and the labels); its output was:
//
//	third_party/fixtures/vtest.avi: 199 frames (every 4-th), 511 HOG detections, 411 confirmed by CenterNet
var HOGScore = Calibration{A: -0.8768, B: 0.0575}
