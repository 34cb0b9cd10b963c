package mqtt

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"imageapid/internal/testenv"
)

// The child half of TestOutboxSurvivesKill9 runs in its own process (this
// test binary again) so that it can be killed with SIGKILL: no Close, no
// flush, no deferred anything.
const childDirEnv, childURLEnv = "IMAGEAPID_OUTBOX_CHILD_DIR", "IMAGEAPID_OUTBOX_CHILD_URL"

func TestOutboxKillChild(t *testing.T) {
	dir, url := os.Getenv(childDirEnv), os.Getenv(childURLEnv)
	if dir == "" {
		t.Skip("the child process of TestOutboxSurvivesKill9; runs only under it")
	}
	p := newTestPublisher(t, url, filepath.Join(dir, "outbox"), nil)
	publishEvents(t, p, 0, 5)
	testenv.WaitFor(t, 20*time.Second, "5 events acknowledged", func() bool { return p.Stats().Delivered == 5 })
	os.WriteFile(filepath.Join(dir, "acked"), nil, 0o600)
	testenv.WaitFor(t, 20*time.Second, "the broker to go", func() bool { return !p.Stats().Connected })
	publishEvents(t, p, 5, 15)
	os.WriteFile(filepath.Join(dir, "queued"), nil, 0o600)
	time.Sleep(time.Minute) // killed here
}

// TestOutboxSurvivesKill9: a process acknowledged 5 events, queued 10 more
// while the broker was down, and was killed with SIGKILL. The next start
// sends exactly the 10, in order, and none of the 5 again.
func TestOutboxSurvivesKill9(t *testing.T) {
	if os.Getenv(childDirEnv) != "" {
		t.Skip("inside the child")
	}
	t.Parallel()
	mq := startMosquitto(t, testenv.FreePort(t))
	g := newGate(t, mq.Addr())
	sub := subscribe(t, mq.URL(), "imageapid/box1/events")
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run", "^TestOutboxKillChild$", "-test.v")
	child.Env = append(os.Environ(), childDirEnv+"="+dir, childURLEnv+"="+g.URL())
	out, _ := os.Create(filepath.Join(dir, "child.log"))
	child.Stdout, child.Stderr = out, out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	t.Cleanup(func() { child.Process.Kill() })
	exists := func(name string) func() bool {
		return func() bool { _, err := os.Stat(filepath.Join(dir, name)); return err == nil }
	}
	testenv.WaitFor(t, 60*time.Second, "the child's 5 acknowledged events", exists("acked"))
	testenv.WaitFor(t, 10*time.Second, "5 events at the subscriber", func() bool { return len(sub.messages()) >= 5 })
	mq.Kill()
	testenv.WaitFor(t, 30*time.Second, "the child to queue 10 events", exists("queued"))
	if err := child.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the child outlived SIGKILL")
	}

	g.setOpen(false)
	mq.Restart()
	testenv.WaitFor(t, 10*time.Second, "subscriber back", func() bool { return sub.subscriptions() >= 2 })
	g.setOpen(true)
	next := newTestPublisher(t, g.URL(), filepath.Join(dir, "outbox"), nil)
	if st := next.Stats(); st.QueueDepth != 10 {
		log, _ := os.ReadFile(filepath.Join(dir, "child.log"))
		t.Fatalf("after kill -9 the outbox holds %d events, want 10\nchild:\n%s", st.QueueDepth, log)
	}
	testenv.WaitFor(t, 20*time.Second, "all 15 events", func() bool { return len(sub.messages()) >= 15 })
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive now
	checkEvents(t, sub.messages(), 0, 15)
}
