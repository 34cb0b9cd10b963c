// Package auth owns access control for the daemon's HTTP server: bearer
// tokens with scopes (from a 0600 token file or as sha256 hashes in the
// config), the one table that maps a path to the scope it needs, session
// tokens that open one kiosk session's routes and nothing else, and the
// refusal to serve a non-loopback address without tokens.
package auth

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Scope is what a token may reach.
type Scope string

const (
	// Open paths need no token.
	Open Scope = "open"
	// API is the Image API, /v1/process, the kiosk sessions and the kiosk page.
	API Scope = "api"
	// Admin is everything else: cameras, streams, metrics, watchlists,
	// system, the console. It includes API: an admin token may call the
	// Image API too.
	Admin Scope = "admin"
)

// grants reports whether a token with scopes may reach a route that needs
// need: admin includes api.
func grants(scopes []Scope, need Scope) bool {
	return slices.Contains(scopes, need) || need == API && slices.Contains(scopes, Admin)
}

// Config is the http.auth section.
type Config struct {
	// TokenFile holds one token per line followed by its scopes
	// ("s3cr3t api admin"); it must not be readable by group or others.
	TokenFile string `yaml:"token_file"`
	// Tokens are sha256 hashes (hex) of tokens with their scopes.
	Tokens []HashedToken `yaml:"tokens"`
	// AllowUnauthenticated serves a non-loopback address without tokens
	// (with a warning at every start).
	AllowUnauthenticated bool `yaml:"allow_unauthenticated"`
	// Public lists probes served without a token while tokens are on:
	// "/readyz" and "/metrics" may be listed.
	Public []string `yaml:"public"`
}

// HashedToken is one entry of http.auth.tokens.
type HashedToken struct {
	SHA256 string   `yaml:"sha256"`
	Scopes []string `yaml:"scopes"`
}

// Enabled reports whether any token source is configured.
func (c Config) Enabled() bool { return c.TokenFile != "" || len(c.Tokens) > 0 }

// Check validates the section without reading the token file.
func (c Config) Check() error {
	for i, t := range c.Tokens {
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("http.auth.tokens[%d].sha256: want 64 hex digits (imageapid token new prints one)", i)
		}
		if _, err := parseScopes(t.Scopes); err != nil {
			return fmt.Errorf("http.auth.tokens[%d]: %w", i, err)
		}
	}
	for _, p := range c.Public {
		if p != "/readyz" && p != "/metrics" {
			return fmt.Errorf("http.auth.public: %q: only /readyz and /metrics may be public", p)
		}
	}
	return nil
}

func parseScopes(names []string) ([]Scope, error) {
	if len(names) == 0 {
		return nil, errors.New("a token needs at least one scope (api, admin)")
	}
	var out []Scope
	for _, n := range names {
		switch s := Scope(n); s {
		case API, Admin:
			out = append(out, s)
		default:
			return nil, fmt.Errorf("unknown scope %q: want api or admin", n)
		}
	}
	return out, nil
}

type credential struct {
	hash   [sha256.Size]byte
	scopes []Scope
}

// Guard checks every request against the configured tokens.
type Guard struct {
	enabled    bool
	keys       atomic.Pointer[keyring] // replaced whole by Reload
	sessionKey []byte
	secure     bool // cookies get the Secure attribute (TLS)
}

// keyring is the tokens and public paths of one configuration.
type keyring struct {
	creds  []credential
	public map[string]bool
}

// New builds the guard for a server listening on addr (host:port, or a
// unix socket path); tls says whether the server speaks TLS. It refuses a
// non-loopback address without tokens unless allow_unauthenticated is set.
func New(cfg Config, addr string, tls bool, log *slog.Logger) (*Guard, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	g := &Guard{enabled: cfg.Enabled(), secure: tls}
	if !g.enabled {
		if !IsLoopback(addr) {
			if !cfg.AllowUnauthenticated {
				return nil, fmt.Errorf("http.listen %s is reachable from the network but no tokens are configured: "+
					"run `imageapid token new` and put the token in a 0600 file named by http.auth.token_file "+
					"(\"<token> api admin\") or its sha256 under http.auth.tokens, "+
					"or set http.auth.allow_unauthenticated: true to serve everyone", addr)
			}
			log.Warn("serving without access control on a non-loopback address: anyone who can reach it "+
				"can use every route, biometric services included (http.auth.allow_unauthenticated is set)", "listen", addr)
		}
		return g, nil
	}
	keys, err := loadKeys(cfg)
	if err != nil {
		return nil, err
	}
	g.keys.Store(keys)
	g.sessionKey = make([]byte, 32)
	if _, err := rand.Read(g.sessionKey); err != nil {
		return nil, fmt.Errorf("session token key: %w", err)
	}
	return g, nil
}

func loadKeys(cfg Config) (*keyring, error) {
	k := &keyring{public: map[string]bool{}}
	for _, t := range cfg.Tokens {
		var c credential
		b, _ := hex.DecodeString(t.SHA256)
		copy(c.hash[:], b)
		c.scopes, _ = parseScopes(t.Scopes)
		k.creds = append(k.creds, c)
	}
	if cfg.TokenFile != "" {
		creds, err := ReadTokenFile(cfg.TokenFile)
		if err != nil {
			return nil, err
		}
		k.creds = append(k.creds, creds...)
	}
	if len(k.creds) == 0 {
		return nil, fmt.Errorf("http.auth: token_file %s holds no tokens", cfg.TokenFile)
	}
	for _, p := range cfg.Public {
		k.public[p] = true
	}
	return k, nil
}

// Reload replaces the tokens and public paths (SIGHUP: a token added to or
// removed from the file takes effect without a restart). Turning access
// control on or off needs a restart; on error the running tokens stay.
func (g *Guard) Reload(cfg Config) error {
	if cfg.Enabled() != g.enabled {
		return errors.New("http.auth: turning tokens on or off needs a restart")
	}
	if !g.enabled {
		return nil
	}
	if err := cfg.Check(); err != nil {
		return err
	}
	keys, err := loadKeys(cfg)
	if err != nil {
		return err
	}
	g.keys.Store(keys)
	return nil
}

// ReadTokenFile reads "<token> <scope>..." lines ('#' starts a comment); the
// file must have no group or other permissions.
func ReadTokenFile(path string) ([]credential, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("http.auth.token_file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("http.auth.token_file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("http.auth.token_file %s has mode %04o: it holds secrets, run chmod 600 %s",
			path, st.Mode().Perm(), path)
	}
	creds, err := parseTokenLines(f)
	if err != nil {
		return nil, fmt.Errorf("http.auth.token_file %s: %w", path, err)
	}
	return creds, nil
}

func parseTokenLines(f interface{ Read([]byte) (int, error) }) ([]credential, error) {
	var creds []credential
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		scopes, err := parseScopes(fields[1:])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if len(fields[0]) < 16 {
			return nil, fmt.Errorf("line %d: the token is shorter than 16 characters", n)
		}
		creds = append(creds, credential{hash: sha256.Sum256([]byte(fields[0])), scopes: scopes})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return creds, nil
}

// IsLoopback reports whether addr (host:port or a unix socket) is reachable
// only from this machine.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "@") // unix sockets
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NewToken returns a fresh random token and its sha256 in hex.
func NewToken() (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(sum[:]), nil
}

// Session tokens: "st1.<id>.<unix expiry>.<mac>", the mac an HMAC-SHA256
// of id and expiry under a key made at start (a restart invalidates them,
// as it forgets the sessions).
const sessionTokenPrefix = "st1."

// SessionToken returns a token that opens only the routes of session id
// until the given time; "" when access control is off.
func (g *Guard) SessionToken(id string, until time.Time) string {
	if !g.enabled {
		return ""
	}
	payload := id + "." + strconv.FormatInt(until.Unix(), 10)
	return sessionTokenPrefix + payload + "." + g.mac(payload)
}

func (g *Guard) mac(payload string) string {
	h := hmac.New(sha256.New, g.sessionKey)
	h.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// sessionOf returns the session a valid, unexpired session token opens.
func (g *Guard) sessionOf(token string, now time.Time) (string, bool) {
	rest, ok := strings.CutPrefix(token, sessionTokenPrefix)
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return "", false
	}
	payload, mac := rest[:i], rest[i+1:]
	if !hmac.Equal([]byte(mac), []byte(g.mac(payload))) {
		return "", false
	}
	id, exp, ok := strings.Cut(payload, ".")
	if !ok || id == "" {
		return "", false
	}
	until, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || now.Unix() > until {
		return "", false
	}
	return id, true
}

// scopesOf returns the scopes of a static token, comparing its hash with
// every configured hash in constant time.
func (g *Guard) scopesOf(token string) ([]Scope, bool) {
	sum := sha256.Sum256([]byte(token))
	var found []Scope
	match := 0
	for _, c := range g.keys.Load().creds {
		if subtle.ConstantTimeCompare(sum[:], c.hash[:]) == 1 {
			found = append(found, c.scopes...)
			match = 1
		}
	}
	return found, match == 1
}

// CookieName carries a token that arrived as ?token= on a page, so the
// page's assets, images and streams load without a header.
const CookieName = "imageapid_token"

// Wrap returns next behind the guard.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	if !g.enabled {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		need := ScopeOf(r.URL.Path)
		if need == Open || g.keys.Load().public[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		token, from := credentials(r)
		if token == "" {
			deny(w, http.StatusUnauthorized, `Bearer realm="imageapid"`,
				"Authentication required: send the header Authorization: Bearer <token> (see imageapid token new)")
			return
		}
		if id, ok := g.sessionOf(token, time.Now()); ok {
			if need == API && InSession(r.URL.Path, id) {
				next.ServeHTTP(w, r)
				return
			}
			deny(w, http.StatusForbidden, `Bearer realm="imageapid", error="insufficient_scope"`,
				"This session token opens only its own session's routes")
			return
		}
		scopes, ok := g.scopesOf(token)
		if !ok {
			deny(w, http.StatusUnauthorized, `Bearer realm="imageapid", error="invalid_token"`, "Invalid token")
			return
		}
		if !grants(scopes, need) {
			deny(w, http.StatusForbidden, fmt.Sprintf(`Bearer realm="imageapid", error="insufficient_scope", scope="%s"`, need),
				fmt.Sprintf("This token lacks the %q scope this route needs", need))
			return
		}
		if from == "query" {
			http.SetCookie(w, &http.Cookie{Name: CookieName, Value: token, Path: "/", HttpOnly: true,
				Secure: g.secure, SameSite: http.SameSiteStrictMode})
		}
		next.ServeHTTP(w, r)
	})
}

// credentials returns the request's token: the Authorization header, or for
// GET and HEAD (pages, assets, streams, which a browser loads without
// headers) a ?token= query or the cookie a page visit set. Cookies and
// queries never authorize a change: SameSite=Strict and GET only.
func credentials(r *http.Request) (token, from string) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok), "header"
		}
		return "", ""
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", ""
	}
	if t := r.URL.Query().Get("token"); t != "" {
		return t, "query"
	}
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		return c.Value, "cookie"
	}
	return "", ""
}

func deny(w http.ResponseWriter, status int, challenge, detail string) {
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	b, _ := jsonDetail(detail)
	w.Write(b)
}
