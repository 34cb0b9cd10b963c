package camera

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/internal/testenv"
)

// A looping file camera whose file is deleted reports the error and keeps
// retrying while another camera runs on; the file put back, it recovers
// within 5 s.
func TestFileRemovedAndRestored(t *testing.T) {
	dir := t.TempDir()
	clip := writeClip(t, dir, 0, 30, 1, 10)
	kept := filepath.Join(t.TempDir(), "kept.mp4")
	copyFile(t, clip, kept)
	var sts states
	m, err := NewManager(ManagerOptions{
		Build:   func(Config) (Analysis, error) { return Analysis{}, nil },
		OnState: sts.add, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	if err := m.Apply(context.Background(), []Config{
		{ID: "door", URL: clip, Loop: true, MaxFPS: 5},
		{ID: "other", URL: kept, Loop: true, MaxFPS: 5},
	}); err != nil {
		t.Fatal(err)
	}
	door, _ := m.Camera("door")
	other, _ := m.Camera("other")
	waitFor(t, 5*time.Second, "door to connect", func() bool { return door.State().Connected })

	if err := os.Remove(clip); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "door to report the missing file", func() bool {
		s := door.State()
		return !s.Connected && s.Status == StatusReconnecting && strings.Contains(s.LastError, "no such file")
	})
	if !sts.seen(func(s State) bool { return s.CameraID == "door" && strings.Contains(s.LastError, "no such file") }) {
		t.Error("OnState did not hear of the missing file")
	}
	before := other.Stats().FramesCaptured
	time.Sleep(2 * time.Second) // a few reconnection attempts
	if d := door.Stats().Reconnects; d < 2 {
		t.Errorf("door tried %d times in 2 s, want it to keep retrying", d)
	}
	if after := other.Stats().FramesCaptured; after <= before || !other.State().Connected {
		t.Errorf("the other camera stalled while door failed: %d -> %d frames", before, after)
	}

	copyFile(t, kept, clip)
	took := waitFor(t, 8*time.Second, "door to recover", func() bool { return door.State().Connected })
	t.Logf("recovered %v after the file came back", took)
	if took > 5*time.Second {
		t.Errorf("recovery took %v, want within 5 s", took)
	}
	n := door.Stats().FramesCaptured
	waitFor(t, 3*time.Second, "frames after recovery", func() bool { return door.Stats().FramesCaptured > n })
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Sources that cannot be read report why and are retried with growing
// waits, without crashing or blocking the test.
func TestBrokenSourcesRetryWithBackoff(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "garbage.avi")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a video; ", 5000)), 0o644); err != nil {
		t.Fatal(err)
	}
	// A loopback port nobody listens on: bind one, note it, close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()

	cases := []struct {
		name, url, wantErr string
	}{
		{"garbage file", garbage, "FFmpeg backend cannot open"},
		{"rtsp closed port", "rtsp://viewer:secret@127.0.0.1:" + itoa(closedPort) + "/stream", "FFmpeg backend cannot open"},
		{"v4l2 no device", "/dev/video63", "V4L2 backend cannot open"},
	}
	var cams []*Camera
	for _, tc := range cases {
		c, err := StartCamera(Config{ID: tc.name, URL: tc.url}, Analysis{}, Options{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		cams = append(cams, c)
	}
	time.Sleep(3 * time.Second)
	for i, tc := range cases {
		c := cams[i]
		s := c.State()
		t.Logf("%s: %s after %d reconnects: %s", tc.name, s.Status, s.Reconnects, s.LastError)
		if s.Connected || s.Status != StatusReconnecting || !strings.Contains(s.LastError, tc.wantErr) {
			t.Errorf("%s: state %+v, want reconnecting with %q", tc.name, s, tc.wantErr)
		}
		if strings.Contains(s.LastError, "secret") || strings.Contains(s.Source, "secret") {
			t.Errorf("%s: the state shows the URL's password: %+v", tc.name, s)
		}
		// Waits of 0.25, 0.5, 1, 2 s: 3 or 4 retries in 3 s, not hundreds.
		if s.Reconnects < 2 || s.Reconnects > 5 {
			t.Errorf("%s: %d retries in 3 s, want 2-5 with backoff", tc.name, s.Reconnects)
		}
		if age := time.Since(c.LastProgress()); age > 3*time.Second {
			t.Errorf("%s: progress is %v old while retrying", tc.name, age)
		}
		stopCamera(t, c)
		if st := c.State().Status; st != StatusStopped {
			t.Errorf("%s: status %s after Stop", tc.name, st)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// A GStreamer pipeline source, where the GStreamer base plugins are installed.
func TestGStreamerSource(t *testing.T) {
	const pipeline = "videotestsrc num-buffers=300 ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert ! appsink"
	probe, err := gocv.VideoCaptureFileWithAPI(pipeline, gocv.VideoCaptureGstreamer)
	if probe != nil {
		probe.Close()
	}
	if err != nil {
		t.Skip("GStreamer's videotestsrc is not installed (gstreamer1.0-plugins-base)")
	}
	c, err := StartCamera(Config{ID: "gst", URL: "gst:" + pipeline, MaxFPS: 10}, Analysis{}, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer stopCamera(t, c)
	waitFor(t, 5*time.Second, "gst frames", func() bool { return c.Stats().FramesAnalyzed >= 5 })
	if st := c.Stats(); st.FramesSkipped == 0 {
		t.Errorf("a 30 fps source capped at 10 fps skipped no frame: %+v", st)
	}
}

// mjpegServer is a network camera on a loopback port: multipart MJPEG over
// HTTP at 10 frames/s, the way many IP cameras serve it. It reads its
// source through the same FFmpeg stream path as rtsp:// (SourceStream).
type mjpegServer struct {
	t      *testing.T
	addr   string
	frames [][]byte
	srv    *http.Server
	done   chan struct{}
}

func newMJPEGServer(t *testing.T) *mjpegServer {
	t.Helper()
	vc, err := gocv.VideoCaptureFile(testenv.Fixture(t, "vtest.avi"))
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	img := gocv.NewMat()
	defer img.Close()
	s := &mjpegServer{t: t, addr: "127.0.0.1:" + itoa(testenv.FreePort(t))}
	for len(s.frames) < 20 && vc.Read(&img) && !img.Empty() {
		buf, err := gocv.IMEncode(gocv.JPEGFileExt, img)
		if err != nil {
			t.Fatal(err)
		}
		s.frames = append(s.frames, bytes.Clone(buf.GetBytes()))
		buf.Close()
	}
	t.Cleanup(s.stop)
	return s
}

// start listens on the server's port (the same one each time).
func (s *mjpegServer) start() {
	s.t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	// Each server's handlers watch their own channel: a stream of the last
	// server may still be finishing when the next one starts.
	done := make(chan struct{})
	s.done = done
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const boundary = "frame"
		w.Header().Set("Content-Type", "multipart/x-mixed-replace;boundary="+boundary)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			f := s.frames[i%len(s.frames)]
			if _, err := fmt.Fprintf(w, "--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", boundary, len(f)); err != nil {
				return
			}
			if _, err := w.Write(append(f, "\r\n"...)); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			case <-done:
				return
			}
		}
	})}
	go s.srv.Serve(ln)
}

// stop closes the port and every open stream, like a camera losing power.
func (s *mjpegServer) stop() {
	if s.srv == nil {
		return
	}
	close(s.done)
	s.srv.Close()
	s.srv = nil
}

// A network camera whose port is not listening yet when the daemon starts,
// then stops and comes back: the camera keeps retrying with backoff (capped
// at Reconnect.Max, 3 s by default) and is reading frames again within 5 s
// of the port listening each time.
func TestStreamCameraReconnectsWhenThePortListens(t *testing.T) {
	t.Parallel() // mostly waiting: it overlaps the other reconnection test
	srv := newMJPEGServer(t)
	c, err := StartCamera(Config{ID: "ipcam", URL: "http://" + srv.addr + "/video.mjpg", MaxFPS: 10}, Analysis{}, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer stopCamera(t, c)
	if max := c.Config().Reconnect.Max; max > 3*time.Second {
		t.Fatalf("the default reconnect backoff grows to %v: a camera back after an outage could wait longer than 5 s", max)
	}
	for round, down := range []time.Duration{6 * time.Second, 8 * time.Second} {
		// Down long enough for the backoff to reach its cap.
		waitFor(t, 5*time.Second, "the camera to report the refused connection", func() bool {
			s := c.State()
			return !s.Connected && s.Status == StatusReconnecting && s.LastError != ""
		})
		time.Sleep(down)
		tries := c.State().Reconnects
		srv.start()
		took := waitFor(t, 10*time.Second, "the camera to read frames again", func() bool { return c.State().Connected })
		n := c.Stats().FramesCaptured
		waitFor(t, 5*time.Second, "frames after reconnecting", func() bool { return c.Stats().FramesCaptured > n+5 })
		t.Logf("round %d: down %v (%d retries), connected %v after the port listened", round, down, tries, took.Round(10*time.Millisecond))
		if took > 5*time.Second {
			t.Errorf("round %d: reconnecting took %v after the port listened, want within 5 s", round, took)
		}
		srv.stop()
	}
}
