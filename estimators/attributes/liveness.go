package attributes

import (
	"context"
	"fmt"

	"gocv.io/x/gocv"

	"imageapid/models"
)

// Names of the two liveness heads (models/heads/<name>.json).
const (
	// LivenessTextureHead is face-detector-liveness-estimator's head: a
	// logistic on the colour texture of the aligned face.
	LivenessTextureHead = "liveness_texture"
	// LivenessDeepHead is liveness-anti-spoofing's head: a logistic fusing
	// the face's features with the compiled anti-spoofing nets' logits.
	LivenessDeepHead = "liveness_deep"
)

// LivenessHead is one fitted liveness head with the extractor its features
// need. The liveness services and Liveness score faces through it.
type LivenessHead struct {
	x *Extractor
	r *Runner
}

// NewLivenessHead loads the named liveness head and the networks behind its
// features.
func NewLivenessHead(rt *models.Runtime, name string) (*LivenessHead, error) {
	r, err := NewRunner(rt, name)
	if err != nil {
		return nil, err
	}
	if r.Head.Kind != KindLogistic {
		return nil, fmt.Errorf("head %s: a liveness head is logistic, not %s", name, r.Head.Kind)
	}
	x, err := ForHeads(rt, r)
	if err != nil {
		return nil, err
	}
	return &LivenessHead{x: x, r: r}, nil
}

// Extractor is the feature extractor the head reads.
func (h *LivenessHead) Extractor() *Extractor { return h.x }

// Head is the fitted head.
func (h *LivenessHead) Head() *Head { return h.r.Head }

// Probability is the head's probability of a real face, in [0, 1], on one
// face's features (computed by this head's extractor or one that Use'd it).
func (h *LivenessHead) Probability(ctx context.Context, f *Features) (float64, error) {
	out, err := h.r.RunFeatures(ctx, f)
	if err != nil {
		return 0, err
	}
	return min(max(float64(out[0]), 0), 1), nil
}

// Liveness scores located faces with both liveness heads, as the two
// liveness services do (they call the same LivenessHead.Probability).
type Liveness struct {
	Texture, Deep *LivenessHead

	x *Extractor
}

// NewLiveness loads both liveness heads and their networks from rt.
func NewLiveness(rt *models.Runtime) (*Liveness, error) {
	t, err := NewLivenessHead(rt, LivenessTextureHead)
	if err != nil {
		return nil, err
	}
	d, err := NewLivenessHead(rt, LivenessDeepHead)
	if err != nil {
		return nil, err
	}
	x, err := ForHeads(rt, t.r, d.r)
	if err != nil {
		return nil, err
	}
	return &Liveness{Texture: t, Deep: d, x: x}, nil
}

// Score returns both heads' probability of a real face for a located face
// on img (from Locate or LocateLargest on the same image): texture is
// face-detector-liveness-estimator's confidence, deep is
// liveness-anti-spoofing's. The face's features are computed once for both.
// It does not apply face-detector-liveness-estimator's size and cut checks
// (NOT_ENOUGH_DATA).
func (l *Liveness) Score(ctx context.Context, img gocv.Mat, loc *Located) (texture, deep float64, err error) {
	if loc == nil {
		return 0, 0, fmt.Errorf("liveness: no located face")
	}
	f, err := l.x.Compute(ctx, img, loc)
	if err != nil {
		return 0, 0, err
	}
	if texture, err = l.Texture.Probability(ctx, f); err != nil {
		return 0, 0, fmt.Errorf("liveness: %w", err)
	}
	if deep, err = l.Deep.Probability(ctx, f); err != nil {
		return 0, 0, fmt.Errorf("liveness: %w", err)
	}
	return texture, deep, nil
}
