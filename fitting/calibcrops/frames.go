package calibcrops

import (
	"context"
	"fmt"
	"image"
	"path/filepath"
	"strings"

	"gocv.io/x/gocv"

	"imageapid/models/compiler"
)

// Frames are whole scenes with people for calibrating and gating the
// object detector (CenterNet): every Stride-th frame of the vtest.avi
// fixture (people walking, from Debian's opencv-doc) from frame Offset,
// then the named still fixtures, each letterboxed into the network's
// square input as the detector feeds it (aspect kept, black padding).
// They come from the fixtures `make deps` unpacks, not from the
// evaluation sets.
type Frames struct {
	Dir            string // third_party/fixtures
	Offset, Stride int
	Stills         []string
	Size           int
}

// CalibrationFrames are the frames CenterNet's activation ranges are
// measured on: every 16th frame of vtest.avi from the first, and three stills with people.
func CalibrationFrames(dir string, size int) Frames {
	return Frames{Dir: dir, Offset: 0, Stride: 16, Stills: []string{"camera.png", "messi5.jpg", "astronaut.png"}, Size: size}
}

// AgreementFrames are held-out frames for CenterNet's int8 gate, disjoint
// from CalibrationFrames: every 16th frame of vtest.avi from the 9th, and
// the two stills without people.
func AgreementFrames(dir string, size int) Frames {
	return Frames{Dir: dir, Offset: 8, Stride: 16, Stills: []string{"coffee.png", "chelsea.png"}, Size: size}
}

func (f Frames) Describe() string {
	return fmt.Sprintf("%dpx letterboxed frames of vtest.avi (every %dth from frame %d) and %s",
		f.Size, f.Stride, f.Offset, strings.Join(f.Stills, ", "))
}

func (f Frames) Crops(ctx context.Context) ([]*image.RGBA, error) {
	if f.Stride <= 0 || f.Size <= 0 {
		return nil, fmt.Errorf("frames: stride %d and size %d must be positive", f.Stride, f.Size)
	}
	var out []*image.RGBA
	add := func(img gocv.Mat) error {
		c, err := letterboxSquare(img, f.Size)
		if err != nil {
			return err
		}
		defer c.Close()
		rgba, err := toRGBA(c)
		if err != nil {
			return err
		}
		out = append(out, rgba)
		return nil
	}
	vc, err := gocv.VideoCaptureFile(filepath.Join(f.Dir, "vtest.avi"))
	if err != nil {
		return nil, fmt.Errorf("frames: %w (run `make deps`)", err)
	}
	defer vc.Close()
	frame := gocv.NewMat()
	defer frame.Close()
	for i := 0; vc.Read(&frame) && !frame.Empty(); i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if i >= f.Offset && (i-f.Offset)%f.Stride == 0 {
			if err := add(frame); err != nil {
				return nil, fmt.Errorf("frames: vtest.avi frame %d: %w", i, err)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("frames: vtest.avi gave no frame")
	}
	for _, name := range f.Stills {
		img := gocv.IMRead(filepath.Join(f.Dir, name), gocv.IMReadColor)
		if img.Empty() {
			return nil, fmt.Errorf("frames: cannot read %s (run `make deps`)", name)
		}
		err := add(img)
		img.Close()
		if err != nil {
			return nil, fmt.Errorf("frames: %s: %w", name, err)
		}
	}
	return out, nil
}

// letterboxSquare scales img into a size x size black square, aspect kept,
// centred (INTER_AREA when shrinking, as the detectors' letterbox does).
func letterboxSquare(img gocv.Mat, size int) (gocv.Mat, error) {
	w, h := img.Cols(), img.Rows()
	s := float64(size) / float64(max(w, h))
	nw, nh := max(1, int(float64(w)*s+0.5)), max(1, int(float64(h)*s+0.5))
	interp := gocv.InterpolationArea
	if s > 1 {
		interp = gocv.InterpolationLinear
	}
	scaled := gocv.NewMat()
	defer scaled.Close()
	gocv.Resize(img, &scaled, image.Pt(nw, nh), 0, 0, interp)
	out := gocv.NewMatWithSize(size, size, gocv.MatTypeCV8UC3)
	out.SetTo(gocv.NewScalar(0, 0, 0, 0))
	x, y := (size-nw)/2, (size-nh)/2
	roi := out.Region(image.Rect(x, y, x+nw, y+nh))
	scaled.CopyTo(&roi)
	roi.Close()
	return out, nil
}

var _ compiler.CropSource = Frames{}
