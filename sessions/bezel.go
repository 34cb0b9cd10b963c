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
// a pair among the frame's edges.
//
// Edges of a re-filmed screen are soft and broken (blur, compression, the
// screen's own content against its frame), so a segment detector that needs
// a long unbroken run misses them. Instead each candidate line, at every
// small lean, is scored by the share of the face's span along which an edge
// pixel lies on it: a straight edge covers most of the span even when it
// is broken into pieces.

// bezelSide is the frame width edges are looked for at.
const bezelSide = 320

// Shape of a bezel edge, relative to the face box: how far past the face's
// ends it must run (the span it is scored on: a phone's or a screen's edge
// is much longer than the face it shows), the share of that span it must
// cover, how far from the face it may lie, how far off the vertical or
// horizontal it may lean and how far the pair's leans may differ (degrees:
// a device's opposite edges are parallel, a room's edges need not be).
const (
	bezelOverrun  = 0.5
	bezelCoverage = 0.75
	bezelMaxGap   = 1.2
	bezelMaxLean  = 10
	bezelParallel = 3
)

// bezelAround reports whether long straight edges enclose the face on both
// sides or above and below it.
func bezelAround(img gocv.Mat, d face.Detection) bool {
	w, h := img.Cols(), img.Rows()
	if w < 16 || h < 16 {
		return false
	}
	k := math.Min(1, float64(bezelSide)/float64(w))
	grey := gocv.NewMat()
	defer grey.Close()
	gocv.CvtColor(img, &grey, gocv.ColorBGRToGray)
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(grey, &small, image.Pt(int(float64(w)*k), int(float64(h)*k)), 0, 0, gocv.InterpolationArea)
	edges := gocv.NewMat()
	defer edges.Close()
	gocv.Canny(small, &edges, 40, 120)
	e := edgeMap{pix: edges.ToBytes(), w: edges.Cols(), h: edges.Rows()}
	f := [4]float64{d.X1 * k, d.Y1 * k, d.X2 * k, d.Y2 * k}
	fw, fh := f[2]-f[0], f[3]-f[1]
	if fw < 4 || fh < 4 {
		return false
	}
	left := e.straightEdges(true, f[1]-bezelOverrun*fh, f[3]+bezelOverrun*fh, f[0]-bezelMaxGap*fw, f[0])
	right := e.straightEdges(true, f[1]-bezelOverrun*fh, f[3]+bezelOverrun*fh, f[2], f[2]+bezelMaxGap*fw)
	if parallel(left, right) {
		return true
	}
	above := e.straightEdges(false, f[0]-bezelOverrun*fw, f[2]+bezelOverrun*fw, f[1]-bezelMaxGap*fh, f[1])
	below := e.straightEdges(false, f[0]-bezelOverrun*fw, f[2]+bezelOverrun*fw, f[3], f[3]+bezelMaxGap*fh)
	return parallel(above, below)
}

// leans is a set of whole-degree leans in [-bezelMaxLean, bezelMaxLean].
type leans [2*bezelMaxLean + 1]bool

// parallel says some lean of a is within bezelParallel of some lean of b.
func parallel(a, b leans) bool {
	for i, ok := range a {
		if !ok {
			continue
		}
		for j := max(0, i-bezelParallel); j <= min(len(b)-1, i+bezelParallel); j++ {
			if b[j] {
				return true
			}
		}
	}
	return false
}

// edgeMap is a binary edge image, one byte a pixel.
type edgeMap struct {
	pix  []byte
	w, h int
}

// at says whether (x, y) or a pixel beside it across the line's direction
// is an edge; vertical lines are tolerant in x, horizontal ones in y.
func (e edgeMap) at(x, y int, vertical bool) bool {
	for o := -1; o <= 1; o++ {
		xx, yy := x, y
		if vertical {
			xx += o
		} else {
			yy += o
		}
		if xx >= 0 && yy >= 0 && xx < e.w && yy < e.h && e.pix[yy*e.w+xx] != 0 {
			return true
		}
	}
	return false
}

// straightEdges returns the leans (from the vertical, or the horizontal)
// at which a line crossing the band [from, to] at the middle of its span
// has edge pixels along at least bezelCoverage of the span [s0, s1] (rows
// for a vertical line, columns for a horizontal one). The span is clipped
// to the frame: a phone's edge may run out of view.
func (e edgeMap) straightEdges(vertical bool, s0, s1, from, to float64) leans {
	var found leans
	along, across := e.h, e.w
	if !vertical {
		along, across = e.w, e.h
	}
	a0, a1 := max(0, int(math.Floor(s0))), min(along-1, int(math.Ceil(s1)))
	b0, b1 := max(0, int(math.Floor(from))), min(across-1, int(math.Ceil(to)))
	span := a1 - a0 + 1
	if span < 8 || b1 < b0 {
		return found
	}
	need := int(math.Ceil(bezelCoverage * float64(span)))
	mid := float64(a0+a1) / 2
	for i := range found {
		slope := math.Tan(float64(i-bezelMaxLean) * math.Pi / 180)
		for b := b0; b <= b1 && !found[i]; b++ {
			hits := 0
			for a := a0; a <= a1; a++ {
				c := int(math.Round(float64(b) + (float64(a)-mid)*slope))
				x, y := c, a
				if !vertical {
					x, y = a, c
				}
				if e.at(x, y, vertical) {
					hits++
				}
				// Stop early once the rest of the span cannot reach the need.
				if hits+(a1-a) < need {
					break
				}
			}
			found[i] = hits >= need
		}
	}
	return found
}
