package camera

import (
	"context"
	"slices"
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

// BenchmarkTracker is the tracker's cost per frame with 20 people in view
// (20 confirmed tracks; each person is missed on every 7th frame and seen
// with a low score on every 5th, so lost tracks and the second stage are
// exercised). One op is a frame. "faces-templates" are the same people as
// face tracks with 192-d templates and a gate, so every lost track's match
// compares templates (given, not computed: computing one is the
// attributor's cost, paid only for those matches).
func BenchmarkTracker(b *testing.B) {
	for _, bc := range []struct {
		name  string
		class string
	}{{"bodies", ClassBody}, {"faces-templates", ClassFace}} {
		b.Run(bc.name, func(b *testing.B) {
			benchmarkTracker(b, bc.class)
		})
	}
}

func benchmarkTracker(b *testing.B, class string) {
	tr := NewTracker(TrackerConfig{}, counterIDs())
	templates := make([][]float32, 20)
	for p := range templates {
		v := make([]float32, 192)
		v[p] = 1 // 20 different people, at distance 2
		templates[p] = v
	}
	var (
		app    AppearanceFunc
		people []int // person of each detection of the frame
	)
	if class == ClassFace {
		tr.SetAppearanceGate(1.24)
		app = func(i int) []float32 { return templates[people[i]] }
	}
	t0 := time.Unix(1000, 0)
	frame := func(i int) []Detection {
		dets := make([]Detection, 0, 20)
		people = people[:0]
		for p := 0; p < 20; p++ {
			if (i+p)%7 == 0 {
				continue
			}
			x, y := 0.05+0.19*float64(p%5), 0.02+0.24*float64(p/5) // a 5x4 grid of people
			step := i % 200                                        // walk right for 10 s, then back
			if step >= 100 {
				step = 200 - step
			}
			d := walker(x, 0.02, float64(step)/10)
			d.Class = class
			d.Box[1], d.Box[3] = y, y+0.2
			if (i+p)%5 == 0 {
				d.Score = 0.3 // a partly hidden person: second stage
			}
			dets = append(dets, d)
			people = append(people, p)
		}
		return dets
	}
	update := func(i int) {
		up := tr.UpdateAppearance(t0.Add(time.Duration(i)*100*time.Millisecond), frame(i), app)
		if app != nil {
			for _, t := range up.Confirmed { // as the best shot's attributes give it
				m := up.Matched[slices.IndexFunc(up.Matched, func(m Match) bool { return m.Track == t })]
				tr.SetTemplate(t, templates[people[m.Detection]])
			}
		}
	}
	for i := 0; i < 10; i++ {
		update(i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		update(10 + i)
	}
	b.StopTimer()
	b.ReportMetric(float64(len(tr.Tracks())), "tracks")
}
