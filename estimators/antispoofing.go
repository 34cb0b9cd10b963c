package estimators

import (
	"context"
	"fmt"

	"imageapid/estimators/attributes"
	"imageapid/estimators/face"
)

const antiSpoofingService = "liveness-anti-spoofing"

// AntiSpoofingSettings configure liveness-anti-spoofing (and the
// anti-spoofing step of quality-liveness-anti-spoofing).
type AntiSpoofingSettings struct {
	// Threshold on the probability of a real face for REAL.
	Threshold float64 `yaml:"threshold"`
}

// antiSpoofing serves liveness-anti-spoofing: one verdict for the image,
// from the largest face (or the whole image when none is found), given to
// every object passed in, or to one new object {id:0, class:"face"}. Its
// algorithm differs from face-detector-liveness-estimator's (a head on the
// colour texture alone): a logistic head fusing the logits of the compiled
// anti-spoofing and liveness networks with the face's features, fitted on
// the nine liveness sources of ../shared/corpus, the feature set chosen by
// its ACER on each source left out in turn (see
// models/heads/liveness_deep.json).
type antiSpoofing struct {
	faces *face.Pipeline
	head  *attributes.LivenessHead
	set   AntiSpoofingSettings
}

func newAntiSpoofing(d Deps) (Estimator, error) { return buildAntiSpoofing(d) }

func buildAntiSpoofing(d Deps) (*antiSpoofing, error) {
	set := AntiSpoofingSettings{Threshold: 0.5}
	if d.Settings != nil {
		if err := d.Settings(antiSpoofingService, &set); err != nil {
			return nil, fmt.Errorf("settings: %w", err)
		}
	}
	h, err := attributes.NewLivenessHead(d.Models, attributes.LivenessDeepHead)
	if err != nil {
		return nil, err
	}
	return &antiSpoofing{faces: d.Faces, head: h, set: set}, nil
}

func (*antiSpoofing) Name() string     { return antiSpoofingService }
func (*antiSpoofing) TakesImage() bool { return true }
func (*antiSpoofing) NeedsImage() bool { return true }

func (e *antiSpoofing) Process(ctx context.Context, s *Sample) error {
	known, err := fittedFaces(ctx, e.faces, s)
	if err != nil {
		return err
	}
	loc, err := locateLargest(ctx, e.faces, s, known)
	if err != nil {
		return err
	}
	l, err := e.verdict(ctx, s, &faceTarget{obj: NewObject(), loc: loc})
	if err != nil {
		return err
	}
	if len(s.Objects) == 0 {
		o := NewObject()
		o.Set("id", 0)
		o.Set("class", "face")
		s.Objects = append(s.Objects, o)
	}
	for _, o := range s.Objects {
		o.Set("liveness", l)
	}
	return nil
}

// verdict is the liveness of one located face.
func (e *antiSpoofing) verdict(ctx context.Context, s *Sample, t *faceTarget) (map[string]any, error) {
	p, err := livenessProbability(ctx, s, e.head, t)
	if err != nil {
		return nil, fmt.Errorf("anti-spoofing: %w", err)
	}
	return livenessVerdict(p, e.set.Threshold), nil
}
