package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"imageapid/camera"
	"imageapid/internal/testenv"
	"imageapid/models"
	"imageapid/ui"
)

// sseClient reads a server-sent event stream and keeps each message's data.
type sseClient struct {
	mu   sync.Mutex
	data []string
	ids  []string
	done chan struct{}
}

func openSSE(t *testing.T, url string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		cancel()
		t.Fatalf("%s: %d %q %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	c := &sseClient{done: make(chan struct{})}
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-c.done })
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		var data []string
		id := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != nil {
					c.mu.Lock()
					c.data = append(c.data, strings.Join(data, "\n"))
					c.ids = append(c.ids, id)
					c.mu.Unlock()
				}
				data, id = nil, ""
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			}
		}
	}()
	return c
}

func (c *sseClient) messages() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.data...)
}

// TestConsoleEndpoints plays people walking through a file camera: the
// events the camera pipeline publishes reach a server-sent events client
// with the very JSON a real mosquitto's subscriber gets; a stream filtered
// to another camera gets none of them; /v1/in-view follows the camera;
// /v1/system lists every model of the manifest and masks the MQTT password;
// and the console page is served at /.
func TestConsoleEndpoints(t *testing.T) {
	broker := testenv.StartMosquitto(t, testenv.FreePort(t), "")
	cfg := testConfig(t)
	cfg.DeviceID = "consolebox"
	cfg.MQTT.URL = broker.URL()
	cfg.MQTT.Username, cfg.MQTT.Password = "console", "s3cret-pw"
	cfg.Cameras = []camera.Config{{ID: "walk", Name: "Walk", URL: shortClip(t, 60), Loop: true,
		Estimators: []string{detectFaces, hogPeople}}}
	addr, stop := startDaemon(t, cfg)
	defer stop()
	base := "http://" + addr

	mqttMsgs := subscribe(t, broker.URL(), "imageapid/consolebox/events")
	all := openSSE(t, base+ui.EventsPath)
	other := openSSE(t, base+ui.EventsPath+"?camera=elsewhere")
	onlyNew := openSSE(t, base+ui.EventsPath+"?camera=walk&kind=track_new")

	var sse []string
	testenv.WaitFor(t, 60*time.Second, "a camera event over SSE that mosquitto's subscriber also got", func() bool {
		sse = all.messages()
		byPayload := map[string]bool{}
		for _, m := range mqttMsgs() {
			byPayload[m.payload] = true
		}
		for _, d := range sse {
			if byPayload[d] {
				return true
			}
		}
		return false
	})
	var ev struct {
		EventID  string `json:"event_id"`
		DeviceID string `json:"device_id"`
		Type     string `json:"type"`
		CameraID string `json:"camera_id"`
		TrackID  string `json:"track_id"`
	}
	if err := json.Unmarshal([]byte(sse[0]), &ev); err != nil {
		t.Fatalf("SSE data is not JSON: %v: %s", err, sse[0])
	}
	if ev.EventID == "" || ev.DeviceID != "consolebox" || ev.CameraID != "walk" || ev.TrackID == "" || ev.Type == "" {
		t.Errorf("SSE event lacks the MQTT envelope or the camera's fields: %s", sse[0])
	}
	testenv.WaitFor(t, 30*time.Second, "a track_new on the filtered stream", func() bool { return len(onlyNew.messages()) > 0 })
	for _, d := range onlyNew.messages() {
		if !strings.Contains(d, `"type":"track_new"`) || !strings.Contains(d, `"camera_id":"walk"`) {
			t.Errorf("?camera=walk&kind=track_new let through %s", d)
		}
	}
	if n := len(other.messages()); n != 0 {
		t.Errorf("?camera=elsewhere got %d events of camera walk", n)
	}
	// A stream opened now starts with the latest events.
	late := openSSE(t, base+ui.EventsPath)
	testenv.WaitFor(t, 5*time.Second, "the kept events on a new stream", func() bool { return len(late.messages()) > 0 })

	for _, bad := range []string{"?camera=a%20b", "?kind=" + strings.Repeat("x", 80), "?cam=walk"} {
		resp, err := http.Get(base + ui.EventsPath + bad)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(string(b), `{"detail":`) {
			t.Errorf("%s: %d %s, want 400 with a detail", bad, resp.StatusCode, b)
		}
	}

	var inView struct {
		IntervalS float64                    `json:"interval_s"`
		Cameras   map[string]ui.InViewSeries `json:"cameras"`
	}
	getJSON(t, base+ui.InViewPath, &inView)
	if s, ok := inView.Cameras["walk"]; !ok || len(s.People) != 120 || inView.IntervalS != 5 {
		t.Errorf("/v1/in-view: %+v", inView)
	} else if peak := maxInt(s.People) + maxInt(s.Faces); peak == 0 {
		t.Errorf("/v1/in-view saw nobody in view although tracks were confirmed: %+v", s)
	}

	raw := getJSON(t, base+ui.SystemPath, nil)
	if strings.Contains(raw, "s3cret-pw") {
		t.Errorf("/v1/system shows the MQTT password")
	}
	var sys ui.System
	json.Unmarshal([]byte(raw), &sys)
	manifest, err := models.LoadManifest(cfg.Models.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]ui.ModelStatus{}
	for _, m := range sys.Models {
		listed[m.Name] = m
	}
	for _, m := range manifest.Models {
		got, ok := listed[m.Name]
		if !ok {
			t.Errorf("/v1/system does not list model %s", m.Name)
			continue
		}
		if got.Precision != m.Precision {
			t.Errorf("model %s: precision %q, manifest says %q", m.Name, got.Precision, m.Precision)
		}
		if got.Loaded && got.Delegate == "" {
			t.Errorf("model %s is loaded but has no delegate", m.Name)
		}
	}
	if len(sys.Models) != len(manifest.Models) {
		t.Errorf("/v1/system lists %d models, the manifest %d", len(sys.Models), len(manifest.Models))
	}
	conf, _ := sys.Config.(map[string]any)
	mq, _ := conf["mqtt"].(map[string]any)
	if mq["password"] != ui.Masked || mq["username"] != "console" {
		t.Errorf("config mqtt section: %v", mq)
	}
	if sys.Version == "" || sys.UptimeS <= 0 || !sys.MQTT.Enabled || len(sys.Cameras) != 1 || len(sys.HTTP) == 0 {
		t.Errorf("/v1/system: version %q uptime %v mqtt %+v cameras %d routes %d", sys.Version, sys.UptimeS, sys.MQTT, len(sys.Cameras), len(sys.HTTP))
	}

	api := getJSON(t, base+"/openapi.json", nil)
	for _, p := range []string{`"/"`, `"` + ui.EventsPath + `"`, `"` + ui.InViewPath + `"`, `"` + ui.SystemPath + `"`} {
		if !strings.Contains(api, p+":") {
			t.Errorf("/openapi.json does not describe %s", p)
		}
	}

	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "/ui/console/console.js") || resp.Header.Get("Content-Security-Policy") != ui.CSP {
		t.Errorf("GET /: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
}

func getJSON(t *testing.T, url string, v any) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", url, resp.StatusCode, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v: %s", url, err, b)
		}
	}
	return string(b)
}

func maxInt(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// Without MQTT the console still gets the camera's events, as the camera
// publishes them (no MQTT envelope).
func TestConsoleEventsWithoutMQTT(t *testing.T) {
	cfg := testConfig(t)
	cfg.MQTT.Enabled = false
	cfg.Cameras = []camera.Config{{ID: "walk", URL: shortClip(t, 60), Loop: true, Estimators: []string{hogPeople}}}
	addr, stop := startDaemon(t, cfg)
	defer stop()
	events := openSSE(t, "http://"+addr+ui.EventsPath+"?kind=track_new")
	testenv.WaitFor(t, 60*time.Second, "a track_new over SSE", func() bool { return len(events.messages()) > 0 })
	var ev map[string]any
	if err := json.Unmarshal([]byte(events.messages()[0]), &ev); err != nil {
		t.Fatal(err)
	}
	if ev["camera_id"] != "walk" || ev["type"] != "track_new" || ev["track_id"] == "" || ev["event_id"] != nil {
		t.Errorf("event without MQTT: %v", ev)
	}
}
