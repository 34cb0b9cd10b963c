package camera

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"time"
)

// BuildFunc turns a camera's config (its Estimators, mostly) into the
// analysis it runs. The Manager calls it once per camera start.
type BuildFunc func(cfg Config) (Analysis, error)

// ManagerOptions are what every camera of a Manager shares.
type ManagerOptions struct {
	Build   BuildFunc   // required
	Sink    EventSink   // optional
	OnState func(State) // optional; must not block
	Logger  *slog.Logger
	// StateInterval is how often OnState hears about each running camera [5s].
	StateInterval time.Duration
}

// Manager runs a set of cameras and changes it at run time.
type Manager struct {
	opts ManagerOptions
	ids  *idGen
	log  *slog.Logger

	mu      sync.Mutex
	cameras map[string]*Camera
	closed  bool
}

// NewManager returns a Manager with no cameras.
func NewManager(opts ManagerOptions) (*Manager, error) {
	if opts.Build == nil {
		return nil, errors.New("camera manager: no BuildFunc")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{opts: opts, ids: newIDGen(), log: opts.Logger, cameras: map[string]*Camera{}}, nil
}

// Add starts a camera. Its id must be new.
func (m *Manager) Add(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("camera manager: closed")
	}
	if _, ok := m.cameras[cfg.ID]; ok {
		return fmt.Errorf("camera %s: already running", cfg.ID)
	}
	return m.startLocked(cfg)
}

func (m *Manager) startLocked(cfg Config) error {
	an, err := m.opts.Build(cfg)
	if err != nil {
		return fmt.Errorf("camera %s: build analysis: %w", cfg.ID, err)
	}
	c, err := StartCamera(cfg, an, Options{
		Sink: m.opts.Sink, OnState: m.opts.OnState, Logger: m.log, StateInterval: m.opts.StateInterval, ids: m.ids,
	})
	if err != nil {
		if an.Release != nil {
			an.Release()
		}
		return err
	}
	m.cameras[cfg.ID] = c
	m.log.Info("camera started", "camera", cfg.ID, "source", c.src.String())
	return nil
}

// Remove stops a camera and forgets it; see Camera.Stop for ctx.
func (m *Manager) Remove(ctx context.Context, id string) error {
	m.mu.Lock()
	c, ok := m.cameras[id]
	delete(m.cameras, id)
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("camera %s: not running", id)
	}
	m.log.Info("camera stopping", "camera", id)
	return c.Stop(ctx)
}

// Apply makes the running cameras match cfgs (a reload): cameras no longer
// listed stop, new ones start, changed ones restart, and unchanged ones keep
// running untouched. It returns every error met; the others still apply.
func (m *Manager) Apply(ctx context.Context, cfgs []Config) error {
	want := map[string]Config{}
	var errs []error
	for _, cfg := range cfgs {
		if err := cfg.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := want[cfg.ID]; dup {
			errs = append(errs, fmt.Errorf("camera %s: listed twice", cfg.ID))
			continue
		}
		want[cfg.ID] = cfg
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errors.New("camera manager: closed")
	}
	var stopping []*Camera
	for id, c := range m.cameras {
		cfg, keep := want[id]
		if keep && reflect.DeepEqual(cfg.withDefaults(), c.cfg) {
			delete(want, id)
			continue
		}
		stopping = append(stopping, c)
		delete(m.cameras, id)
	}
	m.mu.Unlock()
	errs = append(errs, stopAll(ctx, stopping)...)
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if m.closed {
			break
		}
		if _, running := m.cameras[id]; running { // added meanwhile
			continue
		}
		if err := m.startLocked(want[id]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stopAll stops cameras in parallel, so one slow camera does not hold the others.
func stopAll(ctx context.Context, cams []*Camera) []error {
	errc := make(chan error, len(cams))
	for _, c := range cams {
		go func() { errc <- c.Stop(ctx) }()
	}
	var errs []error
	for range cams {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Close stops every camera; the Manager accepts no more.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	cams := make([]*Camera, 0, len(m.cameras))
	for _, c := range m.cameras {
		cams = append(cams, c)
	}
	clear(m.cameras)
	m.mu.Unlock()
	return errors.Join(stopAll(ctx, cams)...)
}

func (m *Manager) sorted() []*Camera {
	m.mu.Lock()
	defer m.mu.Unlock()
	cams := make([]*Camera, 0, len(m.cameras))
	for _, c := range m.cameras {
		cams = append(cams, c)
	}
	sort.Slice(cams, func(i, j int) bool { return cams[i].cfg.ID < cams[j].cfg.ID })
	return cams
}

// Camera returns a running camera by id.
func (m *Manager) Camera(id string) (*Camera, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.cameras[id]
	return c, ok
}

// States returns every running camera's state, by id.
func (m *Manager) States() []State {
	cams := m.sorted()
	out := make([]State, len(cams))
	for i, c := range cams {
		out[i] = c.State()
	}
	return out
}

// Stats returns every running camera's counters, by id.
func (m *Manager) Stats() []Stats {
	cams := m.sorted()
	out := make([]Stats, len(cams))
	for i, c := range cams {
		out[i] = c.Stats()
	}
	return out
}

// LastProgress is the oldest progress of the running cameras (now when
// there are none), for the systemd watchdog: ping only while it is recent.
func (m *Manager) LastProgress() time.Time {
	p := time.Now()
	for _, c := range m.sorted() {
		if lp := c.LastProgress(); lp.Before(p) {
			p = lp
		}
	}
	return p
}
