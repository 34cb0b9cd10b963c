// Package evalset reads a labelled evaluation folder (a manifest.json in the
// schema of ../shared/testdata: files with tasks, labels and geometry, plus
// verification pairs) and computes the figures the eval command and the
// accuracy tests report: detection recall/precision at an IoU, count
// accuracy, and verification accuracy, EER and TAR at a FAR.
package evalset

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Set is one evaluation folder.
type Set struct {
	Dir   string
	Files []File
	Pairs []Pair
}

// Box is a labelled box in pixels, x,y = top-left.
type Box struct{ X, Y, W, H float64 }

// File is one labelled file.
type File struct {
	Path   string   `json:"path"`
	Tasks  []string `json:"tasks"`
	Labels struct {
		Identity   *string `json:"identity"`
		NumFaces   *int    `json:"num_faces"`
		NumPersons *int    `json:"num_persons"`
	} `json:"labels"`
	Geometry struct {
		PersonBoxes    []Box `json:"person_boxes"`
		NumPersonsMin  *int  `json:"num_persons_min"`
		FaceBoxes      []Box `json:"face_boxes"`
		HasPersonBoxes bool  `json:"-"`
	} `json:"geometry"`
}

// Pair is a verification pair of files (paths relative to the folder).
type Pair struct {
	A    string `json:"a"`
	B    string `json:"b"`
	Same bool   `json:"same"`
}

// Load reads dir/manifest.json.
func Load(dir string) (*Set, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("evaluation set: %w", err)
	}
	var m struct {
		Files []json.RawMessage `json:"files"`
		Pairs struct {
			Pairs []Pair `json:"pairs"`
		} `json:"verification_pairs"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("evaluation set %s: %w", dir, err)
	}
	s := &Set{Dir: dir, Pairs: m.Pairs.Pairs}
	for _, raw := range m.Files {
		var f File
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, fmt.Errorf("evaluation set %s: %w", dir, err)
		}
		var g struct {
			Geometry map[string]json.RawMessage `json:"geometry"`
		}
		if err := json.Unmarshal(raw, &g); err == nil {
			_, f.Geometry.HasPersonBoxes = g.Geometry["person_boxes"]
		}
		s.Files = append(s.Files, f)
	}
	return s, nil
}

// Path returns the absolute path of a file of the set.
func (s *Set) Path(rel string) string { return filepath.Join(s.Dir, rel) }

// WithTask lists the image files that carry a task (videos are left out).
func (s *Set) WithTask(task string) []File {
	var out []File
	for _, f := range s.Files {
		if slices.Contains(f.Tasks, task) && filepath.Ext(f.Path) != ".mp4" {
			out = append(out, f)
		}
	}
	return out
}
