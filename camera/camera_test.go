package camera

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// vtest.avi through a file camera with the HOG detector: people walking get
// tracks that are confirmed, then end after the clip, with sane boxes.
func TestFileCameraTracksPeople(t *testing.T) {
	// Every other frame of the first 16 s: 80 frames, people cross a good part of the view.
	clip := writeClip(t, t.TempDir(), 0, 160, 2, 5)
	hog := newHOG(t, HOGPeopleConfig{Scale: 1.1})
	var rec recorder
	var sts states
	cfg := Config{
		ID: "hall", Name: "Hall", URL: "file://" + clip + "?live=false",
		Tracker: TrackerConfig{TTL: time.Second},
	}
	c, err := StartCamera(cfg, Analysis{Detectors: []Detector{hog}}, Options{Sink: &rec, OnState: sts.add, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer stopCamera(t, c)
	waitFor(t, 60*time.Second, "the clip to end", func() bool { return c.State().Status == StatusEnded })
	// The clip ends when it is read; analysis may still be a frame or two behind.
	waitFor(t, 5*time.Second, "every track to end", func() bool {
		st := c.Stats()
		return st.FramesAnalyzed+st.FramesDropped >= 80 && st.ActiveTracks == 0 && st.EventsSent == st.EventsQueued
	})
	st := c.Stats()
	if st.FramesAnalyzed != 80 || st.FramesDropped != 0 {
		t.Errorf("a file that is not live is analysed whole: analysed %d, dropped %d of 80", st.FramesAnalyzed, st.FramesDropped)
	}
	if !sts.seen(func(s State) bool { return s.Status == StatusConnected && s.Connected }) {
		t.Error("OnState never reported the camera connected")
	}

	events := rec.all()
	news := map[string]Event{}
	ended := map[string]Event{}
	ids := map[string]bool{}
	lastID := ""
	for i, e := range events {
		t.Logf("%s %s track=%s bbox=%.3f score=%.2f hits=%d", e.ID, e.Type, e.TrackID[10:16], e.BBox, e.Score, e.Hits)
		if ids[e.ID] {
			t.Errorf("event id %s repeats", e.ID)
		}
		ids[e.ID] = true
		if e.ID <= lastID {
			t.Errorf("event %d id %s does not sort after %s", i, e.ID, lastID)
		}
		lastID = e.ID
		if e.CameraID != "hall" || e.Class != ClassBody {
			t.Errorf("event %d: camera %q class %q", i, e.CameraID, e.Class)
		}
		checkBodyBox(t, e.BBox)
		if e.FirstSeen.After(e.LastSeen) || e.LastSeen.After(e.Time) || e.Time.Location() != time.UTC {
			t.Errorf("event %d times out of order or not UTC: first %v last %v time %v", i, e.FirstSeen, e.LastSeen, e.Time)
		}
		switch e.Type {
		case TrackNew:
			if _, dup := news[e.TrackID]; dup {
				t.Errorf("track %s confirmed twice", e.TrackID)
			}
			news[e.TrackID] = e
		case TrackUpdate:
			if _, ok := news[e.TrackID]; !ok {
				t.Errorf("track_update for %s before its track_new", e.TrackID)
			}
		case TrackEnd:
			if _, ok := news[e.TrackID]; !ok {
				t.Errorf("track_end for %s without a track_new", e.TrackID)
			}
			if _, dup := ended[e.TrackID]; dup {
				t.Errorf("track %s ended twice", e.TrackID)
			}
			if e.Reason != "ttl" {
				t.Errorf("track %s ended for %q, want ttl", e.TrackID, e.Reason)
			}
			ended[e.TrackID] = e
		}
	}
	if len(news) < 3 {
		t.Errorf("%d people tracked in 16 s of vtest.avi; at least 3 walk through", len(news))
	}
	for id := range news {
		if _, ok := ended[id]; !ok {
			t.Errorf("track %s never ended", id)
		}
	}
	if len(news) > 25 {
		t.Errorf("%d tracks for a handful of people: ids do not hold across frames", len(news))
	}
	long := 0
	for _, e := range ended {
		if e.Hits >= 10 {
			long++
		}
	}
	if long < 2 {
		t.Errorf("only %d tracks held 10 frames or more: ids are not kept across frames", long)
	}
	b, err := json.Marshal(events[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"type":"track_new"`) || !strings.Contains(string(b), `Z"`) {
		t.Errorf("event JSON %s lacks its type or UTC times", b)
	}
}

// checkBodyBox checks a standing person's box: inside the frame, taller than wide, a plausible size.
func checkBodyBox(t *testing.T, b Box) {
	t.Helper()
	for _, v := range b {
		if v < 0 || v > 1 {
			t.Errorf("bbox %v leaves the frame", b)
			return
		}
	}
	if b.Width() <= 0 || b.Height() <= b.Width() || b.Area() < 0.005 || b.Area() > 0.5 {
		t.Errorf("bbox %v is not a standing person's (w %.3f h %.3f)", b, b.Width(), b.Height())
	}
}

// slowDetector makes a real detector deliberately slower than the camera.
type slowDetector struct {
	Detector
	delay time.Duration
}

func (s slowDetector) Detect(ctx context.Context, f gocv.Mat) ([]Detection, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Detector.Detect(ctx, f)
}

// Latest frame wins: with analysis slower than a live 25 fps file, frames
// are dropped and counted, and nothing queues up.
func TestSlowAnalysisDropsFrames(t *testing.T) {
	clip := writeClip(t, t.TempDir(), 0, 150, 1, 25)
	hog := newHOG(t, HOGPeopleConfig{Width: 384})
	c, err := StartCamera(Config{ID: "slow", URL: clip},
		Analysis{Detectors: []Detector{slowDetector{hog, 150 * time.Millisecond}}}, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the first frame", func() bool { return c.Stats().FramesAnalyzed > 0 })
	rssStart := residentBytes(t)
	time.Sleep(4 * time.Second)
	if n := c.slot.holding(); n > 2 {
		t.Errorf("the frame slot holds %d frames, want at most 2", n)
	}
	rssEnd := residentBytes(t)
	fps := c.Stats().CaptureFPS
	stopCamera(t, c)
	st := c.Stats()
	t.Logf("captured %d analysed %d dropped %d skipped %d; capture %.1f fps, analysis %.1f fps; RSS %+.1f MB",
		st.FramesCaptured, st.FramesAnalyzed, st.FramesDropped, st.FramesSkipped, fps, st.AnalysisFPS,
		float64(rssEnd-rssStart)/1e6)
	if st.FramesDropped < 40 {
		t.Errorf("dropped %d frames in 4 s of 25 fps analysed at most at 6 fps", st.FramesDropped)
	}
	if st.FramesAnalyzed == 0 || st.FramesAnalyzed > st.FramesCaptured/2 {
		t.Errorf("analysed %d of %d frames with a detector slower than the camera", st.FramesAnalyzed, st.FramesCaptured)
	}
	if left := int64(st.FramesCaptured) - int64(st.FramesAnalyzed+st.FramesDropped+st.FramesSkipped); left < 0 || left > 1 {
		t.Errorf("captured %d != analysed %d + dropped %d + skipped %d (+1 pending at most): frames went missing or queued",
			st.FramesCaptured, st.FramesAnalyzed, st.FramesDropped, st.FramesSkipped)
	}
	// A queue of the dropped 768x576 frames would hold over 50 MB.
	if grow := rssEnd - rssStart; grow > 48<<20 {
		t.Errorf("resident memory grew %d MB while dropping frames", grow>>20)
	}
}

// residentBytes reads the process's resident set size.
func residentBytes(t *testing.T) int64 {
	t.Helper()
	runtime.GC()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}
