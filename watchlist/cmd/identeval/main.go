// Command identeval measures 1:N identification on a corpus's identities/
// with the daemon's face pipeline, template extractor, watchlist index and
// verify-matcher calibration table:
//
//	go run ./watchlist/cmd/identeval --corpus ../shared/corpus
//
// It reports all the identities, then each half of them (every second
// identity in name order, from the first and from the second): two
// disjoint sets of people, so that a choice made on one half is reported
// on the other.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"imageapid/estimators/facetemplate"
	"imageapid/internal/evalenv"
	"imageapid/watchlist"
	"imageapid/watchlist/evaluation"
)

func main() {
	corpus := flag.String("corpus", "../shared/corpus", "corpus folder (with manifest.json and identities/)")
	manifest := flag.String("manifest", "models/manifest.json", "model manifest")
	dir := flag.String("models", "models/build", "model folder")
	keep := flag.Int("keep", 1, "keep every n-th identity (1: all)")
	flip := flag.Bool("flip", false, "templates with flip test-time augmentation (the extractor's flip setting)")
	flag.Parse()
	if err := run(*corpus, *manifest, *dir, *keep, *flip); err != nil {
		fmt.Fprintln(os.Stderr, "identeval:", err)
		os.Exit(1)
	}
}

func run(corpus, manifestPath, dir string, keep int, flip bool) error {
	rt, p, err := evalenv.Open(manifestPath, dir)
	if err != nil {
		return err
	}
	defer rt.Close()
	e, err := facetemplate.NewEmbedder(rt, facetemplate.DefaultNetwork, flip)
	if err != nil {
		return err
	}
	cal, err := facetemplate.LoadCalibration(facetemplate.DefaultNetwork, flip)
	if err != nil {
		return err
	}
	photos, err := evaluation.CorpusPhotos(corpus, keep)
	if err != nil {
		return err
	}
	t, err := evaluation.ExtractTemplates(context.Background(), photos, watchlist.NewPipelineExtractor(p, e))
	if err != nil {
		return err
	}
	for _, part := range []struct {
		name string
		t    *evaluation.CorpusTemplates
	}{{"", t}, {", half A (identities 0, 2, 4, ... in name order)", t.Half(0)}, {", half B (identities 1, 3, 5, ...)", t.Half(1)}} {
		r, err := evaluation.EvalTemplates(part.t, cal, e.Dim())
		if err != nil {
			return err
		}
		fmt.Printf("watchlist identification on %s/identities (flip %t, every %d. identity%s):\n%s\n", corpus, flip, keep, part.name, r)
	}
	return nil
}
