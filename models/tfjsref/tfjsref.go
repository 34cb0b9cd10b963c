// Package tfjsref runs TF.js graph models with the TF.js reference
// implementation (@tensorflow/tfjs-core, -converter and -backend-cpu 4.22.0,
// pure JavaScript, installed by scripts/deps.sh into third_party/tfjs) in a
// Node subprocess, so the model compiler can compare its output with the
// original network's; ONNX files run the same way in ONNX Runtime
// (onnxruntime-node, installed beside them).
package tfjsref

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Request is one batch of inputs for one model.
type Request struct {
	// ModelJSON is model.json; Files maps each weights path it names to bytes.
	ModelJSON []byte
	Files     map[string][]byte
	Input     string
	Shape     []int
	// Outputs are graph tensor names ("Identity:0"), in the order wanted.
	Outputs []string
	// OutputSizes are the element counts of the outputs.
	OutputSizes []int
	Inputs      [][]float32
	// ONNX, when set, names the ONNX file among Files: it runs in ONNX
	// Runtime (onnxruntime-node, installed beside the TF.js packages) with
	// each input transposed from Shape (NHWC) to NCHW.
	ONNX string
	// Library, when set, runs the network with its own library's code
	// instead of a graph model: Files then hold its weights manifest (at
	// Library.Weights) and .bin files, and Outputs are keys of what the
	// network's forward returns.
	Library *Library
}

// Library names a network class of a JS library installed beside the TF.js
// packages, e.g. face-api's AgeGenderNet: the reference builds it, loads
// the weights into it (loadFromWeightMap) and calls its forward on each
// input, on TF.js's CPU backend.
type Library struct {
	// Module is the library's CommonJS entry inside the modules folder.
	Module string `json:"module"`
	// Net is the class the module exports.
	Net string `json:"net"`
	// Weights is the weights manifest's name among the request's files.
	Weights string `json:"weights,omitempty"`
	// Shape is the tensor shape forward is given (the batch dimension may be dropped).
	Shape []int `json:"shape"`
	// Outputs are the keys of forward's result in the graph outputs'
	// order ("" for a result that is one tensor).
	Outputs []string `json:"outputs"`
}

// Runner knows where the script and the node modules are.
type Runner struct {
	// ModulesDir is the node_modules folder holding the TF.js packages.
	ModulesDir string
}

// Default returns a runner for the project rooted at root.
func Default(root string) *Runner {
	return &Runner{ModulesDir: filepath.Join(root, "third_party", "tfjs", "node_modules")}
}

// Available reports why the reference cannot run, or nil.
func (r *Runner) Available() error {
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("node is not installed: %w", err)
	}
	if _, err := os.Stat(filepath.Join(r.ModulesDir, "@tensorflow", "tfjs-converter")); err != nil {
		return fmt.Errorf("TF.js reference not installed in %s (run `make deps`): %w", r.ModulesDir, err)
	}
	return nil
}

// LibraryAvailable reports why a library's reference cannot run, or nil.
func (r *Runner) LibraryAvailable(lib *Library) error {
	if err := r.Available(); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(r.ModulesDir, filepath.Clean("/"+lib.Module))); err != nil {
		return fmt.Errorf("%s is not installed in %s (run `make deps`): %w", lib.Module, r.ModulesDir, err)
	}
	return nil
}

func scriptPath(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), name)
}

// ONNXAvailable reports why the ONNX reference cannot run, or nil.
func (r *Runner) ONNXAvailable() error {
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("node is not installed: %w", err)
	}
	if _, err := os.Stat(filepath.Join(r.ModulesDir, "onnxruntime-node")); err != nil {
		return fmt.Errorf("ONNX Runtime reference not installed in %s (run `make deps`): %w", r.ModulesDir, err)
	}
	return nil
}

// Run returns, per input, each output tensor's values.
func (r *Runner) Run(ctx context.Context, req *Request) ([][][]float32, error) {
	script := "reference.js"
	avail := r.Available()
	switch {
	case req.Library != nil:
		script, avail = "library.js", r.LibraryAvailable(req.Library)
	case req.ONNX != "":
		script, avail = "onnx.js", r.ONNXAvailable()
	}
	if avail != nil {
		return nil, avail
	}
	dir, err := os.MkdirTemp("", "tfjsref")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	modelPath := filepath.Join(dir, "model", "model.json")
	if err := os.MkdirAll(filepath.Dir(modelPath), 0o755); err != nil {
		return nil, err
	}
	if req.Library == nil && req.ONNX == "" {
		if err := os.WriteFile(modelPath, req.ModelJSON, 0o644); err != nil {
			return nil, err
		}
	}
	for name, b := range req.Files {
		p := filepath.Join(dir, "model", filepath.Clean("/"+name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, err
		}
	}
	size := 1
	for _, d := range req.Shape {
		size *= d
	}
	var in bytes.Buffer
	for i, x := range req.Inputs {
		if len(x) != size {
			return nil, fmt.Errorf("input %d has %d values, shape %v needs %d", i, len(x), req.Shape, size)
		}
		for _, v := range x {
			binary.Write(&in, binary.LittleEndian, math.Float32bits(v))
		}
	}
	inPath, outPath, reqPath := filepath.Join(dir, "inputs.f32"), filepath.Join(dir, "outputs.f32"), filepath.Join(dir, "request.json")
	if err := os.WriteFile(inPath, in.Bytes(), 0o644); err != nil {
		return nil, err
	}
	fields := map[string]any{"model": modelPath, "input": req.Input, "shape": req.Shape,
		"outputs": req.Outputs, "inputs": inPath, "count": len(req.Inputs), "result": outPath}
	if req.ONNX != "" {
		fields["model"] = filepath.Join(dir, "model", filepath.Clean("/"+req.ONNX))
	}
	if lib := req.Library; lib != nil {
		fields["module"] = filepath.Join(r.ModulesDir, filepath.Clean("/"+lib.Module))
		fields["net"] = lib.Net
		fields["weights"] = filepath.Join(dir, "model", filepath.Clean("/"+lib.Weights))
		fields["netShape"] = lib.Shape
		fields["outputs"] = lib.Outputs
	}
	rj, _ := json.Marshal(fields)
	if err := os.WriteFile(reqPath, rj, 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "node", scriptPath(script), reqPath)
	cmd.Env = append(os.Environ(), "NODE_PATH="+r.ModulesDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("reference (%s): %w: %s", script, err, lastLines(stderr.String(), 8))
	}
	raw, err := os.ReadFile(outPath)
	if err != nil {
		return nil, err
	}
	vals := make([]float32, len(raw)/4)
	for i := range vals {
		vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return splitOutputs(vals, len(req.Inputs), req.OutputSizes)
}

// splitOutputs cuts the flat result into samples x outputs.
func splitOutputs(vals []float32, samples int, sizes []int) ([][][]float32, error) {
	per := 0
	for _, s := range sizes {
		per += s
	}
	if per*samples != len(vals) {
		return nil, fmt.Errorf("TF.js reference wrote %d values, expected %d samples of %v", len(vals), samples, sizes)
	}
	out := make([][][]float32, samples)
	for i := range out {
		off := i * per
		for _, s := range sizes {
			out[i] = append(out[i], vals[off:off+s])
			off += s
		}
	}
	return out, nil
}

func lastLines(s string, n int) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
