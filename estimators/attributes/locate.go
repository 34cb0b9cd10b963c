// Package attributes owns what the face attribute services share: finding
// the fitted face behind an Image API bbox (or the whole image), the
// features small heads read (the MobileFaceNet embedding and normalized mesh
// geometry), the fitted linear heads themselves (their JSON form, their
// deterministic training and their TFLite form), and the corpus readers the
// training command uses.
package attributes

import (
	"context"
	"fmt"
	"math"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
)

// Box is a face box in image pixels: top-left and bottom-right corners.
type Box struct{ X1, Y1, X2, Y2 float64 }

// Width and Height of the box.
func (b Box) Width() float64  { return b.X2 - b.X1 }
func (b Box) Height() float64 { return b.Y2 - b.Y1 }

func boxOf(d face.Detection) Box { return Box{d.X1, d.Y1, d.X2, d.Y2} }

// IoU is the intersection over union of two boxes.
func IoU(a, b Box) float64 {
	ix := math.Min(a.X2, b.X2) - math.Max(a.X1, b.X1)
	iy := math.Min(a.Y2, b.Y2) - math.Max(a.Y1, b.Y1)
	if ix <= 0 || iy <= 0 {
		return 0
	}
	inter := ix * iy
	return inter / (a.Width()*a.Height() + b.Width()*b.Height() - inter)
}

// Source says how a located face was found.
type Source int

const (
	// Detected: a face the detector found in the image.
	Detected Source = iota
	// Fitted: the mesh fitted on the given box (the detector missed it).
	Fitted
	// Boxed: no mesh; the face's points are placed by the box's proportions.
	Boxed
)

func (s Source) String() string {
	return [...]string{"detected", "fitted", "boxed"}[s]
}

// Located is the face behind a box.
type Located struct {
	Face   face.Face
	Source Source
}

// HasMesh reports whether the face has a fitted mesh.
func (l *Located) HasMesh() bool { return len(l.Face.Mesh) > 0 }

const (
	// matchIoU is the overlap at which a given box is taken to be a detected face.
	matchIoU = 0.4
	// minPresence is the mesh network's face probability a fit on a bare box needs.
	minPresence = 0.5
)

// Locate returns the face behind box: the detected face (from known) that
// overlaps it best, else the mesh fitted on the box itself (eyes, when
// given as image-left and image-right eye, set its rotation), else a face
// whose points sit at a frontal face's proportions of the box.
func Locate(ctx context.Context, p *face.Pipeline, img gocv.Mat, known []face.Face, box Box, eyes *[2]face.Point) (Located, error) {
	if l, ok := Match(known, box); ok {
		return l, nil
	}
	if box.Width() < 2 || box.Height() < 2 {
		return Located{Face: boxedFace(box), Source: Boxed}, nil
	}
	det := face.Detection{X1: box.X1, Y1: box.Y1, X2: box.X2, Y2: box.Y2, Score: 1}
	if eyes != nil {
		det.Keypoints[0], det.Keypoints[1] = eyes[0], eyes[1]
	} else {
		cy := box.Y1 + 0.4*box.Height()
		det.Keypoints[0] = face.Point{X: box.X1 + 0.3*box.Width(), Y: cy}
		det.Keypoints[1] = face.Point{X: box.X1 + 0.7*box.Width(), Y: cy}
	}
	f, err := p.Fit(ctx, img, det)
	if err != nil {
		return Located{}, fmt.Errorf("fit face on box: %w", err)
	}
	if f.Presence >= minPresence && meshInside(f.Mesh, box) {
		return Located{Face: f, Source: Fitted}, nil
	}
	return Located{Face: boxedFace(box), Source: Boxed}, nil
}

// Match returns the known face that overlaps box best, if any overlaps it
// enough to be taken for it: Locate's answer without the image.
func Match(known []face.Face, box Box) (Located, bool) {
	best, bestIoU := -1, matchIoU
	for i := range known {
		if v := IoU(boxOf(known[i].Detection), box); v >= bestIoU {
			best, bestIoU = i, v
		}
	}
	if best < 0 {
		return Located{}, false
	}
	return Located{Face: known[best], Source: Detected}, true
}

// Largest returns the largest known face: LocateLargest's answer without
// the image, when there is a known face.
func Largest(known []face.Face) (Located, bool) {
	if len(known) == 0 {
		return Located{}, false
	}
	best := 0
	for i := range known {
		if area(known[i].Detection) > area(known[best].Detection) {
			best = i
		}
	}
	return Located{Face: known[best], Source: Detected}, true
}

// LocateLargest returns the largest known face, else the face fitted on the
// whole image (a tight face crop the detector misses), else a boxed face
// over the whole image.
func LocateLargest(ctx context.Context, p *face.Pipeline, img gocv.Mat, known []face.Face) (Located, error) {
	if l, ok := Largest(known); ok {
		return l, nil
	}
	w, h := float64(img.Cols()), float64(img.Rows())
	// A tight crop's face box is about its central four fifths.
	return Locate(ctx, p, img, nil, Box{0.1 * w, 0.1 * h, 0.9 * w, 0.9 * h}, nil)
}

func area(d face.Detection) float64 { return (d.X2 - d.X1) * (d.Y2 - d.Y1) }

// meshInside reports whether the mesh's centre lies in the box grown by half:
// a fit that drifted to another face or to nothing is refused.
func meshInside(mesh [][3]float64, b Box) bool {
	var cx, cy float64
	for _, p := range mesh {
		cx += p[0]
		cy += p[1]
	}
	n := float64(len(mesh))
	if n == 0 {
		return false
	}
	cx, cy = cx/n, cy/n
	return cx > b.X1-0.5*b.Width() && cx < b.X2+0.5*b.Width() && cy > b.Y1-0.5*b.Height() && cy < b.Y2+0.5*b.Height()
}

// boxedFace places the fda points a frontal face has inside its detector box
// (eyes at 40% of the height, mouth at 78%), which is all an aligned crop needs.
func boxedFace(b Box) face.Face {
	var f face.Face
	f.Detection = face.Detection{X1: b.X1, Y1: b.Y1, X2: b.X2, Y2: b.Y2, Score: 0}
	at := func(i int, fx, fy float64) {
		f.FDA[i] = [3]float64{b.X1 + fx*b.Width(), b.Y1 + fy*b.Height(), 0}
	}
	at(7, 0.31, 0.40)
	at(10, 0.69, 0.40)
	at(14, 0.50, 0.58)
	at(17, 0.35, 0.78)
	at(19, 0.65, 0.78)
	at(18, 0.50, 0.78)
	f.Detection.Keypoints[0] = face.Point{X: f.FDA[7][0], Y: f.FDA[7][1]}
	f.Detection.Keypoints[1] = face.Point{X: f.FDA[10][0], Y: f.FDA[10][1]}
	return f
}
