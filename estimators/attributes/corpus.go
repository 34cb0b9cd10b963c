package attributes

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
)

// CorpusFile is one labelled file of ../shared/corpus (manifest.json).
type CorpusFile struct {
	Path string `json:"path"`
	// Group is the file's source where the corpus names one (liveness2's
	// identity_group); heads fitted across sources hold each out in turn.
	Group  string `json:"identity_group"`
	Labels struct {
		Identity string `json:"identity"`
		Mask     *bool  `json:"mask"`
		Emotion  string `json:"emotion"`
		Age      *int   `json:"age"`
		Gender   string `json:"gender"`
		Liveness string `json:"liveness"`
	} `json:"labels"`
}

// ReadCorpus lists the corpus files under a folder prefix ("mask/"), by path.
func ReadCorpus(dir, prefix string) ([]CorpusFile, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	var m struct {
		Files []CorpusFile `json:"files"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("corpus manifest: %w", err)
	}
	var out []CorpusFile
	for _, f := range m.Files {
		if strings.HasPrefix(f.Path, prefix) {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	if len(out) == 0 {
		return nil, fmt.Errorf("corpus %s: no files under %s", dir, prefix)
	}
	return out, nil
}

// LivenessSources are the corpus's liveness photos from every source: the
// CelebA-Spoof subset of liveness/ (one group) and the eight sources of
// liveness2/ (their own manifest), by path under the corpus folder.
func LivenessSources(dir string) ([]CorpusFile, error) {
	celeba, err := ReadCorpus(dir, "liveness/")
	if err != nil {
		return nil, err
	}
	for i := range celeba {
		celeba[i].Group = "celeba-spoof"
	}
	more, err := ReadCorpus(filepath.Join(dir, "liveness2"), "")
	if err != nil {
		return nil, err
	}
	for i := range more {
		if more[i].Group == "" {
			return nil, fmt.Errorf("corpus liveness2 %s: no identity_group", more[i].Path)
		}
		more[i].Path = "liveness2/" + more[i].Path
	}
	out := append(celeba, more...)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// Extracted is one corpus file's largest face and its features; Features is
// nil when the file had no usable face.
type Extracted struct {
	File     CorpusFile
	Source   Source
	Features *Features
}

// ExtractCorpus locates the largest face of every file as the services do
// (LocateLargest) and computes the named feature parts (nil: all); decode
// turns file bytes into a BGR image as the daemon does. Files with only a
// boxed face get no features.
func ExtractCorpus(ctx context.Context, p *face.Pipeline, x *Extractor, dir string, files []CorpusFile, parts []string,
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
			out = append(out, Extracted{File: f, Source: Boxed})
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

func extractOne(ctx context.Context, p *face.Pipeline, x *Extractor, img gocv.Mat, parts []string) (Extracted, error) {
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
	l, err := LocateLargest(ctx, p, img, known)
	if err != nil {
		return Extracted{}, err
	}
	if l.Source == Boxed {
		return Extracted{Source: Boxed}, nil
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
