package admission_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"imageapid/daemon/admission"
)

func TestQueueBoundsTheWaiters(t *testing.T) {
	q := admission.NewQueue(1, 2, 200*time.Millisecond)
	ctx := context.Background()
	release, err := q.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 2)
	for range 2 {
		go func() {
			rel, err := q.Acquire(ctx)
			if err == nil {
				defer rel()
				time.Sleep(10 * time.Millisecond)
			}
			got <- err
		}()
	}
	deadline := time.Now().Add(2 * time.Second)
	for q.Waiting() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if _, err := q.Acquire(ctx); !errors.Is(err, admission.ErrQueueFull) {
		t.Fatalf("a third waiter: %v, want ErrQueueFull", err)
	}
	if d := time.Since(start); d > 20*time.Millisecond {
		t.Errorf("a full queue must refuse at once, took %v", d)
	}
	release()
	for range 2 {
		if err := <-got; err != nil {
			t.Errorf("a waiter: %v", err)
		}
	}
}

func TestQueueTimeout(t *testing.T) {
	q := admission.NewQueue(1, 4, 50*time.Millisecond)
	release, _ := q.Acquire(context.Background())
	defer release()
	start := time.Now()
	if _, err := q.Acquire(context.Background()); !errors.Is(err, admission.ErrQueueTimeout) {
		t.Fatalf("%v, want ErrQueueTimeout", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > time.Second {
		t.Errorf("waited %v, want about 50ms", d)
	}
	if q.Waiting() != 0 {
		t.Errorf("a timed-out waiter left the queue at %d", q.Waiting())
	}
}

func TestBudget(t *testing.T) {
	b := admission.NewBudget(100)
	r1, _ := b.Acquire(context.Background(), 60)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := b.Acquire(ctx, 60); err == nil {
		t.Fatal("60 more bytes do not fit in 100 with 60 taken")
	}
	done := make(chan struct{})
	go func() {
		r2, err := b.Acquire(context.Background(), 60)
		if err == nil {
			r2()
		}
		close(done)
	}()
	time.Sleep(10 * time.Millisecond)
	r1()
	r1() // releasing twice gives back once
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("a release must wake a waiter")
	}
	if b.Used() != 0 {
		t.Errorf("used %d after every release", b.Used())
	}
	rAll, _ := b.Acquire(context.Background(), 1000) // capped at the whole budget
	rAll()
}

// TestBodiesOverHTTP: a body that finds the budget full fails its read with
// a timeout error (ErrBusy), and the budget is given back when the handler
// returns.
func TestBodiesOverHTTP(t *testing.T) {
	budget := admission.NewBudget(1000)
	h := admission.Bodies(admission.BodyLimits{Budget: budget, Reserve: 1000, Wait: 50 * time.Millisecond, ReadTimeout: time.Second},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, err := io.ReadAll(r.Body)
			var ne net.Error
			switch {
			case err == nil:
				io.WriteString(w, "read")
			case errors.As(err, &ne) && ne.Timeout():
				w.WriteHeader(503)
			default:
				w.WriteHeader(400)
			}
		}))
	ts := httptest.NewServer(h)
	defer ts.Close()
	post := func() int {
		resp, err := http.Post(ts.URL, "text/plain", strings.NewReader(strings.Repeat("x", 600)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post(); s != 200 || budget.Used() != 0 {
		t.Fatalf("a body within the budget: %d, %d bytes left reserved", s, budget.Used())
	}
	hold, _ := budget.Acquire(context.Background(), 500)
	if s := post(); s != 503 {
		t.Errorf("a body that does not fit: %d, want 503", s)
	}
	hold()
	if s := post(); s != 200 {
		t.Errorf("after the release: %d", s)
	}
}

// TestBodyReadTimeoutStartsAtTheFirstRead: a handler that waits longer than
// ReadTimeout before reading still reads a body sent at once.
func TestBodyReadTimeoutStartsAtTheFirstRead(t *testing.T) {
	h := admission.Bodies(admission.BodyLimits{Budget: admission.NewBudget(1 << 20), Reserve: 1 << 20, Wait: time.Second, ReadTimeout: 100 * time.Millisecond},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(250 * time.Millisecond)
			if _, err := io.ReadAll(r.Body); err != nil {
				w.WriteHeader(503)
			}
		}))
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ReadHeaderTimeout = time.Second
	ts.Start()
	defer ts.Close()
	resp, err := http.Post(ts.URL, "text/plain", strings.NewReader(strings.Repeat("x", 300_000)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("%d, want 200", resp.StatusCode)
	}
}

// TestUnreadBodyIsDrained: a handler that answers without reading gets its
// answer to a client that sends the whole (large) body first.
func TestUnreadBodyIsDrained(t *testing.T) {
	h := admission.Bodies(admission.BodyLimits{Budget: admission.NewBudget(1 << 20), Reserve: 1 << 20, Wait: time.Second, ReadTimeout: time.Second},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusRequestEntityTooLarge) }))
	ts := httptest.NewServer(h)
	defer ts.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	const size = 8 << 20
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n\r\n")
	chunk := make([]byte, 64<<10)
	for sent := 0; sent < size; sent += len(chunk) {
		if _, err := conn.Write(chunk); err != nil {
			t.Fatalf("reset while sending: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	buf := make([]byte, 12)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "HTTP/1.1 413" {
		t.Fatalf("got %q, %v", buf, err)
	}
}
