package camera

import (
	"context"
	"testing"
	"time"
)

// Cameras are added, changed and removed at run time (a SIGHUP reload)
// without restarting the ones whose config did not change.
func TestManagerApplyAtRunTime(t *testing.T) {
	clip := writeClip(t, t.TempDir(), 0, 20, 1, 10)
	var built []string
	m, err := NewManager(ManagerOptions{
		Build: func(cfg Config) (Analysis, error) {
			built = append(built, cfg.ID)
			return Analysis{}, nil
		},
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	defer m.Close(ctx)
	a := Config{ID: "a", URL: clip, Loop: true, MaxFPS: 5}
	b := Config{ID: "b", URL: clip, Loop: true, MaxFPS: 5}
	if err := m.Apply(ctx, []Config{a, b}); err != nil {
		t.Fatal(err)
	}
	camA, _ := m.Camera("a")
	waitFor(t, 5*time.Second, "a and b to run", func() bool {
		s := m.States()
		return len(s) == 2 && s[0].Connected && s[1].Connected
	})
	framesA := camA.Stats().FramesCaptured

	c := Config{ID: "c", URL: "file://" + clip + "?loop=true", MaxFPS: 5}
	bChanged := b
	bChanged.MaxFPS = 2
	if err := m.Apply(ctx, []Config{a, bChanged, c}); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Camera("a"); got != camA {
		t.Error("reload restarted camera a, whose config did not change")
	}
	if got, _ := m.Camera("b"); got.Config().MaxFPS != 2 {
		t.Error("reload kept camera b's old config")
	}
	waitFor(t, 5*time.Second, "three cameras to run", func() bool {
		s := m.States()
		return len(s) == 3 && s[0].Connected && s[1].Connected && s[2].Connected
	})
	waitFor(t, 3*time.Second, "camera a to read on", func() bool { return camA.Stats().FramesCaptured > framesA+5 })
	if n := camA.Stats().Reconnects; n != 0 {
		t.Errorf("camera a reconnected %d times across the reload", n)
	}

	if err := m.Remove(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(ctx, "b"); err == nil {
		t.Error("removing a camera twice succeeded")
	}
	if err := m.Add(a); err == nil {
		t.Error("adding a running id succeeded")
	}
	if err := m.Apply(ctx, []Config{a}); err != nil {
		t.Fatal(err)
	}
	states := m.States()
	if len(states) != 1 || states[0].CameraID != "a" {
		t.Fatalf("states after removing b and c: %+v", states)
	}
	if want := []string{"a", "b", "b", "c"}; len(built) != len(want) {
		t.Errorf("analyses built for %v, want %v", built, want)
	}
	if age := time.Since(m.LastProgress()); age > 2*time.Second {
		t.Errorf("manager progress is %v old", age)
	}
	if err := m.Apply(ctx, []Config{{ID: "bad", URL: "ftp://nowhere"}, a}); err == nil {
		t.Error("an unsupported url was accepted")
	}
	if got, _ := m.Camera("a"); got != camA {
		t.Error("a bad entry in a reload disturbed camera a")
	}
}

// Stopping a camera ends its live tracks with reason "stopped".
func TestStopEndsTracks(t *testing.T) {
	clip := writeClip(t, t.TempDir(), 60, 100, 1, 10)
	hog := newHOG(t, HOGPeopleConfig{Scale: 1.1})
	var rec recorder
	c, err := StartCamera(Config{ID: "s", URL: "file://" + clip + "?live=false", Tracker: TrackerConfig{TTL: time.Minute}},
		Analysis{Detectors: []Detector{hog}}, Options{Sink: &rec, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a confirmed track", func() bool { return c.Stats().ActiveTracks > 0 })
	stopCamera(t, c)
	news, ends := 0, 0
	for _, e := range rec.all() {
		switch e.Type {
		case TrackNew:
			news++
		case TrackEnd:
			ends++
			if e.Reason != "stopped" {
				t.Errorf("track %s ended for %q, want stopped", e.TrackID, e.Reason)
			}
		}
	}
	if news == 0 || ends != news {
		t.Errorf("%d tracks confirmed, %d ended on stop", news, ends)
	}
}

// A sink that hangs, ignoring its context, costs events but never stalls
// analysis or Stop.
func TestHungSinkDoesNotBlock(t *testing.T) {
	clip := writeClip(t, t.TempDir(), 60, 80, 1, 10)
	release := make(chan struct{})
	defer close(release)
	hung := SinkFunc(func(context.Context, Event) error { <-release; return nil })
	c, err := StartCamera(Config{ID: "hung", URL: "file://" + clip + "?live=false&loop=true",
		Tracker: TrackerConfig{MinHits: 1}, Events: EventConfig{PublishTimeout: 100 * time.Millisecond, QueueSize: 4}},
		Analysis{Detectors: []Detector{newHOG(t, HOGPeopleConfig{Width: 576, Scale: 1.1})}}, Options{Sink: hung, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "failed events", func() bool { return c.Stats().EventsFailed >= 2 })
	n := c.Stats().FramesAnalyzed
	waitFor(t, 10*time.Second, "analysis to go on", func() bool { return c.Stats().FramesAnalyzed > n+5 })
	start := time.Now()
	stopCamera(t, c)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Stop took %v with a hung sink", took)
	}
	st := c.Stats()
	if st.EventsSent != 0 || st.EventsQueued != st.EventsFailed+st.EventsSent {
		t.Errorf("hung sink: queued %d sent %d failed %d dropped %d", st.EventsQueued, st.EventsSent, st.EventsFailed, st.EventsDropped)
	}
}
