package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/daemon/api"
	"imageapid/estimators"
	"imageapid/estimators/face"
	"imageapid/internal/testenv"
)

// testConfig is the daemon's default limits.
var testConfig = api.Config{
	MaxBodyBytes:   4_700_000,
	MaxPixels:      10_000_000,
	MaxObjects:     100,
	MaxConcurrent:  4,
	RequestTimeout: 30 * time.Second,
}

// newServer starts the real Image API with every registered service over
// real models on a loopback port.
func newServer(t testing.TB) string {
	t.Helper()
	return newServerWith(t, face.Config{MinScore: 0.5, MaxFaces: 50})
}

// newServerWith is newServer with a face pipeline configured as given.
func newServerWith(t testing.TB, fc face.Config) string {
	t.Helper()
	return newServerLimited(t, fc, testConfig, nil)
}

// newServerLimited is newServer with its own limits, behind wrap (when not nil).
func newServerLimited(t testing.TB, fc face.Config, cfg api.Config, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	rt := testenv.Runtime(t, "")
	faces, err := face.New(rt, fc)
	if err != nil {
		t.Fatal(err)
	}
	ests, err := estimators.Build(estimators.Deps{
		Models: rt, Faces: faces, Settings: func(string, any) error { return nil }, Log: slog.New(slog.DiscardHandler),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(cfg, slog.New(slog.DiscardHandler), ests)
	srv.SetReady(nil)
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(srv)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

type response struct {
	Status int
	Body   []byte
}

// JSON decodes the body as a generic value.
func (r response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("status %d, body is not a JSON object: %v: %.300s", r.Status, err, r.Body)
	}
	return v
}

func do(t testing.TB, method, url, contentType string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, b}
}

func postJSON(t testing.TB, url string, v any) response {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, http.MethodPost, url, "application/json", bytes.NewReader(b))
}

// multipartBody builds a form with one file part.
func multipartBody(t testing.TB, field string, data []byte) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile(field, "upload.jpg")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

func postImage(t testing.TB, url string, data []byte) response {
	t.Helper()
	ct, body := multipartBody(t, "image", data)
	return do(t, http.MethodPost, url, ct, bytes.NewReader(body))
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// jpegOf re-encodes an image file as JPEG, optionally transformed.
func jpegOf(t testing.TB, data []byte, transform func(gocv.Mat) gocv.Mat) []byte {
	t.Helper()
	img, err := gocv.IMDecode(data, gocv.IMReadColor)
	if err != nil || img.Empty() {
		t.Fatalf("decode fixture: %v", err)
	}
	defer img.Close()
	toEncode := img
	if transform != nil {
		out := transform(img)
		defer out.Close()
		toEncode = out
	}
	b, err := estimators.EncodeJPEG(toEncode, 92)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// twoFaces puts astronaut.png beside its mirror image: two faces.
func twoFaces(t testing.TB) []byte {
	return jpegOf(t, testenv.ReadFixture(t, "astronaut.png"), func(m gocv.Mat) gocv.Mat {
		flipped := gocv.NewMat()
		defer flipped.Close()
		gocv.Flip(m, &flipped, 1)
		out := gocv.NewMat()
		gocv.Hconcat(m, flipped, &out)
		return out
	})
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
