package estimators_test

import (
	"context"
	"log/slog"
	"testing"

	"gocv.io/x/gocv"

	"imageapid/estimators"
	"imageapid/estimators/face"
	"imageapid/estimators/facecache"
	"imageapid/internal/testenv"
)

// TestEncodedSampleDecodesOnlyWhenNeeded: with a face cache, a service
// decodes the image only when it needs something not yet cached for these
// bytes; the whole chain called again on the same bytes with the fitter's
// objects decodes only for quality (which reads pixels itself). Without a
// cache every call decodes.
func TestEncodedSampleDecodesOnlyWhenNeeded(t *testing.T) {
	ctx := context.Background()
	rt := testenv.Runtime(t, "")
	p, err := face.New(rt, face.Config{})
	if err != nil {
		t.Fatal(err)
	}
	jpeg, err := estimators.EncodeJPEG(fixtureImage(t, "astronaut.png"), 90)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := facecache.New(facecache.Default())
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"face-detector-face-fitter", "age-estimator", "gender-estimator", "mask-estimator", "emotion-estimator",
		"face-detector-liveness-estimator", "liveness-anti-spoofing", "face-detector-template-extractor", "quality-assessment-estimator"}
	// The first call needing each network (or the texture) decodes; gender
	// reads face-api's estimates, which age ran.
	firstRound := map[string]bool{"gender-estimator": false}
	for _, round := range []struct {
		cache  bool
		decode func(service string) bool
	}{
		{true, func(svc string) bool { d, ok := firstRound[svc]; return d || !ok }},
		{true, func(svc string) bool { return svc == "quality-assessment-estimator" }},
		{false, func(string) bool { return true }},
	} {
		d := estimators.Deps{Models: rt, Faces: p, Log: slog.New(slog.DiscardHandler)}
		if round.cache {
			d.FaceCache = cache
		}
		services, err := estimators.Build(d, names)
		if err != nil {
			t.Fatal(err)
		}
		var fitted []*estimators.Object
		for i, e := range services {
			s, err := estimators.NewEncodedSample(jpeg, 50_000_000, cloneObjects(t, fitted))
			if err != nil {
				t.Fatal(err)
			}
			if s.Decoded() || !s.HasImage() || s.Width() != 512 || s.Height() != 512 {
				t.Fatalf("a new encoded sample: decoded %v, has image %v, %dx%d", s.Decoded(), s.HasImage(), s.Width(), s.Height())
			}
			if err := e.Process(ctx, s); err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
			if want := round.decode(e.Name()); s.Decoded() != want {
				t.Errorf("cache %v: %s decoded the image: %v, want %v", round.cache, e.Name(), s.Decoded(), want)
			}
			if i == 0 {
				fitted = s.Objects
			}
			s.Close()
		}
	}
}

// TestEncodedSampleRefusesAsDecodeImage: what DecodeImage refuses before
// decoding, NewEncodedSample refuses; a file whose pixels do not decode is
// refused by Pixels with DecodeImage's message.
func TestEncodedSampleRefusesAsDecodeImage(t *testing.T) {
	jpeg, err := estimators.EncodeJPEG(fixtureImage(t, "astronaut.png"), 90)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{nil, []byte("not an image"), jpeg[:len(jpeg)/2]} {
		_, want := estimators.DecodeImage(bad, 50_000_000)
		if _, err := estimators.NewEncodedSample(bad, 50_000_000, nil); err == nil || want == nil || err.Error() != want.Error() {
			t.Errorf("%d bytes: NewEncodedSample %v, DecodeImage %v", len(bad), err, want)
		}
	}
	if _, err := estimators.NewEncodedSample(jpeg, 512*512-1, nil); err == nil {
		t.Error("an image over max pixels was accepted")
	}
	// The scan data scrambled: the header and the end marker hold.
	garbled := append([]byte(nil), jpeg...)
	for i := len(garbled) / 2; i < len(garbled)-2; i++ {
		garbled[i] = 0xFF
	}
	s, err := estimators.NewEncodedSample(garbled, 50_000_000, nil)
	if err != nil {
		t.Skipf("the garbled file is refused up front: %v", err)
	}
	defer s.Close()
	_, want := estimators.DecodeImage(garbled, 50_000_000)
	if _, err := s.Pixels(); (err == nil) != (want == nil) {
		t.Errorf("Pixels %v, DecodeImage %v", err, want)
	}
}

func cloneObjects(t *testing.T, objs []*estimators.Object) []*estimators.Object {
	out := make([]*estimators.Object, len(objs))
	for i, o := range objs {
		b, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = estimators.NewObject()
		if err := out[i].UnmarshalJSON(b); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func fixtureImage(t *testing.T, name string) gocv.Mat {
	img, err := estimators.DecodeImage(testenv.ReadFixture(t, name), 50_000_000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}
