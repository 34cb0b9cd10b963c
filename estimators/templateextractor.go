package estimators

import (
	"context"
	"encoding/base64"
	"fmt"

	"imageapid/estimators/face"
	"imageapid/estimators/facetemplate"
)

// TemplateSettings configure face-detector-template-extractor; the
// verify-matcher reads the same section so that it accepts exactly the
// templates the extractor makes.
type TemplateSettings struct {
	// Network is the embedding network (see facetemplate.Networks).
	Network string `yaml:"network"`
	// Flip adds horizontal-flip test-time augmentation; it changes the
	// template's model id, so templates made with and without it do not mix.
	Flip bool `yaml:"flip"`
}

const templateService = "face-detector-template-extractor"

// defaultFlip: flip test-time augmentation is off unless it measurably helps
// (see the eval command's verification task).
const defaultFlip = false

func templateSettings(d Deps) (TemplateSettings, error) {
	s := TemplateSettings{Network: facetemplate.DefaultNetwork, Flip: defaultFlip}
	if d.Settings != nil {
		if err := d.Settings(templateService, &s); err != nil {
			return s, fmt.Errorf("settings: %w", err)
		}
	}
	return s, nil
}

// templateExtractor serves face-detector-template-extractor: every face
// with a "$template" (base64 of a facetemplate blob) and "template_size"
// (the blob's length in 32-bit words).
type templateExtractor struct {
	faces    *face.Pipeline
	embedder *facetemplate.Embedder
}

func newTemplateExtractor(d Deps) (Estimator, error) {
	s, err := templateSettings(d)
	if err != nil {
		return nil, err
	}
	e, err := facetemplate.NewEmbedder(d.Models, s.Network, s.Flip)
	if err != nil {
		return nil, err
	}
	return &templateExtractor{faces: d.Faces, embedder: e}, nil
}

func (*templateExtractor) Name() string     { return templateService }
func (*templateExtractor) TakesImage() bool { return true }
func (*templateExtractor) NeedsImage() bool { return true }

func (e *templateExtractor) Process(ctx context.Context, s *Sample) error {
	faces, err := fittedFaces(ctx, e.faces, s)
	if err != nil {
		return err
	}
	objs := make([]*Object, len(faces))
	for i := range faces {
		name := fmt.Sprintf("facetemplate/%s/%d", e.embedder.Network(), e.embedder.ModelID())
		vec, err := cachedOutputs(ctx, s, &faces[i], name, func() ([][]float32, error) {
			img, err := s.Pixels()
			if err != nil {
				return nil, err
			}
			v, err := e.embedder.Embed(ctx, img, &faces[i])
			return [][]float32{v}, err
		})
		if err != nil {
			return fmt.Errorf("face %d: %w", i, err)
		}
		tpl := facetemplate.Encode(e.embedder.ModelID(), vec[0])
		o := detectionObject(i, faces[i].Detection, s.Width(), s.Height())
		o.Set("$template", base64.StdEncoding.EncodeToString(tpl))
		o.Set("template_size", len(tpl)/4)
		objs[i] = o
	}
	mergeByIndex(s, objs)
	return nil
}
