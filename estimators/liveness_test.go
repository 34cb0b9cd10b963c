package estimators_test

import (
	"context"
	"log/slog"
	"math"
	"path/filepath"
	"testing"

	"imageapid/estimators"
	"imageapid/estimators/attributes"
	"imageapid/estimators/face"
	"imageapid/internal/testenv"
)

// attributes.Liveness.Score, the entry point for callers outside this
// package, gives the confidences the two liveness services report for the
// same face.
func TestLivenessScoreMatchesServices(t *testing.T) {
	ctx := context.Background()
	rt := testenv.Runtime(t, "")
	faces, err := face.New(rt, face.Config{GeometryFile: filepath.Join(testenv.Root(t), "models", "build", "face_geometry.binarypb")})
	if err != nil {
		t.Fatal(err)
	}
	img, err := estimators.DecodeImage(testenv.ReadFixture(t, "astronaut.png"), 50_000_000)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()

	l, err := attributes.NewLiveness(rt)
	if err != nil {
		t.Fatal(err)
	}
	dets, err := faces.Detect(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 1 {
		t.Fatalf("%d faces in astronaut.png, want 1", len(dets))
	}
	fitted, err := faces.Fit(ctx, img, dets[0])
	if err != nil {
		t.Fatal(err)
	}
	loc, err := attributes.LocateLargest(ctx, faces, img, []face.Face{fitted})
	if err != nil {
		t.Fatal(err)
	}
	texture, deep, err := l.Score(ctx, img, &loc)
	if err != nil {
		t.Fatal(err)
	}

	deps := estimators.Deps{Models: rt, Faces: faces, Log: slog.New(slog.DiscardHandler)}
	for _, c := range []struct {
		service string
		want    float64
	}{{"face-detector-liveness-estimator", texture}, {"liveness-anti-spoofing", deep}} {
		ests, err := estimators.Build(deps, []string{c.service})
		if err != nil {
			t.Fatal(err)
		}
		s := estimators.NewSample(nil, img.Clone(), nil)
		if err := ests[0].Process(ctx, s); err != nil {
			t.Fatal(err)
		}
		var l struct {
			Confidence float64 `json:"confidence"`
		}
		if len(s.Objects) != 1 {
			t.Fatalf("%s: %d objects", c.service, len(s.Objects))
		}
		if ok, err := s.Objects[0].Get("liveness", &l); !ok || err != nil {
			t.Fatalf("%s: no liveness (%v)", c.service, err)
		}
		s.Close()
		if math.Abs(l.Confidence-c.want) > 1e-5 {
			t.Errorf("%s: confidence %v, Liveness.Score %v", c.service, l.Confidence, c.want)
		}
		t.Logf("%s: %.4f", c.service, c.want)
	}
}
