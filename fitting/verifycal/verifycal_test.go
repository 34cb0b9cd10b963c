package verifycal_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators"
	"imageapid/estimators/face"
	"imageapid/estimators/facetemplate"
	"imageapid/fitting/verifycal"
	"imageapid/internal/testenv"
	"imageapid/models/calibration"
)

// The committed table is what calibrate-verify measures on the corpus now.
func TestCalibrationReproduces(t *testing.T) {
	corpus := testenv.Shared(t, "corpus")
	if testing.Short() {
		t.Skip("re-running the calibration takes minutes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	rt := testenv.Runtime(t, "")
	p, err := face.New(rt, face.FittingConfig(filepath.Join(testenv.Root(t), "models", "build", "face_geometry.binarypb")))
	if err != nil {
		t.Fatal(err)
	}
	decode := func(b []byte) (gocv.Mat, error) { return estimators.DecodeImage(b, 50_000_000) }
	got, err := verifycal.CalibrateCorpus(ctx, corpus, p, rt, facetemplate.DefaultNetwork, false, decode)
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
