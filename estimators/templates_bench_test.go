package estimators_test

import (
	"context"
	"image"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"

	"imageapid/estimators"
	"imageapid/estimators/body"
	"imageapid/estimators/face"
	"imageapid/estimators/facetemplate"
	"imageapid/internal/testenv"
)

// frame640 is a fixture resized to 640x480 (the camera frame size).
func frame640(b *testing.B, name string) gocv.Mat {
	img, err := estimators.DecodeImage(testenv.ReadFixture(b, name), 50_000_000)
	if err != nil {
		b.Fatal(err)
	}
	defer img.Close()
	out := gocv.NewMat()
	gocv.Resize(img, &out, image.Pt(640, 480), 0, 0, gocv.InterpolationArea)
	b.Cleanup(func() { out.Close() })
	return out
}

// BenchmarkTemplatesAndBodies measures, in one run: face detection (the
// baseline every face service pays), one template from an already fitted
// face (alignment + embedding, float model; with and without flip), and
// the body detectors on a 640x480 frame (pose with and without the landmark
// stage that confirms people and sizes their boxes, and centernet).
func BenchmarkTemplatesAndBodies(b *testing.B) {
	ctx := context.Background()
	rt := testenv.Runtime(b, "")
	faces, err := face.New(rt, face.Config{GeometryFile: filepath.Join(testenv.Root(b), "models", "build", "face_geometry.binarypb")})
	if err != nil {
		b.Fatal(err)
	}
	portrait := frame640(b, "astronaut.png")
	dets, err := faces.Detect(ctx, portrait)
	if err != nil || len(dets) == 0 {
		b.Fatalf("no face in the benchmark frame: %v", err)
	}
	fitted, err := faces.Fit(ctx, portrait, dets[0])
	if err != nil {
		b.Fatal(err)
	}
	b.Run("baseline=face-detect", func(b *testing.B) {
		for b.Loop() {
			if _, err := faces.Detect(ctx, portrait); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, flip := range []bool{false, true} {
		e, err := facetemplate.NewEmbedder(rt, facetemplate.DefaultNetwork, flip)
		if err != nil {
			b.Fatal(err)
		}
		name := "template/float"
		if flip {
			name += "+flip"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := e.Template(ctx, portrait, &fitted); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	street := frame640(b, "messi5.jpg")
	bodies := []struct {
		name string
		cfg  body.Config
	}{
		{"body-detect/pose/landmarks=on", body.Config{Detector: "pose", Landmarks: "on"}},
		{"body-detect/pose/landmarks=off", body.Config{Detector: "pose", Landmarks: "off"}},
		{"body-detect/centernet", body.Config{Detector: "centernet"}},
	}
	for _, c := range bodies {
		d, err := body.New(rt, c.cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := d.Detect(ctx, street); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
