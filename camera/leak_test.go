//go:build matprofile

package camera

import (
	"bytes"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// Run with -tags matprofile: a camera that detects, tracks, keeps best shots,
// computes attributes and encodes JPEGs leaves no Mat open once stopped.
func TestNoMatLeaks(t *testing.T) {
	clip := writeClip(t, t.TempDir(), 60, 80, 1, 10)
	base := gocv.MatProfile.Count()
	hog, err := NewHOGPeople(HOGPeopleConfig{Width: 576, Scale: 1.1})
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder
	c, err := StartCamera(Config{ID: "leak", URL: "file://" + clip + "?live=false&loop=true", Events: EventConfig{BestShotJPEG: true},
		Tracker: TrackerConfig{MinHits: 1}},
		Analysis{Detectors: []Detector{hog}, Attributor: &appearance{}, Quality: SharpnessQuality, Release: func() { hog.Close() }},
		Options{Sink: &rec})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "40 frames", func() bool { return c.Stats().FramesAnalyzed >= 40 })
	stopCamera(t, c)
	if len(rec.all()) == 0 {
		t.Fatal("no events: the run exercised nothing")
	}
	// The camera frees its frames just after Stop returns, once both loops are done.
	for deadline := time.Now().Add(5 * time.Second); gocv.MatProfile.Count() != base && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := gocv.MatProfile.Count(); n != base {
		var b bytes.Buffer
		gocv.MatProfile.WriteTo(&b, 1)
		t.Errorf("%d Mats left open:\n%s", n-base, b.String())
	}
}
