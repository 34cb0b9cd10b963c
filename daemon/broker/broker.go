// Package broker owns the embedded MQTT broker: the appliance starts it on a
// loopback address when no external broker is configured, so the publisher and
// local consumers (Home Assistant on the same box, scripts) always have one.
// It accepts every client (loopback only) and keeps no state on disk.
package broker

import (
	"fmt"
	"log/slog"
	"net"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// DefaultAddr is where the embedded broker listens when the config names no broker.
const DefaultAddr = "127.0.0.1:1883"

// Broker is a running embedded MQTT broker.
type Broker struct {
	server    *mochi.Server
	addr      string
	closeOnce sync.Once
	closeErr  error
}

// Start listens on addr (host:port; port 0 picks a free one) and serves MQTT
// 3.1.1 and 5 until Close. addr must be a loopback address: the broker lets
// every client in.
func Start(addr string, logger *slog.Logger) (*Broker, error) {
	if logger == nil {
		logger = slog.Default()
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("embedded broker address %q: allows anonymous clients, so it listens on loopback only", addr)
	}
	// Bind here so a taken port is an error from Start and port 0 resolves.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker listen %s: %w", addr, err)
	}
	bound := ln.Addr().String()

	server := mochi.New(&mochi.Options{
		Logger:       logger.With("component", "mqtt-broker"),
		InlineClient: false,
	})
	if err := server.AddHook(new(auth.AllowHook), nil); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("embedded broker auth hook: %w", err)
	}
	if err := server.AddListener(listeners.NewNet("tcp", ln)); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("embedded broker listener %s: %w", bound, err)
	}
	if err := server.Serve(); err != nil {
		_ = server.Close()
		return nil, fmt.Errorf("embedded broker serve %s: %w", bound, err)
	}
	return &Broker{server: server, addr: bound}, nil
}

// Addr is the host:port the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// URL is the address in the form the MQTT publisher takes.
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Close disconnects every client and stops listening. Later calls do nothing.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		if err := b.server.Close(); err != nil {
			b.closeErr = fmt.Errorf("embedded broker close: %w", err)
		}
	})
	return b.closeErr
}
