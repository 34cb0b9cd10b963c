package watchlist

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"imageapid/estimators/facetemplate"
)

// ExportFormat names the export file; ExportVersion is its version. A
// reader refuses another format and a newer version.
const (
	ExportFormat  = "imageapid-watchlist"
	ExportVersion = 1
)

// Export is a list moved between boxes: persons and templates, no images.
type Export struct {
	Format    string         `json:"format"`
	Version   int            `json:"version"`
	Watchlist string         `json:"watchlist"`
	FAR       float64        `json:"fa_r"`
	ModelID   uint16         `json:"model_id"`
	Exported  time.Time      `json:"exported"`
	Persons   []ExportPerson `json:"persons"`
}

// ExportPerson is a person with their templates.
type ExportPerson struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Metadata json.RawMessage `json:"metadata"`
	Created  time.Time       `json:"created"`
	Faces    []ExportFace    `json:"faces"`
}

// ExportFace is one template ([]byte marshals as base64).
type ExportFace struct {
	ID       string          `json:"face_id"`
	Quality  json.RawMessage `json:"quality"`
	Created  time.Time       `json:"created"`
	Template []byte          `json:"$template"`
}

// Export writes a whole list.
func (s *Service) Export(ctx context.Context, list string) (Export, error) {
	li, err := s.list(ctx, list, false)
	if err != nil {
		return Export{}, err
	}
	e := Export{Format: ExportFormat, Version: ExportVersion, Watchlist: li.Name, FAR: li.FAR, ModelID: s.cal.ModelID,
		Exported: now(), Persons: []ExportPerson{}}
	faces, err := s.store.Faces(ctx, li.ID)
	if err != nil {
		return Export{}, err
	}
	byPerson := map[string][]ExportFace{}
	for _, f := range faces {
		byPerson[f.PersonID] = append(byPerson[f.PersonID], ExportFace{ID: f.ID, Quality: f.Quality, Created: f.Created, Template: f.Template})
	}
	after := ""
	for {
		page, more, err := s.store.Persons(ctx, li.ID, after, 500)
		if err != nil {
			return Export{}, err
		}
		for _, p := range page {
			fs := byPerson[p.ID]
			if fs == nil {
				fs = []ExportFace{}
			}
			e.Persons = append(e.Persons, ExportPerson{ID: p.ID, Name: p.Name, Metadata: p.Metadata, Created: p.Created, Faces: fs})
			after = p.ID
		}
		if !more {
			return e, nil
		}
	}
}

// ImportResult counts what an import added.
type ImportResult struct {
	Watchlist string `json:"watchlist"`
	Persons   int    `json:"persons"`
	Faces     int    `json:"faces"`
}

// Import adds an export's persons and templates to a list (created with
// the export's fa_r if absent), keeping their ids; it is all or nothing.
func (s *Service) Import(ctx context.Context, list string, e Export) (ImportResult, error) {
	if e.Format != ExportFormat {
		return ImportResult{}, fmt.Errorf("%w: not a watchlist export (format %q, want %q)", ErrBadInput, e.Format, ExportFormat)
	}
	if e.Version < 1 || e.Version > ExportVersion {
		return ImportResult{}, fmt.Errorf("%w: export version %d, this server reads up to %d", ErrBadInput, e.Version, ExportVersion)
	}
	vecs := map[string][]float32{}
	for i, p := range e.Persons {
		name := p.Name
		if err := checkPerson(&name, p.Metadata); err != nil {
			return ImportResult{}, fmt.Errorf("persons[%d]: %w", i, err)
		}
		if p.ID == "" {
			return ImportResult{}, fmt.Errorf("%w: persons[%d] has no id", ErrBadInput, i)
		}
		for j, f := range p.Faces {
			t, err := facetemplate.Decode(f.Template, s.cal.ModelID)
			if err != nil {
				return ImportResult{}, fmt.Errorf("%w: persons[%d].faces[%d]: %v", ErrBadInput, i, j, err)
			}
			if f.ID == "" {
				return ImportResult{}, fmt.Errorf("%w: persons[%d].faces[%d] has no face_id", ErrBadInput, i, j)
			}
			vecs[f.ID] = t.Vector
		}
	}
	far := e.FAR
	if !(far > 0 && far < 1) {
		far = s.cfg.FAR
	}
	if !listNameRE.MatchString(list) {
		return ImportResult{}, fmt.Errorf("%w: watchlist name %q: use 1 to 64 letters, digits, '_', '.' or '-'", ErrBadInput, list)
	}
	s.mu.Lock()
	_, existed := s.indexes[list]
	s.mu.Unlock()
	if !existed {
		if _, err := s.store.EnsureList(ctx, list, far); err != nil {
			return ImportResult{}, err
		}
	}
	li, err := s.list(ctx, list, true)
	if err != nil {
		return ImportResult{}, err
	}
	res := ImportResult{Watchlist: list}
	err = s.store.importPersons(ctx, li.ID, e, s.cal.ModelID, func(p ExportPerson) { res.Persons++; res.Faces += len(p.Faces) })
	if err != nil {
		return ImportResult{}, err
	}
	for _, p := range e.Persons {
		for _, f := range p.Faces {
			if err := li.index.Add(f.ID, p.ID, vecs[f.ID]); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

func (s *Store) importPersons(ctx context.Context, listID int64, e Export, modelID uint16, added func(ExportPerson)) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, p := range e.Persons {
			meta := string(p.Metadata)
			if meta == "" {
				meta = "{}"
			}
			created := p.Created
			if created.IsZero() {
				created = now()
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO persons(id, watchlist_id, name, metadata, created) VALUES(?, ?, ?, ?, ?)",
				p.ID, listID, p.Name, meta, created.UTC().Format(timeLayout)); err != nil {
				if isUnique(err) {
					return fmt.Errorf("%w: person %q is already on this box", ErrConflict, p.ID)
				}
				return fmt.Errorf("import person %s: %w", p.ID, err)
			}
			for _, f := range p.Faces {
				blob, encrypted := f.Template, 0
				if s.seal != nil {
					var err error
					if blob, err = s.seal.seal(f.Template, f.ID); err != nil {
						return err
					}
					encrypted = 1
				}
				q := string(f.Quality)
				if q == "" {
					q = "{}"
				}
				fc := f.Created
				if fc.IsZero() {
					fc = now()
				}
				if _, err := tx.ExecContext(ctx, "INSERT INTO faces(id, person_id, template, encrypted, model_id, format_version, quality, created) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
					f.ID, p.ID, blob, encrypted, modelID, facetemplate.FormatVersion, q, fc.UTC().Format(timeLayout)); err != nil {
					if isUnique(err) {
						return fmt.Errorf("%w: face %q is already on this box", ErrConflict, f.ID)
					}
					return fmt.Errorf("import face %s: %w", f.ID, err)
				}
			}
			added(p)
		}
		return nil
	})
}

func isUnique(err error) bool {
	var coder interface{ Code() int }
	// SQLITE_CONSTRAINT_PRIMARYKEY (1555) and SQLITE_CONSTRAINT_UNIQUE (2067)
	return errors.As(err, &coder) && (coder.Code() == 1555 || coder.Code() == 2067)
}
