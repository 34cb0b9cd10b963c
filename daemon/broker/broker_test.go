package broker

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(&strings.Builder{}, &slog.HandlerOptions{Level: slog.LevelError}))
}

func connect(t *testing.T, url, id string, will bool) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetAutoReconnect(false).SetConnectTimeout(2 * time.Second)
	if will {
		o.SetWill("box/availability", "offline", 1, true)
	}
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	return c
}

func TestBrokerRoundTrips(t *testing.T) {
	b, err := Start("127.0.0.1:0", quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !strings.HasPrefix(b.Addr(), "127.0.0.1:") || strings.HasSuffix(b.Addr(), ":0") {
		t.Fatalf("address %q", b.Addr())
	}

	// A publisher whose connection dies without DISCONNECT, through a proxy we can cut.
	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := proxy.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", b.Addr())
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			go func() { buf := make([]byte, 4096); copyConn(up, c, buf) }()
			go func() { buf := make([]byte, 4096); copyConn(c, up, buf) }()
		}
	}()
	pub := connect(t, "tcp://"+proxy.Addr().String(), "pub", true)
	if tok := pub.Publish("box/availability", 1, true, "online"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	for i := 0; i < 3; i++ {
		if tok := pub.Publish("box/events", 1, false, fmt.Sprint(i)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}

	got := make(chan string, 10)
	sub := connect(t, b.URL(), "sub", false)
	defer sub.Disconnect(100)
	tok := sub.Subscribe("box/availability", 1, func(_ paho.Client, m paho.Message) {
		got <- fmt.Sprintf("%s retained=%v", m.Payload(), m.Retained())
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	expect := func(want string) {
		t.Helper()
		select {
		case m := <-got:
			if m != want {
				t.Fatalf("got %q, want %q", m, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no message, want %q", want)
		}
	}
	expect("online retained=true")

	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	expect("offline retained=false") // the last will

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("broker still accepts connections after Close")
	}
}

func copyConn(dst, src net.Conn, buf []byte) {
	defer dst.Close()
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func TestBrokerRefusesBadAddresses(t *testing.T) {
	if _, err := Start("0.0.0.0:0", quietLogger()); err == nil {
		t.Error("non-loopback address accepted")
	}
	b, err := Start("127.0.0.1:0", quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := Start(b.Addr(), quietLogger()); err == nil {
		t.Error("second broker on a taken port started")
	}
}
