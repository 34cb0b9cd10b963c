package facetemplate_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators"
	"imageapid/estimators/face"
	"imageapid/estimators/facetemplate"
	"imageapid/internal/evalset"
	"imageapid/internal/testenv"
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
