package api_test

import (
	"bytes"
	"image"
	"image/color"
	"net/http"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
	"imageapid/internal/testenv"
)

// portrait640x480 is astronaut.png scaled to 480x480 and centred on a 640x480 canvas.
func portrait640x480(b testing.TB) []byte {
	return jpegOf(b, testenv.ReadFixture(b, "astronaut.png"), func(m gocv.Mat) gocv.Mat {
		small := gocv.NewMat()
		defer small.Close()
		gocv.Resize(m, &small, image.Pt(480, 480), 0, 0, gocv.InterpolationArea)
		out := gocv.NewMat()
		gocv.CopyMakeBorder(small, &out, 0, 0, 80, 80, gocv.BorderReplicate, color.RGBA{})
		return out
	})
}

// BenchmarkHTTPFitterImage measures fitter throughput on /process/image with
// 640x480 JPEGs over loopback from two concurrent clients: with the default
// face pipeline (full-range detector, second mesh pass), with the second
// mesh pass only where the first mesh's region differs (refine_mesh auto),
// and with the cheapest one (short-range detector, one mesh pass) for
// boxes that only see near faces.
func BenchmarkHTTPFitterImage(b *testing.B) {
	for _, bc := range []struct {
		name string
		face face.Config
	}{
		{"default", face.Config{}},
		{"refine_auto", face.Config{RefineMesh: "auto"}},
		{"short_range+single_mesh", face.Config{Detector: "short_range", RefineMesh: "off"}},
	} {
		b.Run(bc.name, func(b *testing.B) { benchmarkFitter(b, newServerWith(b, bc.face)) })
	}
}

func benchmarkFitter(b *testing.B, base string) {
	url := base + fitter + "/process/image"
	ct, body := multipartBody(b, "image", portrait640x480(b))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	post := func() {
		resp, err := client.Post(url, ct, bytes.NewReader(body))
		if err != nil {
			b.Error(err)
			return
		}
		buf := new(bytes.Buffer)
		buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(buf.Bytes(), []byte(`"fitter_type":"fda"`)) {
			b.Errorf("status %d: %.200s", resp.StatusCode, buf.Bytes())
		}
	}
	post() // warm up the interpreters
	const clients = 2
	cpu := cpuTime(b)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		n := b.N / clients
		if c == 0 {
			n += b.N % clients
		}
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				post()
			}
		}(n)
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu = cpuTime(b) - cpu
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	// The machine is shared: CPU per request says what two free cores
	// would serve (2 s of CPU a second over the CPU a request takes).
	perReq := cpu.Seconds() / float64(b.N)
	b.ReportMetric(perReq*1000, "cpu-ms/req")
	b.ReportMetric(2/perReq, "req/s-on-2-free-cores")
}
