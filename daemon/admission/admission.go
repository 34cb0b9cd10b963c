// Package admission owns how much work the HTTP server takes on at once: a
// bounded wait queue in front of the processing slots, and a global budget
// of request-body bytes being read, so that memory stays bounded whatever
// the number of clients and an overload is answered with a fast 503.
package admission

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ErrQueueFull is returned at once when every slot is busy and the wait
// queue holds its maximum.
var ErrQueueFull = errors.New("server busy: the wait queue is full")

// ErrQueueTimeout is returned when no slot freed up within the queue timeout.
var ErrQueueTimeout = errors.New("server busy: no processing slot freed up in time")

// Queue hands out processing slots; at most maxQueue requests wait for one.
type Queue struct {
	slots    chan struct{}
	admitted chan struct{} // slots + waiting
	timeout  time.Duration
}

// NewQueue returns a queue of slots processing slots with room for
// maxQueue waiting requests, each waiting at most timeout.
func NewQueue(slots, maxQueue int, timeout time.Duration) *Queue {
	return &Queue{slots: make(chan struct{}, slots), admitted: make(chan struct{}, slots+maxQueue), timeout: timeout}
}

// Acquire takes a slot, waiting in the queue within timeout and ctx; the
// release func gives it back.
func (q *Queue) Acquire(ctx context.Context) (release func(), err error) {
	select {
	case q.admitted <- struct{}{}:
	default:
		return nil, ErrQueueFull
	}
	release = func() { <-q.slots; <-q.admitted }
	select {
	case q.slots <- struct{}{}:
		return release, nil
	default:
	}
	t := time.NewTimer(q.timeout)
	defer t.Stop()
	select {
	case q.slots <- struct{}{}:
		return release, nil
	case <-t.C:
		<-q.admitted
		return nil, ErrQueueTimeout
	case <-ctx.Done():
		<-q.admitted
		return nil, ctx.Err()
	}
}

// Waiting is how many requests wait for a slot now.
func (q *Queue) Waiting() int { return max(0, len(q.admitted)-len(q.slots)) }

// Budget is a counting semaphore of bytes.
type Budget struct {
	mu      sync.Mutex
	limit   int64
	used    int64
	changed chan struct{} // closed and replaced on every release
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget {
	return &Budget{limit: limit, changed: make(chan struct{})}
}

// ErrBusy is returned by a request body's Read when its bytes did not fit
// the in-flight budget within the wait. It is a timeout (net.Error-like),
// so handlers that map read timeouts to 503 treat it the same way.
var ErrBusy error = busyError{}

type busyError struct{}

func (busyError) Error() string   { return "server busy: too many request bodies being read" }
func (busyError) Timeout() bool   { return true }
func (busyError) Temporary() bool { return true }

// Acquire reserves n bytes (at most the whole budget), waiting within ctx.
func (b *Budget) Acquire(ctx context.Context, n int64) (release func(), err error) {
	n = min(n, b.limit)
	for {
		b.mu.Lock()
		if b.used+n <= b.limit {
			b.used += n
			b.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { b.release(n) }) }, nil
		}
		wait := b.changed
		b.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (b *Budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// Used is how many bytes are reserved now.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// BodyLimits configures Bodies.
type BodyLimits struct {
	// Budget bounds the bytes of all bodies being read at once.
	Budget *Budget
	// Reserve is what a body of unknown length (chunked) reserves, and the
	// most any body reserves: the largest body a route accepts.
	Reserve int64
	// Wait is how long a body waits for room in the budget.
	Wait time.Duration
	// ReadTimeout is how long reading a body may take once it has room; it
	// starts at the first read, not when the request arrived, so a request
	// waiting for a processing slot is not cut off.
	ReadTimeout time.Duration
}

// Bodies wraps next so that a request body reserves its bytes from the
// budget when the handler first reads it, and gives them back when the
// handler returns. A read that finds no room within Wait fails with ErrBusy.
func Bodies(l BodyLimits, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		n := l.Reserve
		if r.ContentLength > 0 {
			n = min(r.ContentLength, l.Reserve)
		}
		body := &budgetBody{ReadCloser: r.Body, limits: l, n: n, ctx: r.Context(), rc: http.NewResponseController(w)}
		defer body.done()
		r.Body = body
		next.ServeHTTP(w, r)
		if !strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
			body.drain()
		}
	})
}

// A body the handler left unread (it answered early: too large, not
// found, unauthorized, ...) is read and thrown away, up to MaxDrainBytes
// within DrainTimeout, before the answer goes out: a client that sends its
// whole body before reading then gets the answer instead of a connection
// reset. A client that waits for "100 Continue" never sent it.
const (
	MaxDrainBytes = 32 << 20
	DrainTimeout  = 10 * time.Second
)

func (b *budgetBody) drain() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.eof || b.err != nil { // read to the end, or refused as busy
		return
	}
	b.rc.SetReadDeadline(time.Now().Add(DrainTimeout))
	io.CopyN(io.Discard, b.ReadCloser, MaxDrainBytes)
	b.eof = true
}

type budgetBody struct {
	io.ReadCloser
	limits  BodyLimits
	n       int64
	ctx     context.Context
	rc      *http.ResponseController
	mu      sync.Mutex
	started bool
	eof     bool
	err     error
	release func()
}

func (b *budgetBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if !b.started {
		b.started = true
		ctx, cancel := context.WithTimeout(b.ctx, b.limits.Wait)
		b.release, b.err = b.limits.Budget.Acquire(ctx, b.n)
		cancel()
		if b.err != nil {
			b.err = ErrBusy
		} else if b.limits.ReadTimeout > 0 {
			b.rc.SetReadDeadline(time.Now().Add(b.limits.ReadTimeout))
		}
	}
	err := b.err
	b.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.mu.Lock()
		b.eof = true
		b.mu.Unlock()
	}
	return n, err
}

func (b *budgetBody) done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.started = true
	if b.release != nil {
		b.release()
	}
	if b.err == nil {
		b.err = errors.New("request body read after the handler returned")
	}
}
