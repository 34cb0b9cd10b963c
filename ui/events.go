package ui

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EventsPath is the live event stream.
const EventsPath = "/v1/events/stream"

// EventOptions bound the event fan-out. Zero values take the defaults in brackets.
type EventOptions struct {
	// MaxSubscribers caps the open event streams [16].
	MaxSubscribers int
	// Buffer is how many events wait for one slow subscriber before the
	// newer ones are dropped for it [64].
	Buffer int
	// Recent is how many of the latest events a new stream starts with [100].
	Recent int
	// Heartbeat is how often an idle stream gets a comment line, so proxies
	// keep it open and a gone client is noticed [15s].
	Heartbeat time.Duration
}

func (o EventOptions) withDefaults() EventOptions {
	if o.MaxSubscribers <= 0 {
		o.MaxSubscribers = 16
	}
	if o.Buffer <= 0 {
		o.Buffer = 64
	}
	if o.Recent <= 0 {
		o.Recent = 100
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	return o
}

// writeTimeout bounds one write to a stream's client.
const writeTimeout = 10 * time.Second

var errHubClosed = errors.New("the daemon is stopping")

// liveEvent is one event as the hub keeps it: the JSON the MQTT publisher
// sent (or would send), with what the filters look at.
type liveEvent struct {
	seq    uint64
	camera string
	kind   string
	data   []byte
}

// EventHub fans the appliance's events out to server-sent event streams
// (GET /v1/events/stream) and keeps the latest ones for streams that open
// later. Publish never blocks: a subscriber whose buffer is full misses
// events (and is told how many), so a slow browser cannot hold the camera
// pipeline.
type EventHub struct {
	opts EventOptions

	mu     sync.Mutex
	seq    uint64
	recent []liveEvent // ring of the latest opts.Recent events
	next   int         // where the next event goes in recent
	subs   map[*eventSub]struct{}
	closed bool
	done   chan struct{} // closed by Close
	// epoch tells this hub's event ids from those of an earlier run.
	epoch string
}

type eventSub struct {
	filter  eventFilter
	ch      chan liveEvent
	dropped uint64 // under the hub's lock
}

// NewEventHub returns a hub with no subscribers.
func NewEventHub(opts EventOptions) *EventHub {
	opts = opts.withDefaults()
	return &EventHub{opts: opts, recent: make([]liveEvent, 0, opts.Recent), subs: map[*eventSub]struct{}{}, done: make(chan struct{}),
		epoch: strconv.FormatInt(time.Now().UnixNano(), 36)}
}

// Close ends every open stream and refuses new ones (the daemon is
// stopping: an open console must not hold the HTTP server's shutdown).
func (h *EventHub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
}

// Publish hands one event to every matching stream. data is a JSON object
// (one line); the hub keeps it, so the caller must not change it.
func (h *EventHub) Publish(camera, kind string, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	e := liveEvent{seq: h.seq, camera: camera, kind: kind, data: data}
	if len(h.recent) < h.opts.Recent {
		h.recent = append(h.recent, e)
	} else {
		h.recent[h.next] = e
	}
	h.next = (h.next + 1) % h.opts.Recent
	for s := range h.subs {
		if !s.filter.match(e) {
			continue
		}
		select {
		case s.ch <- e:
		default:
			s.dropped++
		}
	}
}

// Subscribers is the number of open streams.
func (h *EventHub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// subscribe registers a stream and returns the kept events it should see
// first: those after the sequence number after (a reconnecting
// EventSource's Last-Event-ID), or all kept ones when after is 0.
func (h *EventHub) subscribe(f eventFilter, after uint64) (*eventSub, []liveEvent, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, errHubClosed
	}
	if len(h.subs) >= h.opts.MaxSubscribers {
		return nil, nil, fmt.Errorf("%d event streams are open (the limit)", h.opts.MaxSubscribers)
	}
	s := &eventSub{filter: f, ch: make(chan liveEvent, h.opts.Buffer)}
	h.subs[s] = struct{}{}
	var backlog []liveEvent
	n := len(h.recent)
	for i := 0; i < n; i++ {
		e := h.recent[(h.next-n+i+len(h.recent))%len(h.recent)]
		if e.seq > after && f.match(e) {
			backlog = append(backlog, e)
		}
	}
	return s, backlog, nil
}

func (h *EventHub) unsubscribe(s *eventSub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// takeDropped returns and resets the events s missed.
func (h *EventHub) takeDropped(s *eventSub) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := s.dropped
	s.dropped = 0
	return n
}

// eventFilter keeps events whose camera and kind are in its sets (an empty
// set keeps all).
type eventFilter struct {
	cameras map[string]bool
	kinds   map[string]bool
}

func (f eventFilter) match(e liveEvent) bool {
	return (len(f.cameras) == 0 || f.cameras[e.camera]) && (len(f.kinds) == 0 || f.kinds[e.kind])
}

var filterValue = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// parseSet reads a query parameter given once or more, each a
// comma-separated list.
func parseSet(name string, values []string) (map[string]bool, error) {
	if len(values) == 0 {
		return nil, nil
	}
	set := map[string]bool{}
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			if !filterValue.MatchString(item) || len(set) >= 32 {
				return nil, fmt.Errorf("query parameter %s: %q is not a list of at most 32 names (letters, digits, '_', '-', '.')", name, v)
			}
			set[item] = true
		}
	}
	return set, nil
}

// ServeHTTP serves GET /v1/events/stream as server-sent events: one
// "message" per event whose data is the event's JSON, with the id
// <run>-<sequence number> (so a reconnecting EventSource resumes after the
// last one it saw, and one reconnecting to a restarted daemon gets all
// the kept events), and a "dropped" event saying how many events a
// slow reader missed. ?camera=a,b and ?kind=track_new,track_end filter.
func (h *EventHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != EventsPath {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "camera" && k != "kind" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q (use camera and kind)", k))
			return
		}
	}
	var (
		f   eventFilter
		err error
	)
	if f.cameras, err = parseSet("camera", q["camera"]); err == nil {
		f.kinds, err = parseSet("kind", q["kind"])
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// An id from another run of the daemon (or none) replays every kept event.
	var after uint64
	if epoch, seq, ok := strings.Cut(r.Header.Get("Last-Event-ID"), "-"); ok && epoch == h.epoch {
		after, _ = strconv.ParseUint(seq, 10, 64)
	}
	sub, backlog, err := h.subscribe(f, after)
	if errors.Is(err, errHubClosed) {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	} else if err != nil {
		writeError(w, http.StatusTooManyRequests, err.Error())
		return
	}
	defer h.unsubscribe(sub)

	setSecurityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	write := func(b []byte) bool {
		// A reader that stopped reading (a frozen tab) is cut off rather
		// than holding its slot and the daemon's shutdown.
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte("retry: 2000\n\n")) {
		return
	}
	for _, e := range backlog {
		if !write(formatEvent(h.epoch, e)) {
			return
		}
	}
	beat := time.NewTicker(h.opts.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case e := <-sub.ch:
			msg := formatEvent(h.epoch, e)
			if n := h.takeDropped(sub); n > 0 {
				msg = append(fmt.Appendf(nil, "event: dropped\ndata: {\"dropped\":%d}\n\n", n), msg...)
			}
			if !write(msg) {
				return
			}
		case <-beat.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		}
	}
}

// formatEvent writes one SSE message. The data is one line of JSON; any
// newline in it would end the field, so it is split over data lines.
func formatEvent(epoch string, e liveEvent) []byte {
	b := fmt.Appendf(nil, "id: %s-%d\n", epoch, e.seq)
	for _, line := range strings.Split(string(e.data), "\n") {
		b = append(b, "data: "...)
		b = append(b, line...)
		b = append(b, '\n')
	}
	return append(b, '\n')
}
