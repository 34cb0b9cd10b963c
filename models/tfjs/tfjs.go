// Package tfjs reads TensorFlow.js graph models: the GraphDef nodes of
// model.json, the weights of its weightsManifest (float32, int32, float16 and
// affine uint8/uint16 quantized), and the signature's inputs and outputs in
// the order the JSON lists them.
package tfjs

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"
)

// Model is a parsed graph model.
type Model struct {
	Nodes []Node
	// Inputs and Outputs come from the signature (in JSON order); Tensor is
	// the graph tensor ("node:index" or "node"), Key the signature key.
	Inputs  []Port
	Outputs []Port
	// Weights holds the value of every Const node, by node name.
	Weights map[string]*Tensor
	// GeneratedBy and ConvertedBy are the model's provenance fields.
	GeneratedBy, ConvertedBy string
}

// Port is one signature entry.
type Port struct {
	Key    string
	Tensor string
	Shape  []int
}

// Node is one GraphDef node.
type Node struct {
	Name   string
	Op     string
	Inputs []string
	Attr   map[string]Attr
}

// Attr is a GraphDef attribute value; which field is set depends on the attribute.
type Attr struct {
	S    *string `json:"s"` // base64 in JSON, decoded by Str
	I    *string `json:"i"` // int64 as a decimal string
	F    *float64
	B    *bool
	Type string `json:"type"`
	List *struct {
		S []string `json:"s"`
		I []string `json:"i"`
		F []float64
	} `json:"list"`
	Shape *struct {
		Dim []struct {
			Size string `json:"size"`
		} `json:"dim"`
	} `json:"shape"`
	Tensor *struct {
		DType       string `json:"dtype"`
		TensorShape struct {
			Dim []struct {
				Size string `json:"size"`
			} `json:"dim"`
		} `json:"tensorShape"`
	} `json:"tensor"`
}

// Tensor is a constant's value: F32 for float tensors, I32 for integer ones.
type Tensor struct {
	Name  string
	Shape []int
	DType string // "float32", "int32" or "bool"
	F32   []float32
	I32   []int32
}

// Str returns a string attribute.
func (n *Node) Str(name string) (string, bool) {
	a, ok := n.Attr[name]
	if !ok || a.S == nil {
		return "", false
	}
	b, err := base64.StdEncoding.DecodeString(*a.S)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// Int returns an integer attribute.
func (n *Node) Int(name string) (int64, bool) {
	a, ok := n.Attr[name]
	if !ok || a.I == nil {
		return 0, false
	}
	v, err := strconv.ParseInt(*a.I, 10, 64)
	return v, err == nil
}

// Float returns a float attribute.
func (n *Node) Float(name string) (float64, bool) {
	a, ok := n.Attr[name]
	if !ok || a.F == nil {
		return 0, false
	}
	return *a.F, true
}

// Bool returns a boolean attribute.
func (n *Node) Bool(name string) bool {
	a, ok := n.Attr[name]
	return ok && a.B != nil && *a.B
}

// Ints returns a list-of-int attribute.
func (n *Node) Ints(name string) []int {
	a, ok := n.Attr[name]
	if !ok || a.List == nil {
		return nil
	}
	out := make([]int, 0, len(a.List.I))
	for _, s := range a.List.I {
		v, _ := strconv.Atoi(s)
		out = append(out, v)
	}
	return out
}

// Strs returns a list-of-string attribute.
func (n *Node) Strs(name string) []string {
	a, ok := n.Attr[name]
	if !ok || a.List == nil {
		return nil
	}
	out := make([]string, 0, len(a.List.S))
	for _, s := range a.List.S {
		b, err := base64.StdEncoding.DecodeString(s)
		if err == nil {
			out = append(out, string(b))
		}
	}
	return out
}

// Shape returns a shape attribute with -1 for unknown dimensions.
func (n *Node) Shape(name string) []int {
	a, ok := n.Attr[name]
	if !ok || a.Shape == nil {
		return nil
	}
	out := make([]int, 0, len(a.Shape.Dim))
	for _, d := range a.Shape.Dim {
		v, _ := strconv.Atoi(d.Size)
		out = append(out, v)
	}
	return out
}

type modelJSON struct {
	Format        string `json:"format"`
	GeneratedBy   string `json:"generatedBy"`
	ConvertedBy   string `json:"convertedBy"`
	ModelTopology struct {
		Node []struct {
			Name  string          `json:"name"`
			Op    string          `json:"op"`
			Input []string        `json:"input"`
			Attr  map[string]Attr `json:"attr"`
		} `json:"node"`
	} `json:"modelTopology"`
	WeightsManifest []struct {
		Paths   []string `json:"paths"`
		Weights []struct {
			Name         string `json:"name"`
			Shape        []int  `json:"shape"`
			DType        string `json:"dtype"`
			Quantization *struct {
				DType string  `json:"dtype"`
				Scale float64 `json:"scale"`
				Min   float64 `json:"min"`
			} `json:"quantization"`
		} `json:"weights"`
	} `json:"weightsManifest"`
}

// Read parses model.json and loads its weight files through readFile, which
// is given paths relative to the model's directory.
func Read(modelJSONBytes []byte, readFile func(name string) ([]byte, error)) (*Model, error) {
	var mj modelJSON
	if err := json.Unmarshal(modelJSONBytes, &mj); err != nil {
		return nil, fmt.Errorf("parse model.json: %w", err)
	}
	if mj.Format != "" && mj.Format != "graph-model" {
		return nil, fmt.Errorf("model.json format %q is not a graph model", mj.Format)
	}
	m := &Model{Weights: map[string]*Tensor{}, GeneratedBy: mj.GeneratedBy, ConvertedBy: mj.ConvertedBy}
	for _, n := range mj.ModelTopology.Node {
		m.Nodes = append(m.Nodes, Node{Name: n.Name, Op: n.Op, Inputs: n.Input, Attr: n.Attr})
	}
	for gi, g := range mj.WeightsManifest {
		var data []byte
		for _, p := range g.Paths {
			b, err := readFile(path.Clean(p))
			if err != nil {
				return nil, fmt.Errorf("weights group %d: %w", gi, err)
			}
			data = append(data, b...)
		}
		off := 0
		for _, w := range g.Weights {
			n := 1
			for _, d := range w.Shape {
				n *= d
			}
			t := &Tensor{Name: w.Name, Shape: append([]int{}, w.Shape...), DType: w.DType}
			elem := 4
			qtype := ""
			if w.Quantization != nil {
				qtype = w.Quantization.DType
				switch qtype {
				case "uint8":
					elem = 1
				case "uint16", "float16":
					elem = 2
				default:
					return nil, fmt.Errorf("weight %s: unsupported quantization %q", w.Name, qtype)
				}
			} else if w.DType == "bool" {
				elem = 1
			}
			end := off + n*elem
			if end > len(data) {
				return nil, fmt.Errorf("weight %s: needs bytes %d-%d, group %d has %d", w.Name, off, end, gi, len(data))
			}
			raw := data[off:end]
			off = end
			var vals []float64
			switch qtype {
			case "uint8":
				vals = make([]float64, n)
				for i, q := range raw {
					vals[i] = float64(q)*w.Quantization.Scale + w.Quantization.Min
				}
			case "uint16":
				vals = make([]float64, n)
				for i := range vals {
					vals[i] = float64(binary.LittleEndian.Uint16(raw[2*i:]))*w.Quantization.Scale + w.Quantization.Min
				}
			case "float16":
				t.F32 = make([]float32, n)
				for i := range t.F32 {
					t.F32[i] = halfToFloat(binary.LittleEndian.Uint16(raw[2*i:]))
				}
			}
			switch {
			case w.DType == "float32" && vals != nil:
				t.F32 = make([]float32, n)
				for i, v := range vals {
					t.F32[i] = float32(v)
				}
			case w.DType == "float32" && t.F32 == nil:
				t.F32 = make([]float32, n)
				for i := range t.F32 {
					t.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
				}
			case w.DType == "int32" && vals != nil:
				t.I32 = make([]int32, n)
				for i, v := range vals {
					t.I32[i] = int32(math.Round(v))
				}
			case w.DType == "int32":
				t.I32 = make([]int32, n)
				for i := range t.I32 {
					t.I32[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
				}
			case w.DType == "bool":
				t.I32 = make([]int32, n)
				for i, b := range raw {
					t.I32[i] = int32(b)
				}
			case w.DType == "float32":
			default:
				return nil, fmt.Errorf("weight %s: unsupported dtype %q", w.Name, w.DType)
			}
			m.Weights[w.Name] = t
		}
	}
	if err := readSignature(modelJSONBytes, m); err != nil {
		return nil, err
	}
	return m, nil
}

// halfToFloat widens an IEEE 754 binary16 value.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		f := float32(frac) / 1024 / 16384
		if sign != 0 {
			f = -f
		}
		return f
	case exp == 31:
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

// readSignature fills Inputs and Outputs from "signature" (top level or under
// userDefinedMetadata), keeping the JSON key order, which encoding/json's maps lose.
func readSignature(b []byte, m *Model) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return err
	}
	sig := top["signature"]
	if len(sig) == 0 || string(sig) == "null" {
		var udm map[string]json.RawMessage
		if raw := top["userDefinedMetadata"]; len(raw) > 0 && json.Unmarshal(raw, &udm) == nil {
			sig = udm["signature"]
		}
	}
	if len(sig) == 0 || string(sig) == "null" {
		return nil
	}
	var parts map[string]json.RawMessage
	if err := json.Unmarshal(sig, &parts); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	var err error
	if m.Inputs, err = orderedPorts(parts["inputs"]); err != nil {
		return fmt.Errorf("signature inputs: %w", err)
	}
	if m.Outputs, err = orderedPorts(parts["outputs"]); err != nil {
		return fmt.Errorf("signature outputs: %w", err)
	}
	return nil
}

func orderedPorts(raw json.RawMessage) ([]Port, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object")
	}
	var out []Port
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var v struct {
			Name        string `json:"name"`
			TensorShape struct {
				Dim []struct {
					Size string `json:"size"`
				} `json:"dim"`
			} `json:"tensorShape"`
		}
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		p := Port{Key: key, Tensor: v.Name}
		if p.Tensor == "" {
			p.Tensor = key
		}
		for _, d := range v.TensorShape.Dim {
			s, _ := strconv.Atoi(d.Size)
			p.Shape = append(p.Shape, s)
		}
		out = append(out, p)
	}
	return out, nil
}

// SplitTensorName splits "node:2" into ("node", 2); "node" is output 0.
// Control inputs ("^node") return ok false.
func SplitTensorName(s string) (node string, index int, ok bool) {
	if strings.HasPrefix(s, "^") {
		return "", 0, false
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		if v, err := strconv.Atoi(s[i+1:]); err == nil {
			return s[:i], v, true
		}
	}
	return s, 0, true
}
