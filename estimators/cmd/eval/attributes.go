package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"imageapid/estimators"
)

// attributeLabels are the testdata labels the attribute task reads.
type attributeLabels struct {
	Age      *float64 `json:"age"`
	Gender   *string  `json:"gender"`
	Emotion  *string  `json:"emotion"`
	Mask     *bool    `json:"mask"`
	Liveness *string  `json:"liveness"`
}

// testdataEmotions maps the testdata's emotion labels to the API's; contempt has no counterpart.
var testdataEmotions = map[string]string{
	"angry": "ANGRY", "disgust": "DISGUSTED", "fear": "SCARED", "happy": "HAPPY",
	"neutral": "NEUTRAL", "sad": "SAD", "surprise": "SURPRISED",
}

// evalAttributes runs the attribute and liveness services on the whole
// image of every labelled file (the largest face, as a client sending
// objects [{}] gets) and prints one table: age MAE, gender accuracy, 7-class
// emotion accuracy, mask accuracy, liveness APCER/BPCER/ACER at the
// configured thresholds, and the share of images where the detector found
// no face (the services then fall back to fitting the mesh on the image).
func evalAttributes(ctx context.Context, e *env) error {
	labels, sources, err := readAttributeLabels(e.set.Dir)
	if err != nil {
		return err
	}
	p, err := e.facePipeline()
	if err != nil {
		return err
	}
	ests, err := estimators.Build(estimators.Deps{Models: e.rt, Faces: p, Log: slog.New(slog.DiscardHandler)},
		[]string{"age-estimator", "gender-estimator", "emotion-estimator", "mask-estimator",
			"face-detector-liveness-estimator", "liveness-anti-spoofing"})
	if err != nil {
		return err
	}
	byName := map[string]estimators.Estimator{}
	for _, est := range ests {
		byName[est.Name()] = est
	}
	// run processes one image with one service and returns its first face object.
	run := func(path, service string) (*estimators.Object, bool, error) {
		img, err := e.imageAt(e.set.Path(path))
		if err != nil {
			return nil, false, err
		}
		s := estimators.NewSample(nil, img, nil)
		defer s.Close()
		dets, err := p.Detect(ctx, img)
		if err != nil {
			return nil, false, err
		}
		if err := byName[service].Process(ctx, s); err != nil {
			return nil, false, fmt.Errorf("%s %s: %w", service, path, err)
		}
		for _, o := range s.Objects {
			if o.String("class") == "face" {
				return o, len(dets) == 0, nil
			}
		}
		return nil, len(dets) == 0, nil
	}
	type row struct {
		name, figure, target string
		n, noFace            int
	}
	var rows []row
	paths := make([]string, 0, len(labels))
	for p := range labels {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	var absErr float64
	var nAge, nGender, okGender, noAge, noGender int
	var nEmo, okEmo, noEmo, nMask, okMask, noMask, noLive int
	for _, path := range paths {
		l := labels[path]
		if l.Age != nil {
			o, miss, err := run(path, "age-estimator")
			if err != nil {
				return err
			}
			var age float64
			o.Get("age", &age)
			absErr += math.Abs(age - *l.Age)
			nAge++
			if miss {
				noAge++
			}
			e.logf("age %s: %v (label %v)", path, age, *l.Age)
		}
		if l.Gender != nil {
			o, miss, err := run(path, "gender-estimator")
			if err != nil {
				return err
			}
			nGender++
			if strings.EqualFold(o.String("gender"), *l.Gender) {
				okGender++
			}
			if miss {
				noGender++
			}
		}
		if l.Emotion != nil {
			want, ok := testdataEmotions[*l.Emotion]
			if ok {
				o, miss, err := run(path, "emotion-estimator")
				if err != nil {
					return err
				}
				nEmo++
				if o.String("emotion") == want {
					okEmo++
				}
				if miss {
					noEmo++
				}
				e.logf("emotion %s: %s (label %s)", path, o.String("emotion"), want)
			}
		}
		if l.Mask != nil {
			o, miss, err := run(path, "mask-estimator")
			if err != nil {
				return err
			}
			var m struct{ Value bool }
			o.Get("mask", &m)
			nMask++
			if m.Value == *l.Mask {
				okMask++
			}
			if miss {
				noMask++
			}
		}
	}
	rows = append(rows,
		row{"age MAE (years)", fmt.Sprintf("%.2f", absErr/math.Max(1, float64(nAge))), "<= 8", nAge, noAge},
		row{"gender accuracy", fmt.Sprintf("%.3f", ratio(okGender, nGender)), ">= 0.92", nGender, noGender},
		row{"emotion accuracy (7 classes)", fmt.Sprintf("%.3f", ratio(okEmo, nEmo)), ">= 0.55", nEmo, noEmo},
		row{"mask accuracy", fmt.Sprintf("%.3f", ratio(okMask, nMask)), ">= 0.92", nMask, noMask},
	)
	// Per source: where the heads were not fitted, the figure says how far
	// they generalise (leave-one-source-out is the only honest view of it).
	type tally struct{ attacks, passed, reals, rejected int }
	var bySource []string
	for _, service := range []string{"face-detector-liveness-estimator", "liveness-anti-spoofing"} {
		var attacks, passed, reals, rejected int
		per := map[string]*tally{}
		noLive = 0
		for _, path := range paths {
			l := labels[path]
			if l.Liveness == nil {
				continue
			}
			o, miss, err := run(path, service)
			if err != nil {
				return err
			}
			if miss {
				noLive++
			}
			value := "FAKE" // no face: nothing is accepted as live
			if o != nil {
				var lv struct{ Value string }
				o.Get("liveness", &lv)
				value = lv.Value
			}
			src := per[sources[path]]
			if src == nil {
				src = &tally{}
				per[sources[path]] = src
			}
			if *l.Liveness == "FAKE" {
				attacks++
				src.attacks++
				if value == "REAL" {
					passed++
					src.passed++
				}
			} else {
				reals++
				src.reals++
				if value != "REAL" {
					rejected++
					src.rejected++
				}
			}
			e.logf("liveness %s %s: %s (label %s)", service, path, value, *l.Liveness)
		}
		apcer, bpcer := ratio(passed, attacks), ratio(rejected, reals)
		rows = append(rows, row{"liveness " + service + " APCER/BPCER/ACER",
			fmt.Sprintf("%.3f/%.3f/%.3f", apcer, bpcer, (apcer+bpcer)/2), "ACER <= 0.20", attacks + reals, noLive})
		names := make([]string, 0, len(per))
		for name := range per {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			t := per[name]
			bySource = append(bySource, fmt.Sprintf("%-34s %-40s APCER %s (%2d attacks)  BPCER %s (%2d live)",
				service, name, fraction(t.passed, t.attacks), t.attacks, fraction(t.rejected, t.reals), t.reals))
		}
	}
	fmt.Fprintf(e.out, "   %-62s %-18s %-12s %5s %s\n", "figure (float heads)", "value", "dev target", "n", "no face detected")
	for _, r := range rows {
		fmt.Fprintf(e.out, "   %-62s %-18s %-12s %5d %.3f\n", r.name, r.figure, r.target, r.n, ratio(r.noFace, r.n))
	}
	if len(bySource) > 0 {
		fmt.Fprintln(e.out, "   liveness by source:")
		for _, line := range bySource {
			fmt.Fprintln(e.out, "     "+line)
		}
	}
	return nil
}

// fraction prints a/b, or "-" when there is nothing to count.
func fraction(a, b int) string {
	if b == 0 {
		return "    -"
	}
	return fmt.Sprintf("%.3f", float64(a)/float64(b))
}

func ratio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

func (e *env) logf(format string, args ...any) {
	if e.verbose {
		fmt.Fprintf(e.out, "     "+format+"\n", args...)
	}
}

// readAttributeLabels returns the labels of each labelled image and its
// source (the manifest's identity group, else its repository).
func readAttributeLabels(dir string) (map[string]attributeLabels, map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, nil, err
	}
	var m struct {
		Files []struct {
			Path   string          `json:"path"`
			Labels attributeLabels `json:"labels"`
			Group  string          `json:"identity_group"`
			Source struct {
				Repo string `json:"repo"`
			} `json:"source"`
		} `json:"files"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	out, sources := map[string]attributeLabels{}, map[string]string{}
	for _, f := range m.Files {
		l := f.Labels
		if filepath.Ext(f.Path) == ".mp4" {
			continue
		}
		if l.Age != nil || l.Gender != nil || l.Emotion != nil || l.Mask != nil || l.Liveness != nil {
			out[f.Path] = l
			sources[f.Path] = f.Source.Repo
			if f.Group != "" {
				sources[f.Path] = f.Group
			}
		}
	}
	return out, sources, nil
}
