package attributes

import (
	"fmt"
	"math"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
)

// TextureDim is the number of texture features.
const TextureDim = 3*59 + 2*16

const textureSide = 112

// uniformIndex maps an 8-bit LBP code to its uniform-pattern bin (0..57) or 58.
var uniformIndex = func() [256]uint8 {
	var t [256]uint8
	next := uint8(0)
	for c := 0; c < 256; c++ {
		transitions := 0
		for b := 0; b < 8; b++ {
			if (c>>b)&1 != (c>>((b+1)%8))&1 {
				transitions++
			}
		}
		if transitions <= 2 {
			t[c] = next
			next++
		} else {
			t[c] = 58
		}
	}
	return t
}()

// Texture computes the colour-texture description of the aligned face:
// uniform LBP(8,1) histograms of the Y, Cr and Cb channels (59 bins each)
// and 16-bin histograms of saturation and value. Prints and screens change
// the face's micro-texture and colour gamut, which these capture (the
// colour-texture approach of face anti-spoofing).
func Texture(img gocv.Mat, f *face.Face) ([]float32, error) {
	crop, err := face.AlignedCrop(img, f, textureSide)
	if err != nil {
		return nil, fmt.Errorf("texture: %w", err)
	}
	defer crop.Close()
	ycc := gocv.NewMat()
	defer ycc.Close()
	gocv.CvtColor(crop, &ycc, gocv.ColorBGRToYCrCb)
	hsv := gocv.NewMat()
	defer hsv.Close()
	gocv.CvtColor(crop, &hsv, gocv.ColorBGRToHSV)
	yb, err := ycc.DataPtrUint8()
	if err != nil {
		return nil, fmt.Errorf("texture: %w", err)
	}
	hb, err := hsv.DataPtrUint8()
	if err != nil {
		return nil, fmt.Errorf("texture: %w", err)
	}
	n := textureSide
	out := make([]float32, 0, TextureDim)
	at := func(b []byte, x, y, c int) byte { return b[(y*n+x)*3+c] }
	offsets := [8][2]int{{-1, -1}, {0, -1}, {1, -1}, {1, 0}, {1, 1}, {0, 1}, {-1, 1}, {-1, 0}}
	for c := 0; c < 3; c++ {
		var hist [59]float64
		for y := 1; y < n-1; y++ {
			for x := 1; x < n-1; x++ {
				v := at(yb, x, y, c)
				code := 0
				for k, o := range offsets {
					if at(yb, x+o[0], y+o[1], c) >= v {
						code |= 1 << k
					}
				}
				hist[uniformIndex[code]]++
			}
		}
		total := float64((n - 2) * (n - 2))
		for _, h := range hist {
			out = append(out, float32(math.Sqrt(h/total))) // Hellinger: steadier for linear heads
		}
	}
	for _, c := range []int{1, 2} { // saturation, value
		var hist [16]float64
		for i := c; i < len(hb); i += 3 {
			hist[int(hb[i])/16]++
		}
		total := float64(n * n)
		for _, h := range hist {
			out = append(out, float32(math.Sqrt(h/total)))
		}
	}
	return out, nil
}
