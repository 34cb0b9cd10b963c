package mqtt

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const diskFullEnv = "IMAGEAPID_DISKFULL_CHILD_DIR"

// TestDiskFullChild runs with a file size limit (RLIMIT_FSIZE, set on
// itself before anything is written), so events.log cannot grow past 4 KB:
// the disk is "full" for it.
func TestDiskFullChild(t *testing.T) {
	dir := os.Getenv(diskFullEnv)
	if dir == "" {
		t.Skip("the child process of TestDiskFullDropsAndCounts; runs only under it")
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 4096, Max: 4096}); err != nil {
		t.Fatal(err)
	}
	// No broker: every event stays in the outbox until the disk refuses.
	p := newTestPublisher(t, "tcp://127.0.0.1:1", filepath.Join(dir, "outbox"), nil)
	failed := 0
	for n := range 100 {
		start := time.Now()
		if err := p.PublishEvent(trackEvent{Type: "track_update", Camera: "front", N: n}); err != nil {
			failed++
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("event %d took %s with the disk full", n, d)
		}
	}
	st := p.Stats()
	fmt.Printf("RESULT failed=%d dropped=%d queued=%d\n", failed, st.Dropped, st.QueueDepth)
}

// TestDiskFullDropsAndCounts: with the state directory's disk full, events
// that cannot be written are refused promptly and counted as dropped, and
// the ones written before stay queued.
func TestDiskFullDropsAndCounts(t *testing.T) {
	if os.Getenv(diskFullEnv) != "" {
		t.Skip("inside the child")
	}
	t.Parallel()
	child := exec.Command(os.Args[0], "-test.run", "^TestDiskFullChild$", "-test.v")
	child.Env = append(os.Environ(), diskFullEnv+"="+t.TempDir())
	out, err := child.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var failed, dropped, queued int
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "RESULT ") {
			fmt.Sscanf(l, "RESULT failed=%d dropped=%d queued=%d", &failed, &dropped, &queued)
		}
	}
	t.Logf("100 events on a 4 KB disk: %d refused and counted dropped %d, %d queued", failed, dropped, queued)
	if failed == 0 || dropped != failed || queued == 0 || queued+failed != 100 {
		t.Errorf("100 events on a 4 KB disk: %d refused, %d counted dropped, %d queued; want refusals, all counted, the rest queued\n%s",
			failed, dropped, queued, out)
	}
}
