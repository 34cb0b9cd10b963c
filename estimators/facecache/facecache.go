// Package facecache keeps the faces the face pipeline found in an image
// (detections, mesh, fda points, pose: everything alignment needs), never
// the image itself, for a few seconds, so that a client calling several
// services on the same image bytes pays for one detection and one mesh.
//
// An entry is keyed by the full SHA-256 of the encoded image and by a
// fingerprint of the pipeline's settings; a lookup compares both whole,
// never a prefix. Entries expire TTL after they were stored (a hit does
// not extend them), and the cache holds at most Entries entries and
// MaxBytes bytes of faces, dropping the oldest first. Expired entries are
// never served and are freed at the next Get or Put.
//
// A Cache is safe for concurrent use. A nil *Cache is a disabled cache:
// Get always misses and Put does nothing. A cache belongs to one model
// runtime: faces found with other models or delegates must not share it.
package facecache

import (
	"container/list"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"imageapid/estimators/face"
)

// Config bounds the cache. Entries, MaxBytes or TTL at zero turn it off.
type Config struct {
	// Entries is the most images whose faces are kept.
	Entries int `yaml:"entries"`
	// MaxBytes is the most memory the kept faces take (their meshes, mostly:
	// about 12 KB per face).
	MaxBytes int64 `yaml:"max_bytes"`
	// TTL is how long an entry is served after it was stored.
	TTL time.Duration `yaml:"ttl"`
}

// Default is the daemon's default: 64 images, 8 MiB, 10 s.
func Default() Config { return Config{Entries: 64, MaxBytes: 8 << 20, TTL: 10 * time.Second} }

// Enabled reports whether the settings keep anything.
func (c Config) Enabled() bool { return c.Entries > 0 && c.MaxBytes > 0 && c.TTL > 0 }

// Check reports a negative bound.
func (c Config) Check() error {
	if c.Entries < 0 || c.MaxBytes < 0 || c.TTL < 0 {
		return fmt.Errorf("face_cache: entries %d, max_bytes %d and ttl %v must not be negative", c.Entries, c.MaxBytes, c.TTL)
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

// Stats are the cache's counters since it was built and its current size.
type Stats struct {
	Hits, Misses, Expired, Evicted uint64
	Entries                        int
	Bytes                          int64
}

type entry struct {
	key    Key
	faces  []face.Face
	bytes  int64
	stored time.Time
}

// Cache is a bounded, expiring map from image keys to fitted faces.
type Cache struct {
	cfg Config
	now func() time.Time

	mu    sync.Mutex
	order *list.List // of *entry, oldest at the back
	items map[Key]*list.Element
	bytes int64
	stats Stats
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
	return &Cache{cfg: cfg, now: time.Now, order: list.New(), items: map[Key]*list.Element{}}, nil
}

// Get returns a copy of the faces stored under key, if they have not expired.
func (c *Cache) Get(key Key) ([]face.Face, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.dropExpired(now)
	el, ok := c.items[key]
	if !ok {
		c.stats.Misses++
		return nil, false
	}
	e := el.Value.(*entry)
	if e.key != key { // the map compares keys whole; this is a second guard
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
	size := sizeOf(key, faces)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.dropExpired(now)
	if el, ok := c.items[key]; ok {
		c.remove(el)
	}
	if size > c.cfg.MaxBytes {
		return
	}
	for c.order.Len() > 0 && (c.order.Len() >= c.cfg.Entries || c.bytes+size > c.cfg.MaxBytes) {
		c.remove(c.order.Back())
		c.stats.Evicted++
	}
	e := &entry{key: key, faces: cloneFaces(faces), bytes: size, stored: now}
	c.items[key] = c.order.PushFront(e)
	c.bytes += size
}

// Stats returns the counters and the current size.
func (c *Cache) Stats() Stats {
	if c == nil {
		return Stats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries, s.Bytes = c.order.Len(), c.bytes
	return s
}

// dropExpired frees entries stored TTL or longer ago (the oldest are at the back).
func (c *Cache) dropExpired(now time.Time) {
	for el := c.order.Back(); el != nil; el = c.order.Back() {
		if now.Sub(el.Value.(*entry).stored) < c.cfg.TTL {
			return
		}
		c.remove(el)
		c.stats.Expired++
	}
}

func (c *Cache) remove(el *list.Element) {
	e := c.order.Remove(el).(*entry)
	delete(c.items, e.key)
	c.bytes -= e.bytes
}

// sizeOf estimates the memory an entry holds.
func sizeOf(key Key, faces []face.Face) int64 {
	n := int64(unsafe.Sizeof(entry{})) + int64(len(key.Settings)) + 64 // list element, map slot
	for i := range faces {
		n += int64(unsafe.Sizeof(faces[i])) + int64(len(faces[i].Mesh))*int64(unsafe.Sizeof([3]float64{}))
	}
	return n
}

// cloneFaces copies faces deeply, so that neither the caller nor a later
// reader can change what the cache holds.
func cloneFaces(faces []face.Face) []face.Face {
	out := make([]face.Face, len(faces))
	copy(out, faces)
	for i := range out {
		if out[i].Mesh != nil {
			out[i].Mesh = append([][3]float64(nil), out[i].Mesh...)
		}
	}
	return out
}
