package attributes

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
	"imageapid/models"
)

// Network is a compiled attribute network fed an aligned face crop.
type Network struct {
	model  *models.Model
	size   int
	gray   bool
	bgr    bool
	lo     float32
	hi     float32
	zoom   float64
	mirror bool
	box    float64
}

// NetworkSpec says how a face becomes the network's input: the aligned
// crop (ArcFace layout) zoomed by Zoom about its centre (below 1 shows
// more of the head), resized to the input side, RGB, BGR or gray (ITU-R
// 601 weights), pixels 0..255 mapped linearly onto [Lo, Hi]. Mirror runs
// the network on the crop and on its mirror image and averages the outputs
// (test-time augmentation, at twice the cost). Box, when above zero, crops
// as face-api does instead (LandmarkBoxCrop with that padding; Zoom unused).
type NetworkSpec struct {
	Model  string
	Gray   bool
	BGR    bool
	Lo, Hi float32
	Zoom   float64
	Mirror bool
	Box    float64
}

// NewNetwork loads a compiled network.
func NewNetwork(rt *models.Runtime, spec NetworkSpec) (*Network, error) {
	m, err := rt.Model(spec.Model)
	if err != nil {
		return nil, fmt.Errorf("attribute network: %w", err)
	}
	in := m.Info.Inputs
	ch := 3
	if spec.Gray {
		ch = 1
	}
	if len(in) != 1 || len(in[0].Shape) != 4 || in[0].Shape[1] != in[0].Shape[2] || in[0].Shape[3] != ch {
		return nil, fmt.Errorf("attribute network %s: input %v, want [1,N,N,%d]", spec.Model, in, ch)
	}
	zoom := spec.Zoom
	if zoom == 0 {
		zoom = 1
	}
	return &Network{model: m, size: in[0].Shape[1], gray: spec.Gray, bgr: spec.BGR, lo: spec.Lo, hi: spec.Hi, zoom: zoom, mirror: spec.Mirror, box: spec.Box}, nil
}

// Crop returns the network's input crop of the face (BGR), for inspection.
func (n *Network) Crop(img gocv.Mat, f *face.Face) (gocv.Mat, error) {
	if n.box > 0 {
		return LandmarkBoxCrop(img, f, n.size, n.box)
	}
	return ZoomedCrop(img, f, n.size, n.zoom)
}

// ZoomedCrop cuts a size x size BGR crop of f from img: the ArcFace-aligned
// crop of face.AlignmentMatrix zoomed by zoom about its centre (below 1 shows
// more of the head), the border replicated. The model compiler calibrates on
// these crops too, so both must stay one function. The caller closes the Mat.
func ZoomedCrop(img gocv.Mat, f *face.Face, size int, zoom float64) (gocv.Mat, error) {
	m := face.AlignmentMatrix(f, size)
	c := float64(size) / 2
	for r := 0; r < 2; r++ {
		for k := 0; k < 3; k++ {
			m[r][k] *= zoom
			if math.IsNaN(m[r][k]) || math.IsInf(m[r][k], 0) {
				return gocv.Mat{}, errors.New("attribute crop: the face's points are degenerate")
			}
		}
	}
	m[0][2] += c * (1 - zoom)
	m[1][2] += c * (1 - zoom)
	mat := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
	defer mat.Close()
	for r := 0; r < 2; r++ {
		for k := 0; k < 3; k++ {
			mat.SetDoubleAt(r, k, m[r][k])
		}
	}
	out := gocv.NewMat()
	gocv.WarpAffineWithParams(img, &out, mat, image.Pt(size, size), gocv.InterpolationLinear, gocv.BorderReplicate, color.RGBA{})
	if out.Empty() {
		out.Close()
		return gocv.Mat{}, errors.New("attribute crop: warp failed")
	}
	return out, nil
}

// Run feeds the face to the network and returns its outputs in order (with
// Mirror, each the mean of the crop's and its mirror image's).
func (n *Network) Run(ctx context.Context, img gocv.Mat, f *face.Face) ([][]float32, error) {
	crop, err := n.Crop(img, f)
	if err != nil {
		return nil, err
	}
	defer crop.Close()
	crops, closeMirror := face.WithMirror(crop, n.mirror)
	defer closeMirror()
	var outs [][]float32
	err = n.model.Run(ctx, func(it *models.Interpreter) error {
		for _, c := range crops {
			if err := n.fill(it, c); err != nil {
				return err
			}
			if err := it.Invoke(); err != nil {
				return err
			}
			for k := range n.model.Info.Outputs {
				o, err := it.Output(k)
				if err != nil {
					return err
				}
				if k == len(outs) {
					outs = append(outs, make([]float32, len(o)))
				}
				for i, v := range o {
					outs[k][i] += v / float32(len(crops))
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("attribute network: %w", err)
	}
	return outs, nil
}

// fill writes a BGR crop into the interpreter's input as the spec says.
func (n *Network) fill(it *models.Interpreter, crop gocv.Mat) error {
	pix, err := crop.DataPtrUint8()
	if err != nil {
		return err
	}
	in, err := it.Input(0)
	if err != nil {
		return err
	}
	scale := (n.hi - n.lo) / 255
	px := n.size * n.size
	if (n.gray && len(in) != px) || (!n.gray && len(in) != 3*px) || len(pix) < 3*px {
		return fmt.Errorf("input holds %d values", len(in))
	}
	for i := 0; i < px; i++ {
		b, g, r := float32(pix[3*i]), float32(pix[3*i+1]), float32(pix[3*i+2])
		switch {
		case n.gray:
			in[i] = (0.2989*r+0.587*g+0.114*b)*scale + n.lo
		case n.bgr:
			in[3*i] = b*scale + n.lo
			in[3*i+1] = g*scale + n.lo
			in[3*i+2] = r*scale + n.lo
		default:
			in[3*i] = r*scale + n.lo
			in[3*i+1] = g*scale + n.lo
			in[3*i+2] = b*scale + n.lo
		}
	}
	return nil
}
