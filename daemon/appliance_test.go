package main

import (
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"gocv.io/x/gocv"

	"imageapid/camera"
	"imageapid/internal/testenv"
)

// shortClip writes the first n frames of vtest.avi (people walking) to a file.
func shortClip(t *testing.T, n int) string {
	t.Helper()
	src, err := gocv.VideoCaptureFile(testenv.Fixture(t, "vtest.avi"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(t.TempDir(), "walk.mp4")
	frame := gocv.NewMat()
	defer frame.Close()
	var w *gocv.VideoWriter
	for i := 0; i < n && src.Read(&frame) && !frame.Empty(); i++ {
		if w == nil {
			if w, err = gocv.VideoWriterFile(path, "mp4v", 10, frame.Cols(), frame.Rows(), true); err != nil {
				t.Fatal(err)
			}
		}
		w.Write(frame)
	}
	if w == nil {
		t.Fatal("vtest.avi gave no frames")
	}
	w.Close()
	return path
}

type message struct {
	topic    string
	payload  string
	retained bool
}

// subscribe collects every message under the given topic filters, in order.
func subscribe(t *testing.T, url string, filters ...string) func() []message {
	t.Helper()
	var (
		mu   sync.Mutex
		msgs []message
	)
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("test-%d", time.Now().UnixNano())).
		SetAutoReconnect(false).SetOrderMatters(true)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	subs := map[string]byte{}
	for _, f := range filters {
		subs[f] = 1
	}
	tok := c.SubscribeMultiple(subs, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		msgs = append(msgs, message{m.Topic(), string(m.Payload()), m.Retained()})
		mu.Unlock()
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return func() []message {
		mu.Lock()
		defer mu.Unlock()
		return append([]message(nil), msgs...)
	}
}

// TestCameraEventsOverMosquitto plays people walking through a file camera and
// checks what a subscriber of a real mosquitto sees.
func TestCameraEventsOverMosquitto(t *testing.T) {
	broker := testenv.StartMosquitto(t, testenv.FreePort(t), "")
	cfg := testConfig(t)
	cfg.DeviceID = "testbox"
	cfg.MQTT.URL = broker.URL()
	cfg.Cameras = []camera.Config{{ID: "walk", Name: "Walk", URL: shortClip(t, 60), Loop: true,
		Estimators: []string{detectFaces, hogPeople},
		// The whole view is a zone: every person track enters it once.
		Zones: []camera.ZoneConfig{{Name: "path", Polygon: []camera.Point{{0, 0}, {1, 0}, {1, 1}, {0, 1}}}},
		Lines: []camera.LineConfig{{Name: "middle", From: camera.Point{0.5, 0}, To: camera.Point{0.5, 1}}}}}
	addr, stop := startDaemon(t, cfg)

	live := subscribe(t, broker.URL(), "imageapid/testbox/events")
	isNew := func(m message) bool { return strings.Contains(m.payload, `"type":"track_new"`) }
	testenv.WaitFor(t, 60*time.Second, "a track_new event", func() bool {
		for _, m := range live() {
			if isNew(m) {
				return true
			}
		}
		return false
	})

	// A subscriber arriving now sees the retained topics.
	retained := subscribe(t, broker.URL(), "imageapid/testbox/#", "homeassistant/#")
	testenv.WaitFor(t, 10*time.Second, "retained availability, state and discovery", func() bool {
		got := map[string]bool{}
		for _, m := range retained() {
			if m.retained {
				got[m.topic] = true
			}
		}
		return got["imageapid/testbox/availability"] && got["imageapid/testbox/cameras/walk/state"] &&
			got["homeassistant/sensor/imageapid_testbox/walk_faces/config"] &&
			got["homeassistant/sensor/imageapid_testbox/walk_people/config"] &&
			got["homeassistant/binary_sensor/imageapid_testbox/walk_presence/config"] &&
			got["homeassistant/sensor/imageapid_testbox/walk_zone_path/config"] &&
			got["homeassistant/sensor/imageapid_testbox/walk_line_middle/config"] &&
			got["imageapid/testbox/cameras/walk/zones/path/count"]
	})
	for _, m := range retained() {
		if m.topic == "imageapid/testbox/availability" && m.payload != "online" {
			t.Errorf("availability %q while running", m.payload)
		}
		if m.topic == "imageapid/testbox/cameras/walk/state" && !strings.Contains(m.payload, `"connected":true`) {
			t.Errorf("camera state %s", m.payload)
		}
	}
	resp, err := http.Get("http://" + addr + "/cameras")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"camera_id":"walk"`) {
		t.Errorf("/cameras: %s", body)
	}

	// Stopping ends every open track; those events must reach the broker too.
	stop()
	var events []map[string]any
	testenv.WaitFor(t, 5*time.Second, "a track_end for every track_new", func() bool {
		events = events[:0]
		open := map[string]bool{}
		for _, m := range live() {
			var e map[string]any
			if err := json.Unmarshal([]byte(m.payload), &e); err != nil {
				t.Fatalf("event is not JSON: %s", m.payload)
			}
			events = append(events, e)
			switch e["type"] {
			case "track_new":
				open[e["track_id"].(string)] = true
			case "track_end":
				delete(open, e["track_id"].(string))
			}
		}
		return len(open) == 0
	})
	people := 0
	seenNew := map[string]bool{}
	entered := map[string]int{}
	lastID := ""
	for _, e := range events {
		id, _ := e["event_id"].(string)
		if id <= lastID {
			t.Errorf("event ids out of order: %s after %s", id, lastID)
		}
		lastID = id
		tr := e["track_id"].(string)
		switch e["type"] {
		case "track_new":
			seenNew[tr] = true
			if e["class"] == "body" {
				people++
			}
		case "track_update", "track_end", "zone_exit", "line_cross":
			if !seenNew[tr] {
				t.Errorf("%s for track %s before its track_new", e["type"], tr)
			}
		case "zone_enter":
			if !seenNew[tr] || e["zone"] != "path" {
				t.Errorf("zone_enter %v for track %s (announced: %v)", e["zone"], tr, seenNew[tr])
			}
			if entered[tr]++; entered[tr] > 1 {
				t.Errorf("track %s entered the zone twice", tr)
			}
		}
		if e["camera_id"] != "walk" {
			t.Errorf("camera_id %v", e["camera_id"])
		}
	}
	if people == 0 {
		t.Errorf("no person tracked in vtest.avi: %d events", len(events))
	}
	if len(entered) != people {
		t.Errorf("%d person tracks, %d entered the zone that is the whole view", people, len(entered))
	}
	testenv.WaitFor(t, 5*time.Second, "availability offline after shutdown", func() bool {
		ms := retained()
		for i := len(ms) - 1; i >= 0; i-- {
			if ms[i].topic == "imageapid/testbox/availability" {
				return ms[i].payload == "offline"
			}
		}
		return false
	})
	t.Logf("%d events, %d people tracks", len(events), people)
}

// daemonBinary builds the real imageapid binary once per test run.
var daemonBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "imageapid-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "imageapid")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// writeConfig writes a daemon config for the binary tests: models from this
// checkout, MQTT off unless extra turns it on.
func writeConfig(t *testing.T, path, listen, extra string) {
	t.Helper()
	root := testenv.Root(t)
	body := fmt.Sprintf("http:\n  listen: %s\nmodels:\n  manifest: %s\n  dir: %s\nstate_dir: %s\nmqtt:\n  enabled: false\n%s",
		listen, filepath.Join(root, "models", "manifest.json"), filepath.Join(root, "models", "build"), t.TempDir(), extra)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// notifications reads sd_notify datagrams from a socket the test owns.
func notifications(t *testing.T) (socket string, next func(timeout time.Duration) string) {
	t.Helper()
	socket = filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return socket, func(timeout time.Duration) string {
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(timeout))
		n, err := conn.Read(buf)
		if err != nil {
			return ""
		}
		return string(buf[:n])
	}
}

// waitNotify reads datagrams until one contains want.
func waitNotify(t *testing.T, next func(time.Duration) string, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if msg := next(time.Until(deadline)); strings.Contains(msg, want) {
			return
		}
	}
	t.Fatalf("no %q from the daemon within %v", want, timeout)
}

// TestBinaryUnderSystemd runs the binary as systemd would: Type=notify with a
// watchdog, SIGHUP to reload (adding a camera), SIGTERM to stop.
func TestBinaryUnderSystemd(t *testing.T) {
	bin, err := daemonBinary()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfgPath := filepath.Join(t.TempDir(), "imageapid.yaml")
	writeConfig(t, cfgPath, addr, "")
	socket, next := notifications(t)

	cmd := exec.Command(bin, "-config", cfgPath)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+socket, "WATCHDOG_USEC=400000")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitNotify(t, next, "READY=1", 30*time.Second)
	waitNotify(t, next, "WATCHDOG=1", 2*time.Second)

	writeConfig(t, cfgPath, addr, fmt.Sprintf("cameras:\n  - id: added\n    url: %s\n    loop: true\n    estimators: [face-detector]\n", shortClip(t, 20)))
	cmd.Process.Signal(syscall.SIGHUP)
	waitNotify(t, next, "RELOADING=1", 5*time.Second)
	waitNotify(t, next, "READY=1", 10*time.Second)
	resp, err := http.Get("http://" + addr + "/cameras")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"camera_id":"added"`) {
		t.Errorf("SIGHUP did not add the camera: %s\n%s", body, stderr.String())
	}

	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	waitNotify(t, next, "STOPPING=1", 5*time.Second)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(5*time.Second - time.Since(start)):
		t.Fatalf("still running 5 s after SIGTERM")
	}
}

// TestBinarySocketActivation serves on a socket systemd-socket-activate passes in.
func TestBinarySocketActivation(t *testing.T) {
	activate, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skipf("systemd-socket-activate not installed: %v", err)
	}
	bin, err := daemonBinary()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfgPath := filepath.Join(t.TempDir(), "imageapid.yaml")
	// The config names another port: only the activated socket may answer.
	writeConfig(t, cfgPath, fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), "")
	cmd := exec.Command(activate, "-l", addr, "--fdname=http", bin, "-config", cfgPath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	testenv.WaitFor(t, 5*time.Second, "systemd-socket-activate to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close() // this connection starts the daemon; it gets the socket
		}
		return err == nil
	})
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get("http://" + addr + "/readyz") // the first connection starts the daemon
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz %d", resp.StatusCode)
	}
	body := postFile(t, "http://"+addr+"/face-detector-face-fitter/process/image", testenv.ReadFixture(t, "astronaut.png"))
	if !strings.Contains(body, `"fitter_type":"fda"`) {
		t.Errorf("fitter over the activated socket: %.300s", body)
	}
}

func postFile(t *testing.T, url string, data []byte) string {
	t.Helper()
	pr, pw := io.Pipe()
	ct := make(chan string, 1)
	go func() {
		mw := multipart.NewWriter(pw)
		ct <- mw.FormDataContentType()
		fw, _ := mw.CreateFormFile("image", "x.png")
		fw.Write(data)
		mw.Close()
		pw.Close()
	}()
	resp, err := http.Post(url, <-ct, pr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
