// Command calibrate-verify measures the verify-matcher's error rates on the
// identities of the calibration corpus (every pair of photos of one person
// is genuine, every pair of different people an impostor) and writes the
// table the matcher ships with:
//
//	go run ./fitting/cmd/calibrate-verify --corpus ../shared/corpus
//
// It never reads the evaluation set.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators"
	"imageapid/estimators/face"
	"imageapid/estimators/facetemplate"
	"imageapid/fitting/verifycal"
	"imageapid/internal/evalenv"
)

func main() {
	corpus := flag.String("corpus", "../shared/corpus", "calibration corpus with manifest.json and identities/")
	modelDir := flag.String("models", "models", "folder with manifest.json, build/ and calibration/")
	network := flag.String("network", facetemplate.DefaultNetwork, "embedding network")
	flip := flag.Bool("flip", false, "horizontal-flip test-time augmentation")
	out := flag.String("out", "", "output file (default models/calibration/<table>)")
	timeout := flag.Duration("timeout", 30*time.Minute, "give up after this long")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if *out == "" {
		*out = filepath.Join(*modelDir, "calibration", facetemplate.CalibrationFile(*network, *flip))
	}
	if err := run(ctx, *corpus, *modelDir, *network, *flip, *out); err != nil {
		fmt.Fprintln(os.Stderr, "calibrate-verify:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, corpus, modelDir, network string, flip bool, out string) error {
	rt, err := evalenv.Runtime(modelDir)
	if err != nil {
		return err
	}
	defer rt.Close()
	p, err := face.New(rt, face.FittingConfig(filepath.Join(modelDir, "build", "face_geometry.binarypb")))
	if err != nil {
		return err
	}
	c, err := verifycal.CalibrateCorpus(ctx, corpus, p, rt, network, flip, func(b []byte) (gocv.Mat, error) {
		return estimators.DecodeImage(b, 50_000_000)
	})
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: %d images (%d without a face), %d genuine and %d impostor pairs, EER %.4f at distance %.3f\n",
		out, c.Images, c.ImagesNoFace, c.GenuinePairs, c.ImpostorPairs, c.EER, c.EERThreshold)
	return nil
}
