package attributes_test

import (
	"context"
	"testing"

	"gocv.io/x/gocv"

	"imageapid/estimators/attributes"
	"imageapid/estimators/face"
	"imageapid/internal/testenv"
	"imageapid/models"
)

// face-api's crop pads the box to a square with black bars on its short
// sides, and face-api's age/gender network, fed as the feature part feeds
// it, calls the astronaut fixture (Eileen Collins) female and adult.
func TestFaceAPICropAndNetwork(t *testing.T) {
	rt := testenv.Runtime(t, models.DelegateXNNPACK)
	p, err := face.New(rt, face.Config{})
	if err != nil {
		t.Fatal(err)
	}
	img := gocv.IMRead(testenv.Fixture(t, "astronaut.png"), gocv.IMReadColor)
	if img.Empty() {
		t.Fatal("cannot read astronaut.png")
	}
	defer img.Close()
	ctx := context.Background()
	dets, err := p.Detect(ctx, img)
	if err != nil || len(dets) == 0 {
		t.Fatalf("no face: %v", err)
	}
	f, err := p.Fit(ctx, img, dets[face.Largest(dets)])
	if err != nil {
		t.Fatal(err)
	}
	// A box twice as tall as wide (a face without a mesh crops its
	// detection box) gets black bars of a quarter of the side left and right.
	tall := face.Face{Detection: face.Detection{X1: 200, Y1: 100, X2: 250, Y2: 200}}
	crop, err := attributes.LandmarkBoxCrop(img, &tall, 112, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	defer crop.Close()
	if crop.Rows() != 112 || crop.Cols() != 112 {
		t.Fatalf("crop %dx%d", crop.Cols(), crop.Rows())
	}
	for _, x := range []int{0, 27, 84, 111} {
		if v := crop.GetVecbAt(56, x); v[0]+v[1]+v[2] != 0 {
			t.Errorf("column %d is %v, want a black bar", x, v)
		}
	}
	for _, x := range []int{29, 56, 82} {
		if v := crop.GetVecbAt(56, x); int(v[0])+int(v[1])+int(v[2]) == 0 {
			t.Errorf("column %d is black, want the image", x)
		}
	}
	n, err := attributes.NewNetwork(rt, attributes.NetworkSpec{Model: "faceapi_age_gender", Lo: 0, Hi: 255, Box: 0.1, Mirror: true})
	if err != nil {
		t.Fatal(err)
	}
	out, err := n.Run(ctx, img, &f)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("face-api: age %.1f, P(male, female) = %.3f, %.3f", out[0][0], out[1][0], out[1][1])
	if out[1][1] < 0.5 {
		t.Errorf("P(female) = %.3f for Eileen Collins", out[1][1])
	}
	if out[0][0] < 25 || out[0][0] > 60 {
		t.Errorf("age %.1f, want an adult's", out[0][0])
	}
}
