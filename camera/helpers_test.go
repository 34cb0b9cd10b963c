package camera

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/internal/testenv"
)

// writeClip writes frames [from, to) of vtest.avi, every step-th, to an
// mp4v file at fps, and returns its path.
func writeClip(t testing.TB, dir string, from, to, step int, fps float64) string {
	t.Helper()
	vc, err := gocv.VideoCaptureFile(testenv.Fixture(t, "vtest.avi"))
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	path := filepath.Join(dir, "clip.mp4")
	img := gocv.NewMat()
	defer img.Close()
	var vw *gocv.VideoWriter
	for i := 0; i < to; i++ {
		if !vc.Read(&img) || img.Empty() {
			t.Fatalf("vtest.avi ended at frame %d", i)
		}
		if i < from || (i-from)%step != 0 {
			continue
		}
		if vw == nil {
			if vw, err = gocv.VideoWriterFile(path, "mp4v", fps, img.Cols(), img.Rows(), true); err != nil {
				t.Fatal(err)
			}
		}
		if err := vw.Write(img); err != nil {
			t.Fatal(err)
		}
	}
	if err := vw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// recorder is an EventSink that keeps every event in arrival order.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Publish(_ context.Context, e Event) error {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	return nil
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// states keeps the states OnState reported.
type states struct {
	mu  sync.Mutex
	all []State
}

func (s *states) add(st State) {
	s.mu.Lock()
	s.all = append(s.all, st)
	s.mu.Unlock()
}

func (s *states) seen(pred func(State) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.all {
		if pred(st) {
			return true
		}
	}
	return false
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func newHOG(t testing.TB, cfg HOGPeopleConfig) *HOGPeople {
	t.Helper()
	h, err := NewHOGPeople(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func stopCamera(t testing.TB, c *Camera) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Error(err)
	}
}
