package facetemplate_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators"
	"imageapid/estimators/face"
	"imageapid/estimators/facetemplate"
	"imageapid/internal/evalset"
	"imageapid/internal/testenv"
	"imageapid/models/calibration"
)

func pipeline(t testing.TB) (*face.Pipeline, *facetemplate.Embedder) {
	rt := testenv.Runtime(t, "")
	p, err := face.New(rt, face.FittingConfig(filepath.Join(testenv.Root(t), "models", "build", "face_geometry.binarypb")))
	if err != nil {
		t.Fatal(err)
	}
	e, err := facetemplate.NewEmbedder(rt, facetemplate.DefaultNetwork, false)
	if err != nil {
		t.Fatal(err)
	}
	return p, e
}

func decode(b []byte) (gocv.Mat, error) { return estimators.DecodeImage(b, 50_000_000) }

// The committed table is what calibrate-verify measures on the corpus now.
func TestCalibrationReproduces(t *testing.T) {
	corpus := testenv.Shared(t, "corpus")
	if testing.Short() {
		t.Skip("re-running the calibration takes minutes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	rt := testenv.Runtime(t, "")
	p, _ := pipeline(t)
	got, err := facetemplate.CalibrateCorpus(ctx, corpus, p, rt, facetemplate.DefaultNetwork, false, decode)
	if err != nil {
		t.Fatal(err)
	}
	b, err := calibration.Files.ReadFile(facetemplate.CalibrationFile(facetemplate.DefaultNetwork, false))
	if err != nil {
		t.Fatal(err)
	}
	var want facetemplate.Calibration
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	// Round trip through JSON so both sides carry the same float formatting.
	gb, _ := json.Marshal(got)
	var gotJSON facetemplate.Calibration
	json.Unmarshal(gb, &gotJSON)
	if !reflect.DeepEqual(gotJSON, want) {
		t.Errorf("calibration differs from the committed table: got EER %v at %v over %d/%d pairs, committed %v at %v over %d/%d; run `make calibrate-verify`",
			got.EER, got.EERThreshold, got.GenuinePairs, got.ImpostorPairs, want.EER, want.EERThreshold, want.GenuinePairs, want.ImpostorPairs)
	}
}

// Verification on the evaluation set stays above floors well under what the
// eval command measures (accuracy 0.998, EER 0.1% when written).
func TestVerificationAccuracy(t *testing.T) {
	set, err := evalset.Load(testenv.Shared(t, "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	p, e := pipeline(t)
	cal, err := facetemplate.LoadCalibration(facetemplate.DefaultNetwork, false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := evalset.EvalVerification(ctx, set, cal.EERThreshold, 4, func(ctx context.Context, path string) ([]float32, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		img, err := decode(b)
		if err != nil {
			img, err = gocv.IMDecode(b, gocv.IMReadColor) // a WebP saved as .jpg
			if err != nil || img.Empty() {
				return nil, nil
			}
		}
		defer img.Close()
		return facetemplate.LargestFace(ctx, p, e, img)
	}, facetemplate.Distance)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pairs: best accuracy %.3f, at the calibrated threshold %.3f, EER %.3f, TAR@FAR=1%% %.3f",
		r.Pairs, r.BestAccuracy, r.AccuracyAtConfigured, r.EER, r.TARAtFAR1)
	if r.Pairs < 100 || r.BestAccuracy < 0.95 || r.AccuracyAtConfigured < 0.93 || r.EER > 0.05 {
		t.Errorf("verification below its floors (accuracy 0.95, 0.93 at the calibrated threshold, EER 5%%): %+v", r)
	}
}
