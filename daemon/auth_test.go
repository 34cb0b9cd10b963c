package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"imageapid/daemon/auth"
	"imageapid/internal/testenv"
	"imageapid/sessions"
	"imageapid/ui"
)

func sha(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

// startDaemonWithTokens runs the daemon, without MQTT, with one token of
// scope api and one of scope admin.
func startDaemonWithTokens(t *testing.T, apiToken, adminToken string) (addr string, stop func()) {
	t.Helper()
	cfg := testConfig(t)
	cfg.MQTT.Enabled = false
	cfg.HTTP.Auth.Tokens = []auth.HashedToken{
		{SHA256: sha(apiToken), Scopes: []string{"api"}},
		{SHA256: sha(adminToken), Scopes: []string{"admin"}},
	}
	return startDaemon(t, cfg)
}

type reply struct {
	status int
	body   []byte
	resp   *http.Response
}

func call(t *testing.T, method, url, token, ctype string, body io.Reader, cookies ...*http.Cookie) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
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
	return reply{resp.StatusCode, b, resp}
}

// TestDaemonAccessControl runs the daemon with tokens over HTTP: scopes per
// route, the kiosk page by ?token= and its assets by cookie, and a session
// token that opens only its own session.
func TestDaemonAccessControl(t *testing.T) {
	if sessions.Prefix != auth.SessionsPrefix {
		t.Fatalf("auth's table names the sessions at %s, the sessions live at %s", auth.SessionsPrefix, sessions.Prefix)
	}
	const apiToken, adminToken = "kiosk-and-api-0123456789", "console-admin-0123456789"
	addr, stop := startDaemonWithTokens(t, apiToken, adminToken)
	defer stop()
	base := "http://" + addr
	face1 := testenv.ReadFixture(t, "astronaut.png")
	sample := base + "/face-detector-face-fitter/process/sample"
	body := func() io.Reader {
		b, _ := json.Marshal(map[string]any{"$image": face1})
		return strings.NewReader(string(b))
	}

	if r := call(t, "GET", base+"/healthz", "", "", nil); r.status != 200 {
		t.Errorf("/healthz stays open: %d", r.status)
	}
	for _, c := range []struct {
		method, url, token string
		want               int
	}{
		{"POST", sample, "", 401},
		{"POST", sample, "not-a-token-0123456789", 401},
		{"POST", sample, adminToken, 200}, // admin includes api
		{"POST", sample, apiToken, 200},
		{"GET", base + "/readyz", "", 401},
		{"GET", base + "/readyz", apiToken, 200},
		{"GET", base + "/metrics", apiToken, 403},
		{"GET", base + "/metrics", adminToken, 200},
		{"GET", base + "/cameras", apiToken, 403},
		{"GET", base + "/cameras", adminToken, 200},
	} {
		var b io.Reader
		if c.method == "POST" {
			b = body()
		}
		r := call(t, c.method, c.url, c.token, "application/json", b)
		if r.status != c.want {
			t.Errorf("%s %s: %d, want %d: %.200s", c.method, c.url, r.status, c.want, r.body)
		}
		if r.status == 401 || r.status == 403 {
			var d struct{ Detail string }
			if json.Unmarshal(r.body, &d) != nil || d.Detail == "" || r.resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: a %d needs {\"detail\"} and WWW-Authenticate: %s", c.url, r.status, r.body)
			}
		}
	}

	// The kiosk page by ?token=, then its script by the cookie that set.
	page := call(t, "GET", base+"/kiosk?token="+apiToken, "", "", nil)
	if page.status != 200 || len(page.resp.Cookies()) != 1 {
		t.Fatalf("/kiosk?token=: %d, cookies %v", page.status, page.resp.Cookies())
	}
	if r := call(t, "GET", base+"/ui/kiosk/kiosk.js", "", "", nil, page.resp.Cookies()...); r.status != 200 {
		t.Errorf("the kiosk script with the page's cookie: %d", r.status)
	}
	if r := call(t, "GET", base+"/ui/kiosk/kiosk.js", "", "", nil); r.status != 401 {
		t.Errorf("the kiosk script without a token: %d", r.status)
	}

	// Each session comes with a token for its own routes only.
	create := func() (id, token string) {
		r := call(t, "POST", base+sessions.Prefix, apiToken, "application/json", strings.NewReader(`{"challenges": ["blink"]}`))
		var c struct{ ID, Token string }
		json.Unmarshal(r.body, &c)
		if r.status != 201 || c.ID == "" || !strings.HasPrefix(c.Token, "st1.") {
			t.Fatalf("create a session with the api token: %d %s", r.status, r.body)
		}
		return c.ID, c.Token
	}
	id1, tok1 := create()
	id2, _ := create()
	if r := call(t, "GET", base+sessions.Prefix+"/"+id1, tok1, "", nil); r.status != 200 {
		t.Errorf("a session token on its own session: %d %s", r.status, r.body)
	}
	status, _ := testenv.PostImage(t, base+sessions.Prefix+"/"+id1+"/frames?token=ignored", face1, nil)
	if status != 401 {
		t.Errorf("a frame posted without the header: %d, want 401", status)
	}
	req, _ := http.NewRequest("POST", base+sessions.Prefix+"/"+id1+"/frames", body())
	req.Header.Set("Authorization", "Bearer "+tok1)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("a frame with the session token: %v %v", err, resp.StatusCode)
	} else {
		resp.Body.Close()
	}
	for _, u := range []string{base + sessions.Prefix + "/" + id2, sample, base + "/cameras"} {
		if r := call(t, "GET", u, tok1, "", nil); r.status != 403 {
			t.Errorf("session %s's token on %s: %d, want 403", id1, u, r.status)
		}
	}
	if r := call(t, "DELETE", base+sessions.Prefix+"/"+id1, tok1, "", nil); r.status != 200 {
		t.Errorf("cancel with the session token: %d", r.status)
	}
}

// TestExposedListenRefusedBeforeModelsLoad: a network address without
// tokens stops the daemon at once, saying how to add one.
func TestExposedListenRefused(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.Listen = "0.0.0.0:0"
	start := time.Now()
	err := run(context.Background(), cfg, "", slog.New(slog.DiscardHandler), false)
	if err == nil || !strings.Contains(err.Error(), "imageapid token new") || !strings.Contains(err.Error(), "token_file") {
		t.Fatalf("want a refusal that says how to add a token, got %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the refusal took %v: it must come before the models load", d)
	}
}

// TestEveryRouteScopedOverHTTP asks every route the daemon serves (each
// path of /openapi.json, each page, the assets, the probes) without a
// token, with an api token and with an admin token: 401 without, 403 for
// api on an admin route, and past the guard otherwise (admin includes
// api). Each 401 and 403 is {"detail"}. A route this table does not know
// fails the test, so a new route must be given its scope here.
func TestEveryRouteScopedOverHTTP(t *testing.T) {
	const apiToken, adminToken = "scopes-api-0123456789", "scopes-admin-0123456789"
	addr, stop := startDaemonWithTokens(t, apiToken, adminToken)
	defer stop()
	base := "http://" + addr

	// Every route and the scope the issue gives it, with the method asked.
	routes := map[string]struct {
		method string
		scope  auth.Scope
	}{
		"/healthz":      {"GET", auth.Open},
		"/readyz":       {"GET", auth.API},
		"/openapi.json": {"GET", auth.API},
		"/face-detector-face-fitter/process/sample": {"POST", auth.API},
		"/face-detector-face-fitter/process/image":  {"POST", auth.API},
		"/v1/process":                        {"POST", auth.API},
		sessions.Prefix:                      {"POST", auth.API},
		sessions.Prefix + "/x":               {"GET", auth.API},
		sessions.Prefix + "/x/frames":        {"POST", auth.API},
		sessions.Prefix + "/x/events":        {"GET", auth.API},
		"/kiosk":                             {"GET", auth.API},
		"/ui/kiosk/kiosk.js":                 {"GET", auth.API},
		"/metrics":                           {"GET", auth.Admin},
		"/cameras":                           {"GET", auth.Admin},
		"/v1/cameras/x/stream":               {"GET", auth.Admin},
		"/v1/cameras/x/snapshot.jpg":         {"GET", auth.Admin},
		"/v1/events/stream":                  {"GET", auth.Admin},
		"/v1/in-view":                        {"GET", auth.Admin},
		"/v1/system":                         {"GET", auth.Admin},
		"/v1/watchlists":                     {"GET", auth.Admin},
		"/v1/watchlists/x":                   {"PATCH", auth.Admin},
		"/v1/watchlists/x/persons":           {"GET", auth.Admin},
		"/v1/watchlists/x/persons/x":         {"GET", auth.Admin},
		"/v1/watchlists/x/persons/x/faces":   {"POST", auth.Admin},
		"/v1/watchlists/x/persons/x/faces/x": {"DELETE", auth.Admin},
		"/v1/watchlists/x/search":            {"POST", auth.Admin},
		"/v1/watchlists/x/export":            {"GET", auth.Admin},
		"/v1/watchlists/x/import":            {"POST", auth.Admin},
		"/watchlists":                        {"GET", auth.Admin},
		"/ui/console/console.js":             {"GET", auth.Admin},
		"/ui/watchlists/watchlists.js":       {"GET", auth.Admin},
		"/":                                  {"GET", auth.Admin},
	}

	// The routes the daemon says it serves must all be in the table.
	var spec struct{ Paths map[string]any }
	if r := call(t, "GET", base+"/openapi.json", adminToken, "", nil); r.status != 200 || json.Unmarshal(r.body, &spec) != nil {
		t.Fatalf("/openapi.json with the admin token: %d", r.status)
	}
	served := append(ui.Pages(), "/healthz", "/metrics", "/cameras")
	for p := range spec.Paths {
		served = append(served, regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(p, "x"))
	}
	for _, p := range served {
		if _, ok := routes[p]; !ok && !strings.Contains(p, "/process/") {
			t.Errorf("the daemon serves %s, which this test does not give a scope", p)
		}
	}

	// ask returns the status and body of a request, reading at most 4 KiB
	// (event streams and previews do not end).
	ask := func(method, path, token string) (int, []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, method, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return resp.StatusCode, b
	}
	for path, r := range routes {
		for _, who := range []struct {
			name, token string
		}{{"no token", ""}, {"api", apiToken}, {"admin", adminToken}} {
			want := 0 // past the guard: neither 401 nor 403
			switch {
			case r.scope == auth.Open:
			case who.token == "":
				want = 401
			case who.token == apiToken && r.scope == auth.Admin:
				want = 403
			}
			status, body := ask(r.method, path, who.token)
			if want == 0 && (status == 401 || status == 403) || want != 0 && status != want {
				t.Errorf("%s %s with %s: %d (want %s): %.200s", r.method, path, who.name, status,
					map[int]string{0: "past the guard", 401: "401", 403: "403"}[want], body)
				continue
			}
			if status == 401 || status == 403 {
				var d struct{ Detail string }
				if json.Unmarshal(body, &d) != nil || d.Detail == "" {
					t.Errorf("%s %s with %s: a %d without {\"detail\"}: %.200s", r.method, path, who.name, status, body)
				}
			}
		}
	}
}
