package face

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"

	"imageapid/models"
)

const (
	meshPoints = 468
	meshInput  = 192
	// roiScale is MediaPipe's face-landmark ROI: 1.5 times the face box.
	roiScale = 1.5
)

// roi is a rotated square in image pixels (continuous coordinates, 0 = the
// left edge of the first pixel): centre, side and the angle of its x axis
// (radians, clockwise in the image).
type roi struct {
	cx, cy, side, angle float64
}

// roiFromDetection centres the ROI on the box, sides 1.5x its longer side,
// rotated so the detector's eye keypoints lie on a horizontal line.
func roiFromDetection(d Detection) roi {
	re, le := d.Keypoints[0], d.Keypoints[1] // subject's right (image left), subject's left
	return roi{
		cx:    (d.X1 + d.X2) / 2,
		cy:    (d.Y1 + d.Y2) / 2,
		side:  roiScale * math.Max(d.X2-d.X1, d.Y2-d.Y1),
		angle: math.Atan2(le.Y-re.Y, le.X-re.X),
	}
}

// roiFromMesh is MediaPipe's landmarks-to-ROI step: rotation from the outer
// eye corners (33 -> 263), the mesh's bounding box in that rotated frame,
// 1.5x its longer side.
func roiFromMesh(mesh [][3]float64) roi {
	a, b := mesh[33], mesh[263]
	angle := math.Atan2(b[1]-a[1], b[0]-a[0])
	c, s := math.Cos(angle), math.Sin(angle)
	minU, minV, maxU, maxV := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range mesh {
		u := c*p[0] + s*p[1]
		v := -s*p[0] + c*p[1]
		minU, maxU = math.Min(minU, u), math.Max(maxU, u)
		minV, maxV = math.Min(minV, v), math.Max(maxV, v)
	}
	cu, cv := (minU+maxU)/2, (minV+maxV)/2
	return roi{
		cx:    c*cu - s*cv,
		cy:    s*cu + c*cv,
		side:  roiScale * math.Max(maxU-minU, maxV-minV),
		angle: angle,
	}
}

// toImage maps a point of the n x n crop of r (continuous coordinates) to the image.
func (r roi) toImage(u, v float64, n int) Point {
	k := r.side / float64(n)
	du, dv := (u-float64(n)/2)*k, (v-float64(n)/2)*k
	c, s := math.Cos(r.angle), math.Sin(r.angle)
	return Point{X: r.cx + c*du - s*dv, Y: r.cy + s*du + c*dv}
}

// warpMatrix is the 2x3 affine from image pixel indices to crop pixel
// indices of the n x n crop of r, for gocv.WarpAffine.
func (r roi) warpMatrix(n int) [2][3]float64 {
	k := float64(n) / r.side
	c, s := math.Cos(r.angle), math.Sin(r.angle)
	h := float64(n) / 2
	// crop = h + k R^T (img + 0.5 - centre) - 0.5
	ox, oy := 0.5-r.cx, 0.5-r.cy
	return [2][3]float64{
		{k * c, k * s, h + k*(c*ox+s*oy) - 0.5},
		{-k * s, k * c, h + k*(-s*ox+c*oy) - 0.5},
	}
}

// warpCrop cuts the n x n crop of r out of img (BGR), replicating the border.
// When the crop shrinks the face by more than 2x, the image is first
// downscaled with area averaging so the bilinear warp does not alias.
func warpCrop(img gocv.Mat, r roi, n int) (gocv.Mat, error) {
	src := img
	scale := 1.0
	if shrink := r.side / float64(n); shrink > 2 {
		f := 1.5 / shrink
		w := max(1, int(math.Round(float64(img.Cols())*f)))
		h := max(1, int(math.Round(float64(img.Rows())*f)))
		small := gocv.NewMat()
		gocv.Resize(img, &small, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
		defer small.Close()
		src = small
		scale = float64(w) / float64(img.Cols())
		r = roi{cx: r.cx * scale, cy: r.cy * scale, side: r.side * scale, angle: r.angle}
	}
	m := r.warpMatrix(n)
	mat := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
	defer mat.Close()
	for i := 0; i < 2; i++ {
		for j := 0; j < 3; j++ {
			mat.SetDoubleAt(i, j, m[i][j])
		}
	}
	out := gocv.NewMat()
	gocv.WarpAffineWithParams(src, &out, mat, image.Pt(n, n), gocv.InterpolationLinear, gocv.BorderReplicate, color.RGBA{})
	if out.Empty() || out.Rows() != n || out.Cols() != n || out.Type() != gocv.MatTypeCV8UC3 {
		out.Close()
		return gocv.Mat{}, fmt.Errorf("face crop: warp gave a %dx%d image of type %v", out.Cols(), out.Rows(), out.Type())
	}
	return out, nil
}

// meshModel is the 468-point face landmark network.
type meshModel struct{ model *models.Model }

func newMeshModel(rt *models.Runtime) (*meshModel, error) {
	m, err := rt.Model("face_landmark")
	if err != nil {
		return nil, fmt.Errorf("load face_landmark: %w", err)
	}
	if err := checkShapes(m.Info, [][]int{{1, meshInput, meshInput, 3}},
		[][]int{{1, 1, 1, meshPoints * 3}, {1, 1, 1, 1}}); err != nil {
		return nil, err
	}
	return &meshModel{model: m}, nil
}

// run fits the mesh in ROI r and returns it in image pixels (z scaled like
// x and y) with the face-presence probability.
func (mm *meshModel) run(ctx context.Context, img gocv.Mat, r roi) ([][3]float64, float64, error) {
	crop, err := warpCrop(img, r, meshInput)
	if err != nil {
		return nil, 0, err
	}
	defer crop.Close()
	pix, err := continuousBytes(&crop)
	if err != nil {
		return nil, 0, err
	}
	mesh := make([][3]float64, meshPoints)
	var presence float64
	err = mm.model.Run(ctx, func(it *models.Interpreter) error {
		in, err := it.Input(0)
		if err != nil {
			return err
		}
		if len(in) != len(pix) {
			return fmt.Errorf("mesh input holds %d values, the crop %d", len(in), len(pix))
		}
		for i := 0; i+2 < len(pix); i += 3 { // BGR bytes -> RGB in [0, 1]
			in[i] = float32(pix[i+2]) / 255
			in[i+1] = float32(pix[i+1]) / 255
			in[i+2] = float32(pix[i]) / 255
		}
		if err := it.Invoke(); err != nil {
			return err
		}
		pts, err := it.Output(0)
		if err != nil {
			return err
		}
		flag, err := it.Output(1)
		if err != nil {
			return err
		}
		if len(pts) != meshPoints*3 || len(flag) != 1 {
			return fmt.Errorf("mesh outputs hold %d and %d values", len(pts), len(flag))
		}
		k := r.side / meshInput
		for i := range mesh {
			p := r.toImage(float64(pts[3*i]), float64(pts[3*i+1]), meshInput)
			mesh[i] = [3]float64{p.X, p.Y, float64(pts[3*i+2]) * k}
		}
		presence = sigmoid(float64(flag[0]))
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("face mesh: %w", err)
	}
	return mesh, presence, nil
}
