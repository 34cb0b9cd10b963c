// Package letterbox puts an image region into a square network input,
// keeping its aspect ratio with black padding, and maps input coordinates
// back to the image. The face and body detectors share it.
package letterbox

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"
)

// Box is one letterboxed region; Pixels is valid until Close.
type Box struct {
	// Pixels are the input's BGR bytes, Size*Size*3 of them.
	Pixels []byte
	Size   int

	mat    gocv.Mat
	vis    image.Rectangle
	ox, oy int
	sx, sy float64
}

// Region letterboxes region r of img into a size x size input: r is scaled to
// fit and centred, and whatever of r lies outside the image is black, like the
// padding. It returns nil when r shows nothing of the image.
func Region(img gocv.Mat, r image.Rectangle, size int) (*Box, error) {
	vis := r.Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	if r.Dx() <= 0 || r.Dy() <= 0 || vis.Empty() {
		return nil, nil
	}
	scale := float64(size) / float64(max(r.Dx(), r.Dy()))
	nw := min(size, max(1, int(math.Round(float64(vis.Dx())*scale))))
	nh := min(size, max(1, int(math.Round(float64(vis.Dy())*scale))))
	// Where the visible part lands in the input: r centred, then vis inside r.
	ox := (size-int(math.Round(float64(r.Dx())*scale)))/2 + int(math.Round(float64(vis.Min.X-r.Min.X)*scale))
	oy := (size-int(math.Round(float64(r.Dy())*scale)))/2 + int(math.Round(float64(vis.Min.Y-r.Min.Y)*scale))
	ox = max(0, min(ox, size-nw))
	oy = max(0, min(oy, size-nh))

	region := img.Region(vis)
	defer region.Close()
	resized := gocv.NewMat()
	defer resized.Close()
	// Area interpolation when shrinking keeps small faces sharper than a
	// Gaussian pyramid (measured: the pyramid lost a 47 px face in a 1024 px photo).
	interp := gocv.InterpolationLinear
	if nw < vis.Dx() {
		interp = gocv.InterpolationArea
	}
	gocv.Resize(region, &resized, image.Pt(nw, nh), 0, 0, interp)
	b := &Box{Size: size, mat: gocv.NewMat(), vis: vis, ox: ox, oy: oy,
		sx: float64(nw) / float64(vis.Dx()), sy: float64(nh) / float64(vis.Dy())}
	gocv.CopyMakeBorder(resized, &b.mat, oy, size-nh-oy, ox, size-nw-ox, gocv.BorderConstant, color.RGBA{})
	if !b.mat.IsContinuous() {
		b.Close()
		return nil, errors.New("letterbox buffer is not continuous")
	}
	pix, err := b.mat.DataPtrUint8()
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("letterbox bytes: %w", err)
	}
	if len(pix) != size*size*3 {
		b.Close()
		return nil, fmt.Errorf("letterbox holds %d bytes, want %d (a 3-channel image)", len(pix), size*size*3)
	}
	b.Pixels = pix
	return b, nil
}

// ToImage maps a point in input pixels to image pixels.
func (b *Box) ToImage(x, y float64) (float64, float64) {
	return (x-float64(b.ox))/b.sx + float64(b.vis.Min.X), (y-float64(b.oy))/b.sy + float64(b.vis.Min.Y)
}

// Close frees the input buffer.
func (b *Box) Close() { b.mat.Close() }

// FillRGB writes BGR bytes into a float input as RGB, each value v becoming
// v/div + offset (127.5, -1 for [-1, 1]; 1, 0 for 0..255).
func FillRGB(dst []float32, bgr []byte, div, offset float32) error {
	if len(dst) != len(bgr) {
		return fmt.Errorf("network input holds %d values, the image %d", len(dst), len(bgr))
	}
	for i := 0; i+2 < len(bgr); i += 3 {
		dst[i] = float32(bgr[i+2])/div + offset
		dst[i+1] = float32(bgr[i+1])/div + offset
		dst[i+2] = float32(bgr[i])/div + offset
	}
	return nil
}

// Tiles covers a w x h image with squares of the given side, spread evenly
// with at least a quarter of a square of overlap, so that an object up to
// about a quarter of a tile across is whole in at least one of them.
func Tiles(w, h, side int) []image.Rectangle {
	var out []image.Rectangle
	for _, y := range tileStarts(h, side) {
		for _, x := range tileStarts(w, side) {
			out = append(out, image.Rect(x, y, x+side, y+side))
		}
	}
	return out
}

func tileStarts(length, side int) []int {
	if length <= side {
		return []int{0}
	}
	step := float64(side) * 0.75
	n := int(math.Ceil(float64(length-side)/step)) + 1
	out := make([]int, n)
	for i := range out {
		out[i] = int(math.Round(float64(i) * float64(length-side) / float64(n-1)))
	}
	return out
}

// CutByTile reports whether a box (x1, y1, x2, y2 in image pixels) found in
// tile t reaches a tile edge that is not an image edge: the tile cut the
// object, and the whole image or a neighbouring tile sees it whole.
func CutByTile(box [4]float64, t image.Rectangle, w, h int) bool {
	const margin = 2.0
	return (t.Min.X > 0 && box[0] < float64(t.Min.X)+margin) ||
		(t.Min.Y > 0 && box[1] < float64(t.Min.Y)+margin) ||
		(t.Max.X < w && box[2] > float64(t.Max.X)-margin) ||
		(t.Max.Y < h && box[3] > float64(t.Max.Y)-margin)
}
