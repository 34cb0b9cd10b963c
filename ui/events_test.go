package ui_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"imageapid/ui"
)

// sseLines opens url and sends every non-empty line it reads.
func sseLines(t *testing.T, url string, hdr map[string]string) (<-chan string, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if sc.Text() != "" {
				lines <- sc.Text()
			}
		}
	}()
	return lines, resp
}

// nextData returns the next data line, failing after timeout.
func nextData(t *testing.T, lines <-chan string, timeout time.Duration) string {
	t.Helper()
	_, d := nextEvent(t, lines, timeout)
	return d
}

// nextEvent returns the next message's id and data line.
func nextEvent(t *testing.T, lines <-chan string, timeout time.Duration) (id, data string) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the stream ended")
			}
			if v, ok := strings.CutPrefix(l, "id: "); ok {
				id = v
			}
			if d, ok := strings.CutPrefix(l, "data: "); ok {
				return id, d
			}
		case <-deadline:
			t.Fatalf("no data line within %v", timeout)
		}
	}
}

func event(cam, kind string, n int) []byte {
	return fmt.Appendf(nil, `{"camera_id":%q,"type":%q,"n":%d}`, cam, kind, n)
}

// A stream starts with the kept events, then gets new ones live, filtered
// by camera and kind; a reconnect with Last-Event-ID resumes after it.
func TestEventStreamFiltersAndResumes(t *testing.T) {
	hub := ui.NewEventHub(ui.EventOptions{Recent: 3})
	srv := httptest.NewServer(hub)
	t.Cleanup(srv.Close)      // after the streams' own cleanups
	for i := 1; i <= 5; i++ { // only the last 3 are kept
		hub.Publish("a", "track_new", event("a", "track_new", i))
	}
	lines, resp := sseLines(t, srv.URL+ui.EventsPath, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for i := 3; i <= 5; i++ {
		if d := nextData(t, lines, 2*time.Second); d != string(event("a", "track_new", i)) {
			t.Fatalf("kept event %d: got %s", i, d)
		}
	}
	filtered, _ := sseLines(t, srv.URL+ui.EventsPath+"?camera=b&kind=track_end,track_update", nil)
	waitSubscribers(t, hub, 2)
	hub.Publish("a", "track_end", event("a", "track_end", 6))
	hub.Publish("b", "track_new", event("b", "track_new", 7))
	hub.Publish("b", "track_end", event("b", "track_end", 8))
	if d := nextData(t, filtered, 2*time.Second); d != string(event("b", "track_end", 8)) {
		t.Errorf("the filtered stream got %s first, want event 8", d)
	}
	sixth, _ := nextEvent(t, lines, 2*time.Second)
	for i := 7; i <= 8; i++ {
		nextData(t, lines, 2*time.Second)
	}
	// Resuming after the sixth event replays the seventh and eighth only.
	resumed, _ := sseLines(t, srv.URL+ui.EventsPath, map[string]string{"Last-Event-ID": sixth})
	if d := nextData(t, resumed, 2*time.Second); d != string(event("b", "track_new", 7)) {
		t.Errorf("resumed after id %s with %s", sixth, d)
	}
	// An id from another run replays everything kept (the last three).
	other, _ := sseLines(t, srv.URL+ui.EventsPath, map[string]string{"Last-Event-ID": "earlier-7"})
	if d := nextData(t, other, 2*time.Second); d != string(event("a", "track_end", 6)) {
		t.Errorf("an unknown Last-Event-ID replayed %s first, want event 6", d)
	}
}

// A subscriber that does not read loses events (and is told how many)
// while Publish never waits; the subscriber limit answers 429; bad
// queries answer 400; Close ends the open streams.
func TestEventStreamBounds(t *testing.T) {
	hub := ui.NewEventHub(ui.EventOptions{MaxSubscribers: 2, Buffer: 4, Recent: 1})
	srv := httptest.NewServer(hub)
	t.Cleanup(srv.Close) // after the streams' own cleanups
	slow, _ := sseLines(t, srv.URL+ui.EventsPath, nil)
	waitSubscribers(t, hub, 1)
	big := fmt.Appendf(nil, `{"pad":%q}`, strings.Repeat("x", 16<<10)) // fills the socket buffers quickly
	start := time.Now()
	for i := 0; i < 2000; i++ {
		hub.Publish("a", "track_update", big)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("2000 publishes to a stalled subscriber took %v", took)
	}
	sawDropped := false
	for deadline := time.After(10 * time.Second); !sawDropped; {
		select {
		case l := <-slow:
			sawDropped = l == "event: dropped"
		case <-deadline:
			t.Fatal("the slow stream was never told it dropped events")
		}
	}
	second, _ := sseLines(t, srv.URL+ui.EventsPath, nil)
	waitSubscribers(t, hub, 2)
	resp, err := http.Get(srv.URL + ui.EventsPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a third stream: %d, want 429", resp.StatusCode)
	}
	for _, q := range []string{"?camera=a/b", "?kind=" + strings.Repeat("k", 65), "?since=1", "?camera=" + manyNames(40)} {
		resp, err := http.Get(srv.URL + ui.EventsPath + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", q, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+ui.EventsPath, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %v %v", err, resp)
	}
	hub.Close()
	for deadline := time.After(5 * time.Second); ; {
		select {
		case _, ok := <-second:
			if ok {
				continue
			}
		case <-deadline:
			t.Fatal("Close did not end an open stream")
		}
		break
	}
}

func waitSubscribers(t *testing.T, hub *ui.EventHub, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for hub.Subscribers() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers, want %d", hub.Subscribers(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// InView keeps the most in view per bucket and carries counts through
// buckets without events.
func TestInViewHistory(t *testing.T) {
	v := ui.NewInView(time.Minute, 10*time.Second)
	t0 := time.Unix(1_000_000, 0)
	v.Set("a", 0, 0, t0)
	v.Set("a", 2, 1, t0.Add(time.Second))
	v.Set("a", 1, 1, t0.Add(2*time.Second))
	v.Set("a", 0, 3, t0.Add(25*time.Second))
	s := v.Snapshot(t0.Add(45 * time.Second))["a"]
	// Buckets of 10 s: before t0, [t0, t0+10) with the peak of 2 faces,
	// one carried through, the one of the change to 0 faces and 3 people
	// (which also saw the 1 face carried into it), and two carried.
	want := "[0 2 1 1 0 0]/[0 1 1 3 3 3]"
	if got := fmt.Sprint(s.Faces) + "/" + fmt.Sprint(s.People); got != want {
		t.Errorf("faces/people %s, want %s", got, want)
	}
	if s.FacesNow != 0 || s.PeopleNow != 3 {
		t.Errorf("now %d faces %d people", s.FacesNow, s.PeopleNow)
	}
	later := v.Snapshot(t0.Add(time.Hour))["a"]
	if fmt.Sprint(later.People) != "[3 3 3 3 3 3]" {
		t.Errorf("an hour without events: %v", later.People)
	}
}

func TestMaskSecrets(t *testing.T) {
	type mqtt struct {
		URL      string `yaml:"url"`
		Username string `yaml:"username"`
		Password string `yaml:"password"`
	}
	type cam struct {
		URL string `yaml:"url"`
	}
	cfg := struct {
		MQTT    mqtt              `yaml:"mqtt"`
		Cameras []cam             `yaml:"cameras"`
		Extra   map[string]string `yaml:"extra"`
	}{
		MQTT:    mqtt{URL: "ssl://bob:pw1@broker:8883", Username: "bob", Password: "pw2"},
		Cameras: []cam{{URL: "rtsp://admin:pw3@10.0.0.2:554/h264?token=pw4&profile=1"}, {URL: "/dev/video0"}},
		Extra:   map[string]string{"api_token": "pw5", "empty_password": ""},
	}
	tree, err := ui.ConfigTree(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprint(tree)
	for _, secret := range []string{"pw1", "pw2", "pw3", "pw4", "pw5"} {
		if strings.Contains(s, secret) {
			t.Errorf("%s shows in %s", secret, s)
		}
	}
	for _, kept := range []string{"bob", "broker:8883", "10.0.0.2:554/h264", "profile=1", "/dev/video0"} {
		if !strings.Contains(s, kept) {
			t.Errorf("%s was masked too: %s", kept, s)
		}
	}
}

func manyNames(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("c%d", i)
	}
	return strings.Join(names, ",")
}
