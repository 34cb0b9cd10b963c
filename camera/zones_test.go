package camera

import (
	"testing"
	"time"
)

// A person walks right across the view at 10 fps, through a door zone and
// over a line drawn downwards at x = 0.6: looking down the line, image left
// is on its right hand, so walking right crosses it right_to_left. Zone
// enter, exit and the crossing fire once each; a second person walking left
// crosses the other way. A missed detection does not drop the zone's count.
func TestZonesAndLines(t *testing.T) {
	zones := []ZoneConfig{{Name: "door", Polygon: []Point{{0.3, 0.5}, {0.5, 0.5}, {0.5, 0.9}, {0.3, 0.9}}}}
	lines := []LineConfig{{Name: "gate", From: Point{0.6, 0}, To: Point{0.6, 1}}}
	if err := validateZones(zones, lines); err != nil {
		t.Fatal(err)
	}
	tr := NewTracker(TrackerConfig{}, counterIDs())
	k := newZoneKeeper(zones, lines, time.Second)
	t0 := time.Unix(1000, 0)
	got := map[string][]zoneEvent{}
	maxCount, countDipped := 0, false
	for i := 0; i < 80; i++ {
		now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		sec := float64(i) / 10
		var dets []Detection
		if i != 30 { // one missed frame while the walker is in the door zone
			dets = append(dets, walker(0.05, 0.1, sec))
		}
		if sec >= 2 {
			dets = append(dets, walker(0.95, -0.1, sec-2))
		}
		up := tr.Update(now, dets)
		for _, tk := range up.Visible {
			got[tk.ID] = append(got[tk.ID], k.see(tk)...)
		}
		for _, tk := range up.Ended {
			got[tk.ID] = append(got[tk.ID], k.end(tk.ID)...)
		}
		k.recount(now)
		if sec > 2.9 && sec < 3.5 { // the walker's feet (x+0.04) are in the door from 2.6 s to 4.6 s
			if k.counts["door"] != 1 {
				countDipped = true
			}
		}
		maxCount = max(maxCount, k.counts["door"])
	}
	if countDipped || maxCount != 1 {
		t.Errorf("door count dipped %v around the missed frame, max %d", countDipped, maxCount)
	}
	if len(got) != 2 {
		t.Fatalf("events for %d tracks, want 2: %v", len(got), got)
	}
	right, left := got["t1"], got["t2"]
	want := []zoneEvent{{typ: ZoneEnter, zone: "door"}, {typ: ZoneExit, zone: "door"}, {typ: LineCross, line: "gate", direction: RightToLeft}}
	if len(right) != 3 || right[0] != want[0] || right[1] != want[1] || right[2] != want[2] {
		t.Errorf("walking right: %v, want %v", right, want)
	}
	// The walker going left crosses the line the other way, then the door; the
	// clip ends with them in it, so no exit yet.
	if len(left) != 2 || left[0] != (zoneEvent{typ: LineCross, line: "gate", direction: LeftToRight}) || left[1] != want[0] {
		t.Errorf("walking left: %v", left)
	}
	if n := k.lineN["gate"]; n != (LineCount{LeftToRight: 1, RightToLeft: 1, Total: 2}) {
		t.Errorf("gate count %+v", n)
	}
	if evs := k.end("t2"); len(evs) != 1 || evs[0] != want[1] {
		t.Errorf("ending in the door gave %v, want a zone_exit", evs)
	}
}

func TestZoneGeometry(t *testing.T) {
	sq := []Point{{0, 0}, {1, 0}, {1, 1}, {0, 1}}
	if !inside(sq, Point{0.5, 0.5}) || inside(sq, Point{1.5, 0.5}) || !inside(sq, Point{0.5, 1}) {
		t.Error("inside the unit square is wrong")
	}
	// A line pointing right: image down (y grows) is its right hand.
	if dir, ok := crossing(Point{0, 0.5}, Point{1, 0.5}, Point{0.5, 0.4}, Point{0.5, 0.6}); !ok || dir != LeftToRight {
		t.Errorf("stepping down over a rightward line: %q %v", dir, ok)
	}
	if _, ok := crossing(Point{0, 0.5}, Point{0.4, 0.5}, Point{0.5, 0.4}, Point{0.5, 0.6}); ok {
		t.Error("a step past the segment's end crossed it")
	}
	for _, bad := range [][]ZoneConfig{
		{{Name: "a b", Polygon: sq}},
		{{Name: "a", Polygon: sq[:2]}},
		{{Name: "a", Polygon: []Point{{0, 0}, {2, 0}, {0, 1}}}},
		{{Name: "a", Polygon: sq}, {Name: "a", Polygon: sq}},
	} {
		if err := validateZones(bad, nil); err == nil {
			t.Errorf("zones %v accepted", bad)
		}
	}
	if err := validateZones(nil, []LineConfig{{Name: "l", From: Point{0.5, 0.5}, To: Point{0.5, 0.5}}}); err == nil {
		t.Error("a line of zero length was accepted")
	}
}
