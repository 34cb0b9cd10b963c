// Package sessions owns kiosk liveness sessions: a guided, multi-frame check
// that the face in front of a camera belongs to a live person. A session
// asks for a first frontal look, then for challenges drawn at random
// (blink, head turns, nods, a smile, moving closer), follows the face
// through every frame, and decides from all of them: the challenges done
// after they were asked, passive liveness fused across frames and both
// single-image algorithms, the same face throughout, no phone, screen or
// picture around the face, and a face that moves at all. With a
// reference it also verifies the person 1:1.
//
// It calls the estimators' building blocks in-process and knows nothing of
// HTTP beyond its own thin routes (routes.go) and nothing of MQTT beyond
// the ResultSink it is given. Sessions keep figures only: frames are never
// stored or logged.
package sessions

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"imageapid/camera"
)

// Errors the routes map to HTTP statuses.
var (
	ErrNotFound = errors.New("no such session")
	ErrTooMany  = errors.New("too many open sessions")
	ErrFinished = errors.New("the session is finished")
	ErrBadInput = errors.New("bad input")
)

// ResultSink receives each finished session once (MQTT, in the daemon).
type ResultSink interface {
	SessionFinished(ctx context.Context, r Finished) error
}

// Finished is what a sink is told of a finished session.
type Finished struct {
	ID         string    `json:"session_id"`
	Source     string    `json:"source"`
	Camera     string    `json:"camera,omitempty"`
	Challenges []string  `json:"challenges"`
	Status     Status    `json:"status"`
	Result     *Result   `json:"result"`
	Created    time.Time `json:"created"`
	Finished   time.Time `json:"finished"`
}

// Cameras hands a camera's analysed frames to camera-mode sessions.
type Cameras interface {
	Subscribe(cameraID string, maxFPS float64) (*camera.Subscription, error)
}

// Manager holds the open and recently finished sessions. It is safe for
// concurrent use.
type Manager struct {
	cfg      Config
	analyzer *Analyzer
	sink     ResultSink
	log      *slog.Logger
	now      func() time.Time
	cameras  Cameras // nil: camera sources are refused
	// issueToken, when set before serving, gives each new session its own token.
	issueToken TokenIssuer

	// feeds are the goroutines reading cameras for camera-mode sessions;
	// stop ends them.
	ctx   context.Context
	stop  context.CancelFunc
	feeds sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*entry
}

// entry is one session with its locks: work serializes frames, mu guards
// the state the readers see.
type entry struct {
	work sync.Mutex
	mu   sync.Mutex
	s    *session
	subs map[chan Guidance]struct{}
	// done is closed when the session has finished and its sink was told.
	done chan struct{}
}

// maxSubscribers bounds the event streams of one session.
const maxSubscribers = 4

// NewManager returns a manager; call Run to expire and forget sessions
// (and, when it returns, to stop the camera feeds). cams may be nil.
func NewManager(cfg Config, a *Analyzer, sink ResultSink, cams Cameras, log *slog.Logger) (*Manager, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, analyzer: a, sink: sink, cameras: cams, log: log, now: time.Now,
		sessions: map[string]*entry{}, ctx: ctx, stop: stop}, nil
}

// keptPerOpen bounds the sessions held (open and finished) to this many
// times max_open.
const keptPerOpen = 16

// cameraFPS is how often a camera-mode session analyses a frame.
const cameraFPS = 10

// Config is the manager's configuration.
func (m *Manager) Config() Config { return m.cfg }

// Request is what a new session asks for; zero values take the defaults.
type Request struct {
	Source     string
	Challenges []string
	// ChallengesSet says Challenges was given (an empty list means none).
	ChallengesSet bool
	Timeout       time.Duration
	// Reference is the unit template vector to verify against, if any.
	Reference []float32
	// BestShot keeps a JPEG crop of the best frame's face, in memory, for
	// GET only (never in events or MQTT), until the session is forgotten.
	BestShot bool
}

// Created is a new session's description.
type Created struct {
	ID         string    `json:"id"`
	Status     Status    `json:"status"`
	Source     string    `json:"source"`
	Challenges []string  `json:"challenges"`
	ExpiresAt  time.Time `json:"expires_at"`
	// Token opens this session's own routes and nothing else; set only
	// while the daemon requires tokens (see SetTokenIssuer).
	Token string `json:"token,omitempty"`
}

// TokenIssuer returns a bearer token that opens only session id's routes
// until the given time.
type TokenIssuer func(id string, until time.Time) string

// SetTokenIssuer makes every created session carry a token from issue;
// call it before serving.
func (m *Manager) SetTokenIssuer(issue TokenIssuer) { m.issueToken = issue }

// Create opens a session.
func (m *Manager) Create(req Request) (Created, error) {
	if req.Source == "" {
		req.Source = "frames"
	}
	cameraID, isCamera := strings.CutPrefix(req.Source, "camera:")
	switch {
	case req.Source == "frames":
	case isCamera && m.cameras == nil:
		return Created{}, fmt.Errorf("%w: source %q: this daemon has no cameras", ErrBadInput, req.Source)
	case !isCamera || cameraID == "":
		return Created{}, fmt.Errorf("%w: source %q is not \"frames\" or \"camera:<id>\"", ErrBadInput, req.Source)
	}
	timeout := m.cfg.Timeout
	if req.Timeout != 0 {
		if req.Timeout < time.Second || req.Timeout > m.cfg.MaxTimeout {
			return Created{}, fmt.Errorf("%w: timeout_s must be between 1 and %d", ErrBadInput, int(m.cfg.MaxTimeout.Seconds()))
		}
		timeout = req.Timeout
	}
	challenges := req.Challenges
	if !req.ChallengesSet {
		var err error
		if challenges, err = draw(m.cfg.pool(), m.cfg.ChallengesCount); err != nil {
			return Created{}, err
		}
	}
	if len(challenges) > 6 {
		return Created{}, fmt.Errorf("%w: at most 6 challenges, got %d", ErrBadInput, len(challenges))
	}
	for _, c := range challenges {
		if !knownChallenge(c) {
			return Created{}, fmt.Errorf("%w: unknown challenge %q (known: %v)", ErrBadInput, c, challengeCodes)
		}
	}
	id, err := newID()
	if err != nil {
		return Created{}, err
	}
	now := m.now()
	s := &session{
		id: id, source: req.Source, challenges: append([]string{}, challenges...),
		created: now, expires: now.Add(timeout + expiryGrace), timeout: timeout,
		reference: req.Reference, status: Waiting, wantBestShot: req.BestShot,
	}
	s.guidance = Guidance{Status: Waiting, Steps: s.steps(), Instruction: instruction("look_straight")}
	m.mu.Lock()
	defer m.mu.Unlock()
	open := 0
	var oldestID string
	var oldest time.Time
	for id, e := range m.sessions {
		e.mu.Lock()
		if !e.s.status.Finished() {
			open++
		} else if f := e.s.finished; !f.IsZero() && (oldestID == "" || f.Before(oldest)) {
			oldestID, oldest = id, f
		}
		e.mu.Unlock()
	}
	if open >= m.cfg.MaxOpen {
		return Created{}, fmt.Errorf("%w: %d sessions are open (the limit is %d)", ErrTooMany, open, m.cfg.MaxOpen)
	}
	// Finished sessions keep their results for the TTL, but never more of
	// them than this: a client opening and cancelling in a loop must not
	// grow the map.
	if len(m.sessions) >= keptPerOpen*m.cfg.MaxOpen && oldestID != "" {
		delete(m.sessions, oldestID)
	}
	e := &entry{s: s, subs: map[chan Guidance]struct{}{}, done: make(chan struct{})}
	if isCamera {
		sub, err := m.cameras.Subscribe(cameraID, cameraFPS)
		if err != nil {
			return Created{}, fmt.Errorf("%w: source %q: %v", ErrBadInput, req.Source, err)
		}
		m.feeds.Add(1)
		go m.feed(e, sub)
	}
	m.sessions[id] = e
	return Created{ID: id, Status: Waiting, Source: s.source, Challenges: s.challenges, ExpiresAt: s.expires.UTC()}, nil
}

// feed analyses a camera's frames for a camera-mode session until the
// session finishes, the camera stops or the manager does.
func (m *Manager) feed(e *entry, sub *camera.Subscription) {
	defer m.feeds.Done()
	defer sub.Close()
	id, created := e.s.id, e.s.created
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-e.done:
			return
		case f, ok := <-sub.Frames():
			if !ok {
				e.mu.Lock()
				ended := m.endLocked(e, Failed, "the camera stopped")
				e.mu.Unlock()
				if ended {
					m.finish(m.ctx, e)
				}
				return
			}
			ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
			g, err := m.Frame(ctx, id, f.Mat, max(0, f.Time.Sub(created).Milliseconds()))
			cancel()
			f.Mat.Close()
			if errors.Is(err, ErrFinished) || g.Status.Finished() {
				return
			}
			if err != nil {
				m.log.Warn("liveness session: camera frame", "session", id, "err", err)
			}
		}
	}
}

// expiryGrace is how much longer than its time limit a session lives on the
// wall clock, for frames in flight over a slow network.
const expiryGrace = 10 * time.Second

// Frame analyses one frame of a session. tMS is the capture time in
// milliseconds, or negative for the arrival time.
func (m *Manager) Frame(ctx context.Context, id string, img gocv.Mat, tMS int64) (Guidance, error) {
	e, err := m.entry(id)
	if err != nil {
		return Guidance{}, err
	}
	e.work.Lock()
	defer e.work.Unlock()
	e.mu.Lock()
	s := e.s
	if s.status.Finished() {
		g := s.guidance
		e.mu.Unlock()
		return g, fmt.Errorf("%w: it is %s", ErrFinished, g.Status)
	}
	t := m.now().Sub(s.created)
	if tMS >= 0 {
		t = time.Duration(tMS) * time.Millisecond
	}
	if s.started && t < s.last {
		e.mu.Unlock()
		return Guidance{}, fmt.Errorf("%w: t_ms %d is earlier than the previous frame's %d", ErrBadInput, tMS, s.last.Milliseconds())
	}
	what := s.plan(&m.cfg, t)
	e.mu.Unlock()

	obs, err := m.analyzer.Observe(ctx, img, what)
	if err != nil {
		return Guidance{}, fmt.Errorf("session %s: %w", id, err)
	}

	e.mu.Lock()
	if s.status.Finished() { // canceled or expired while the frame was analysed
		g := s.guidance
		e.mu.Unlock()
		return g, nil
	}
	if obs.Face != nil {
		if what.Embedding {
			s.lastEmb = t
		}
		if what.Device {
			s.lastDev = t
		}
	}
	g := s.frame(&m.cfg, obs, t, m.analyzer.Calibration())
	if s.wantBestShot && s.ev.bestChanged && obs.Face != nil {
		// A crop that fails to encode leaves the previous one.
		if b, err := faceCrop(img, obs.Face.Box); err == nil {
			s.bestShot = b
		}
	}
	finished := s.status.Finished()
	m.broadcastLocked(e, g)
	e.mu.Unlock()
	if finished {
		m.finish(ctx, e)
	}
	return g, nil
}

// View is a session's state for GET.
type View struct {
	Created
	Step        int         `json:"step"`
	Steps       int         `json:"steps"`
	Instruction Instruction `json:"instruction"`
	Progress    float64     `json:"progress"`
	Result      *Result     `json:"result,omitempty"`
	// BestShot is the best frame's face as a base64 JPEG, when the session
	// asked for it.
	BestShot string `json:"best_shot,omitempty"`
}

// Get returns a session's state.
func (m *Manager) Get(id string) (View, error) {
	e, err := m.entry(id)
	if err != nil {
		return View{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return viewOf(e.s), nil
}

func viewOf(s *session) View {
	g := s.guidance
	return View{
		Created: Created{ID: s.id, Status: s.status, Source: s.source, Challenges: s.challenges, ExpiresAt: s.expires.UTC()},
		Step:    g.Step, Steps: s.steps(), Instruction: g.Instruction, Progress: g.Progress, Result: s.result,
		BestShot: base64.StdEncoding.EncodeToString(s.bestShot),
	}
}

// Cancel ends a session as canceled; a finished session stays as it is.
func (m *Manager) Cancel(ctx context.Context, id string) (View, error) {
	e, err := m.entry(id)
	if err != nil {
		return View{}, err
	}
	e.mu.Lock()
	ended := m.endLocked(e, Canceled, "canceled by the client")
	v := viewOf(e.s)
	e.mu.Unlock()
	if ended {
		m.finish(ctx, e)
	}
	return v, nil
}

// endLocked ends an unfinished session with status; it reports whether it did.
func (m *Manager) endLocked(e *entry, status Status, reason string) bool {
	s := e.s
	if s.status.Finished() {
		return false
	}
	s.decide(&m.cfg, m.analyzer.Calibration(), status, reason)
	g := s.guidance
	g.Status, g.Progress, g.Result, g.Instruction = s.status, 1, s.result, instruction("done")
	s.guidance = g
	m.broadcastLocked(e, g)
	return true
}

// finish records the end of a session and tells the sink, once.
func (m *Manager) finish(ctx context.Context, e *entry) {
	e.mu.Lock()
	s := e.s
	if !s.finished.IsZero() {
		e.mu.Unlock()
		return
	}
	s.finished = m.now()
	f := Finished{
		ID: s.id, Source: s.source, Challenges: s.challenges, Status: s.status, Result: s.result,
		Created: s.created.UTC(), Finished: s.finished.UTC(),
	}
	for ch := range e.subs {
		close(ch)
		delete(e.subs, ch)
	}
	close(e.done)
	e.mu.Unlock()
	m.log.Info("liveness session finished", "session", f.ID, "status", f.Status, "reason", f.Result.Reason, "frames", f.Result.Frames)
	if m.sink != nil {
		if err := m.sink.SessionFinished(ctx, f); err != nil {
			m.log.Warn("liveness session result not queued", "session", f.ID, "err", err)
		}
	}
}

// Subscribe streams a session's guidance until it finishes (the channel is
// then closed) or cancel is called. The first value is the current state.
func (m *Manager) Subscribe(id string) (<-chan Guidance, func(), error) {
	e, err := m.entry(id)
	if err != nil {
		return nil, nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := make(chan Guidance, 8)
	ch <- e.s.guidance
	if e.s.status.Finished() {
		close(ch)
		return ch, func() {}, nil
	}
	if len(e.subs) >= maxSubscribers {
		return nil, nil, fmt.Errorf("%w: at most %d event streams per session", ErrTooMany, maxSubscribers)
	}
	e.subs[ch] = struct{}{}
	return ch, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, ok := e.subs[ch]; ok {
			delete(e.subs, ch)
			close(ch)
		}
	}, nil
}

// broadcastLocked sends g to every subscriber without waiting: a slow
// reader loses intermediate guidance, never the stream.
func (m *Manager) broadcastLocked(e *entry, g Guidance) {
	for ch := range e.subs {
		select {
		case ch <- g:
		default:
			select { // drop the oldest, keep the newest
			case <-ch:
			default:
			}
			select {
			case ch <- g:
			default:
			}
		}
	}
}

func (m *Manager) entry(id string) (*entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.sessions[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return e, nil
}

// Run expires sessions past their time and forgets finished ones after
// the result TTL, until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	defer m.feeds.Wait()
	defer m.stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.sweep(ctx)
		}
	}
}

func (m *Manager) sweep(ctx context.Context) {
	now := m.now()
	var ended []*entry
	m.mu.Lock()
	for id, e := range m.sessions {
		e.mu.Lock()
		s := e.s
		if !s.status.Finished() && now.After(s.expires) {
			if m.endLocked(e, Expired, "no decision before the session expired") {
				ended = append(ended, e)
			}
		} else if !s.finished.IsZero() && now.Sub(s.finished) > m.cfg.ResultTTL {
			delete(m.sessions, id)
		}
		e.mu.Unlock()
	}
	m.mu.Unlock()
	for _, e := range ended {
		m.finish(ctx, e)
	}
}

func newID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// draw picks n distinct challenges at random.
func draw(pool []string, n int) ([]string, error) {
	rest := append([]string{}, pool...)
	var out []string
	for len(out) < n && len(rest) > 0 {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(rest))))
		if err != nil {
			return nil, fmt.Errorf("draw challenges: %w", err)
		}
		i := int(k.Int64())
		out = append(out, rest[i])
		rest = append(rest[:i], rest[i+1:]...)
	}
	return out, nil
}
