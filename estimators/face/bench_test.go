package face_test

import (
	"context"
	"image"
	"testing"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
	"imageapid/internal/testenv"
)

// benchImage is astronaut.png resized to 640x480 (the camera frame size).
func benchImage(b *testing.B) gocv.Mat {
	src := fixture(b, "astronaut.png")
	img := gocv.NewMat()
	gocv.Resize(src, &img, image.Pt(640, 480), 0, 0, gocv.InterpolationArea)
	b.Cleanup(func() { img.Close() })
	return img
}

var delegates = []string{"xnnpack", "none"}

// BenchmarkDetect is one Detect call on a 640x480 frame, per delegate: the
// default config (here one full-range pass: the face is large and not at
// the border), every pass forced (whole, border, 2x2 tiles), and the
// short-range model for comparison.
func BenchmarkDetect(b *testing.B) {
	img := benchImage(b)
	for _, del := range delegates {
		rt := testenv.Runtime(b, del)
		for _, c := range []struct {
			name string
			cfg  face.Config
		}{
			{"default", face.Config{}},
			{"all-passes", face.Config{Tiling: "always", BorderPass: "always"}},
			{"short-single", face.Config{Detector: "short_range", Tiling: "off", BorderPass: "off"}},
		} {
			p := newPipeline(b, rt, c.cfg)
			b.Run(del+"/"+c.name, func(b *testing.B) {
				for b.Loop() {
					if _, err := p.Detect(context.Background(), img); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkFit is one Fit call (mesh, refinement when on, fda, pose).
func BenchmarkFit(b *testing.B) {
	img := benchImage(b)
	for _, del := range delegates {
		rt := testenv.Runtime(b, del)
		for _, refine := range []string{"on", "off"} {
			p := newPipeline(b, rt, face.Config{RefineMesh: refine})
			dets, err := p.Detect(context.Background(), img)
			if err != nil || len(dets) != 1 {
				b.Fatalf("want one face, got %d (%v)", len(dets), err)
			}
			b.Run(del+"/refine-"+refine, func(b *testing.B) {
				for b.Loop() {
					if _, err := p.Fit(context.Background(), img, dets[0]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkFitter is the whole face-detector-face-fitter work for one face:
// Detect and Fit with the default config.
func BenchmarkFitter(b *testing.B) {
	img := benchImage(b)
	for _, del := range delegates {
		p := newPipeline(b, testenv.Runtime(b, del), face.Config{})
		b.Run(del, func(b *testing.B) {
			for b.Loop() {
				dets, err := p.Detect(context.Background(), img)
				if err != nil || len(dets) != 1 {
					b.Fatalf("want one face, got %d (%v)", len(dets), err)
				}
				if _, err := p.Fit(context.Background(), img, dets[0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
