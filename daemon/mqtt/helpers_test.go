package mqtt

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"imageapid/internal/testenv"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(b, "\n")))
	return len(b), nil
}

type mosquitto = testenv.Mosquitto

func startMosquitto(t *testing.T, port int) *mosquitto {
	return testenv.StartMosquitto(t, port, "")
}

func startMosquittoConf(t *testing.T, port int, extra string) *mosquitto {
	return testenv.StartMosquitto(t, port, extra)
}

// gate is a TCP proxy between the publisher and the broker. Closing it drops
// live connections without an MQTT DISCONNECT (so the broker sends the last
// will) and refuses new ones.
type gate struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	open   bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, target: target, open: true, conns: make(map[net.Conn]struct{})}
	g.wg.Add(1)
	go g.serve()
	t.Cleanup(func() {
		ln.Close()
		g.setOpen(false)
		g.wg.Wait()
	})
	return g
}

func (g *gate) URL() string { return "tcp://" + g.ln.Addr().String() }

func (g *gate) serve() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		open := g.open
		g.mu.Unlock()
		if !open {
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", g.target, time.Second)
		if err != nil {
			c.Close()
			continue
		}
		g.mu.Lock()
		g.conns[c], g.conns[up] = struct{}{}, struct{}{}
		g.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer g.wg.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			g.mu.Lock()
			delete(g.conns, dst)
			delete(g.conns, src)
			g.mu.Unlock()
		}
		g.wg.Add(2)
		go pipe(c, up)
		go pipe(up, c)
	}
}

func (g *gate) setOpen(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = open
	if !open {
		for c := range g.conns {
			c.Close()
		}
	}
}

// subscriber records what a paho client subscribed to filter receives; it
// reconnects and resubscribes after a broker restart.
type subscriber struct {
	t      *testing.T
	client paho.Client
	mu     sync.Mutex
	msgs   []received
	subs   int // successful subscriptions, one per connection
}

type received struct {
	topic    string
	payload  string
	retained bool
}

var subscriberSeq int64
var subscriberSeqMu sync.Mutex

func subscribe(t *testing.T, url, filter string) *subscriber {
	t.Helper()
	subscriberSeqMu.Lock()
	subscriberSeq++
	id := fmt.Sprintf("test-sub-%d-%d", os.Getpid(), subscriberSeq)
	subscriberSeqMu.Unlock()
	s := &subscriber{t: t}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond).
		SetOnConnectHandler(func(c paho.Client) {
			tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
				s.mu.Lock()
				s.msgs = append(s.msgs, received{m.Topic(), string(m.Payload()), m.Retained()})
				s.mu.Unlock()
			})
			if tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
				s.mu.Lock()
				s.subs++
				s.mu.Unlock()
			}
		})
	s.client = paho.NewClient(opts)
	s.client.Connect()
	testenv.WaitFor(t, 10*time.Second, "subscriber to subscribe", func() bool { return s.subscriptions() >= 1 })
	t.Cleanup(func() { s.client.Disconnect(100) })
	return s
}

func (s *subscriber) subscriptions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subs
}

func (s *subscriber) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

// last returns the newest message on topic.
func (s *subscriber) last(topic string) (received, bool) {
	msgs := s.messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].topic == topic {
			return msgs[i], true
		}
	}
	return received{}, false
}

func (s *subscriber) onTopic(topic string) []received {
	var out []received
	for _, m := range s.messages() {
		if m.topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// retainedSnapshot subscribes a fresh client, collects what the broker holds
// retained under filter, and returns it by topic.
func retainedSnapshot(t *testing.T, url, filter string) map[string]received {
	t.Helper()
	s := subscribe(t, url, filter)
	// Retained messages follow the SUBACK at once; a quiet period means all arrived.
	prev := -1
	for i := 0; i < 100; i++ {
		n := len(s.messages())
		if i >= 2 && n == prev {
			break
		}
		prev = n
		time.Sleep(100 * time.Millisecond)
	}
	s.client.Disconnect(50)
	out := make(map[string]received)
	for _, m := range s.messages() {
		if !m.retained {
			continue
		}
		out[m.topic] = m
	}
	return out
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
