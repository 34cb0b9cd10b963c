package models

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
)

// Manifest lists the registry packages the models come from and every model
// file the daemon may load. It is committed: the sha256 of each model is the
// one a build must reproduce and the runtime must find.
type Manifest struct {
	// Packages maps "name@version" to the npm integrity string of its tarball.
	Packages map[string]Package `json:"packages"`
	Models   []ModelInfo        `json:"models"`
}

// Package is one pinned registry package.
type Package struct {
	Integrity string `json:"integrity"`
	Licence   string `json:"licence"`
}

// ModelInfo describes one model file.
type ModelInfo struct {
	Name string `json:"name"`
	// File is the model's file name inside the models build directory.
	File   string `json:"file"`
	Source Source `json:"source"`
	// Licence and Origin say under which terms the weights come and who trained them.
	Licence   string       `json:"licence"`
	Origin    string       `json:"origin"`
	Precision string       `json:"precision"`
	SHA256    string       `json:"sha256"`
	Inputs    []TensorInfo `json:"inputs"`
	Outputs   []TensorInfo `json:"outputs"`
	Notes     string       `json:"notes,omitempty"`
}

// Source says where in a pinned package a model's bytes are.
type Source struct {
	Package string `json:"package"`
	Path    string `json:"path"`
	// Packed, when set, names a file inside a MediaPipe packed-assets blob at
	// Path; its byte range is read from the package's loader script.
	Packed string `json:"packed,omitempty"`
	Loader string `json:"loader,omitempty"`
}

// TensorInfo is the name, shape and element type of one model input or output.
type TensorInfo struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
	Type  string `json:"dtype"`
}

// LoadManifest reads a manifest file.
func LoadManifest(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read model manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse model manifest %s: %w", path, err)
	}
	seen := map[string]bool{}
	for _, mi := range m.Models {
		if mi.Name == "" || mi.File == "" {
			return nil, fmt.Errorf("model manifest %s: a model lacks name or file", path)
		}
		if seen[mi.Name] {
			return nil, fmt.Errorf("model manifest %s: model %q listed twice", path, mi.Name)
		}
		seen[mi.Name] = true
	}
	return &m, nil
}

// Save writes the manifest with stable formatting (models sorted by name).
func (m *Manifest) Save(path string) error {
	sort.Slice(m.Models, func(i, j int) bool { return m.Models[i].Name < m.Models[j].Name })
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode model manifest: %w", err)
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Find returns the entry of the named model.
func (m *Manifest) Find(name string) (*ModelInfo, error) {
	for i := range m.Models {
		if m.Models[i].Name == name {
			return &m.Models[i], nil
		}
	}
	return nil, fmt.Errorf("model %q is not in the manifest", name)
}
