package estimators

import (
	"context"
	"fmt"
	"math"

	"gocv.io/x/gocv"

	"imageapid/estimators/attributes"
	"imageapid/estimators/face"
	"imageapid/estimators/facecache"
)

// fittedFaces returns the faces of the sample's image, detected and fitted
// once per sample however many services ask, and once per image bytes and
// pipeline settings while the sample's face cache (if any) keeps them
// (concurrent samples of the same bytes fit once).
func fittedFaces(ctx context.Context, p *face.Pipeline, s *Sample) ([]face.Face, error) {
	v, err := s.Memo("face.fitted", func() (any, error) {
		if !s.HasImage() {
			return nil, BadInput("field $image is required")
		}
		fit := func() ([]face.Face, error) {
			img, err := s.Pixels()
			if err != nil {
				return nil, err
			}
			return detectAndFit(ctx, p, img)
		}
		if !s.cached() {
			return fit()
		}
		return s.faces.Faces(ctx, s.imageKey(pipelineSettings(p)), fit)
	})
	if err != nil {
		return nil, err
	}
	return v.([]face.Face), nil
}

// cachedOutputs returns what run computes on face f of the sample's image,
// from the sample's face cache when it holds them (see facecache.Outputs
// for what name must say).
func cachedOutputs(ctx context.Context, s *Sample, f *face.Face, name string, run func() ([][]float32, error)) ([][]float32, error) {
	if !s.cached() {
		return run()
	}
	return s.faces.Outputs(ctx, s.imageKey(""), f, name, run)
}

// outputCache binds cachedOutputs to a sample, for the attribute features.
func outputCache(s *Sample) attributes.OutputCache {
	if !s.cached() {
		return nil
	}
	return func(ctx context.Context, f *face.Face, name string, run func() ([][]float32, error)) ([][]float32, error) {
		return cachedOutputs(ctx, s, f, name, run)
	}
}

// detectAndFit finds every face in img and fits the mesh on each.
func detectAndFit(ctx context.Context, p *face.Pipeline, img gocv.Mat) ([]face.Face, error) {
	dets, err := p.Detect(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("detect faces: %w", err)
	}
	faces := make([]face.Face, 0, len(dets))
	for _, d := range dets {
		f, err := p.Fit(ctx, img, d)
		if err != nil {
			return nil, fmt.Errorf("fit face: %w", err)
		}
		faces = append(faces, f)
	}
	return faces, nil
}

// pipelineSettings fingerprints what the faces a pipeline finds depend on
// (besides its models): all of its settings, defaults applied.
func pipelineSettings(p *face.Pipeline) string { return fmt.Sprintf("%#v", p.Config()) }

// withFaceCache is an estimator whose samples look their faces up in a
// face cache (Build wraps every estimator in one when Deps.FaceCache is set).
type withFaceCache struct {
	Estimator
	cache *facecache.Cache
}

func (e withFaceCache) Process(ctx context.Context, s *Sample) error {
	if s.faces == nil {
		s.faces = e.cache
	}
	return e.Estimator.Process(ctx, s)
}

// detectionObject is the Image API object of one detected face: id, class,
// confidence and the normalized bbox.
func detectionObject(id int, d face.Detection, w, h int) *Object {
	o := NewObject()
	o.Set("id", id)
	o.Set("class", "face")
	o.Set("confidence", round(clamp(d.Score, 0, 1), 6))
	o.Set("bbox", []float64{
		round(clamp(d.X1/float64(w), 0, 1), 6), round(clamp(d.Y1/float64(h), 0, 1), 6),
		round(clamp(d.X2/float64(w), 0, 1), 6), round(clamp(d.Y2/float64(h), 0, 1), 6),
	})
	return o
}

// mergeByIndex merges detected objects into the sample's objects by index,
// as the original detection services do: the k-th detection updates the k-th
// input object (keeping its foreign keys), extra detections are appended.
func mergeByIndex(s *Sample, detected []*Object) {
	for k, d := range detected {
		if k >= len(s.Objects) {
			s.Objects = append(s.Objects, d)
			continue
		}
		for _, key := range d.Keys() {
			raw, _ := d.Raw(key)
			s.Objects[k].SetRaw(key, raw)
		}
	}
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// round keeps JSON short and stable: n decimals.
func round(v float64, n int) float64 {
	p := math.Pow(10, float64(n))
	return math.Round(v*p) / p
}
