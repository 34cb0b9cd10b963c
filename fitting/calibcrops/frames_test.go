package calibcrops

import (
	"context"
	"path/filepath"
	"testing"

	"imageapid/internal/testenv"
)

// The object detector's calibration and agreement frames are letterboxed
// squares of the asked side, drawn from disjoint vtest.avi frames (offsets
// 0 and 8, stride 16) and disjoint stills, with black bars above and below
// the 4:3 frames as the detector's letterbox leaves them.
func TestFrames(t *testing.T) {
	dir := filepath.Join(testenv.Root(t), "third_party", "fixtures")
	cal, agree := CalibrationFrames(dir, 128), AgreementFrames(dir, 128)
	if cal.Offset%cal.Stride == agree.Offset%agree.Stride && cal.Stride == agree.Stride {
		t.Fatal("calibration and agreement frames overlap")
	}
	for _, s := range cal.Stills {
		for _, a := range agree.Stills {
			if s == a {
				t.Fatalf("%s is in both", s)
			}
		}
	}
	for _, f := range []Frames{cal, agree} {
		crops, err := f.Crops(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(crops) < 40+len(f.Stills) {
			t.Fatalf("%s: %d crops", f.Describe(), len(crops))
		}
		first := crops[0]
		if b := first.Bounds(); b.Dx() != 128 || b.Dy() != 128 {
			t.Fatalf("crop is %v, want 128x128", b)
		}
		// vtest.avi is 768x576: 128x96 of picture, 16 black rows above.
		if p := first.PixOffset(64, 4); first.Pix[p]|first.Pix[p+1]|first.Pix[p+2] != 0 {
			t.Errorf("row 4 of a letterboxed 4:3 frame is not black")
		}
		if p := first.PixOffset(64, 64); int(first.Pix[p])+int(first.Pix[p+1])+int(first.Pix[p+2]) == 0 {
			t.Errorf("the middle of a vtest.avi frame is black")
		}
	}
}
