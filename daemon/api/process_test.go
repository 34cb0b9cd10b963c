package api_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"imageapid/daemon/api"
	"imageapid/estimators"
	"imageapid/estimators/face"
	"imageapid/estimators/facecache"
	"imageapid/internal/testenv"
	"imageapid/models"
)

const processURL = "/v1/process"

// chainServices are the services a client calls after the fitter with the
// fitter's objects, in the order the tests call them.
var chainServices = []string{
	"age-estimator", "gender-estimator", "emotion-estimator", "mask-estimator",
	"face-detector-liveness-estimator", "liveness-anti-spoofing", "quality-liveness-anti-spoofing",
	"face-detector-template-extractor", "quality-assessment-estimator",
}

// cachedServers starts one server per face config, all over one model
// runtime and one face cache (cfg's zero value: no cache), and returns
// their URLs and face pipelines.
func cachedServers(t testing.TB, cfg facecache.Config, faceConfigs ...face.Config) ([]string, []*face.Pipeline) {
	t.Helper()
	cache, err := facecache.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cachedServersOn(t, testenv.Runtime(t, ""), cache, faceConfigs...)
}

// cachedServersOn is cachedServers over a given runtime and cache.
func cachedServersOn(t testing.TB, rt *models.Runtime, cache *facecache.Cache, faceConfigs ...face.Config) ([]string, []*face.Pipeline) {
	t.Helper()
	var (
		urls  []string
		pipes []*face.Pipeline
	)
	for _, fc := range faceConfigs {
		p, err := face.New(rt, fc)
		if err != nil {
			t.Fatal(err)
		}
		ests, err := estimators.Build(estimators.Deps{
			Models: rt, Faces: p, FaceCache: cache,
			Settings: func(string, any) error { return nil }, Log: slog.New(slog.DiscardHandler),
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		srv := api.New(testConfig, slog.New(slog.DiscardHandler), ests)
		srv.SetReady(nil)
		ts := httptest.NewServer(srv)
		t.Cleanup(ts.Close)
		urls = append(urls, ts.URL)
		pipes = append(pipes, p)
	}
	return urls, pipes
}

func cachedServer(t testing.TB, cfg facecache.Config) (string, *face.Pipeline) {
	t.Helper()
	urls, pipes := cachedServers(t, cfg, face.Config{})
	return urls[0], pipes[0]
}

// chain calls the fitter on img, then each service with the fitter's
// objects and the same bytes, as a client does, and returns the objects
// each call answered (the fitter's first). With cumulative, each call gets
// the previous call's objects instead.
func chain(t *testing.T, url string, img []byte, services []string) [][]map[string]any {
	return chainObjects(t, url, img, services, false)
}

func chainObjects(t *testing.T, url string, img []byte, services []string, cumulative bool) [][]map[string]any {
	t.Helper()
	_, objs := fitterObject(t, postImage(t, url+fitter+"/process/image", img))
	if len(objs) == 0 {
		t.Fatal("the fitter found no face")
	}
	fitted := make([]map[string]any, len(objs))
	for i, o := range objs {
		fitted[i] = o.(map[string]any)
	}
	out := [][]map[string]any{fitted}
	for _, svc := range services {
		got := sampleObjects(t, url+"/"+svc+"/process/sample", map[string]any{"$image": b64(img), "objects": objs})
		out = append(out, got)
		if cumulative {
			objs = make([]any, len(got))
			for i, o := range got {
				objs[i] = o
			}
		}
	}
	return out
}

// TestFaceCacheChainOneDetectionOneMesh: the fitter, then every attribute,
// liveness, template and quality service with the fitter's objects and the
// same bytes, run one detection and one mesh fit in all; without the cache
// each call detects again.
func TestFaceCacheChainOneDetectionOneMesh(t *testing.T) {
	face1 := testenv.ReadFixture(t, "astronaut.png")
	t.Run("cache", func(t *testing.T) {
		long := facecache.Default()
		long.TTL = 10 * time.Minute // the chain takes over 10 s under -race
		url, p := cachedServer(t, long)
		chain(t, url, face1, chainServices)
		if got := p.Passes(); got != (face.Passes{Detect: 1, Fit: 1}) {
			t.Errorf("passes %+v over the chain of %d calls, want 1 detection and 1 fit", got, 1+len(chainServices))
		}
	})
	t.Run("no_cache", func(t *testing.T) {
		url, p := cachedServer(t, facecache.Config{})
		chain(t, url, face1, chainServices[:3])
		if got := p.Passes(); got.Detect != 4 || got.Fit != 4 {
			t.Errorf("passes %+v without a cache over 4 calls, want 4 detections and 4 fits", got)
		}
	})
}

// TestFaceCacheChainOneRunPerNetwork: over the same chain each network
// behind the services runs once per face (FaceRes for age and gender,
// MobileFace for gender, mask, liveness and quality, ...), and every call
// answers what a server without a cache answers.
func TestFaceCacheChainOneRunPerNetwork(t *testing.T) {
	face1 := testenv.ReadFixture(t, "astronaut.png")
	long := facecache.Default()
	long.TTL = 10 * time.Minute // the chain takes over 10 s under -race
	cache, err := facecache.New(long)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	runs := map[string]int{}
	rt := testenv.RuntimeWith(t, models.Options{Threads: 1, Pool: 2, ObserveInvoke: func(m string, _ time.Duration) {
		mu.Lock()
		runs[m]++
		mu.Unlock()
	}})
	urls, _ := cachedServersOn(t, rt, cache, face.Config{})
	got := chain(t, urls[0], face1, chainServices)
	mu.Lock()
	for _, m := range []string{"faceres", "mobileface", "mobilefacenet", "emotion", "antispoof", "liveness", "face_detection_full_range"} {
		if runs[m] != 1 {
			t.Errorf("%s ran %d times over the chain, want once", m, runs[m])
		}
	}
	mu.Unlock()
	if st := cache.Stats(); st.OutputHits == 0 || st.Merged != 0 {
		t.Errorf("cache stats %+v: want output hits and no merged calls (the chain is sequential)", st)
	}
	plain, _ := cachedServer(t, facecache.Config{})
	want := chain(t, plain, face1, chainServices)
	for i := range want {
		if !equalJSON(got[i], want[i]) {
			t.Errorf("call %d: with the cache %.600v, without %.600v", i, got[i], want[i])
		}
	}
}

// TestFaceCacheConcurrentCallsFitOnce: calls on the same new image at once
// detect and fit once between them.
func TestFaceCacheConcurrentCallsFitOnce(t *testing.T) {
	face1 := testenv.ReadFixture(t, "astronaut.png")
	long := facecache.Default()
	long.TTL = 10 * time.Minute
	url, p := cachedServer(t, long)
	ct, body := multipartBody(t, "image", face1)
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() { // t.Fatal is for the test's goroutine: report with t.Error
			defer wg.Done()
			resp, err := http.Post(url+fitter+"/process/image", ct, bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	if got := p.Passes(); got != (face.Passes{Detect: 1, Fit: 1}) {
		t.Errorf("passes %+v for 3 concurrent fitter calls on one image, want 1 detection and 1 fit", got)
	}
}

// TestFaceCacheObjectsAuthoritative: with the fitter's faces cached, an
// object whose bbox is not one of them is fitted on its own box as without
// a cache (one more fit, no detection), and answers what an uncached server
// answers for it.
func TestFaceCacheObjectsAuthoritative(t *testing.T) {
	face1 := testenv.ReadFixture(t, "astronaut.png")
	long := facecache.Default()
	long.TTL = 10 * time.Minute // a loaded -race run can take over 10 s between the calls
	url, p := cachedServer(t, long)
	plain := newServer(t)
	chain(t, url, face1, nil)
	// A box over the astronaut's chest: no detected face overlaps it.
	foreign := []any{map[string]any{"id": 0, "class": "face", "bbox": []float64{0.30, 0.62, 0.62, 0.95}}}
	before := p.Passes()
	got := sampleObjects(t, url+ageSvc+"/process/sample", map[string]any{"$image": b64(face1), "objects": foreign})
	after := p.Passes()
	if after.Detect != before.Detect || after.Fit != before.Fit+1 {
		t.Errorf("passes %+v -> %+v: a foreign box must be fitted once and nothing detected again", before, after)
	}
	want := sampleObjects(t, plain+ageSvc+"/process/sample", map[string]any{"$image": b64(face1), "objects": foreign})
	if !equalJSON(got, want) {
		t.Errorf("a foreign box with the cache: %v, without: %v", got, want)
	}
}

// TestFaceCacheForeignSettings: two pipelines with other settings sharing
// one cache never use each other's faces.
func TestFaceCacheForeignSettings(t *testing.T) {
	face1 := testenv.ReadFixture(t, "astronaut.png")
	urls, pipes := cachedServers(t, facecache.Default(), face.Config{}, face.Config{RefineMesh: "off"})
	a := chain(t, urls[0], face1, []string{"age-estimator"})
	b := chain(t, urls[1], face1, []string{"age-estimator"})
	for i, p := range pipes {
		if got := p.Passes(); got != (face.Passes{Detect: 1, Fit: 1}) {
			t.Errorf("pipeline %d: passes %+v, want its own detection and fit", i, got)
		}
	}
	if equalJSON(a[0][0]["fitter"], b[0][0]["fitter"]) {
		t.Error("a single-pass mesh answered the same points as the refined one: the entry was shared")
	}
}

// TestFaceCacheExpiry: an expired entry is refitted.
func TestFaceCacheExpiry(t *testing.T) {
	const ttl = time.Second
	face1 := testenv.ReadFixture(t, "astronaut.png")
	url, p := cachedServer(t, facecache.Config{Entries: 4, MaxBytes: 1 << 20, TTL: ttl})
	chain(t, url, face1, nil)
	time.Sleep(ttl + 100*time.Millisecond)
	stored := time.Now()
	_, objs := fitterObject(t, postImage(t, url+fitter+"/process/image", face1))
	if got := p.Passes(); got != (face.Passes{Detect: 2, Fit: 2}) {
		t.Errorf("passes %+v, want a second detection and fit after the TTL", got)
	}
	sampleObjects(t, url+ageSvc+"/process/sample", map[string]any{"$image": b64(face1), "objects": objs})
	if time.Since(stored) >= ttl {
		t.Logf("the calls took %v, over the TTL: the refitted entry's reuse is not checked", time.Since(stored))
		return
	}
	if got := p.Passes(); got != (face.Passes{Detect: 2, Fit: 2}) {
		t.Errorf("passes %+v, want no detection for the age call within the TTL of the refit", got)
	}
}

// processServices is the set /v1/process is compared on.
var processServices = append([]string{"face-detector-face-fitter"}, chainServices...)

// TestProcessMatchesSingleRoutes: /v1/process (JSON and multipart) answers
// the objects the single routes answer one after the other, with one
// detection and one fit per request and no cache.
func TestProcessMatchesSingleRoutes(t *testing.T) {
	face1 := testenv.ReadFixture(t, "astronaut.png")
	url, p := cachedServer(t, facecache.Config{})
	steps := chainObjects(t, url, face1, chainServices, true)
	want := steps[len(steps)-1]
	single := chain(t, url, face1, chainServices)

	before := p.Passes()
	r := postJSON(t, url+processURL, map[string]any{"$image": b64(face1), "services": processServices, "tag": "kept"})
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %.300s", r.Status, r.Body)
	}
	if got := p.Passes(); got.Detect != before.Detect+1 || got.Fit != before.Fit+1 {
		t.Errorf("passes %+v -> %+v: /v1/process must detect and fit once", before, got)
	}
	v := r.JSON(t)
	if !equalJSON(v["objects"], want) {
		t.Errorf("/v1/process objects differ from the single routes':\n%.2000s\nwant\n%.2000v", r.Body, want)
	}
	if v["$image"] != b64(face1) || v["tag"] != "kept" || v["services"] != nil {
		t.Errorf("top-level keys: $image echoed %v, tag %v, services %v", v["$image"] == b64(face1), v["tag"], v["services"])
	}
	for _, k := range []string{"age", "gender", "emotions", "mask", "liveness", "$template", "template_size", "quality", "fitter", "angles"} {
		if _, ok := want[0][k]; !ok {
			t.Errorf("the single routes gave no %q: %.300v", k, want[0])
		}
	}
	// Each service's own fields, called with the fitter's objects only, are
	// the merged answer's (liveness: the last service writing it wins).
	objs, _ := v["objects"].([]any)
	if len(objs) != 1 {
		t.Fatalf("/v1/process answered %d objects", len(objs))
	}
	merged, _ := objs[0].(map[string]any)
	for i, svc := range chainServices {
		for k, val := range single[i+1][0] {
			if _, fromFitter := single[0][0][k]; fromFitter || k == "liveness" && svc != "quality-liveness-anti-spoofing" {
				continue
			}
			if !equalJSON(merged[k], val) {
				t.Errorf("%s: %q is %.200v alone, %.200v in /v1/process", svc, k, val, merged[k])
			}
		}
	}

	// A multipart form: repeated and comma-separated services fields.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("services", strings.Join(processServices[:4], ", "))
	fw, _ := mw.CreateFormFile("image", "face1.png")
	fw.Write(face1)
	for _, s := range processServices[4:] {
		mw.WriteField("services", s)
	}
	mw.Close()
	r = do(t, http.MethodPost, url+processURL, mw.FormDataContentType(), &buf)
	if r.Status != http.StatusOK {
		t.Fatalf("multipart: status %d: %.300s", r.Status, r.Body)
	}
	if v := r.JSON(t); !equalJSON(v["objects"], want) {
		t.Errorf("multipart /v1/process objects differ from the single routes': %.600s", r.Body)
	}

	// Without the fitter, age on a bare sample adds an object without a
	// bbox, which the mask estimator then refuses, as over the single routes.
	r = postJSON(t, url+processURL, map[string]any{"$image": b64(face1), "services": []string{"age-estimator", "mask-estimator"}})
	age := sampleObjects(t, url+ageSvc+"/process/sample", map[string]any{"$image": b64(face1)})
	alone := postJSON(t, url+maskSvc+"/process/sample", map[string]any{"$image": b64(face1), "objects": age})
	var detail struct{ Detail string }
	json.Unmarshal(alone.Body, &detail)
	assertDetail(t, r, alone.Status, "mask-estimator: "+detail.Detail)
}

// TestProcessValidation: unknown, missing or malformed services are 422
// with a FastAPI-style list; the other errors are the single routes'.
func TestProcessValidation(t *testing.T) {
	face1 := testenv.ReadFixture(t, "astronaut.png")
	url := newServer(t)
	r := postJSON(t, url+processURL, map[string]any{"$image": b64(face1), "services": []string{"age-estimator", "no-such-service", "face-detector"}})
	assertValidationIndex(t, r, 1)
	if v := r.JSON(t); len(v["detail"].([]any)) != 2 || !strings.Contains(string(r.Body), "type_error.enum") {
		t.Errorf("want one enum item per unknown service: %s", r.Body)
	}
	assertValidation(t, postJSON(t, url+processURL, map[string]any{"$image": b64(face1)}), "services")
	assertValidation(t, postJSON(t, url+processURL, map[string]any{"$image": b64(face1), "services": []string{}}), "services")
	assertValidation(t, postJSON(t, url+processURL, map[string]any{"$image": b64(face1), "services": "age-estimator"}), "services")
	assertValidationIndex(t, postJSON(t, url+processURL, map[string]any{"$image": b64(face1), "services": []any{"age-estimator", 3}}), 1)
	assertValidation(t, postJSON(t, url+processURL, map[string]any{"services": []string{"age-estimator"}}), "$image")
	assertValidation(t, postImage(t, url+processURL, face1), "services")
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("services", "age-estimator,bogus")
	mw.Close()
	assertValidation(t, do(t, http.MethodPost, url+processURL, mw.FormDataContentType(), &buf), "image")
	buf.Reset()
	mw = multipart.NewWriter(&buf)
	mw.WriteField("services", "age-estimator,bogus")
	fw, _ := mw.CreateFormFile("image", "face1.png")
	fw.Write(face1)
	mw.Close()
	assertValidationIndex(t, do(t, http.MethodPost, url+processURL, mw.FormDataContentType(), &buf), 1)

	assertDetail(t, postJSON(t, url+processURL, map[string]any{"$image": "%%%", "services": []string{"age-estimator"}}), 400, estimators.MsgBadBase64)
	assertDetail(t, postJSON(t, url+processURL, map[string]any{"$image": b64(face1), "services": []string{"quality-assessment-estimator"}}),
		400, "quality-assessment-estimator: "+estimators.MsgNoObjects)
	assertDetail(t, do(t, http.MethodGet, url+processURL, "", nil), 405, "Method Not Allowed")
	big := bytes.Repeat([]byte("a"), int(testConfig.MaxBodyBytes)+10)
	assertDetail(t, do(t, http.MethodPost, url+processURL, "application/json", bytes.NewReader(big)), 400, "Request body size is too large")

	// The OpenAPI document lists the route.
	if r := do(t, http.MethodGet, url+"/openapi.json", "", nil); !bytes.Contains(r.Body, []byte(`"/v1/process"`)) {
		t.Errorf("/openapi.json lacks /v1/process")
	}
}
