package compiler

import (
	"context"
	"fmt"
	"image"
	"math"
	"path"
	"strings"

	"imageapid/models"
	"imageapid/models/onnx"
	"imageapid/models/tfjs"
	"imageapid/models/tfjsref"
)

// Spec says how to build one model.
type Spec struct {
	Name string
	// Graph is model.json's path inside the source (weights paths are relative to it).
	Graph string
	// Precision is "float32" or "int8".
	Precision string
	// Outputs optionally cut the graph at these tensors instead of the signature's.
	Outputs []string
	// InputSize, when set, rewrites the graph for a square input of this
	// side, scaling its constant upsampling sizes (see resizedSource).
	InputSize int
	Input     InputSpec
	// Kinds say per output how int8 agreement is judged: "class" (argmax),
	// "binary" (one probability, threshold 0.5), "embedding" (cosine),
	// "age" (a value in years), "agedist" (softmax over years 0..N-1),
	// "heatmap" (F1 of the [1,H,W,C] map's peaks, as an object detector
	// decodes them), "regression" (mean absolute error relative to the mean
	// absolute float value).
	Kinds []string
	// Ranges are the calibrated activation ranges (needed for int8).
	Ranges map[string][2]float64
	// Agreement is the int8 gate measured on held-out corpus crops by
	// calibration, when the calibration file records it.
	Agreement      *Int8Parity
	AgreementCrops string
	// Description, when set, is the hand-written graph of a weights-only
	// model; Graph is then its weights manifest.
	Description *Description
	// ONNX says Graph is an ONNX file (see ONNXGraph); its reference is
	// ONNX Runtime.
	ONNX bool
}

// Source reads files of the package a model comes from.
type Source func(name string) ([]byte, error)

// Loaded is an imported model with what the gates need.
type Loaded struct {
	Spec      Spec
	TFJS      *tfjs.Model
	ModelJSON []byte
	Files     map[string][]byte
	Graph     *Graph
	// OutputTensors are the graph tensor names of the outputs, in order.
	OutputTensors []string
}

// Load reads and imports a model and applies the float rewrites.
func Load(spec Spec, src Source) (*Loaded, error) {
	js, err := src(spec.Graph)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", spec.Name, err)
	}
	if spec.Description != nil {
		return loadDescribed(spec, js, src)
	}
	if spec.ONNX {
		om, err := onnx.Parse(js)
		if err != nil {
			return nil, fmt.Errorf("model %s: %s: %w", spec.Name, spec.Graph, err)
		}
		m, err := ONNXGraph(om)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", spec.Name, err)
		}
		return imported(spec, m, nil, map[string][]byte{path.Base(spec.Graph): js})
	}
	if spec.InputSize != 0 {
		if js, src, err = resizedSource(js, spec.Graph, src, spec.InputSize); err != nil {
			return nil, fmt.Errorf("model %s: %w", spec.Name, err)
		}
	}
	dir := path.Dir(spec.Graph)
	files := map[string][]byte{}
	m, err := tfjs.Read(js, func(name string) ([]byte, error) {
		b, err := src(path.Join(dir, name))
		files[name] = b
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", spec.Name, err)
	}
	return imported(spec, m, js, files)
}

// loadDescribed builds a described model's graph over its weights manifest
// js; the manifest and its .bin files are kept for the library reference.
func loadDescribed(spec Spec, js []byte, src Source) (*Loaded, error) {
	dir := path.Dir(spec.Graph)
	files := map[string][]byte{path.Base(spec.Graph): js}
	m, err := spec.Description.Graph(js, func(name string) ([]byte, error) {
		b, err := src(path.Join(dir, name))
		files[name] = b
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", spec.Name, err)
	}
	return imported(spec, m, nil, files)
}

// imported imports a read model and applies the float rewrites.
func imported(spec Spec, m *tfjs.Model, js []byte, files map[string][]byte) (*Loaded, error) {
	g, err := Import(spec.Name, m, spec.Outputs)
	if err != nil {
		return nil, err
	}
	Optimize(g)
	uniqueNames(g)
	l := &Loaded{Spec: spec, TFJS: m, ModelJSON: js, Files: files, Graph: g}
	if len(spec.Outputs) > 0 {
		l.OutputTensors = spec.Outputs
	} else {
		for _, p := range m.Outputs {
			l.OutputTensors = append(l.OutputTensors, p.Tensor)
		}
	}
	if len(g.Inputs) != 1 {
		return nil, fmt.Errorf("model %s: %d inputs; the gates handle one", spec.Name, len(g.Inputs))
	}
	return l, nil
}

// Float emits the float32 TFLite file.
func (l *Loaded) Float() ([]byte, error) {
	m, err := Emit(l.Graph, l.description("float32"))
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", l.Spec.Name, err)
	}
	return m.Encode()
}

func (l *Loaded) description(precision string) string {
	return fmt.Sprintf("imageapid modelc: %s (%s) %s", l.Spec.Name, l.Spec.Graph, precision)
}

// Inputs turns crops into input tensors.
func (l *Loaded) Inputs(crops []*image.RGBA) ([][]float32, error) {
	var out [][]float32
	for _, c := range crops {
		x, err := l.Spec.Input.Tensor(c, l.Graph.Inputs[0].Shape)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", l.Spec.Name, err)
		}
		out = append(out, x)
	}
	return out, nil
}

func (l *Loaded) outputSizes() []int {
	var s []int
	for _, o := range l.Graph.Outputs {
		s = append(s, o.Size())
	}
	return s
}

// Reference runs the original model in TF.js: the graph model, or for a
// described model the network in its library's own code; an ONNX model in
// ONNX Runtime.
func (l *Loaded) Reference(ctx context.Context, r *tfjsref.Runner, inputs [][]float32) ([][][]float32, error) {
	in := l.Graph.Inputs[0]
	req := &tfjsref.Request{ModelJSON: l.ModelJSON, Files: l.Files, Input: in.Name, Shape: in.Shape,
		Outputs: l.OutputTensors, OutputSizes: l.outputSizes(), Inputs: inputs}
	if l.Spec.ONNX {
		req.ONNX = path.Base(l.Spec.Graph)
	}
	if d := l.Spec.Description; d != nil {
		if d.Reference == nil {
			return nil, fmt.Errorf("model %s: its graph description names no library reference", l.Spec.Name)
		}
		lib := *d.Reference
		lib.Weights = path.Base(l.Spec.Graph)
		req.Library = &lib
	}
	return r.Run(ctx, req)
}

// RunTFLite runs a TFLite file through the project's runtime (1 thread) on
// every input and returns every output.
func RunTFLite(ctx context.Context, name string, b []byte, inputs [][]float32, delegate string) ([][][]float32, error) {
	var out [][][]float32
	err := EachTFLite(ctx, name, b, inputs, delegate, func(_ int, sample [][]float32) {
		copied := make([][]float32, len(sample))
		for k, y := range sample {
			copied[k] = append([]float32{}, y...)
		}
		out = append(out, copied)
	})
	return out, err
}

// EachTFLite runs a TFLite file on every input and hands each sample's
// outputs to fn, which must not keep them (they are the interpreter's
// buffers): calibration probes expose every activation, far too much to
// hold for all samples at once.
func EachTFLite(ctx context.Context, name string, b []byte, inputs [][]float32, delegate string, fn func(i int, outputs [][]float32)) error {
	m, err := models.OpenBytes(name, b, models.ModelOptions{Delegate: delegate, Threads: 1, Pool: 1})
	if err != nil {
		return err
	}
	defer m.Close()
	// The runtime falls back to plain CPU kernels when a delegate refuses
	// the model; a gate asked for the delegate and must not pass without it.
	if st := m.DelegateStatus(); st.Actual != delegate {
		return fmt.Errorf("model %s does not load under %s (runs on %s: %s)", name, delegate, st.Actual, st.Fallback)
	}
	return m.Run(ctx, func(it *models.Interpreter) error {
		for i, x := range inputs {
			if err := ctx.Err(); err != nil {
				return err
			}
			in, err := it.Input(0)
			if err != nil {
				return err
			}
			if len(in) != len(x) {
				return fmt.Errorf("input has %d values, model wants %d", len(x), len(in))
			}
			copy(in, x)
			if err := it.Invoke(); err != nil {
				return err
			}
			sample := make([][]float32, it.Outputs())
			for k := range sample {
				if sample[k], err = it.Output(k); err != nil {
					return err
				}
			}
			fn(i, sample)
		}
		return nil
	})
}

// FloatParity is the float gate's result: the largest deviation from TF.js.
type FloatParity struct {
	Samples int     `json:"samples"`
	MaxAbs  float64 `json:"max_abs_diff"`
	// MaxErr is the largest error relative to the tolerance's scale:
	// |a-b| / max(1, |b|); the gate requires it <= 1e-4.
	MaxErr float64 `json:"max_err"`
}

// FloatTolerance is the float gate: absolute 1e-4, relative for values above 1.
const FloatTolerance = 1e-4

// CheckFloat compares TFLite outputs with the reference outputs.
func CheckFloat(got, want [][][]float32) (FloatParity, error) {
	p := FloatParity{Samples: len(want)}
	if len(got) != len(want) {
		return p, fmt.Errorf("%d samples, reference has %d", len(got), len(want))
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			return p, fmt.Errorf("sample %d: %d outputs, reference has %d", i, len(got[i]), len(want[i]))
		}
		for k := range want[i] {
			if len(got[i][k]) != len(want[i][k]) {
				return p, fmt.Errorf("output %d: %d values, reference has %d", k, len(got[i][k]), len(want[i][k]))
			}
			for j, w := range want[i][k] {
				d := math.Abs(float64(got[i][k][j]) - float64(w))
				if math.IsNaN(d) {
					d = math.Inf(1)
				}
				p.MaxAbs = math.Max(p.MaxAbs, d)
				p.MaxErr = math.Max(p.MaxErr, d/math.Max(1, math.Abs(float64(w))))
			}
		}
	}
	if p.MaxErr > FloatTolerance {
		return p, fmt.Errorf("float parity: max error %.3g exceeds %.0e (max abs diff %.3g)", p.MaxErr, FloatTolerance, p.MaxAbs)
	}
	return p, nil
}

// Describe lists the graph's inputs and outputs as the manifest records them.
func (l *Loaded) Describe() (in, out []models.TensorInfo) {
	for _, v := range l.Graph.Inputs {
		in = append(in, models.TensorInfo{Name: v.Name, Shape: append([]int{}, v.Shape...), Type: "float32"})
	}
	for _, v := range l.Graph.Outputs {
		out = append(out, models.TensorInfo{Name: v.Name, Shape: append([]int{}, v.Shape...), Type: "float32"})
	}
	return in, out
}

// OpSummary is a short op census for the progress line.
func (l *Loaded) OpSummary() string {
	return fmt.Sprintf("%d ops", len(l.Graph.Ops))
}

var _ = strings.TrimSpace
