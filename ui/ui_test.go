package ui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"imageapid/ui"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestServesPagesAndAssets(t *testing.T) {
	h := ui.Handler()
	for path, ctype := range map[string]string{
		"/kiosk":                  "text/html; charset=utf-8",
		"/ui/kiosk/kiosk.js":      "text/javascript; charset=utf-8",
		"/ui/kiosk/strings.js":    "text/javascript; charset=utf-8",
		"/ui/kiosk/kiosk.css":     "text/css; charset=utf-8",
		"/":                       "text/html; charset=utf-8",
		"/ui/console/console.js":  "text/javascript; charset=utf-8",
		"/ui/console/console.css": "text/css; charset=utf-8",
	} {
		resp := get(t, h, http.MethodGet, path, nil)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || len(body) == 0 {
			t.Errorf("%s: %d, %d bytes", path, resp.StatusCode, len(body))
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != ctype {
			t.Errorf("%s: Content-Type %q, want %q", path, got, ctype)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("%s: Cache-Control %q", path, got)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", path)
		}
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Errorf("%s: no ETag", path)
			continue
		}
		again := get(t, h, http.MethodGet, path, map[string]string{"If-None-Match": etag})
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("%s with its ETag: %d, want 304", path, again.StatusCode)
		}
	}
	if resp := get(t, h, http.MethodHead, "/kiosk", nil); resp.StatusCode != 200 {
		t.Errorf("HEAD /kiosk: %d", resp.StatusCode)
	}
	if got := ui.Pages(); len(got) != 2 || got[0] != "/" || got[1] != "/kiosk" {
		t.Errorf("Pages() = %v", got)
	}
}

func TestRefusesOtherPathsAndMethods(t *testing.T) {
	h := ui.Handler()
	for _, path := range []string{"/ui/console/index.html", "/ui/kiosk/index.html", "/ui/kiosk/nope.js", "/ui/../ui.go", "/ui/kiosk/../kiosk/kiosk.js/", "/kiosk/"} {
		resp := get(t, h, http.MethodGet, path, nil)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 404 || string(body) != `{"detail":"Not Found"}` {
			t.Errorf("%s: %d %s, want 404", path, resp.StatusCode, body)
		}
	}
	if resp := get(t, h, http.MethodGet, "/ui/", nil); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Errorf("GET /ui/: %d to %q, want a redirect to the console at /", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp := get(t, h, http.MethodPost, "/kiosk", nil)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /kiosk: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestSelfContained checks the pages reach nothing off the origin and keep
// to the CSP: no absolute URLs, no inline scripts or style attributes, and
// every /ui/ reference is a file the handler serves.
func TestSelfContained(t *testing.T) {
	h := ui.Handler()
	refs := regexp.MustCompile(`(?:src|href)="([^"#][^"]*)"`)
	err := filepath.WalkDir("static", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := string(b)
		for _, bad := range []string{"https://", "http://", "//cdn", "@import", "url(", "<script>", "style=\"", "onclick=", "onload=", "eval("} {
			// The SVG namespace is an identifier, not a request.
			if strings.Contains(strings.ReplaceAll(s, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
		for _, m := range refs.FindAllStringSubmatch(s, -1) {
			if resp := get(t, h, http.MethodGet, m[1], nil); resp.StatusCode != 200 {
				t.Errorf("%s refers to %s, which is %d", p, m[1], resp.StatusCode)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
