package attributes

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"

	"imageapid/models"
	"imageapid/models/heads"
	"imageapid/models/tflitefile"
)

// Head kinds: what follows the linear layer.
const (
	KindLogistic = "logistic" // one output, sigmoid
	KindSoftmax  = "softmax"  // one output per label
	KindLinear   = "linear"   // regression
)

// Head is a linear model on a feature set, with its provenance. Weights
// apply to the raw features (standardization is folded in).
type Head struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Features string `json:"features"`
	// Labels name the outputs of a softmax head, or the positive class of a
	// logistic one.
	Labels  []string    `json:"labels,omitempty"`
	Inputs  int         `json:"inputs"`
	Weights [][]float32 `json:"weights"`
	Bias    []float32   `json:"bias"`
	// Mean is each feature's training mean: it stands in for missing features.
	Mean []float32 `json:"mean"`
	Fit  FitReport `json:"fit"`
	// Networks are the sha256 of the compiled networks behind the features,
	// as fitted: a head is stale once one of them changes.
	Networks map[string]string `json:"networks,omitempty"`
}

// Stamp records the manifest's sha256 of the networks behind the head's features.
func (h *Head) Stamp(m *models.Manifest) error {
	h.Networks = map[string]string{}
	for _, part := range strings.Split(h.Features, "+") {
		for _, name := range PartNetworks[part] {
			mi, err := m.Find(name)
			if err != nil {
				return fmt.Errorf("head %s: %w", h.Name, err)
			}
			h.Networks[name] = mi.SHA256
		}
	}
	return nil
}

// Stale lists the networks whose manifest sha256 differs from the one the
// head was fitted with.
func (h *Head) Stale(m *models.Manifest) []string {
	var out []string
	for name, sum := range h.Networks {
		if mi, err := m.Find(name); err != nil || mi.SHA256 != sum {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// FitReport says what a head was fitted on and how it was chosen.
type FitReport struct {
	Data    string  `json:"data"`
	Licence string  `json:"licence"`
	Seed    uint64  `json:"seed"`
	Lambda  float64 `json:"lambda"`
	Train   int     `json:"train"`
	Heldout int     `json:"heldout"`
	// Skipped counts corpus images without a usable face.
	Skipped int `json:"skipped"`
	// Metric and Value are the held-out figure used for model selection.
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
	Notes  string  `json:"notes,omitempty"`
	// SourceWeights are the weights of sources that did not weigh the same
	// as every other in a fit across sources (relative to one source).
	SourceWeights map[string]float64 `json:"source_weights,omitempty"`
	// Threshold is the probability, read off held-out sources, that the
	// bias was shifted to put at 0.5 (0: not shifted).
	Threshold float64 `json:"threshold,omitempty"`
}

// Outputs is the number of outputs.
func (h *Head) Outputs() int { return len(h.Bias) }

// Check validates the head's shapes.
func (h *Head) Check() error {
	if h.Inputs <= 0 || len(h.Weights) == 0 || len(h.Weights) != len(h.Bias) || len(h.Mean) != h.Inputs {
		return fmt.Errorf("head %s: inconsistent shapes", h.Name)
	}
	for _, row := range h.Weights {
		if len(row) != h.Inputs {
			return fmt.Errorf("head %s: weight row of %d values, want %d", h.Name, len(row), h.Inputs)
		}
	}
	switch h.Kind {
	case KindLogistic, KindLinear:
		if h.Outputs() != 1 {
			return fmt.Errorf("head %s: a %s head has one output", h.Name, h.Kind)
		}
	case KindSoftmax:
		if h.Outputs() != len(h.Labels) {
			return fmt.Errorf("head %s: %d outputs for %d labels", h.Name, h.Outputs(), len(h.Labels))
		}
	default:
		return fmt.Errorf("head %s: unknown kind %q", h.Name, h.Kind)
	}
	return nil
}

// Encode is the head's committed JSON form (stable bytes).
func (h *Head) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(h, "", " ")
	if err != nil {
		return nil, fmt.Errorf("encode head %s: %w", h.Name, err)
	}
	return append(b, '\n'), nil
}

// DecodeHead parses a head's JSON.
func DecodeHead(b []byte) (*Head, error) {
	var h Head
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("decode head: %w", err)
	}
	return &h, h.Check()
}

// LoadHead returns the committed head of that name (embedded in the binary).
func LoadHead(name string) (*Head, error) {
	b, err := heads.Files.ReadFile(name + ".json")
	if err != nil {
		return nil, fmt.Errorf("head %s: %w (run `make train`)", name, err)
	}
	return DecodeHead(b)
}

// LoadHeadFile reads a head from a file.
func LoadHeadFile(path string) (*Head, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return DecodeHead(b)
}

// TFLite writes the head as a TFLite model: input [1,Inputs] float32 ->
// FULLY_CONNECTED -> LOGISTIC or SOFTMAX (nothing for linear) -> [1,Outputs].
func (h *Head) TFLite() ([]byte, error) {
	if err := h.Check(); err != nil {
		return nil, err
	}
	var w, b bytes.Buffer
	for _, row := range h.Weights {
		for _, v := range row {
			binary.Write(&w, binary.LittleEndian, math.Float32bits(v))
		}
	}
	for _, v := range h.Bias {
		binary.Write(&b, binary.LittleEndian, math.Float32bits(v))
	}
	k, d := int32(h.Outputs()), int32(h.Inputs)
	m := &tflitefile.Model{
		Description: "imageapid head " + h.Name,
		Tensors: []tflitefile.Tensor{
			{Name: "features", Shape: []int32{1, d}, Type: tflitefile.Float32},
			{Name: "weights", Shape: []int32{k, d}, Type: tflitefile.Float32, Buffer: 1},
			{Name: "bias", Shape: []int32{k}, Type: tflitefile.Float32, Buffer: 2},
			{Name: "logits", Shape: []int32{1, k}, Type: tflitefile.Float32},
		},
		Inputs:  []int32{0},
		Outputs: []int32{3},
		Operators: []tflitefile.Operator{
			{Op: tflitefile.OpFullyConnected, Inputs: []int32{0, 1, 2}, Outputs: []int32{3}, Options: &tflitefile.FullyConnectedOptions{}},
		},
		Buffers: [][]byte{w.Bytes(), b.Bytes()},
	}
	switch h.Kind {
	case KindLogistic:
		m.Tensors = append(m.Tensors, tflitefile.Tensor{Name: "probability", Shape: []int32{1, k}, Type: tflitefile.Float32})
		m.Operators = append(m.Operators, tflitefile.Operator{Op: tflitefile.OpLogistic, Inputs: []int32{3}, Outputs: []int32{4}})
		m.Outputs = []int32{4}
	case KindSoftmax:
		m.Tensors = append(m.Tensors, tflitefile.Tensor{Name: "probabilities", Shape: []int32{1, k}, Type: tflitefile.Float32})
		m.Operators = append(m.Operators, tflitefile.Operator{Op: tflitefile.OpSoftmax, Inputs: []int32{3}, Outputs: []int32{4},
			Options: &tflitefile.SoftmaxOptions{Beta: 1}})
		m.Outputs = []int32{4}
	}
	return m.Encode()
}

// Runner runs a committed head through its TFLite model.
type Runner struct {
	Head  *Head
	model *models.Model
}

// ModelName is the manifest name of a head's TFLite model.
func ModelName(head string) string { return "head_" + head }

// NewRunner loads the named head and its model.
func NewRunner(rt *models.Runtime, name string) (*Runner, error) {
	h, err := LoadHead(name)
	if err != nil {
		return nil, err
	}
	m, err := rt.Model(ModelName(name))
	if err != nil {
		return nil, fmt.Errorf("head %s: %w", name, err)
	}
	in, out := m.Info.Inputs, m.Info.Outputs
	if len(in) != 1 || len(out) != 1 || len(in[0].Shape) != 2 || in[0].Shape[1] != h.Inputs ||
		len(out[0].Shape) != 2 || out[0].Shape[1] != h.Outputs() {
		return nil, fmt.Errorf("head %s: model tensors %v -> %v do not match the head (%d -> %d)", name, in, out, h.Inputs, h.Outputs())
	}
	return &Runner{Head: h, model: m}, nil
}

// Run evaluates the head on a feature vector.
func (r *Runner) Run(ctx context.Context, x []float32) ([]float32, error) {
	if len(x) != r.Head.Inputs {
		return nil, fmt.Errorf("head %s: %d features, want %d", r.Head.Name, len(x), r.Head.Inputs)
	}
	var out []float32
	err := r.model.Run(ctx, func(it *models.Interpreter) error {
		in, err := it.Input(0)
		if err != nil {
			return err
		}
		copy(in, x)
		if err := it.Invoke(); err != nil {
			return err
		}
		o, err := it.Output(0)
		if err != nil {
			return err
		}
		out = append([]float32(nil), o...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("head %s: %w", r.Head.Name, err)
	}
	return out, nil
}

// RunFeatures assembles the head's feature set from f and runs it.
func (r *Runner) RunFeatures(ctx context.Context, f *Features) ([]float32, error) {
	x, err := f.Vector(ctx, r.Head.Features, r.Head.Mean)
	if err != nil {
		return nil, fmt.Errorf("head %s: %w", r.Head.Name, err)
	}
	return r.Run(ctx, x)
}

// Eval computes the head in Go (float64), as training sees it.
func (h *Head) Eval(x []float32) []float64 {
	out := make([]float64, h.Outputs())
	for k, row := range h.Weights {
		s := float64(h.Bias[k])
		for i, w := range row {
			s += float64(w) * float64(x[i])
		}
		out[k] = s
	}
	switch h.Kind {
	case KindLogistic:
		out[0] = 1 / (1 + math.Exp(-out[0]))
	case KindSoftmax:
		SoftmaxInPlace(out)
	}
	return out
}

// SoftmaxInPlace turns the logits v into probabilities, as a softmax head
// does when it serves (fitting computes the same).
func SoftmaxInPlace(v []float64) {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	var s float64
	for i, x := range v {
		v[i] = math.Exp(x - m)
		s += v[i]
	}
	for i := range v {
		v[i] /= s
	}
}
