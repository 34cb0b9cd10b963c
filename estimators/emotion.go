package estimators

import (
	"context"
	"fmt"

	"imageapid/estimators/attributes"
)

// emotionEstimator serves emotion-estimator: every face object gains
// "emotions", the seven {emotion, confidence} in the spec's fixed order
// (ANGRY, DISGUSTED, SCARED, HAPPY, NEUTRAL, SAD, SURPRISED) with softmax
// confidences, and "emotion", the dominant one (an addition the spec does
// not forbid: clients that do not know it ignore it). The probabilities come
// from a softmax head on the aligned mesh geometry and the compiled FER
// emotion network's outputs, fitted on ../shared/corpus/faces with the
// classes weighted alike (see models/heads/emotion.json).
type emotionEstimator struct{ headModel }

func newEmotionEstimator(d Deps) (Estimator, error) {
	hm, err := loadHead(d, "emotion")
	if err != nil {
		return nil, err
	}
	return &emotionEstimator{hm}, nil
}

func (*emotionEstimator) Name() string     { return "emotion-estimator" }
func (*emotionEstimator) TakesImage() bool { return false }
func (*emotionEstimator) NeedsImage() bool { return true }

func (e *emotionEstimator) Process(ctx context.Context, s *Sample) error {
	targets, err := attributeTargets(ctx, e.faces, s)
	if err != nil {
		return err
	}
	for i := range targets {
		probs, err := emotionProbabilities(ctx, s, e.feats, e.head, &targets[i])
		if err != nil {
			return err
		}
		list := make([]map[string]any, len(probs))
		best := 0
		for k, p := range probs {
			list[k] = map[string]any{"emotion": attributes.Emotions[k], "confidence": round(p, 6)}
			if p > probs[best] {
				best = k
			}
		}
		targets[i].obj.Set("emotions", list)
		targets[i].obj.Set("emotion", attributes.Emotions[best])
	}
	return nil
}

// emotionProbabilities returns the seven probabilities in attributes.Emotions order.
func emotionProbabilities(ctx context.Context, s *Sample, x *attributes.Extractor, head *attributes.Runner, t *faceTarget) ([]float64, error) {
	f, err := faceFeatures(ctx, s, x, t)
	if err != nil {
		return nil, err
	}
	out, err := head.RunFeatures(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("emotion: %w", err)
	}
	if len(out) != len(attributes.Emotions) {
		return nil, fmt.Errorf("emotion: %d outputs, want %d", len(out), len(attributes.Emotions))
	}
	probs := make([]float64, len(out))
	for k, v := range out {
		probs[k] = clamp(float64(v), 0, 1)
	}
	return probs, nil
}
