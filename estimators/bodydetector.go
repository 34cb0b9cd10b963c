package estimators

import (
	"context"
	"fmt"

	"imageapid/estimators/body"
)

// bodyDetector serves body-detector: every person with a normalized
// whole-body bbox and a confidence.
type bodyDetector struct{ det *body.Detector }

func newBodyDetector(d Deps) (Estimator, error) {
	var cfg body.Config
	if d.Settings != nil {
		if err := d.Settings("body-detector", &cfg); err != nil {
			return nil, fmt.Errorf("settings: %w", err)
		}
	}
	det, err := body.New(d.Models, cfg)
	if err != nil {
		return nil, err
	}
	return &bodyDetector{det: det}, nil
}

func (*bodyDetector) Name() string     { return "body-detector" }
func (*bodyDetector) TakesImage() bool { return true }
func (*bodyDetector) NeedsImage() bool { return true }

func (e *bodyDetector) Process(ctx context.Context, s *Sample) error {
	if !s.HasImage() {
		return BadInput("field $image is required")
	}
	img, err := s.Pixels()
	if err != nil {
		return err
	}
	people, err := e.det.Detect(ctx, img)
	if err != nil {
		return err
	}
	w, h := float64(s.Width()), float64(s.Height())
	objs := make([]*Object, len(people))
	for i, p := range people {
		o := NewObject()
		o.Set("id", i)
		o.Set("class", "body")
		o.Set("confidence", round(clamp(p.Score, 0, 1), 6))
		o.Set("bbox", []float64{
			round(clamp(p.X1/w, 0, 1), 6), round(clamp(p.Y1/h, 0, 1), 6),
			round(clamp(p.X2/w, 0, 1), 6), round(clamp(p.Y2/h, 0, 1), 6),
		})
		objs[i] = o
	}
	mergeByIndex(s, objs)
	return nil
}
