package watchlist

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
	"imageapid/estimators/facetemplate"
	"imageapid/internal/testenv"
)

// testExtractor is the daemon's extractor on the real models.
func testExtractor(t testing.TB) *PipelineExtractor {
	t.Helper()
	rt := testenv.Runtime(t, "xnnpack")
	p, err := face.New(rt, face.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := facetemplate.NewEmbedder(rt, facetemplate.DefaultNetwork, false)
	if err != nil {
		t.Fatal(err)
	}
	return NewPipelineExtractor(p, e)
}

// server is a watchlist service behind a real HTTP server on loopback.
type server struct {
	svc *Service
	srv *httptest.Server
}

func startServer(t testing.TB, path string, key []byte, x Extractor) *server {
	t.Helper()
	svc := openTestService(t, path, key, x)
	srv := httptest.NewServer((svc.Handler(RouteLimits{MaxBodyBytes: 8 << 20, MaxPixels: 20_000_000,
		RequestTimeout: 30 * time.Second, ImageWorkers: 2})))
	t.Cleanup(srv.Close)
	return &server{svc: svc, srv: srv}
}

func (s *server) stop() {
	s.srv.Close()
	s.svc.Close()
}

func (s *server) do(t testing.TB, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, s.srv.URL+Prefix+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: status %d, body is not a JSON object: %.200s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func imageJSON(img []byte) map[string]any {
	return map[string]any{"$image": base64.StdEncoding.EncodeToString(img)}
}

// candidates is the first face's candidate person ids of a search reply.
func candidates(t testing.TB, reply map[string]any) []string {
	t.Helper()
	faces, _ := reply["faces"].([]any)
	if len(faces) == 0 {
		return nil
	}
	var ids []string
	for _, c := range faces[0].(map[string]any)["candidates"].([]any) {
		ids = append(ids, c.(map[string]any)["person_id"].(string))
	}
	return ids
}

func encodePNG(t testing.TB, m gocv.Mat) []byte {
	t.Helper()
	buf, err := gocv.IMEncode(gocv.PNGFileExt, m)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...)
}

// twoFaces is the photo twice side by side; tiny is it shrunk until the
// face is too small to enrol.
func derivedImages(t testing.TB, photo []byte) (twoFaces, tiny []byte) {
	t.Helper()
	img, err := gocv.IMDecode(photo, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	both := gocv.NewMat()
	defer both.Close()
	gocv.Hconcat(img, img, &both)
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(img, &small, image.Point{X: img.Cols() / 8, Y: img.Rows() / 8}, 0, 0, gocv.InterpolationArea)
	return encodePNG(t, both), encodePNG(t, small)
}

func TestHTTPEnrolSearchEraseRestartExportImport(t *testing.T) {
	astronaut := testenv.ReadFixture(t, "astronaut.png")
	coffee := testenv.ReadFixture(t, "coffee.png")
	x := testExtractor(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "wl.db")
	s := startServer(t, path, nil, x)

	code, p := s.do(t, "POST", "/door/persons", map[string]any{"name": "Eileen", "metadata": map[string]any{"role": "crew"}})
	if code != 201 || p["id"] == "" {
		t.Fatalf("create person: %d %v", code, p)
	}
	id := p["id"].(string)
	code, other := s.do(t, "POST", "/door/persons", map[string]any{"name": "Other"})
	if code != 201 {
		t.Fatalf("create person: %d %v", code, other)
	}

	// Enrolment photos that are refused, each with its reason.
	two, tiny := derivedImages(t, astronaut)
	for _, c := range []struct {
		name string
		img  []byte
		want string
	}{{"no face", coffee, "no face"}, {"two faces", two, "2 faces"}, {"tiny face", tiny, "too small"}} {
		code, out := s.do(t, "POST", "/door/persons/"+id+"/faces", imageJSON(c.img))
		if code != 400 || !strings.Contains(fmt.Sprint(out["detail"]), c.want) {
			t.Errorf("%s: %d %v; want 400 saying %q", c.name, code, out, c.want)
		}
	}

	// Multipart enrolment.
	status, raw := testenv.PostImage(t, s.srv.URL+Prefix+"/door/persons/"+id+"/faces", astronaut, nil)
	var enrolled map[string]any
	json.Unmarshal(raw, &enrolled)
	if status != 201 || enrolled["face_id"] == nil || enrolled["quality"] == nil {
		t.Fatalf("enrol: %d %s", status, raw)
	}

	code, found := s.do(t, "POST", "/door/search", imageJSON(astronaut))
	if code != 200 || fmt.Sprint(candidates(t, found)) != fmt.Sprint([]string{id}) {
		t.Fatalf("search: %d %v; want only %s", code, found, id)
	}
	c0 := found["faces"].([]any)[0].(map[string]any)["candidates"].([]any)[0].(map[string]any)
	if c0["name"] != "Eileen" || c0["distance"].(float64) > 1e-3 || c0["score"].(float64) < 0.9 {
		t.Fatalf("candidate: %v", c0)
	}
	if code, out := s.do(t, "POST", "/door/search", imageJSON(coffee)); code != 200 || len(out["faces"].([]any)) != 0 {
		t.Fatalf("search without a face: %d %v", code, out)
	}

	// Malformed requests.
	for _, c := range []struct {
		method, path string
		body         any
		code         int
	}{
		{"POST", "/door/persons", []byte("{"), 400},
		{"POST", "/door/persons", map[string]any{"name": "x", "metadata": []int{1}}, 400},
		{"POST", "/door/persons", map[string]any{"nom": "x"}, 400},
		{"POST", "/door/search", map[string]any{"$image": "!!"}, 400},
		{"POST", "/door/search", map[string]any{"$template": "AAAA"}, 400},
		{"POST", "/door/search", map[string]any{"$image": base64.StdEncoding.EncodeToString(astronaut), "limit": 0}, 400},
		{"POST", "/nolist/search", imageJSON(astronaut), 404},
		{"GET", "/door/persons/p_nobody", nil, 404},
		{"DELETE", "/door/persons", nil, 405},
		{"POST", "/bad%20name/persons", map[string]any{"name": "x"}, 400},
		{"GET", "/door/persons?limit=0", nil, 400},
	} {
		code, out := s.do(t, c.method, c.path, c.body)
		if code != c.code || out["detail"] == nil {
			t.Errorf("%s %s: %d %v; want %d with a detail", c.method, c.path, code, out, c.code)
		}
	}

	// PATCH and paging.
	if code, out := s.do(t, "PATCH", "/door/persons/"+id, map[string]any{"name": "Eileen C."}); code != 200 || out["name"] != "Eileen C." {
		t.Fatalf("patch: %d %v", code, out)
	}
	code, page := s.do(t, "GET", "/door/persons?limit=1", nil)
	if code != 200 || len(page["persons"].([]any)) != 1 || page["next"] == nil {
		t.Fatalf("page 1: %d %v", code, page)
	}
	code, page2 := s.do(t, "GET", "/door/persons?limit=1&after="+page["next"].(string), nil)
	if code != 200 || len(page2["persons"].([]any)) != 1 || page2["next"] != nil {
		t.Fatalf("page 2: %d %v", code, page2)
	}

	// Restart: everything is still there.
	s.stop()
	s = startServer(t, path, nil, x)
	code, found = s.do(t, "POST", "/door/search", imageJSON(astronaut))
	if code != 200 || fmt.Sprint(candidates(t, found)) != fmt.Sprint([]string{id}) {
		t.Fatalf("search after restart: %d %v", code, found)
	}
	code, person := s.do(t, "GET", "/door/persons/"+id, nil)
	if code != 200 || person["name"] != "Eileen C." || len(person["faces"].([]any)) != 1 {
		t.Fatalf("person after restart: %d %v", code, person)
	}

	// Export, import on another box: the same search answer.
	code, export := s.do(t, "GET", "/door/export", nil)
	if code != 200 || export["format"] != ExportFormat || export["version"].(float64) != ExportVersion {
		t.Fatalf("export: %d %v", code, export)
	}
	other2 := startServer(t, filepath.Join(dir, "other.db"), nil, x)
	if code, out := other2.do(t, "POST", "/door/import", export); code != 201 || out["persons"].(float64) != 2 || out["faces"].(float64) != 1 {
		t.Fatalf("import: %d %v", code, out)
	}
	_, found2 := other2.do(t, "POST", "/door/search", imageJSON(astronaut))
	if fmt.Sprint(found2) != fmt.Sprint(found) {
		t.Fatalf("search after import:\n%v\nbefore export:\n%v", found2, found)
	}
	if code, out := other2.do(t, "POST", "/door/import", export); code != 409 {
		t.Fatalf("second import: %d %v; want 409", code, out)
	}
	if code, out := other2.do(t, "POST", "/door/import", map[string]any{"format": "x", "version": 1}); code != 400 {
		t.Fatalf("foreign import: %d %v; want 400", code, out)
	}

	// Erase: the template bytes are gone from the file.
	tplB64 := export["persons"].([]any)[0].(map[string]any)["faces"].([]any)[0].(map[string]any)["$template"].(string)
	tpl, _ := base64.StdEncoding.DecodeString(tplB64)
	s.svc.store.Checkpoint(context.Background())
	if !bytes.Contains(fileBytes(t, path), tpl[12:]) {
		t.Fatal("the template is not in the file before the erasure: the test would prove nothing")
	}
	if code, out := s.do(t, "DELETE", "/door/persons/"+id, nil); code != 200 {
		t.Fatalf("delete: %d %v", code, out)
	}
	if bytes.Contains(fileBytes(t, path), tpl[12:44]) {
		t.Fatal("the erased person's template is still in the database file")
	}
	if _, found = s.do(t, "POST", "/door/search", imageJSON(astronaut)); len(candidates(t, found)) != 0 {
		t.Fatalf("search after erasure: %v", found)
	}
	if code, _ := s.do(t, "GET", "/door/persons/"+id, nil); code != 404 {
		t.Fatalf("erased person: %d", code)
	}
}

func TestHTTPConcurrentEnrolAndSearch(t *testing.T) {
	astronaut := testenv.ReadFixture(t, "astronaut.png")
	s := startServer(t, filepath.Join(t.TempDir(), "wl.db"), nil, testExtractor(t))
	_, p := s.do(t, "POST", "/l/persons", map[string]any{"name": "Eileen"})
	if code, out := s.do(t, "POST", "/l/persons/"+p["id"].(string)+"/faces", imageJSON(astronaut)); code != 201 {
		t.Fatalf("enrol: %d %v", code, out)
	}
	_, export := s.do(t, "GET", "/l/export", nil)
	tpl := export["persons"].([]any)[0].(map[string]any)["faces"].([]any)[0].(map[string]any)["$template"].(string)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for w := 0; w < 3; w++ {
		wg.Add(2)
		go func(w int) { // enrol persons with templates
			defer wg.Done()
			for i := 0; i < 8; i++ {
				code, out := s.do(t, "POST", "/l/persons", map[string]any{"name": fmt.Sprintf("w%d-%d", w, i)})
				if code != 201 {
					errs <- fmt.Sprint("create: ", code, out)
					return
				}
				if code, out := s.do(t, "POST", "/l/persons/"+out["id"].(string)+"/faces", map[string]any{"$template": tpl}); code != 201 {
					errs <- fmt.Sprint("enrol: ", code, out)
					return
				}
			}
		}(w)
		go func() { // search with the image meanwhile
			defer wg.Done()
			for i := 0; i < 2; i++ {
				code, out := s.do(t, "POST", "/l/search", map[string]any{"$image": base64.StdEncoding.EncodeToString(astronaut), "limit": 100})
				if code != 200 || len(candidates(t, out)) == 0 {
					errs <- fmt.Sprint("search: ", code, out)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	_, out := s.do(t, "POST", "/l/search", map[string]any{"$template": tpl, "limit": 100})
	if n := len(candidates(t, out)); n != 25 {
		t.Fatalf("after the concurrent enrolments the template matches %d persons, want 25", n)
	}
}
