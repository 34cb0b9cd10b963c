package watchlist

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// applicationID marks a SQLite file as an imageapid watchlist database
// (PRAGMA application_id; "IAWL" as a big-endian int32).
const applicationID = 0x4941574c

// migrations are applied in order; the schema version (PRAGMA
// user_version) is the number applied. Never edit one that has shipped:
// append a new one.
var migrations = []string{
	// 1: lists, persons, faces.
	`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
	CREATE TABLE watchlists (
		id INTEGER PRIMARY KEY,
		name TEXT NOT NULL UNIQUE,
		fa_r REAL NOT NULL,
		created TEXT NOT NULL
	);
	CREATE TABLE persons (
		id TEXT PRIMARY KEY,
		watchlist_id INTEGER NOT NULL REFERENCES watchlists(id) ON DELETE CASCADE,
		name TEXT NOT NULL,
		metadata TEXT NOT NULL DEFAULT '{}',
		created TEXT NOT NULL
	);
	CREATE INDEX persons_by_list ON persons(watchlist_id, created, id);
	CREATE TABLE faces (
		id TEXT PRIMARY KEY,
		person_id TEXT NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
		template BLOB NOT NULL,
		encrypted INTEGER NOT NULL,
		model_id INTEGER NOT NULL,
		format_version INTEGER NOT NULL,
		quality TEXT NOT NULL DEFAULT '{}',
		created TEXT NOT NULL
	);
	CREATE INDEX faces_by_person ON faces(person_id);`,
}

// SchemaVersion is the schema this build writes.
var SchemaVersion = len(migrations)

// Store is the watchlist database: one SQLite file in WAL mode.
type Store struct {
	db   *sql.DB
	path string
	seal *sealer // nil: templates are stored as they are
}

// Errors the store returns, wrapped with details.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// OpenStore opens (creating if absent) the database at path, refusing a
// file that is not a watchlist database, one from a newer schema, or one
// whose templates were encrypted with another key (or with a key when key
// is nil). The file and its WAL are 0600.
func OpenStore(ctx context.Context, path string, key []byte) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("watchlist database %s: %w", path, err)
	}
	if err := ensurePrivateFile(path); err != nil {
		return nil, fmt.Errorf("watchlist database %s: %w", path, err)
	}
	// secure_delete overwrites deleted rows with zeros, so an erased
	// template is gone from the file once the WAL is checkpointed.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=secure_delete(1)" +
		"&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("watchlist database %s: %w", path, err)
	}
	s := &Store{db: db, path: path}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("watchlist database %s: %w", path, err)
	}
	for _, p := range []string{path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			db.Close()
			return nil, fmt.Errorf("watchlist database %s: %w", p, err)
		}
	}
	if err := s.setKey(ctx, key); err != nil {
		db.Close()
		return nil, fmt.Errorf("watchlist database %s: %w", path, err)
	}
	return s, nil
}

// ensurePrivateFile creates path 0600 if absent, and tightens it if present.
func ensurePrivateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	return os.Chmod(path, 0o600)
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) migrate(ctx context.Context) error {
	var appID, version int
	// The first read is where a file that is not SQLite at all fails.
	if err := s.db.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return fmt.Errorf("not a readable SQLite database (corrupt or another kind of file): %w", err)
	}
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	var tables int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&tables); err != nil {
		return fmt.Errorf("not a readable SQLite database (corrupt or another kind of file): %w", err)
	}
	switch {
	case appID == 0 && version == 0 && tables == 0: // new file
	case appID != applicationID:
		return fmt.Errorf("a SQLite database of another application (application_id %#x), not an imageapid watchlist database", appID)
	case version > SchemaVersion:
		return fmt.Errorf("schema version %d was written by a newer imageapid (this one reads up to %d)", version, SchemaVersion)
	}
	for v := version; v < SchemaVersion; v++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		// PRAGMAs take no parameters; both values are ours.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = %d", applicationID, v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
	}
	var check string
	if err := s.db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&check); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if check != "ok" {
		return fmt.Errorf("corrupt (integrity check: %.200s)", check)
	}
	return nil
}

// keyCheckPlain is sealed with the key into meta.key_check, so that a
// wrong key is noticed at start, not on the first search.
const keyCheckPlain = "imageapid watchlist key check"

func (s *Store) setKey(ctx context.Context, key []byte) error {
	var check []byte
	err := s.db.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'key_check'").Scan(&check)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read key check: %w", err)
	}
	has := err == nil
	if key == nil {
		if has {
			return errors.New("its templates are encrypted; set watchlist.encryption_key_file to the key they were written with")
		}
		return nil
	}
	seal, err := newSealer(key)
	if err != nil {
		return err
	}
	if has {
		raw, err := hex.DecodeString(string(check))
		if err != nil {
			return fmt.Errorf("key check: %w", err)
		}
		if p, err := seal.open(raw, "key_check"); err != nil || string(p) != keyCheckPlain {
			return errors.New("watchlist.encryption_key_file does not hold the key its templates were encrypted with")
		}
		s.seal = seal
		return nil
	}
	// First start with a key: seal the plain templates already stored.
	s.seal = seal
	sealed, err := seal.seal([]byte(keyCheckPlain), "key_check")
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT id, template FROM faces WHERE encrypted = 0")
		if err != nil {
			return err
		}
		type plain struct {
			id  string
			tpl []byte
		}
		var todo []plain
		for rows.Next() {
			var p plain
			if err := rows.Scan(&p.id, &p.tpl); err != nil {
				rows.Close()
				return err
			}
			todo = append(todo, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, p := range todo {
			c, err := seal.seal(p.tpl, p.id)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE faces SET template = ?, encrypted = 1 WHERE id = ?", c, p.id); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO meta(key, value) VALUES('key_check', ?)", hex.EncodeToString(sealed))
		return err
	})
}

func (s *Store) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// List is a watchlist's row.
type List struct {
	ID      int64     `json:"-"`
	Name    string    `json:"name"`
	FAR     float64   `json:"fa_r"`
	Created time.Time `json:"created"`
}

// Person is a person's row, with their face count when listed.
type Person struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Metadata json.RawMessage `json:"metadata"`
	Created  time.Time       `json:"created"`
	Faces    []FaceInfo      `json:"faces"`
}

// FaceInfo is a face without its template.
type FaceInfo struct {
	ID      string          `json:"face_id"`
	ModelID uint16          `json:"model_id"`
	Quality json.RawMessage `json:"quality"`
	Created time.Time       `json:"created"`
}

// Face is a stored template with the ids it belongs to.
type Face struct {
	FaceInfo
	PersonID string
	Template []byte // the facetemplate blob, decrypted
}

func newID(prefix string) string {
	var b [10]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// Lists returns every list.
func (s *Store) Lists(ctx context.Context) ([]List, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, name, fa_r, created FROM watchlists ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("watchlists: %w", err)
	}
	defer rows.Close()
	var out []List
	for rows.Next() {
		var l List
		var created string
		if err := rows.Scan(&l.ID, &l.Name, &l.FAR, &created); err != nil {
			return nil, fmt.Errorf("watchlists: %w", err)
		}
		l.Created, _ = time.Parse(timeLayout, created)
		out = append(out, l)
	}
	return out, rows.Err()
}

// EnsureList returns the named list, creating it with fa_r far if absent.
func (s *Store) EnsureList(ctx context.Context, name string, far float64) (List, error) {
	l := List{Name: name, FAR: far, Created: now()}
	_, err := s.db.ExecContext(ctx, "INSERT INTO watchlists(name, fa_r, created) VALUES(?, ?, ?) ON CONFLICT(name) DO NOTHING",
		name, far, l.Created.Format(timeLayout))
	if err != nil {
		return l, fmt.Errorf("watchlist %s: %w", name, err)
	}
	var created string
	if err := s.db.QueryRowContext(ctx, "SELECT id, fa_r, created FROM watchlists WHERE name = ?", name).Scan(&l.ID, &l.FAR, &created); err != nil {
		return l, fmt.Errorf("watchlist %s: %w", name, err)
	}
	l.Created, _ = time.Parse(timeLayout, created)
	return l, nil
}

// SetFAR changes a list's target false-accept rate.
func (s *Store) SetFAR(ctx context.Context, listID int64, far float64) error {
	_, err := s.db.ExecContext(ctx, "UPDATE watchlists SET fa_r = ? WHERE id = ?", far, listID)
	return err
}

// CreatePerson adds a person to a list.
func (s *Store) CreatePerson(ctx context.Context, listID int64, name string, metadata json.RawMessage) (Person, error) {
	p := Person{ID: newID("p_"), Name: name, Metadata: metadata, Created: now(), Faces: []FaceInfo{}}
	if len(p.Metadata) == 0 {
		p.Metadata = json.RawMessage("{}")
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO persons(id, watchlist_id, name, metadata, created) VALUES(?, ?, ?, ?, ?)",
		p.ID, listID, p.Name, string(p.Metadata), p.Created.Format(timeLayout))
	if err != nil {
		return p, fmt.Errorf("create person: %w", err)
	}
	return p, nil
}

// Person returns one person of a list with their faces.
func (s *Store) Person(ctx context.Context, listID int64, id string) (Person, error) {
	var p Person
	var meta, created string
	err := s.db.QueryRowContext(ctx, "SELECT id, name, metadata, created FROM persons WHERE watchlist_id = ? AND id = ?", listID, id).
		Scan(&p.ID, &p.Name, &meta, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("%w: no person %q in this watchlist", ErrNotFound, id)
	}
	if err != nil {
		return p, fmt.Errorf("person %s: %w", id, err)
	}
	p.Metadata, p.Created = json.RawMessage(meta), parseTime(created)
	faces, err := s.faceInfos(ctx, []string{p.ID})
	if err != nil {
		return p, err
	}
	p.Faces = faces[p.ID]
	if p.Faces == nil {
		p.Faces = []FaceInfo{}
	}
	return p, nil
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(timeLayout, s)
	return t
}

// Persons returns a page of a list's persons (in creation order, after
// the person id after when given) and whether more follow.
func (s *Store) Persons(ctx context.Context, listID int64, after string, limit int) ([]Person, bool, error) {
	q := "SELECT id, name, metadata, created FROM persons WHERE watchlist_id = ?"
	args := []any{listID}
	if after != "" {
		q += " AND (created, id) > (SELECT created, id FROM persons WHERE id = ? AND watchlist_id = ?)"
		args = append(args, after, listID)
	}
	q += " ORDER BY created, id LIMIT ?"
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("persons: %w", err)
	}
	var out []Person
	var ids []string
	for rows.Next() {
		var p Person
		var meta, created string
		if err := rows.Scan(&p.ID, &p.Name, &meta, &created); err != nil {
			rows.Close()
			return nil, false, fmt.Errorf("persons: %w", err)
		}
		p.Metadata, p.Created = json.RawMessage(meta), parseTime(created)
		out = append(out, p)
		ids = append(ids, p.ID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("persons: %w", err)
	}
	more := len(out) > limit
	if more {
		out, ids = out[:limit], ids[:limit]
	}
	faces, err := s.faceInfos(ctx, ids)
	if err != nil {
		return nil, false, err
	}
	for i := range out {
		out[i].Faces = faces[out[i].ID]
		if out[i].Faces == nil {
			out[i].Faces = []FaceInfo{}
		}
	}
	return out, more, nil
}

func (s *Store) faceInfos(ctx context.Context, personIDs []string) (map[string][]FaceInfo, error) {
	out := map[string][]FaceInfo{}
	if len(personIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(personIDs))
	for i, id := range personIDs {
		args[i] = id
	}
	q := "SELECT id, person_id, model_id, quality, created FROM faces WHERE person_id IN (?" +
		strings.Repeat(",?", len(personIDs)-1) + ") ORDER BY created, id"
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("faces: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f FaceInfo
		var pid, quality, created string
		if err := rows.Scan(&f.ID, &pid, &f.ModelID, &quality, &created); err != nil {
			return nil, fmt.Errorf("faces: %w", err)
		}
		f.Quality, f.Created = json.RawMessage(quality), parseTime(created)
		out[pid] = append(out[pid], f)
	}
	return out, rows.Err()
}

// UpdatePerson changes a person's name and/or metadata (nil: unchanged).
func (s *Store) UpdatePerson(ctx context.Context, listID int64, id string, name *string, metadata json.RawMessage) error {
	if name != nil {
		if err := s.exec1(ctx, "UPDATE persons SET name = ? WHERE watchlist_id = ? AND id = ?", id, *name, listID, id); err != nil {
			return err
		}
	}
	if metadata != nil {
		if err := s.exec1(ctx, "UPDATE persons SET metadata = ? WHERE watchlist_id = ? AND id = ?", id, string(metadata), listID, id); err != nil {
			return err
		}
	}
	return nil
}

// exec1 runs a statement that must touch one row of person id.
func (s *Store) exec1(ctx context.Context, q, id string, args ...any) error {
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("person %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: no person %q in this watchlist", ErrNotFound, id)
	}
	return nil
}

// DeletePerson deletes a person and their templates, and checkpoints the
// WAL so that the zeroed pages reach the database file at once.
func (s *Store) DeletePerson(ctx context.Context, listID int64, id string) error {
	if err := s.exec1(ctx, "DELETE FROM persons WHERE watchlist_id = ? AND id = ?", id, listID, id); err != nil {
		return err
	}
	return s.Checkpoint(ctx)
}

// Checkpoint copies the WAL into the database file and truncates it,
// retrying while a reader holds an older snapshot, so that an erasure
// reaches the file before the request returns.
func (s *Store) Checkpoint(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		var busy, logFrames, done int
		if err := s.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if busy == 0 {
			return nil
		}
		if attempt == 50 {
			return errors.New("checkpoint: the WAL stayed busy for 5 s")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("checkpoint: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Vacuum rewrites the database file without free pages.
func (s *Store) Vacuum(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, "VACUUM"); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return s.Checkpoint(ctx)
}

// AddFace stores a template for a person of a list.
func (s *Store) AddFace(ctx context.Context, listID int64, personID string, modelID uint16, formatVersion int,
	template []byte, quality json.RawMessage) (FaceInfo, error) {
	f := FaceInfo{ID: newID("f_"), ModelID: modelID, Quality: quality, Created: now()}
	if len(f.Quality) == 0 {
		f.Quality = json.RawMessage("{}")
	}
	blob, encrypted := template, 0
	if s.seal != nil {
		var err error
		if blob, err = s.seal.seal(template, f.ID); err != nil {
			return f, err
		}
		encrypted = 1
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM persons WHERE watchlist_id = ? AND id = ?", listID, personID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: no person %q in this watchlist", ErrNotFound, personID)
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO faces(id, person_id, template, encrypted, model_id, format_version, quality, created) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
			f.ID, personID, blob, encrypted, modelID, formatVersion, string(f.Quality), f.Created.Format(timeLayout))
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("add face: %w", err)
	}
	return f, err
}

// DeleteFace deletes one template of a person and checkpoints the WAL.
func (s *Store) DeleteFace(ctx context.Context, listID int64, personID, faceID string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM faces WHERE id = ? AND person_id IN
		(SELECT id FROM persons WHERE watchlist_id = ? AND id = ?)`, faceID, listID, personID)
	if err != nil {
		return fmt.Errorf("delete face: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: no face %q of person %q in this watchlist", ErrNotFound, faceID, personID)
	}
	return s.Checkpoint(ctx)
}

// Faces returns every template of a list, decrypted.
func (s *Store) Faces(ctx context.Context, listID int64) ([]Face, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT f.id, f.person_id, f.template, f.encrypted, f.model_id, f.quality, f.created
		FROM faces f JOIN persons p ON p.id = f.person_id WHERE p.watchlist_id = ? ORDER BY f.created, f.id`, listID)
	if err != nil {
		return nil, fmt.Errorf("faces: %w", err)
	}
	defer rows.Close()
	var out []Face
	for rows.Next() {
		var f Face
		var encrypted int
		var quality, created string
		if err := rows.Scan(&f.ID, &f.PersonID, &f.Template, &encrypted, &f.ModelID, &quality, &created); err != nil {
			return nil, fmt.Errorf("faces: %w", err)
		}
		if encrypted == 1 {
			if s.seal == nil {
				return nil, fmt.Errorf("face %s is encrypted and no key is set", f.ID)
			}
			if f.Template, err = s.seal.open(f.Template, f.ID); err != nil {
				return nil, fmt.Errorf("face %s: %w", f.ID, err)
			}
		}
		f.Quality, f.Created = json.RawMessage(quality), parseTime(created)
		out = append(out, f)
	}
	return out, rows.Err()
}

// CountPersons is the number of persons in a list.
func (s *Store) CountPersons(ctx context.Context, listID int64) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM persons WHERE watchlist_id = ?", listID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count persons: %w", err)
	}
	return n, nil
}

// PersonName is a person's name.
func (s *Store) PersonName(ctx context.Context, id string) (string, error) {
	var name string
	err := s.db.QueryRowContext(ctx, "SELECT name FROM persons WHERE id = ?", id).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%w: no person %q", ErrNotFound, id)
	}
	if err != nil {
		return "", fmt.Errorf("person %s: %w", id, err)
	}
	return name, nil
}
