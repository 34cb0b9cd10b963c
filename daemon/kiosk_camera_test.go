package main

import (
	"bufio"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/camera"
	"imageapid/internal/testenv"
)

// A camera-mode session reads the kiosk camera itself (a file camera
// playing a live clip here), streams its guidance as server-sent events and
// ends with a result; the camera's MJPEG preview and snapshot decode as JPEG.
func TestKioskCameraMode(t *testing.T) {
	clip := filepath.Join(testenv.Shared(t, "kiosk"), "liveportrait_d9_live.mp4")
	cfg := testConfig(t)
	cfg.MQTT.Enabled = false
	cfg.Cameras = []camera.Config{{ID: "kiosk", URL: clip, Loop: true, MaxFPS: 15, Estimators: []string{detectFaces}}}
	addr, stop := startDaemon(t, cfg)
	defer stop()
	base := "http://" + addr

	// The preview: at least two JPEG parts, with the overlay drawn.
	resp, err := http.Get(base + "/v1/cameras/kiosk/stream")
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || err != nil || mt != "multipart/x-mixed-replace" {
		t.Fatalf("stream: %d %q %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	for i := 0; i < 2; i++ {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("stream part %d: %v", i, err)
		}
		b, _ := io.ReadAll(p)
		img, err := gocv.IMDecode(b, gocv.IMReadColor)
		if err != nil || img.Empty() || img.Cols() > 640 {
			t.Fatalf("stream part %d does not decode as a JPEG at most 640 wide (%d bytes)", i, len(b))
		}
		img.Close()
	}
	resp.Body.Close()
	for _, path := range []string{"/v1/cameras/kiosk/snapshot.jpg?overlay=1", "/v1/cameras/kiosk/snapshot.jpg"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		img, err := gocv.IMDecode(b, gocv.IMReadColor)
		if resp.StatusCode != http.StatusOK || err != nil || img.Empty() {
			t.Fatalf("%s: %d, %d bytes", path, resp.StatusCode, len(b))
		}
		img.Close()
	}
	if resp, err := http.Get(base + "/v1/cameras/nope/stream"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a preview of an unknown camera: %v %v", err, resp.StatusCode)
	} else {
		resp.Body.Close()
	}

	resp, err = http.Post(base+"/v1/liveness/sessions", "application/json", strings.NewReader(`{"source": "camera:kiosk", "challenges": [], "timeout_s": 30}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID, Source string }
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || created.Source != "camera:kiosk" {
		t.Fatalf("create: %d %+v", resp.StatusCode, created)
	}
	if resp, err := http.Post(base+"/v1/liveness/sessions/"+created.ID+"/frames", "application/json", strings.NewReader(`{"$image": "AAAA"}`)); err != nil || resp.StatusCode != http.StatusConflict {
		t.Errorf("a posted frame to a camera-mode session: %v %v, want 409", err, resp.StatusCode)
	} else {
		resp.Body.Close()
	}
	resp, err = http.Get(base + "/v1/liveness/sessions/" + created.ID + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("events content type %q", ct)
	}
	var last struct {
		Status string
		Result *struct{ Liveness struct{ Value string } }
	}
	events := 0
	deadline := time.Now().Add(40 * time.Second)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && time.Now().Before(deadline) {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		events++
		if err := json.Unmarshal([]byte(line), &last); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
	}
	t.Logf("%d events, last status %s", events, last.Status)
	if last.Status != "succeeded" {
		v, _ := http.Get(base + "/v1/liveness/sessions/" + created.ID)
		b, _ := io.ReadAll(v.Body)
		v.Body.Close()
		t.Logf("session: %s", b)
	}
	// The decision itself is the clip tests' (sessions/kiosk_test.go); here
	// the camera must have fed the session to a decision.
	if events < 3 || (last.Status != "succeeded" && last.Status != "failed") || last.Result == nil || last.Result.Liveness.Value == "" {
		t.Fatalf("camera-mode session: %d events, ended %+v", events, last)
	}
	if resp, err := http.Post(base+"/v1/liveness/sessions", "application/json", strings.NewReader(`{"source": "camera:nope"}`)); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a session on an unknown camera: %v %v", err, resp.StatusCode)
	} else {
		resp.Body.Close()
	}
}
