package auth_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imageapid/daemon/auth"
)

func hashOf(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

const (
	apiToken   = "api-token-0123456789"
	adminToken = "admin-token-0123456789"
)

// serve starts the guard in front of a handler that answers 200 "ok" on
// every path, on a loopback port.
func serve(t *testing.T, cfg auth.Config) (string, *auth.Guard) {
	t.Helper()
	g, err := auth.New(cfg, "127.0.0.1:0", false, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})))
	t.Cleanup(ts.Close)
	return ts.URL, g
}

type answer struct {
	status    int
	body      string
	challenge string
	cookies   []*http.Cookie
}

func get(t *testing.T, method, url, token string, cookies ...*http.Cookie) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header.Get("WWW-Authenticate"), resp.Cookies()}
}

func TestScopesOverHTTP(t *testing.T) {
	url, _ := serve(t, auth.Config{Tokens: []auth.HashedToken{
		{SHA256: hashOf(apiToken), Scopes: []string{"api"}},
		{SHA256: hashOf(adminToken), Scopes: []string{"admin"}},
	}})
	cases := []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 401},
		{"GET", "/readyz", apiToken, 200},
		{"GET", "/metrics", "", 401},
		{"GET", "/metrics", apiToken, 403},
		{"GET", "/metrics", adminToken, 200},
		{"POST", "/face-detector-face-fitter/process/sample", "", 401},
		{"POST", "/face-detector-face-fitter/process/sample", "wrong-token-0123456789", 401},
		{"POST", "/face-detector-face-fitter/process/sample", apiToken, 200},
		{"POST", "/face-detector-face-fitter/v1/process/image", apiToken, 200},
		// admin includes api.
		{"POST", "/face-detector-face-fitter/process/sample", adminToken, 200},
		{"POST", "/v1/process", adminToken, 200},
		{"POST", "/v1/liveness/sessions", adminToken, 200},
		{"GET", "/kiosk", adminToken, 200},
		{"GET", "/readyz", adminToken, 200},
		{"POST", "/v1/process", apiToken, 200},
		{"POST", "/v1/liveness/sessions", apiToken, 200},
		{"GET", "/kiosk", apiToken, 200},
		{"GET", "/ui/kiosk/kiosk.js", apiToken, 200},
		{"GET", "/cameras", apiToken, 403},
		{"GET", "/cameras", adminToken, 200},
		{"GET", "/v1/cameras/door/stream", apiToken, 403},
		// The admin routes, each named in the table.
		{"GET", "/", apiToken, 403},
		{"GET", "/", adminToken, 200},
		{"GET", "/v1/cameras/door/snapshot.jpg", apiToken, 403},
		{"GET", "/v1/in-view", apiToken, 403},
		{"GET", "/v1/system", apiToken, 403},
		{"GET", "/v1/system", adminToken, 200},
		{"GET", "/v1/watchlists", apiToken, 403},
		{"POST", "/v1/watchlists/staff/members", apiToken, 403},
		{"GET", "/v1/events/stream", apiToken, 403},
		{"POST", "/v1/system/restart", apiToken, 403},
		{"GET", "/watchlists", apiToken, 403},
		{"GET", "/ui/console/app.js", apiToken, 403},
		{"GET", "/v1/watchlists", adminToken, 200},
		// A path no row names needs admin.
		{"GET", "/v2/anything", apiToken, 403},
		{"GET", "/v2/anything", adminToken, 200},
		{"GET", "/a-service/process/other", apiToken, 403},
		// Dot segments are judged on the cleaned path too.
		{"GET", "/v1/process/../cameras", apiToken, 403},
		{"GET", "/kiosk/../v1/watchlists", apiToken, 403},
		{"GET", "/ui/kiosk/../console/x.js", apiToken, 403},
	}
	for _, c := range cases {
		a := get(t, c.method, url+c.path, c.token)
		if a.status != c.want {
			t.Errorf("%s %s with %q: %d, want %d (%s)", c.method, c.path, c.token, a.status, c.want, a.body)
			continue
		}
		if a.status == 401 || a.status == 403 {
			var body map[string]any
			if err := json.Unmarshal([]byte(a.body), &body); err != nil {
				t.Errorf("%s: body is not JSON: %s", c.path, a.body)
			} else if d, ok := body["detail"].(string); !ok || d == "" {
				t.Errorf("%s: no string detail: %s", c.path, a.body)
			}
			if !strings.HasPrefix(a.challenge, "Bearer ") {
				t.Errorf("%s: WWW-Authenticate %q", c.path, a.challenge)
			}
		}
	}
}

func TestPublicProbes(t *testing.T) {
	url, _ := serve(t, auth.Config{
		Tokens: []auth.HashedToken{{SHA256: hashOf(apiToken), Scopes: []string{"api"}}},
		Public: []string{"/readyz", "/metrics"},
	})
	for _, p := range []string{"/readyz", "/metrics", "/healthz"} {
		if a := get(t, "GET", url+p, ""); a.status != 200 {
			t.Errorf("%s listed as public answers %d", p, a.status)
		}
	}
	if a := get(t, "GET", url+"/cameras", ""); a.status != 401 {
		t.Errorf("/cameras without a token: %d", a.status)
	}
	if err := (auth.Config{Public: []string{"/cameras"}}).Check(); err == nil {
		t.Error("only the probes may be public")
	}
}

func TestQueryTokenSetsACookieForGETsOnly(t *testing.T) {
	url, _ := serve(t, auth.Config{Tokens: []auth.HashedToken{{SHA256: hashOf(apiToken), Scopes: []string{"api"}}}})
	a := get(t, "GET", url+"/kiosk?token="+apiToken, "")
	if a.status != 200 || len(a.cookies) != 1 || a.cookies[0].Name != auth.CookieName || !a.cookies[0].HttpOnly ||
		a.cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("a page opened with ?token= must answer 200 and set an HttpOnly, SameSite=Strict cookie: %d %+v", a.status, a.cookies)
	}
	if b := get(t, "GET", url+"/ui/kiosk/kiosk.js", "", a.cookies[0]); b.status != 200 {
		t.Errorf("an asset with the cookie: %d", b.status)
	}
	if b := get(t, "POST", url+"/v1/liveness/sessions", "", a.cookies[0]); b.status != 401 {
		t.Errorf("a cookie must not authorize a POST: %d", b.status)
	}
	if b := get(t, "POST", url+"/v1/liveness/sessions?token="+apiToken, ""); b.status != 401 {
		t.Errorf("a query token must not authorize a POST: %d", b.status)
	}
}

func TestSessionTokens(t *testing.T) {
	url, g := serve(t, auth.Config{Tokens: []auth.HashedToken{{SHA256: hashOf(apiToken), Scopes: []string{"api"}}}})
	tok := g.SessionToken("abc123", time.Now().Add(time.Minute))
	for path, want := range map[string]int{
		"/v1/liveness/sessions/abc123":        200,
		"/v1/liveness/sessions/abc123/events": 200,
		"/v1/liveness/sessions/abc1234":       403,
		"/v1/liveness/sessions/other":         403,
		"/v1/liveness/sessions":               403,
		"/v1/liveness/sessions/abc123/../x":   403,
		"/face-detector/process/sample":       403,
		"/cameras":                            403,
	} {
		if a := get(t, "GET", url+path, tok); a.status != want {
			t.Errorf("session token on %s: %d, want %d", path, a.status, want)
		}
	}
	if a := get(t, "GET", url+"/v1/liveness/sessions/abc123/events?token="+tok, ""); a.status != 200 {
		t.Errorf("an event stream (EventSource sends no headers) with ?token=: %d", a.status)
	}
	expired := g.SessionToken("abc123", time.Now().Add(-time.Second))
	if a := get(t, "GET", url+"/v1/liveness/sessions/abc123", expired); a.status != 401 {
		t.Errorf("an expired session token: %d, want 401", a.status)
	}
	forged := strings.Replace(tok, "abc123", "other1", 1)
	if a := get(t, "GET", url+"/v1/liveness/sessions/other1", forged); a.status != 401 {
		t.Errorf("a session token whose id was changed: %d, want 401", a.status)
	}
	// Another guard (a restart) does not accept the first one's tokens.
	url2, _ := serve(t, auth.Config{Tokens: []auth.HashedToken{{SHA256: hashOf(apiToken), Scopes: []string{"api"}}}})
	if a := get(t, "GET", url2+"/v1/liveness/sessions/abc123", tok); a.status != 401 {
		t.Errorf("a session token from another start: %d, want 401", a.status)
	}
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tokens")
	os.WriteFile(p, []byte("# kiosk and admin\n"+apiToken+" api\n\n"+adminToken+" api admin\n"), 0o644)
	cfg := auth.Config{TokenFile: p}
	if _, err := auth.New(cfg, "127.0.0.1:1", false, slog.New(slog.DiscardHandler)); err == nil ||
		!strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a token file readable by others must be refused, saying how to fix it: %v", err)
	}
	os.Chmod(p, 0o600)
	url, _ := serve(t, cfg)
	if a := get(t, "GET", url+"/cameras", adminToken); a.status != 200 {
		t.Errorf("admin from the file: %d", a.status)
	}
	if a := get(t, "GET", url+"/cameras", apiToken); a.status != 403 {
		t.Errorf("api-only from the file on an admin route: %d", a.status)
	}
	for _, bad := range []string{"tok-0123456789abcdef\n", "tok-0123456789abcdef root\n", "short api\n"} {
		os.WriteFile(p, []byte(bad), 0o600)
		if _, err := auth.New(cfg, "127.0.0.1:1", false, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("token file %q must be refused", bad)
		}
	}
}

func TestExposedListenNeedsTokens(t *testing.T) {
	discard := slog.New(slog.DiscardHandler)
	for _, addr := range []string{"0.0.0.0:8080", ":8080", "192.168.1.10:8080", "[::]:8080"} {
		_, err := auth.New(auth.Config{}, addr, false, discard)
		if err == nil || !strings.Contains(err.Error(), "imageapid token new") || !strings.Contains(err.Error(), "allow_unauthenticated") {
			t.Errorf("%s without tokens must be refused with how to add one: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:8080", "localhost:8080", "[::1]:8080", "/run/imageapid.sock"} {
		if _, err := auth.New(auth.Config{}, addr, false, discard); err != nil {
			t.Errorf("%s is local and stays open: %v", addr, err)
		}
	}
	var logged strings.Builder
	warnLog := slog.New(slog.NewTextHandler(&logged, nil))
	if _, err := auth.New(auth.Config{AllowUnauthenticated: true}, "0.0.0.0:8080", false, warnLog); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logged.String(), "level=WARN") {
		t.Errorf("allow_unauthenticated must warn at start: %q", logged.String())
	}
}

func TestNewToken(t *testing.T) {
	tok, hash, err := auth.NewToken()
	if err != nil || len(tok) < 40 || hash != hashOf(tok) {
		t.Fatalf("NewToken: %q %q %v", tok, hash, err)
	}
	url, _ := serve(t, auth.Config{Tokens: []auth.HashedToken{{SHA256: hash, Scopes: []string{"admin"}}}})
	if a := get(t, "GET", url+"/cameras", tok); a.status != 200 {
		t.Errorf("a new token configured by its hash: %d", a.status)
	}
}

func TestReloadReplacesTokens(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(p, []byte(apiToken+" admin\n"), 0o600)
	cfg := auth.Config{TokenFile: p}
	url, g := serve(t, cfg)
	if a := get(t, "GET", url+"/cameras", apiToken); a.status != 200 {
		t.Fatalf("before: %d", a.status)
	}
	os.WriteFile(p, []byte(adminToken+" admin\n"), 0o600)
	if err := g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if a := get(t, "GET", url+"/cameras", apiToken); a.status != 401 {
		t.Errorf("a token removed from the file still opens: %d", a.status)
	}
	if a := get(t, "GET", url+"/cameras", adminToken); a.status != 200 {
		t.Errorf("a token added to the file: %d", a.status)
	}
	os.Chmod(p, 0o644)
	if err := g.Reload(cfg); err == nil {
		t.Error("a reload of a file readable by others must be refused")
	}
	if a := get(t, "GET", url+"/cameras", adminToken); a.status != 200 {
		t.Errorf("a refused reload keeps the running tokens: %d", a.status)
	}
	if err := g.Reload(auth.Config{}); err == nil {
		t.Error("turning tokens off needs a restart")
	}
}

// TestEveryRouteHasARow: each route the daemon serves is named in the
// table with the scope the issue gives it, not left to the admin default.
func TestEveryRouteHasARow(t *testing.T) {
	for path, want := range map[string]auth.Scope{
		"/healthz":      auth.Open,
		"/readyz":       auth.API,
		"/openapi.json": auth.API,
		"/face-detector-face-fitter/process/image":     auth.API,
		"/face-detector-face-fitter/v1/process/sample": auth.API,
		"/v1/process":                      auth.API,
		"/v1/liveness/sessions":            auth.API,
		"/v1/liveness/sessions/abc/frames": auth.API,
		"/kiosk":                           auth.API,
		"/ui/kiosk/kiosk.js":               auth.API,
		"/metrics":                         auth.Admin,
		"/cameras":                         auth.Admin,
		"/v1/cameras/door/stream":          auth.Admin,
		"/v1/events/stream":                auth.Admin,
		"/v1/in-view":                      auth.Admin,
		"/v1/system":                       auth.Admin,
		"/v1/watchlists":                   auth.Admin,
		"/v1/watchlists/staff/search":      auth.Admin,
		"/watchlists":                      auth.Admin,
		"/ui/console.js":                   auth.Admin,
		"/":                                auth.Admin,
	} {
		got, row := auth.RouteOf(path)
		if got != want {
			t.Errorf("%s needs %s, want %s", path, got, want)
		}
		if row == "" {
			t.Errorf("%s is matched by no row of the table (only by the admin default)", path)
		}
	}
}
