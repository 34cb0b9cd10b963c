package api_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"imageapid/daemon/api"
)

func TestPrefixHandler(t *testing.T) {
	named := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
	}
	var routes []string
	srv := api.New(api.Config{MaxConcurrent: 1, RequestTimeout: time.Second}, slog.New(slog.DiscardHandler), nil,
		api.WithPrefixHandler("/ui/", named("ui")),
		api.WithPrefixHandler("/ui/kiosk/", named("kiosk")),
		api.WithHandler("/ui/exact", named("exact")),
		api.WithPrefixHandler("/v1/things", named("things")),
		api.WithObserver(func(route string, status int, d time.Duration) { routes = append(routes, route) }),
	)
	for path, want := range map[string]string{
		"/ui/a.css":        "ui",
		"/ui/kiosk/k.js":   "kiosk",
		"/ui/exact":        "exact",
		"/uiother":         `{"detail":"Not Found"}`,
		"/healthz":         `{"status":"ok"}`,
		"/ui/kiosk/x/y.js": "kiosk",
		"/v1/things":       "things",
		"/v1/things/a/b":   "things",
		"/v1/thingsmore":   `{"detail":"Not Found"}`,
	} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if got := rec.Body.String(); got != want && !(rec.Code == 404 && want[0] == '{') {
			t.Errorf("%s: got %q, want %q", path, got, want)
		}
	}
	routes = nil
	srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/ui/kiosk/some/file.js", nil))
	if len(routes) != 1 || routes[0] != "/ui/kiosk/" {
		t.Errorf("the metrics route of a prefixed path must be its prefix, got %v", routes)
	}
}
