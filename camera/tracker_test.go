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

// A walker seen only every 0.4 or 0.7 s (the body detector's pace on an
// idle and on a loaded camera), moving a little more than their own width
// between detections at score 0.6, is confirmed on the third detection and
// keeps one id; two walkers side by side keep theirs.
func TestTrackerConfirmsSparseDetections(t *testing.T) {
	for _, gap := range []time.Duration{400 * time.Millisecond, 700 * time.Millisecond} {
		tr := NewTracker(TrackerConfig{}, counterIDs())
		t0 := time.Unix(1000, 0)
		ids := map[string]bool{}
		confirmed := 0
		for i := 0; i < 8; i++ {
			// 0.06 wide walkers, 1.7 widths a second (vtest.avi's pace), 0.3 apart.
			x := 0.1 + 0.1*gap.Seconds()*float64(i)
			dets := []Detection{
				{Class: ClassBody, Box: Box{x, 0.3, x + 0.06, 0.45}, Score: 0.6},
				{Class: ClassBody, Box: Box{x + 0.3, 0.3, x + 0.36, 0.45}, Score: 0.6},
			}
			up := tr.Update(t0.Add(time.Duration(i)*gap), dets)
			confirmed += len(up.Confirmed)
			if i == 2 && len(up.Confirmed) != 2 {
				t.Errorf("every %v: %d tracks confirmed on the third detection, want 2", gap, len(up.Confirmed))
			}
			for _, m := range up.Matched {
				ids[m.Track.ID] = true
			}
		}
		if confirmed != 2 || len(ids) != 2 {
			t.Errorf("every %v: %d tracks confirmed, %d ids, want 2 and 2", gap, confirmed, len(ids))
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

// walker is a body walking at vx per second from x0, seen at time t.
func walker(x0, vx, t float64) Detection {
	x := x0 + vx*t
	return Detection{Class: ClassBody, Box: Box{x, 0.3, x + 0.08, 0.7}, Score: 0.9}
}

// Two people cross at 10 fps; at the crossing the one walking right is
// hidden behind the other for a second (no detection of them at all), then
// reappears where their walk takes them: both keep their ids, and each is
// announced once.
func TestTrackerKeepsIDThroughOcclusion(t *testing.T) {
	tr := NewTracker(TrackerConfig{}, counterIDs())
	t0 := time.Unix(1000, 0)
	announced := map[string]int{}
	var rightID, leftID string
	for i := 0; i < 60; i++ {
		sec := float64(i) / 10
		right, left := walker(0.05, 0.12, sec), walker(0.8, -0.12, sec)
		dets := []Detection{left}
		if sec < 2.5 || sec >= 3.5 { // the right walker is hidden from 2.5 s to 3.5 s
			dets = append(dets, right)
		}
		up := tr.Update(t0.Add(time.Duration(i)*100*time.Millisecond), dets)
		for _, c := range up.Confirmed {
			announced[c.ID]++
		}
		if len(up.Ended) > 0 {
			t.Fatalf("at %.1f s track %s ended", sec, up.Ended[0].ID)
		}
		for _, m := range up.Matched {
			want := &leftID
			if m.Detection == 1 {
				want = &rightID
			}
			switch {
			case i == 2:
				*want = m.Track.ID
			case i > 2 && m.Track.ID != *want:
				t.Fatalf("at %.1f s detection %d went to track %s, not %s", sec, m.Detection, m.Track.ID, *want)
			}
		}
	}
	if len(announced) != 2 || announced[rightID] != 1 || announced[leftID] != 1 {
		t.Errorf("announced %v, want %s and %s once each", announced, rightID, leftID)
	}
}

// A detector that finds a person on only some frames (3 of every 4) makes one
// track, announced once; a detection seen twice in 5 frames is never announced.
func TestTrackerAnnouncesOnce(t *testing.T) {
	tr := NewTracker(TrackerConfig{}, counterIDs())
	t0 := time.Unix(1000, 0)
	announced := 0
	for i := 0; i < 40; i++ {
		var dets []Detection
		if i%4 != 3 {
			dets = append(dets, walker(0.1, 0.1, float64(i)/10))
		}
		if i == 10 || i == 12 { // a flicker elsewhere
			dets = append(dets, Detection{Class: ClassBody, Box: Box{0.7, 0.1, 0.8, 0.4}, Score: 0.9})
		}
		up := tr.Update(t0.Add(time.Duration(i)*100*time.Millisecond), dets)
		announced += len(up.Confirmed)
	}
	if announced != 1 {
		t.Errorf("%d tracks announced, want 1", announced)
	}
}

// On frames the body detector skips, tracks move by their velocity and are
// neither hit nor missed; the box is not frozen.
func TestTrackerPredictsSkippedFrames(t *testing.T) {
	tr := NewTracker(TrackerConfig{MaxMissed: 1}, counterIDs())
	t0 := time.Unix(1000, 0)
	var tk *Track
	for i := 0; i < 10; i++ {
		up := tr.Update(t0.Add(time.Duration(i)*100*time.Millisecond), []Detection{walker(0.1, 0.2, float64(i)/10)})
		if len(up.Matched) == 1 {
			tk = up.Matched[0].Track
		}
	}
	before, hits := tk.Box, tk.Hits
	for i := 10; i < 14; i++ {
		up := tr.Update(t0.Add(time.Duration(i)*100*time.Millisecond), nil, ClassBody)
		if len(up.Ended) != 0 || len(up.Visible) != 1 {
			t.Fatalf("skipped frame %d: ended %d, visible %d", i, len(up.Ended), len(up.Visible))
		}
	}
	moved := tk.Box[0] - before[0]
	if tk.Hits != hits || tk.Missed != 0 || moved < 0.06 || moved > 0.1 {
		t.Errorf("after 0.4 s skipped: hits %d (was %d), missed %d, moved %.3f, want about 0.08", tk.Hits, hits, tk.Missed, moved)
	}
}
