package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Mosquitto is a real Debian mosquitto running in the foreground on a loopback port.
type Mosquitto struct {
	t    testing.TB
	port int
	conf string
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// StartMosquitto starts mosquitto on port with extra lines for its listener
// (TLS, passwords), stopping it when the test ends.
func StartMosquitto(t testing.TB, port int, extra string) *Mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/mosquitto"); err2 != nil {
			t.Fatalf("mosquitto not installed (scripts/deps.sh installs it): %v", err)
		}
		bin = "/usr/sbin/mosquitto"
	}
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n%s", port, extra)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Mosquitto{t: t, port: port, conf: conf}
	m.start(bin)
	t.Cleanup(m.Kill)
	return m
}

func (m *Mosquitto) start(bin string) {
	m.t.Helper()
	m.out = new(bytes.Buffer)
	m.cmd = exec.Command(bin, "-c", m.conf)
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	m.done = make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", m.Addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-m.done:
			m.t.Fatalf("mosquitto exited: %s", m.out)
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto did not listen on %s: %s", m.Addr(), m.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart starts a killed mosquitto again on the same port.
func (m *Mosquitto) Restart() { m.start(m.cmd.Path) }

// Addr is host:port; URL is tcp://host:port.
func (m *Mosquitto) Addr() string { return "127.0.0.1:" + strconv.Itoa(m.port) }
func (m *Mosquitto) URL() string  { return "tcp://" + m.Addr() }

// Kill stops mosquitto with SIGKILL, like a crash or power cut of the broker.
func (m *Mosquitto) Kill() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Kill()
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		m.t.Errorf("mosquitto did not exit after SIGKILL")
	}
}
