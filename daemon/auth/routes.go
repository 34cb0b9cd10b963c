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
// prefix ending in "/" matches every path below it; otherwise it matches the
// path itself and the paths below it. A path no row matches needs admin, so
// routes added later (/v1/watchlists, /v1/system, /v1/events, /watchlists,
// /ui/console/, ...) are closed until a row here opens them.
var routeScopes = []struct {
	prefix string
	scope  Scope
}{
	{"/healthz", Open},
	{"/readyz", API}, // open when listed in http.auth.public
	{"/openapi.json", API},
	{"/v1/process", API},
	{SessionsPrefix, API},
	{"/kiosk", API},
	{"/ui/kiosk/", API},
	{"/metrics", Admin}, // open when listed in http.auth.public
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
	for _, r := range routeScopes {
		if matches(r.prefix, p) {
			return r.scope
		}
	}
	if isImageAPI(p) {
		return API
	}
	return Admin
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
