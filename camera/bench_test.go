package camera

import (
	"context"
	"testing"
	"time"

	"imageapid/internal/testenv"
)

// BenchmarkPipeline plays vtest.avi (768x576, 10 fps, 795 frames, looped)
// through a whole camera (decode, detection, tracking, best shots, events)
// as fast as analysis goes, and reports analysed frames per second and the
// CPU cores the process used meanwhile. "decode-track" runs no detector:
// it is the pipeline's own cost, the baseline the detectors add to.
func BenchmarkPipeline(b *testing.B) {
	url := "file://" + testenv.Fixture(b, "vtest.avi") + "?live=false&loop=true"
	cases := []struct {
		name string
		hog  *HOGPeopleConfig
	}{
		{"decode-track", nil},
		{"hog-768", &HOGPeopleConfig{}},
		{"hog-768-scale1.1", &HOGPeopleConfig{Scale: 1.1}},
		{"hog-576-scale1.1", &HOGPeopleConfig{Width: 576, Scale: 1.1}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			var an Analysis
			if bc.hog != nil {
				an.Detectors = []Detector{newHOG(b, *bc.hog)}
			}
			var events int
			sink := SinkFunc(func(context.Context, Event) error { events++; return nil })
			c, err := StartCamera(Config{ID: "bench", URL: url}, an, Options{Sink: sink})
			if err != nil {
				b.Fatal(err)
			}
			defer stopCamera(b, c)
			waitFor(b, 10*time.Second, "the first frame", func() bool { return c.Stats().FramesAnalyzed > 0 })
			start := c.Stats()
			cpu0, wall0 := testenv.CPUTime(b), time.Now()
			b.ResetTimer()
			for c.Stats().FramesAnalyzed < start.FramesAnalyzed+uint64(b.N) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			wall := time.Since(wall0)
			cpu := testenv.CPUTime(b) - cpu0
			end := c.Stats()
			frames := float64(end.FramesAnalyzed - start.FramesAnalyzed)
			b.ReportMetric(frames/wall.Seconds(), "frames/s")
			b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
			b.ReportMetric(float64(end.InferenceTotal-start.InferenceTotal)/1e6/frames, "detect-ms/frame")
			b.ReportMetric(0, "ns/op")
		})
	}
}
