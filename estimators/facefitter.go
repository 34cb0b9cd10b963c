package estimators

import (
	"context"

	"imageapid/estimators/face"
)

// faceFitter serves face-detector-face-fitter: every face with its bbox, the
// 21 fda keypoints in image pixels and the head pose in degrees.
type faceFitter struct{ faces *face.Pipeline }

func newFaceFitter(d Deps) (Estimator, error) { return &faceFitter{faces: d.Faces}, nil }

func (*faceFitter) Name() string     { return "face-detector-face-fitter" }
func (*faceFitter) TakesImage() bool { return true }
func (*faceFitter) NeedsImage() bool { return true }

func (e *faceFitter) Process(ctx context.Context, s *Sample) error {
	faces, err := fittedFaces(ctx, e.faces, s)
	if err != nil {
		return err
	}
	objs := make([]*Object, len(faces))
	for i := range faces {
		objs[i] = fitterObject(i, &faces[i], s.Width(), s.Height())
	}
	mergeByIndex(s, objs)
	return nil
}

// fitterObject is a detection object with "fitter" and "angles".
func fitterObject(id int, f *face.Face, w, h int) *Object {
	o := detectionObject(id, f.Detection, w, h)
	kp := make([]float64, 0, 63)
	for _, p := range f.FDA {
		kp = append(kp, round(p[0], 3), round(p[1], 3), round(p[2], 3))
	}
	le, re := f.LeftEye(), f.RightEye()
	o.Set("fitter", map[string]any{
		"fitter_type": "fda",
		"keypoints":   kp,
		"left_eye":    []float64{round(le.X, 3), round(le.Y, 3)},
		"right_eye":   []float64{round(re.X, 3), round(re.Y, 3)},
	})
	o.Set("angles", map[string]float64{
		"yaw": round(f.Yaw, 3), "pitch": round(f.Pitch, 3), "roll": round(f.Roll, 3),
	})
	return o
}
