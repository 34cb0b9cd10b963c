package mqtt

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// outboxFiles builds events.log and delivered as a previous run would
// leave them: n records, the first marked delivered.
func outboxFiles(f *testing.F, n, delivered int) (log, mark []byte) {
	dir := f.TempDir()
	o, err := openOutbox(dir, 1<<20, 100, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	for i := range n {
		o.Append([]byte{'e', byte('0' + i%10)})
	}
	for range delivered {
		rec, ok, _ := o.Peek()
		if ok {
			o.MarkDelivered(rec.seq)
		}
	}
	o.Close()
	log, _ = os.ReadFile(filepath.Join(dir, outboxLogName))
	mark, _ = os.ReadFile(filepath.Join(dir, outboxMarkName))
	return log, mark
}

// FuzzOutboxLoad opens an outbox over arbitrary events.log and delivered
// files (a torn write, a foreign file, a flipped bit): it must open without
// crashing, serve records in rising sequence order, and once every record
// is acknowledged a reopen must offer none of them again; a new event
// appended after it survives the reopen.
func FuzzOutboxLoad(f *testing.F) {
	log, mark := outboxFiles(f, 3, 1)
	f.Add(log, mark)
	f.Add(log[:len(log)-3], mark)
	f.Add(log, mark[:10])
	flipped := append([]byte(nil), log...)
	flipped[20] ^= 0x40
	f.Add(flipped, mark)
	f.Add([]byte{}, []byte{})
	f.Add([]byte("\xff\xff\xff\xff\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"), []byte{})
	f.Fuzz(func(t *testing.T, logBytes, markBytes []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, outboxLogName), logBytes, 0o600)
		os.WriteFile(filepath.Join(dir, outboxMarkName), markBytes, 0o600)
		discard := slog.New(slog.DiscardHandler)
		o, err := openOutbox(dir, 1<<20, 100, discard)
		if err != nil {
			t.Fatalf("open over damaged files must recover, got %v", err)
		}
		var last uint64
		for {
			rec, ok, err := o.Peek()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if rec.seq <= last {
				t.Fatalf("seq %d after %d", rec.seq, last)
			}
			last = rec.seq
			if err := o.MarkDelivered(rec.seq); err != nil {
				t.Fatal(err)
			}
		}
		if err := o.Append([]byte("after")); err != nil {
			t.Fatal(err)
		}
		o.Close()
		o, err = openOutbox(dir, 1<<20, 100, discard)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		rec, ok, err := o.Peek()
		if err != nil || !ok || string(rec.payload) != "after" || rec.seq <= last {
			t.Fatalf("after acknowledging all, the reopened outbox offers %q (seq %d, last acked %d), %v, %v", rec.payload, rec.seq, last, ok, err)
		}
	})
}
