package watchlist

import (
	"bytes"
	"context"
	"database/sql"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"imageapid/estimators/facetemplate"
)

func testCalibration(t testing.TB) *facetemplate.Calibration {
	t.Helper()
	cal, err := facetemplate.LoadCalibration(facetemplate.DefaultNetwork, false)
	if err != nil {
		t.Fatal(err)
	}
	return cal
}

func openTestService(t testing.TB, path string, key []byte, x Extractor) *Service {
	t.Helper()
	ctx := context.Background()
	st, err := OpenStore(ctx, path, key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, st, testCalibration(t), x, DefaultConfig(), discardLog())
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fileBytes is the database file and its WAL, as on disk.
func fileBytes(t testing.TB, path string) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// syntheticTemplate is a random template of the default network, whose
// table testCalibration reads.
func syntheticTemplate(r *rand.Rand) []byte {
	n := facetemplate.Networks[facetemplate.DefaultNetwork]
	return facetemplate.Encode(n.ID, randomUnit(r, n.Dim))
}

func TestStoreErasesTemplatesFromTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wl.db")
	s := openTestService(t, path, nil, nil)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	keep, err := s.CreatePerson(ctx, "door", "Keep", nil)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := s.CreatePerson(ctx, "door", "Gone", []byte(`{"badge": 7}`))
	if err != nil {
		t.Fatal(err)
	}
	keepTpl, goneTpl := syntheticTemplate(r), syntheticTemplate(r)
	if _, err := s.AddTemplate(ctx, "door", keep.ID, keepTpl, nil); err != nil {
		t.Fatal(err)
	}
	f, err := s.AddTemplate(ctx, "door", gone.ID, goneTpl, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	// The vector bytes (after the 12-byte header) are what identifies a face.
	if !bytes.Contains(fileBytes(t, path), goneTpl[12:]) {
		t.Fatal("the enrolled template is not in the file: the test would prove nothing")
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("database mode %v, %v; want 0600", st.Mode().Perm(), err)
	}
	if err := s.DeletePerson(ctx, "door", gone.ID); err != nil {
		t.Fatal(err)
	}
	all := fileBytes(t, path)
	if bytes.Contains(all, goneTpl[12:]) || bytes.Contains(all, goneTpl[12:60]) {
		t.Fatal("the deleted person's template is still in the database file")
	}
	if bytes.Contains(all, []byte(f.ID)) {
		t.Fatal("the deleted face's id is still in the database file")
	}
	if !bytes.Contains(all, keepTpl[12:]) {
		t.Fatal("the other person's template went too")
	}
	hits, err := s.SearchTemplate(ctx, "door", goneTpl, 5)
	if err != nil || len(hits) != 0 {
		t.Fatalf("search for the deleted face: %v, %v", hits, err)
	}
	if err := s.store.Vacuum(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestStoreRefusesForeignCorruptAndNewerFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, bytes.Repeat([]byte("not a database "), 400), 0o600)
	if _, err := OpenStore(ctx, junk, nil); err == nil || !strings.Contains(err.Error(), junk) {
		t.Fatalf("junk file: %v; want an error naming %s", err, junk)
	}

	foreign := filepath.Join(dir, "foreign.db")
	db, err := sql.Open("sqlite", foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE photos(id INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := OpenStore(ctx, foreign, nil); err == nil || !strings.Contains(err.Error(), foreign) || !strings.Contains(err.Error(), "another application") {
		t.Fatalf("foreign database: %v", err)
	}

	newer := filepath.Join(dir, "newer.db")
	st, err := OpenStore(ctx, newer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := OpenStore(ctx, newer, nil); err == nil || !strings.Contains(err.Error(), newer) || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("newer schema: %v", err)
	}

	// A good file with its middle overwritten.
	bad := filepath.Join(dir, "bad.db")
	s := openTestService(t, bad, nil, nil)
	p, _ := s.CreatePerson(ctx, "l", "A", nil)
	r := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 50; i++ {
		if _, err := s.AddTemplate(ctx, "l", p.ID, syntheticTemplate(r), nil); err != nil {
			t.Fatal(err)
		}
	}
	s.store.Checkpoint(ctx)
	s.Close()
	b, _ := os.ReadFile(bad)
	for i := 4096; i < len(b); i++ {
		b[i] = 0x5a
	}
	os.WriteFile(bad, b, 0o600)
	st2, err := OpenStore(ctx, bad, nil)
	if err == nil {
		_, err = New(ctx, st2, testCalibration(t), nil, DefaultConfig(), discardLog())
		st2.Close()
	}
	t.Logf("corrupted: %v", err)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("corrupted file: %v", err)
	}
}

func TestEncryptedTemplatesNeedTheKey(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wl.db")
	key := bytes.Repeat([]byte{7}, 32)
	s := openTestService(t, path, key, nil)
	r := rand.New(rand.NewPCG(5, 6))
	p, _ := s.CreatePerson(ctx, "l", "A", nil)
	tpl := syntheticTemplate(r)
	if _, err := s.AddTemplate(ctx, "l", p.ID, tpl, nil); err != nil {
		t.Fatal(err)
	}
	s.store.Checkpoint(ctx)
	if bytes.Contains(fileBytes(t, path), tpl[12:40]) {
		t.Fatal("the template is readable in the encrypted database file")
	}
	s.Close()

	if _, err := OpenStore(ctx, path, nil); err == nil || !strings.Contains(err.Error(), "encryption_key_file") || !strings.Contains(err.Error(), path) {
		t.Fatalf("open without key: %v", err)
	}
	if _, err := OpenStore(ctx, path, bytes.Repeat([]byte{8}, 32)); err == nil || !strings.Contains(err.Error(), "does not hold the key") {
		t.Fatalf("open with another key: %v", err)
	}
	s2 := openTestService(t, path, key, nil)
	hits, err := s2.SearchTemplate(ctx, "l", tpl, 1)
	if err != nil || len(hits) != 1 || hits[0].PersonID != p.ID || hits[0].Distance > 1e-6 {
		t.Fatalf("search after reopening with the key: %+v, %v", hits, err)
	}
}

func TestPlainTemplatesAreSealedWhenAKeyIsSet(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wl.db")
	s := openTestService(t, path, nil, nil)
	p, _ := s.CreatePerson(ctx, "l", "A", nil)
	tpl := syntheticTemplate(rand.New(rand.NewPCG(9, 9)))
	s.AddTemplate(ctx, "l", p.ID, tpl, nil)
	s.Close()
	s2 := openTestService(t, path, bytes.Repeat([]byte{1}, 32), nil)
	s2.store.Vacuum(ctx)
	if bytes.Contains(fileBytes(t, path), tpl[12:40]) {
		t.Fatal("a template stored before the key was set is still plain in the file")
	}
	if hits, _ := s2.SearchTemplate(ctx, "l", tpl, 1); len(hits) != 1 {
		t.Fatalf("search after sealing: %v", hits)
	}
}

func TestIndexMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	x := NewIndex(192)
	var vecs [][]float32
	for i := 0; i < 3000; i++ {
		v := randomUnit(r, 192)
		if i%10 == 1 { // near duplicates, so some rows pass the threshold
			v = perturb(r, vecs[i-1], 0.3)
		}
		vecs = append(vecs, v)
		x.Add(faceName(i), personName(i/3), v)
	}
	for i := 0; i < 3000; i += 7 {
		x.Remove(faceName(i))
	}
	for qi := 0; qi < 50; qi++ {
		q := perturb(r, vecs[r.IntN(len(vecs))], 0.2)
		got, err := x.Search(q, 5, 1.0)
		if err != nil {
			t.Fatal(err)
		}
		best := map[string]float64{}
		for i, v := range vecs {
			if i%7 == 0 {
				continue
			}
			d, _ := facetemplate.Distance(q, v)
			if d <= 1.0 {
				if old, ok := best[personName(i/3)]; !ok || d < old {
					best[personName(i/3)] = d
				}
			}
		}
		want := len(best)
		if want > 5 {
			want = 5
		}
		if len(got) != want {
			t.Fatalf("query %d: %d hits, brute force finds %d", qi, len(got), want)
		}
		for _, h := range got {
			if d := best[h.PersonID]; abs64(d-h.Distance) > 1e-5 {
				t.Fatalf("query %d: person %s at %.6f, brute force %.6f", qi, h.PersonID, h.Distance, d)
			}
		}
		for i := 1; i < len(got); i++ {
			if got[i].Distance < got[i-1].Distance {
				t.Fatal("hits not sorted")
			}
		}
	}
}

func TestDotKernelMatchesPortable(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, dim := range []int{16, 128, 192, 200, 512} {
		q := make([]int16, dim)
		rows := make([]int8, dim*9)
		for i := range q {
			q[i] = int16(r.IntN(65535) - 32767)
		}
		for i := range rows {
			rows[i] = int8(r.IntN(255) - 127)
		}
		out := make([]int32, 9)
		dotsInt8(q, rows, out)
		for i := range out {
			if want := dotInt8Go(q, rows[i*dim:(i+1)*dim]); out[i] != want || dotInt8(q, rows[i*dim:(i+1)*dim]) != want {
				t.Fatalf("dim %d row %d: kernel %d, portable %d", dim, i, out[i], want)
			}
		}
	}
}

func TestConcurrentEnrolAndSearch(t *testing.T) {
	ctx := context.Background()
	s := openTestService(t, filepath.Join(t.TempDir(), "wl.db"), nil, nil)
	r := rand.New(rand.NewPCG(1, 2))
	tpls := make([][]byte, 40)
	for i := range tpls {
		tpls[i] = syntheticTemplate(r)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := 0; w < 4; w++ {
		wg.Add(2)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(tpls); i += 4 {
				p, err := s.CreatePerson(ctx, "l", faceName(i), nil)
				if err == nil {
					_, err = s.AddTemplate(ctx, "l", p.ID, tpls[i], nil)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				if _, err := s.SearchTemplate(ctx, "l", tpls[(i+w)%len(tpls)], 3); err != nil && !strings.Contains(err.Error(), "no watchlist") {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, tpl := range tpls {
		hits, err := s.SearchTemplate(ctx, "l", tpl, 1)
		if err != nil || len(hits) != 1 || hits[0].Name != faceName(i) {
			t.Fatalf("template %d: %+v, %v", i, hits, err)
		}
	}
}
