package models

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
	// Build, when set, says the file is compiled by the project's model
	// compiler (models/compiler) from the graph at Source.Path.
	Build *Build `json:"build,omitempty"`
}

// Build describes how the model compiler makes a model file.
type Build struct {
	// Tool is the importer: "tfjs" (TensorFlow.js graph model),
	// "tfjs-weights" (a weights-only TF.js model: Source.Path is its
	// weights manifest and Description the committed graph description) or
	// "onnx" (an ONNX file, checked against ONNX Runtime).
	Tool string `json:"tool"`
	// Description is the graph description of a "tfjs-weights" model,
	// relative to the project root (see models/graphs).
	Description string `json:"description,omitempty"`
	// Precision is what was asked for: "float32" or "int8". The shipped
	// precision is ModelInfo.Precision; Notes say why when they differ.
	Precision string `json:"precision"`
	// Calibration is the committed activation-range file (int8), relative
	// to the project root; `make calibrate` rewrites it.
	Calibration string `json:"calibration,omitempty"`
	// CalibrationImages says what the int8 ranges and gate are measured on:
	// "faces" (default: face-pipeline crops of corpus photos) or "frames"
	// (scenes with people from the fixtures, for object detectors).
	CalibrationImages string `json:"calibration_images,omitempty"`
	// Input says how a face crop becomes the input tensor.
	Input BuildInput `json:"input"`
	// Kinds say per output how int8 agreement is judged (see models/compiler).
	Kinds []string `json:"kinds,omitempty"`
	// Outputs optionally cut the graph at these tensors.
	Outputs []string `json:"outputs,omitempty"`
	// InputSize, when set, rebuilds the graph for a square input of this
	// side: the input and the constant upsampling sizes scale with it.
	InputSize int `json:"input_size,omitempty"`
	// Parity holds the gate figures measured when the manifest was last updated.
	Parity *BuildParity `json:"parity,omitempty"`
}

// BuildInput is the input normalization: colour "rgb" or "gray", pixel 0..255 mapped onto Range.
type BuildInput struct {
	Color string     `json:"color"`
	Range [2]float64 `json:"range"`
}

// BuildParity are the compiler's gate figures.
type BuildParity struct {
	Crops        string  `json:"crops"`
	FloatSamples int     `json:"float_samples"`
	FloatMaxErr  float64 `json:"float_max_err"`
	Int8Samples  int     `json:"int8_samples,omitempty"`
	// Int8 per output: kind and figure (argmax agreement, mean cosine with
	// its minimum, or mean absolute difference in years).
	Int8 []Int8Agreement `json:"int8,omitempty"`
	// Corpus* are the int8 figures `make calibrate` measured on held-out
	// corpus crops; a failure there ships float.
	CorpusCrops   string          `json:"corpus_crops,omitempty"`
	CorpusSamples int             `json:"corpus_samples,omitempty"`
	Corpus        []Int8Agreement `json:"corpus_int8,omitempty"`
}

// Int8Agreement is one output's int8-versus-float figure.
type Int8Agreement struct {
	Output string  `json:"output"`
	Kind   string  `json:"kind"`
	Value  float64 `json:"value"`
	Min    float64 `json:"min,omitempty"`
	Pass   bool    `json:"pass"`
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
	return parseManifest(b, path)
}

// parseManifest is LoadManifest of the file's bytes.
func parseManifest(b []byte, path string) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse model manifest %s: %w", path, err)
	}
	seen := map[string]bool{}
	for _, mi := range m.Models {
		if mi.Name == "" || mi.File == "" {
			return nil, fmt.Errorf("model manifest %s: a model lacks name or file", path)
		}
		if !filepath.IsLocal(mi.File) {
			return nil, fmt.Errorf("model manifest %s: model %q: file %q must be a path inside the models directory", path, mi.Name, mi.File)
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
