package face_test

import (
	"context"
	"image"
	"testing"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
	"imageapid/internal/testenv"
)

// crop returns a copy of img's region r (clipped to the image), resized to
// size x size when size > 0.
func crop(t testing.TB, img gocv.Mat, r image.Rectangle, size int) gocv.Mat {
	t.Helper()
	r = r.Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	if r.Empty() {
		t.Fatalf("crop %v is outside the image", r)
	}
	region := img.Region(r)
	out := region.Clone()
	region.Close()
	if size > 0 {
		small := gocv.NewMat()
		gocv.Resize(out, &small, image.Pt(size, size), 0, 0, gocv.InterpolationArea)
		out.Close()
		out = small
	}
	t.Cleanup(func() { out.Close() })
	return out
}

// astronautCrops are close-ups of the astronaut's face: the detector box
// itself (the face fills the frame), that crop as a 60x60 thumbnail, a
// head crop cut at the brows and chin, crops cut by the left, top and
// right border, and the inner face (cheeks and forehead cut off), also as
// a 60x60 thumbnail.
func astronautCrops(t *testing.T, p *face.Pipeline) (gocv.Mat, face.Detection, map[string]struct {
	r    image.Rectangle
	size int
}) {
	img := fixture(t, "astronaut.png")
	dets, err := p.Detect(context.Background(), img)
	if err != nil || len(dets) != 1 {
		t.Fatalf("astronaut: %d faces (%v), want 1", len(dets), err)
	}
	d := dets[0]
	x1, y1, x2, y2 := int(d.X1), int(d.Y1), int(d.X2), int(d.Y2)
	w, h := x2-x1, y2-y1
	return img, d, map[string]struct {
		r    image.Rectangle
		size int
	}{
		"tight":         {image.Rect(x1, y1, x2, y2), 0},
		"tight-60x60":   {image.Rect(x1, y1, x2, y2), 60},
		"brows-to-chin": {image.Rect(x1+w/10, y1+h/5, x2-w/10, y2-h/10), 0},
		"cut-left":      {image.Rect(x1+3*w/10, y1-h/4, x2+w/4, y2+h/4), 0},
		"cut-top":       {image.Rect(x1-w/4, y1+3*h/10, x2+w/4, y2+h/4), 0},
		"cut-right":     {image.Rect(x1-w/4, y1-h/4, x2-3*w/10, y2+h/4), 150},
		"inner":         {image.Rect(x1+w/5, y1+h/4, x2-w/5, y2), 0},
		"inner-60x60":   {image.Rect(x1+w/5, y1+h/4, x2-w/5, y2), 60},
	}
}

// TestCloseUpCrops: tight and border-cut crops of the astronaut's face get
// exactly one face, over the face, and at least one of them (the inner
// face as a thumbnail) only through the close-up passes.
func TestCloseUpCrops(t *testing.T) {
	rt := testenv.Runtime(t, "")
	p := newPipeline(t, rt, face.Config{})
	off := newPipeline(t, rt, face.Config{CloseUp: "off"})
	img, d, crops := astronautCrops(t, p)
	ctx := context.Background()
	needed := 0
	for name, c := range crops {
		r := c.r.Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
		im := crop(t, img, r, c.size)
		k := 1.0
		if c.size > 0 {
			k = float64(c.size) / float64(r.Dx())
		}
		// The face's centre in the crop's pixels.
		cx, cy := ((d.X1+d.X2)/2-float64(r.Min.X))*k, ((d.Y1+d.Y2)/2-float64(r.Min.Y))*k
		dets, err := p.Detect(ctx, im)
		if err != nil {
			t.Fatal(err)
		}
		if len(dets) != 1 {
			t.Errorf("%s (%dx%d): %d faces, want 1", name, im.Cols(), im.Rows(), len(dets))
			continue
		}
		g := dets[0]
		if !(g.X1 < cx && cx < g.X2 && g.Y1 < cy && cy < g.Y2) {
			t.Errorf("%s: face box %.0f,%.0f-%.0f,%.0f does not hold the face centre %.0f,%.0f", name, g.X1, g.Y1, g.X2, g.Y2, cx, cy)
		}
		f, err := p.Fit(ctx, im, g)
		if err != nil {
			t.Fatal(err)
		}
		if le, re := f.LeftEye(), f.RightEye(); !(le.X < re.X && le.Y < cy+0.1*float64(im.Rows()) && re.Y < cy+0.1*float64(im.Rows())) {
			t.Errorf("%s: eyes %v %v: want image-left then image-right, above the face centre", name, le, re)
		}
		base, err := off.Detect(ctx, im)
		if err != nil {
			t.Fatal(err)
		}
		if len(base) == 0 {
			needed++
		}
		t.Logf("%s (%dx%d): box %.0f,%.0f-%.0f,%.0f score %.2f; %d faces without the close-up passes",
			name, im.Cols(), im.Rows(), g.X1, g.Y1, g.X2, g.Y2, g.Score, len(base))
	}
	t.Logf("%d of %d crops are found only by the close-up passes", needed, len(crops))
	if needed == 0 {
		t.Error("every crop is found without the close-up passes: the test no longer exercises them")
	}
}

// TestNoFaceInCatCloseUps: close crops of the cat's head (a face-like
// close-up that is not a human face) get no face.
func TestNoFaceInCatCloseUps(t *testing.T) {
	p := newPipeline(t, testenv.Runtime(t, ""), face.Config{})
	img := fixture(t, "chelsea.png")
	for _, c := range []struct {
		name string
		r    image.Rectangle
		size int
	}{
		{"head", image.Rect(110, 10, 390, 300), 0},
		{"head-60x60", image.Rect(110, 10, 390, 300), 60},
		{"eyes-to-mouth", image.Rect(150, 80, 360, 290), 0},
	} {
		dets, err := p.Detect(context.Background(), crop(t, img, c.r, c.size))
		if err != nil {
			t.Fatal(err)
		}
		if len(dets) != 0 {
			t.Errorf("%s: %d faces, want none (first %+v)", c.name, len(dets), dets[0])
		}
	}
}

// BenchmarkCloseUp is what the close-up passes cost: Detect with them
// (auto) and without (off) on a 640x480 frame with a face found by the
// whole-image pass (they do not run), on the astronaut's inner face as a
// 60x60 thumbnail (only they find it) and on the cat (no face: all run).
func BenchmarkCloseUp(b *testing.B) {
	rt := testenv.Runtime(b, "")
	frame := benchImage(b)
	astro := fixture(b, "astronaut.png")
	p := newPipeline(b, rt, face.Config{})
	dets, err := p.Detect(context.Background(), astro)
	if err != nil || len(dets) != 1 {
		b.Fatalf("astronaut: %d faces (%v)", len(dets), err)
	}
	x1, y1, x2, y2 := int(dets[0].X1), int(dets[0].Y1), int(dets[0].X2), int(dets[0].Y2)
	tight := crop(b, astro, image.Rect(x1+(x2-x1)/5, y1+(y2-y1)/4, x2-(x2-x1)/5, y2), 60)
	cat := fixture(b, "chelsea.png")
	for _, mode := range []string{"auto", "off"} {
		p := newPipeline(b, rt, face.Config{CloseUp: mode})
		for _, c := range []struct {
			name string
			img  gocv.Mat
		}{{"frame-with-face", frame}, {"tight-crop", tight}, {"no-face", cat}} {
			b.Run(c.name+"/"+mode, func(b *testing.B) {
				for b.Loop() {
					if _, err := p.Detect(context.Background(), c.img); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
