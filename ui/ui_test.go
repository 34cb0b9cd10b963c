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
		"/kiosk":                        "text/html; charset=utf-8",
		"/ui/kiosk/kiosk.js":            "text/javascript; charset=utf-8",
		"/ui/kiosk/strings.js":          "text/javascript; charset=utf-8",
		"/ui/kiosk/kiosk.css":           "text/css; charset=utf-8",
		"/":                             "text/html; charset=utf-8",
		"/ui/console/console.js":        "text/javascript; charset=utf-8",
		"/ui/console/console.css":       "text/css; charset=utf-8",
		"/watchlists":                   "text/html; charset=utf-8",
		"/ui/watchlists/watchlists.js":  "text/javascript; charset=utf-8",
		"/ui/watchlists/watchlists.css": "text/css; charset=utf-8",
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
	if got := ui.Pages(); len(got) != 3 || got[0] != "/" || got[1] != "/kiosk" || got[2] != ui.WatchlistsPage {
		t.Errorf("Pages() = %v", got)
	}
}

func TestRefusesOtherPathsAndMethods(t *testing.T) {
	h := ui.Handler()
	for _, path := range []string{"/ui/console/index.html", "/ui/kiosk/index.html", "/ui/watchlists/index.html", "/watchlists/", "/ui/kiosk/nope.js", "/ui/../ui.go", "/ui/kiosk/../kiosk/kiosk.js/", "/kiosk/"} {
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

// TestWatchlistsPage checks the watchlist page is served with the strict
// CSP, loads only its own assets, and that its script asks for nothing but
// the watchlist API.
func TestWatchlistsPage(t *testing.T) {
	h := ui.Handler()
	resp := get(t, h, http.MethodGet, ui.WatchlistsPage, nil)
	page, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET %s: %d %q", ui.WatchlistsPage, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != ui.CSP {
		t.Errorf("CSP %q, want %q", got, ui.CSP)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(string(page), -1)
	want := map[string]bool{"/ui/watchlists/watchlists.css": false, "/ui/watchlists/watchlists.js": false}
	for _, m := range refs {
		if _, ok := want[m[1]]; ok {
			want[m[1]] = true
			continue
		}
		if m[1] != "/" { // the link back to the console
			t.Errorf("the page refers to %q", m[1])
		}
	}
	for ref, seen := range want {
		if !seen {
			t.Errorf("the page does not load %s", ref)
		}
	}
	js := get(t, h, http.MethodGet, "/ui/watchlists/watchlists.js", nil)
	body, _ := io.ReadAll(js.Body)
	if js.Header.Get("Content-Security-Policy") != ui.CSP {
		t.Errorf("the script is served without the CSP")
	}
	src := string(body)
	for _, bad := range []string{"://", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(src, bad) {
			t.Errorf("watchlists.js contains %q", bad)
		}
	}
	// The script reaches the daemon through one fetch, in api(), and every
	// api() call names a watchlist route.
	for _, bad := range []string{"XMLHttpRequest", "EventSource", "WebSocket", "sendBeacon", "import("} {
		if strings.Contains(src, bad) {
			t.Errorf("watchlists.js uses %s", bad)
		}
	}
	if n := strings.Count(src, "fetch("); n != 1 {
		t.Errorf("watchlists.js calls fetch %d times, want once (in api)", n)
	}
	if !strings.Contains(src, `const listPath = (name) => "/v1/watchlists/" + encodeURIComponent(name);`) {
		t.Error("watchlists.js builds list paths some other way")
	}
	calls := regexp.MustCompile(`\bapi\("[A-Z]+", ([^,)]*)`).FindAllStringSubmatch(src, -1)
	if len(calls) < 5 {
		t.Errorf("found %d api() calls, want at least 5", len(calls))
	}
	for _, m := range calls {
		if !strings.HasPrefix(m[1], `"/v1/watchlists"`) && !strings.HasPrefix(m[1], "listPath(") {
			t.Errorf("watchlists.js calls the API at %s", m[1])
		}
	}
}
