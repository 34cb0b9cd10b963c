package models

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzManifest reads arbitrary manifests: no crash; an accepted one names
// each model once, keeps every file inside the models directory, finds each
// model by name and survives Save and a second read.
func FuzzManifest(f *testing.F) {
	f.Add([]byte(`{"models": [{"name": "a", "file": "a.tflite", "sha256": "00", "inputs": [{"name": "x", "shape": [1, 2], "dtype": "float32"}]}]}`))
	f.Add([]byte(`{"models": [{"name": "a", "file": "../a.tflite"}]}`))
	f.Add([]byte(`{"models": [{"name": "a", "file": "a"}, {"name": "a", "file": "b"}]}`))
	f.Add([]byte(`{"packages": {"p": {"integrity": "sha512-x"}}, "models": [{"name": "b", "file": "sub/b.tflite", "build": {"tool": "modelc", "input": {"range": [0, 1]}}}]}`))
	f.Add([]byte(`{"models": null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseManifest(b, "manifest.json")
		if err != nil {
			return
		}
		for _, mi := range m.Models {
			if !filepath.IsLocal(mi.File) {
				t.Fatalf("accepted file %q outside the models directory", mi.File)
			}
			if got, err := m.Find(mi.Name); err != nil || got.File != mi.File {
				t.Fatalf("Find(%q): %v", mi.Name, err)
			}
		}
		p := filepath.Join(t.TempDir(), "m.json")
		if err := m.Save(p); err != nil {
			return // values JSON cannot write (NaN cannot come from JSON; kept for safety)
		}
		again, err := LoadManifest(p)
		if err != nil || len(again.Models) != len(m.Models) {
			saved, _ := os.ReadFile(p)
			t.Fatalf("a saved manifest does not read back: %v\n%s", err, saved)
		}
	})
}
