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
)

// centerNet finds people as peaks of the person channel of a COCO
// CenterNet's class heatmap; each peak cell carries the distances from its
// centre to the box's four sides.
type centerNet struct {
	model      *models.Model
	size       int // input side in pixels
	minScore   float64
	maxPersons int
}

func newCenterNet(rt *models.Runtime, cfg Config) (*centerNet, error) {
	m, err := rt.Model(CenterNetModelName)
	if err != nil {
		return nil, err
	}
	info := m.Info
	if len(info.Inputs) != 1 || len(info.Outputs) != 2 {
		return nil, fmt.Errorf("model %s has %d inputs and %d outputs, want 1 and 2", info.Name, len(info.Inputs), len(info.Outputs))
	}
	in := info.Inputs[0].Shape
	if len(in) != 4 || in[0] != 1 || in[1] != in[2] || in[3] != 3 || in[1]%centerNetStride != 0 {
		return nil, fmt.Errorf("model %s input %v is not [1,S,S,3] with S a multiple of %d", info.Name, in, centerNetStride)
	}
	g := in[1] / centerNetStride
	want := [][]int{{1, g, g, 4}, {1, g, g, centerNetClasses}}
	for k, o := range info.Outputs {
		if fmt.Sprint(o.Shape) != fmt.Sprint(want[k]) {
			return nil, fmt.Errorf("model %s output %d is %v, want %v", info.Name, k, o.Shape, want[k])
		}
	}
	return &centerNet{model: m, size: in[1], minScore: cfg.MinScore, maxPersons: cfg.MaxPersons}, nil
}

// detect finds people in a BGR image, most confident first.
func (c *centerNet) detect(ctx context.Context, img gocv.Mat) ([]Person, error) {
	found, err := c.detectClasses(ctx, img, []int{personClass}, c.minScore)
	if err != nil {
		return nil, err
	}
	out := make([]Person, 0, len(found[personClass]))
	for _, b := range found[personClass] {
		out = append(out, Person{X1: b.box[0], Y1: b.box[1], X2: b.box[2], Y2: b.box[3], Score: b.score})
		if len(out) == c.maxPersons {
			break
		}
	}
	return out, nil
}

// detectClasses finds the objects of the given COCO classes in a BGR image,
// letterboxed into the square input (aspect kept, black padding): per class,
// boxes in image pixels (clipped to the image), most confident first.
func (c *centerNet) detectClasses(ctx context.Context, img gocv.Mat, classes []int, minScore float64) (map[int][]scoredBox, error) {
	for _, k := range classes {
		if k < 0 || k >= centerNetClasses {
			return nil, fmt.Errorf("centernet: class %d is outside 0..%d", k, centerNetClasses-1)
		}
	}
	w, h := img.Cols(), img.Rows()
	S := c.size
	lb, err := letterbox.Region(img, image.Rect(0, 0, w, h), S)
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
		sides, err := it.Output(0)
		if err != nil {
			return err
		}
		heat, err := it.Output(1)
		if err != nil {
			return err
		}
		for _, k := range classes {
			cands[k] = decodeCenterNet(heat, sides, S/centerNetStride, k, minScore)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("centernet: %w", err)
	}
	out := map[int][]scoredBox{}
	for k, boxes := range cands {
		for _, b := range nms(boxes, centerNetNMS) {
			x1, y1 := lb.ToImage(b.box[0], b.box[1])
			x2, y2 := lb.ToImage(b.box[2], b.box[3])
			x1, y1 = math.Max(0, x1), math.Max(0, y1)
			x2, y2 = math.Min(float64(w), x2), math.Min(float64(h), y2)
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
	at := func(x, y int) float32 { return heat[(y*g+x)*centerNetClasses+class] }
	var out []scoredBox
	for y := 0; y < g; y++ {
		for x := 0; x < g; x++ {
			v := at(x, y)
			if float64(v) < minScore {
				continue
			}
			peak := true
			for dy := -1; dy <= 1 && peak; dy++ {
				for dx := -1; dx <= 1; dx++ {
					nx, ny := x+dx, y+dy
					if nx < 0 || ny < 0 || nx >= g || ny >= g {
						continue
					}
					if at(nx, ny) > v {
						peak = false
						break
					}
				}
			}
			if !peak {
				continue
			}
			s := sides[(y*g+x)*4 : (y*g+x)*4+4]
			cx, cy := float64(centerNetStride*x), float64(centerNetStride*y)
			out = append(out, scoredBox{
				box:   [4]float64{cx - float64(s[0]), cy - float64(s[1]), cx + float64(s[2]), cy + float64(s[3])},
				score: float64(v),
			})
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
