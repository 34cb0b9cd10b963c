package estimators

import (
	"context"
	"fmt"
	"math"

	"imageapid/estimators/face"
)

// fittedFaces returns the faces of the sample's image, detected and fitted
// once per sample however many services ask.
func fittedFaces(ctx context.Context, p *face.Pipeline, s *Sample) ([]face.Face, error) {
	v, err := s.Memo("face.fitted", func() (any, error) {
		if !s.HasImage() {
			return nil, BadInput("field $image is required")
		}
		dets, err := p.Detect(ctx, s.Image)
		if err != nil {
			return nil, fmt.Errorf("detect faces: %w", err)
		}
		faces := make([]face.Face, 0, len(dets))
		for _, d := range dets {
			f, err := p.Fit(ctx, s.Image, d)
			if err != nil {
				return nil, fmt.Errorf("fit face: %w", err)
			}
			faces = append(faces, f)
		}
		return faces, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]face.Face), nil
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
