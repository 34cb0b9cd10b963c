package camera

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"gocv.io/x/gocv"
)

// Frame is an analysed frame handed to a subscriber, with what the
// detectors found on it. The receiver owns Mat and closes it.
type Frame struct {
	Mat        gocv.Mat
	Time       time.Time
	Seq        uint64
	Detections []Detection
	// TrackIDs holds, per detection, the id of the confirmed track it
	// matched, or "" (a tentative track or no match).
	TrackIDs []string
}

// Subscription receives a camera's analysed frames at a capped rate. It
// holds at most one frame: a newer one replaces a frame not yet taken, so
// a slow reader sees fewer frames and never slows the camera down.
type Subscription struct {
	t        *tap
	ch       chan Frame
	interval time.Duration
	last     time.Time
	once     sync.Once
}

// Frames delivers the frames; it is closed when the subscription or the
// camera ends.
func (s *Subscription) Frames() <-chan Frame { return s.ch }

// Close ends the subscription and frees a frame still waiting.
func (s *Subscription) Close() {
	s.t.remove(s)
}

// tap fans analysed frames out to subscribers. Nothing is copied while
// nobody listens.
type tap struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	max    int
	closed bool
}

// ErrTooManySubscribers is returned past a camera's subscriber limit.
var ErrTooManySubscribers = errors.New("too many frame subscribers")

// maxSubscribers bounds the frame subscribers of one camera (previews and
// kiosk sessions): each costs a frame copy per delivery.
const maxSubscribers = 8

func newTap() *tap { return &tap{subs: map[*Subscription]struct{}{}, max: maxSubscribers} }

// Subscribe hands this camera's analysed frames to the caller at most
// maxFPS times a second (0: every analysed frame).
func (c *Camera) Subscribe(maxFPS float64) (*Subscription, error) {
	if maxFPS < 0 {
		return nil, fmt.Errorf("camera %s: frame rate %v is negative", c.cfg.ID, maxFPS)
	}
	s := &Subscription{t: c.tap, ch: make(chan Frame, 1)}
	if maxFPS > 0 {
		s.interval = time.Duration(float64(time.Second) / maxFPS)
	}
	c.tap.mu.Lock()
	defer c.tap.mu.Unlock()
	if c.tap.closed {
		return nil, fmt.Errorf("camera %s is stopped", c.cfg.ID)
	}
	if len(c.tap.subs) >= c.tap.max {
		return nil, fmt.Errorf("camera %s: %w (%d)", c.cfg.ID, ErrTooManySubscribers, c.tap.max)
	}
	c.tap.subs[s] = struct{}{}
	return s, nil
}

// offer gives a frame to every subscriber due one.
func (t *tap) offer(f *frame, dets []Detection, tracks []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for s := range t.subs {
		if s.interval > 0 && f.time.Sub(s.last) < s.interval {
			continue
		}
		s.last = f.time
		out := Frame{Mat: f.mat.Clone(), Time: f.time, Seq: f.seq, Detections: append([]Detection(nil), dets...),
			TrackIDs: append([]string(nil), tracks...)}
		select {
		case old := <-s.ch:
			old.Mat.Close()
		default:
		}
		s.ch <- out // room: this goroutine is the only sender, under t.mu
	}
}

func (t *tap) remove(s *Subscription) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.subs[s]; ok {
		delete(t.subs, s)
		s.finish()
	}
}

// close ends every subscription (the camera stopped).
func (t *tap) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for s := range t.subs {
		delete(t.subs, s)
		s.finish()
	}
}

// finish closes the channel and frees a frame still in it; called with t.mu held.
func (s *Subscription) finish() {
	s.once.Do(func() {
		select {
		case old := <-s.ch:
			old.Mat.Close()
		default:
		}
		close(s.ch)
	})
}
