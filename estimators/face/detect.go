package face

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

// blazeFace is one BlazeFace variant: its model, square input side and SSD anchors.
type blazeFace struct {
	model   *models.Model
	size    int
	anchors []anchor
}

// anchor is an SSD anchor centre in [0,1] input coordinates. BlazeFace uses
// fixed-size anchors (width = height = 1), so the centre is all it needs.
type anchor struct{ cx, cy float64 }

// ssdAnchors generates MediaPipe's SSD anchors for a square input with the
// given per-layer strides and anchors per layer, offset 0.5. Consecutive
// layers with the same stride share one feature map, their anchors
// interleaved per cell, as MediaPipe's SsdAnchorsCalculator does.
func ssdAnchors(inputSize int, strides []int, perLayer int) []anchor {
	var out []anchor
	for layer := 0; layer < len(strides); {
		n := 0
		last := layer
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

// shortRangeAnchors: 128x128, strides 8,16,16,16, 2 anchors a layer -> 896.
func shortRangeAnchors() []anchor { return ssdAnchors(128, []int{8, 16, 16, 16}, 2) }

// fullRangeAnchors: 192x192, stride 4, 1 anchor a cell -> 2304.
func fullRangeAnchors() []anchor { return ssdAnchors(192, []int{4}, 1) }

func newBlazeFace(rt *models.Runtime, name string, size int, anchors []anchor) (*blazeFace, error) {
	m, err := rt.Model(name)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	n := len(anchors)
	if err := checkShapes(m.Info, [][]int{{1, size, size, 3}}, [][]int{{1, n, 16}, {1, n, 1}}); err != nil {
		return nil, err
	}
	return &blazeFace{model: m, size: size, anchors: anchors}, nil
}

func checkShapes(info *models.ModelInfo, in, out [][]int) error {
	same := func(a, b []int) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	if len(info.Inputs) != len(in) || len(info.Outputs) != len(out) {
		return fmt.Errorf("model %s: %d inputs and %d outputs, want %d and %d",
			info.Name, len(info.Inputs), len(info.Outputs), len(in), len(out))
	}
	for i := range in {
		if !same(info.Inputs[i].Shape, in[i]) {
			return fmt.Errorf("model %s: input %d has shape %v, want %v", info.Name, i, info.Inputs[i].Shape, in[i])
		}
	}
	for i := range out {
		if !same(info.Outputs[i].Shape, out[i]) {
			return fmt.Errorf("model %s: output %d has shape %v, want %v", info.Name, i, info.Outputs[i].Shape, out[i])
		}
	}
	return nil
}

// detectRegion runs the detector on region r of img, letterboxed into the
// square input (aspect kept, zero padding), and returns detections with a
// score of at least minScore in image pixels. r may reach outside the
// image: what lies outside is black, as the letterbox padding.
func (bf *blazeFace) detectRegion(ctx context.Context, img gocv.Mat, r image.Rectangle, minScore float64) ([]Detection, error) {
	lb, err := letterbox.Region(img, r, bf.size)
	if err != nil || lb == nil {
		return nil, err
	}
	defer lb.Close()
	var dets []Detection
	err = bf.model.Run(ctx, func(it *models.Interpreter) error {
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
		dets = bf.decode(regs, logits, minScore)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("blazeface: %w", err)
	}
	S := float64(bf.size)
	toImage := func(nx, ny float64) Point { // normalized input -> image pixels
		x, y := lb.ToImage(nx*S, ny*S)
		return Point{x, y}
	}
	for i := range dets {
		d := &dets[i]
		p1, p2 := toImage(d.X1, d.Y1), toImage(d.X2, d.Y2)
		d.X1, d.Y1, d.X2, d.Y2 = p1.X, p1.Y, p2.X, p2.Y
		for k := range d.Keypoints {
			q := toImage(d.Keypoints[k].X, d.Keypoints[k].Y)
			d.Keypoints[k] = Point{q.X - 0.5, q.Y - 0.5} // pixel-centre coordinates
		}
	}
	return dets, nil
}

// decode turns raw regressors and score logits into detections in [0,1]
// input coordinates. Each regressor row is box centre x, y, width, height,
// then six keypoints (x, y), all in input pixels relative to the anchor.
func (bf *blazeFace) decode(regs, logits []float32, minScore float64) []Detection {
	S := float64(bf.size)
	var out []Detection
	for i, a := range bf.anchors {
		if i >= len(logits) || 16*i+16 > len(regs) {
			break
		}
		score := sigmoid(math.Max(-100, math.Min(100, float64(logits[i]))))
		if score < minScore {
			continue
		}
		r := regs[16*i : 16*i+16]
		cx := float64(r[0])/S + a.cx
		cy := float64(r[1])/S + a.cy
		w := float64(r[2]) / S
		h := float64(r[3]) / S
		if !(w > 0 && h > 0) {
			continue
		}
		d := Detection{X1: cx - w/2, Y1: cy - h/2, X2: cx + w/2, Y2: cy + h/2, Score: score}
		for k := range d.Keypoints {
			d.Keypoints[k] = Point{X: float64(r[4+2*k])/S + a.cx, Y: float64(r[5+2*k])/S + a.cy}
		}
		out = append(out, d)
	}
	return out
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// weightedNMS is MediaPipe's weighted non-maximum suppression: the most
// confident remaining detection takes every remaining one that overlaps it
// by more than iouThreshold, and its box and keypoints become the
// score-weighted mean of the group; its score stays the group's best.
func weightedNMS(dets []Detection, iouThreshold float64) []Detection {
	rest := append([]Detection(nil), dets...)
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].Score > rest[j].Score })
	var out []Detection
	for len(rest) > 0 {
		top := rest[0]
		var group, keep []Detection
		for _, d := range rest {
			if iou(top, d) > iouThreshold {
				group = append(group, d)
			} else {
				keep = append(keep, d)
			}
		}
		if len(group) == 0 { // a degenerate box overlaps nothing, not even itself
			group = []Detection{top}
			keep = rest[1:]
		}
		rest = keep
		if len(group) == 1 {
			out = append(out, group[0])
			continue
		}
		var sum float64
		var m Detection
		for _, d := range group {
			w := d.Score
			sum += w
			m.X1 += w * d.X1
			m.Y1 += w * d.Y1
			m.X2 += w * d.X2
			m.Y2 += w * d.Y2
			for k := range m.Keypoints {
				m.Keypoints[k].X += w * d.Keypoints[k].X
				m.Keypoints[k].Y += w * d.Keypoints[k].Y
			}
		}
		m.X1, m.Y1, m.X2, m.Y2 = m.X1/sum, m.Y1/sum, m.X2/sum, m.Y2/sum
		for k := range m.Keypoints {
			m.Keypoints[k].X /= sum
			m.Keypoints[k].Y /= sum
		}
		m.Score = top.Score
		out = append(out, m)
	}
	return out
}

func iou(a, b Detection) float64 {
	ix := math.Min(a.X2, b.X2) - math.Max(a.X1, b.X1)
	iy := math.Min(a.Y2, b.Y2) - math.Max(a.Y1, b.Y1)
	if ix <= 0 || iy <= 0 {
		return 0
	}
	inter := ix * iy
	union := (a.X2-a.X1)*(a.Y2-a.Y1) + (b.X2-b.X1)*(b.Y2-b.Y1) - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

// continuousBytes returns the pixel bytes of a continuous 8-bit Mat.
func continuousBytes(m *gocv.Mat) ([]byte, error) {
	if !m.IsContinuous() {
		return nil, fmt.Errorf("image buffer is not continuous")
	}
	b, err := m.DataPtrUint8()
	if err != nil {
		return nil, fmt.Errorf("image bytes: %w", err)
	}
	return b, nil
}
