package letterbox

import (
	"image"
	"math"
	"testing"

	"gocv.io/x/gocv"

	"imageapid/internal/testenv"
)

// TestShrinkMatchesArea: Shrink (halving steps, then area) gives the same
// picture as one area resize, to within rounding, at the sizes the
// detectors and the mesh ask for.
func TestShrinkMatchesArea(t *testing.T) {
	src, err := gocv.IMDecode(testenv.ReadFixture(t, "astronaut.png"), gocv.IMReadColor)
	if err != nil || src.Empty() {
		t.Fatalf("astronaut: %v", err)
	}
	defer src.Close()
	for _, c := range []struct{ from, to image.Point }{
		{image.Pt(640, 480), image.Pt(192, 144)},
		{image.Pt(512, 512), image.Pt(128, 128)},
		{image.Pt(1280, 720), image.Pt(192, 108)},
		{image.Pt(641, 480), image.Pt(192, 144)}, // odd: one area step
		{image.Pt(300, 200), image.Pt(192, 128)}, // under 2x: one area step
	} {
		in := gocv.NewMat()
		gocv.Resize(src, &in, c.from, 0, 0, gocv.InterpolationLinear)
		want, got := gocv.NewMat(), gocv.NewMat()
		gocv.Resize(in, &want, c.to, 0, 0, gocv.InterpolationArea)
		Shrink(in, &got, c.to)
		if got.Cols() != c.to.X || got.Rows() != c.to.Y || got.Type() != want.Type() {
			t.Fatalf("%v to %v: got a %dx%d image of type %v", c.from, c.to, got.Cols(), got.Rows(), got.Type())
		}
		linear := gocv.NewMat()
		gocv.Resize(in, &linear, c.to, 0, 0, gocv.InterpolationLinear)
		mean, worst := diff(want, got)
		aliased, _ := diff(want, linear)
		t.Logf("%v to %v: mean difference %.3f, worst %.0f levels (bilinear: %.3f)", c.from, c.to, mean, worst, aliased)
		if mean > 1.5 || worst > 40 || (aliased > 0 && mean > aliased/2) {
			t.Errorf("%v to %v: Shrink differs from one area resize by %.3f levels on average, %.0f at worst (bilinear %.3f)",
				c.from, c.to, mean, worst, aliased)
		}
		for _, m := range []gocv.Mat{in, want, got, linear} {
			m.Close()
		}
	}
}

// diff is the mean and largest absolute difference of two 8-bit images' values.
func diff(a, b gocv.Mat) (mean, worst float64) {
	x, _ := a.DataPtrUint8()
	y, _ := b.DataPtrUint8()
	var sum float64
	for i := range x {
		d := math.Abs(float64(x[i]) - float64(y[i]))
		sum += d
		worst = math.Max(worst, d)
	}
	return sum / float64(len(x)), worst
}
