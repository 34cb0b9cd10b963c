package headfit

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gocv.io/x/gocv"

	"imageapid/estimators/attributes"
	"imageapid/estimators/face"
	"imageapid/fitting/corpus"
)

// Extracted is one corpus file's largest face and its features; Features is
// nil when the file had no usable face.
type Extracted struct {
	File     corpus.CorpusFile
	Source   attributes.Source
	Features *attributes.Features
}

// ExtractCorpus locates the largest face of every file as the services do
// (attributes.LocateLargest) and computes the named feature parts (nil: all); decode
// turns file bytes into a BGR image as the daemon does. Files with only a
// boxed face get no features.
func ExtractCorpus(ctx context.Context, p *face.Pipeline, x *attributes.Extractor, dir string, files []corpus.CorpusFile, parts []string,
	decode func([]byte) (gocv.Mat, error), progress io.Writer) ([]Extracted, error) {
	out := make([]Extracted, 0, len(files))
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		raw, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		img, err := decode(raw)
		if err != nil {
			out = append(out, Extracted{File: f, Source: attributes.Boxed})
			continue
		}
		e, err := extractOne(ctx, p, x, img, parts)
		img.Close()
		if err != nil {
			return nil, fmt.Errorf("corpus %s: %w", f.Path, err)
		}
		e.File = f
		out = append(out, e)
		if progress != nil && (i+1)%500 == 0 {
			fmt.Fprintf(progress, "  %d/%d files\n", i+1, len(files))
		}
	}
	return out, nil
}

func extractOne(ctx context.Context, p *face.Pipeline, x *attributes.Extractor, img gocv.Mat, parts []string) (Extracted, error) {
	dets, err := p.Detect(ctx, img)
	if err != nil {
		return Extracted{}, err
	}
	var known []face.Face
	if len(dets) > 0 {
		f, err := p.Fit(ctx, img, dets[face.Largest(dets)])
		if err != nil {
			return Extracted{}, err
		}
		known = []face.Face{f}
	}
	l, err := attributes.LocateLargest(ctx, p, img, known)
	if err != nil {
		return Extracted{}, err
	}
	if l.Source == attributes.Boxed {
		return Extracted{Source: attributes.Boxed}, nil
	}
	feat, err := x.Compute(ctx, img, &l)
	if err != nil {
		return Extracted{}, err
	}
	if parts == nil {
		err = feat.All(ctx)
	} else {
		for _, name := range parts {
			if _, err = feat.Part(ctx, name); err != nil {
				break
			}
		}
	}
	if err != nil {
		return Extracted{}, err
	}
	feat.Detach()
	return Extracted{Source: l.Source, Features: feat}, nil
}
