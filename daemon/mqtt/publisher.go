// Package mqtt owns what the appliance says over MQTT: the publisher, its
// on-disk outbox, and Home Assistant discovery.
//
// Topic tree (prefix defaults to imageapid/<device_id>):
//
//	<prefix>/availability             "online" / "offline", retained. The broker
//	                                  publishes "offline" as our last will if the
//	                                  connection dies; Close publishes it too.
//	<prefix>/cameras/<id>/state       retained JSON from PublishCameraState
//	                                  (connected, fps, dropped frames, last error).
//	<prefix>/cameras/<id>/counts      retained JSON {"faces":N,"people":M,"presence":bool}
//	                                  from UpdateCounts; the Home Assistant entities read it.
//	<prefix>/cameras/<id>/zones/<zone>/count  retained occupancy, a plain integer (UpdatePlaces)
//	<prefix>/cameras/<id>/lines/<line>/count  retained JSON {"left_to_right":N,"right_to_left":M,"total":N+M}
//	<prefix>/events                   QoS 1 JSON events (track_new, track_update,
//	                                  track_end, ...): the caller's object plus
//	                                  "event_id" (time-ordered, unique) and "device_id".
//	homeassistant/sensor/imageapid_<device>/<camera>_faces/config          retained discovery
//	homeassistant/sensor/imageapid_<device>/<camera>_people/config         retained discovery
//	homeassistant/binary_sensor/imageapid_<device>/<camera>_presence/config retained discovery
//	homeassistant/sensor/imageapid_<device>/<camera>_zone_<zone>/config    retained discovery, per zone
//	homeassistant/sensor/imageapid_<device>/<camera>_line_<line>/config    retained discovery, per line
//
// Delivery: events go to a file-backed outbox first and one sender goroutine
// publishes them in order, one at a time, marking each delivered after its
// PUBACK; so a broker outage or a daemon restart delays events but neither
// loses nor reorders them (unless the outbox fills up: then the oldest are
// dropped and counted). Retained messages (availability, discovery, camera
// state, counts) are kept in memory as the latest value per topic and sent by
// the same goroutine ahead of events on every (re)connect, so a broker that
// restarted without persistence gets them back; they never go to disk because
// only the newest value matters and the daemon sets them again when it starts.
package mqtt

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Options configure a Publisher. Zero values take the defaults in brackets.
type Options struct {
	// URL of the broker: tcp://host:port, mqtt://, or ssl:// tls:// mqtts:// for
	// TLS. [tcp://127.0.0.1:1883, where the daemon runs its embedded broker]
	URL      string
	Username string
	Password string
	// CAFile verifies the broker's certificate [system roots]; CertFile and
	// KeyFile are a client certificate for brokers that ask for one.
	CAFile   string
	CertFile string
	KeyFile  string
	// ClientID [imageapid-<device_id>]
	ClientID string

	// DeviceID names this appliance in topics and Home Assistant ids
	// (letters, digits, '-', '_') [the host name, other characters as '_'].
	DeviceID string
	// Prefix of every topic we publish [imageapid/<device_id>].
	Prefix string
	// DiscoveryPrefix is Home Assistant's discovery prefix [homeassistant].
	DiscoveryPrefix string

	// OutboxDir holds the event outbox (required; under systemd, a
	// subdirectory of $STATE_DIRECTORY).
	OutboxDir string
	// OutboxMaxBytes and OutboxMaxEntries bound the undelivered events;
	// beyond them the oldest are dropped [16 MiB, 10000].
	OutboxMaxBytes   int64
	OutboxMaxEntries int

	KeepAlive      time.Duration // [30s]
	ConnectTimeout time.Duration // dial + CONNACK [5s]
	// PublishTimeout is how long a PUBACK may take before the connection is
	// considered broken and re-established [10s].
	PublishTimeout time.Duration
	ReconnectMin   time.Duration // first retry delay, doubled up to ReconnectMax [250ms]
	ReconnectMax   time.Duration // [10s]

	Logger *slog.Logger // [slog.Default()]
}

// CameraState is the usual payload of <prefix>/cameras/<id>/state.
type CameraState struct {
	Connected     bool    `json:"connected"`
	FPS           float64 `json:"fps"`
	DroppedFrames uint64  `json:"dropped_frames"`
	LastError     string  `json:"last_error,omitempty"`
}

// Stats are counters for metrics; Delivered and Dropped count since New.
type Stats struct {
	Connected  bool   // a broker session is up
	QueueDepth int    // events waiting in the outbox
	QueueBytes int64  // their size on disk
	Delivered  uint64 // events acknowledged by the broker
	Dropped    uint64 // events dropped: the outbox was full, or the disk refused them
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("mqtt publisher closed")

const (
	availabilityOnline  = "online"
	availabilityOffline = "offline"
)

// Publisher publishes the appliance's MQTT messages. Its methods are safe for
// concurrent use and never wait for the network.
type Publisher struct {
	opts      Options
	logger    *slog.Logger
	tlsConfig *tls.Config
	outbox    *outbox

	topicAvailability string
	topicEvents       string

	wake   chan struct{} // something new to send
	drain  chan struct{} // closed by Close: send what is left, then go offline
	cancel context.CancelFunc
	done   chan struct{} // closed when the sender has stopped

	mu         sync.Mutex
	closed     bool
	ids        eventIDs
	retained   map[string]*retainedMsg
	order      []string // retained topics in the order they are (re)sent
	counts     map[string][2]int
	discovered map[string]bool // cameras with discovery configs, for removal
	// placeTopics are each camera's zone and line topics (discovery and
	// counts) last published, for removal when a zone or line goes.
	placeTopics map[string]map[string]bool
	connected   bool
}

type retainedMsg struct {
	payload []byte
	version uint64 // bumped on each change
	sent    uint64 // version the broker has acknowledged on this connection
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// New opens the outbox in opts.OutboxDir and starts the sender, which keeps
// (re)connecting to the broker until Close. Cancelling ctx stops the sender
// at once without flushing; Close is the graceful way.
func New(ctx context.Context, opts Options) (*Publisher, error) {
	if err := opts.fillDefaults(); err != nil {
		return nil, err
	}
	tlsConfig, err := opts.tlsConfig()
	if err != nil {
		return nil, err
	}
	logger := opts.Logger.With("component", "mqtt")
	ob, err := openOutbox(opts.OutboxDir, opts.OutboxMaxBytes, opts.OutboxMaxEntries, logger)
	if err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	p := &Publisher{
		opts:              opts,
		logger:            logger,
		tlsConfig:         tlsConfig,
		outbox:            ob,
		topicAvailability: opts.Prefix + "/availability",
		topicEvents:       opts.Prefix + "/events",
		wake:              make(chan struct{}, 1),
		drain:             make(chan struct{}),
		cancel:            cancel,
		done:              make(chan struct{}),
		retained:          make(map[string]*retainedMsg),
		counts:            make(map[string][2]int),
		discovered:        make(map[string]bool),
	}
	p.setRetainedLocked(p.topicAvailability, []byte(availabilityOnline))
	if st := ob.stats(); st.depth > 0 {
		p.logger.Info("mqtt outbox has undelivered events from a previous run", "events", st.depth, "bytes", st.bytes)
	}
	go p.run(runCtx)
	return p, nil
}

func (o *Options) fillDefaults() error {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.URL == "" {
		o.URL = "tcp://127.0.0.1:1883"
	}
	if o.DeviceID == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("mqtt device id: %w", err)
		}
		o.DeviceID = sanitizeID(host)
	}
	if !idPattern.MatchString(o.DeviceID) {
		return fmt.Errorf("mqtt device id %q: use letters, digits, '-' and '_'", o.DeviceID)
	}
	if o.Prefix == "" {
		o.Prefix = "imageapid/" + o.DeviceID
	}
	if o.DiscoveryPrefix == "" {
		o.DiscoveryPrefix = "homeassistant"
	}
	for _, t := range []string{o.Prefix, o.DiscoveryPrefix} {
		if strings.ContainsAny(t, "+#\x00") || strings.HasPrefix(t, "/") || strings.HasSuffix(t, "/") {
			return fmt.Errorf("mqtt topic prefix %q: no wildcards, no leading or trailing '/'", t)
		}
	}
	if o.ClientID == "" {
		o.ClientID = "imageapid-" + o.DeviceID
	}
	if o.OutboxDir == "" {
		return errors.New("mqtt: outbox dir is required")
	}
	if o.OutboxMaxBytes == 0 {
		o.OutboxMaxBytes = 16 << 20
	}
	if o.OutboxMaxEntries == 0 {
		o.OutboxMaxEntries = 10000
	}
	setDuration := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDuration(&o.KeepAlive, 30*time.Second)
	setDuration(&o.ConnectTimeout, 5*time.Second)
	setDuration(&o.PublishTimeout, 10*time.Second)
	setDuration(&o.ReconnectMin, 250*time.Millisecond)
	setDuration(&o.ReconnectMax, 10*time.Second)
	u, err := url.Parse(o.URL)
	if err != nil {
		return fmt.Errorf("mqtt url: %w", err)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts":
	default:
		return fmt.Errorf("mqtt url %q: scheme must be tcp, mqtt, ssl, tls or mqtts", o.URL)
	}
	if u.Port() == "" {
		return fmt.Errorf("mqtt url %q: needs a port", o.URL)
	}
	return nil
}

func sanitizeID(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && idPattern.MatchString(string(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "imageapid"
	}
	return b.String()
}

func (o *Options) tlsConfig() (*tls.Config, error) {
	u, _ := url.Parse(o.URL)
	useTLS := u.Scheme == "ssl" || u.Scheme == "tls" || u.Scheme == "mqtts"
	if !useTLS {
		if o.CAFile != "" || o.CertFile != "" {
			return nil, fmt.Errorf("mqtt url %q: CA or client certificate given for a plain connection: use ssl://", o.URL)
		}
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt CA file %s: no PEM certificates", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("mqtt client certificate needs both a cert file and a key file")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Prefix is the topic prefix in use.
func (p *Publisher) Prefix() string { return p.opts.Prefix }

// DeviceID is the device id in use.
func (p *Publisher) DeviceID() string { return p.opts.DeviceID }

// PublishEvent queues one event for <prefix>/events. ev must marshal to a JSON
// object without the reserved keys "event_id" and "device_id", which are
// added here. It returns once the event is on disk (fsync), without waiting
// for the broker.
func (p *Publisher) PublishEvent(ev any) error {
	_, err := p.PublishEventPayload(ev)
	return err
}

// PublishEventPayload is PublishEvent returning the payload queued, so the
// web console can show the very JSON the broker gets.
func (p *Publisher) PublishEventPayload(ev any) ([]byte, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("mqtt event: %w", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("mqtt event: must be a JSON object, got %.40s", body)
	}
	for _, k := range []string{"event_id", "device_id"} {
		if _, ok := fields[k]; ok {
			return nil, fmt.Errorf("mqtt event: key %q is reserved", k)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	id, err := p.ids.next(time.Now())
	if err != nil {
		return nil, err
	}
	payload := envelope(id, p.opts.DeviceID, body)
	if err := p.outbox.Append(payload); err != nil {
		return nil, fmt.Errorf("mqtt event: %w", err)
	}
	p.signal()
	return payload, nil
}

// envelope puts the envelope keys first in the caller's JSON object.
func envelope(id, device string, object []byte) []byte {
	head, _ := json.Marshal(struct {
		EventID  string `json:"event_id"`
		DeviceID string `json:"device_id"`
	}{id, device})
	rest := bytes.TrimSpace(object)[1:] // after '{'
	var b bytes.Buffer
	b.Write(head[:len(head)-1]) // without '}'
	if len(bytes.TrimSpace(rest)) > 1 {
		b.WriteByte(',')
	}
	b.Write(rest)
	return b.Bytes()
}

// PublishCameraState sets the retained state of camera id; st is usually a
// CameraState.
func (p *Publisher) PublishCameraState(id string, st any) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("mqtt camera id %q: use letters, digits, '-' and '_'", id)
	}
	body, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("mqtt camera %s state: %w", id, err)
	}
	return p.setRetained(p.cameraTopic(id, "state"), body)
}

// UpdateCounts sets how many faces and people camera id sees now; the
// retained counts message is sent only when a number changes.
func (p *Publisher) UpdateCounts(id string, faces, people int) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("mqtt camera id %q: use letters, digits, '-' and '_'", id)
	}
	p.mu.Lock()
	prev, seen := p.counts[id]
	p.counts[id] = [2]int{faces, people}
	p.mu.Unlock()
	if seen && prev == [2]int{faces, people} {
		return nil
	}
	body, err := json.Marshal(countsPayload{Faces: faces, People: people, Presence: faces > 0 || people > 0})
	if err != nil {
		return fmt.Errorf("mqtt camera %s counts: %w", id, err)
	}
	return p.setRetained(p.cameraTopic(id, "counts"), body)
}

type countsPayload struct {
	Faces    int  `json:"faces"`
	People   int  `json:"people"`
	Presence bool `json:"presence"`
}

func (p *Publisher) cameraTopic(id, leaf string) string {
	return p.opts.Prefix + "/cameras/" + id + "/" + leaf
}

func (p *Publisher) setRetained(topic string, payload []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.setRetainedLocked(topic, payload)
	p.signal()
	return nil
}

// setRetainedLocked stores the latest payload of a retained topic; an empty
// payload deletes the retained message at the broker and is forgotten here
// once sent.
func (p *Publisher) setRetainedLocked(topic string, payload []byte) {
	m, ok := p.retained[topic]
	if !ok {
		m = &retainedMsg{}
		p.retained[topic] = m
		p.order = append(p.order, topic)
	} else if bytes.Equal(m.payload, payload) {
		return
	}
	m.payload = payload
	m.version++
}

func (p *Publisher) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Stats reports the counters for metrics.
func (p *Publisher) Stats() Stats {
	st := p.outbox.stats()
	p.mu.Lock()
	connected := p.connected
	p.mu.Unlock()
	return Stats{Connected: connected, QueueDepth: st.depth, QueueBytes: st.bytes, Delivered: st.delivered, Dropped: st.dropped}
}

// Close sends what is queued, publishes "offline" and disconnects. It gives
// up when ctx ends or when the broker cannot be reached (one attempt, no
// back-off): undelivered events stay in the outbox for the next start, and the
// error says how many. Give it a ctx well inside systemd's stop timeout.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closed = true
	p.mu.Unlock()

	close(p.drain)
	var flushErr error
	select {
	case <-p.done:
	case <-ctx.Done():
		p.cancel()
		<-p.done
		flushErr = fmt.Errorf("mqtt close: %w", ctx.Err())
	}
	p.cancel()
	st := p.outbox.stats()
	if st.depth > 0 {
		flushErr = errors.Join(flushErr, fmt.Errorf("mqtt close: %d events stay in the outbox for the next start", st.depth))
	}
	return errors.Join(flushErr, p.outbox.Close())
}
