package body_test

import (
	"context"
	"os"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators"
	"imageapid/estimators/body"
	"imageapid/internal/evalset"
	"imageapid/internal/testenv"
)

func detector(t testing.TB, cfg body.Config) *body.Detector {
	t.Helper()
	d, err := body.New(testenv.Runtime(t, ""), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func decodeFile(t testing.TB, b []byte) gocv.Mat {
	t.Helper()
	img, err := estimators.DecodeImage(b, 50_000_000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

func TestFixtures(t *testing.T) {
	d := detector(t, body.Config{Detector: "pose"})
	ctx := context.Background()
	cases := []struct {
		name   string
		people int
	}{{"camera.png", 1}, {"messi5.jpg", 1}, {"astronaut.png", 1}, {"coffee.png", 0}, {"chelsea.png", 0}}
	for _, c := range cases {
		img := decodeFile(t, testenv.ReadFixture(t, c.name))
		ps, err := d.Detect(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != c.people {
			t.Errorf("%s: %d people, want %d", c.name, len(ps), c.people)
			continue
		}
		for _, p := range ps {
			face := p.Face
			// The body box holds the face and is much taller than it.
			if !(p.X1 <= face[0]+2 && p.Y1 <= face[1]+2 && p.X2 >= face[2]-2 && p.Y2-p.Y1 > 2.5*(face[3]-face[1])) {
				t.Errorf("%s: body %.0f,%.0f-%.0f,%.0f does not hold the face %v with room for a body", c.name, p.X1, p.Y1, p.X2, p.Y2, face)
			}
			if p.Score < 0.5 || p.Score > 1 || p.Presence < 0.5 {
				t.Errorf("%s: score %v presence %v", c.name, p.Score, p.Presence)
			}
		}
	}
	// A stricter threshold is honoured.
	strict := detector(t, body.Config{Detector: "pose", MinScore: 0.99})
	if ps, _ := strict.Detect(ctx, decodeFile(t, testenv.ReadFixture(t, "camera.png"))); len(ps) != 0 {
		t.Errorf("min_score 0.99 still found %d people in camera.png", len(ps))
	}
	if _, err := body.New(testenv.Runtime(t, ""), body.Config{MinScore: 1.5}); err == nil {
		t.Error("min_score 1.5 was accepted")
	}
	if _, err := body.New(testenv.Runtime(t, ""), body.Config{Detector: "yolo"}); err == nil {
		t.Error("detector yolo was accepted")
	}
}

// The CenterNet detector boxes the whole visible person straight from the
// network: one tall box in the portrait and the camera-man photo, nobody in
// the cat and coffee photos.
func TestCenterNetFixtures(t *testing.T) {
	d := detector(t, body.Config{Detector: "centernet"})
	ctx := context.Background()
	cases := []struct {
		name   string
		people int
	}{{"camera.png", 1}, {"astronaut.png", 1}, {"coffee.png", 0}, {"chelsea.png", 0}}
	for _, c := range cases {
		img := decodeFile(t, testenv.ReadFixture(t, c.name))
		ps, err := d.Detect(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != c.people {
			t.Errorf("%s: %d people %v, want %d", c.name, len(ps), ps, c.people)
			continue
		}
		h := float64(img.Rows())
		for _, p := range ps {
			if !(p.X1 >= 0 && p.X1 < p.X2 && p.X2 <= float64(img.Cols()) && p.Y1 >= 0 && p.Y1 < p.Y2 && p.Y2 <= h) {
				t.Errorf("%s: box %.0f,%.0f-%.0f,%.0f is not inside the image", c.name, p.X1, p.Y1, p.X2, p.Y2)
			}
			if p.Y2-p.Y1 < 0.5*h {
				t.Errorf("%s: box %.0f,%.0f-%.0f,%.0f is too short for the person filling the picture", c.name, p.X1, p.Y1, p.X2, p.Y2)
			}
			if p.Score < 0.2 || p.Score > 1 {
				t.Errorf("%s: score %v", c.name, p.Score)
			}
		}
	}
	// The person in messi5.jpg is found with a body-sized box.
	img := decodeFile(t, testenv.ReadFixture(t, "messi5.jpg"))
	ps, err := d.Detect(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) == 0 || ps[0].Y2-ps[0].Y1 < 0.33*float64(img.Rows()) {
		t.Errorf("messi5.jpg: %v, want the player first with a box at least a third of the image tall", ps)
	}
	strict := detector(t, body.Config{Detector: "centernet", MinScore: 0.99})
	if ps, _ := strict.Detect(ctx, decodeFile(t, testenv.ReadFixture(t, "camera.png"))); len(ps) != 0 {
		t.Errorf("min_score 0.99 still found %d people in camera.png", len(ps))
	}
}

// Recall, precision and count accuracy on the evaluation set stay above
// floors under what the eval command measures (see the report there), for
// each detector.
func TestTestdataFloors(t *testing.T) {
	set, err := evalset.Load(testenv.Shared(t, "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		cfg                      body.Config
		recall, precision, count float64
	}{
		// Measured: recall 0.643, precision 0.409, count accuracy 0.824.
		{body.Config{Detector: "centernet"}, 0.55, 0.35, 0.75},
		// CenterNet at a 320 px input (about 2.5x cheaper). Measured:
		// recall 0.429, precision 0.333, count accuracy 0.882.
		{body.Config{Detector: "centernet", Model: "centernet_320"}, 0.35, 0.28, 0.8},
		// MoveNet MultiPose's person heads. Measured: recall 0.357,
		// precision 0.455, count accuracy 0.529.
		{body.Config{Detector: "movenet"}, 0.3, 0.4, 0.45},
		// Measured: recall 0.286, precision 0.500, count accuracy 0.647.
		{body.Config{Detector: "pose"}, 0.25, 0.45, 0.55},
	}
	for _, c := range cases {
		name := c.cfg.Detector
		if c.cfg.Model != "" {
			name += "/" + c.cfg.Model
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			d := detector(t, c.cfg)
			r, err := evalset.EvalBodies(ctx, set, func(ctx context.Context, path string) ([][4]float64, error) {
				b, err := os.ReadFile(path)
				if err != nil {
					return nil, err
				}
				ps, err := d.Detect(ctx, decodeFile(t, b))
				if err != nil {
					return nil, err
				}
				out := make([][4]float64, len(ps))
				for i, p := range ps {
					out[i] = [4]float64{p.X1, p.Y1, p.X2, p.Y2}
				}
				return out, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("recall %.3f precision %.3f count accuracy %.3f", r.Recall(), r.Precision(), r.CountAccuracy())
			if r.Recall() < c.recall || r.Precision() < c.precision || r.CountAccuracy() < c.count {
				t.Errorf("body detection below its floors (recall %.2f, precision %.2f, count %.2f): %+v",
					c.recall, c.precision, c.count, r)
			}
		})
	}
}
