// Package config owns the daemon's configuration: the YAML file, its
// defaults, and the checks that run before anything starts.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"imageapid/camera"
	"imageapid/daemon/auth"
	"imageapid/estimators/face"
	"imageapid/estimators/facecache"
	"imageapid/models"
	"imageapid/sessions"
	"imageapid/watchlist"
)

// Config is the whole daemon configuration.
type Config struct {
	// DeviceID names this box in MQTT topics; empty means the host name.
	DeviceID string      `yaml:"device_id"`
	LogLevel string      `yaml:"log_level"`
	HTTP     HTTP        `yaml:"http"`
	Models   Models      `yaml:"models"`
	Face     face.Config `yaml:"face"`
	// FaceCache keeps the faces found in an image's bytes, and the networks'
	// outputs on them, for a few seconds, so that a client calling several
	// services on one image detects, fits and runs each network once;
	// entries, max_bytes or ttl at 0 turn it off.
	FaceCache facecache.Config `yaml:"face_cache"`
	// Services lists the Image API services to serve; empty means all.
	Services []string `yaml:"services"`
	// Estimators holds per-service settings, keyed by service name; each
	// estimator decodes its own section.
	Estimators map[string]yaml.Node `yaml:"estimators"`
	// StateDir holds what survives a restart (the MQTT outbox); empty means
	// $STATE_DIRECTORY under systemd, else ./state.
	StateDir string `yaml:"state_dir"`
	MQTT     MQTT   `yaml:"mqtt"`
	// Sessions bounds and tunes kiosk liveness sessions.
	Sessions sessions.Config `yaml:"sessions"`
	// Watchlist configures 1:N identification (/v1/watchlists).
	Watchlist watchlist.Config `yaml:"watchlist"`
	// WatchdogStall is how long a camera pipeline may make no progress
	// before the systemd watchdog stops being fed (and restarts the service).
	WatchdogStall time.Duration `yaml:"watchdog_stall"`
	// Cameras are the sources the daemon watches.
	Cameras []camera.Config `yaml:"cameras"`
}

// MQTT configures event publishing.
type MQTT struct {
	Enabled bool `yaml:"enabled"`
	// URL of an external broker (tcp://, ssl://); empty runs the embedded
	// broker on EmbeddedListen and publishes to it.
	URL            string `yaml:"url"`
	EmbeddedListen string `yaml:"embedded_listen"`
	Username       string `yaml:"username"`
	Password       string `yaml:"password"`
	CAFile         string `yaml:"ca_file"`
	CertFile       string `yaml:"cert_file"`
	KeyFile        string `yaml:"key_file"`
	ClientID       string `yaml:"client_id"`
	// Prefix of every topic; empty means imageapid/<device_id>.
	Prefix          string `yaml:"prefix"`
	DiscoveryPrefix string `yaml:"discovery_prefix"`
	// OutboxMaxBytes and OutboxMaxEntries bound undelivered events on disk;
	// past them the oldest are dropped (and counted).
	OutboxMaxBytes   int64 `yaml:"outbox_max_bytes"`
	OutboxMaxEntries int   `yaml:"outbox_max_entries"`
}

// ResolvedStateDir is StateDir with its default applied.
func (c *Config) ResolvedStateDir() string {
	if c.StateDir != "" {
		return c.StateDir
	}
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		return strings.Split(d, ":")[0]
	}
	return "state"
}

// HTTP configures the Image API server.
type HTTP struct {
	Listen string `yaml:"listen"`
	// MaxBodyBytes caps a request body (the original's MAX_BODY_SIZE).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxPixels caps a decoded image's width x height.
	MaxPixels int `yaml:"max_pixels"`
	// MaxObjects caps the objects list of one sample.
	MaxObjects int `yaml:"max_objects"`
	// MaxConcurrent is how many requests are processed at once; the others
	// wait for a slot until their timeout.
	MaxConcurrent  int           `yaml:"max_concurrent"`
	RequestTimeout time.Duration `yaml:"request_timeout"`
	ShutdownGrace  time.Duration `yaml:"shutdown_grace"`
	// MaxQueue is how many requests may wait for a processing slot; past it
	// a request gets an immediate 503 with Retry-After.
	MaxQueue int `yaml:"max_queue"`
	// QueueTimeout is the longest wait for a slot (then 503, Retry-After).
	QueueTimeout time.Duration `yaml:"queue_timeout"`
	// MaxInflightBytes bounds the request bodies being read at once, over
	// every route; a body that finds no room within queue_timeout gets 503.
	MaxInflightBytes int64 `yaml:"max_inflight_bytes"`
	// CertFile and KeyFile turn on TLS (both or neither; reloaded on SIGHUP).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Auth configures bearer tokens (required off loopback).
	Auth auth.Config `yaml:"auth"`
}

// Models configures the model runtime.
type Models struct {
	Manifest string `yaml:"manifest"`
	Dir      string `yaml:"dir"`
	// Delegate is the default for every model: xnnpack, none, gpu, edgetpu
	// or external. A model whose delegate cannot load, or rejects its graph,
	// runs on xnnpack (then plain CPU) and the log, /readyz and /metrics say so.
	Delegate string `yaml:"delegate"`
	// DelegateLibrary is the gpu/edgetpu library to load instead of the
	// default name, or the external delegate plugin (required for external).
	DelegateLibrary string `yaml:"delegate_library"`
	// DelegateOptions are the delegate's key/values.
	DelegateOptions map[string]string `yaml:"delegate_options"`
	Threads         int               `yaml:"threads"`
	// Interpreters is the pool size per model.
	Interpreters int                            `yaml:"interpreters"`
	PerModel     map[string]models.ModelOptions `yaml:"per_model"`
}

// RuntimeOptions are the model runtime's options from this section.
func (m Models) RuntimeOptions() models.Options {
	return models.Options{
		Dir:             m.Dir,
		Delegate:        m.Delegate,
		Library:         m.DelegateLibrary,
		DelegateOptions: m.DelegateOptions,
		Threads:         m.Threads,
		Pool:            m.Interpreters,
		PerModel:        m.PerModel,
	}
}

// Default returns the configuration used for keys the file does not set.
func Default() Config {
	return Config{
		LogLevel: "info",
		HTTP: HTTP{
			Listen:         "127.0.0.1:8080",
			MaxBodyBytes:   4_700_000,
			MaxPixels:      10_000_000,
			MaxObjects:     100,
			MaxConcurrent:  4,
			RequestTimeout: 30 * time.Second,
			ShutdownGrace:  4 * time.Second,

			MaxQueue:         16,
			QueueTimeout:     10 * time.Second,
			MaxInflightBytes: 64 << 20,
		},
		Models: Models{
			Manifest:     "models/manifest.json",
			Dir:          "models/build",
			Delegate:     models.DelegateXNNPACK,
			Threads:      1,
			Interpreters: 2,
		},
		Face: face.Config{MinScore: 0.5, MaxFaces: 50, Detector: "full_range",
			Tiling: "auto", BorderPass: "auto", CloseUp: "auto", RefineMesh: "on"},
		FaceCache:     facecache.Default(),
		Sessions:      sessions.DefaultConfig(),
		Watchlist:     watchlist.DefaultConfig(),
		WatchdogStall: time.Minute,
		MQTT: MQTT{
			Enabled:          true,
			EmbeddedListen:   "127.0.0.1:1883",
			DiscoveryPrefix:  "homeassistant",
			OutboxMaxBytes:   16 << 20,
			OutboxMaxEntries: 10000,
		},
	}
}

// Load reads a YAML file over the defaults and checks the result. Unknown
// keys are errors, so a typo does not silently fall back to a default.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Default(), fmt.Errorf("read config: %w", err)
	}
	return Parse(b, path)
}

// Parse is Load of a file's bytes; path names it in errors.
func Parse(b []byte, path string) (Config, error) {
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // an empty file means all defaults
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if len(cfg.Models.DelegateOptions) == 0 {
		cfg.Models.DelegateOptions = nil // "{}" and an absent key mean the same
	}
	if len(cfg.HTTP.Auth.Tokens) == 0 {
		cfg.HTTP.Auth.Tokens = nil // "[]" and an absent key mean the same
	}
	if len(cfg.HTTP.Auth.Public) == 0 {
		cfg.HTTP.Auth.Public = nil
	}
	if err := cfg.Check(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Check reports the first invalid setting.
func (c *Config) Check() error {
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		return fmt.Errorf("http.listen %q: %w", c.HTTP.Listen, err)
	}
	if c.HTTP.MaxBodyBytes <= 0 || c.HTTP.MaxPixels <= 0 || c.HTTP.MaxObjects <= 0 || c.HTTP.MaxConcurrent <= 0 {
		return errors.New("http: max_body_bytes, max_pixels, max_objects and max_concurrent must be positive")
	}
	if c.HTTP.RequestTimeout <= 0 {
		return errors.New("http.request_timeout must be positive")
	}
	if c.HTTP.MaxQueue < 0 || c.HTTP.QueueTimeout <= 0 {
		return errors.New("http: max_queue must not be negative and queue_timeout must be positive")
	}
	if c.HTTP.MaxInflightBytes < c.HTTP.MaxBodyBytes {
		return fmt.Errorf("http.max_inflight_bytes %d is below max_body_bytes %d: no body could be read",
			c.HTTP.MaxInflightBytes, c.HTTP.MaxBodyBytes)
	}
	if (c.HTTP.CertFile == "") != (c.HTTP.KeyFile == "") {
		return errors.New("http: cert_file and key_file go together")
	}
	if err := c.HTTP.Auth.Check(); err != nil {
		return err
	}
	if err := c.FaceCache.Check(); err != nil {
		return err
	}
	if err := c.Sessions.Check(); err != nil {
		return err
	}
	if err := c.Watchlist.Check(); err != nil {
		return err
	}
	opts := c.Models.RuntimeOptions()
	if err := (models.ModelOptions{Delegate: opts.Delegate, Library: opts.Library,
		DelegateOptions: opts.DelegateOptions}).Validate(); err != nil {
		return fmt.Errorf("models.delegate: %w", err)
	}
	for name, m := range c.Models.PerModel {
		// Per-model settings are checked as the runtime resolves them, so a
		// model overriding only the delegate is not blamed for the default's options.
		resolved := m
		if m.Delegate == "" || m.Delegate == opts.Delegate {
			resolved.Delegate = opts.Delegate
			if resolved.Library == "" {
				resolved.Library = opts.Library
			}
			if resolved.DelegateOptions == nil {
				resolved.DelegateOptions = opts.DelegateOptions
			}
		}
		if err := resolved.Validate(); err != nil {
			return fmt.Errorf("models.per_model.%s: %w", name, err)
		}
	}
	if c.Models.Threads <= 0 || c.Models.Interpreters <= 0 {
		return errors.New("models.threads and models.interpreters must be positive")
	}
	if c.MQTT.Enabled && c.MQTT.URL == "" {
		if _, _, err := net.SplitHostPort(c.MQTT.EmbeddedListen); err != nil {
			return fmt.Errorf("mqtt.embedded_listen %q: %w", c.MQTT.EmbeddedListen, err)
		}
	}
	ids := map[string]bool{}
	for i, cam := range c.Cameras {
		if err := cam.Validate(); err != nil {
			return fmt.Errorf("cameras[%d]: %w", i, err)
		}
		if cam.Identify.List != "" && !c.Watchlist.Enabled {
			return fmt.Errorf("cameras[%d]: identify.list needs watchlist.enabled", i)
		}
		if ids[cam.ID] {
			return fmt.Errorf("cameras[%d]: id %q used twice", i, cam.ID)
		}
		ids[cam.ID] = true
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// EstimatorSettings decodes the named service's section into v, leaving v's
// defaults where the section is absent.
func (c *Config) EstimatorSettings(service string, v any) error {
	node, ok := c.Estimators[service]
	if !ok {
		return nil
	}
	if err := node.Decode(v); err != nil {
		return fmt.Errorf("estimators.%s: %w", service, err)
	}
	return nil
}
