package camera

import (
	"errors"
	"testing"
	"time"
)

// Subscribers get analysed frames at their capped rate, with the frame's
// detections; a slow subscriber holds one frame at most; the subscriber
// limit holds; stopping the camera ends every subscription.
func TestFrameSubscriptions(t *testing.T) {
	clip := writeClip(t, t.TempDir(), 0, 150, 1, 25)
	hog := newHOG(t, HOGPeopleConfig{Width: 384})
	c, err := StartCamera(Config{ID: "tap", URL: clip, Loop: true}, Analysis{Detectors: []Detector{hog}}, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := c.Subscribe(0)
	if err != nil {
		t.Fatal(err)
	}
	slow, err := c.Subscribe(2)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	var lastSeq uint64
	deadline := time.After(4 * time.Second)
	for got < 5 {
		select {
		case f := <-fast.Frames():
			if f.Mat.Empty() || f.Mat.Cols() == 0 || f.Seq <= lastSeq && got > 0 {
				t.Fatalf("frame %d: empty or out of order (seq %d after %d)", got, f.Seq, lastSeq)
			}
			lastSeq = f.Seq
			f.Mat.Close()
			got++
		case <-deadline:
			t.Fatalf("%d frames in 4 s", got)
		}
	}
	// The slow subscriber took nothing for a while: one frame waits, no more.
	time.Sleep(time.Second)
	if n := len(slow.ch); n != 1 {
		t.Errorf("a subscriber that does not read holds %d frames, want 1", n)
	}
	// At 2 frames/s a second of reading gives about two frames.
	f := <-slow.Frames()
	f.Mat.Close()
	start, n := time.Now(), 0
	for time.Since(start) < 1500*time.Millisecond {
		select {
		case f := <-slow.Frames():
			f.Mat.Close()
			n++
		case <-time.After(100 * time.Millisecond):
		}
	}
	if n < 1 || n > 4 {
		t.Errorf("%d frames in 1.5 s at a cap of 2 frames/s", n)
	}
	var extra []*Subscription
	for {
		s, err := c.Subscribe(0)
		if err != nil {
			if !errors.Is(err, ErrTooManySubscribers) {
				t.Fatal(err)
			}
			break
		}
		extra = append(extra, s)
	}
	if len(extra)+2 != maxSubscribers {
		t.Errorf("%d subscribers accepted, want %d", len(extra)+2, maxSubscribers)
	}
	for _, s := range extra {
		s.Close()
	}
	fast.Close()
	if _, ok := <-fast.Frames(); ok {
		t.Error("a closed subscription still delivers")
	}
	stopCamera(t, c)
	for {
		f, ok := <-slow.Frames()
		if !ok {
			break
		}
		f.Mat.Close()
	}
	if _, err := c.Subscribe(0); err == nil {
		t.Error("a stopped camera accepted a subscriber")
	}
}
