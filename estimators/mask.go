package estimators

import (
	"context"
	"fmt"

	"imageapid/estimators/attributes"
)

// maskEstimator serves mask-estimator: every face object gains
// "mask": {"value": bool, "confidence": p}, where p is the probability of a
// medical mask from a logistic head on the face's MobileFace embedding,
// fitted on ../shared/corpus/mask (see models/heads/mask.json), and value
// is p >= 0.5.
type maskEstimator struct{ headModel }

func newMaskEstimator(d Deps) (Estimator, error) {
	hm, err := loadHead(d, "mask")
	if err != nil {
		return nil, err
	}
	return &maskEstimator{hm}, nil
}

func (*maskEstimator) Name() string     { return "mask-estimator" }
func (*maskEstimator) TakesImage() bool { return false }
func (*maskEstimator) NeedsImage() bool { return true }

func (e *maskEstimator) Process(ctx context.Context, s *Sample) error {
	targets, err := attributeTargets(ctx, e.faces, s)
	if err != nil {
		return err
	}
	for i := range targets {
		p, err := maskProbability(ctx, s, e.feats, e.head, &targets[i])
		if err != nil {
			return err
		}
		targets[i].obj.Set("mask", map[string]any{"value": p >= 0.5, "confidence": round(p, 6)})
	}
	return nil
}

// maskProbability is the probability that the target wears a medical mask.
func maskProbability(ctx context.Context, s *Sample, x *attributes.Extractor, head *attributes.Runner, t *faceTarget) (float64, error) {
	f, err := faceFeatures(ctx, s, x, t)
	if err != nil {
		return 0, err
	}
	out, err := head.RunFeatures(ctx, f)
	if err != nil {
		return 0, fmt.Errorf("mask: %w", err)
	}
	return clamp(float64(out[0]), 0, 1), nil
}
