package mot

import (
	"math"
	"strings"
	"testing"
)

func obj(id int, x float64) Object { return Object{ID: id, Box: Box{x, 0, 10, 10}} }

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestPerfect(t *testing.T) {
	var frames []Frame
	for i := 0; i < 3; i++ {
		frames = append(frames, Frame{Truth: []Object{obj(1, 0), obj(2, 100)}, Hyp: []Object{obj(7, 0), obj(8, 100)}})
	}
	r := Evaluate(frames, 0.5)
	if r.MOTA != 1 || r.MOTP != 1 || r.IDF1 != 1 || r.IDSwitches != 0 || r.Frags != 0 || r.MostlyTrack != 2 {
		t.Errorf("perfect tracking scored %+v", r)
	}
}

// TestHandWorked: truth 1 sits at x=0 and truth 2 at x=100 for four frames.
// Hypothesis 10 follows truth 1 for two frames and 11 takes over (one
// switch); 20 follows truth 2 but misses frame 2 (one miss, one
// fragmentation); 30 is a false positive at x=200 in frame 3.
// CLEAR MOT: 7 matches of 8 truth boxes, MOTA = 1 - (1 miss + 1 FP + 1 switch)/8 = 0.625.
// IDF1: the best one-to-one identity pairing is 1-10 (or 1-11), 2 frames,
// and 2-20, 3 frames: IDTP 5 of 8 truth and 8 hypothesis boxes, 2*5/16 = 0.625.
func TestHandWorked(t *testing.T) {
	frames := []Frame{
		{Truth: []Object{obj(1, 0), obj(2, 100)}, Hyp: []Object{obj(10, 0), obj(20, 100)}},
		{Truth: []Object{obj(1, 0), obj(2, 100)}, Hyp: []Object{obj(10, 0)}},
		{Truth: []Object{obj(1, 0), obj(2, 100)}, Hyp: []Object{obj(11, 0), obj(20, 100), obj(30, 200)}},
		{Truth: []Object{obj(1, 0), obj(2, 100)}, Hyp: []Object{obj(11, 0), obj(20, 100)}},
	}
	r := Evaluate(frames, 0.5)
	want := Result{Frames: 4, TruthBoxes: 8, HypBoxes: 8, TruthIDs: 2, HypIDs: 4, Matches: 7, Misses: 1, FalsePos: 1,
		IDSwitches: 1, Frags: 1, MOTA: 0.625, MOTP: 1, IDTP: 5, IDF1: 0.625, IDP: 0.625, IDR: 0.625, MostlyTrack: 1}
	if r != want {
		t.Errorf("got  %+v\nwant %+v", r, want)
	}
}

// TestKeepsLastMatch: a truth box stays with the hypothesis it was matched to
// while they overlap enough, even when another fits better (no switch); the
// better one is a false positive. MOTP averages IoU 1 and 90/110.
func TestKeepsLastMatch(t *testing.T) {
	frames := []Frame{
		{Truth: []Object{obj(1, 0)}, Hyp: []Object{obj(10, 0)}},
		{Truth: []Object{obj(1, 0)}, Hyp: []Object{obj(11, 0), obj(10, 1)}},
	}
	r := Evaluate(frames, 0.5)
	if r.IDSwitches != 0 || r.FalsePos != 1 || r.Matches != 2 || !near(r.MOTP, (1+90.0/110)/2) {
		t.Errorf("got %+v", r)
	}
}

// TestOptimalFrameMatching: hypothesis x overlaps truth a best (IoU 2/3) and
// truth b less (3/7); y overlaps only a (7/13). Greedy pairing would take a-x
// and leave b unmatched; the Hungarian pairing matches both (a-y, b-x).
func TestOptimalFrameMatching(t *testing.T) {
	frames := []Frame{{Truth: []Object{obj(1, 0), obj(2, 6)}, Hyp: []Object{obj(10, 2), obj(11, -3)}}}
	r := Evaluate(frames, 0.3)
	if r.Matches != 2 || r.Misses != 0 || r.FalsePos != 0 {
		t.Errorf("got %+v", r)
	}
}

func TestReadMOT(t *testing.T) {
	got, err := ReadMOT(strings.NewReader("1,1,88,99,61.08,218.56,1,1,-1\n1,2,1,2,3,4,0,1,-1\n\n2,1,90,99,61,218,1,1,-1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got[1]) != 1 || len(got[2]) != 1 || got[1][0].Box != (Box{88, 99, 61.08, 218.56}) {
		t.Errorf("read %v", got)
	}
	if _, err := ReadMOT(strings.NewReader("1,1,x,2,3,4\n")); err == nil {
		t.Error("a malformed line was accepted")
	}
}
