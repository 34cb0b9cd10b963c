// Package verifycal measures the verify-matcher's calibration table
// (models/calibration/verify-*.json, served by estimators/facetemplate) on
// every genuine and impostor pair of ../shared/corpus/identities.
package verifycal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
	"imageapid/estimators/facetemplate"
	fcorpus "imageapid/fitting/corpus"
	"imageapid/models"
)

// CalibrateCorpus extracts a template from the largest face of every photo
// under identities/ of a corpus folder (listed in its manifest.json with
// labels.identity) and calibrates on all genuine and impostor pairs; decode
// turns a file into a BGR image as the daemon does.
func CalibrateCorpus(ctx context.Context, corpus string, p *face.Pipeline, rt *models.Runtime, network string, flip bool,
	decode func([]byte) (gocv.Mat, error)) (*facetemplate.Calibration, error) {
	files, err := fcorpus.ReadCorpus(corpus, "identities/")
	if err != nil {
		return nil, fmt.Errorf("calibration %w", err)
	}
	e, err := facetemplate.NewEmbedder(rt, network, flip)
	if err != nil {
		return nil, err
	}
	type sample struct {
		id  string
		vec []float32
	}
	var samples []sample
	images, noFace := 0, 0
	ids := map[string]bool{}
	for _, f := range files {
		if f.Labels.Identity == "" {
			continue
		}
		images++
		raw, err := os.ReadFile(filepath.Join(corpus, f.Path))
		if err != nil {
			return nil, fmt.Errorf("calibration corpus: %w", err)
		}
		img, err := decode(raw)
		if err != nil {
			return nil, fmt.Errorf("calibration corpus %s: %w", f.Path, err)
		}
		vec, err := facetemplate.LargestFace(ctx, p, e, img)
		img.Close()
		if err != nil {
			return nil, fmt.Errorf("calibration corpus %s: %w", f.Path, err)
		}
		if vec == nil {
			noFace++
			continue
		}
		ids[f.Labels.Identity] = true
		samples = append(samples, sample{f.Labels.Identity, vec})
	}
	var genuine, impostor []float64
	for i := range samples {
		for j := i + 1; j < len(samples); j++ {
			d, err := facetemplate.Distance(samples[i].vec, samples[j].vec)
			if err != nil {
				return nil, err
			}
			if samples[i].id == samples[j].id {
				genuine = append(genuine, d)
			} else {
				impostor = append(impostor, d)
			}
		}
	}
	c, err := Table(genuine, impostor)
	if err != nil {
		return nil, err
	}
	c.Network, c.ModelID, c.Corpus = network, e.ModelID(), "corpus/identities"
	c.Images, c.ImagesNoFace, c.Identities = images, noFace, len(ids)
	return c, nil
}
