package facecache

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"imageapid/estimators/face"
	"imageapid/internal/testenv"
)

// astronautFaces returns the faces the real pipeline fits on astronaut.png.
func astronautFaces(t *testing.T) []face.Face {
	t.Helper()
	p, err := face.New(testenv.Runtime(t, ""), face.Config{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := gocv.IMDecode(testenv.ReadFixture(t, "astronaut.png"), gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	dets, err := p.Detect(context.Background(), img)
	if err != nil || len(dets) != 1 {
		t.Fatalf("detect: %d faces, %v", len(dets), err)
	}
	f, err := p.Fit(context.Background(), img, dets[0])
	if err != nil {
		t.Fatal(err)
	}
	return []face.Face{f}
}

// fakeClock is a settable time source.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newCache(t *testing.T, cfg Config) (*Cache, *fakeClock) {
	t.Helper()
	c, err := New(cfg)
	if err != nil || c == nil {
		t.Fatalf("New(%+v) = %v, %v", cfg, c, err)
	}
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	c.now = clk.now
	return c, clk
}

// TestKeyComparesWholeDigestAndSettings: keys whose digests share all but
// their last byte, or that differ only in settings, never hit each other.
func TestKeyComparesWholeDigestAndSettings(t *testing.T) {
	faces := astronautFaces(t)
	c, _ := newCache(t, Default())
	a := KeyOf([]byte("image bytes"), "settings A")
	b := a
	b.Digest[sha256.Size-1] ^= 1 // same 31-byte prefix
	c.Put(a, faces)
	if _, ok := c.Get(b); ok {
		t.Fatal("a digest sharing a 31-byte prefix hit another image's entry")
	}
	first := a
	first.Digest[0] ^= 1 // same suffix
	if _, ok := c.Get(first); ok {
		t.Fatal("a digest differing in its first byte hit another image's entry")
	}
	other := a
	other.Settings = "settings B"
	if _, ok := c.Get(other); ok {
		t.Fatal("an entry found with other pipeline settings was served")
	}
	prefix := a
	prefix.Settings = "settings"
	if _, ok := c.Get(prefix); ok {
		t.Fatal("settings that are a prefix of the stored ones hit")
	}
	if _, ok := c.Get(KeyOf([]byte("image bytez"), "settings A")); ok {
		t.Fatal("other bytes hit")
	}
	got, ok := c.Get(KeyOf([]byte("image bytes"), "settings A"))
	if !ok || len(got) != 1 || got[0].FDA != faces[0].FDA || len(got[0].Mesh) != len(faces[0].Mesh) {
		t.Fatalf("the same bytes and settings missed or changed: %v", ok)
	}
	if s := c.Stats(); s.Hits != 1 || s.Misses != 5 {
		t.Errorf("stats %+v, want 1 hit and 5 misses", s)
	}
}

// TestExpiredEntriesAreNotServed: an entry is served for less than TTL
// after it was stored, a hit does not extend it, and an expired one is freed.
func TestExpiredEntriesAreNotServed(t *testing.T) {
	faces := astronautFaces(t)
	c, clk := newCache(t, Config{Entries: 4, MaxBytes: 1 << 20, TTL: 10 * time.Second})
	k := KeyOf([]byte("x"), "s")
	c.Put(k, faces)
	clk.add(9 * time.Second)
	if _, ok := c.Get(k); !ok {
		t.Fatal("missed before the TTL")
	}
	clk.add(time.Second)
	if _, ok := c.Get(k); ok {
		t.Fatal("served at the TTL")
	}
	if s := c.Stats(); s.Entries != 0 || s.Bytes != 0 || s.Expired != 1 {
		t.Errorf("expired entry not freed: %+v", s)
	}
}

// TestByteBoundEvictsOldest: with room for two entries' bytes, a third
// evicts the oldest, and the bytes held never exceed the bound.
func TestByteBoundEvictsOldest(t *testing.T) {
	faces := astronautFaces(t)
	one := sizeOf(&entry{key: itemKey{image: KeyOf(nil, "s")}, faces: faces})
	if one < 468*24 {
		t.Fatalf("an entry with a 468-point mesh is counted as %d bytes", one)
	}
	c, _ := newCache(t, Config{Entries: 100, MaxBytes: 2*one + one/2, TTL: time.Minute})
	keys := []Key{KeyOf([]byte("1"), "s"), KeyOf([]byte("2"), "s"), KeyOf([]byte("3"), "s")}
	for _, k := range keys {
		c.Put(k, faces)
		if s := c.Stats(); s.Bytes > 2*one+one/2 {
			t.Fatalf("holds %d bytes over the bound %d", s.Bytes, 2*one+one/2)
		}
	}
	if _, ok := c.Get(keys[0]); ok {
		t.Error("the oldest entry survived the byte bound")
	}
	for _, k := range keys[1:] {
		if _, ok := c.Get(k); !ok {
			t.Error("a newer entry was evicted")
		}
	}
	if s := c.Stats(); s.Evicted != 1 || s.Entries != 2 {
		t.Errorf("stats %+v, want 1 eviction and 2 entries", s)
	}
	tiny, _ := newCache(t, Config{Entries: 100, MaxBytes: one - 1, TTL: time.Minute})
	tiny.Put(keys[0], faces)
	if s := tiny.Stats(); s.Entries != 0 || s.Bytes != 0 {
		t.Errorf("an entry larger than the bound was stored: %+v", s)
	}
}

// TestEntryBoundEvictsOldest keeps at most Entries images.
func TestEntryBoundEvictsOldest(t *testing.T) {
	faces := astronautFaces(t)
	c, _ := newCache(t, Config{Entries: 3, MaxBytes: 1 << 30, TTL: time.Minute})
	for i := 0; i < 5; i++ {
		c.Put(KeyOf([]byte{byte(i)}, "s"), faces)
	}
	if s := c.Stats(); s.Entries != 3 || s.Evicted != 2 {
		t.Errorf("stats %+v, want 3 entries and 2 evictions", s)
	}
	if _, ok := c.Get(KeyOf([]byte{1}, "s")); ok {
		t.Error("an evicted entry was served")
	}
	if _, ok := c.Get(KeyOf([]byte{4}, "s")); !ok {
		t.Error("the newest entry was evicted")
	}
}

// TestEntriesAreCopies: neither the faces put nor those returned alias what
// the cache holds.
func TestEntriesAreCopies(t *testing.T) {
	faces := astronautFaces(t)
	want := faces[0].Mesh[0]
	c, _ := newCache(t, Default())
	k := KeyOf([]byte("x"), "s")
	c.Put(k, faces)
	faces[0].Mesh[0][0] += 100
	got, _ := c.Get(k)
	if got[0].Mesh[0] != want {
		t.Fatal("changing the faces put changed the cache")
	}
	got[0].Mesh[0][0] += 100
	got[0].FDA[0][0] += 100
	again, _ := c.Get(k)
	if again[0].Mesh[0] != want || again[0].FDA[0][0] == got[0].FDA[0][0] {
		t.Fatal("changing the faces returned changed the cache")
	}
}

// TestDisabled: a zero bound gives a nil cache that never keeps anything;
// negative bounds are refused.
func TestDisabled(t *testing.T) {
	for _, cfg := range []Config{{}, {Entries: 0, MaxBytes: 1 << 20, TTL: time.Second}, {Entries: 4, MaxBytes: 1 << 20}} {
		c, err := New(cfg)
		if err != nil || c != nil {
			t.Fatalf("New(%+v) = %v, %v; want a nil cache", cfg, c, err)
		}
		c.Put(KeyOf(nil, ""), nil)
		if _, ok := c.Get(KeyOf(nil, "")); ok {
			t.Fatal("a nil cache hit")
		}
		if s := c.Stats(); s != (Stats{}) {
			t.Fatalf("a nil cache has stats %+v", s)
		}
	}
	if _, err := New(Config{Entries: -1, MaxBytes: 1, TTL: time.Second}); err == nil {
		t.Error("negative entries accepted")
	}
}

// TestConcurrentUse runs Puts and Gets from several goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	faces := astronautFaces(t)
	c, clk := newCache(t, Config{Entries: 8, MaxBytes: 1 << 20, TTL: time.Second})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				k := KeyOf([]byte(fmt.Sprint(i%16)), "s")
				if got, ok := c.Get(k); ok && len(got[0].Mesh) != len(faces[0].Mesh) {
					t.Error("a torn entry")
					return
				}
				c.Put(k, faces)
				if i%50 == 0 {
					clk.add(300 * time.Millisecond)
				}
			}
		}(g)
	}
	wg.Wait()
	if s := c.Stats(); s.Entries > 8 || s.Bytes > 1<<20 {
		t.Errorf("bounds broken: %+v", s)
	}
}

// TestOutputsKeyedByImageFaceAndName: a network's outputs are served only
// for the same image, the same face to the last bit and the same name.
func TestOutputsKeyedByImageFaceAndName(t *testing.T) {
	faces := astronautFaces(t)
	c, _ := newCache(t, Default())
	ctx := context.Background()
	k := KeyOf([]byte("image bytes"), "")
	runs := 0
	run := func() ([][]float32, error) { runs++; return [][]float32{{float32(runs)}}, nil }
	got, err := c.Outputs(ctx, k, &faces[0], "net", run)
	if err != nil || runs != 1 || got[0][0] != 1 {
		t.Fatalf("first lookup: %v, %v after %d runs", got, err, runs)
	}
	if got, _ := c.Outputs(ctx, k, &faces[0], "net", run); runs != 1 || got[0][0] != 1 {
		t.Fatalf("the same image, face and name ran again (%d runs) or changed: %v", runs, got)
	}
	moved := faces[0]
	moved.Mesh = append([][3]float64(nil), faces[0].Mesh...)
	moved.Mesh[100][0] += 1e-9
	other := k
	other.Digest[sha256.Size-1] ^= 1
	boxed := faces[0]
	boxed.X2 += 0.5
	for _, c2 := range []struct {
		what string
		key  Key
		f    *face.Face
		name string
	}{
		{"another name", k, &faces[0], "net2"},
		{"a mesh point moved by 1e-9 px", k, &moved, "net"},
		{"another box", k, &boxed, "net"},
		{"a digest sharing a 31-byte prefix", other, &faces[0], "net"},
	} {
		before := runs
		if _, err := c.Outputs(ctx, c2.key, c2.f, c2.name, run); err != nil || runs != before+1 {
			t.Errorf("%s was served the stored outputs", c2.what)
		}
	}
	got[0][0] = 99
	if again, _ := c.Outputs(ctx, k, &faces[0], "net", run); again[0][0] != 1 {
		t.Error("changing the outputs returned changed the cache")
	}
	if s := c.Stats(); s.OutputHits != 2 || s.OutputMisses != 5 || s.Outputs != 5 {
		t.Errorf("stats %+v, want 2 output hits, 5 misses, 5 held", s)
	}
}

// TestOutputsBoundAndExpiry: at most Outputs outputs are held, oldest
// dropped first, and none is served at its TTL.
func TestOutputsBoundAndExpiry(t *testing.T) {
	faces := astronautFaces(t)
	c, clk := newCache(t, Config{Entries: 4, Outputs: 3, MaxBytes: 1 << 20, TTL: 10 * time.Second})
	ctx := context.Background()
	k := KeyOf([]byte("x"), "")
	runs := 0
	run := func() ([][]float32, error) { runs++; return [][]float32{make([]float32, 1024)}, nil }
	for i := 0; i < 5; i++ {
		c.Outputs(ctx, k, &faces[0], fmt.Sprint(i), run)
	}
	if s := c.Stats(); s.Outputs != 3 || s.Evicted != 2 {
		t.Fatalf("stats %+v, want 3 outputs and 2 evictions", s)
	}
	c.Outputs(ctx, k, &faces[0], "0", run)
	if runs != 6 {
		t.Error("an evicted output was served")
	}
	clk.add(10 * time.Second)
	c.Outputs(ctx, k, &faces[0], "4", run)
	if runs != 7 {
		t.Error("an expired output was served")
	}
	off, _ := newCache(t, Config{Entries: 4, MaxBytes: 1 << 20, TTL: time.Second})
	off.Outputs(ctx, k, &faces[0], "n", run)
	off.Outputs(ctx, k, &faces[0], "n", run)
	if runs != 9 || off.Stats().Outputs != 0 {
		t.Error("a cache with outputs 0 kept outputs")
	}
}

// TestConcurrentMissesMerge: callers missing on one key while its first
// caller computes wait for that result instead of computing again; when the
// first caller fails, the others compute for themselves; a waiter whose
// context ends stops waiting.
func TestConcurrentMissesMerge(t *testing.T) {
	faces := astronautFaces(t)
	c, _ := newCache(t, Default())
	k := KeyOf([]byte("concurrent"), "s")
	release := make(chan struct{})
	var mu sync.Mutex
	fits := 0
	fit := func() ([]face.Face, error) {
		mu.Lock()
		fits++
		mu.Unlock()
		<-release
		return faces, nil
	}
	const callers = 4
	var wg sync.WaitGroup
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.Faces(context.Background(), k, fit)
			if err != nil || len(got) != 1 || got[0].FDA != faces[0].FDA {
				t.Errorf("a caller got %d faces, %v", len(got), err)
			}
		}()
	}
	waitFor(t, func() bool { return c.Stats().Merged == callers-1 })
	close(release)
	wg.Wait()
	if fits != 1 {
		t.Errorf("%d concurrent callers fitted %d times, want once", callers, fits)
	}

	// A failing first caller: the waiter fits itself.
	k2 := KeyOf([]byte("failing"), "s")
	started, fail := make(chan struct{}), make(chan struct{})
	go c.Faces(context.Background(), k2, func() ([]face.Face, error) {
		close(started)
		<-fail
		return nil, fmt.Errorf("deadline")
	})
	<-started
	done := make(chan error)
	go func() {
		_, err := c.Faces(context.Background(), k2, func() ([]face.Face, error) { return faces, nil })
		done <- err
	}()
	waitFor(t, func() bool { return c.Stats().Merged == callers })
	close(fail)
	if err := <-done; err != nil {
		t.Errorf("the waiter of a failed fit failed too: %v", err)
	}
	if _, ok := c.Get(k2); !ok {
		t.Error("the waiter's own fit was not stored")
	}

	// A waiter whose context ends returns.
	k3 := KeyOf([]byte("slow"), "s")
	block := make(chan struct{})
	defer close(block)
	go c.Faces(context.Background(), k3, func() ([]face.Face, error) { <-block; return faces, nil })
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.inflight[itemKey{image: k3}] != nil })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Faces(ctx, k3, fit); err == nil {
		t.Error("a waiter outlived its context")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
