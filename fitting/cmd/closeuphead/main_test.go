package main

import (
	"image"
	"testing"
)

// TestFitSeparates checks the head's sign and weighting: two clusters, the
// faces ten times as many, each side scored on its own side of zero.
func TestFitSeparates(t *testing.T) {
	var ss []sample
	for i := 0; i < 200; i++ {
		d := float32(i%7) * 0.01
		ss = append(ss, sample{X: []float32{1 + d, 0.5 - d, 0}, Face: true})
		if i%10 == 0 {
			ss = append(ss, sample{X: []float32{-1 - d, 0.5 + d, 0.2}})
		}
	}
	w, b, err := fit(ss, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if got := logit(w, b, s.X); (got > 0) != s.Face {
			t.Fatalf("face %v scored %.3f", s.Face, got)
		}
	}
}

// TestWindowsInsideImage checks that every no-face crop window lies in the
// image and is not empty.
func TestWindowsInsideImage(t *testing.T) {
	for _, wh := range [][2]int{{640, 480}, {300, 800}, {61, 60}} {
		b := image.Rect(0, 0, wh[0], wh[1])
		ws := windows(wh[0], wh[1])
		if len(ws) != 46 {
			t.Fatalf("%v: %d windows, want 46", wh, len(ws))
		}
		for _, r := range ws {
			if r.Empty() || !r.In(b) {
				t.Fatalf("%v: window %v outside the image or empty", wh, r)
			}
		}
	}
}
