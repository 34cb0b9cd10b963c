package sessions

import (
	"context"
	"image"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/internal/testenv"
)

// BenchmarkSessionFrame is the cost of one 640x480 frame in a session at
// 15 frames/s of session time (so templates, device and bezel checks run at
// their real rates), in-process: ms per frame and frames/s.
func BenchmarkSessionFrame(b *testing.B) {
	img := gocv.IMRead(testenv.Fixture(b, "astronaut.png"), gocv.IMReadColor)
	defer img.Close()
	frame := gocv.NewMat()
	defer frame.Close()
	gocv.Resize(img, &frame, image.Pt(640, 480), 0, 0, gocv.InterpolationArea)
	cfg := DefaultConfig()
	m, err := NewManager(cfg, testAnalyzer(b), nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var id string
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		k := i % 100 // a new session before the challenge's time runs out
		if k == 0 {
			b.StopTimer()
			if id != "" {
				m.Cancel(ctx, id)
			}
			c, err := m.Create(Request{Challenges: []string{Blink}, ChallengesSet: true})
			if err != nil {
				b.Fatal(err)
			}
			id = c.ID
			b.StartTimer()
		}
		if _, err := m.Frame(ctx, id, frame, int64(k)*66); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	b.ReportMetric(float64(el.Milliseconds())/float64(b.N), "ms/frame")
	b.ReportMetric(float64(b.N)/el.Seconds(), "frames/s")
}
