package mqtt

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// The outbox is a file-backed FIFO of event payloads waiting for a PUBACK.
//
// Files in its directory:
//   - events.log: records appended in sequence order, each
//     [u32 payload length][u32 CRC-32C of seq+payload][u64 seq][payload].
//     A torn record at the tail (power loss mid-append) fails its length or CRC
//     check and is cut off on open.
//   - delivered: two 16-byte slots [u64 seq][u32 CRC-32C of seq][u32 0], written
//     alternately. The valid slot with the higher seq is the delivery mark: every
//     record with seq <= mark was delivered (PUBACK received) or dropped, and is
//     never sent again. Alternating slots mean a torn mark write loses at most the
//     newest mark, never the older one.
//
// Sequence numbers are never reused (the next one is max(mark, last record)+1),
// so the mark stays meaningful across compaction and restarts.
const (
	outboxLogName  = "events.log"
	outboxMarkName = "delivered"
	recordHeader   = 16
	markSlotSize   = 16
	// compactMinBytes is how much delivered data may sit at the head of
	// events.log before it is rewritten; below it, rewriting costs more than the
	// disk space it frees.
	compactMinBytes = 1 << 20
	// truncateMinBytes is how large events.log may grow while everything in it
	// is delivered; emptying it is cheap (one ftruncate), so this is small.
	truncateMinBytes = 64 << 10
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrEventTooLarge is returned for a payload that would not fit in an empty outbox.
var ErrEventTooLarge = errors.New("event larger than the outbox")

type outboxRecord struct {
	seq     uint64
	payload []byte
}

type recordRef struct {
	seq  uint64
	off  int64 // offset of the record header in events.log
	size int64 // header + payload
}

type outbox struct {
	dir        string
	maxBytes   int64
	maxEntries int
	logger     *slog.Logger

	mu           sync.Mutex
	log          *os.File
	mark         *os.File
	logSize      int64
	pending      []recordRef // seq ascending, all > done
	pendingBytes int64
	done         uint64
	markSlot     int64 // slot the next mark write goes to
	nextSeq      uint64
	delivered    uint64
	dropped      uint64
	closed       bool
}

// openOutbox opens (or creates) the outbox in dir and loads what a previous
// run left undelivered, dropping the oldest records if the limits shrank.
func openOutbox(dir string, maxBytes int64, maxEntries int, logger *slog.Logger) (*outbox, error) {
	if maxBytes <= recordHeader || maxEntries <= 0 {
		return nil, fmt.Errorf("outbox limits must be positive (max bytes %d, max entries %d)", maxBytes, maxEntries)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("outbox dir: %w", err)
	}
	if err := os.Remove(filepath.Join(dir, outboxLogName+".tmp")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("outbox: remove unfinished compaction: %w", err)
	}
	o := &outbox{dir: dir, maxBytes: maxBytes, maxEntries: maxEntries, logger: logger}
	var err error
	if o.mark, err = os.OpenFile(filepath.Join(dir, outboxMarkName), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("outbox mark: %w", err)
	}
	if err := o.readMark(); err != nil {
		o.mark.Close()
		return nil, err
	}
	if o.log, err = os.OpenFile(filepath.Join(dir, outboxLogName), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		o.mark.Close()
		return nil, fmt.Errorf("outbox log: %w", err)
	}
	if err := o.load(); err != nil {
		o.log.Close()
		o.mark.Close()
		return nil, err
	}
	if n := o.makeRoom(0); n > 0 {
		o.logger.Warn("mqtt outbox over its limits on open: dropped oldest events", "dropped", n, "max_bytes", maxBytes, "max_entries", maxEntries)
	}
	return o, nil
}

func (o *outbox) readMark() error {
	buf := make([]byte, 2*markSlotSize)
	n, err := o.mark.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("outbox mark read: %w", err)
	}
	best, bestSlot, found := uint64(0), int64(0), false
	for slot := int64(0); slot < 2; slot++ {
		b := buf[slot*markSlotSize : (slot+1)*markSlotSize]
		if int64(n) < (slot+1)*markSlotSize {
			break
		}
		seq := binary.LittleEndian.Uint64(b[0:8])
		if crc32.Checksum(b[0:8], crcTable) != binary.LittleEndian.Uint32(b[8:12]) {
			continue
		}
		if !found || seq > best {
			best, bestSlot, found = seq, slot, true
		}
	}
	o.done = best
	o.markSlot = 1 - bestSlot // overwrite the older slot next
	return nil
}

// writeMark persists o.done. With sync it returns only once the mark is on
// stable storage.
func (o *outbox) writeMark(sync bool) error {
	var b [markSlotSize]byte
	binary.LittleEndian.PutUint64(b[0:8], o.done)
	binary.LittleEndian.PutUint32(b[8:12], crc32.Checksum(b[0:8], crcTable))
	if _, err := o.mark.WriteAt(b[:], o.markSlot*markSlotSize); err != nil {
		return fmt.Errorf("outbox mark write: %w", err)
	}
	o.markSlot = 1 - o.markSlot
	if sync {
		if err := o.mark.Sync(); err != nil {
			return fmt.Errorf("outbox mark sync: %w", err)
		}
	}
	return nil
}

// load scans events.log, keeps the records after the mark and cuts off a torn tail.
func (o *outbox) load() error {
	r := bufio.NewReaderSize(o.log, 64<<10)
	var off int64
	var last uint64
	hdr := make([]byte, recordHeader)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("outbox read at %d: %w", off, err)
			}
			break
		}
		size := int64(binary.LittleEndian.Uint32(hdr[0:4]))
		sum := binary.LittleEndian.Uint32(hdr[4:8])
		seq := binary.LittleEndian.Uint64(hdr[8:16])
		if size > o.maxBytes+(64<<20) || seq <= last {
			break // garbage length or order: a torn or foreign tail
		}
		payload := make([]byte, size)
		if _, err := io.ReadFull(r, payload); err != nil {
			break
		}
		crc := crc32.Update(crc32.Checksum(hdr[8:16], crcTable), crcTable, payload)
		if crc != sum {
			break
		}
		if seq > o.done {
			o.pending = append(o.pending, recordRef{seq: seq, off: off, size: recordHeader + size})
			o.pendingBytes += recordHeader + size
		}
		last = seq
		off += recordHeader + size
	}
	st, err := o.log.Stat()
	if err != nil {
		return fmt.Errorf("outbox stat: %w", err)
	}
	if st.Size() > off {
		o.logger.Warn("mqtt outbox: cut off a damaged tail", "bytes", st.Size()-off)
		if err := o.log.Truncate(off); err != nil {
			return fmt.Errorf("outbox truncate damaged tail: %w", err)
		}
		if err := o.log.Sync(); err != nil {
			return fmt.Errorf("outbox sync: %w", err)
		}
	}
	o.logSize = off
	o.nextSeq = max(last, o.done) + 1
	return nil
}

// makeRoom drops the oldest pending records until one more of size extra
// fits (extra 0: until the limits hold) and returns how many it dropped.
func (o *outbox) makeRoom(extra int64) int {
	dropped := 0
	slots := 0
	if extra > 0 {
		slots = 1
	}
	for len(o.pending) > 0 && (len(o.pending)+slots > o.maxEntries || o.pendingBytes+extra > o.maxBytes) {
		o.done = o.pending[0].seq
		o.pendingBytes -= o.pending[0].size
		o.pending = o.pending[1:]
		dropped++
	}
	if dropped > 0 {
		o.dropped += uint64(dropped)
		// Not synced: if this mark is lost in a crash, the dropped events come
		// back and are dropped again or delivered, both harmless.
		if err := o.writeMark(false); err != nil {
			o.logger.Error("mqtt outbox: persist drop mark", "err", err)
		}
	}
	return dropped
}

// Append adds payload at the tail, durably (fsync) before returning. When
// the outbox is full the oldest events are dropped to make room.
func (o *outbox) Append(payload []byte) error {
	size := recordHeader + int64(len(payload))
	if size > o.maxBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrEventTooLarge, size, o.maxBytes)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errors.New("outbox closed")
	}
	if n := o.makeRoom(size); n > 0 {
		o.logger.Warn("mqtt outbox full: dropped oldest events", "dropped", n, "dropped_total", o.dropped,
			"max_bytes", o.maxBytes, "max_entries", o.maxEntries)
	}
	buf := make([]byte, size)
	binary.LittleEndian.PutUint32(buf[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint64(buf[8:16], o.nextSeq)
	copy(buf[recordHeader:], payload)
	binary.LittleEndian.PutUint32(buf[4:8], crc32.Checksum(buf[8:], crcTable))
	// An event that cannot be written (disk full, I/O error) is dropped and
	// counted like one the full outbox pushed out; the caller carries on.
	if _, err := o.log.WriteAt(buf, o.logSize); err != nil {
		_ = o.log.Truncate(o.logSize)
		o.dropped++
		return fmt.Errorf("outbox append: %w", err)
	}
	if err := o.log.Sync(); err != nil {
		_ = o.log.Truncate(o.logSize)
		o.dropped++
		return fmt.Errorf("outbox sync: %w", err)
	}
	o.pending = append(o.pending, recordRef{seq: o.nextSeq, off: o.logSize, size: size})
	o.pendingBytes += size
	o.logSize += size
	o.nextSeq++
	return nil
}

// Peek returns the oldest undelivered record.
func (o *outbox) Peek() (outboxRecord, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || len(o.pending) == 0 {
		return outboxRecord{}, false, nil
	}
	ref := o.pending[0]
	payload := make([]byte, ref.size-recordHeader)
	if _, err := o.log.ReadAt(payload, ref.off+recordHeader); err != nil {
		return outboxRecord{}, false, fmt.Errorf("outbox read seq %d: %w", ref.seq, err)
	}
	return outboxRecord{seq: ref.seq, payload: payload}, true, nil
}

// MarkDelivered records that seq (the record Peek returned) was acknowledged
// by the broker. The record leaves the queue even when persisting the mark
// fails: in this process it was delivered and must not be sent again; the
// error says a restart could send it once more.
func (o *outbox) MarkDelivered(seq uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || seq <= o.done || len(o.pending) == 0 || o.pending[0].seq != seq {
		return nil // dropped while it was in flight: already past the mark
	}
	o.done = seq
	o.pendingBytes -= o.pending[0].size
	o.pending = o.pending[1:]
	o.delivered++
	if err := o.writeMark(true); err != nil {
		return err
	}
	return o.maybeCompact()
}

// maybeCompact rewrites events.log without its delivered head once that head
// is large and at least as big as what is still pending.
func (o *outbox) maybeCompact() error {
	if len(o.pending) == 0 {
		if o.logSize < truncateMinBytes {
			return nil
		}
		// The mark already covers every record, so an empty log loses nothing.
		if err := o.log.Truncate(0); err != nil {
			return fmt.Errorf("outbox truncate: %w", err)
		}
		if err := o.log.Sync(); err != nil {
			return fmt.Errorf("outbox sync: %w", err)
		}
		o.logSize = 0
		return nil
	}
	head := o.pending[0].off
	if head < compactMinBytes || head < o.logSize-head {
		return nil
	}
	tmpPath := filepath.Join(o.dir, outboxLogName+".tmp")
	tmp, err := os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("outbox compact: %w", err)
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmpPath)
		return fmt.Errorf("outbox compact: %w", err)
	}
	if _, err := io.Copy(tmp, io.NewSectionReader(o.log, head, o.logSize-head)); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmpPath, filepath.Join(o.dir, outboxLogName)); err != nil {
		return fail(err)
	}
	if err := syncDir(o.dir); err != nil {
		o.logger.Warn("mqtt outbox: sync dir after compaction", "err", err)
	}
	o.log.Close()
	o.log = tmp
	for i := range o.pending {
		o.pending[i].off -= head
	}
	o.logSize -= head
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

type outboxStats struct {
	depth     int
	bytes     int64
	delivered uint64
	dropped   uint64
}

func (o *outbox) stats() outboxStats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return outboxStats{depth: len(o.pending), bytes: o.pendingBytes, delivered: o.delivered, dropped: o.dropped}
}

func (o *outbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	return errors.Join(o.log.Close(), o.mark.Close())
}
