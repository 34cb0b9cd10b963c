package compiler

import (
	"context"
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg"
	_ "image/png"
	"math"
	"os"
	"path/filepath"
)

// CropSource yields face crops (roughly the face box, upright) for parity
// gates and calibration. Implementations: FixtureCrops here (every machine
// has them, so `make models` gates without ../shared) and the face
// pipeline's aligned crops of corpus photos (fitting/calibcrops), which
// calibration and the int8 gates use.
type CropSource interface {
	Crops(ctx context.Context) ([]*image.RGBA, error)
	// Describe says where the crops come from, for reports.
	Describe() string
}

// InputSpec says how a crop becomes the model's input tensor.
type InputSpec struct {
	// Color is "rgb" or "gray" (ITU-R 601 luma, as Human computes it).
	Color string `json:"color"`
	// Range maps pixel 0 to Range[0] and 255 to Range[1].
	Range [2]float64 `json:"range"`
}

// Tensor converts a crop to a [1,H,W,C] input with bilinear resizing.
func (s InputSpec) Tensor(img *image.RGBA, shape []int) ([]float32, error) {
	if len(shape) != 4 || shape[0] != 1 {
		return nil, fmt.Errorf("input shape %v is not [1,H,W,C]", shape)
	}
	h, w, c := shape[1], shape[2], shape[3]
	if (s.Color == "gray") != (c == 1) || (c != 1 && c != 3) {
		return nil, fmt.Errorf("input color %q does not fit %d channels", s.Color, c)
	}
	lo, hi := s.Range[0], s.Range[1]
	if lo == hi {
		lo, hi = 0, 1
	}
	rgb := resizeBilinear(img, w, h)
	out := make([]float32, 0, h*w*c)
	for i := 0; i < h*w; i++ {
		r, g, b := rgb[3*i], rgb[3*i+1], rgb[3*i+2]
		if c == 1 {
			y := 0.2989*r + 0.5870*g + 0.1140*b
			out = append(out, float32(lo+(hi-lo)*y/255))
			continue
		}
		out = append(out, float32(lo+(hi-lo)*r/255), float32(lo+(hi-lo)*g/255), float32(lo+(hi-lo)*b/255))
	}
	return out, nil
}

// resizeBilinear samples img at w x h with half-pixel centres; returns RGB floats 0..255.
func resizeBilinear(img *image.RGBA, w, h int) []float64 {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	out := make([]float64, 0, 3*w*h)
	at := func(x, y int) (float64, float64, float64) {
		x = min(max(x, 0), sw-1)
		y = min(max(y, 0), sh-1)
		p := img.PixOffset(b.Min.X+x, b.Min.Y+y)
		return float64(img.Pix[p]), float64(img.Pix[p+1]), float64(img.Pix[p+2])
	}
	for y := 0; y < h; y++ {
		fy := (float64(y)+0.5)*float64(sh)/float64(h) - 0.5
		y0 := int(math.Floor(fy))
		dy := fy - float64(y0)
		for x := 0; x < w; x++ {
			fx := (float64(x)+0.5)*float64(sw)/float64(w) - 0.5
			x0 := int(math.Floor(fx))
			dx := fx - float64(x0)
			r00, g00, b00 := at(x0, y0)
			r01, g01, b01 := at(x0+1, y0)
			r10, g10, b10 := at(x0, y0+1)
			r11, g11, b11 := at(x0+1, y0+1)
			mix := func(a, b, c, d float64) float64 {
				return (a*(1-dx)+b*dx)*(1-dy) + (c*(1-dx)+d*dx)*dy
			}
			out = append(out, mix(r00, r01, r10, r11), mix(g00, g01, g10, g11), mix(b00, b01, b10, b11))
		}
	}
	return out
}

func loadRGBA(path string) (*image.RGBA, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	out := image.NewRGBA(image.Rect(0, 0, img.Bounds().Dx(), img.Bounds().Dy()))
	draw.Draw(out, out.Bounds(), img, img.Bounds().Min, draw.Src)
	return out, nil
}

func cropRGBA(img *image.RGBA, r image.Rectangle) *image.RGBA {
	r = r.Intersect(img.Bounds())
	out := image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	draw.Draw(out, out.Bounds(), img, r.Min, draw.Src)
	return out
}

func flipRGBA(img *image.RGBA) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			out.Set(b.Dx()-1-x, y, img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return out
}

// FixtureCrops are crops of the one face in the astronaut fixture (skimage's
// public-domain portrait, unpacked by `make deps`): the face box measured on
// the image, shifted, scaled and mirrored into N distinct real crops. They
// exist on every machine, so `make models` can gate without ../shared.
type FixtureCrops struct {
	Dir string // third_party/fixtures
	N   int
}

func (f FixtureCrops) Describe() string { return fmt.Sprintf("%d fixture crops of astronaut.png", f.N) }

func (f FixtureCrops) Crops(ctx context.Context) ([]*image.RGBA, error) {
	img, err := loadRGBA(filepath.Join(f.Dir, "astronaut.png"))
	if err != nil {
		return nil, fmt.Errorf("fixture crops: %w (run `make deps`)", err)
	}
	// Face box of astronaut.png (512x512), hairline to chin.
	const cx, cy, side = 224, 118, 124
	var out []*image.RGBA
	for i := 0; len(out) < f.N; i++ {
		dx := (i%3 - 1) * 8
		dy := (i/3%3 - 1) * 8
		s := side * (100 + 6*(i%4)) / 100
		c := cropRGBA(img, image.Rect(cx+dx-s/2, cy+dy-s/2, cx+dx+s/2, cy+dy+s/2))
		if i%2 == 1 {
			c = flipRGBA(c)
		}
		out = append(out, c)
	}
	return out, nil
}
