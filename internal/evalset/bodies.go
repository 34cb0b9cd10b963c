package evalset

import (
	"context"
	"fmt"
)

// BodyResult is person detection measured on a set.
type BodyResult struct {
	BoxFiles, Labelled, Detected, TP int
	CountFiles, CountOK              int
	PerFile                          []string
}

func (r BodyResult) Recall() float64        { return ratio(r.TP, r.Labelled) }
func (r BodyResult) Precision() float64     { return ratio(r.TP, r.Detected) }
func (r BodyResult) CountAccuracy() float64 { return ratio(r.CountOK, r.CountFiles) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// EvalBodies runs detect (which returns person boxes x1,y1,x2,y2 in pixels,
// most confident first) on every file with the "bodies" task.
func EvalBodies(ctx context.Context, s *Set, detect func(ctx context.Context, path string) ([][4]float64, error)) (BodyResult, error) {
	var r BodyResult
	for _, f := range s.WithTask("bodies") {
		boxes, err := detect(ctx, s.Path(f.Path))
		if err != nil {
			return r, fmt.Errorf("%s: %w", f.Path, err)
		}
		line := fmt.Sprintf("%-40s detected %d", f.Path, len(boxes))
		if f.Geometry.HasPersonBoxes {
			tp := Match(boxes, f.Geometry.PersonBoxes, 0.5)
			r.BoxFiles++
			r.Labelled += len(f.Geometry.PersonBoxes)
			r.Detected += len(boxes)
			r.TP += tp
			line += fmt.Sprintf(" boxes %d matched %d", len(f.Geometry.PersonBoxes), tp)
		}
		if n := f.Labels.NumPersons; n != nil {
			r.CountFiles++
			if len(boxes) == *n {
				r.CountOK++
			}
			line += fmt.Sprintf(" num_persons %d", *n)
		}
		r.PerFile = append(r.PerFile, line)
	}
	return r, nil
}
