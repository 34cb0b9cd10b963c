package estimators

import (
	"context"
	"fmt"
)

// genderEstimator serves gender-estimator: every face object gains
// "gender": "MALE" | "FEMALE" from a logistic head on the face's features
// (the feature set chosen on held-out UTKFace among FaceRes's estimates and
// descriptor, the MobileFace embedding and mesh geometry; probability of
// FEMALE, fitted on UTKFace: non-commercial; see models/heads/gender.json).
// FEMALE when the probability is at least 0.5.
type genderEstimator struct{ headModel }

func newGenderEstimator(d Deps) (Estimator, error) {
	hm, err := loadHead(d, "gender")
	if err != nil {
		return nil, err
	}
	return &genderEstimator{hm}, nil
}

func (*genderEstimator) Name() string     { return "gender-estimator" }
func (*genderEstimator) TakesImage() bool { return false }
func (*genderEstimator) NeedsImage() bool { return true }

func (e *genderEstimator) Process(ctx context.Context, s *Sample) error {
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
			return fmt.Errorf("gender: %w", err)
		}
		g := "MALE"
		if out[0] >= 0.5 {
			g = "FEMALE"
		}
		targets[i].obj.Set("gender", g)
	}
	return nil
}
