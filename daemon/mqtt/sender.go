package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Delivery guarantee: at least once, with duplicates confined to two narrow
// windows; never "at most once".
//
// The sender publishes the oldest outbox record with QoS 1, waits for its
// PUBACK, and only then writes the delivery mark (pwrite + fsync) and moves on.
// Marking before publishing would make a crash lose the event silently; marking
// after the PUBACK means a duplicate is possible when
//   - the process dies between the PUBACK and the mark write (a few
//     microseconds: the mark is written right after the token completes, and a
//     pwrite survives a process crash; only a power loss before the fsync ends
//     widens it to one fsync), or
//   - the connection drops after the broker accepted the message but before
//     its PUBACK reached us: QoS 1 resends it on the next connection. No
//     client-side trick removes this; QoS 2 would, but only as far as the
//     broker, and most consumers (Home Assistant included) subscribe at QoS 1.
//
// So exactly-once is not promised on the wire. Instead each event carries a
// unique, time-ordered "event_id": a consumer whose action must not repeat
// (opening a door on an identity event) keeps the last ids it acted on and
// ignores a repeat. We never publish an event again after its PUBACK was
// processed, which is the part the appliance controls.

// session is one broker connection. Each connection gets a fresh paho client
// (clean session, no auto-reconnect, in-memory store) so nothing is resent
// behind the outbox's back.
type session struct {
	client paho.Client
	lost   chan struct{}
	once   sync.Once
	mu     sync.Mutex
	conn   net.Conn
	err    error
}

func (s *session) markLost(err error) {
	s.once.Do(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.lost)
	})
}

func (s *session) lostErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		return errors.New("connection lost")
	}
	return fmt.Errorf("connection lost: %w", s.err)
}

// abort drops the TCP connection without an MQTT DISCONNECT, so the broker
// publishes our last will ("offline").
func (s *session) abort() {
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

func (p *Publisher) run(ctx context.Context) {
	defer close(p.done)
	delay := p.opts.ReconnectMin
	failures := 0
	for ctx.Err() == nil {
		s, err := p.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if p.draining() {
				// Shutting down: one attempt, no waiting for a broker that is away.
				p.logger.Warn("mqtt broker unreachable at shutdown; events stay in the outbox", "err", err,
					"queued_events", p.outbox.stats().depth)
				return
			}
			failures++
			if failures == 1 {
				p.logger.Warn("mqtt broker unreachable; events wait in the outbox", "url", p.redactedURL(), "err", err)
			} else {
				p.logger.Debug("mqtt reconnect failed", "url", p.redactedURL(), "attempt", failures, "err", err)
			}
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			case <-p.drain:
				t.Stop()
			}
			delay = min(2*delay, p.opts.ReconnectMax)
			continue
		}
		p.logger.Info("mqtt connected", "url", p.redactedURL(), "failed_attempts", failures, "queued_events", p.outbox.stats().depth)
		failures, delay = 0, p.opts.ReconnectMin
		p.setConnected(true)
		err = p.serve(ctx, s)
		p.setConnected(false)
		if err == nil {
			return // drained, said offline, disconnected
		}
		s.abort()
		if ctx.Err() == nil {
			p.logger.Warn("mqtt connection lost; events wait in the outbox", "err", err)
		}
	}
}

func (p *Publisher) draining() bool {
	select {
	case <-p.drain:
		return true
	default:
		return false
	}
}

func (p *Publisher) redactedURL() string {
	u, err := url.Parse(p.opts.URL)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

func (p *Publisher) setConnected(v bool) {
	p.mu.Lock()
	p.connected = v
	p.mu.Unlock()
}

func (p *Publisher) connect(ctx context.Context) (*session, error) {
	s := &session{lost: make(chan struct{})}
	o := paho.NewClientOptions().
		AddBroker(p.opts.URL).
		SetClientID(p.opts.ClientID).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(p.opts.KeepAlive).
		SetPingTimeout(min(p.opts.KeepAlive, 10*time.Second)).
		SetConnectTimeout(p.opts.ConnectTimeout).
		SetWriteTimeout(p.opts.PublishTimeout).
		SetWill(p.topicAvailability, availabilityOffline, 1, true).
		SetConnectionLostHandler(func(_ paho.Client, err error) { s.markLost(err) }).
		SetCustomOpenConnectionFn(func(uri *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			conn, err := p.dial(ctx, uri)
			if err != nil {
				return nil, err
			}
			s.mu.Lock()
			s.conn = conn
			s.mu.Unlock()
			return conn, nil
		})
	if p.opts.Username != "" {
		o.SetUsername(p.opts.Username).SetPassword(p.opts.Password)
	}
	s.client = paho.NewClient(o)
	tok := s.client.Connect()
	t := time.NewTimer(p.opts.ConnectTimeout + time.Second)
	defer t.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			s.abort()
			return nil, fmt.Errorf("connect %s: %w", p.redactedURL(), err)
		}
		return s, nil
	case <-ctx.Done():
		s.abort()
		return nil, ctx.Err()
	case <-t.C:
		s.abort()
		return nil, fmt.Errorf("connect %s: no CONNACK within %s", p.redactedURL(), p.opts.ConnectTimeout)
	}
}

func (p *Publisher) dial(ctx context.Context, uri *url.URL) (net.Conn, error) {
	d := &net.Dialer{Timeout: p.opts.ConnectTimeout, KeepAlive: 15 * time.Second}
	if p.tlsConfig == nil {
		return d.DialContext(ctx, "tcp", uri.Host)
	}
	td := &tls.Dialer{NetDialer: d, Config: p.tlsConfig.Clone()}
	return td.DialContext(ctx, "tcp", uri.Host)
}

// serve sends retained messages, then events, on one connection until it
// breaks (an error), or until Close asked to drain and everything is sent
// (nil, after "offline" and a clean DISCONNECT).
func (p *Publisher) serve(ctx context.Context, s *session) error {
	p.resendRetained()
	for {
		if topic, payload, version, ok := p.nextRetained(); ok {
			if err := p.publishWait(ctx, s, topic, payload, true); err != nil {
				return fmt.Errorf("publish %s: %w", topic, err)
			}
			p.retainedSent(topic, version)
			continue
		}
		rec, ok, err := p.outbox.Peek()
		if err != nil {
			return err
		}
		if ok {
			topic, payload := p.recordTopic(rec.payload)
			if err := p.publishWait(ctx, s, topic, payload, false); err != nil {
				return fmt.Errorf("publish %s: %w", topic, err)
			}
			if err := p.outbox.MarkDelivered(rec.seq); err != nil {
				p.logger.Error("mqtt outbox: delivery mark not persisted; a restart may send this event again", "seq", rec.seq, "err", err)
			}
			continue
		}
		if p.draining() {
			if err := p.publishWait(ctx, s, p.topicAvailability, []byte(availabilityOffline), true); err != nil {
				return fmt.Errorf("publish offline: %w", err)
			}
			s.client.Disconnect(250)
			p.logger.Info("mqtt disconnected cleanly")
			return nil
		}
		select {
		case <-p.wake:
		case <-p.drain:
		case <-s.lost:
			return s.lostErr()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// publishWait publishes with QoS 1 and waits for the PUBACK. A completed token
// wins over a lost connection or a timeout noticed at the same moment, so an
// acknowledged event is never counted as failed (and sent again).
func (p *Publisher) publishWait(ctx context.Context, s *session, topic string, payload []byte, retain bool) error {
	tok := s.client.Publish(topic, 1, retain, payload)
	t := time.NewTimer(p.opts.PublishTimeout)
	defer t.Stop()
	var why error
	select {
	case <-tok.Done():
		return tok.Error()
	case <-s.lost:
		why = s.lostErr()
	case <-ctx.Done():
		why = ctx.Err()
	case <-t.C:
		why = fmt.Errorf("no PUBACK within %s", p.opts.PublishTimeout)
	}
	select {
	case <-tok.Done():
		if tok.Error() == nil {
			return nil
		}
	default:
	}
	return why
}

func (p *Publisher) resendRetained() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.retained {
		m.sent = 0
	}
}

func (p *Publisher) nextRetained() (topic string, payload []byte, version uint64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.order {
		m := p.retained[t]
		if m.sent != m.version {
			return t, m.payload, m.version, true
		}
	}
	return "", nil, 0, false
}

// retainedSent records the broker's PUBACK for version of topic; a sent
// deletion (empty payload) is forgotten.
func (p *Publisher) retainedSent(topic string, version uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.retained[topic]
	if !ok || m.version != version {
		return
	}
	m.sent = version
	if len(m.payload) > 0 {
		return
	}
	delete(p.retained, topic)
	for i, t := range p.order {
		if t == topic {
			p.order = append(p.order[:i], p.order[i+1:]...)
			break
		}
	}
}
