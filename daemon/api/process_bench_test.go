package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
	"imageapid/estimators/facecache"
	"imageapid/internal/peerbench"
	"imageapid/internal/testenv"
	"imageapid/models"
)

// benchChain is the single-face chain a client runs after the fitter, each
// call with the fitter's objects.
var benchChain = []string{
	"age-estimator", "gender-estimator", "emotion-estimator", "mask-estimator",
	"face-detector-liveness-estimator", "liveness-anti-spoofing",
	"face-detector-template-extractor", "quality-assessment-estimator",
}

// benchCaches are the configurations compared in one run: no cache (the
// baseline), faces only (no network outputs kept) and the daemon's default.
var benchCaches = []struct {
	name string
	cfg  facecache.Config
}{
	{"cache=off", facecache.Config{}},
	{"cache=faces", func() facecache.Config { c := facecache.Default(); c.Outputs = 0; return c }()},
	{"cache=on", facecache.Default()},
}

// withComment returns a JPEG with a comment segment after its start
// marker: other bytes (another digest), the same decoded image.
func withComment(jpeg []byte, comment string) []byte {
	n := len(comment) + 2
	out := make([]byte, 0, len(jpeg)+n+2)
	out = append(out, jpeg[:2]...)
	out = append(out, 0xFF, 0xFE, byte(n>>8), byte(n))
	out = append(out, comment...)
	return append(out, jpeg[2:]...)
}

// benchServer is the Image API over its own runtime, which counts every
// network invocation, and its own face cache (cfg's zero value: none).
type benchServer struct {
	url     string
	faces   *face.Pipeline
	cache   *facecache.Cache
	invokes *invokeCounter
}

func newBenchServer(b *testing.B, cfg facecache.Config) benchServer {
	cache, err := facecache.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ic := &invokeCounter{n: map[string]int{}}
	rt := testenv.RuntimeWith(b, models.Options{Threads: 1, Pool: 2, ObserveInvoke: ic.observe})
	urls, pipes := cachedServersOn(b, rt, cache, face.Config{})
	return benchServer{urls[0], pipes[0], cache, ic}
}

// invokeCounter counts network invocations per model.
type invokeCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *invokeCounter) observe(model string, _ time.Duration) {
	c.mu.Lock()
	c.n[model]++
	c.mu.Unlock()
}

func (c *invokeCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// cpuTime is the CPU time the process (server and client) has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs b.N images through run and reports wall and CPU ms per
// image (CPU time holds up on a shared machine where wall time does not),
// the pipeline's passes, the network invocations and the cache's hit rates.
func (s benchServer) measure(b *testing.B, run func(i int)) {
	run(-1) // warm up the interpreters
	passes, invokes, stats := s.faces.Passes(), s.invokes.snapshot(), s.cache.Stats()
	cpu := cpuTime(b)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		run(i)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cpu = cpuTime(b) - cpu
	n := float64(b.N)
	b.ReportMetric(float64(elapsed.Microseconds())/1000/n, "ms/image")
	b.ReportMetric(float64(cpu.Microseconds())/1000/n, "cpu-ms/image")
	after := s.faces.Passes()
	b.ReportMetric(float64(after.Detect-passes.Detect)/n, "detections/image")
	b.ReportMetric(float64(after.Fit-passes.Fit)/n, "fits/image")
	total := 0
	for model, k := range s.invokes.snapshot() {
		total += k - invokes[model]
		if model == "faceres" || model == "mobileface" || model == "mobilefacenet" {
			b.ReportMetric(float64(k-invokes[model])/n, model+"-runs/image")
		}
	}
	b.ReportMetric(float64(total)/n, "network-runs/image")
	if s.cache != nil {
		st := s.cache.Stats()
		if looks := (st.Hits + st.Misses) - (stats.Hits + stats.Misses); looks > 0 {
			b.ReportMetric(float64(st.Hits-stats.Hits)/float64(looks), "face-hit-rate")
		}
		if looks := (st.OutputHits + st.OutputMisses) - (stats.OutputHits + stats.OutputMisses); looks > 0 {
			b.ReportMetric(float64(st.OutputHits-stats.OutputHits)/float64(looks), "output-hit-rate")
		}
	}
}

type benchClient struct {
	b    *testing.B
	http *http.Client
}

// post sends a request and decodes the answer's objects, failing on a non-200.
func (c benchClient) post(url, contentType string, body []byte) []any {
	resp, err := c.http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		c.b.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.b.Fatal(err)
	}
	var v struct {
		Objects []any `json:"objects"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &v) != nil || len(v.Objects) != 1 {
		c.b.Fatalf("%s: status %d: %.300s", url, resp.StatusCode, b)
	}
	return v.Objects
}

// BenchmarkHTTPChain is the whole single-face chain over HTTP as a client
// runs it on a 640x480 portrait: the fitter on the file, then each service
// of benchChain on the same bytes (base64) with the fitter's objects. Every
// image has its own bytes (a JPEG comment), so the fitter call never finds
// the previous image's faces. Reported: ms per image, ms per service, and
// the detections per image.
func BenchmarkHTTPChain(b *testing.B) {
	portrait := portrait640x480(b)
	for _, bc := range benchCaches {
		b.Run(bc.name, func(b *testing.B) {
			srv := newBenchServer(b, bc.cfg)
			url := srv.url
			c := benchClient{b, &http.Client{}}
			spent := make([]time.Duration, 1+len(benchChain))
			run := func(i int) {
				img := withComment(portrait, fmt.Sprintf("image %d of %s", i, b.Name()))
				ct, form := multipartBody(b, "image", img)
				t0 := time.Now()
				objs := c.post(url+fitter+"/process/image", ct, form)
				spent[0] += time.Since(t0)
				body, err := json.Marshal(map[string]any{"$image": b64(img), "objects": objs})
				if err != nil {
					b.Fatal(err)
				}
				for k, svc := range benchChain {
					t0 := time.Now()
					c.post(url+"/"+svc+"/process/sample", "application/json", body)
					spent[k+1] += time.Since(t0)
				}
				if i < 0 {
					clear(spent)
				}
			}
			srv.measure(b, run)
			n := float64(b.N)
			b.ReportMetric(float64(spent[0].Microseconds())/1000/n, "ms/face-detector-face-fitter")
			for k, svc := range benchChain {
				b.ReportMetric(float64(spent[k+1].Microseconds())/1000/n, "ms/"+svc)
			}
		})
	}
}

// BenchmarkHTTPProcess is the same chain as one /v1/process request (the
// file and a services field), on the same images.
func BenchmarkHTTPProcess(b *testing.B) {
	portrait := portrait640x480(b)
	services := append([]string{"face-detector-face-fitter"}, benchChain...)
	for _, bc := range benchCaches {
		b.Run(bc.name, func(b *testing.B) {
			srv := newBenchServer(b, bc.cfg)
			c := benchClient{b, &http.Client{}}
			srv.measure(b, func(i int) {
				var buf bytes.Buffer
				mw := multipart.NewWriter(&buf)
				fw, err := mw.CreateFormFile("image", "portrait.jpg")
				if err != nil {
					b.Fatal(err)
				}
				fw.Write(withComment(portrait, fmt.Sprintf("image %d of %s", i, b.Name())))
				for _, s := range services {
					mw.WriteField("services", s)
				}
				mw.Close()
				c.post(srv.url+processURL, mw.FormDataContentType(), buf.Bytes())
			})
		})
	}
}

// BenchmarkPeerHuman is the peer on the same portrait, to read HTTPChain and
// HTTPProcess against in the same run: Human 3.3.6's face set (detector
// with rotation, mesh, FaceRes for age, gender and descriptor, emotion,
// antispoof, liveness) on WASM in Node, wall and CPU ms per image. It skips
// until `make peer` has installed the peer.
func BenchmarkPeerHuman(b *testing.B) {
	img, err := gocv.IMDecode(portrait640x480(b), gocv.IMReadColor)
	if err != nil {
		b.Fatal(err)
	}
	defer img.Close()
	rgb := gocv.NewMat()
	defer rgb.Close()
	gocv.CvtColor(img, &rgb, gocv.ColorBGRToRGB)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, err := peerbench.Human(ctx, testenv.Root(b), rgb.ToBytes(), rgb.Cols(), rgb.Rows(), b.N)
	if errors.Is(err, peerbench.ErrNotInstalled) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.WallMS, "ms/image")
	b.ReportMetric(r.CPUMS, "cpu-ms/image")
}
