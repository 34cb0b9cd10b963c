package mqtt

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"imageapid/daemon/broker"
	"imageapid/internal/testenv"
)

type trackEvent struct {
	Type   string `json:"type"`
	Camera string `json:"camera"`
	N      int    `json:"n"`
}

type gotEvent struct {
	EventID  string `json:"event_id"`
	DeviceID string `json:"device_id"`
	trackEvent
}

func newTestPublisher(t *testing.T, url, dir string, mutate func(*Options)) *Publisher {
	t.Helper()
	opts := Options{
		URL:            url,
		DeviceID:       "box1",
		OutboxDir:      dir,
		ConnectTimeout: time.Second,
		PublishTimeout: 2 * time.Second,
		ReconnectMin:   50 * time.Millisecond,
		ReconnectMax:   300 * time.Millisecond,
		Logger:         testLogger(t),
	}
	if mutate != nil {
		mutate(&opts)
	}
	p, err := New(testContext(t, 2*time.Minute), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(testContext(t, 3*time.Second)) })
	return p
}

func publishEvents(t *testing.T, p *Publisher, from, to int) {
	t.Helper()
	for n := from; n < to; n++ {
		start := time.Now()
		if err := p.PublishEvent(trackEvent{Type: "track_update", Camera: "front", N: n}); err != nil {
			t.Fatalf("event %d: %v", n, err)
		}
		// Enqueueing touches only the disk (one fsync), never the network.
		if d := time.Since(start); d > time.Second {
			t.Errorf("PublishEvent took %s", d)
		}
	}
}

// checkEvents asserts that the events arrived once each, with n = from..to-1
// in order, and with strictly increasing event ids.
func checkEvents(t *testing.T, msgs []received, from, to int) {
	t.Helper()
	var ns []int
	prevID := ""
	for _, m := range msgs {
		var ev gotEvent
		if err := json.Unmarshal([]byte(m.payload), &ev); err != nil {
			t.Fatalf("event payload %q: %v", m.payload, err)
		}
		if ev.DeviceID != "box1" || ev.Type != "track_update" || ev.Camera != "front" {
			t.Errorf("event fields: %+v", ev)
		}
		if len(ev.EventID) != 26 || ev.EventID <= prevID {
			t.Errorf("event id %q after %q: want 26 characters, increasing", ev.EventID, prevID)
		}
		prevID = ev.EventID
		ns = append(ns, ev.N)
	}
	var want []int
	for n := from; n < to; n++ {
		want = append(want, n)
	}
	if fmt.Sprint(ns) != fmt.Sprint(want) {
		t.Fatalf("events received (n):\n got %v\nwant %v", ns, want)
	}
}

type brokerUnderTest struct {
	name  string
	start func(t *testing.T) (url string)
}

var brokers = []brokerUnderTest{
	{"mosquitto", func(t *testing.T) string { return startMosquitto(t, testenv.FreePort(t)).URL() }},
	{"embedded", func(t *testing.T) string {
		b, err := broker.Start("127.0.0.1:0", testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b.URL()
	}},
}

// TestRetainedTopics checks what Home Assistant and a late subscriber see:
// availability, camera state, counts and discovery, all retained, and the
// last will when the connection dies without a DISCONNECT.
func TestRetainedTopics(t *testing.T) {
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			brokerURL := b.start(t)
			g := newGate(t, strings.TrimPrefix(brokerURL, "tcp://"))
			live := subscribe(t, brokerURL, "#")
			p := newTestPublisher(t, g.URL(), t.TempDir(), nil)
			prefix := "imageapid/box1"
			if p.Prefix() != prefix {
				t.Fatalf("prefix %q, want %q", p.Prefix(), prefix)
			}

			if err := p.PublishDiscovery([]CameraInfo{{ID: "front", Name: "Front door"}, {ID: "back"}}); err != nil {
				t.Fatal(err)
			}
			if err := p.PublishCameraState("front", CameraState{Connected: true, FPS: 14.5, DroppedFrames: 3, LastError: "timeout"}); err != nil {
				t.Fatal(err)
			}
			if err := p.UpdateCounts("front", 2, 1); err != nil {
				t.Fatal(err)
			}
			if err := p.PublishCameraState("bad/id", CameraState{}); err == nil {
				t.Error("camera id with '/' accepted")
			}
			countsTopic := prefix + "/cameras/front/counts"
			testenv.WaitFor(t, 10*time.Second, "counts at the live subscriber", func() bool {
				m, ok := live.last(countsTopic)
				return ok && m.payload == `{"faces":2,"people":1,"presence":true}`
			})

			snap := retainedSnapshot(t, brokerURL, "#")
			if m := snap[prefix+"/availability"]; m.payload != "online" {
				t.Errorf("retained availability %q, want online", m.payload)
			}
			var st CameraState
			if err := json.Unmarshal([]byte(snap[prefix+"/cameras/front/state"].payload), &st); err != nil {
				t.Fatalf("retained camera state: %v", err)
			}
			if st != (CameraState{Connected: true, FPS: 14.5, DroppedFrames: 3, LastError: "timeout"}) {
				t.Errorf("retained camera state %+v", st)
			}
			var counts countsPayload
			if err := json.Unmarshal([]byte(snap[countsTopic].payload), &counts); err != nil || counts != (countsPayload{2, 1, true}) {
				t.Errorf("retained counts %q (%v)", snap[countsTopic].payload, err)
			}
			checkDiscovery(t, snap, prefix, []string{"front", "back"})

			// Connection cut without DISCONNECT: the broker publishes the will.
			g.setOpen(false)
			testenv.WaitFor(t, 10*time.Second, "last will offline", func() bool {
				m, ok := live.last(prefix + "/availability")
				return ok && m.payload == "offline"
			})
			if m := retainedSnapshot(t, brokerURL, prefix+"/availability")[prefix+"/availability"]; m.payload != "offline" {
				t.Errorf("retained availability after the connection died: %q, want offline", m.payload)
			}
			// Back online: availability and every retained message come back.
			g.setOpen(true)
			testenv.WaitFor(t, 10*time.Second, "online again", func() bool {
				m, ok := live.last(prefix + "/availability")
				return ok && m.payload == "online"
			})

			// Dropping a camera removes its entities and retained state.
			if err := p.UpdateCounts("front", 0, 0); err != nil {
				t.Fatal(err)
			}
			if err := p.PublishDiscovery([]CameraInfo{{ID: "front", Name: "Front door"}}); err != nil {
				t.Fatal(err)
			}
			testenv.WaitFor(t, 10*time.Second, "counts update", func() bool {
				m, ok := live.last(countsTopic)
				return ok && m.payload == `{"faces":0,"people":0,"presence":false}`
			})
			testenv.WaitFor(t, 10*time.Second, "back camera removal", func() bool {
				m, ok := live.last("homeassistant/binary_sensor/imageapid_box1/back_presence/config")
				return ok && m.payload == ""
			})
			snap = retainedSnapshot(t, brokerURL, "#")
			checkDiscovery(t, snap, prefix, []string{"front"})
			for topic := range snap {
				if strings.Contains(topic, "back") {
					t.Errorf("retained %s survives the camera's removal", topic)
				}
			}

			if err := p.Close(testContext(t, 5*time.Second)); err != nil {
				t.Fatalf("close: %v", err)
			}
			if m := retainedSnapshot(t, brokerURL, prefix+"/availability")[prefix+"/availability"]; m.payload != "offline" {
				t.Errorf("retained availability after Close: %q, want offline", m.payload)
			}
			if err := p.PublishEvent(trackEvent{}); !errors.Is(err, ErrClosed) {
				t.Errorf("PublishEvent after Close: %v, want ErrClosed", err)
			}
		})
	}
}

func checkDiscovery(t *testing.T, snap map[string]received, prefix string, cameras []string) {
	t.Helper()
	n := 0
	for topic := range snap {
		if strings.HasPrefix(topic, "homeassistant/") {
			n++
		}
	}
	if n != 3*len(cameras) {
		t.Errorf("%d retained discovery configs, want %d", n, 3*len(cameras))
	}
	for _, cam := range cameras {
		for _, e := range []struct{ component, object, field string }{
			{"sensor", "faces", "faces"}, {"sensor", "people", "people"}, {"binary_sensor", "presence", "presence"},
		} {
			topic := fmt.Sprintf("homeassistant/%s/imageapid_box1/%s_%s/config", e.component, cam, e.object)
			m, ok := snap[topic]
			if !ok {
				t.Errorf("no retained discovery config at %s", topic)
				continue
			}
			var cfg haEntity
			if err := json.Unmarshal([]byte(m.payload), &cfg); err != nil {
				t.Errorf("%s: %v", topic, err)
				continue
			}
			if cfg.AvailabilityTopic != prefix+"/availability" || cfg.PayloadAvailable != "online" || cfg.PayloadNotAvailable != "offline" {
				t.Errorf("%s availability: %+v", topic, cfg)
			}
			if cfg.StateTopic != prefix+"/cameras/"+cam+"/counts" {
				t.Errorf("%s state topic %q", topic, cfg.StateTopic)
			}
			if !strings.Contains(cfg.ValueTemplate, "value_json."+e.field) {
				t.Errorf("%s value template %q does not read %q", topic, cfg.ValueTemplate, e.field)
			}
			if cfg.UniqueID != "imageapid_box1_"+cam+"_"+e.object || len(cfg.Device.Identifiers) != 1 {
				t.Errorf("%s ids: unique %q device %v", topic, cfg.UniqueID, cfg.Device.Identifiers)
			}
		}
	}
}

// TestEventsInOrder checks QoS 1 events on a healthy broker.
func TestEventsInOrder(t *testing.T) {
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			brokerURL := b.start(t)
			sub := subscribe(t, brokerURL, "imageapid/box1/events")
			p := newTestPublisher(t, brokerURL, t.TempDir(), nil)
			publishEvents(t, p, 0, 200)
			testenv.WaitFor(t, 20*time.Second, "200 events", func() bool { return len(sub.messages()) >= 200 })
			if err := p.Close(testContext(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			checkEvents(t, sub.messages(), 0, 200)
			if st := p.Stats(); st.Delivered != 200 || st.QueueDepth != 0 || st.Dropped != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// outage is how long TestEventsSurviveMinuteBrokerOutage keeps the broker
// down: the 60 s unless -outage says otherwise.
var outage = flag.Duration("outage", 60*time.Second, "broker outage of TestEventsSurviveMinuteBrokerOutage")

// TestEventsSurviveBrokerOutage kills mosquitto for about ten seconds while
// events keep coming, restarts it on the same port, and expects every event
// exactly once, in order.
func TestEventsSurviveBrokerOutage(t *testing.T) {
	t.Parallel()
	brokerOutage(t, 10*time.Second, 10*time.Second, nil)
}

// TestEventsSurviveMinuteBrokerOutage is the fault test: mosquitto
// down for 60 s (-outage) while ten events a second keep coming, with the
// publisher's shipped reconnect settings (backoff up to 10 s). After the
// broker returns every event arrives once, in order: none lost, none that
// was acknowledged before the outage sent again.
func TestEventsSurviveMinuteBrokerOutage(t *testing.T) {
	t.Parallel()
	brokerOutage(t, *outage, 30*time.Second, func(o *Options) {
		o.ConnectTimeout, o.PublishTimeout, o.ReconnectMin, o.ReconnectMax = 0, 0, 0, 0 // the defaults
	})
}

// brokerOutage delivers 20 events, kills mosquitto, publishes one event
// every 100 ms for down, restarts mosquitto and expects all of them within
// catchUp of the publisher being let back in.
func brokerOutage(t *testing.T, down, catchUp time.Duration, mutate func(*Options)) {
	mq := startMosquitto(t, testenv.FreePort(t))
	g := newGate(t, mq.Addr())
	sub := subscribe(t, mq.URL(), "imageapid/box1/events")
	p := newTestPublisher(t, g.URL(), t.TempDir(), mutate)

	publishEvents(t, p, 0, 20)
	testenv.WaitFor(t, 10*time.Second, "first 20 events delivered", func() bool { return p.Stats().Delivered == 20 })
	// Acknowledged is not yet passed on: kill the broker only once the
	// subscriber has them (see TestOutboxSurvivesRestart).
	testenv.WaitFor(t, 10*time.Second, "first 20 events received", func() bool { return len(sub.messages()) >= 20 })

	mq.Kill()
	testenv.WaitFor(t, 10*time.Second, "publisher to notice", func() bool { return !p.Stats().Connected })
	start := time.Now()
	n := 20
	for ; time.Since(start) < down; n++ {
		publishEvents(t, p, n, n+1)
		time.Sleep(100 * time.Millisecond)
	}
	if st := p.Stats(); st.QueueDepth != n-20 || st.Connected || st.Delivered != 20 {
		t.Fatalf("during the outage: %+v, want %d queued", st, n-20)
	}
	// Keep the publisher out until the subscriber is back, so it sees everything.
	g.setOpen(false)
	mq.Restart()
	t.Logf("broker down for %s, %d events queued meanwhile", time.Since(start).Round(100*time.Millisecond), n-20)
	testenv.WaitFor(t, 10*time.Second, "subscriber back", func() bool { return sub.subscriptions() >= 2 })
	g.setOpen(true)
	back := time.Now()
	for len(sub.messages()) < n {
		if time.Since(back) > catchUp {
			t.Fatalf("%s after the broker came back the subscriber has %d of %d events; publisher %+v",
				catchUp, len(sub.messages()), n, p.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("all %d events delivered %s after the broker let the publisher in", n, time.Since(back).Round(10*time.Millisecond))
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive now
	checkEvents(t, sub.messages(), 0, n)
	if st := p.Stats(); st.Delivered != uint64(n) || st.QueueDepth != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestOutboxSurvivesRestart closes the publisher while the broker is down,
// opens a new one on the same outbox, and expects the old events first, once.
func TestOutboxSurvivesRestart(t *testing.T) {
	t.Parallel()
	mq := startMosquitto(t, testenv.FreePort(t))
	g := newGate(t, mq.Addr())
	sub := subscribe(t, mq.URL(), "imageapid/box1/events")
	dir := t.TempDir()
	first := newTestPublisher(t, g.URL(), dir, nil)
	publishEvents(t, first, 0, 5)
	testenv.WaitFor(t, 10*time.Second, "first 5 events delivered", func() bool { return first.Stats().Delivered == 5 })
	// The broker acknowledges an event when it takes charge of it, which may
	// be before it has passed it on; killed then (no persistence), it loses
	// it. Kill it only once the subscriber has the five.
	testenv.WaitFor(t, 10*time.Second, "first 5 events received", func() bool { return len(sub.messages()) >= 5 })

	mq.Kill()
	testenv.WaitFor(t, 10*time.Second, "publisher to notice", func() bool { return !first.Stats().Connected })
	publishEvents(t, first, 5, 15)
	start := time.Now()
	err := first.Close(testContext(t, time.Second))
	if err == nil || !strings.Contains(err.Error(), "10 events stay in the outbox") {
		t.Errorf("Close with the broker down: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %s with a 1 s deadline", d)
	}

	second := newTestPublisher(t, g.URL(), dir, nil)
	if st := second.Stats(); st.QueueDepth != 10 {
		t.Fatalf("reopened outbox holds %d events, want 10", st.QueueDepth)
	}
	publishEvents(t, second, 15, 25)
	g.setOpen(false)
	mq.Restart()
	testenv.WaitFor(t, 10*time.Second, "subscriber back", func() bool { return sub.subscriptions() >= 2 })
	g.setOpen(true)
	// Said in full when it fails (seen once on a loaded CI run): how far
	// the publisher got and whether the subscriber is still subscribed.
	for deadline := time.Now().Add(20 * time.Second); len(sub.messages()) < 25; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s the subscriber has %d of 25 events (subscribed %d times); publisher %+v",
				len(sub.messages()), sub.subscriptions(), second.Stats())
		}
	}
	if err := second.Close(testContext(t, 5*time.Second)); err != nil {
		t.Errorf("clean close: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	checkEvents(t, sub.messages(), 0, 25)

	// A third start has nothing left to send.
	third := newTestPublisher(t, g.URL(), dir, nil)
	if st := third.Stats(); st.QueueDepth != 0 {
		t.Errorf("after delivery the outbox still holds %d events", st.QueueDepth)
	}
}

// TestOutboxFullDropsOldest fills a small outbox while no broker listens:
// the oldest events go, the counter says how many, the rest arrive in order.
func TestOutboxFullDropsOldest(t *testing.T) {
	t.Parallel()
	port := testenv.FreePort(t)
	g := newGate(t, fmt.Sprintf("127.0.0.1:%d", port))
	g.setOpen(false)
	p := newTestPublisher(t, g.URL(), t.TempDir(), func(o *Options) { o.OutboxMaxEntries = 5 })
	publishEvents(t, p, 0, 8)
	if st := p.Stats(); st.Dropped != 3 || st.QueueDepth != 5 || st.Delivered != 0 {
		t.Fatalf("stats %+v, want 3 dropped and 5 queued", st)
	}
	mq := startMosquitto(t, port)
	sub := subscribe(t, mq.URL(), "imageapid/box1/events")
	g.setOpen(true)
	testenv.WaitFor(t, 10*time.Second, "5 surviving events", func() bool { return len(sub.messages()) >= 5 })
	time.Sleep(300 * time.Millisecond)
	checkEvents(t, sub.messages(), 3, 8)
	if st := p.Stats(); st.Dropped != 3 || st.Delivered != 5 || st.QueueDepth != 0 {
		t.Errorf("stats %+v, want 3 dropped, 5 delivered", st)
	}
}

func TestPublishEventEnvelope(t *testing.T) {
	t.Parallel()
	p := newTestPublisher(t, fmt.Sprintf("tcp://127.0.0.1:%d", testenv.FreePort(t)), t.TempDir(), nil)
	if err := p.PublishEvent(map[string]any{"event_id": "x"}); err == nil {
		t.Error("reserved key event_id accepted")
	}
	if err := p.PublishEvent([]int{1}); err == nil {
		t.Error("non-object event accepted")
	}
	if err := p.PublishEvent(struct{}{}); err != nil {
		t.Errorf("empty object: %v", err)
	}
	rec, ok, err := p.outbox.Peek()
	if err != nil || !ok {
		t.Fatalf("peek: %v %v", ok, err)
	}
	var got map[string]any
	if err := json.Unmarshal(rec.payload, &got); err != nil || len(got) != 2 || got["device_id"] != "box1" {
		t.Errorf("envelope of {}: %s (%v)", rec.payload, err)
	}
}
