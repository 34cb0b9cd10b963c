package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators"
	"imageapid/internal/testenv"
)

// A kiosk session run against the daemon ends once on MQTT at
// <prefix>/liveness/<id> (QoS 1 through the outbox), with the retained last
// result and its Home Assistant sensor.
func TestLivenessSessionOverMosquitto(t *testing.T) {
	clip := filepath.Join(testenv.Shared(t, "kiosk"), "lestari_live.mp4")
	broker := testenv.StartMosquitto(t, testenv.FreePort(t), "")
	cfg := testConfig(t)
	cfg.DeviceID = "kioskbox"
	cfg.MQTT.URL = broker.URL()
	addr, stop := startDaemon(t, cfg)
	defer stop()
	base := "http://" + addr
	got := subscribe(t, broker.URL(), "imageapid/kioskbox/liveness/#", "homeassistant/sensor/imageapid_kioskbox/#")

	resp, err := http.Post(base+"/v1/liveness/sessions", "application/json", strings.NewReader(`{"challenges": [], "timeout_s": 60}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || created.ID == "" || created.Status != "waiting" {
		t.Fatalf("create: %d %+v", resp.StatusCode, created)
	}

	vc, err := gocv.VideoCaptureFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	img := gocv.NewMat()
	defer img.Close()
	status := ""
	for i := 0; vc.Read(&img) && !img.Empty(); i++ {
		if i%3 != 0 {
			continue
		}
		jpg, err := estimators.EncodeJPEG(img, 90)
		if err != nil {
			t.Fatal(err)
		}
		code, b := testenv.PostImage(t, base+"/v1/liveness/sessions/"+created.ID+"/frames", jpg, map[string]string{"t_ms": strconv.Itoa(i * 1000 / 30)})
		if code != http.StatusOK {
			t.Fatalf("frame %d: %d %s", i, code, b)
		}
		var g struct{ Status string }
		json.Unmarshal(b, &g)
		if status = g.Status; status == "succeeded" || status == "failed" {
			break
		}
	}
	if status != "succeeded" {
		t.Fatalf("the live clip ended %q", status)
	}
	// A frame after the end is refused, and does not publish again.
	resp, err = http.Post(base+"/v1/liveness/sessions/"+created.ID+"/frames", "application/json", strings.NewReader(`{"$image": "AAAA"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusConflict {
		t.Errorf("a frame after the end: %d, want 400 or 409", resp.StatusCode)
	}

	topic := "imageapid/kioskbox/liveness/" + created.ID
	testenv.WaitFor(t, 15*time.Second, "the session's result and the retained last result", func() bool {
		var result, last bool
		for _, m := range got() {
			result = result || m.topic == topic
			last = last || m.topic == "imageapid/kioskbox/liveness/last"
		}
		return result && last
	})
	time.Sleep(500 * time.Millisecond)
	n := 0
	for _, m := range got() {
		if m.topic != topic {
			continue
		}
		n++
		var f struct {
			SessionID  string   `json:"session_id"`
			Source     string   `json:"source"`
			Challenges []string `json:"challenges"`
			Status     string   `json:"status"`
			Result     struct {
				Liveness struct{ Value string }
			}
		}
		if err := json.Unmarshal([]byte(m.payload), &f); err != nil {
			t.Fatal(err)
		}
		if f.SessionID != created.ID || f.Source != "frames" || f.Challenges == nil || f.Status != "succeeded" || f.Result.Liveness.Value != "REAL" {
			t.Errorf("published result: %s", m.payload)
		}
	}
	if n != 1 {
		t.Errorf("the result was published %d times, want once", n)
	}
	found := false
	for _, m := range got() {
		found = found || m.topic == "homeassistant/sensor/imageapid_kioskbox/liveness_last/config"
	}
	if !found {
		t.Error("no Home Assistant discovery for the last liveness result")
	}

	// The session's state and result stay readable; DELETE of a finished session changes nothing.
	resp, err = http.Get(base + "/v1/liveness/sessions/" + created.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"status":"succeeded"`) || !strings.Contains(string(b), `"result"`) {
		t.Errorf("GET session: %d %s", resp.StatusCode, b)
	}

	// The routes are in the OpenAPI document.
	resp, err = http.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Paths map[string]any }
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	for _, p := range []string{"/v1/liveness/sessions", "/v1/liveness/sessions/{id}", "/v1/liveness/sessions/{id}/frames",
		"/v1/liveness/sessions/{id}/events", "/kiosk", "/v1/cameras/{id}/stream", "/v1/cameras/{id}/snapshot.jpg"} {
		if doc.Paths[p] == nil {
			t.Errorf("openapi.json lacks %s", p)
		}
	}
}
