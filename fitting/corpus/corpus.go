// Package corpus reads the manifest of ../shared/corpus, the fitting data:
// the labelled files of each folder and the liveness sources. Only fitting
// and evaluation code reads it; nothing the daemon runs does.
package corpus

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// CorpusFile is one labelled file of ../shared/corpus (manifest.json).
type CorpusFile struct {
	Path string `json:"path"`
	// Group is the file's source where the corpus names one (liveness2's
	// identity_group); heads fitted across sources hold each out in turn.
	Group  string `json:"identity_group"`
	Labels struct {
		Identity string `json:"identity"`
		Mask     *bool  `json:"mask"`
		Emotion  string `json:"emotion"`
		Age      *int   `json:"age"`
		Gender   string `json:"gender"`
		Liveness string `json:"liveness"`
	} `json:"labels"`
}

// ReadCorpus lists the corpus files under a folder prefix ("mask/"), by path.
func ReadCorpus(dir, prefix string) ([]CorpusFile, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	var m struct {
		Files []CorpusFile `json:"files"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("corpus manifest: %w", err)
	}
	var out []CorpusFile
	for _, f := range m.Files {
		if strings.HasPrefix(f.Path, prefix) {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	if len(out) == 0 {
		return nil, fmt.Errorf("corpus %s: no files under %s", dir, prefix)
	}
	return out, nil
}

// LivenessSources are the corpus's liveness photos from every source: the
// CelebA-Spoof subset of liveness/ (one group) and the eight sources of
// liveness2/ (their own manifest), by path under the corpus folder.
func LivenessSources(dir string) ([]CorpusFile, error) {
	celeba, err := ReadCorpus(dir, "liveness/")
	if err != nil {
		return nil, err
	}
	for i := range celeba {
		celeba[i].Group = "celeba-spoof"
	}
	more, err := ReadCorpus(filepath.Join(dir, "liveness2"), "")
	if err != nil {
		return nil, err
	}
	for i := range more {
		if more[i].Group == "" {
			return nil, fmt.Errorf("corpus liveness2 %s: no identity_group", more[i].Path)
		}
		more[i].Path = "liveness2/" + more[i].Path
	}
	out := append(celeba, more...)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
