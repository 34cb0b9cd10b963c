// Command scorefit fits camera.HOGScore, the logistic (Platt) map from the
// HOG people detector's SVM margins to probabilities, and prints it for
// camera/score.go.
//
// There is no labelled person data to fit on outside the evaluation sets
// (../shared/corpus holds face photos; testdata and tracking are evaluation
// only), so the labels come from a surer detector: on every step-th frame of
// the sample clip vtest.avi (OpenCV's sample video, a fixture, not evaluation
// data), a HOG detection is right when a CenterNet person detection of score
// at least 0.5 overlaps it by IoU 0.5 or more. The fitted probability is thus
// "CenterNet agrees", the closest to "a person is there" these images allow.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"

	"gocv.io/x/gocv"

	"imageapid/camera"
	"imageapid/estimators/body"
	"imageapid/models"
)

func main() {
	clip := flag.String("clip", "third_party/fixtures/vtest.avi", "video to fit on")
	modelDir := flag.String("models", "models", "model folder (manifest.json and build/)")
	step := flag.Int("step", 4, "use every step-th frame")
	flag.Parse()
	if err := run(context.Background(), *clip, *modelDir, *step); err != nil {
		fmt.Fprintln(os.Stderr, "scorefit:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, clip, modelDir string, step int) error {
	m, err := models.LoadManifest(filepath.Join(modelDir, "manifest.json"))
	if err != nil {
		return err
	}
	rt, err := models.NewRuntime(m, models.Options{Dir: filepath.Join(modelDir, "build"), Threads: 2, Pool: 1}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer rt.Close()
	ref, err := body.New(rt, body.Config{Detector: "centernet", MinScore: 0.5})
	if err != nil {
		return err
	}
	// As the daemon builds hog-people, but with raw margins.
	hog, err := camera.NewHOGPeople(camera.HOGPeopleConfig{Scale: 1.1, Margins: true})
	if err != nil {
		return err
	}
	defer hog.Close()
	vc, err := gocv.VideoCaptureFile(clip)
	if err != nil {
		return fmt.Errorf("open %s: %w", clip, err)
	}
	defer vc.Close()
	img := gocv.NewMat()
	defer img.Close()
	var margins, labels []float64
	frames := 0
	for i := 0; vc.Read(&img) && !img.Empty(); i++ {
		if i%step != 0 {
			continue
		}
		frames++
		dets, err := hog.Detect(ctx, img)
		if err != nil {
			return err
		}
		people, err := ref.Detect(ctx, img)
		if err != nil {
			return err
		}
		w, h := float64(img.Cols()), float64(img.Rows())
		for _, d := range dets {
			label := 0.0
			for _, p := range people {
				if d.Box.IoU(camera.Box{p.X1 / w, p.Y1 / h, p.X2 / w, p.Y2 / h}) >= 0.5 {
					label = 1
					break
				}
			}
			margins, labels = append(margins, d.Score), append(labels, label)
		}
	}
	pos := 0
	for _, l := range labels {
		pos += int(l)
	}
	if pos == 0 || pos == len(labels) {
		return fmt.Errorf("%d detections, %d right: need both kinds to fit", len(labels), pos)
	}
	a, b := platt(margins, labels)
	fmt.Printf("%s: %d frames (every %d-th), %d HOG detections, %d confirmed by CenterNet\n", clip, frames, step, len(labels), pos)
	fmt.Printf("var HOGScore = Calibration{A: %.4f, B: %.4f}\n", a, b)
	for _, x := range []float64{0, 0.5, 1, 2, 3} {
		fmt.Printf("  margin %.1f -> %.3f\n", x, 1/(1+math.Exp(a*x+b)))
	}
	return nil
}

// platt fits p = 1/(1+exp(a*x+b)) to labels by Newton's method on the log
// likelihood, with Platt's (1999) smoothed targets, which keep a separable
// sample from driving a to infinity.
func platt(x, y []float64) (a, b float64) {
	var nPos, nNeg float64
	for _, l := range y {
		if l > 0 {
			nPos++
		} else {
			nNeg++
		}
	}
	hi, lo := (nPos+1)/(nPos+2), 1/(nNeg+2)
	t := make([]float64, len(y))
	for i, l := range y {
		t[i] = lo
		if l > 0 {
			t[i] = hi
		}
	}
	b = math.Log((nNeg + 1) / (nPos + 1))
	for iter := 0; iter < 100; iter++ {
		// Gradient and Hessian of the negative log likelihood in (a, b).
		var ga, gb, haa, hab, hbb float64
		for i := range x {
			p := 1 / (1 + math.Exp(a*x[i]+b))
			d := t[i] - p // d(-loglik)/d(a*x+b)
			ga += d * x[i]
			gb += d
			v := p * (1 - p)
			haa += v * x[i] * x[i]
			hab += v * x[i]
			hbb += v
		}
		haa, hbb = haa+1e-12, hbb+1e-12
		det := haa*hbb - hab*hab
		if det <= 0 {
			break
		}
		da := (hbb*ga - hab*gb) / det
		db := (haa*gb - hab*ga) / det
		a, b = a-da, b-db
		if math.Abs(da) < 1e-10 && math.Abs(db) < 1e-10 {
			break
		}
	}
	return a, b
}
