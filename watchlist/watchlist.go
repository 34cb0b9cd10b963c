// Package watchlist owns 1:N face identification on the box: watchlists of
// persons and their face templates in an embedded SQLite database (schema
// migrations, optional AES-GCM sealing of the template column, erasure that
// reaches the file), an in-memory exact search index per list, enrolment
// from images through the face pipeline and the template extractor, and
// the HTTP routes under /v1/watchlists.
package watchlist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"sync"
	"time"

	"imageapid/estimators/facetemplate"
)

// Config is the watchlist section of the daemon's configuration.
type Config struct {
	Enabled bool `yaml:"enabled"`
	// DB is the database file; empty means watchlists.db in the state directory.
	DB string `yaml:"db"`
	// EncryptionKeyFile holds a 32-byte key (raw or 64 hex digits); set, the
	// template column is sealed with AES-256-GCM.
	EncryptionKeyFile string `yaml:"encryption_key_file"`
	// FAR is a new list's target false-accept rate: its match threshold is
	// the largest distance whose fa_r in the verify-matcher calibration
	// table is at most this.
	FAR float64 `yaml:"fa_r"`
	// VacuumInterval is how often the file is rewritten without free pages.
	VacuumInterval time.Duration `yaml:"vacuum_interval"`
	// IdentifierList is the list the face-identifier service searches.
	IdentifierList string `yaml:"identifier_list"`
	// MinEyesDistance (pixels) and MaxYaw (degrees) gate enrolment photos.
	MinEyesDistance float64 `yaml:"min_eyes_distance"`
	MaxYaw          float64 `yaml:"max_yaw"`
}

// DefaultConfig is the section's defaults.
func DefaultConfig() Config {
	return Config{Enabled: true, FAR: 0.0001, VacuumInterval: 24 * time.Hour, IdentifierList: "default", MinEyesDistance: 16, MaxYaw: 45}
}

// Check reports the first invalid setting.
func (c Config) Check() error {
	if !(c.FAR > 0 && c.FAR < 1) {
		return fmt.Errorf("watchlist.fa_r %v: want a rate between 0 and 1", c.FAR)
	}
	if !listNameRE.MatchString(c.IdentifierList) {
		return fmt.Errorf("watchlist.identifier_list %q: use 1 to 64 letters, digits, '_', '.' or '-'", c.IdentifierList)
	}
	if c.VacuumInterval < 0 || c.MinEyesDistance < 0 || c.MaxYaw < 0 {
		return errors.New("watchlist: vacuum_interval, min_eyes_distance and max_yaw must not be negative")
	}
	return nil
}

// Errors the service returns, wrapped with details; routes map them to statuses.
var (
	ErrBadInput = errors.New("bad input")
)

var listNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Service is the watchlists: the store and each list's index.
type Service struct {
	store     *Store
	cal       *facetemplate.Calibration
	extractor Extractor
	cfg       Config
	log       *slog.Logger

	mu      sync.Mutex
	indexes map[string]*listIndex
}

// listIndex is a list's row and its in-memory index.
type listIndex struct {
	List
	threshold float64
	index     *Index
}

// New opens the store and loads every list's templates into memory.
// extractor may be nil (then only $template enrolment and search work).
func New(ctx context.Context, store *Store, cal *facetemplate.Calibration, extractor Extractor, cfg Config, log *slog.Logger) (*Service, error) {
	s := &Service{store: store, cal: cal, extractor: extractor, cfg: cfg, log: log, indexes: map[string]*listIndex{}}
	lists, err := store.Lists(ctx)
	if err != nil {
		return nil, fmt.Errorf("watchlist database %s: %w", store.Path(), err)
	}
	for _, l := range lists {
		li := s.newListIndex(l)
		faces, err := store.Faces(ctx, l.ID)
		if err != nil {
			return nil, fmt.Errorf("watchlist database %s: list %s: %w", store.Path(), l.Name, err)
		}
		for _, f := range faces {
			t, err := facetemplate.Decode(f.Template, cal.ModelID)
			if err != nil {
				// A template of another model stays stored (export keeps it)
				// but cannot be searched with this extractor.
				log.Warn("watchlist: face not searchable", "list", l.Name, "face", f.ID, "err", err)
				continue
			}
			if err := li.index.Add(f.ID, f.PersonID, t.Vector); err != nil {
				return nil, fmt.Errorf("watchlist %s: %w", l.Name, err)
			}
		}
		s.indexes[l.Name] = li
	}
	return s, nil
}

func (s *Service) newListIndex(l List) *listIndex {
	return &listIndex{List: l, threshold: Threshold(s.cal, l.FAR), index: NewIndex(s.dim())}
}

func (s *Service) dim() int {
	for _, n := range facetemplate.Networks {
		if n.ID == s.cal.ModelID || n.FlipID == s.cal.ModelID {
			return n.Dim
		}
	}
	return 0
}

// Threshold is the largest table distance whose fa_r is at most far.
func Threshold(cal *facetemplate.Calibration, far float64) float64 {
	t := 0.0
	for _, p := range cal.Points {
		if p[1] > far {
			break
		}
		t = p[0]
	}
	return t
}

// Run vacuums the database every VacuumInterval until ctx ends.
func (s *Service) Run(ctx context.Context) {
	if s.cfg.VacuumInterval <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.VacuumInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			vctx, cancel := context.WithTimeout(ctx, time.Minute)
			if err := s.store.Vacuum(vctx); err != nil {
				s.log.Warn("watchlist: vacuum", "err", err)
			}
			cancel()
		}
	}
}

// list returns a list, creating it when create is set.
func (s *Service) list(ctx context.Context, name string, create bool) (*listIndex, error) {
	if !listNameRE.MatchString(name) {
		return nil, fmt.Errorf("%w: watchlist name %q: use 1 to 64 letters, digits, '_', '.' or '-'", ErrBadInput, name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if li, ok := s.indexes[name]; ok {
		return li, nil
	}
	if !create {
		return nil, fmt.Errorf("%w: no watchlist %q", ErrNotFound, name)
	}
	l, err := s.store.EnsureList(ctx, name, s.cfg.FAR)
	if err != nil {
		return nil, err
	}
	li := s.newListIndex(l)
	s.indexes[name] = li
	return li, nil
}

// ListSummary is a list with its sizes and threshold.
type ListSummary struct {
	List
	Persons   int     `json:"persons"`
	Faces     int     `json:"faces"`
	Threshold float64 `json:"threshold"`
}

// Lists summarises every list.
func (s *Service) Lists(ctx context.Context) ([]ListSummary, error) {
	s.mu.Lock()
	lis := make([]*listIndex, 0, len(s.indexes))
	for _, li := range s.indexes {
		lis = append(lis, li)
	}
	s.mu.Unlock()
	sort.Slice(lis, func(i, j int) bool { return lis[i].Name < lis[j].Name })
	out := []ListSummary{}
	for _, li := range lis {
		n, err := s.store.CountPersons(ctx, li.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, ListSummary{List: li.List, Persons: n, Faces: li.index.Len(), Threshold: li.threshold})
	}
	return out, nil
}

// CreatePerson adds a person to a list (creating the list).
func (s *Service) CreatePerson(ctx context.Context, list, name string, metadata json.RawMessage) (Person, error) {
	if err := checkPerson(&name, metadata); err != nil {
		return Person{}, err
	}
	li, err := s.list(ctx, list, true)
	if err != nil {
		return Person{}, err
	}
	return s.store.CreatePerson(ctx, li.ID, name, metadata)
}

func checkPerson(name *string, metadata json.RawMessage) error {
	if name != nil && (len(*name) == 0 || len(*name) > 200) {
		return fmt.Errorf("%w: name must be 1 to 200 bytes", ErrBadInput)
	}
	if metadata != nil {
		var obj map[string]any
		if err := json.Unmarshal(metadata, &obj); err != nil || obj == nil {
			return fmt.Errorf("%w: metadata must be a JSON object", ErrBadInput)
		}
		if len(metadata) > 16<<10 {
			return fmt.Errorf("%w: metadata is %d bytes, at most 16384", ErrBadInput, len(metadata))
		}
	}
	return nil
}

// Person returns a person with their faces.
func (s *Service) Person(ctx context.Context, list, id string) (Person, error) {
	li, err := s.list(ctx, list, false)
	if err != nil {
		return Person{}, err
	}
	return s.store.Person(ctx, li.ID, id)
}

// Persons returns a page of a list's persons.
func (s *Service) Persons(ctx context.Context, list, after string, limit int) ([]Person, bool, error) {
	li, err := s.list(ctx, list, false)
	if err != nil {
		return nil, false, err
	}
	return s.store.Persons(ctx, li.ID, after, limit)
}

// UpdatePerson changes a person's name and/or metadata.
func (s *Service) UpdatePerson(ctx context.Context, list, id string, name *string, metadata json.RawMessage) (Person, error) {
	if err := checkPerson(name, metadata); err != nil {
		return Person{}, err
	}
	li, err := s.list(ctx, list, false)
	if err != nil {
		return Person{}, err
	}
	if err := s.store.UpdatePerson(ctx, li.ID, id, name, metadata); err != nil {
		return Person{}, err
	}
	return s.store.Person(ctx, li.ID, id)
}

// DeletePerson erases a person and their templates (from memory and from the file).
func (s *Service) DeletePerson(ctx context.Context, list, id string) error {
	li, err := s.list(ctx, list, false)
	if err != nil {
		return err
	}
	if err := s.store.DeletePerson(ctx, li.ID, id); err != nil {
		return err
	}
	li.index.RemovePerson(id)
	return nil
}

// AddTemplate stores a template blob for a person and indexes it.
func (s *Service) AddTemplate(ctx context.Context, list, personID string, blob []byte, quality json.RawMessage) (FaceInfo, error) {
	t, err := facetemplate.Decode(blob, s.cal.ModelID)
	if err != nil {
		return FaceInfo{}, fmt.Errorf("%w: $template: %v", ErrBadInput, err)
	}
	li, err := s.list(ctx, list, false)
	if err != nil {
		return FaceInfo{}, err
	}
	f, err := s.store.AddFace(ctx, li.ID, personID, t.ModelID, facetemplate.FormatVersion, blob, quality)
	if err != nil {
		return f, err
	}
	if err := li.index.Add(f.ID, personID, t.Vector); err != nil {
		return f, err
	}
	return f, nil
}

// DeleteFace erases one template of a person.
func (s *Service) DeleteFace(ctx context.Context, list, personID, faceID string) error {
	li, err := s.list(ctx, list, false)
	if err != nil {
		return err
	}
	if err := s.store.DeleteFace(ctx, li.ID, personID, faceID); err != nil {
		return err
	}
	li.index.Remove(faceID)
	return nil
}

// Candidate is one person a search found.
type Candidate struct {
	PersonID string  `json:"person_id"`
	Name     string  `json:"name"`
	FaceID   string  `json:"face_id"`
	Distance float64 `json:"distance"`
	Score    float64 `json:"score"`
	FAR      float64 `json:"fa_r"`
}

// Search returns up to limit persons under the list's threshold for a unit
// vector, best first.
func (s *Service) Search(ctx context.Context, list string, vec []float32, limit int) ([]Candidate, error) {
	li, err := s.list(ctx, list, false)
	if err != nil {
		return nil, err
	}
	hits, err := li.index.Search(vec, limit, li.threshold)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	out := make([]Candidate, 0, len(hits))
	for _, h := range hits {
		name, err := s.store.PersonName(ctx, h.PersonID)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since the scan
		}
		if err != nil {
			return nil, err
		}
		far, _ := s.cal.Rates(h.Distance)
		out = append(out, Candidate{PersonID: h.PersonID, Name: name, FaceID: h.FaceID,
			Distance: round6(h.Distance), Score: round6(s.cal.Score(h.Distance)), FAR: round6(far)})
	}
	return out, nil
}

// SearchTemplate is Search for a template blob.
func (s *Service) SearchTemplate(ctx context.Context, list string, blob []byte, limit int) ([]Candidate, error) {
	t, err := facetemplate.Decode(blob, s.cal.ModelID)
	if err != nil {
		return nil, fmt.Errorf("%w: $template: %v", ErrBadInput, err)
	}
	return s.Search(ctx, list, t.Vector, limit)
}

// SetFAR changes a list's target false-accept rate (and so its threshold).
func (s *Service) SetFAR(ctx context.Context, list string, far float64) (ListSummary, error) {
	if !(far > 0 && far < 1) {
		return ListSummary{}, fmt.Errorf("%w: fa_r must be between 0 and 1", ErrBadInput)
	}
	li, err := s.list(ctx, list, true)
	if err != nil {
		return ListSummary{}, err
	}
	if err := s.store.SetFAR(ctx, li.ID, far); err != nil {
		return ListSummary{}, err
	}
	s.mu.Lock()
	nl := *li
	nl.FAR, nl.threshold = far, Threshold(s.cal, far)
	s.indexes[list] = &nl
	s.mu.Unlock()
	n, err := s.store.CountPersons(ctx, li.ID)
	return ListSummary{List: nl.List, Persons: n, Faces: nl.index.Len(), Threshold: nl.threshold}, err
}

func round6(v float64) float64 {
	const k = 1e6
	if v < 0 {
		return -float64(int64(-v*k+0.5)) / k
	}
	return float64(int64(v*k+0.5)) / k
}

// Close closes the database.
func (s *Service) Close() error { return s.store.Close() }
