package evalset

import (
	"math"
	"testing"
)

func TestVerify(t *testing.T) {
	// Genuine 0.1, 0.2, 0.9; impostor 0.5, 1.0, 1.1, 1.2: one impostor (0.5)
	// beats one genuine pair (0.9).
	var ps []ScoredPair
	for _, d := range []float64{0.1, 0.2, 0.9} {
		ps = append(ps, ScoredPair{d, true})
	}
	for _, d := range []float64{0.5, 1.0, 1.1, 1.2} {
		ps = append(ps, ScoredPair{d, false})
	}
	v := Verify(ps)
	if math.Abs(v.BestAccuracy-6.0/7) > 1e-9 {
		t.Errorf("best accuracy %v, want 6/7", v.BestAccuracy)
	}
	if v.EER < 0.25 || v.EER > 1.0/3 {
		t.Errorf("EER %v, want between 1/4 and 1/3", v.EER)
	}
	if math.Abs(v.TARAtFAR1-2.0/3) > 1e-9 {
		t.Errorf("TAR at FAR 1%% %v, want 2/3", v.TARAtFAR1)
	}
	if a := AccuracyAt(ps, 0.3); math.Abs(a-6.0/7) > 1e-9 {
		t.Errorf("accuracy at 0.3 = %v", a)
	}
}

func TestMatch(t *testing.T) {
	labels := []Box{{0, 0, 10, 20}, {100, 0, 10, 20}}
	dets := [][4]float64{{1, 1, 11, 21}, {0, 0, 10, 20}, {50, 50, 60, 60}}
	// The first detection takes the first label; the second duplicates it and misses.
	if tp := Match(dets, labels, 0.5); tp != 1 {
		t.Errorf("true positives %d, want 1", tp)
	}
}
