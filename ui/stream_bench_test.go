package ui_test

import (
	"context"
	"image"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/camera"
	"imageapid/internal/testenv"
	"imageapid/ui"
)

// oneCamera is the FrameSource of a single camera.
type oneCamera struct{ c *camera.Camera }

func (o oneCamera) Subscribe(_ string, maxFPS float64) (*camera.Subscription, error) {
	return o.c.Subscribe(maxFPS)
}

// clip640 writes vtest.avi's first frames scaled to 640x480 as an MJPEG AVI.
func clip640(b *testing.B) string {
	b.Helper()
	src, err := gocv.VideoCaptureFile(testenv.Fixture(b, "vtest.avi"))
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(b.TempDir(), "walk640.avi")
	w, err := gocv.VideoWriterFile(path, "MJPG", 15, 640, 480, true)
	if err != nil {
		b.Fatal(err)
	}
	frame, small := gocv.NewMat(), gocv.NewMat()
	defer frame.Close()
	defer small.Close()
	for i := 0; i < 150 && src.Read(&frame) && !frame.Empty(); i++ {
		gocv.Resize(frame, &small, image.Pt(640, 480), 0, 0, gocv.InterpolationArea)
		w.Write(small)
	}
	w.Close()
	return path
}

// BenchmarkPreviewCPU measures what one open preview costs the process: a
// 640x480 file camera analysed at 15 frames/s (no detectors, so the
// figure is the preview's own: frame copies, overlay, JPEG encoding and
// the HTTP writes, plus the loopback client reading the parts) runs for a
// window with nobody watching, then for a window with one MJPEG client at
// the default 5 frames/s. It reports the process's CPU time per wall
// second in both, and their difference as a percentage of one core.
func BenchmarkPreviewCPU(b *testing.B) {
	const window = 3 * time.Second
	clip := clip640(b)
	c, err := camera.StartCamera(camera.Config{ID: "bench", URL: "file://" + clip + "?live=false&loop=true", MaxFPS: 15},
		camera.Analysis{}, camera.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Stop(ctx)
	}()
	srv := httptest.NewServer(ui.StreamHandler(oneCamera{c}, ui.DefaultStreamOptions()))
	defer srv.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Stats().FramesAnalyzed < 15; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the camera analysed no frames")
		}
	}
	cores := func() float64 {
		cpu0, wall0 := testenv.CPUTime(b), time.Now()
		time.Sleep(window)
		return (testenv.CPUTime(b) - cpu0).Seconds() / time.Since(wall0).Seconds()
	}
	var idle, watched, fps float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		idle += cores()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/cameras/bench/stream", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		var parts atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			mr := multipart.NewReader(resp.Body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err != nil {
					return
				}
				io.Copy(io.Discard, p)
				parts.Add(1)
			}
		}()
		time.Sleep(time.Second) // the first frames and the connection's setup
		before, t0 := parts.Load(), time.Now()
		watched += cores()
		fps += float64(parts.Load()-before) / time.Since(t0).Seconds()
		cancel()
		resp.Body.Close()
		<-done
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(idle/n, "cores-idle")
	b.ReportMetric(watched/n, "cores-watched")
	b.ReportMetric(100*(watched-idle)/n, "%core/preview")
	b.ReportMetric(fps/n, "preview-frames/s")
	b.ReportMetric(0, "ns/op")
}
