package facetemplate

import (
	"context"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
)

// LargestFace returns the template vector of the largest face in img (the
// subject of a portrait or a verification photo), or nil when no face is found.
func LargestFace(ctx context.Context, p *face.Pipeline, e *Embedder, img gocv.Mat) ([]float32, error) {
	dets, err := p.Detect(ctx, img)
	if err != nil {
		return nil, err
	}
	if len(dets) == 0 {
		return nil, nil
	}
	f, err := p.Fit(ctx, img, dets[face.Largest(dets)])
	if err != nil {
		return nil, err
	}
	tpl, err := e.Template(ctx, img, &f)
	if err != nil {
		return nil, err
	}
	t, err := Decode(tpl, e.ModelID())
	if err != nil {
		return nil, err
	}
	return t.Vector, nil
}
