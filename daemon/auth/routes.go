package auth

import (
	"encoding/json"
	"path"
	"strings"
)

// SessionsPrefix is where the kiosk session routes live (sessions.Prefix;
// a daemon test checks that the two agree).
const SessionsPrefix = "/v1/liveness/sessions"

// routeScopes is the one table of who may reach what, first match wins. A
// row matches its path and, unless exact, the paths below it (a path ending
// in "/" only the paths below it). Every route the daemon serves has a row;
// a path no row matches (a route added later and forgotten here) needs
// admin, so it is closed rather than open. The Image API's
// /<service>/process/<action> routes are matched by isImageAPI.
var routeScopes = []struct {
	path  string
	exact bool
	scope Scope
}{
	{"/healthz", true, Open},
	// The Image API, its description, and the kiosk: the api scope.
	{"/readyz", true, API}, // open when listed in http.auth.public
	{"/openapi.json", true, API},
	{"/v1/process", false, API},
	{SessionsPrefix, false, API},
	{"/kiosk", false, API},
	{"/ui/kiosk/", false, API},
	// Everything else: the admin scope.
	{"/metrics", true, Admin}, // open when listed in http.auth.public
	{"/cameras", false, Admin},
	{"/v1/cameras/", false, Admin}, // previews: MJPEG streams and snapshots
	{"/v1/events/stream", false, Admin},
	{"/v1/in-view", false, Admin},
	{"/v1/system", false, Admin},
	{"/v1/watchlists", false, Admin},
	{"/watchlists", false, Admin},
	{"/ui/", false, Admin}, // the console's and the watchlist page's assets
	{"/", true, Admin},     // the console
}

// ScopeOf returns the scope a path needs. The path is judged both as sent
// and cleaned ("/v1/process/../cameras"), and the stricter answer wins.
func ScopeOf(p string) Scope {
	a, b := scopeOf(p), scopeOf(path.Clean("/"+p))
	if a == Admin || b == Admin {
		return Admin
	}
	if a == API || b == API {
		return API
	}
	return Open
}

func scopeOf(p string) Scope {
	s, _ := RouteOf(p)
	return s
}

// RouteOf returns the scope path p needs and the table row that says so
// ("" when no row matches and the admin default applies). p is taken as
// sent; ScopeOf also judges its cleaned form.
func RouteOf(p string) (Scope, string) {
	for _, r := range routeScopes {
		if p == r.path || !r.exact && matches(r.path, p) {
			return r.scope, r.path
		}
	}
	if isImageAPI(p) {
		return API, "/<service>/process/<action>"
	}
	return Admin, ""
}

func matches(prefix, p string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(p, prefix)
	}
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// isImageAPI matches the Image API's /<service>/process/<action> and
// /<service>/v1/process/<action>.
func isImageAPI(p string) bool {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	if len(parts) == 4 && parts[1] == "v1" {
		parts = []string{parts[0], parts[2], parts[3]}
	}
	return len(parts) == 3 && parts[0] != "v1" && parts[0] != "" && parts[1] == "process" &&
		(parts[2] == "image" || parts[2] == "sample")
}

// InSession reports whether p is session id's own route or below it.
func InSession(p, id string) bool {
	if p != path.Clean(p) {
		return false
	}
	return matches(SessionsPrefix+"/"+id, p)
}

func jsonDetail(detail string) ([]byte, error) {
	return json.Marshal(map[string]string{"detail": detail})
}
