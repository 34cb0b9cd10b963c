package sessions

import (
	"context"
	"image"
	"testing"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
	"imageapid/internal/testenv"
)

// A real face shown on a phone held in a room is framed by the phone's
// edges, upright or leaning; the same face photographed on its own is not.
func TestBezelAround(t *testing.T) {
	a := testAnalyzer(t)
	portrait := gocv.IMRead(testenv.Fixture(t, "astronaut.png"), gocv.IMReadColor)
	defer portrait.Close()
	room := gocv.IMRead(testenv.Fixture(t, "coffee.png"), gocv.IMReadColor)
	defer room.Close()
	largest := func(img gocv.Mat) face.Detection {
		t.Helper()
		dets, err := a.faces.Detect(context.Background(), img)
		if err != nil || len(dets) == 0 {
			t.Fatalf("no face found (%v)", err)
		}
		return dets[face.Largest(dets)]
	}
	if bezelAround(portrait, largest(portrait)) {
		t.Error("the portrait on its own is framed by a bezel")
	}
	for _, lean := range []float64{0, 6} {
		frame := onPhone(t, room, portrait, lean)
		got := bezelAround(frame, largest(frame))
		frame.Close()
		if !got {
			t.Errorf("a phone leaning %v degrees around the face was not seen", lean)
		}
	}
}

// onPhone draws src on a phone's screen (a black body around it) held in
// front of room, leaning by lean degrees, in a 640x480 frame.
func onPhone(t *testing.T, room, src gocv.Mat, lean float64) gocv.Mat {
	t.Helper()
	frame := gocv.NewMat()
	gocv.Resize(room, &frame, image.Pt(640, 480), 0, 0, gocv.InterpolationLinear)
	phone := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(20, 20, 20, 0), 300, 200, gocv.MatTypeCV8UC3)
	defer phone.Close()
	screen := phone.Region(image.Rect(10, 30, 190, 270))
	gocv.Resize(src, &screen, image.Pt(180, 240), 0, 0, gocv.InterpolationArea)
	screen.Close()
	rot := gocv.GetRotationMatrix2D(image.Pt(100, 150), lean, 1)
	defer rot.Close()
	turned := gocv.NewMat()
	defer turned.Close()
	mask := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(255, 0, 0, 0), 300, 200, gocv.MatTypeCV8U)
	defer mask.Close()
	turnedMask := gocv.NewMat()
	defer turnedMask.Close()
	gocv.WarpAffine(phone, &turned, rot, image.Pt(200, 300))
	gocv.WarpAffine(mask, &turnedMask, rot, image.Pt(200, 300))
	dst := frame.Region(image.Rect(220, 90, 420, 390))
	turned.CopyToWithMask(&dst, turnedMask)
	dst.Close()
	return frame
}
