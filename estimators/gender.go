package estimators

import (
	"context"
	"fmt"

	"imageapid/estimators/attributes"
	"imageapid/estimators/face"
)

// genderEstimator serves gender-estimator: every face object gains
// "gender": "MALE" | "FEMALE" from a logistic head on the face's features
// (MobileFace embedding and mesh geometry; probability of FEMALE, fitted on
// UTKFace: non-commercial; see models/heads/gender.json). FEMALE when the
// probability is at least 0.5.
type genderEstimator struct {
	faces *face.Pipeline
	feats *attributes.Extractor
	head  *attributes.Runner
}

func newGenderEstimator(d Deps) (Estimator, error) {
	h, err := attributes.NewRunner(d.Models, "gender")
	if err != nil {
		return nil, err
	}
	x, err := attributes.ForHeads(d.Models, h)
	if err != nil {
		return nil, err
	}
	return &genderEstimator{faces: d.Faces, feats: x, head: h}, nil
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
