package camera

import (
	"testing"
	"time"
)

// runs counts the frames of a 10 fps source the cadence runs on, the camera
// analysing every step-th frame (the others dropped), frame times off by
// jitter(i).
func runs(c Cadence, frames, step int, jitter func(i int) time.Duration) (n int, at []int) {
	t0 := time.Unix(1000, 0)
	for i := 0; i < frames; i += step {
		if c.Due(t0.Add(time.Duration(i)*100*time.Millisecond+jitter(i)), uint64(i+1)) {
			n++
			at = append(at, i)
		}
	}
	return n, at
}

func TestCadenceKeepsPaceWhenFramesDrop(t *testing.T) {
	none := func(int) time.Duration { return 0 }
	// A few milliseconds early or late: still every 4th frame.
	wobble := func(i int) time.Duration { return time.Duration(i%3-1) * 7 * time.Millisecond }
	for _, tc := range []struct {
		name   string
		c      Cadence
		step   int
		jitter func(int) time.Duration
		want   int
	}{
		{"interval, every frame", Cadence{Interval: 400 * time.Millisecond}, 1, none, 150},
		{"interval, jitter", Cadence{Interval: 400 * time.Millisecond}, 1, wobble, 150},
		{"interval, every 3rd frame", Cadence{Interval: 400 * time.Millisecond}, 3, none, 150},
		{"interval, every 7th frame", Cadence{Interval: 400 * time.Millisecond}, 7, none, 86}, // slower than the pace: every analysed frame
		{"every 4 source frames, every frame", Cadence{Every: 4}, 1, none, 150},
		{"every 4 source frames, every 2nd frame", Cadence{Every: 4}, 2, none, 150},
		{"every 4 source frames, every 3rd frame", Cadence{Every: 4}, 3, none, 100}, // 0.6 s: the frames it may take
	} {
		n, at := runs(tc.c, 600, tc.step, tc.jitter)
		if n != tc.want {
			t.Errorf("%s: ran on %d of 600 frames, want %d (%v)", tc.name, n, tc.want, at)
		}
	}
}

func TestCadenceNoBurstAndRestart(t *testing.T) {
	c := Cadence{Interval: 400 * time.Millisecond}
	t0 := time.Unix(1000, 0)
	if !c.Due(t0, 1) {
		t.Fatal("the first frame did not run")
	}
	// After a 5 s stall, one run, then the pace again: no catching up.
	stall := t0.Add(5 * time.Second)
	if !c.Due(stall, 2) {
		t.Fatal("the frame after a stall did not run")
	}
	for i := 1; i < 4; i++ {
		if c.Due(stall.Add(time.Duration(i)*100*time.Millisecond), uint64(2+i)) {
			t.Fatalf("ran %d00 ms after the last run: a burst", i)
		}
	}
	if !c.Due(stall.Add(400*time.Millisecond), 6) {
		t.Fatal("did not run an interval after the last run")
	}
	// A clock that goes back (a new source) restarts the pace.
	if !c.Due(t0, 1) {
		t.Fatal("did not run when the frame time went back")
	}
	// Every n source frames: a source reopened (seq back to 1) runs at once.
	e := Cadence{Every: 4}
	for _, step := range []struct {
		seq  uint64
		want bool
	}{{1, true}, {2, false}, {4, false}, {5, true}, {1, true}, {3, false}, {5, true}} {
		if got := e.Due(t0, step.seq); got != step.want {
			t.Errorf("every 4: frame %d ran %v, want %v", step.seq, got, step.want)
		}
	}
}

func TestBodyCadenceConfig(t *testing.T) {
	base := Config{ID: "c", URL: "/dev/video0"}
	for _, tc := range []struct {
		interval time.Duration
		every    int
		ok       bool
	}{{0, 0, true}, {400 * time.Millisecond, 0, true}, {0, 4, true}, {400 * time.Millisecond, 1, true},
		{400 * time.Millisecond, 4, false}, {-time.Second, 0, false}, {0, -1, false}} {
		c := base
		c.BodyInterval, c.BodyEvery = tc.interval, tc.every
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("body_interval %v, body_every %d: error %v, want ok %v", tc.interval, tc.every, err, tc.ok)
		}
	}
}
