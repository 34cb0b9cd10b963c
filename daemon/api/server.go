// Package api serves the Image API over HTTP: one route pair per service
// (`/<service>/process/image` and `/<service>/process/sample`, also under
// `/<service>/v1/`), the original's error contract, request limits, health
// and readiness probes, and the OpenAPI document.
package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"imageapid/daemon/admission"
	"imageapid/estimators"
)

// Config holds the limits the server enforces.
type Config struct {
	MaxBodyBytes   int64
	MaxPixels      int
	MaxObjects     int
	MaxConcurrent  int
	RequestTimeout time.Duration
	// MaxQueue is how many requests may wait for a processing slot (0: four
	// per slot); past it a request gets an immediate 503.
	MaxQueue int
	// QueueTimeout is the longest wait for a slot (0: RequestTimeout).
	QueueTimeout time.Duration
}

// Server routes requests to estimators.
type Server struct {
	cfg        Config
	log        *slog.Logger
	estimators map[string]estimators.Estimator
	order      []string
	queue      *admission.Queue
	ready      atomic.Bool
	readyInfo  atomic.Value // func() map[string]any
	extra      map[string]http.Handler
	extraPaths map[string]any
	prefixes   []prefixHandler
	observe    func(route string, status int, d time.Duration)
	version    string
}

// Option adds to a Server.
type Option func(*Server)

// WithHandler serves h at an exact path (for /metrics, /cameras, ...).
func WithHandler(path string, h http.Handler) Option {
	return func(s *Server) { s.extra[path] = h }
}

// WithPrefixHandler serves h at every path under prefix: with a trailing
// "/" (/ui/) every path that starts with it, without one
// (/v1/liveness/sessions) the path itself and the paths below it. Exact
// paths (WithHandler) and the built-in routes come first; among prefixes the
// longest wins. The metrics route label is the prefix.
func WithPrefixHandler(prefix string, h http.Handler) Option {
	return func(s *Server) {
		s.prefixes = append(s.prefixes, prefixHandler{prefix, h})
		sort.SliceStable(s.prefixes, func(i, j int) bool { return len(s.prefixes[i].prefix) > len(s.prefixes[j].prefix) })
	}
}

type prefixHandler struct {
	prefix string
	h      http.Handler
}

func (p prefixHandler) matches(path string) bool {
	if strings.HasSuffix(p.prefix, "/") {
		return strings.HasPrefix(path, p.prefix)
	}
	return path == p.prefix || strings.HasPrefix(path, p.prefix+"/")
}

// WithObserver is called once per request with its route, status and duration.
func WithObserver(f func(route string, status int, d time.Duration)) Option {
	return func(s *Server) { s.observe = f }
}

// WithOpenAPIPaths adds path items (OpenAPI 3 objects keyed by path) that
// the routes of WithHandler and WithPrefixHandler serve to /openapi.json.
func WithOpenAPIPaths(paths map[string]any) Option {
	return func(s *Server) {
		for k, v := range paths {
			s.extraPaths[k] = v
		}
	}
}

// WithVersion sets the version reported by /openapi.json.
func WithVersion(v string) Option { return func(s *Server) { s.version = v } }

// New returns a server for the given estimators; it answers /readyz with 503
// until SetReady is called.
func New(cfg Config, log *slog.Logger, ests []estimators.Estimator, opts ...Option) *Server {
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 4 * cfg.MaxConcurrent
	}
	if cfg.QueueTimeout <= 0 || cfg.QueueTimeout > cfg.RequestTimeout {
		cfg.QueueTimeout = cfg.RequestTimeout
	}
	s := &Server{
		cfg:        cfg,
		log:        log,
		estimators: map[string]estimators.Estimator{},
		queue:      admission.NewQueue(cfg.MaxConcurrent, cfg.MaxQueue, cfg.QueueTimeout),
		extra:      map[string]http.Handler{},
		extraPaths: map[string]any{},
		version:    "dev",
	}
	for _, e := range ests {
		s.estimators[e.Name()] = e
		s.order = append(s.order, e.Name())
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// SetReady marks the server ready; info is reported by /readyz.
func (s *Server) SetReady(info func() map[string]any) {
	s.readyInfo.Store(info)
	s.ready.Store(true)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	route := "other"
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic while serving a request", "path", r.URL.Path, "panic", fmt.Sprint(p))
			if !rec.wrote {
				writeError(rec, s.log, r, errInternal)
			}
		}
		if s.observe != nil {
			s.observe(route, rec.status, time.Since(start))
		}
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start))
	}()
	route = s.route(rec, r)
}

// route dispatches a request and returns its route label for metrics.
func (s *Server) route(w http.ResponseWriter, r *http.Request) string {
	switch r.URL.Path {
	case "/healthz":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return r.URL.Path
	case "/readyz":
		s.serveReady(w)
		return r.URL.Path
	case "/openapi.json":
		writeJSON(w, http.StatusOK, s.openAPI())
		return r.URL.Path
	}
	if h, ok := s.extra[r.URL.Path]; ok {
		h.ServeHTTP(w, r)
		return r.URL.Path
	}
	for _, p := range s.prefixes {
		if p.matches(r.URL.Path) {
			p.h.ServeHTTP(w, r)
			return p.prefix
		}
	}
	if r.URL.Path == processPath {
		if r.Method != http.MethodPost {
			writeError(w, s.log, r, errMethod)
		} else {
			s.serveProcess(w, r)
		}
		return processPath
	}
	e, action, ok := s.match(r.URL.Path)
	if !ok {
		writeError(w, s.log, r, errNotFound)
		return "not_found"
	}
	label := "/" + e.Name() + "/process/" + action
	if r.Method != http.MethodPost {
		writeError(w, s.log, r, errMethod)
		return label
	}
	s.process(w, r, e, action)
	return label
}

// match parses /<service>[/v1]/process/<image|sample>.
func (s *Server) match(path string) (estimators.Estimator, string, bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) == 4 && parts[1] == "v1" {
		parts = []string{parts[0], parts[2], parts[3]}
	}
	if len(parts) != 3 || parts[1] != "process" {
		return nil, "", false
	}
	e, ok := s.estimators[parts[0]]
	if !ok {
		return nil, "", false
	}
	switch parts[2] {
	case "sample":
		return e, "sample", true
	case "image":
		return e, "image", e.TakesImage()
	}
	return nil, "", false
}

func (s *Server) process(w http.ResponseWriter, r *http.Request, e estimators.Estimator, action string) {
	s.serveSample(w, r, func() (*estimators.Sample, func(context.Context, *estimators.Sample) error, error) {
		var (
			sample *estimators.Sample
			err    error
		)
		if action == "image" {
			sample, err = s.imageSample(w, r)
		} else {
			sample, err = s.jsonSample(w, r, e)
		}
		return sample, e.Process, err
	})
}

// serveSample is the contract every processing route shares: a concurrency
// slot (an immediate 503 when the wait queue is full, a 503 when none frees
// up within the queue timeout), the request read into a sample by read
// (only once it holds a slot, so waiting requests hold no body in memory),
// which also says how to process it, processing within the timeout, and the
// sample (or the error) as the response.
func (s *Server) serveSample(w http.ResponseWriter, r *http.Request, read func() (*estimators.Sample, func(context.Context, *estimators.Sample) error, error)) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	release, err := s.queue.Acquire(ctx)
	switch {
	case errors.Is(err, admission.ErrQueueFull):
		writeError(w, s.log, r, errQueueFull)
		return
	case errors.Is(err, admission.ErrQueueTimeout):
		writeError(w, s.log, r, errQueueTimeout)
		return
	case err != nil:
		writeError(w, s.log, r, errBusy)
		return
	}
	defer release()
	sample, run, err := read()
	if err != nil {
		writeError(w, s.log, r, err)
		return
	}
	defer sample.Close()
	if err := run(ctx, sample); err != nil {
		writeError(w, s.log, r, err)
		return
	}
	body, err := encodeSample(sample)
	if err != nil {
		writeError(w, s.log, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// encodeSample writes {"$image", "objects", extras...} in that order.
func encodeSample(s *estimators.Sample) ([]byte, error) {
	out := estimators.NewObject()
	if s.Encoded != nil {
		if err := out.Set("$image", base64.StdEncoding.EncodeToString(s.Encoded)); err != nil {
			return nil, err
		}
	}
	objs := s.Objects
	if objs == nil {
		objs = []*estimators.Object{}
	}
	if err := out.Set("objects", objs); err != nil {
		return nil, err
	}
	for _, k := range s.Extra.Keys() {
		v, _ := s.Extra.Raw(k)
		out.SetRaw(k, v)
	}
	return json.Marshal(out)
}

func (s *Server) serveReady(w http.ResponseWriter) {
	if !s.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "starting"})
		return
	}
	body := map[string]any{"status": "ready", "services": s.order}
	if f, ok := s.readyInfo.Load().(func() map[string]any); ok && f != nil {
		for k, v := range f() {
			body[k] = v
		}
	}
	writeJSON(w, http.StatusOK, body)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (to flush
// streamed responses: previews, server-sent events; to set read deadlines).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}
