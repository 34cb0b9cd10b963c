package mqtt

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func openTestOutbox(t *testing.T, dir string, maxBytes int64, maxEntries int) *outbox {
	t.Helper()
	o, err := openOutbox(dir, maxBytes, maxEntries, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// drain delivers everything pending and returns the payloads in order.
func drain(t *testing.T, o *outbox) []string {
	t.Helper()
	var out []string
	for {
		rec, ok, err := o.Peek()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, string(rec.payload))
		if err := o.MarkDelivered(rec.seq); err != nil {
			t.Fatal(err)
		}
	}
}

func appendN(t *testing.T, o *outbox, from, to int, pad int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := o.Append([]byte(fmt.Sprintf("event-%03d%s", i, bytes.Repeat([]byte{'.'}, pad)))); err != nil {
			t.Fatal(err)
		}
	}
}

func names(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("event-%03d", i))
	}
	return out
}

func TestOutboxReopenKeepsUndeliveredOnly(t *testing.T) {
	dir := t.TempDir()
	o := openTestOutbox(t, dir, 1<<20, 100)
	appendN(t, o, 0, 6, 0)
	for i := 0; i < 2; i++ { // deliver two
		rec, _, _ := o.Peek()
		if err := o.MarkDelivered(rec.seq); err != nil {
			t.Fatal(err)
		}
	}
	o.Close()

	o = openTestOutbox(t, dir, 1<<20, 100)
	appendN(t, o, 6, 8, 0)
	if got := drain(t, o); fmt.Sprint(got) != fmt.Sprint(names(2, 8)) {
		t.Fatalf("after reopen: %v, want %v", got, names(2, 8))
	}
	o.Close()
	o = openTestOutbox(t, dir, 1<<20, 100)
	if st := o.stats(); st.depth != 0 {
		t.Fatalf("delivered events came back: depth %d", st.depth)
	}
}

func TestOutboxCutsTornTail(t *testing.T) {
	dir := t.TempDir()
	o := openTestOutbox(t, dir, 1<<20, 100)
	appendN(t, o, 0, 3, 0)
	o.Close()
	// A power cut in the middle of the fourth append.
	f, err := os.OpenFile(filepath.Join(dir, outboxLogName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{9, 0, 0, 0, 1, 2, 3, 4, 4, 0, 0, 0, 0, 0, 0, 0, 'e', 'v'}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	o = openTestOutbox(t, dir, 1<<20, 100)
	appendN(t, o, 3, 5, 0)
	if got := drain(t, o); fmt.Sprint(got) != fmt.Sprint(names(0, 5)) {
		t.Fatalf("got %v, want %v", got, names(0, 5))
	}
}

func TestOutboxTornMarkFallsBackToPreviousMark(t *testing.T) {
	dir := t.TempDir()
	o := openTestOutbox(t, dir, 1<<20, 100)
	appendN(t, o, 0, 4, 0)
	for i := 0; i < 3; i++ {
		rec, _, _ := o.Peek()
		if err := o.MarkDelivered(rec.seq); err != nil {
			t.Fatal(err)
		}
	}
	slot := 1 - o.markSlot // the slot holding the newest mark
	o.Close()
	f, err := os.OpenFile(filepath.Join(dir, outboxMarkName), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff, 0xff}, slot*markSlotSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The older mark survives: one event (the third) is sent again, nothing is lost.
	o = openTestOutbox(t, dir, 1<<20, 100)
	if got := drain(t, o); fmt.Sprint(got) != fmt.Sprint(names(2, 4)) {
		t.Fatalf("got %v, want %v", got, names(2, 4))
	}
}

func TestOutboxFullDropsOldestAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	o := openTestOutbox(t, dir, 1<<20, 4)
	appendN(t, o, 0, 10, 0)
	if st := o.stats(); st.depth != 4 || st.dropped != 6 {
		t.Fatalf("stats %+v, want depth 4, dropped 6", st)
	}
	o.Close()
	o = openTestOutbox(t, dir, 1<<20, 4)
	if got := drain(t, o); fmt.Sprint(got) != fmt.Sprint(names(6, 10)) {
		t.Fatalf("got %v, want %v", got, names(6, 10))
	}

	// The byte bound works the same way, and a smaller bound on reopen applies at once.
	dir = t.TempDir()
	o = openTestOutbox(t, dir, 10*(recordHeader+9), 1000)
	appendN(t, o, 0, 15, 0)
	if st := o.stats(); st.depth != 10 || st.dropped != 5 || st.bytes != 10*(recordHeader+9) {
		t.Fatalf("stats %+v, want depth 10, dropped 5", st)
	}
	o.Close()
	o = openTestOutbox(t, dir, 3*(recordHeader+9), 1000)
	if got := drain(t, o); fmt.Sprint(got) != fmt.Sprint(names(12, 15)) {
		t.Fatalf("got %v, want %v", got, names(12, 15))
	}
	if err := o.Append(make([]byte, 3*(recordHeader+9))); err == nil {
		t.Error("event bigger than the outbox accepted")
	}
}

func TestOutboxCompacts(t *testing.T) {
	dir := t.TempDir()
	o := openTestOutbox(t, dir, 64<<20, 10000)
	const pad = 8 << 10
	appendN(t, o, 0, 200, pad) // about 1.6 MiB
	for i := 0; i < 150; i++ {
		rec, _, _ := o.Peek()
		if err := o.MarkDelivered(rec.seq); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(filepath.Join(dir, outboxLogName))
	if err != nil {
		t.Fatal(err)
	}
	// 1.6 MiB were written; the delivered head was cut once it passed 1 MiB.
	if st.Size() >= compactMinBytes {
		t.Errorf("events.log is %d bytes with 50 events pending: not compacted", st.Size())
	}
	o.Close()
	o = openTestOutbox(t, dir, 64<<20, 10000)
	appendN(t, o, 200, 201, pad)
	got := drain(t, o)
	if len(got) != 51 || got[0][:9] != "event-150" || got[50][:9] != "event-200" {
		t.Fatalf("after compaction and reopen: %d events, first %.9s", len(got), got[0])
	}
	if st, _ := os.Stat(filepath.Join(dir, outboxLogName)); st.Size() != 0 {
		t.Errorf("events.log is %d bytes with nothing pending", st.Size())
	}
}

func TestEventIDsSortInCreationOrder(t *testing.T) {
	var g eventIDs
	now := time.UnixMilli(1_700_000_000_000)
	prev := ""
	for i := 0; i < 5000; i++ {
		at := now
		switch {
		case i%1000 == 999:
			at = now.Add(-time.Second) // the clock steps back
		case i%100 == 0:
			now = now.Add(time.Millisecond)
			at = now
		}
		id, err := g.next(at)
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 26 || id <= prev {
			t.Fatalf("id %d %q after %q", i, id, prev)
		}
		prev = id
	}
	// The leading 10 characters are the millisecond timestamp.
	id, _ := new(eventIDs).next(time.UnixMilli(1_700_000_000_000))
	if id[:10] != "01HF7YAT00" {
		t.Errorf("timestamp part %q", id[:10])
	}
}
