package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"imageapid/camera"
	"imageapid/estimators/face"
	"imageapid/internal/testenv"
)

// BenchmarkCameraPipeline plays vtest.avi (768x576, people walking) through a
// whole camera with the daemon's real detectors (decode, detection, tracking,
// events) as fast as analysis goes, and reports analysed frames per second and
// the CPU cores the process used (CPU time / wall time).
func BenchmarkCameraPipeline(b *testing.B) {
	cfg := testConfig(b)
	a, err := build(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer a.runtime.Close()
	camFaces, err := face.New(a.runtime, cameraFaceConfig(cfg.Face))
	if err != nil {
		b.Fatal(err)
	}
	builder := newAnalysisBuilder(camFaces, a.estimators)
	url := "file://" + testenv.Fixture(b, "vtest.avi") + "?live=false&loop=true"
	for _, bc := range []struct {
		set       []string
		bodyEvery int
	}{
		{[]string{detectFaces}, 1},
		{[]string{detectFaces, hogPeople}, 1},
		{[]string{detectFaces, hogPeople}, 4},
		{[]string{detectFaces, "body-detector"}, 4},
	} {
		b.Run(fmt.Sprintf("%s/body_every=%d", strings.Join(bc.set, "+"), bc.bodyEvery), func(b *testing.B) {
			camCfg := camera.Config{ID: "bench", URL: url, Estimators: bc.set, BodyEvery: bc.bodyEvery}
			an, err := builder.build(camCfg)
			if err != nil {
				b.Fatal(err)
			}
			events := 0
			sink := camera.SinkFunc(func(context.Context, camera.Event) error { events++; return nil })
			c, err := camera.StartCamera(camCfg, an, camera.Options{Sink: sink})
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				c.Stop(ctx)
			}()
			for deadline := time.Now().Add(30 * time.Second); c.Stats().FramesAnalyzed == 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					b.Fatal("no frame analysed in 30 s")
				}
			}
			start := c.Stats()
			cpu0, wall0 := testenv.CPUTime(b), time.Now()
			b.ResetTimer()
			for c.Stats().FramesAnalyzed < start.FramesAnalyzed+uint64(b.N) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			wall := time.Since(wall0)
			end := c.Stats()
			frames := float64(end.FramesAnalyzed - start.FramesAnalyzed)
			b.ReportMetric(frames/wall.Seconds(), "frames/s")
			b.ReportMetric((testenv.CPUTime(b)-cpu0).Seconds()/wall.Seconds(), "cores")
			b.ReportMetric(float64(end.InferenceTotal-start.InferenceTotal)/1e6/frames, "detect-ms/frame")
			b.ReportMetric(0, "ns/op")
		})
	}
}
