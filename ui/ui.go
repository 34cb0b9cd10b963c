// Package ui owns the embedded web pages (the console at /, the kiosk
// liveness page, the watchlist page) and what they read besides the
// Image API: the camera previews, the live events, what the cameras have
// in view and the system summary. Everything is plain HTML, CSS and
// JavaScript embedded in the binary with go:embed: no framework, no build
// step, no CDN, no web fonts and no network access at build or run time.
//
// Pages are served at their own paths (/, /kiosk, /watchlists) and their assets under /ui/
// (/ui/kiosk/kiosk.js is static/kiosk/kiosk.js). Every response carries a
// strict Content-Security-Policy (same origin only; camera previews may use
// blob:, data: and mediastream: URLs), nosniff, and Cache-Control: no-cache
// with an ETag, so a kiosk revalidates after an upgrade but does not download
// unchanged files again.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// AssetPrefix is the path prefix of the embedded assets.
const AssetPrefix = "/ui/"

// pages maps a page's URL path to its file under static/.
var pages = map[string]string{
	"/":      "console/index.html",
	"/kiosk": "kiosk/index.html",
	// The daemon routes the watchlist page only while watchlists are enabled.
	WatchlistsPage: "watchlists/index.html",
}

// WatchlistsPage is the path of the watchlist page, which reads only /v1/watchlists.
const WatchlistsPage = "/watchlists"

// CSP is the Content-Security-Policy sent with every file.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' blob: data:; media-src 'self' blob: mediastream:; connect-src 'self'; " +
	"font-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".json": "application/json",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

type file struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the pages (Pages) and the assets under AssetPrefix. It
// answers GET and HEAD; anything else is 405, an unknown path 404, both with
// the API's {"detail": ...} body.
func Handler() http.Handler {
	h := &handler{files: map[string]*file{}}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ext := path.Ext(p)
		ct, ok := contentTypes[ext]
		if !ok {
			ct = mime.TypeByExtension(ext)
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		h.files[strings.TrimPrefix(p, "static/")] = &file{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("ui: embedded files: " + err.Error()) // cannot happen with a well-formed embed
	}
	return h
}

// Pages lists the paths of the pages Handler serves, sorted.
func Pages() []string {
	out := make([]string, 0, len(pages))
	for p := range pages {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

type handler struct {
	files map[string]*file
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == AssetPrefix && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		http.Redirect(w, r, "/", http.StatusFound) // the console's other address
		return
	}
	f := h.lookup(r.URL.Path)
	if f == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	hd := w.Header()
	setSecurityHeaders(hd)
	hd.Set("Content-Type", f.ctype)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

// lookup finds the file for a page path or an asset path. A page is served
// at its own path only (not also as /ui/<dir>/index.html), so it has one URL.
func (h *handler) lookup(p string) *file {
	if name, ok := pages[p]; ok {
		return h.files[name]
	}
	if rest, ok := strings.CutPrefix(p, AssetPrefix); ok && !strings.HasSuffix(rest, ".html") {
		return h.files[rest]
	}
	return nil
}

func setSecurityHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(self), microphone=(), geolocation=()")
}

func writeError(w http.ResponseWriter, code int, detail string) {
	setSecurityHeaders(w.Header())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"detail": detail})
	w.Write(b)
}
