package sessions

import (
	"image"
	"math"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
)

// A face shown on a phone, a monitor or a printed photo sits inside the
// device's straight edges: two long parallel lines close on either side of
// it (the phone's sides, the screen's black bars), or above and below it
// (a monitor's bezel and taskbar). A live face in front of a camera has a
// room behind it, where one straight edge beside the face is common (a door,
// a shelf) but a pair enclosing it closely is not. bezelAround looks for such
// a pair with long line segments of the frame's edges.

// bezelSide is the frame width edges are looked for at.
const bezelSide = 320

// Shape of a bezel edge, relative to the face box: how much longer than the
// face it must run, how far from the face it may lie, and how far off the
// vertical or horizontal it may lean (degrees).
const (
	bezelMinLength = 1.4
	bezelMaxGap    = 1.2
	bezelMaxLean   = 10.0
)

// bezelAround reports whether long straight edges enclose the face on both
// sides or above and below it.
func bezelAround(img gocv.Mat, d face.Detection) bool {
	w, h := img.Cols(), img.Rows()
	if w < 16 || h < 16 {
		return false
	}
	k := float64(bezelSide) / float64(w)
	if k > 1 {
		k = 1
	}
	grey := gocv.NewMat()
	defer grey.Close()
	gocv.CvtColor(img, &grey, gocv.ColorBGRToGray)
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(grey, &small, image.Pt(int(float64(w)*k), int(float64(h)*k)), 0, 0, gocv.InterpolationArea)
	edges := gocv.NewMat()
	defer edges.Close()
	gocv.Canny(small, &edges, 40, 120)
	fx1, fy1, fx2, fy2 := d.X1*k, d.Y1*k, d.X2*k, d.Y2*k
	fw, fh := fx2-fx1, fy2-fy1
	if fw < 4 || fh < 4 {
		return false
	}
	lines := gocv.NewMat()
	defer lines.Close()
	minLen := float32(bezelMinLength * math.Min(fw, fh))
	gocv.HoughLinesPWithParams(edges, &lines, 1, math.Pi/180, 40, minLen, 4)
	var left, right, above, below bool
	for i := 0; i < lines.Rows(); i++ {
		v := lines.GetVeciAt(i, 0)
		x1, y1, x2, y2 := float64(v[0]), float64(v[1]), float64(v[2]), float64(v[3])
		dx, dy := x2-x1, y2-y1
		angle := math.Abs(math.Atan2(dy, dx) * 180 / math.Pi)
		switch {
		case math.Abs(angle-90) < bezelMaxLean: // vertical
			if math.Min(y1, y2) > fy1 || math.Max(y1, y2) < fy2 {
				continue // must run past the face's top and bottom
			}
			x := (x1 + x2) / 2
			if x < fx1 && fx1-x < bezelMaxGap*fw {
				left = true
			}
			if x > fx2 && x-fx2 < bezelMaxGap*fw {
				right = true
			}
		case angle < bezelMaxLean || angle > 180-bezelMaxLean: // horizontal
			if math.Min(x1, x2) > fx1 || math.Max(x1, x2) < fx2 {
				continue
			}
			y := (y1 + y2) / 2
			if y < fy1 && fy1-y < bezelMaxGap*fh {
				above = true
			}
			if y > fy2 && y-fy2 < bezelMaxGap*fh {
				below = true
			}
		}
	}
	return (left && right) || (above && below)
}
