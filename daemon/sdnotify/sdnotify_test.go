package sdnotify

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"imageapid/internal/testenv"
)

// notifySocket is a unixgram socket standing in for systemd's NOTIFY_SOCKET.
type notifySocket struct {
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []string
	done chan struct{}
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	s := &notifySocket{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-s.done })
	return s
}

func (s *notifySocket) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

func (s *notifySocket) count(msg string) int {
	n := 0
	for _, m := range s.messages() {
		if m == msg {
			n++
		}
	}
	return n
}

func TestNotifications(t *testing.T) {
	sock := listenNotify(t)
	n := New(nil)
	steps := []func() error{
		func() error { return n.Ready("serving 2 cameras") },
		func() error { return n.Status("camera front: reconnecting\nretry 3") },
		n.Reloading,
		func() error { return n.Ready("reloaded") },
		n.Stopping,
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	testenv.WaitFor(t, 5*time.Second, "5 notifications", func() bool { return len(sock.messages()) == 5 })
	got := sock.messages()
	want := []string{
		"READY=1\nSTATUS=serving 2 cameras",
		"STATUS=camera front: reconnecting retry 3",
		"", // reloading, checked below
		"READY=1\nSTATUS=reloaded",
		"STOPPING=1\nSTATUS=stopping",
	}
	for i := range want {
		if i == 2 {
			if !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading$`).MatchString(got[i]) {
				t.Errorf("reloading message %q", got[i])
			}
			continue
		}
		if got[i] != want[i] {
			t.Errorf("message %d: %q, want %q", i, got[i], want[i])
		}
	}
}

func TestNoSystemdIsNoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	t.Setenv("LISTEN_FDS", "")
	n := New(nil)
	if err := n.Ready("x"); err != nil {
		t.Errorf("Ready without systemd: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := n.RunWatchdog(ctx, func() error { return nil }); err != nil || time.Since(start) > time.Second {
		t.Errorf("RunWatchdog without WATCHDOG_USEC: %v after %s, want an immediate return", err, time.Since(start))
	}
	ln, err := ActivatedListener("http")
	if ln != nil || err != nil {
		t.Errorf("ActivatedListener without LISTEN_FDS: %v, %v", ln, err)
	}
}

// TestWatchdogStopsWhenPipelineStalls: pings every half WATCHDOG_USEC while
// healthy, none while the health check fails, and again after recovery.
func TestWatchdogStopsWhenPipelineStalls(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if d, err := WatchdogInterval(); err != nil || d != 100*time.Millisecond {
		t.Fatalf("interval %s (%v), want 100ms", d, err)
	}
	var stalled atomic.Bool
	healthy := func() error {
		if stalled.Load() {
			return errors.New("camera front: no frame for 12s")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	done := make(chan error)
	go func() { done <- New(nil).RunWatchdog(ctx, healthy) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunWatchdog: %v", err)
		}
	}()

	testenv.WaitFor(t, 5*time.Second, "3 pings", func() bool { return sock.count("WATCHDOG=1") >= 3 })
	stalled.Store(true)
	testenv.WaitFor(t, 5*time.Second, "stall status", func() bool {
		return sock.count("STATUS=stalled: camera front: no frame for 12s") == 1
	})
	before := sock.count("WATCHDOG=1")
	time.Sleep(600 * time.Millisecond) // six intervals
	if after := sock.count("WATCHDOG=1"); after != before {
		t.Fatalf("%d watchdog pings while stalled", after-before)
	}
	stalled.Store(false)
	testenv.WaitFor(t, 5*time.Second, "pings to resume", func() bool { return sock.count("WATCHDOG=1") >= before+2 })
	if sock.count("STATUS=running") != 1 {
		t.Errorf("no running status after recovery: %q", sock.messages())
	}
}

// TestActivatedListener runs this test binary under systemd-socket-activate
// with two sockets and checks that the child serves on the one named "http".
func TestActivatedListener(t *testing.T) {
	if os.Getenv("SDNOTIFY_ACTIVATION_CHILD") == "1" {
		activationChild()
		return
	}
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate not installed")
	}
	metricsPort, httpPort := testenv.FreePort(t), testenv.FreePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool,
		"-l", fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"-l", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--fdname=metrics:http",
		"-E", "SDNOTIFY_ACTIVATION_CHILD=1",
		os.Args[0], "-test.run=^TestActivatedListener$", "-test.count=1")
	out := new(strings.Builder)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	// The tool waits for the first connection before it starts the child.
	var conn net.Conn
	testenv.WaitFor(t, 10*time.Second, "the activation socket", func() bool {
		conn, err = net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort), time.Second)
		return err == nil
	})
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("read from the activated child: %v (output: %s)", err, out)
	}
	if want := fmt.Sprintf("served on 127.0.0.1:%d\n", httpPort); line != want {
		t.Fatalf("child said %q, want %q (output: %s)", line, want, out)
	}
}

// activationChild is the socket-activated process: it takes the "http"
// listener and answers one connection with the address it serves on.
func activationChild() {
	ln, err := ActivatedListener("http")
	if err != nil || ln == nil {
		fmt.Fprintf(os.Stderr, "no activated listener: %v\n", err)
		os.Exit(3)
	}
	if os.Getenv("LISTEN_FDS") != "" {
		fmt.Fprintln(os.Stderr, "LISTEN_FDS left in the environment")
		os.Exit(4)
	}
	conn, err := ln.Accept()
	if err != nil {
		os.Exit(5)
	}
	fmt.Fprintf(conn, "served on %s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, io.LimitReader(conn, 1))
	conn.Close()
	os.Exit(0)
}
