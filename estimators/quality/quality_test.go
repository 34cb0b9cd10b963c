package quality_test

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"

	"imageapid/estimators"
	"imageapid/estimators/face"
	"imageapid/estimators/quality"
	"imageapid/internal/testenv"
)

type assessor struct {
	t *testing.T
	p *face.Pipeline
}

func newAssessor(t *testing.T) *assessor {
	rt := testenv.Runtime(t, "")
	p, err := face.New(rt, face.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &assessor{t: t, p: p}
}

func (a *assessor) assessQuiet(img gocv.Mat) (quality.Report, quality.Signals) {
	ctx := context.Background()
	dets, _ := a.p.Detect(ctx, img)
	f, _ := a.p.Fit(ctx, img, dets[0])
	r, sg, _ := quality.Assess(quality.Input{Image: img, Face: &f, Box: image.Rect(int(f.X1), int(f.Y1), int(f.X2), int(f.Y2))}, quality.DefaultThresholds())
	return r, sg
}

// assess finds the largest face of img and measures it as a clean,
// unmasked, neutral face (the heads' inputs are not under test here).
func (a *assessor) assess(name string, img gocv.Mat) (quality.Report, quality.Signals) {
	a.t.Helper()
	ctx := context.Background()
	dets, err := a.p.Detect(ctx, img)
	if err != nil || len(dets) == 0 {
		a.t.Fatalf("%s: no face (%v)", name, err)
	}
	best := dets[0]
	for _, d := range dets {
		if (d.X2-d.X1)*(d.Y2-d.Y1) > (best.X2-best.X1)*(best.Y2-best.Y1) {
			best = d
		}
	}
	f, err := a.p.Fit(ctx, img, best)
	if err != nil {
		a.t.Fatal(err)
	}
	in := quality.Input{
		Image: img, Face: &f,
		Box: image.Rect(int(f.X1), int(f.Y1), int(math.Ceil(f.X2)), int(math.Ceil(f.Y2))),
		Yaw: f.Yaw, Pitch: f.Pitch, Roll: f.Roll, NeutralProbability: 1,
	}
	r, sg, err := quality.Assess(in, quality.DefaultThresholds())
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Logf("%-14s total %3d sharp %3d illum %3d noise %3d rot %2d eyes %3d/%3d margins %v(%d,%d) dr %3d bg %3d wm %3d | %+v",
		name, r.TotalScore, r.SharpnessScore, r.IlluminationScore, r.NoiseScore, r.MaxRotationDeviation,
		r.LeftEyeOpennessScore, r.RightEyeOpennessScore, r.IsMarginsAcceptable, r.MarginOuterDeviation, r.MarginInnerDeviation,
		r.DynamicRangeScore, r.BackgroundUniformityScore, r.WatermarkScore, sg)
	return r, sg
}

func portrait(t *testing.T) gocv.Mat {
	img, err := estimators.DecodeImage(testenv.ReadFixture(t, "astronaut.png"), 10_000_000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

func transformed(t *testing.T, src gocv.Mat, fn func(dst *gocv.Mat)) gocv.Mat {
	dst := src.Clone()
	fn(&dst)
	t.Cleanup(func() { dst.Close() })
	return dst
}

// The clean portrait passes; each degradation lowers the score of the
// signal it targets and flips its flag where it is severe.
func TestQualitySignalsFollowDegradations(t *testing.T) {
	a := newAssessor(t)
	img := portrait(t)
	clean, _ := a.assess("clean", img)
	if clean.TotalScore <= 60 || !clean.IsSharp || !clean.IsEvenlyIlluminated || !clean.IsRotationAcceptable {
		t.Errorf("clean portrait: %+v, want totalScore > 60, sharp, even, rotation acceptable", clean)
	}

	blurred := transformed(t, img, func(d *gocv.Mat) { gocv.GaussianBlur(img, d, image.Pt(0, 0), 4, 4, gocv.BorderReflect) })
	b, _ := a.assess("blurred", blurred)
	if b.SharpnessScore >= clean.SharpnessScore || b.IsSharp {
		t.Errorf("blur: sharpness %d (isSharp %v), clean %d", b.SharpnessScore, b.IsSharp, clean.SharpnessScore)
	}

	noisy := transformed(t, img, func(d *gocv.Mat) {
		noise := gocv.NewMatWithSize(img.Rows(), img.Cols(), gocv.MatTypeCV8UC3)
		defer noise.Close()
		gocv.SetRNGSeed(7)
		f := gocv.NewMat()
		defer f.Close()
		img.ConvertTo(&f, gocv.MatTypeCV32FC3)
		n := gocv.NewMatWithSize(img.Rows(), img.Cols(), gocv.MatTypeCV32FC3)
		defer n.Close()
		gocv.RandN(&n, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(20, 20, 20, 0))
		gocv.Add(f, n, &f)
		f.ConvertTo(d, gocv.MatTypeCV8UC3)
	})
	n, _ := a.assess("noisy", noisy)
	if n.NoiseScore >= clean.NoiseScore-20 {
		t.Errorf("noise: noiseScore %d, clean %d", n.NoiseScore, clean.NoiseScore)
	}

	// Darken the image-right half of the face box.
	dets, _ := a.p.Detect(context.Background(), img)
	fb := dets[0]
	halfDark := transformed(t, img, func(d *gocv.Mat) {
		cx := int((fb.X1 + fb.X2) / 2)
		r := d.Region(image.Rect(cx, 0, d.Cols(), d.Rows()))
		defer r.Close()
		r.MultiplyFloat(0.35)
	})
	h, _ := a.assess("half-dark", halfDark)
	if h.IlluminationScore >= clean.IlluminationScore-20 || h.IsEvenlyIlluminated {
		t.Errorf("half dark: illumination %d (even %v), clean %d", h.IlluminationScore, h.IsEvenlyIlluminated, clean.IlluminationScore)
	}

	rotated := transformed(t, img, func(d *gocv.Mat) {
		m := gocv.GetRotationMatrix2D(image.Pt(int((fb.X1+fb.X2)/2), int((fb.Y1+fb.Y2)/2)), 30, 1)
		defer m.Close()
		gocv.WarpAffineWithParams(img, d, m, image.Pt(img.Cols(), img.Rows()), gocv.InterpolationLinear, gocv.BorderReflect, color.RGBA{})
	})
	rot, _ := a.assess("rotated", rotated)
	if rot.MaxRotationDeviation < clean.MaxRotationDeviation+15 || rot.IsRotationAcceptable {
		t.Errorf("rotated 30 degrees: maxRotationDeviation %d (acceptable %v), clean %d", rot.MaxRotationDeviation, rot.IsRotationAcceptable, clean.MaxRotationDeviation)
	}

	// Shift the face to the left edge of the frame.
	shifted := transformed(t, img, func(d *gocv.Mat) {
		m := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
		defer m.Close()
		m.SetDoubleAt(0, 0, 1)
		m.SetDoubleAt(1, 1, 1)
		m.SetDoubleAt(0, 2, -fb.X1+2)
		gocv.WarpAffineWithParams(img, d, m, image.Pt(img.Cols(), img.Rows()), gocv.InterpolationLinear, gocv.BorderConstant, color.RGBA{})
	})
	sh, _ := a.assess("at edge", shifted)
	if sh.IsMarginsAcceptable || sh.MarginOuterDeviation == 0 {
		t.Errorf("face at the edge: margins acceptable %v, outer deviation %d", sh.IsMarginsAcceptable, sh.MarginOuterDeviation)
	}
	if !clean.IsMarginsAcceptable {
		t.Errorf("clean portrait: margins not acceptable (%d, %d)", clean.MarginOuterDeviation, clean.MarginInnerDeviation)
	}

	veryBlurred := transformed(t, img, func(d *gocv.Mat) { gocv.GaussianBlur(img, d, image.Pt(0, 0), 6, 6, gocv.BorderReflect) })
	dark := transformed(t, img, func(d *gocv.Mat) { d.MultiplyFloat(0.12) })
	for name, m := range map[string]gocv.Mat{"very blurred": veryBlurred, "dark": dark} {
		r, _ := a.assess(name, m)
		if r.TotalScore >= 30 {
			t.Errorf("%s: totalScore %d, want < 30", name, r.TotalScore)
		}
	}
}

// Signal levels on corpus portraits, for calibrating the score scales
// (run with -v; never on testdata).
func TestQualityCorpusLevels(t *testing.T) {
	dir := testenv.Shared(t, "corpus/identities")
	if testing.Short() {
		t.Skip("calibration listing")
	}
	a := newAssessor(t)
	people, _ := os.ReadDir(dir)
	for i, p := range people {
		if i%20 != 0 {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, p.Name(), "*.jpg"))
		if len(files) == 0 {
			continue
		}
		b, _ := os.ReadFile(files[0])
		img, err := estimators.DecodeImage(b, 10_000_000)
		if err != nil {
			continue
		}
		dets, _ := a.p.Detect(context.Background(), img)
		if len(dets) > 0 {
			a.assess(p.Name(), img)
		}
		img.Close()
	}
}

// Eye openness follows the lids: corpus faces with closed eyes (checked by
// eye) score below the open-eye threshold, frontal faces with open eyes above it.
func TestEyeOpenness(t *testing.T) {
	dir := testenv.Shared(t, "corpus")
	a := newAssessor(t)
	read := func(rel string) gocv.Mat {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		img, err := estimators.DecodeImage(b, 10_000_000)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { img.Close() })
		return img
	}
	th := quality.DefaultThresholds().EyeOpenness
	for _, rel := range []string{"faces/sad_03631.jpg", "identities/valentino_rossi/valentino_rossi_0006.jpg",
		"faces/disgusted_03069.jpg", "faces/happy_03161.jpg"} {
		r, _ := a.assess(filepath.Base(rel), read(rel))
		if r.IsLeftEyeOpened || r.IsRightEyeOpened || r.LeftEyeOpennessScore >= th || r.RightEyeOpennessScore >= th {
			t.Errorf("closed eyes in %s: openness %d/%d (opened %v/%v)", rel, r.LeftEyeOpennessScore, r.RightEyeOpennessScore,
				r.IsLeftEyeOpened, r.IsRightEyeOpened)
		}
	}
	open := []gocv.Mat{portrait(t), read("identities/jack_straw/jack_straw_0001.jpg"), read("identities/shimon_peres/shimon_peres_0001.jpg")}
	for i, img := range open {
		r, _ := a.assess(fmt.Sprintf("open %d", i), img)
		if !r.IsLeftEyeOpened || !r.IsRightEyeOpened {
			t.Errorf("open eyes %d: openness %d/%d", i, r.LeftEyeOpennessScore, r.RightEyeOpennessScore)
		}
	}
}
