// Command devicecal measures, on the photos of ../shared/corpus, how strongly
// the object detector sees a phone, screen or book holding the largest face,
// per source and label, and prints the per-frame threshold the sessions use
// (device_min_score): the first step of 0.01 above all but the top 0.5% of
// live photos' scores (a session counts a device only when it is seen in
// two checks and half of them, so one stray frame does not fail it).
//
//	go run ./fitting/cmd/devicecal --corpus ../shared/corpus
//
// Live photos: corpus/identities, the REAL halves of corpus/liveness and
// corpus/liveness2. Attacks: their FAKE halves (mostly tight crops, where
// the device is rarely in view, so the catch rate is shown, not fitted).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"gocv.io/x/gocv"

	"imageapid/estimators/facetemplate"
	"imageapid/internal/evalenv"
	"imageapid/sessions"
)

type photo struct {
	path, source string
	live         bool
}

func main() {
	corpus := flag.String("corpus", "../shared/corpus", "the fitting corpus")
	manifest := flag.String("manifest", "models/manifest.json", "model manifest")
	dir := flag.String("models", "models/build", "model files")
	flag.Parse()
	if err := run(*corpus, *manifest, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "devicecal:", err)
		os.Exit(1)
	}
}

func run(corpus, manifest, dir string) error {
	photos, err := listPhotos(corpus)
	if err != nil {
		return err
	}
	rt, faces, err := evalenv.Open(manifest, dir)
	if err != nil {
		return err
	}
	defer rt.Close()
	a, err := sessions.LoadAnalyzer(rt, faces, facetemplate.DefaultNetwork, false)
	if err != nil {
		return err
	}
	ctx := context.Background()
	type group struct {
		scores []float64
		bezels int
		noFace int
	}
	groups := map[string]*group{}
	var live []float64
	for _, p := range photos {
		img := gocv.IMRead(p.path, gocv.IMReadColor)
		if img.Empty() {
			return fmt.Errorf("read %s", p.path)
		}
		_, score, bezel, found, err := a.DeviceAround(ctx, img, 0.02)
		img.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p.path, err)
		}
		key := p.source + " " + label(p.live)
		g := groups[key]
		if g == nil {
			g = &group{}
			groups[key] = g
		}
		if !found {
			g.noFace++
			continue
		}
		g.scores = append(g.scores, score)
		if bezel {
			g.bezels++
		}
		if p.live {
			live = append(live, score)
		}
	}
	if len(live) == 0 {
		return fmt.Errorf("no live photo with a face")
	}
	sort.Float64s(live)
	q995 := live[int(math.Ceil(0.995*float64(len(live))))-1]
	threshold := math.Floor(q995*100)/100 + 0.01
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Printf("device_min_score = %.2f (live photos: %d, 99.5th percentile %.3f, highest %.3f, at or above the threshold %d)\n\n",
		threshold, len(live), q995, live[len(live)-1], len(live)-sort.SearchFloat64s(live, threshold))
	fmt.Println("| source label | photos with a face | no face | p50 | p90 | max | at or above threshold | bezel |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, k := range keys {
		g := groups[k]
		s := g.scores
		sort.Float64s(s)
		q := func(f float64) float64 {
			if len(s) == 0 {
				return 0
			}
			return s[int(f*float64(len(s)-1))]
		}
		hits := len(s) - sort.SearchFloat64s(s, threshold)
		fmt.Printf("| %s | %d | %d | %.3f | %.3f | %.3f | %d | %d |\n", k, len(s), g.noFace, q(.5), q(.9), q(1), hits, g.bezels)
	}
	return nil
}

func label(live bool) string {
	if live {
		return "live"
	}
	return "attack"
}

func listPhotos(corpus string) ([]photo, error) {
	var out []photo
	add := func(pattern, source string, live bool) error {
		files, err := filepath.Glob(filepath.Join(corpus, pattern))
		if err != nil {
			return err
		}
		for _, f := range files {
			out = append(out, photo{f, source, live})
		}
		return nil
	}
	for _, g := range []struct {
		pattern, source string
		live            bool
	}{
		{"identities/*/*", "identities", true},
		{"liveness/real/*", "liveness", true},
		{"liveness/fake/*", "liveness", false},
	} {
		if err := add(g.pattern, g.source, g.live); err != nil {
			return nil, err
		}
	}
	b, err := os.ReadFile(filepath.Join(corpus, "liveness2", "manifest.json"))
	if err != nil {
		return nil, err
	}
	var m struct {
		Files []struct {
			Path   string `json:"path"`
			Source string `json:"identity_group"`
			Labels struct {
				Liveness string `json:"liveness"`
			} `json:"labels"`
		} `json:"files"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("liveness2 manifest: %w", err)
	}
	for _, f := range m.Files {
		out = append(out, photo{filepath.Join(corpus, "liveness2", f.Path), "liveness2/" + f.Source, f.Labels.Liveness == "REAL"})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no photos under %s", corpus)
	}
	return out, nil
}
