package body_test

import (
	"context"
	"image"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"imageapid/estimators/body"
	"imageapid/internal/testenv"
)

// BenchmarkDetectors measures every body detector candidate the eval
// command scores (each CenterNet build of the manifest, with and without
// tiling, MoveNet MultiPose and the pose detector) on one 640x480 camera frame: the first
// frame of vtest.avi (people walking), resized from 768x576. It reports
// CPU milliseconds per frame (one interpreter thread), which a loaded
// machine disturbs less than wall time.
func BenchmarkDetectors(b *testing.B) {
	ctx := context.Background()
	rt := testenv.Runtime(b, "")
	frame := vtestFrame(b)
	for _, c := range body.Candidates(rt) {
		d, err := body.New(rt, c)
		if err != nil {
			b.Fatal(err)
		}
		// The first run creates the interpreter and packs the weights.
		if _, err := d.Detect(ctx, frame); err != nil {
			b.Fatal(err)
		}
		b.Run(strings.ReplaceAll(c.String(), "/", ":"), func(b *testing.B) {
			cpu := testenv.CPUTime(b)
			for b.Loop() {
				if _, err := d.Detect(ctx, frame); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(testenv.CPUTime(b)-cpu)/1e6/float64(b.N), "cpu-ms/op")
		})
	}
}

// vtestFrame is vtest.avi's first frame at 640x480.
func vtestFrame(tb testing.TB) gocv.Mat {
	tb.Helper()
	vc, err := gocv.VideoCaptureFile(testenv.Fixture(tb, "vtest.avi"))
	if err != nil {
		tb.Fatal(err)
	}
	defer vc.Close()
	img := gocv.NewMat()
	defer img.Close()
	if !vc.Read(&img) || img.Empty() {
		tb.Fatal("vtest.avi: no frame")
	}
	out := gocv.NewMat()
	gocv.Resize(img, &out, image.Pt(640, 480), 0, 0, gocv.InterpolationArea)
	tb.Cleanup(func() { out.Close() })
	return out
}
