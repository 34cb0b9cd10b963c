package camera

import (
	"context"
	"image"
	"math"

	"gocv.io/x/gocv"
)

// Classes of detections the tracker knows by name. Detectors may report
// others: tracks are kept per class, whatever the class is.
const (
	ClassFace = "face"
	ClassBody = "body"
)

// Box is a rectangle in coordinates normalized to the frame: [x1, y1, x2, y2],
// each in [0, 1], x1 <= x2, y1 <= y2.
type Box [4]float64

// Width and Height are the box's sides in normalized units.
func (b Box) Width() float64  { return b[2] - b[0] }
func (b Box) Height() float64 { return b[3] - b[1] }

// Area is the box's area as a fraction of the frame.
func (b Box) Area() float64 {
	if b[2] <= b[0] || b[3] <= b[1] {
		return 0
	}
	return (b[2] - b[0]) * (b[3] - b[1])
}

// IoU is the intersection over union of two boxes (0 when either is empty).
func (b Box) IoU(o Box) float64 {
	inter := Box{max(b[0], o[0]), max(b[1], o[1]), min(b[2], o[2]), min(b[3], o[3])}.Area()
	if inter == 0 {
		return 0
	}
	return inter / (b.Area() + o.Area() - inter)
}

// grow widens the box on each side by share of its width and height.
func (b Box) grow(share float64) Box {
	dx, dy := share*b.Width(), share*b.Height()
	return Box{b[0] - dx, b[1] - dy, b[2] + dx, b[3] + dy}
}

// Clamp limits the box to the frame.
func (b Box) Clamp() Box {
	for i := range b {
		b[i] = min(max(b[i], 0), 1)
	}
	return b
}

// Pixels converts the box to a pixel rectangle of a w x h frame, clipped to it.
func (b Box) Pixels(w, h int) image.Rectangle {
	c := b.Clamp()
	return image.Rect(int(c[0]*float64(w)), int(c[1]*float64(h)), int(c[2]*float64(w)+0.5), int(c[3]*float64(h)+0.5)).
		Intersect(image.Rect(0, 0, w, h))
}

// BoxFromPixels normalizes a pixel rectangle of a w x h frame.
func BoxFromPixels(r image.Rectangle, w, h int) Box {
	fw, fh := float64(w), float64(h)
	return Box{float64(r.Min.X) / fw, float64(r.Min.Y) / fh, float64(r.Max.X) / fw, float64(r.Max.Y) / fh}.Clamp()
}

// Detection is one object found in a frame.
type Detection struct {
	Class string  // ClassFace, ClassBody, ...
	Box   Box     // normalized to the frame
	Score float64 // detector confidence; higher is surer (scales differ per detector)
}

// Detector finds objects in a frame. The frame is BGR and borrowed for the
// call: a detector must neither change it nor keep it after returning.
// A camera runs its detectors one after another from one goroutine.
type Detector interface {
	Detect(ctx context.Context, frame gocv.Mat) ([]Detection, error)
}

// Skipped is what a detector returns, as its error, on a frame it does not
// run on (a body detector paced by body_interval, see Paced): the tracker then
// moves the class's tracks by their motion model instead of counting them missed.
type Skipped struct{ Class string }

func (s Skipped) Error() string { return "detector skipped this frame (class " + s.Class + ")" }

// Attributor computes a track's attributes (age, gender, emotion, mask,
// liveness, template, ...) from its best shot. The frame is a BGR crop around
// the detection, borrowed for the call; d.Box is normalized to that crop.
// It returns nil when it has nothing for the detection's class.
type Attributor interface {
	Attributes(ctx context.Context, frame gocv.Mat, d Detection) (map[string]any, error)
}

// QualityFunc scores how good a detection is as a track's best shot; higher
// is better. frame is the full BGR frame, borrowed for the call.
type QualityFunc func(frame gocv.Mat, d Detection) float64

// ScoreAreaQuality is the default best-shot quality: detection score times
// box area, so a larger, surer view wins.
func ScoreAreaQuality(_ gocv.Mat, d Detection) float64 {
	return max(d.Score, 1e-6) * d.Box.Area()
}

// SharpnessQuality prefers sharp, large, confident views: the variance of the
// Laplacian of the box's gray pixels times score and the square root of area.
// It costs a crop conversion per detection, so use it for sparse detections.
func SharpnessQuality(frame gocv.Mat, d Detection) float64 {
	r := d.Box.Pixels(frame.Cols(), frame.Rows())
	if r.Dx() < 3 || r.Dy() < 3 {
		return 0
	}
	crop := frame.Region(r)
	defer crop.Close()
	gray := gocv.NewMat()
	defer gray.Close()
	if crop.Channels() == 1 {
		crop.CopyTo(&gray)
	} else {
		gocv.CvtColor(crop, &gray, gocv.ColorBGRToGray)
	}
	lap := gocv.NewMat()
	defer lap.Close()
	gocv.Laplacian(gray, &lap, gocv.MatTypeCV64F, 1, 1, 0, gocv.BorderDefault)
	mean, stddev := gocv.NewMat(), gocv.NewMat()
	defer mean.Close()
	defer stddev.Close()
	gocv.MeanStdDev(lap, &mean, &stddev)
	sd := stddev.GetDoubleAt(0, 0)
	return max(d.Score, 1e-6) * sd * sd * math.Sqrt(d.Box.Area())
}
