package mqtt

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"imageapid/daemon/broker"
)

// Delivery through the outbox against a bare QoS 1 publish on the same
// embedded broker: the ratio is what durability (two fsyncs per event) costs.
//
//	go test -run '^$' -bench 'Delivery' -benchtime 2s ./daemon/mqtt
func BenchmarkDelivery(b *testing.B) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	br, err := broker.Start("127.0.0.1:0", quiet)
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	payload := []byte(`{"type":"track_update","camera":"front","track":17,"faces":1}`)

	b.Run("baseline=paho-qos1", func(b *testing.B) {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(br.URL()).SetClientID("bench-raw"))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			b.Fatal(tok.Error())
		}
		defer c.Disconnect(100)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if tok := c.Publish("bench/events", 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				b.Fatal(tok.Error())
			}
		}
	})

	b.Run("outbox", func(b *testing.B) {
		p, err := New(context.Background(), Options{URL: br.URL(), DeviceID: "bench", OutboxDir: b.TempDir(), Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close(context.Background())
		deadline := time.Now().Add(5 * time.Second)
		for !p.Stats().Connected && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		ev := map[string]any{"type": "track_update", "camera": "front", "track": 17, "faces": 1}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := p.PublishEvent(ev); err != nil {
				b.Fatal(err)
			}
		}
		want := uint64(b.N)
		deadline = time.Now().Add(time.Minute)
		for p.Stats().Delivered < want {
			if time.Now().After(deadline) {
				b.Fatal(fmt.Sprintf("delivered %d of %d", p.Stats().Delivered, want))
			}
			time.Sleep(time.Millisecond)
		}
	})
}
