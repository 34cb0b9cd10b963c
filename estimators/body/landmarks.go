package body

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"

	"imageapid/models"
)

// LandmarkModelName is the pose landmark network's entry in the model manifest.
const LandmarkModelName = "pose_landmark_lite"

const (
	landmarkInput = 256
	// bodyPoints are BlazePose's 33 body landmarks; the network adds six
	// auxiliary ones (ROI helpers) after them.
	bodyPoints     = 33
	landmarkPoints = 39
	roiScale       = 1.25 // MediaPipe's RectTransformation scale for the pose ROI
)

// Landmark is one body landmark in image pixels with the probabilities that
// it is visible (not occluded) and present (inside the frame).
type Landmark struct {
	X, Y                 float64
	Visibility, Presence float64
}

// roi is a rotated square in image pixels: centre, side and the angle of
// its x axis (radians, clockwise in the image).
type roi struct{ cx, cy, side, angle float64 }

// roiFromKeypoints is MediaPipe's detection-to-ROI step for pose: a square
// centred on the hip centre, twice the full-body radius times 1.25 on a
// side, rotated so the hip-to-scale-point axis points up.
func roiFromKeypoints(hip, top Point) roi {
	dx, dy := top.X-hip.X, top.Y-hip.Y
	r := math.Hypot(dx, dy)
	return roi{cx: hip.X, cy: hip.Y, side: 2 * r * roiScale, angle: math.Atan2(dx/r, -dy/r)}
}

// toImage maps a point of the n x n crop of r to the image.
func (r roi) toImage(u, v float64, n int) Point {
	k := r.side / float64(n)
	du, dv := (u-float64(n)/2)*k, (v-float64(n)/2)*k
	c, s := math.Cos(r.angle), math.Sin(r.angle)
	return Point{X: r.cx + c*du - s*dv, Y: r.cy + s*du + c*dv}
}

// warpMatrix is the 2x3 affine from image pixel indices to crop pixel indices.
func (r roi) warpMatrix(n int) [2][3]float64 {
	k := float64(n) / r.side
	c, s := math.Cos(r.angle), math.Sin(r.angle)
	h := float64(n) / 2
	ox, oy := 0.5-r.cx, 0.5-r.cy
	return [2][3]float64{
		{k * c, k * s, h + k*(c*ox+s*oy) - 0.5},
		{-k * s, k * c, h + k*(-s*ox+c*oy) - 0.5},
	}
}

// warpCrop cuts the n x n crop of r out of img, black outside the image (as
// MediaPipe pads the pose ROI). Large shrinks go through an area resize first.
func warpCrop(img gocv.Mat, r roi, n int) (gocv.Mat, error) {
	src := img
	if shrink := r.side / float64(n); shrink > 2 {
		f := 1.5 / shrink
		w := max(1, int(math.Round(float64(img.Cols())*f)))
		h := max(1, int(math.Round(float64(img.Rows())*f)))
		small := gocv.NewMat()
		defer small.Close()
		gocv.Resize(img, &small, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
		src = small
		s := float64(w) / float64(img.Cols())
		r = roi{cx: r.cx * s, cy: r.cy * s, side: r.side * s, angle: r.angle}
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
	gocv.WarpAffineWithParams(src, &out, mat, image.Pt(n, n), gocv.InterpolationLinear, gocv.BorderConstant, color.RGBA{})
	if out.Empty() || out.Rows() != n || out.Cols() != n || out.Type() != gocv.MatTypeCV8UC3 || !out.IsContinuous() {
		out.Close()
		return gocv.Mat{}, fmt.Errorf("pose crop: warp gave a %dx%d image of type %v", out.Cols(), out.Rows(), out.Type())
	}
	return out, nil
}

// landmarks runs the pose landmark network on the ROI of a detection and
// returns the 33 body landmarks in image pixels and the probability that
// the ROI holds a person.
func (d *Detector) landmarks(ctx context.Context, img gocv.Mat, r roi) ([]Landmark, float64, error) {
	crop, err := warpCrop(img, r, landmarkInput)
	if err != nil {
		return nil, 0, err
	}
	defer crop.Close()
	pix, err := crop.DataPtrUint8()
	if err != nil {
		return nil, 0, fmt.Errorf("pose crop bytes: %w", err)
	}
	out := make([]Landmark, bodyPoints)
	var flag float64
	err = d.landmark.Run(ctx, func(it *models.Interpreter) error {
		in, err := it.Input(0)
		if err != nil {
			return err
		}
		if len(in) != len(pix) {
			return fmt.Errorf("landmark input holds %d values, the crop %d", len(in), len(pix))
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
		f, err := it.Output(1)
		if err != nil {
			return err
		}
		if len(pts) != landmarkPoints*5 || len(f) != 1 {
			return fmt.Errorf("landmark outputs hold %d and %d values", len(pts), len(f))
		}
		for i := range out {
			p := r.toImage(float64(pts[5*i]), float64(pts[5*i+1]), landmarkInput)
			out[i] = Landmark{X: p.X, Y: p.Y,
				Visibility: sigmoid(float64(pts[5*i+3])), Presence: sigmoid(float64(pts[5*i+4]))}
		}
		flag = float64(f[0])
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("pose landmarks: %w", err)
	}
	return out, flag, nil
}

// landmarkBox is the body box of a person from its landmarks: the box of
// the visible landmarks, grown by the parts of the body the joints do not
// reach (the top of the head above the eyes, the sides of the body),
// clipped to the image. With too few visible landmarks it keeps fallback.
func landmarkBox(lms []Landmark, w, h int, fallback [4]float64) (x1, y1, x2, y2 float64) {
	x1, y1, x2, y2 = math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	n := 0
	for _, l := range lms {
		if l.Visibility < minVisibility {
			continue
		}
		n++
		x1, y1 = math.Min(x1, l.X), math.Min(y1, l.Y)
		x2, y2 = math.Max(x2, l.X), math.Max(y2, l.Y)
	}
	if n < 3 {
		return fallback[0], fallback[1], fallback[2], fallback[3]
	}
	// The head's size sets the margins: ears 7 and 8 and the nose 0.
	head := math.Max(math.Hypot(lms[7].X-lms[8].X, lms[7].Y-lms[8].Y),
		0.5*math.Hypot(lms[0].X-(lms[11].X+lms[12].X)/2, lms[0].Y-(lms[11].Y+lms[12].Y)/2))
	y1 -= headTopMargin * head
	x1 -= sideMargin * head
	x2 += sideMargin * head
	y2 += footMargin * head
	return math.Max(0, x1), math.Max(0, y1), math.Min(float64(w), x2), math.Min(float64(h), y2)
}

// Landmark box margins in units of the head's width (see landmarkBox).
const (
	minVisibility = 0.5
	headTopMargin = 1.1
	sideMargin    = 0.5
	footMargin    = 0.2
)
