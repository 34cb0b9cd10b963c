package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"testing"
	"time"

	"imageapid/estimators/facecache"
)

// benchChain is the single-face chain a client runs after the fitter, each
// call with the fitter's objects.
var benchChain = []string{
	"age-estimator", "gender-estimator", "emotion-estimator", "mask-estimator",
	"face-detector-liveness-estimator", "liveness-anti-spoofing",
	"face-detector-template-extractor", "quality-assessment-estimator",
}

// benchCaches are the configurations compared in one run: no cache (the
// baseline) and the daemon's default.
var benchCaches = []struct {
	name string
	cfg  facecache.Config
}{{"cache=off", facecache.Config{}}, {"cache=on", facecache.Default()}}

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
			url, p := cachedServer(b, bc.cfg)
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
			}
			run(-1) // warm up the interpreters
			clear(spent)
			before := p.Passes()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				run(i)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			passes := p.Passes()
			n := float64(b.N)
			b.ReportMetric(float64(elapsed.Milliseconds())/n, "ms/image")
			b.ReportMetric(float64(spent[0].Microseconds())/1000/n, "ms/face-detector-face-fitter")
			for k, svc := range benchChain {
				b.ReportMetric(float64(spent[k+1].Microseconds())/1000/n, "ms/"+svc)
			}
			b.ReportMetric(float64(passes.Detect-before.Detect)/n, "detections/image")
			b.ReportMetric(float64(passes.Fit-before.Fit)/n, "fits/image")
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
			url, p := cachedServer(b, bc.cfg)
			c := benchClient{b, &http.Client{}}
			run := func(i int) {
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
				c.post(url+processURL, mw.FormDataContentType(), buf.Bytes())
			}
			run(-1)
			before := p.Passes()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				run(i)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			passes := p.Passes()
			n := float64(b.N)
			b.ReportMetric(float64(elapsed.Milliseconds())/n, "ms/image")
			b.ReportMetric(float64(passes.Detect-before.Detect)/n, "detections/image")
			b.ReportMetric(float64(passes.Fit-before.Fit)/n, "fits/image")
		})
	}
}
