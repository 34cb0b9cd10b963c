package camera

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// Analysis is what a camera runs on its frames. The camera uses it from its
// analysis goroutine only, and calls Release once it has stopped using it.
type Analysis struct {
	Detectors  []Detector
	Attributor Attributor  // optional
	Quality    QualityFunc // optional [ScoreAreaQuality]
	Release    func()      // optional
}

// Status is where a camera is in its life.
type Status string

const (
	StatusConnecting   Status = "connecting"   // opening the source
	StatusConnected    Status = "connected"    // frames are arriving
	StatusReconnecting Status = "reconnecting" // the source failed; waiting to retry
	StatusEnded        Status = "ended"        // a file played once reached its end
	StatusStopped      Status = "stopped"      // the camera was stopped
)

// State is a camera's health, for GET /cameras and retained MQTT state.
type State struct {
	CameraID      string    `json:"camera_id"`
	Name          string    `json:"name,omitempty"`
	Source        string    `json:"source"` // without credentials
	Status        Status    `json:"status"`
	Connected     bool      `json:"connected"`
	FPS           float64   `json:"fps"` // frames read per second, smoothed
	FramesDropped uint64    `json:"frames_dropped"`
	Reconnects    uint64    `json:"reconnects"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorAt   time.Time `json:"last_error_at,omitzero"`
	Since         time.Time `json:"since"` // when Status last changed
	// Zones are the occupancy of each configured zone; Lines the crossings
	// of each counting line since the camera started.
	Zones map[string]int       `json:"zones,omitempty"`
	Lines map[string]LineCount `json:"lines,omitempty"`
}

// Stats are a camera's counters, for metrics. Counters only grow.
type Stats struct {
	CameraID       string
	FramesCaptured uint64 // read from the source
	FramesSkipped  uint64 // read but over the frame-rate cap
	FramesDropped  uint64 // replaced by a newer frame before analysis took them
	FramesAnalyzed uint64
	Reconnects     uint64 // failed or ended sources reopened
	DetectErrors   uint64
	// Inference is the time spent in detectors, per analysed frame.
	InferenceCount uint64
	InferenceTotal time.Duration
	InferenceLast  time.Duration
	AttributeRuns  uint64
	AttributeTotal time.Duration
	AttributeErrs  uint64
	EventsQueued   uint64
	EventsSent     uint64
	EventsFailed   uint64 // the sink returned an error or timed out
	EventsDropped  uint64 // the queue stayed full past PublishTimeout
	ActiveTracks   int    // confirmed tracks alive now
	CaptureFPS     float64
	AnalysisFPS    float64
	LastProgress   time.Time
}

// Options are what a camera shares with the rest of the daemon.
type Options struct {
	Sink    EventSink   // optional: without one, events are counted and discarded
	OnState func(State) // optional; called on every change and every StateInterval; must not block
	Logger  *slog.Logger
	// StateInterval is how often OnState hears about a running camera [5s].
	StateInterval time.Duration
	ids           *idGen
}

// Camera runs one source: a capture goroutine, an analysis goroutine and an
// event publisher. Start it with StartCamera and stop it with Stop.
type Camera struct {
	cfg  Config
	src  Source
	an   Analysis
	opts Options
	log  *slog.Logger
	ids  *idGen
	slot *slot
	tap  *tap // analysed frames for previews and kiosk sessions

	cancel       context.CancelFunc
	cancelDrain  context.CancelFunc
	drainCtx     context.Context
	events       chan Event
	captureDone  chan struct{}
	analysisDone chan struct{}
	publishDone  chan struct{}
	releaseOnce  sync.Once

	stateMu  sync.Mutex
	state    State
	notifyMu sync.Mutex

	captured, skipped, analyzed, reconnects, detectErrs atomic.Uint64
	infCount, infTotal, infLast                         atomic.Uint64
	attrRuns, attrTotal, attrErrs                       atomic.Uint64
	evQueued, evSent, evFailed, evDropped               atomic.Uint64
	activeTracks                                        atomic.Int64
	captureFPS, analysisFPS                             rate
	captureProgress, analysisProgress                   atomic.Int64 // unix nanoseconds
	captureIdle                                         atomic.Bool  // the capture loop ended on its own
}

// StartCamera validates cfg, opens nothing yet and starts the camera's
// goroutines; the source is opened (and reopened) in the background.
func StartCamera(cfg Config, an Analysis, opts Options) (*Camera, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	src, _ := ParseSource(cfg.URL, cfg.Loop)
	if an.Quality == nil {
		an.Quality = ScoreAreaQuality
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StateInterval <= 0 {
		opts.StateInterval = 5 * time.Second
	}
	if opts.ids == nil {
		opts.ids = newIDGen()
	}
	ctx, cancel := context.WithCancel(context.Background())
	drainCtx, cancelDrain := context.WithCancel(context.Background())
	now := time.Now()
	c := &Camera{
		cfg: cfg, src: src, an: an, opts: opts, ids: opts.ids, slot: newSlot(), tap: newTap(),
		log:    opts.Logger.With("camera", cfg.ID),
		cancel: cancel, cancelDrain: cancelDrain, drainCtx: drainCtx,
		events:       make(chan Event, cfg.Events.QueueSize),
		captureDone:  make(chan struct{}),
		analysisDone: make(chan struct{}),
		publishDone:  make(chan struct{}),
		state:        State{CameraID: cfg.ID, Name: cfg.Name, Source: src.String(), Status: StatusConnecting, Since: now},
	}
	c.captureProgress.Store(now.UnixNano())
	c.analysisProgress.Store(now.UnixNano())
	go func() {
		defer close(c.captureDone)
		c.captureLoop(ctx)
	}()
	go func() {
		defer close(c.analysisDone)
		defer close(c.events)
		defer c.tap.close()
		c.analysisLoop(ctx)
	}()
	go func() {
		defer close(c.publishDone)
		c.publishLoop()
	}()
	// Frames and analysis are freed once both sides are done, even when Stop
	// gave up waiting for a capture blocked in a read.
	go func() {
		<-c.captureDone
		<-c.analysisDone
		c.slot.close()
		c.release()
	}()
	c.notify()
	return c, nil
}

// Config returns the camera's configuration with defaults applied.
func (c *Camera) Config() Config { return c.cfg }

// Stop ends the camera: capture stops, live tracks end with reason
// "stopped", and queued events are published until ctx ends. It returns
// ctx's error if ctx ended first; resources are still released later.
func (c *Camera) Stop(ctx context.Context) error {
	c.cancel()
	var err error
	select {
	case <-c.publishDone:
	case <-ctx.Done():
		c.cancelDrain()
		err = fmt.Errorf("camera %s: stop: events not drained: %w", c.cfg.ID, ctx.Err())
	}
	select {
	case <-c.captureDone:
	case <-ctx.Done():
		if err == nil {
			err = fmt.Errorf("camera %s: stop: capture still blocked in a read: %w", c.cfg.ID, ctx.Err())
		}
	}
	c.cancelDrain()
	c.setStatus(StatusStopped, nil)
	return err
}

func (c *Camera) release() {
	c.releaseOnce.Do(func() {
		if c.an.Release != nil {
			c.an.Release()
		}
	})
}

// State returns the camera's current state.
func (c *Camera) State() State {
	c.stateMu.Lock()
	s := c.state
	s.Zones, s.Lines = maps.Clone(c.state.Zones), maps.Clone(c.state.Lines)
	c.stateMu.Unlock()
	s.FPS = c.captureFPS.get()
	s.FramesDropped = c.slot.droppedCount()
	s.Reconnects = c.reconnects.Load()
	return s
}

// LastProgress is the older of the last moments the capture and analysis
// loops went round (a capture that ended on its own counts as current): a
// watchdog that sees it fall far behind knows a loop is stuck.
func (c *Camera) LastProgress() time.Time {
	p := c.analysisProgress.Load()
	if !c.captureIdle.Load() {
		p = min(p, c.captureProgress.Load())
	}
	return time.Unix(0, p)
}

// Stats returns the camera's counters.
func (c *Camera) Stats() Stats {
	return Stats{
		CameraID:       c.cfg.ID,
		FramesCaptured: c.captured.Load(),
		FramesSkipped:  c.skipped.Load(),
		FramesDropped:  c.slot.droppedCount(),
		FramesAnalyzed: c.analyzed.Load(),
		Reconnects:     c.reconnects.Load(),
		DetectErrors:   c.detectErrs.Load(),
		InferenceCount: c.infCount.Load(),
		InferenceTotal: time.Duration(c.infTotal.Load()),
		InferenceLast:  time.Duration(c.infLast.Load()),
		AttributeRuns:  c.attrRuns.Load(),
		AttributeTotal: time.Duration(c.attrTotal.Load()),
		AttributeErrs:  c.attrErrs.Load(),
		EventsQueued:   c.evQueued.Load(),
		EventsSent:     c.evSent.Load(),
		EventsFailed:   c.evFailed.Load(),
		EventsDropped:  c.evDropped.Load(),
		ActiveTracks:   int(c.activeTracks.Load()),
		CaptureFPS:     c.captureFPS.get(),
		AnalysisFPS:    c.analysisFPS.get(),
		LastProgress:   c.LastProgress(),
	}
}

// setStatus records a status change or an error and tells OnState.
func (c *Camera) setStatus(st Status, err error) {
	c.stateMu.Lock()
	if c.state.Status == StatusStopped {
		// A capture that Stop gave up on may come back from its read later: it changes nothing.
		c.stateMu.Unlock()
		return
	}
	changed := c.state.Status != st
	if changed {
		c.state.Status = st
		c.state.Since = time.Now().UTC()
	}
	c.state.Connected = st == StatusConnected
	if err != nil {
		c.state.LastError = err.Error()
		c.state.LastErrorAt = time.Now().UTC()
	}
	c.stateMu.Unlock()
	if changed || err != nil {
		c.notify()
	}
}

func (c *Camera) notify() {
	if c.opts.OnState == nil {
		return
	}
	c.notifyMu.Lock()
	defer c.notifyMu.Unlock()
	c.opts.OnState(c.State())
}

// publishLoop hands queued events to the sink in order until the queue is
// closed and empty, or Stop gives up draining.
func (c *Camera) publishLoop() {
	for e := range c.events {
		if c.drainCtx.Err() != nil {
			c.evFailed.Add(1)
			continue
		}
		if c.opts.Sink == nil {
			c.evSent.Add(1)
			continue
		}
		if err := c.publishOne(e); err != nil {
			c.evFailed.Add(1)
			c.log.Warn("event not published", "type", e.Type, "track", e.TrackID, "err", err)
			continue
		}
		c.evSent.Add(1)
	}
}

// publishOne runs Publish in its own goroutine so that a sink ignoring its
// context cannot hold the queue past the timeout.
func (c *Camera) publishOne(e Event) error {
	ctx, cancel := context.WithTimeout(c.drainCtx, c.cfg.Events.PublishTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.opts.Sink.Publish(ctx, e) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("publish %s: %w", e.Type, ctx.Err())
	}
}

// rate is a smoothed events-per-second meter.
type rate struct {
	mu   sync.Mutex
	last time.Time
	ewma float64 // seconds between events
}

func (r *rate) tick(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() {
		dt := now.Sub(r.last).Seconds()
		if r.ewma == 0 {
			r.ewma = dt
		} else {
			r.ewma += 0.1 * (dt - r.ewma)
		}
	}
	r.last = now
}

func (r *rate) get() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ewma <= 0 {
		return 0
	}
	// A meter that stopped ticking decays instead of showing its last rate.
	since := time.Since(r.last).Seconds()
	return 1 / max(r.ewma, since)
}

func (r *rate) reset() {
	r.mu.Lock()
	r.last, r.ewma = time.Time{}, 0
	r.mu.Unlock()
}

// sleepCtx waits d or until ctx ends; it reports whether it waited fully.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

var errEndOfFile = errors.New("end of file")
