package estimators

import (
	"context"
	"fmt"
	"math"

	"imageapid/estimators/attributes"
)

// ageEstimator serves age-estimator: every face object gains "age", an
// integer number of years (0..100), from a ridge head on the face's
// features (fitted on UTKFace with decades weighted alike: non-commercial;
// see models/heads/age.json for the feature set and target).
type ageEstimator struct{ headModel }

func newAgeEstimator(d Deps) (Estimator, error) {
	hm, err := loadHead(d, "age")
	if err != nil {
		return nil, err
	}
	return &ageEstimator{hm}, nil
}

func (*ageEstimator) Name() string     { return "age-estimator" }
func (*ageEstimator) TakesImage() bool { return false }
func (*ageEstimator) NeedsImage() bool { return true }

func (e *ageEstimator) Process(ctx context.Context, s *Sample) error {
	targets, err := attributeTargets(ctx, e.faces, s)
	if err != nil {
		return err
	}
	for i := range targets {
		f, err := faceFeatures(ctx, s, e.feats, &targets[i])
		if err != nil {
			return err
		}
		out, err := e.head.RunFeatures(ctx, f)
		if err != nil {
			return fmt.Errorf("age: %w", err)
		}
		age := clamp(attributes.AgeFromTarget(e.head.Head.Labels[0], float64(out[0])), 0, 100)
		targets[i].obj.Set("age", int(math.Round(age)))
	}
	return nil
}
