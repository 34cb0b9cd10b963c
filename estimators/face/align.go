package face

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"
)

// ArcFaceLayout is the standard 5-point layout of 112x112 ArcFace crops:
// image-left eye centre, image-right eye centre, nose tip, image-left and
// image-right mouth corners.
var ArcFaceLayout = [5]Point{
	{38.2946, 51.6963}, {73.5318, 51.5014}, {56.0252, 71.7366}, {41.5493, 92.3655}, {70.7299, 92.2041},
}

// arcFaceSide is the side of the crop ArcFaceLayout is given for.
const arcFaceSide = 112

// FivePoints returns the face's points in ArcFaceLayout order (fda 7, 10, 14, 17, 19).
func (f *Face) FivePoints() [5]Point {
	var out [5]Point
	for i, k := range [5]int{7, 10, 14, 17, 19} {
		out[i] = Point{f.FDA[k][0], f.FDA[k][1]}
	}
	return out
}

// AlignmentMatrix returns the 2x3 similarity transform (rotation, uniform
// scale, translation; no shear or mirroring) taking the face's five points to
// ArcFaceLayout scaled to a size x size crop, fitted by least squares, in
// the pixel-centre coordinates of Face points (the layout's are taken the
// same way). Apply it to an image point (x, y) as (m[0][0]x + m[0][1]y + m[0][2], m[1][0]x + m[1][1]y + m[1][2]).
func AlignmentMatrix(f *Face, size int) [2][3]float64 {
	k := float64(size) / arcFaceSide
	var dst [5]Point
	for i, p := range ArcFaceLayout {
		dst[i] = Point{p.X * k, p.Y * k}
	}
	return similarity(f.FivePoints(), dst)
}

// AlignedCrop warps the face into a size x size BGR crop with its five
// points on ArcFaceLayout (scaled to size): the input layout of ArcFace-style
// embedding networks, and a stable, rotation-free crop for attribute
// networks. The caller closes the returned Mat.
func AlignedCrop(img gocv.Mat, f *Face, size int) (gocv.Mat, error) {
	return checkedWarp("aligned crop", img, size, func() ([2][3]float64, error) { return AlignmentMatrix(f, size), nil })
}

// checkedWarp checks the size and the image, computes the crop's transform
// and warps the image with it (see warpWith); what names the crop in errors.
func checkedWarp(what string, img gocv.Mat, size int, matrix func() ([2][3]float64, error)) (gocv.Mat, error) {
	if size <= 0 || size > 4096 {
		return gocv.Mat{}, fmt.Errorf("%s: size %d is outside 1..4096", what, size)
	}
	if img.Empty() {
		return gocv.Mat{}, fmt.Errorf("%s: empty image", what)
	}
	m, err := matrix()
	if err != nil {
		return gocv.Mat{}, err
	}
	for _, row := range m {
		for _, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return gocv.Mat{}, fmt.Errorf("%s: the face's points are degenerate", what)
			}
		}
	}
	return warpWith(img, m, size)
}

// warpWith applies a 2x3 image-index affine and returns a size x size crop;
// the outside of the image is black.
func warpWith(img gocv.Mat, m [2][3]float64, size int) (gocv.Mat, error) {
	mat := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
	defer mat.Close()
	for i := 0; i < 2; i++ {
		for j := 0; j < 3; j++ {
			mat.SetDoubleAt(i, j, m[i][j])
		}
	}
	out := gocv.NewMat()
	gocv.WarpAffineWithParams(img, &out, mat, image.Pt(size, size), gocv.InterpolationLinear, gocv.BorderConstant, color.RGBA{})
	if out.Empty() {
		out.Close()
		return gocv.Mat{}, errors.New("aligned crop: warp failed")
	}
	return out, nil
}

// similarity is the least-squares similarity transform src -> dst (Umeyama
// in 2D, written with complex numbers: dst = a*src + b, a = s*e^(i*theta)).
func similarity(src, dst [5]Point) [2][3]float64 {
	var ms, md Point
	for i := range src {
		ms.X += src[i].X / 5
		ms.Y += src[i].Y / 5
		md.X += dst[i].X / 5
		md.Y += dst[i].Y / 5
	}
	// a = sum(conj(s) d) / sum(|s|^2) over centred points.
	var re, im, norm float64
	for i := range src {
		sx, sy := src[i].X-ms.X, src[i].Y-ms.Y
		dx, dy := dst[i].X-md.X, dst[i].Y-md.Y
		re += sx*dx + sy*dy
		im += sx*dy - sy*dx
		norm += sx*sx + sy*sy
	}
	ar, ai := re/norm, im/norm
	// continuous: d = A s + t with A = [[ar, -ai], [ai, ar]], t = md - A ms.
	tx := md.X - (ar*ms.X - ai*ms.Y)
	ty := md.Y - (ai*ms.X + ar*ms.Y)
	return [2][3]float64{{ar, -ai, tx}, {ai, ar, ty}}
}

// DlibLayout is dlib's 5-point face chip template (get_face_chip_details in
// dlib/image_transforms/interpolation.h) on the unit square before padding:
// the image-right eye's outer and inner corners, the image-left eye's outer
// and inner corners, and the base of the nose. dlib's ResNet face descriptor
// (dlib_face_recognition_resnet_model_v1, also face-api's
// face_recognition_model) was trained on 150x150 chips of this layout with
// padding 0.25.
var DlibLayout = [5]Point{
	{0.8595674595992, 0.2134981538014}, {0.6460604764104, 0.2289674387677},
	{0.1205750620789, 0.2137274526848}, {0.3340850613712, 0.2290642403242},
	{0.4901123135679, 0.6277975316475},
}

// dlibMesh are the face mesh points standing for DlibLayout's: eye corners
// 263, 362, 33, 133 and the base of the nose, 2.
var dlibMesh = [5]int{263, 362, 33, 133, 2}

// DlibChipMatrix returns the least-squares similarity transform taking the
// face's mesh points to DlibLayout padded by padding (a fraction of the
// template's side on each edge) and scaled to a size x size chip, as dlib's
// get_face_chip_details(shape, size, padding) does for its 5-point shapes.
func DlibChipMatrix(f *Face, size int, padding float64) ([2][3]float64, error) {
	if len(f.Mesh) <= 468-1 {
		return [2][3]float64{}, fmt.Errorf("dlib chip: the face has %d mesh points, want 468", len(f.Mesh))
	}
	var src, dst [5]Point
	for i, k := range dlibMesh {
		src[i] = Point{f.Mesh[k][0], f.Mesh[k][1]}
		p := DlibLayout[i]
		dst[i] = Point{(padding + p.X) / (2*padding + 1) * float64(size), (padding + p.Y) / (2*padding + 1) * float64(size)}
	}
	return similarity(src, dst), nil
}

// DlibChip warps the face into a size x size BGR chip laid out as dlib's
// face chips (see DlibChipMatrix); the outside of the image is black. The
// caller closes the returned Mat.
func DlibChip(img gocv.Mat, f *Face, size int, padding float64) (gocv.Mat, error) {
	return checkedWarp("dlib chip", img, size, func() ([2][3]float64, error) { return DlibChipMatrix(f, size, padding) })
}

// WithMirror returns the crop, followed by its mirror image when mirror is
// set (test-time augmentation), and a function that closes the mirror image
// (the crop stays the caller's).
func WithMirror(crop gocv.Mat, mirror bool) ([]gocv.Mat, func()) {
	if !mirror {
		return []gocv.Mat{crop}, func() {}
	}
	mirrored := gocv.NewMat()
	gocv.Flip(crop, &mirrored, 1)
	return []gocv.Mat{crop, mirrored}, func() { mirrored.Close() }
}
