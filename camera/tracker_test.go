package camera

import (
	"strconv"
	"testing"
	"time"
)

func counterIDs() func() string {
	n := 0
	return func() string { n++; return "t" + strconv.Itoa(n) }
}

func body(x float64) Detection {
	return Detection{Class: ClassBody, Box: Box{x, 0.2, x + 0.1, 0.5}, Score: 1}
}

func TestTrackerKeepsIDsAndConfirms(t *testing.T) {
	tr := NewTracker(TrackerConfig{MinHits: 3, TTL: time.Second}, counterIDs())
	t0 := time.Unix(1000, 0)
	var confirmed []*Track
	for i := 0; i < 10; i++ {
		now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		// Two people walking apart, a face on the first, and a one-frame false hit at frame 4.
		dets := []Detection{body(0.1 + 0.01*float64(i)), body(0.7 - 0.01*float64(i)),
			{Class: ClassFace, Box: Box{0.12 + 0.01*float64(i), 0.2, 0.16 + 0.01*float64(i), 0.25}, Score: 1}}
		if i == 4 {
			dets = append(dets, body(0.45))
		}
		up := tr.Update(now, dets)
		confirmed = append(confirmed, up.Confirmed...)
		if len(up.Ended) != 0 {
			t.Fatalf("frame %d ended %v", i, up.Ended)
		}
		if i < 2 && len(up.Confirmed) != 0 {
			t.Fatalf("frame %d confirmed a track before 3 hits", i)
		}
	}
	if len(confirmed) != 3 {
		t.Fatalf("confirmed %d tracks, want 2 bodies and a face", len(confirmed))
	}
	ids := map[string]bool{}
	for _, tk := range confirmed {
		ids[tk.ID] = true
		if tk.Hits != 10 || tk.Missed != 0 {
			t.Errorf("track %s: %d hits, %d missed, want 10 and 0", tk.ID, tk.Hits, tk.Missed)
		}
	}
	if len(ids) != 3 {
		t.Errorf("ids %v are not distinct", ids)
	}
	if n := len(tr.Tracks()); n != 3 {
		t.Errorf("%d live tracks: the one-frame false hit was kept", n)
	}
	// Unseen past the TTL, all three end, once.
	end := t0.Add(time.Second + 2*time.Second)
	if ended := tr.Expire(end); len(ended) != 3 {
		t.Errorf("expired %d tracks, want 3", len(ended))
	}
	if ended := tr.Expire(end.Add(time.Hour)); len(ended) != 0 {
		t.Errorf("expired %d tracks twice", len(ended))
	}
}

func TestTrackerBridgesShortGapsAndFollowsMotion(t *testing.T) {
	tr := NewTracker(TrackerConfig{MinHits: 2, TTL: time.Second, IoUThreshold: 0.3}, counterIDs())
	t0 := time.Unix(1000, 0)
	var first string
	for i := 0; i < 20; i++ {
		if i >= 8 && i < 12 { // detector misses 4 frames (0.4 s < TTL)
			tr.Update(t0.Add(time.Duration(i)*100*time.Millisecond), nil)
			continue
		}
		// 0.025 per frame on a 0.1 wide box: after the gap, IoU with the last box is 0 and only the predicted box matches.
		up := tr.Update(t0.Add(time.Duration(i)*100*time.Millisecond), []Detection{body(0.05 * float64(i) / 2)})
		if len(up.Matched) != 1 {
			t.Fatalf("frame %d: %d matches", i, len(up.Matched))
		}
		if first == "" {
			first = up.Matched[0].Track.ID
		} else if id := up.Matched[0].Track.ID; id != first {
			t.Fatalf("frame %d: track %s replaced %s", i, id, first)
		}
	}
}

func TestTrackerMaxMissed(t *testing.T) {
	tr := NewTracker(TrackerConfig{MinHits: 1, TTL: time.Hour, MaxMissed: 2}, counterIDs())
	t0 := time.Unix(1000, 0)
	if up := tr.Update(t0, []Detection{body(0.3)}); len(up.Confirmed) != 1 {
		t.Fatal("MinHits 1 did not confirm at once")
	}
	for i := 1; i <= 3; i++ {
		up := tr.Update(t0.Add(time.Duration(i)*time.Millisecond), nil)
		if got := len(up.Ended); (i == 3) != (got == 1) {
			t.Errorf("after %d missed frames %d tracks ended", i, got)
		}
	}
}

func TestBoxIoU(t *testing.T) {
	a := Box{0, 0, 0.5, 0.5}
	if got := a.IoU(a); got != 1 {
		t.Errorf("IoU with itself %v", got)
	}
	if got := a.IoU(Box{0.25, 0, 0.75, 0.5}); got < 0.333 || got > 0.334 {
		t.Errorf("half-overlapping IoU %v, want 1/3", got)
	}
	if got := a.IoU(Box{0.6, 0.6, 0.9, 0.9}); got != 0 {
		t.Errorf("disjoint IoU %v", got)
	}
}
