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

// CenterNetModelName is the COCO object detector's entry in the model
// manifest: MB3-CenterNet cut at its raw heads, [1,S,S,3] RGB 0..255 in,
// box sides [1,S/4,S/4,4] and class heatmap [1,S/4,S/4,80] (after its
// sigmoid) out.
const CenterNetModelName = "centernet"

// MoveNetModelName is MoveNet MultiPose Lightning's entry in the model
// manifest, cut at its person heads: [1,256,256,3] RGB 0..255 in, centre
// heatmap [1,64,64,1], box size [1,64,64,2] and centre offset [1,64,64,2]
// (in heatmap cells) out.
const MoveNetModelName = "movenet_multipose"

const (
	// centerNetStride is the input pixels per heatmap cell.
	centerNetStride = 4
	// centerNetClasses is the heatmap depth (COCO's 80); person is class 0.
	centerNetClasses = 80
	personClass      = 0
	// centerNetMinScore and centerNetNMS are the defaults of Human's
	// CenterNet object detection (minConfidence 0.2, iouThreshold 0.4).
	centerNetMinScore = 0.2
	centerNetNMS      = 0.4
	// defaultCenterNetTiling is the centernet detector's tiling when the
	// config names none.
	defaultCenterNetTiling = "off"
)

// centerNet finds people as peaks of the person channel of a COCO
// CenterNet's class heatmap; each peak cell carries the distances from its
// centre to the box's four sides. With movenet set, the network is MoveNet
// MultiPose cut at its person heads (see decodeMoveNet), which finds
// people only.
type centerNet struct {
	model      *models.Model
	size       int // input side in pixels
	minScore   float64
	maxPersons int
	tiling     bool
	movenet    bool
}

func newCenterNet(rt *models.Runtime, cfg Config) (*centerNet, error) {
	m, err := rt.Model(cfg.Model)
	if err != nil {
		return nil, err
	}
	info := m.Info
	movenet := cfg.Detector == "movenet"
	outs := 2
	if movenet {
		outs = 3
	}
	if len(info.Inputs) != 1 || len(info.Outputs) != outs {
		return nil, fmt.Errorf("model %s has %d inputs and %d outputs, want 1 and %d", info.Name, len(info.Inputs), len(info.Outputs), outs)
	}
	in := info.Inputs[0].Shape
	if len(in) != 4 || in[0] != 1 || in[1] != in[2] || in[3] != 3 || in[1]%centerNetStride != 0 {
		return nil, fmt.Errorf("model %s input %v is not [1,S,S,3] with S a multiple of %d", info.Name, in, centerNetStride)
	}
	g := in[1] / centerNetStride
	want := [][]int{{1, g, g, 4}, {1, g, g, centerNetClasses}}
	if movenet {
		want = [][]int{{1, g, g, 1}, {1, g, g, 2}, {1, g, g, 2}}
	}
	for k, o := range info.Outputs {
		if fmt.Sprint(o.Shape) != fmt.Sprint(want[k]) {
			return nil, fmt.Errorf("model %s output %d is %v, want %v", info.Name, k, o.Shape, want[k])
		}
	}
	return &centerNet{model: m, size: in[1], minScore: cfg.MinScore, maxPersons: cfg.MaxPersons,
		tiling: cfg.Tiling == "auto", movenet: movenet}, nil
}

// detect finds people in a BGR image, most confident first: on the whole
// image, and with tiling on, also on overlapping tiles (see regions).
func (c *centerNet) detect(ctx context.Context, img gocv.Mat) ([]Person, error) {
	w, h := img.Cols(), img.Rows()
	var all []scoredBox
	for _, r := range c.regions(w, h) {
		found, err := c.detectRegion(ctx, img, r, []int{personClass}, c.minScore)
		if err != nil {
			return nil, err
		}
		for _, b := range found[personClass] {
			if r == image.Rect(0, 0, w, h) || !letterbox.CutByTile(b.box, r, w, h) {
				all = append(all, b)
			}
		}
	}
	found := nms(all, centerNetNMS)
	out := make([]Person, 0, len(found))
	for _, b := range found {
		out = append(out, Person{X1: b.box[0], Y1: b.box[1], X2: b.box[2], Y2: b.box[3], Score: b.score})
		if len(out) == c.maxPersons {
			break
		}
	}
	return out, nil
}

// regions lists where the detector runs: the whole image, and with tiling
// on, for images whose longer side is well above the input side, the same
// tiles as the pose detector's (squares of 0.6 of the longer side,
// overlapping by a quarter), so that small people are seen at about twice
// the scale.
func (c *centerNet) regions(w, h int) []image.Rectangle {
	out := []image.Rectangle{image.Rect(0, 0, w, h)}
	long := max(w, h)
	if !c.tiling || long < 2*c.size {
		return out
	}
	side := min(min(w, h), int(math.Ceil(float64(long)*0.6)))
	return append(out, letterbox.Tiles(w, h, side)...)
}

// detectClasses finds the objects of the given COCO classes in a BGR image,
// letterboxed into the square input (aspect kept, black padding): per class,
// boxes in image pixels (clipped to the image), most confident first.
func (c *centerNet) detectClasses(ctx context.Context, img gocv.Mat, classes []int, minScore float64) (map[int][]scoredBox, error) {
	found, err := c.detectRegion(ctx, img, image.Rect(0, 0, img.Cols(), img.Rows()), classes, minScore)
	if err != nil {
		return nil, err
	}
	for k, boxes := range found {
		found[k] = nms(boxes, centerNetNMS)
	}
	return found, nil
}

// detectRegion runs the network on region r of img, letterboxed into the
// square input, and returns per class the peak boxes (before non-maximum
// suppression) in image pixels, clipped to the region.
func (c *centerNet) detectRegion(ctx context.Context, img gocv.Mat, r image.Rectangle, classes []int, minScore float64) (map[int][]scoredBox, error) {
	for _, k := range classes {
		if k < 0 || k >= centerNetClasses || (c.movenet && k != personClass) {
			return nil, fmt.Errorf("centernet: class %d is outside 0..%d or not a person for movenet", k, centerNetClasses-1)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("centernet: %w", err)
	}
	S := c.size
	lb, err := letterbox.Region(img, r, S)
	if err != nil {
		return nil, fmt.Errorf("centernet: %w", err)
	}
	if lb == nil {
		return nil, nil
	}
	defer lb.Close()

	cands := map[int][]scoredBox{}
	err = c.model.Run(ctx, func(it *models.Interpreter) error {
		in, err := it.Input(0)
		if err != nil {
			return err
		}
		// RGB 0..255: the network normalizes in its first layer.
		if err := letterbox.FillRGB(in, lb.Pixels, 1, 0); err != nil {
			return err
		}
		if err := it.Invoke(); err != nil {
			return err
		}
		out0, err := it.Output(0)
		if err != nil {
			return err
		}
		out1, err := it.Output(1)
		if err != nil {
			return err
		}
		if c.movenet {
			offsets, err := it.Output(2)
			if err != nil {
				return err
			}
			cands[personClass] = decodeMoveNet(out0, out1, offsets, S/centerNetStride, minScore)
			return nil
		}
		for _, k := range classes {
			cands[k] = decodeCenterNet(out1, out0, S/centerNetStride, k, minScore)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("centernet: %w", err)
	}
	out := map[int][]scoredBox{}
	for k, boxes := range cands {
		for _, b := range boxes {
			x1, y1 := lb.ToImage(b.box[0], b.box[1])
			x2, y2 := lb.ToImage(b.box[2], b.box[3])
			x1, y1 = math.Max(float64(r.Min.X), x1), math.Max(float64(r.Min.Y), y1)
			x2, y2 = math.Min(float64(r.Max.X), x2), math.Min(float64(r.Max.Y), y2)
			if x2-x1 >= 1 && y2-y1 >= 1 {
				out[k] = append(out[k], scoredBox{box: [4]float64{x1, y1, x2, y2}, score: b.score})
			}
		}
	}
	return out, nil
}

// scoredBox is a box in input pixels with its score.
type scoredBox struct {
	box   [4]float64
	score float64
}

// decodeCenterNet finds the cells of one class channel of a g x g heatmap
// that score at least minScore and are the maximum of their 3x3
// neighbourhood (the network's own max-pool peak test), and boxes each from
// the four side distances of its cell: left, top, right, bottom, in input
// pixels from the cell's corner at (stride*x, stride*y).
func decodeCenterNet(heat, sides []float32, g, class int, minScore float64) []scoredBox {
	var out []scoredBox
	for _, p := range peaks(heat, g, centerNetClasses, class, minScore) {
		s := sides[p.cell*4 : p.cell*4+4]
		cx, cy := float64(centerNetStride*p.x), float64(centerNetStride*p.y)
		out = append(out, scoredBox{
			box:   [4]float64{cx - float64(s[0]), cy - float64(s[1]), cx + float64(s[2]), cy + float64(s[3])},
			score: p.score,
		})
	}
	return out
}

// decodeMoveNet decodes MoveNet MultiPose's person heads as TensorFlow's
// CenterNet meta-architecture does: peaks of the g x g centre heatmap, each
// boxed around its cell moved by the offset head (dy, dx) with the size head's
// height and width, all in cells (stride 4 input pixels). The score is the
// centre heatmap's (MoveNet's own person score averages its keypoints,
// which this cut leaves out).
func decodeMoveNet(heat, sizes, offsets []float32, g int, minScore float64) []scoredBox {
	var out []scoredBox
	for _, p := range peaks(heat, g, 1, 0, minScore) {
		cy := float64(p.y) + float64(offsets[2*p.cell])
		cx := float64(p.x) + float64(offsets[2*p.cell+1])
		h, w := math.Max(0, float64(sizes[2*p.cell])), math.Max(0, float64(sizes[2*p.cell+1]))
		out = append(out, scoredBox{
			box: [4]float64{centerNetStride * (cx - w/2), centerNetStride * (cy - h/2),
				centerNetStride * (cx + w/2), centerNetStride * (cy + h/2)},
			score: p.score,
		})
	}
	return out
}

// peak is a heatmap cell that is the maximum of its 3x3 neighbourhood.
type peak struct {
	x, y, cell int
	score      float64
}

// peaks lists the cells of channel k of a g x g x depth heatmap that score
// at least minScore and that no 3x3 neighbour exceeds.
func peaks(heat []float32, g, depth, k int, minScore float64) []peak {
	at := func(x, y int) float32 { return heat[(y*g+x)*depth+k] }
	var out []peak
	for y := 0; y < g; y++ {
		for x := 0; x < g; x++ {
			v := at(x, y)
			if float64(v) < minScore {
				continue
			}
			top := true
			for dy := -1; dy <= 1 && top; dy++ {
				for dx := -1; dx <= 1; dx++ {
					nx, ny := x+dx, y+dy
					if nx >= 0 && ny >= 0 && nx < g && ny < g && at(nx, ny) > v {
						top = false
						break
					}
				}
			}
			if top {
				out = append(out, peak{x: x, y: y, cell: y*g + x, score: float64(v)})
			}
		}
	}
	return out
}

// nms is plain non-maximum suppression: boxes by falling score, each kept
// unless it overlaps a kept one by more than iouThreshold.
func nms(boxes []scoredBox, iouThreshold float64) []scoredBox {
	sort.SliceStable(boxes, func(i, j int) bool { return boxes[i].score > boxes[j].score })
	var out []scoredBox
	for _, b := range boxes {
		keep := true
		for _, k := range out {
			if iou(b.box, k.box) > iouThreshold {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, b)
		}
	}
	return out
}
