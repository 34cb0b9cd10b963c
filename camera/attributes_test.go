package camera

import (
	"context"
	"image"
	"sync/atomic"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/internal/testenv"
)

// appearance is a real, tiny attributor: the mean colour of the box and, as
// a template, its 16-bin gray histogram.
type appearance struct{ calls atomic.Int64 }

func (a *appearance) Attributes(_ context.Context, crop gocv.Mat, d Detection) (map[string]any, error) {
	a.calls.Add(1)
	region := crop.Region(d.Box.Pixels(crop.Cols(), crop.Rows()))
	defer region.Close()
	mean := region.Mean()
	gray := gocv.NewMat()
	defer gray.Close()
	gocv.CvtColor(region, &gray, gocv.ColorBGRToGray)
	hist := make([]float32, 16)
	for y := 0; y < gray.Rows(); y++ {
		for x := 0; x < gray.Cols(); x++ {
			hist[gray.GetUCharAt(y, x)/16]++
		}
	}
	for i := range hist {
		hist[i] /= float32(gray.Rows() * gray.Cols())
	}
	return map[string]any{
		"color":    []float64{mean.Val1, mean.Val2, mean.Val3},
		"crop":     []int{crop.Cols(), crop.Rows()},
		"template": hist,
	}, nil
}

// Attributes run on best shots, a few times per track rather than every
// frame; templates and images stay out of events unless enabled.
func TestBestShotAttributes(t *testing.T) {
	clip := writeClip(t, t.TempDir(), 60, 100, 1, 10)
	run := func(id string, ev EventConfig) (*Camera, *recorder, *appearance) {
		var rec recorder
		attr := &appearance{}
		c, err := StartCamera(Config{ID: id, URL: "file://" + clip + "?live=false", Events: ev, Tracker: TrackerConfig{TTL: time.Second},
			Attributes: AttributeConfig{MinInterval: 300 * time.Millisecond}},
			Analysis{Detectors: []Detector{newHOG(t, HOGPeopleConfig{Scale: 1.1})}, Attributor: attr}, Options{Sink: &rec, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stopCamera(t, c) })
		return c, &rec, attr
	}
	plain, plainRec, plainAttr := run("plain", EventConfig{})
	full, fullRec, _ := run("full", EventConfig{Templates: true, BestShotJPEG: true})
	for _, c := range []*Camera{plain, full} {
		waitFor(t, 60*time.Second, c.cfg.ID+" to end", func() bool {
			s := c.Stats()
			return c.State().Status == StatusEnded && s.ActiveTracks == 0 && s.EventsSent == s.EventsQueued
		})
	}

	st := plain.Stats()
	tracks := 0
	for _, e := range plainRec.all() {
		if e.Type == TrackNew {
			tracks++
		}
		if e.Attributes == nil {
			t.Errorf("%s of track %s has no attributes", e.Type, e.TrackID)
			continue
		}
		if _, ok := e.Attributes["template"]; ok {
			t.Errorf("%s of track %s carries a template though templates are off", e.Type, e.TrackID)
		}
		if e.BestShot != nil {
			t.Errorf("%s carries a best shot image though images are off", e.Type)
		}
		crop := e.Attributes["crop"].([]int)
		// The crop is the box plus a quarter on each side: 1.5 times the box, in pixels of 768x576.
		if w := float64(crop[0]) / 768; w < e.BBox.Width()*0.8 {
			t.Errorf("best shot %v px is narrower than the track's box %v", crop, e.BBox)
		}
	}
	t.Logf("%d tracks, %d frames, %d attribute runs", tracks, st.FramesAnalyzed, st.AttributeRuns)
	if tracks == 0 {
		t.Fatal("no track in the clip")
	}
	if int(st.AttributeRuns) != int(plainAttr.calls.Load()) || st.AttributeRuns < uint64(tracks) {
		t.Errorf("%d attribute runs (%d calls) for %d tracks", st.AttributeRuns, plainAttr.calls.Load(), tracks)
	}
	if st.AttributeRuns > uint64(6*tracks) || st.AttributeRuns*4 > st.FramesAnalyzed*uint64(tracks) {
		t.Errorf("%d attribute runs for %d tracks over %d frames: not rate-limited", st.AttributeRuns, tracks, st.FramesAnalyzed)
	}

	sawTemplate, sawJPEG := false, false
	for _, e := range fullRec.all() {
		if _, ok := e.Attributes["template"].([]float32); ok {
			sawTemplate = true
		}
		if e.Type == TrackEnd && len(e.BestShot) > 0 {
			img, err := gocv.IMDecode(e.BestShot, gocv.IMReadColor)
			if err != nil || img.Empty() {
				t.Errorf("track %s best shot is not a JPEG: %v", e.TrackID, err)
			} else {
				sawJPEG = true
			}
			img.Close()
		}
	}
	if !sawTemplate || !sawJPEG {
		t.Errorf("with templates and images on: template seen %v, JPEG seen %v", sawTemplate, sawJPEG)
	}
}

func TestSharpnessQualityPrefersSharpShots(t *testing.T) {
	img := gocv.IMRead(testenv.Fixture(t, "messi5.jpg"), gocv.IMReadColor)
	defer img.Close()
	blurred := gocv.NewMat()
	defer blurred.Close()
	gocv.GaussianBlur(img, &blurred, image.Pt(9, 9), 0, 0, gocv.BorderDefault)
	d := Detection{Class: ClassBody, Box: Box{0.2, 0.2, 0.6, 0.9}, Score: 1}
	sharp, soft := SharpnessQuality(img, d), SharpnessQuality(blurred, d)
	if !(sharp > 2*soft && soft > 0) {
		t.Errorf("sharpness quality: sharp %.1f, blurred %.1f", sharp, soft)
	}
	small := d
	small.Box = Box{0.2, 0.2, 0.3, 0.35}
	if ScoreAreaQuality(img, small) >= ScoreAreaQuality(img, d) {
		t.Error("score x area quality does not prefer the larger box")
	}
}
