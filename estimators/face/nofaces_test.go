package face_test

import (
	"context"
	"flag"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
	"imageapid/internal/testenv"
)

var (
	noFacesDir  = flag.String("nofaces", "", "TestNoFaceCrops reads the photos without a human face in this folder (.png, .jpg)")
	noFacesDump = flag.String("nofaces-dump", "", "TestNoFaceCrops writes each crop that gets a face here as PNG")
	noFacesMax  = flag.Int("nofaces-max-added", 3, "TestNoFaceCrops fails when the close-up passes add a face to more crops")
)

// noFaceCrops cuts the crops TestNoFaceCrops runs on from img: the whole
// image, a central square of 0.8 of its shorter side, squares of 0.5 at the
// centre and the four corners and of 0.3 on a 3x3 grid, every crop kept as
// cut or shrunk to 250, 150 or 60 px in turn (the sizes of the close-up
// crops the close-up passes are for).
func noFaceCrops(img gocv.Mat) []struct {
	r    image.Rectangle
	size int
} {
	w, h := img.Cols(), img.Rows()
	m := min(w, h)
	var rs []image.Rectangle
	rs = append(rs, image.Rect(0, 0, w, h))
	sq := func(frac, fx, fy float64) image.Rectangle {
		s := int(frac * float64(m))
		x := int(fx * float64(w-s))
		y := int(fy * float64(h-s))
		return image.Rect(x, y, x+s, y+s)
	}
	rs = append(rs, sq(0.8, 0.5, 0.5), sq(0.5, 0.5, 0.5))
	for _, f := range [][2]float64{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
		rs = append(rs, sq(0.5, f[0], f[1]))
	}
	for _, fy := range []float64{0, 0.5, 1} {
		for _, fx := range []float64{0, 0.5, 1} {
			rs = append(rs, sq(0.3, fx, fy))
		}
	}
	sizes := []int{0, 250, 150, 60}
	out := make([]struct {
		r    image.Rectangle
		size int
	}, len(rs))
	for i, r := range rs {
		out[i].r, out[i].size = r, sizes[i%len(sizes)]
	}
	return out
}

// TestNoFaceCrops counts the crops of photos without a human face (the
// -nofaces folder) that get a face from Detect, with and without the
// close-up passes, and fails when the close-up passes add a face to more
// than -nofaces-max-added of them. The folder used so far holds 47 sample
// photos of the Debian packages python3-skimage and opencv-doc (fur, food,
// textures, buildings, a baboon, a monkey head, graffiti; not astronaut,
// camera, messi5, basketball1 or left01, which show people): 752 crops, 37
// with a face from the regular passes, 3 more from the close-up passes
// (both before and after the close-up steps of confirmCloseUpBox and
// meshOnPaddedHead).
func TestNoFaceCrops(t *testing.T) {
	if *noFacesDir == "" {
		t.Skip("no -nofaces folder given")
	}
	ents, err := os.ReadDir(*noFacesDir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range ents {
		if n := strings.ToLower(e.Name()); strings.HasSuffix(n, ".png") || strings.HasSuffix(n, ".jpg") {
			files = append(files, e.Name())
		}
	}
	sort.Strings(files)
	rt := testenv.Runtime(t, "")
	p := newPipeline(t, rt, face.Config{})
	off := newPipeline(t, rt, face.Config{CloseUp: "off"})
	ctx := context.Background()
	var crops, withFace, withFaceOff, added int
	for _, name := range files {
		img := gocv.IMRead(filepath.Join(*noFacesDir, name), gocv.IMReadColor)
		if img.Empty() {
			t.Fatalf("%s: undecodable", name)
		}
		for i, c := range noFaceCrops(img) {
			im := crop(t, img, c.r, c.size)
			dets, err := p.Detect(ctx, im)
			if err != nil {
				t.Fatal(err)
			}
			base, err := off.Detect(ctx, im)
			if err != nil {
				t.Fatal(err)
			}
			crops++
			if len(base) > 0 {
				withFaceOff++
			}
			if len(dets) > 0 {
				withFace++
				if len(base) == 0 {
					added++
					t.Logf("close-up face on %s crop %d %v size %d: %+v", name, i, c.r, c.size, dets[0])
				}
				if *noFacesDump != "" {
					gocv.IMWrite(filepath.Join(*noFacesDump, fmt.Sprintf("%s-%02d.png", strings.TrimSuffix(name, filepath.Ext(name)), i)), im)
				}
			}
		}
		img.Close()
	}
	t.Logf("%d crops of %d photos: %d with a face (%d without the close-up passes), %d added by them",
		crops, len(files), withFace, withFaceOff, added)
	if added > *noFacesMax {
		t.Errorf("the close-up passes put a face on %d no-face crops, more than %d", added, *noFacesMax)
	}
}
