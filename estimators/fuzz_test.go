package estimators

import (
	"encoding/binary"
	"image"
	"image/color"
	"testing"

	"gocv.io/x/gocv"
)

// imageSeeds are small valid and hostile files of every accepted format:
// JPEG (plain and with each EXIF orientation), PNG, BMP, and headers that
// claim more than the pixel limit.
func imageSeeds(t testing.TB) [][]byte {
	m := gocv.NewMatWithSize(6, 10, gocv.MatTypeCV8UC3)
	defer m.Close()
	m.SetTo(gocv.NewScalar(40, 120, 200, 0))
	gocv.Rectangle(&m, image.Rect(0, 0, 3, 2), color.RGBA{255, 255, 255, 0}, -1)
	var seeds [][]byte
	for _, ext := range []gocv.FileExt{gocv.JPEGFileExt, gocv.PNGFileExt, ".bmp"} {
		buf, err := gocv.IMEncode(ext, m)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, append([]byte(nil), buf.GetBytes()...))
		buf.Close()
	}
	jpg := seeds[0]
	for o := uint16(1); o <= 8; o++ {
		seeds = append(seeds, withOrientation(jpg, o, binary.LittleEndian), withOrientation(jpg, o, binary.BigEndian))
	}
	big := append([]byte(nil), seeds[2]...) // BMP claiming 5000x5000
	binary.LittleEndian.PutUint32(big[18:], 5000)
	binary.LittleEndian.PutUint32(big[22:], 5000)
	return append(seeds, big)
}

// withOrientation inserts an APP1 EXIF segment with one Orientation entry
// after the JPEG's SOI marker.
func withOrientation(jpg []byte, orientation uint16, bo binary.ByteOrder) []byte {
	tiff := make([]byte, 8+2+12+4)
	if bo == binary.LittleEndian {
		copy(tiff, "II")
	} else {
		copy(tiff, "MM")
	}
	bo.PutUint16(tiff[2:], 42)
	bo.PutUint32(tiff[4:], 8)
	bo.PutUint16(tiff[8:], 1)
	bo.PutUint16(tiff[10:], 0x0112)
	bo.PutUint16(tiff[12:], 3)
	bo.PutUint32(tiff[14:], 1)
	bo.PutUint16(tiff[18:], orientation)
	seg := append([]byte("Exif\x00\x00"), tiff...)
	app1 := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(app1[2:], uint16(len(seg)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, app1...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

// FuzzDecodeImage feeds arbitrary bytes to the decoder, OpenCV included: it
// must never crash, and whatever it accepts must be a non-empty BGR image
// within the pixel limit, turned upright (so the limit holds for its
// rotated shape too).
func FuzzDecodeImage(f *testing.F) {
	for _, s := range imageSeeds(f) {
		f.Add(s)
	}
	const maxPixels = 1 << 20
	f.Fuzz(func(t *testing.T, b []byte) {
		if o := exifOrientation(b); o < 1 || o > 8 {
			t.Fatalf("orientation %d out of 1..8", o)
		}
		img, err := DecodeImage(b, maxPixels)
		if err != nil {
			if _, ok := IsInputError(err); !ok {
				t.Fatalf("a refusal must be an input error (400), got %v", err)
			}
			return
		}
		defer img.Close()
		if img.Empty() || img.Channels() != 3 || img.Rows()*img.Cols() > maxPixels {
			t.Fatalf("accepted an image of %dx%d with %d channels (limit %d pixels)", img.Cols(), img.Rows(), img.Channels(), maxPixels)
		}
	})
}

// FuzzObjectBox reads "bbox" from arbitrary objects: never a crash, and a
// box it accepts lies within the image and covers at least one pixel.
func FuzzObjectBox(f *testing.F) {
	for _, s := range []string{
		`{"bbox": [0.1, 0.2, 0.5, 0.9], "id": 3, "face_id": "abc", "fitter": {"left_eye": [1, 2], "right_eye": [3, 4]}}`,
		`{"bbox": [0, 0, 1, 1]}`, `{"bbox": [-5, -5, 5, 5]}`, `{"bbox": [0.5, 0.5, 0.5, 0.5]}`,
		`{"bbox": [1e308, 1e308, 1e309, 2]}`, `{"bbox": ["a", 1, 2, 3]}`, `{"bbox": [1, 2, 3]}`, `{"bbox": null}`, `{}`,
		`{"fitter": {"left_eye": [1e400, 0], "right_eye": [0, 0]}}`,
	} {
		f.Add([]byte(s), 640, 480)
	}
	f.Fuzz(func(t *testing.T, b []byte, w, h int) {
		if w <= 0 || h <= 0 || w > 1<<15 || h > 1<<15 {
			return
		}
		o := NewObject()
		if err := o.UnmarshalJSON(b); err != nil {
			return
		}
		objectEyes(o)
		box, err := objectBox(o, w, h)
		if err != nil {
			return
		}
		if box.X1 < 0 || box.Y1 < 0 || box.X2 > float64(w) || box.Y2 > float64(h) || box.Width() < 1 || box.Height() < 1 {
			t.Fatalf("box %+v outside a %dx%d image or empty", box, w, h)
		}
		// Foreign keys survive a round trip.
		out, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		back := NewObject()
		if err := back.UnmarshalJSON(out); err != nil || len(back.Keys()) != len(o.Keys()) {
			t.Fatalf("round trip lost keys: %v %v -> %v", err, o.Keys(), back.Keys())
		}
	})
}
