package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"imageapid/estimators/attributes"
	"imageapid/estimators/face"
	"imageapid/fitting/corpus"
	"imageapid/fitting/headfit"
	"imageapid/internal/evalenv"
)

// compare measures the compiled attribute networks against the heads on the
// held-out split of the corpus (model selection; never testdata): emotion
// accuracy on faces/, age MAE and gender accuracy on ages/, liveness
// accuracy on liveness/.
func compare(ctx context.Context, corpusDir, modelDir string, zooms []float64, folders []string, only string) error {
	rt, err := evalenv.Runtime(modelDir)
	if err != nil {
		return err
	}
	defer rt.Close()
	p, err := face.New(rt, face.FittingConfig(filepath.Join(modelDir, "build", "face_geometry.binarypb")))
	if err != nil {
		return err
	}
	type netEval struct {
		name string
		spec attributes.NetworkSpec
		// score returns 1 for a right answer (or the absolute error for age).
		score func(out [][]float32, f corpus.CorpusFile) (float64, bool)
	}
	humanEmotion := []string{"ANGRY", "DISGUSTED", "SCARED", "HAPPY", "SAD", "SURPRISED", "NEUTRAL"}
	evals := map[string][]netEval{
		"faces/": {{"emotion", attributes.NetworkSpec{Model: "emotion", Gray: true, Lo: -1, Hi: 1}, func(out [][]float32, f corpus.CorpusFile) (float64, bool) {
			best := 0
			for i, v := range out[0] {
				if v > out[0][best] {
					best = i
				}
			}
			return b2f(humanEmotion[best] == strings.ToUpper(f.Labels.Emotion)), true
		}}},
		"ages/": {
			{"age", attributes.NetworkSpec{Model: "age", Lo: 0, Hi: 255}, func(out [][]float32, f corpus.CorpusFile) (float64, bool) {
				return math.Abs(float64(out[0][0]) - float64(*f.Labels.Age)), true
			}},
			{"gender", attributes.NetworkSpec{Model: "gender", Gray: true, Lo: -1, Hi: 1}, func(out [][]float32, f corpus.CorpusFile) (float64, bool) {
				female := out[0][0] > out[0][1]
				return b2f(female == (f.Labels.Gender == "female")), true
			}},
			{"faceres-age", attributes.NetworkSpec{Model: "faceres", BGR: true, Lo: 0, Hi: 255}, func(out [][]float32, f corpus.CorpusFile) (float64, bool) {
				var age float64
				for i, v := range out[2] {
					age += float64(i) * float64(v)
				}
				return math.Abs(age - float64(*f.Labels.Age)), true
			}},
			{"faceres-gender", attributes.NetworkSpec{Model: "faceres", BGR: true, Lo: 0, Hi: 255}, func(out [][]float32, f corpus.CorpusFile) (float64, bool) {
				return b2f((out[0][0] < 0.5) == (f.Labels.Gender == "female")), true
			}},
			{"faceapi-age", attributes.NetworkSpec{Model: "faceapi_age_gender", Lo: 0, Hi: 255}, faceAPIAge},
			{"faceapi-gender", attributes.NetworkSpec{Model: "faceapi_age_gender", Lo: 0, Hi: 255}, faceAPIGender},
			{"faceapi-age-mirror", attributes.NetworkSpec{Model: "faceapi_age_gender", Lo: 0, Hi: 255, Mirror: true}, faceAPIAge},
			{"faceapi-gender-mirror", attributes.NetworkSpec{Model: "faceapi_age_gender", Lo: 0, Hi: 255, Mirror: true}, faceAPIGender},
			{"faceapi-box-age", attributes.NetworkSpec{Model: "faceapi_age_gender", Lo: 0, Hi: 255, Box: 0.2}, faceAPIAge},
			{"faceapi-box-gender", attributes.NetworkSpec{Model: "faceapi_age_gender", Lo: 0, Hi: 255, Box: 0.2}, faceAPIGender},
			{"faceapi-box0.1-age-mirror", attributes.NetworkSpec{Model: "faceapi_age_gender", Lo: 0, Hi: 255, Box: 0.1, Mirror: true}, faceAPIAge},
			{"faceapi-box0.1-gender-mirror", attributes.NetworkSpec{Model: "faceapi_age_gender", Lo: 0, Hi: 255, Box: 0.1, Mirror: true}, faceAPIGender},
			{"faceapi-box0.05-age", attributes.NetworkSpec{Model: "faceapi_age_gender", Lo: 0, Hi: 255, Box: 0.05}, faceAPIAge},
			{"faceapi-box0.05-gender", attributes.NetworkSpec{Model: "faceapi_age_gender", Lo: 0, Hi: 255, Box: 0.05}, faceAPIGender},
			{"faceapi-box-age-mirror", attributes.NetworkSpec{Model: "faceapi_age_gender", Lo: 0, Hi: 255, Box: 0.2, Mirror: true}, faceAPIAge},
			{"faceapi-box-gender-mirror", attributes.NetworkSpec{Model: "faceapi_age_gender", Lo: 0, Hi: 255, Box: 0.2, Mirror: true}, faceAPIGender},
		},
		"liveness/": {
			{"antispoof", attributes.NetworkSpec{Model: "antispoof", Lo: 0, Hi: 1}, func(out [][]float32, f corpus.CorpusFile) (float64, bool) {
				return b2f((out[0][0] >= 0.5) == (f.Labels.Liveness == "REAL")), true
			}},
			{"liveness", attributes.NetworkSpec{Model: "liveness", Lo: 0, Hi: 1}, func(out [][]float32, f corpus.CorpusFile) (float64, bool) {
				return b2f((out[0][0] >= 0.5) == (f.Labels.Liveness == "REAL")), true
			}},
		},
	}
	for folder, list := range evals {
		var kept []netEval
		for _, ev := range list {
			if strings.Contains(ev.name, only) {
				kept = append(kept, ev)
			}
		}
		evals[folder] = kept
	}
	for _, folder := range folders {
		files, err := corpus.ReadCorpus(corpusDir, folder)
		if err != nil {
			return err
		}
		type acc struct{ sum, n float64 }
		res := map[string]*acc{}
		nets := map[string]*attributes.Network{}
		for _, ev := range evals[folder] {
			for _, z := range zooms {
				spec := ev.spec
				spec.Zoom = z
				n, err := attributes.NewNetwork(rt, spec)
				if err != nil {
					return err
				}
				key := fmt.Sprintf("%s zoom %.2f", ev.name, z)
				nets[key] = n
				res[key] = &acc{}
			}
		}
		for _, f := range files {
			if !headfit.Heldout(f.Path, headfit.Seed) {
				continue
			}
			raw, err := os.ReadFile(filepath.Join(corpusDir, f.Path))
			if err != nil {
				return err
			}
			img, err := corpus.Decode(raw)
			if err != nil {
				continue
			}
			known, err := largest(ctx, p, img)
			if err != nil {
				img.Close()
				return err
			}
			l, err := attributes.LocateLargest(ctx, p, img, known)
			if err != nil || l.Source == attributes.Boxed {
				img.Close()
				continue
			}
			for _, ev := range evals[folder] {
				for _, z := range zooms {
					key := fmt.Sprintf("%s zoom %.2f", ev.name, z)
					out, err := nets[key].Run(ctx, img, &l.Face)
					if err != nil {
						img.Close()
						return err
					}
					if v, ok := ev.score(out, f); ok {
						res[key].sum += v
						res[key].n++
					}
				}
			}
			img.Close()
		}
		for _, ev := range evals[folder] {
			for _, z := range zooms {
				key := fmt.Sprintf("%s zoom %.2f", ev.name, z)
				r := res[key]
				fmt.Printf("%-12s %-28s %.4f (n=%d)\n", folder, key, r.sum/math.Max(1, r.n), int(r.n))
			}
		}
	}
	return nil
}

// faceAPIAge and faceAPIGender score face-api's AgeGenderNet (outputs: age,
// softmax [male, female]).
func faceAPIAge(out [][]float32, f corpus.CorpusFile) (float64, bool) {
	return math.Abs(float64(out[0][0]) - float64(*f.Labels.Age)), true
}

func faceAPIGender(out [][]float32, f corpus.CorpusFile) (float64, bool) {
	return b2f((out[1][1] > out[1][0]) == (f.Labels.Gender == "female")), true
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// parseFloats reads a comma-separated list of numbers.
func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("bad number %q: %w", f, err)
		}
		out = append(out, v)
	}
	return out, nil
}
