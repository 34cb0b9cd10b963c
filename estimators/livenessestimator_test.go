package estimators

import (
	"testing"

	"imageapid/estimators/face"
)

// A tight face crop (the face filling the image, its box touching or a
// little past the border) is judged; a face too small, mostly outside the
// image, or with its eyes or mouth cut off gets NOT_ENOUGH_DATA.
func TestLivenessEnoughData(t *testing.T) {
	e := &livenessEstimator{set: LivenessEstimatorSettings{Threshold: 0.5, MinFaceSize: 48, MaxCut: 0.4}}
	det := func(x1, y1, x2, y2 float64) face.Detection {
		d := face.Detection{X1: x1, Y1: y1, X2: x2, Y2: y2, Score: 0.9}
		w, h := x2-x1, y2-y1
		d.Keypoints[0] = face.Point{X: x1 + 0.3*w, Y: y1 + 0.4*h}
		d.Keypoints[1] = face.Point{X: x1 + 0.7*w, Y: y1 + 0.4*h}
		d.Keypoints[2] = face.Point{X: x1 + 0.5*w, Y: y1 + 0.6*h}
		d.Keypoints[3] = face.Point{X: x1 + 0.5*w, Y: y1 + 0.8*h}
		d.Keypoints[4] = face.Point{X: x1 - 0.05*w, Y: y1 + 0.5*h} // ears may be outside
		d.Keypoints[5] = face.Point{X: x2 + 0.05*w, Y: y1 + 0.5*h}
		return d
	}
	for _, c := range []struct {
		name string
		d    face.Detection
		w, h int
		want bool
	}{
		{"face in the middle of a frame", det(200, 120, 360, 300), 640, 480, true},
		{"tight crop, box on the border", det(0, 0, 78, 78), 78, 78, true},
		{"tight crop, box past every border", det(-8, -10, 80, 88), 71, 78, true},
		{"tight crop, box well past the top", det(5, -30, 95, 90), 100, 100, true},
		{"too small", det(10, 10, 40, 40), 640, 480, false},
		{"half the face outside", det(-80, 100, 80, 260), 640, 480, false},
		{"mouth below the image", det(200, 380, 360, 540), 640, 480, false},
		{"eye left of the image", det(-60, 100, 100, 260), 640, 480, false},
	} {
		if got := e.enoughData(c.d, c.w, c.h); got != c.want {
			t.Errorf("%s: enough data %v, want %v", c.name, got, c.want)
		}
	}
}
