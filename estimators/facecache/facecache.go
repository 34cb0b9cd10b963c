// Package facecache keeps, for a few seconds, what the face pipeline and the
// networks behind the face services computed on an image: the faces found
// in it (detections, mesh, fda points, pose: everything alignment needs) and
// each network's outputs on each of those faces (embeddings, attribute
// logits). It never keeps the image itself. A client calling several
// services on the same image bytes so pays for one detection, one mesh and
// one run of each network.
//
// An image is keyed by the full SHA-256 of its encoded bytes and by a
// fingerprint of the pipeline's settings; a network's outputs add the
// SHA-256 of the face they were computed on (box, keypoints, mesh, fda
// points, pose: every value a crop is cut from) and the network's name.
// Lookups compare keys whole, never a prefix, so a client's bbox that is not
// the cached face's is a different face.
//
// Entries expire TTL after they were stored (a hit does not extend them).
// The cache holds at most Entries images' faces, at most Outputs network
// outputs and at most MaxBytes bytes of both, dropping the oldest first.
// Expired entries are never served and are freed at the next lookup.
//
// Concurrent misses on one key are merged: the first caller computes, the
// others wait for its result (or their context), so two requests on the
// same image at once detect and fit once.
//
// A Cache is safe for concurrent use. A nil *Cache is a disabled cache:
// lookups always miss and compute. A cache belongs to one model runtime:
// faces and outputs computed with other models or delegates must not share it.
package facecache

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"time"
	"unsafe"

	"imageapid/estimators/face"
)

// Config bounds the cache. Entries, MaxBytes or TTL at zero turn it off;
// Outputs at zero keeps faces only.
type Config struct {
	// Entries is the most images whose faces are kept.
	Entries int `yaml:"entries"`
	// Outputs is the most network outputs kept (one per face and network:
	// a single-face image through every face service makes about eight).
	Outputs int `yaml:"outputs"`
	// MaxBytes is the most memory the kept faces and outputs take (a face's
	// mesh is about 12 KB, the largest outputs, FaceRes's, about 4.5 KB).
	MaxBytes int64 `yaml:"max_bytes"`
	// TTL is how long an entry is served after it was stored.
	TTL time.Duration `yaml:"ttl"`
}

// Default is the daemon's default: 64 images, 512 outputs, 8 MiB, 10 s.
func Default() Config {
	return Config{Entries: 64, Outputs: 512, MaxBytes: 8 << 20, TTL: 10 * time.Second}
}

// Enabled reports whether the settings keep anything.
func (c Config) Enabled() bool { return c.Entries > 0 && c.MaxBytes > 0 && c.TTL > 0 }

// Check reports a negative bound.
func (c Config) Check() error {
	if c.Entries < 0 || c.Outputs < 0 || c.MaxBytes < 0 || c.TTL < 0 {
		return fmt.Errorf("face_cache: entries %d, outputs %d, max_bytes %d and ttl %v must not be negative",
			c.Entries, c.Outputs, c.MaxBytes, c.TTL)
	}
	return nil
}

// Key names one image under one set of pipeline settings.
type Key struct {
	// Digest is the SHA-256 of the encoded image file.
	Digest [sha256.Size]byte
	// Settings fingerprints the pipeline settings the faces were found with.
	Settings string
}

// KeyOf returns the key of an encoded image under the given settings.
func KeyOf(encoded []byte, settings string) Key {
	return Key{Digest: sha256.Sum256(encoded), Settings: settings}
}

// FaceDigest is the SHA-256 of every value of a face: its box, score,
// keypoints, mesh, fda points, pose and presence.
func FaceDigest(f *face.Face) [sha256.Size]byte {
	h := sha256.New()
	buf := make([]byte, 0, 8*(16+3*len(f.Mesh)+3*len(f.FDA)+4))
	put := func(v float64) { buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v)) }
	d := f.Detection
	for _, v := range []float64{d.X1, d.Y1, d.X2, d.Y2, d.Score} {
		put(v)
	}
	for _, k := range d.Keypoints {
		put(k.X)
		put(k.Y)
	}
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(f.Mesh)))
	for _, p := range f.Mesh {
		put(p[0])
		put(p[1])
		put(p[2])
	}
	for _, p := range f.FDA {
		put(p[0])
		put(p[1])
		put(p[2])
	}
	for _, v := range []float64{f.Yaw, f.Pitch, f.Roll, f.Presence} {
		put(v)
	}
	h.Write(buf)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// Stats are the cache's counters since it was built and its current size.
type Stats struct {
	// Hits and Misses count face lookups, OutputHits and OutputMisses
	// network output lookups; Merged counts misses that waited for another
	// caller's computation of the same key instead of computing.
	Hits, Misses, OutputHits, OutputMisses, Merged uint64
	Expired, Evicted                               uint64
	// Entries and Outputs are the images' faces and the outputs held.
	Entries, Outputs int
	Bytes            int64
}

// itemKey names one entry: an image's faces (face and name zero) or one
// network's outputs on one face of an image.
type itemKey struct {
	image Key
	face  [sha256.Size]byte
	name  string
}

type entry struct {
	key    itemKey
	faces  []face.Face
	outs   [][]float32
	bytes  int64
	stored time.Time
}

// call is a computation in flight that other callers of its key wait for.
type call struct {
	done  chan struct{}
	faces []face.Face
	outs  [][]float32
	err   error
}

// Cache is a bounded, expiring map from images (and faces of them) to what
// was computed on them.
type Cache struct {
	cfg Config
	now func() time.Time

	mu       sync.Mutex
	faces    *list.List // of *entry, oldest at the back
	outputs  *list.List // of *entry, oldest at the back
	items    map[itemKey]*list.Element
	inflight map[itemKey]*call
	bytes    int64
	stats    Stats
}

// New returns a cache with the given bounds, or nil (a disabled cache) when
// any bound is zero.
func New(cfg Config) (*Cache, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, nil
	}
	return &Cache{cfg: cfg, now: time.Now, faces: list.New(), outputs: list.New(),
		items: map[itemKey]*list.Element{}, inflight: map[itemKey]*call{}}, nil
}

// Get returns a copy of the faces stored under key, if they have not expired.
func (c *Cache) Get(key Key) ([]face.Face, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.lookup(itemKey{image: key})
	if e == nil {
		c.stats.Misses++
		return nil, false
	}
	c.stats.Hits++
	return cloneFaces(e.faces), true
}

// Put stores a copy of faces under key, replacing what was there, and drops
// the oldest entries until the bounds hold. Faces larger than MaxBytes on
// their own are not stored.
func (c *Cache) Put(key Key, faces []face.Face) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.store(&entry{key: itemKey{image: key}, faces: cloneFaces(faces)})
}

// Faces returns the faces stored under key, else computes them with fit and
// stores them. Concurrent callers missing on one key wait for the first
// one's fit rather than fitting again; if that fit fails, each fits itself.
func (c *Cache) Faces(ctx context.Context, key Key, fit func() ([]face.Face, error)) ([]face.Face, error) {
	if c == nil {
		return fit()
	}
	k := itemKey{image: key}
	r, err := c.do(ctx, k, func() (*entry, error) {
		faces, err := fit()
		return &entry{key: k, faces: faces}, err
	})
	if err != nil {
		return nil, err
	}
	return cloneFaces(r.faces), nil
}

// Outputs returns the outputs the named network gave on face f of the image
// under key, else computes them with run and stores them, merging
// concurrent misses as Faces does. name must say everything the outputs
// depend on besides the face and the image: the network and how its input
// is cut and scaled.
func (c *Cache) Outputs(ctx context.Context, key Key, f *face.Face, name string, run func() ([][]float32, error)) ([][]float32, error) {
	if c == nil || c.cfg.Outputs == 0 {
		return run()
	}
	k := itemKey{image: key, face: FaceDigest(f), name: name}
	r, err := c.do(ctx, k, func() (*entry, error) {
		outs, err := run()
		return &entry{key: k, outs: outs}, err
	})
	if err != nil {
		return nil, err
	}
	return cloneOutputs(r.outs), nil
}

// do serves k from the cache, from a computation in flight, or by computing
// it (and storing the result).
func (c *Cache) do(ctx context.Context, k itemKey, compute func() (*entry, error)) (*entry, error) {
	isFaces := k.name == ""
	c.mu.Lock()
	if e := c.lookup(k); e != nil {
		c.count(isFaces, true)
		c.mu.Unlock()
		return e, nil
	}
	c.count(isFaces, false)
	if cl, ok := c.inflight[k]; ok {
		c.stats.Merged++
		c.mu.Unlock()
		select {
		case <-cl.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for a computation in flight: %w", ctx.Err())
		}
		if cl.err == nil {
			return &entry{faces: cl.faces, outs: cl.outs}, nil
		}
		// The first caller failed (perhaps only its own deadline): compute.
		e, err := compute()
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.store(copyEntry(e))
		c.mu.Unlock()
		return e, nil
	}
	cl := &call{done: make(chan struct{})}
	c.inflight[k] = cl
	c.mu.Unlock()

	e, err := compute()
	c.mu.Lock()
	delete(c.inflight, k)
	if err == nil {
		stored := copyEntry(e)
		c.store(stored)
		cl.faces, cl.outs = stored.faces, stored.outs // read-only for the waiters, who copy
	}
	cl.err = err
	c.mu.Unlock()
	close(cl.done)
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (c *Cache) count(isFaces, hit bool) {
	switch {
	case isFaces && hit:
		c.stats.Hits++
	case isFaces:
		c.stats.Misses++
	case hit:
		c.stats.OutputHits++
	default:
		c.stats.OutputMisses++
	}
}

// lookup returns the live entry under k, freeing expired ones first. The
// caller holds mu.
func (c *Cache) lookup(k itemKey) *entry {
	c.dropExpired(c.now())
	el, ok := c.items[k]
	if !ok {
		return nil
	}
	if e := el.Value.(*entry); e.key == k { // the map compares keys whole; this is a second guard
		return e
	}
	return nil
}

// store adds e (which the cache then owns), replacing an entry under its
// key, and drops the oldest entries until the bounds hold. The caller holds mu.
func (c *Cache) store(e *entry) {
	now := c.now()
	c.dropExpired(now)
	if el, ok := c.items[e.key]; ok {
		c.remove(el)
	}
	e.bytes, e.stored = sizeOf(e), now
	if e.bytes > c.cfg.MaxBytes {
		return
	}
	own, limit := c.faces, c.cfg.Entries
	if e.key.name != "" {
		own, limit = c.outputs, c.cfg.Outputs
	}
	for own.Len() > 0 && own.Len() >= limit {
		c.remove(own.Back())
		c.stats.Evicted++
	}
	for c.bytes+e.bytes > c.cfg.MaxBytes {
		el := c.oldest()
		if el == nil {
			break
		}
		c.remove(el)
		c.stats.Evicted++
	}
	c.items[e.key] = own.PushFront(e)
	c.bytes += e.bytes
}

// oldest is the entry stored longest ago of both lists, or nil.
func (c *Cache) oldest() *list.Element {
	f, o := c.faces.Back(), c.outputs.Back()
	switch {
	case f == nil:
		return o
	case o == nil:
		return f
	case o.Value.(*entry).stored.Before(f.Value.(*entry).stored):
		return o
	}
	return f
}

// Stats returns the counters and the current size.
func (c *Cache) Stats() Stats {
	if c == nil {
		return Stats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries, s.Outputs, s.Bytes = c.faces.Len(), c.outputs.Len(), c.bytes
	return s
}

// dropExpired frees entries stored TTL or longer ago (the oldest are at the
// back of each list).
func (c *Cache) dropExpired(now time.Time) {
	for _, l := range []*list.List{c.faces, c.outputs} {
		for el := l.Back(); el != nil; el = l.Back() {
			if now.Sub(el.Value.(*entry).stored) < c.cfg.TTL {
				break
			}
			c.remove(el)
			c.stats.Expired++
		}
	}
}

func (c *Cache) remove(el *list.Element) {
	e := el.Value.(*entry)
	if e.key.name == "" {
		c.faces.Remove(el)
	} else {
		c.outputs.Remove(el)
	}
	delete(c.items, e.key)
	c.bytes -= e.bytes
}

// sizeOf estimates the memory an entry holds.
func sizeOf(e *entry) int64 {
	n := int64(unsafe.Sizeof(entry{})) + int64(len(e.key.image.Settings)+len(e.key.name)) + 64 // list element, map slot
	for i := range e.faces {
		n += int64(unsafe.Sizeof(e.faces[i])) + int64(len(e.faces[i].Mesh))*int64(unsafe.Sizeof([3]float64{}))
	}
	for _, o := range e.outs {
		n += int64(unsafe.Sizeof(o)) + 4*int64(len(o))
	}
	return n
}

// copyEntry is a deep copy of e's values under its key.
func copyEntry(e *entry) *entry {
	return &entry{key: e.key, faces: cloneFaces(e.faces), outs: cloneOutputs(e.outs)}
}

// cloneFaces copies faces deeply, so that neither the caller nor a later
// reader can change what the cache holds.
func cloneFaces(faces []face.Face) []face.Face {
	if faces == nil {
		return nil
	}
	out := make([]face.Face, len(faces))
	copy(out, faces)
	for i := range out {
		if out[i].Mesh != nil {
			out[i].Mesh = append([][3]float64(nil), out[i].Mesh...)
		}
	}
	return out
}

func cloneOutputs(outs [][]float32) [][]float32 {
	if outs == nil {
		return nil
	}
	out := make([][]float32, len(outs))
	for i, o := range outs {
		out[i] = append([]float32(nil), o...)
	}
	return out
}
