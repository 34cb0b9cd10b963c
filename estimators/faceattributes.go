package estimators

import (
	"context"
	"fmt"
	"math"

	"imageapid/estimators/attributes"
	"imageapid/estimators/face"
)

// faceTarget is one face object an attribute service fills in, with the
// face found behind its bbox.
type faceTarget struct {
	obj *Object
	loc attributes.Located
}

// attributeTargets returns the sample's face objects (class "face") with
// their faces; objects of other classes are left alone. With no objects
// (or only empty ones) the whole image is the face: one object
// {id:0, class:"face"} is added for the largest face in it.
func attributeTargets(ctx context.Context, p *face.Pipeline, s *Sample) ([]faceTarget, error) {
	if !s.HasImage() {
		return nil, BadInput("field $image is required")
	}
	known, err := fittedFaces(ctx, p, s)
	if err != nil {
		return nil, err
	}
	if len(s.Objects) == 0 {
		loc, err := locateLargest(ctx, p, s, known)
		if err != nil {
			return nil, err
		}
		o := NewObject()
		o.Set("id", 0)
		o.Set("class", "face")
		s.Objects = append(s.Objects, o)
		return []faceTarget{{obj: o, loc: loc}}, nil
	}
	var out []faceTarget
	for i, o := range s.Objects {
		if o.String("class") != "face" {
			continue
		}
		box, err := objectBox(o, s.Width(), s.Height())
		if err != nil {
			return nil, BadInput("object %d: %v", i, err)
		}
		loc, ok := attributes.Match(known, box)
		if !ok {
			img, err := s.Pixels()
			if err != nil {
				return nil, err
			}
			if loc, err = attributes.Locate(ctx, p, img, known, box, objectEyes(o)); err != nil {
				return nil, fmt.Errorf("object %d: %w", i, err)
			}
		}
		out = append(out, faceTarget{obj: o, loc: loc})
	}
	return out, nil
}

// locateLargest is attributes.LocateLargest, decoding the image only when
// no face is known.
func locateLargest(ctx context.Context, p *face.Pipeline, s *Sample, known []face.Face) (attributes.Located, error) {
	if l, ok := attributes.Largest(known); ok {
		return l, nil
	}
	img, err := s.Pixels()
	if err != nil {
		return attributes.Located{}, err
	}
	return attributes.LocateLargest(ctx, p, img, known)
}

// objectBox reads an object's normalized "bbox" [x1,y1,x2,y2], clamped to
// [0,1], in image pixels.
func objectBox(o *Object, w, h int) (attributes.Box, error) {
	var bb []float64
	ok, err := o.Get("bbox", &bb)
	if !ok {
		return attributes.Box{}, fmt.Errorf("a face object needs a \"bbox\"")
	}
	if err != nil || len(bb) != 4 {
		return attributes.Box{}, fmt.Errorf("\"bbox\" must be 4 numbers [x1, y1, x2, y2] normalized to the image")
	}
	for _, v := range bb {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return attributes.Box{}, fmt.Errorf("\"bbox\" holds a value that is not a finite number")
		}
	}
	b := attributes.Box{
		X1: clamp(bb[0], 0, 1) * float64(w), Y1: clamp(bb[1], 0, 1) * float64(h),
		X2: clamp(bb[2], 0, 1) * float64(w), Y2: clamp(bb[3], 0, 1) * float64(h),
	}
	if b.Width() < 1 || b.Height() < 1 {
		return attributes.Box{}, fmt.Errorf("\"bbox\" %v covers no pixel of the image once clamped to [0, 1]", bb)
	}
	return b, nil
}

// objectEyes reads the fitter's eye points (pixels), when the object has them.
func objectEyes(o *Object) *[2]face.Point {
	var f struct {
		LeftEye  []float64 `json:"left_eye"`
		RightEye []float64 `json:"right_eye"`
	}
	if ok, err := o.Get("fitter", &f); !ok || err != nil || len(f.LeftEye) != 2 || len(f.RightEye) != 2 {
		return nil
	}
	for _, v := range append(f.LeftEye, f.RightEye...) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
	}
	return &[2]face.Point{{X: f.LeftEye[0], Y: f.LeftEye[1]}, {X: f.RightEye[0], Y: f.RightEye[1]}}
}

// objectFeatures are the features of the face behind one object. The memo
// holds the object too: its address is the memo key, and an object freed
// while the sample lives could otherwise lend its address to another one.
type objectFeatures struct {
	obj *Object
	f   *attributes.Features
}

// faceFeatures computes (once per sample and face) the features heads read.
func faceFeatures(ctx context.Context, s *Sample, x *attributes.Extractor, t *faceTarget) (*attributes.Features, error) {
	key := fmt.Sprintf("attributes.features.%p", t.obj)
	v, err := s.Memo(key, func() (any, error) {
		f, err := x.ComputeOn(ctx, s.Pixels, &t.loc)
		if err != nil {
			return nil, err
		}
		f.CacheIn(outputCache(s))
		return objectFeatures{obj: t.obj, f: f}, nil
	})
	if err != nil {
		return nil, err
	}
	f := v.(objectFeatures).f
	f.Use(x)
	return f, nil
}

// livenessProbability is a liveness head's probability of a real face for
// the target (the same code attributes.Liveness.Score runs), on the
// sample's shared features.
func livenessProbability(ctx context.Context, s *Sample, head *attributes.LivenessHead, t *faceTarget) (float64, error) {
	f, err := faceFeatures(ctx, s, head.Extractor(), t)
	if err != nil {
		return 0, err
	}
	return head.Probability(ctx, f)
}

// livenessVerdict is REAL when the probability of a real face reaches the threshold.
func livenessVerdict(pReal, threshold float64) map[string]any {
	v := "FAKE"
	if pReal >= threshold {
		v = "REAL"
	}
	return map[string]any{"value": v, "confidence": round(pReal, 6)}
}

// headModel is what an attribute service built on one fitted head needs: the
// face pipeline, the feature extractor the head reads, and the head itself.
type headModel struct {
	faces *face.Pipeline
	feats *attributes.Extractor
	head  *attributes.Runner
}

// loadHead loads the named head (models/heads/<name>.json) and the networks
// its features come from.
func loadHead(d Deps, name string) (headModel, error) {
	h, err := attributes.NewRunner(d.Models, name)
	if err != nil {
		return headModel{}, err
	}
	x, err := attributes.ForHeads(d.Models, h)
	if err != nil {
		return headModel{}, err
	}
	return headModel{faces: d.Faces, feats: x, head: h}, nil
}
