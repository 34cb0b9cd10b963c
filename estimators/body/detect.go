package body

import (
	"context"
	"fmt"
	"image"
	"math"
	"sort"

	"gocv.io/x/gocv"

	"imageapid/estimators/internal/letterbox"
	"imageapid/models"
)

// anchor is an SSD anchor centre in [0,1] input coordinates. The pose
// detector uses fixed-size anchors, so the centre is all it needs.
type anchor struct{ cx, cy float64 }

// poseAnchors are MediaPipe's pose detection anchors: 224x224 input,
// strides 8, 16, 32, 32, 32, two anchors a layer, offset 0.5. Layers with
// the same stride share one feature map, their anchors interleaved per cell
// (28x28x2 + 14x14x2 + 7x7x6 = 2254).
func poseAnchors() []anchor {
	strides := []int{8, 16, 32, 32, 32}
	const perLayer = 2
	var out []anchor
	for layer := 0; layer < len(strides); {
		n, last := 0, layer
		for last < len(strides) && strides[last] == strides[layer] {
			n += perLayer
			last++
		}
		side := int(math.Ceil(float64(inputSize) / float64(strides[layer])))
		for y := 0; y < side; y++ {
			for x := 0; x < side; x++ {
				a := anchor{cx: (float64(x) + 0.5) / float64(side), cy: (float64(y) + 0.5) / float64(side)}
				for k := 0; k < n; k++ {
					out = append(out, a)
				}
			}
		}
		layer = last
	}
	return out
}

// raw is one detector output: the face box, the four keypoints and the score.
type raw struct {
	box   [4]float64
	kp    [4]Point
	score float64
}

// detectRegion runs the detector on region r of img, letterboxed into the
// square input (aspect kept, zero padding), and returns detections scoring
// at least the configured minimum, in image pixels.
func (d *Detector) detectRegion(ctx context.Context, img gocv.Mat, r image.Rectangle) ([]raw, error) {
	lb, err := letterbox.Region(img, r, inputSize)
	if err != nil || lb == nil {
		return nil, err
	}
	defer lb.Close()
	var dets []raw
	err = d.model.Run(ctx, func(it *models.Interpreter) error {
		in, err := it.Input(0)
		if err != nil {
			return err
		}
		if err := letterbox.FillRGB(in, lb.Pixels, 127.5, -1); err != nil {
			return err
		}
		if err := it.Invoke(); err != nil {
			return err
		}
		regs, err := it.Output(0)
		if err != nil {
			return err
		}
		logits, err := it.Output(1)
		if err != nil {
			return err
		}
		dets = d.decode(regs, logits)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pose detector: %w", err)
	}
	toImage := func(nx, ny float64) Point { // normalized input -> image pixels
		x, y := lb.ToImage(nx*inputSize, ny*inputSize)
		return Point{x, y}
	}
	for i := range dets {
		det := &dets[i]
		p1, p2 := toImage(det.box[0], det.box[1]), toImage(det.box[2], det.box[3])
		det.box = [4]float64{p1.X, p1.Y, p2.X, p2.Y}
		for k := range det.kp {
			det.kp[k] = toImage(det.kp[k].X, det.kp[k].Y)
		}
	}
	return dets, nil
}

// decode turns raw regressors and score logits into detections in [0,1]
// input coordinates. Each regressor row is box centre x, y, width, height,
// then four keypoints (x, y), all in input pixels relative to the anchor.
func (d *Detector) decode(regs, logits []float32) []raw {
	const S = float64(inputSize)
	var out []raw
	for i, a := range d.anchors {
		if i >= len(logits) || 12*i+12 > len(regs) {
			break
		}
		score := sigmoid(math.Max(-100, math.Min(100, float64(logits[i]))))
		if score < d.cfg.MinScore {
			continue
		}
		r := regs[12*i : 12*i+12]
		cx, cy := float64(r[0])/S+a.cx, float64(r[1])/S+a.cy
		w, h := float64(r[2])/S, float64(r[3])/S
		if !(w > 0 && h > 0) {
			continue
		}
		det := raw{box: [4]float64{cx - w/2, cy - h/2, cx + w/2, cy + h/2}, score: score}
		for k := range det.kp {
			det.kp[k] = Point{X: float64(r[4+2*k])/S + a.cx, Y: float64(r[5+2*k])/S + a.cy}
		}
		out = append(out, det)
	}
	return out
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// weightedNMS is MediaPipe's weighted non-maximum suppression over the face
// boxes: the most confident remaining detection takes every remaining one
// that overlaps it by more than iouThreshold, and its box and keypoints
// become the score-weighted mean of the group; its score stays the group's best.
func weightedNMS(dets []raw, iouThreshold float64) []raw {
	rest := append([]raw(nil), dets...)
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].score > rest[j].score })
	var out []raw
	for len(rest) > 0 {
		top := rest[0]
		group := []raw{top}
		var keep []raw
		for _, d := range rest[1:] {
			if iou(top.box, d.box) > iouThreshold {
				group = append(group, d)
			} else {
				keep = append(keep, d)
			}
		}
		var sum float64
		var m raw
		for _, d := range group {
			w := d.score
			sum += w
			for k := range m.box {
				m.box[k] += w * d.box[k]
			}
			for k := range m.kp {
				m.kp[k].X += w * d.kp[k].X
				m.kp[k].Y += w * d.kp[k].Y
			}
		}
		for k := range m.box {
			m.box[k] /= sum
		}
		for k := range m.kp {
			m.kp[k].X /= sum
			m.kp[k].Y /= sum
		}
		m.score = top.score
		out = append(out, m)
		rest = keep
	}
	return out
}

func iou(a, b [4]float64) float64 {
	ix := math.Min(a[2], b[2]) - math.Max(a[0], b[0])
	iy := math.Min(a[3], b[3]) - math.Max(a[1], b[1])
	if ix <= 0 || iy <= 0 {
		return 0
	}
	inter := ix * iy
	union := (a[2]-a[0])*(a[3]-a[1]) + (b[2]-b[0])*(b[3]-b[1]) - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

// person derives the whole-body box from a detection in an image of w x h
// pixels; it reports false for a degenerate detection.
func (r raw) person(w, h int) (Person, bool) {
	hip, top := r.kp[0], r.kp[1]
	radius := math.Hypot(top.X-hip.X, top.Y-hip.Y)
	if !(radius > 0) || math.IsNaN(r.box[0]+r.box[1]+r.box[2]+r.box[3]) {
		return Person{}, false
	}
	// Body frame: "up" runs from the hip centre to the scale point. The body
	// spans from the head (the face box, or the circle's top) down to the
	// circle's bottom, and across a fraction of the radius.
	ux, uy := (top.X-hip.X)/radius, (top.Y-hip.Y)/radius
	vx, vy := -uy, ux
	half := bodyHalfWidth * radius
	corners := []Point{}
	for _, a := range []float64{radius * bodyTop, -radius * bodyBottom} {
		for _, b := range []float64{-half, half} {
			corners = append(corners, Point{hip.X + a*ux + b*vx, hip.Y + a*uy + b*vy})
		}
	}
	x1, y1, x2, y2 := r.box[0], r.box[1], r.box[2], r.box[3]
	for _, c := range corners {
		x1, y1 = math.Min(x1, c.X), math.Min(y1, c.Y)
		x2, y2 = math.Max(x2, c.X), math.Max(y2, c.Y)
	}
	x1, y1 = math.Max(0, x1), math.Max(0, y1)
	x2, y2 = math.Min(float64(w), x2), math.Min(float64(h), y2)
	if !(x2-x1 >= 1 && y2-y1 >= 1) {
		return Person{}, false
	}
	return Person{X1: x1, Y1: y1, X2: x2, Y2: y2, Score: r.score, Face: r.box, Keypoints: r.kp}, true
}

// Body shape in units of the detector's full-body radius, measured from the
// hip centre along the body axis (see person).
const (
	bodyTop       = 0.9
	bodyBottom    = 1.0
	bodyHalfWidth = 0.3
)
