package attributes

import (
	"errors"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
)

// landmarkBoxPoints are the mesh points that stand for the 68-point
// landmarks' extent: the jaw line from ear to ear and the brows.
var landmarkBoxPoints = []int{
	127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356,
	70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
}

// LandmarkBoxCrop cuts a size x size BGR crop of f from img as face-api
// crops a face for its attribute networks (its alignedRect): the upright
// bounding box of the 68 landmarks (jaw line and brows, here from the mesh)
// padded by pad of its width and height, then padded to a square with
// black on the short sides, centred, and resized. A face without a mesh
// (a boxed face) uses its detection box, as face-api does without
// landmarks. The caller closes the Mat.
func LandmarkBoxCrop(img gocv.Mat, f *face.Face, size int, pad float64) (gocv.Mat, error) {
	x0, y0, x1, y1 := f.X1, f.Y1, f.X2, f.Y2
	if len(f.Mesh) >= 468 {
		x0, y0, x1, y1 = math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
		for _, i := range landmarkBoxPoints {
			p := f.Mesh[i]
			x0, y0, x1, y1 = math.Min(x0, p[0]), math.Min(y0, p[1]), math.Max(x1, p[0]), math.Max(y1, p[1])
		}
	}
	w, h := (x1-x0)*(1+pad), (y1-y0)*(1+pad)
	cx, cy := (x0+x1)/2, (y0+y1)/2
	side := math.Max(w, h)
	if !(side > 1) || math.IsInf(side, 0) || math.IsNaN(cx+cy) {
		return gocv.Mat{}, errors.New("landmark box crop: the face's points are degenerate")
	}
	k := float64(size) / side
	mat := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
	defer mat.Close()
	mat.SetDoubleAt(0, 0, k)
	mat.SetDoubleAt(0, 2, float64(size)/2-k*cx)
	mat.SetDoubleAt(1, 1, k)
	mat.SetDoubleAt(1, 2, float64(size)/2-k*cy)
	out := gocv.NewMat()
	gocv.WarpAffineWithParams(img, &out, mat, image.Pt(size, size), gocv.InterpolationLinear, gocv.BorderConstant, color.RGBA{})
	if out.Empty() {
		out.Close()
		return gocv.Mat{}, errors.New("landmark box crop: warp failed")
	}
	// Black outside the box on its short sides, as padding to a square does.
	bw, bh := int(math.Round(w*k)), int(math.Round(h*k))
	if bw < size {
		l := (size - bw) / 2
		gocv.Rectangle(&out, image.Rect(0, 0, l, size), color.RGBA{}, -1)
		gocv.Rectangle(&out, image.Rect(l+bw, 0, size, size), color.RGBA{}, -1)
	}
	if bh < size {
		t := (size - bh) / 2
		gocv.Rectangle(&out, image.Rect(0, 0, size, t), color.RGBA{}, -1)
		gocv.Rectangle(&out, image.Rect(0, t+bh, size, size), color.RGBA{}, -1)
	}
	return out, nil
}
