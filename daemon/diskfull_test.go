package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"imageapid/camera"
	"imageapid/internal/testenv"
	"imageapid/ui"
)

// smallDisk mounts a tmpfs of size bytes on a new directory and unmounts
// it when the test ends; it skips the test where mounting is not allowed
// (not root, or a container without CAP_SYS_ADMIN).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a %s tmpfs for the state directory (%v): needs root with CAP_SYS_ADMIN", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// fillDisk writes a file that leaves at most leave bytes free on dir's
// file system, and returns its path.
func fillDisk(t *testing.T, dir string, leave int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for written := int64(0); written < free-leave; written += int64(len(chunk)) {
		if _, err := f.Write(chunk); err != nil {
			break // full already
		}
	}
	return path
}

// TestStateDiskFull runs the daemon with its state directory on a 1 MB
// tmpfs, a camera producing track events and the broker not yet up, so the
// events go to the outbox on that disk. The disk is then filled: events
// that cannot be written are counted as dropped (/v1/system, /metrics),
// while the daemon keeps answering the Image API, its probes and its
// console. With space back and the broker up, new events are queued and
// delivered again.
func TestStateDiskFull(t *testing.T) {
	state := smallDisk(t, "1m")
	port := testenv.FreePort(t)
	cfg := testConfig(t)
	cfg.StateDir = state
	cfg.DeviceID = "fullbox"
	cfg.MQTT.URL = "tcp://127.0.0.1:" + strconv.Itoa(port) // nobody listens yet
	cfg.Cameras = []camera.Config{{ID: "walk", URL: shortClip(t, 60), Loop: true, Estimators: []string{hogPeople}}}
	addr, stop := startDaemon(t, cfg)
	defer stop()
	base := "http://" + addr

	mqttStatus := func() ui.MQTTStatus {
		var sys struct{ MQTT ui.MQTTStatus }
		resp, err := http.Get(base + ui.SystemPath)
		if err != nil {
			t.Fatalf("/v1/system: %v", err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&sys); err != nil || resp.StatusCode != 200 {
			t.Fatalf("/v1/system: %d %v", resp.StatusCode, err)
		}
		return sys.MQTT
	}
	testenv.WaitFor(t, 60*time.Second, "camera events in the outbox", func() bool { return mqttStatus().QueueDepth > 0 })

	filler := fillDisk(t, state, 0)
	before := mqttStatus()
	testenv.WaitFor(t, 60*time.Second, "events counted as dropped on the full disk", func() bool {
		return mqttStatus().Dropped > before.Dropped
	})
	full := mqttStatus()
	t.Logf("disk full: %+v", full)

	// The daemon keeps serving while events are being dropped.
	face := testenv.ReadFixture(t, "astronaut.png")
	for i := 0; i < 3; i++ {
		if code, body := testenv.PostImage(t, base+"/face-detector-face-fitter/process/image", face, nil); code != 200 {
			t.Errorf("the fitter with the disk full: %d %.200s", code, body)
		}
		for _, p := range []string{"/healthz", "/readyz", "/cameras", "/"} {
			resp, err := http.Get(base + p)
			if err != nil {
				t.Fatalf("%s with the disk full: %v", p, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s with the disk full: %d", p, resp.StatusCode)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "imageapid_mqtt_dropped_total ") ||
		strings.Contains(string(metrics), "imageapid_mqtt_dropped_total 0\n") {
		t.Errorf("/metrics does not count the dropped events")
	}

	// Space back and the broker up: events are queued and delivered again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	broker := testenv.StartMosquitto(t, port, "")
	live := subscribe(t, broker.URL(), "imageapid/fullbox/events")
	testenv.WaitFor(t, 60*time.Second, "events delivered after the disk has room again", func() bool {
		return mqttStatus().Delivered > 0 && len(live()) > 0
	})
	after := mqttStatus()
	t.Logf("space back: %+v", after)
	if after.Dropped < full.Dropped {
		t.Errorf("the dropped count went down: %d then %d", full.Dropped, after.Dropped)
	}
}
