// Package onnx reads the subset of an ONNX model file (a protobuf
// ModelProto) the model compiler needs: the main graph's nodes with their
// attributes, its initializers (float32 and int64 tensors) and the names and
// shapes of its inputs and outputs. It only reads; running a model is the
// compiler's and the runtime's business.
package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Model is a parsed ONNX file.
type Model struct {
	IRVersion int64
	// Opsets maps an operator domain ("" is the default one) to its version.
	Opsets   map[string]int64
	Producer string
	Graph    Graph
}

// Graph is the main graph.
type Graph struct {
	Name  string
	Nodes []Node
	// Initializers are the constant tensors, by name.
	Initializers map[string]*Tensor
	// Inputs and Outputs are the graph's; Inputs leave out initializers
	// (older exporters list them as inputs too).
	Inputs, Outputs []ValueInfo
}

// Node is one operator application.
type Node struct {
	Name, OpType, Domain string
	Inputs, Outputs      []string
	Attrs                map[string]Attr
}

// Attr is a node attribute; which field is set depends on its type.
type Attr struct {
	F      float32
	I      int64
	S      []byte
	T      *Tensor
	Floats []float32
	Ints   []int64
}

// Tensor is a constant tensor: Float for FLOAT, Int for INT64 and INT32.
type Tensor struct {
	Name  string
	Dims  []int64
	Type  int32
	Float []float32
	Int   []int64
}

// ONNX TensorProto element types used here.
const (
	TypeFloat = 1
	TypeInt32 = 6
	TypeInt64 = 7
)

// ValueInfo is a graph input or output: its name and shape (-1 where the
// dimension is symbolic or unknown).
type ValueInfo struct {
	Name  string
	Shape []int64
}

// IntAttr returns the named integer attribute or def.
func (n *Node) IntAttr(name string, def int64) int64 {
	if a, ok := n.Attrs[name]; ok {
		return a.I
	}
	return def
}

// IntsAttr returns the named integer list attribute (nil when absent).
func (n *Node) IntsAttr(name string) []int64 { return n.Attrs[name].Ints }

// FloatAttr returns the named float attribute or def.
func (n *Node) FloatAttr(name string, def float32) float32 {
	if a, ok := n.Attrs[name]; ok {
		return a.F
	}
	return def
}

// Parse reads a model file's bytes.
func Parse(b []byte) (*Model, error) {
	m := &Model{Opsets: map[string]int64{}}
	var graph []byte
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			m.IRVersion = int64(x)
		case num == 2 && typ == protowire.BytesType:
			m.Producer = string(v)
		case num == 7 && typ == protowire.BytesType:
			graph = v
		case num == 8 && typ == protowire.BytesType:
			var domain string
			var version int64
			if err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
				if num == 1 && typ == protowire.BytesType {
					domain = string(v)
				} else if num == 2 && typ == protowire.VarintType {
					version = int64(x)
				}
				return nil
			}); err != nil {
				return fmt.Errorf("opset_import: %w", err)
			}
			m.Opsets[domain] = version
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("onnx model: %w", err)
	}
	if graph == nil {
		return nil, errors.New("onnx model: no graph")
	}
	if _, ok := m.Opsets[""]; !ok {
		return nil, errors.New("onnx model: no opset for the default operator domain")
	}
	if err := parseGraph(graph, &m.Graph); err != nil {
		return nil, fmt.Errorf("onnx graph: %w", err)
	}
	return m, nil
}

func parseGraph(b []byte, g *Graph) error {
	g.Initializers = map[string]*Tensor{}
	var inputs []ValueInfo
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			n, err := parseNode(v)
			if err != nil {
				return fmt.Errorf("node %d: %w", len(g.Nodes), err)
			}
			g.Nodes = append(g.Nodes, n)
		case 2:
			g.Name = string(v)
		case 5:
			t, err := parseTensor(v)
			if err != nil {
				return fmt.Errorf("initializer %d: %w", len(g.Initializers), err)
			}
			g.Initializers[t.Name] = t
		case 11, 12:
			vi, err := parseValueInfo(v)
			if err != nil {
				return err
			}
			if num == 11 {
				inputs = append(inputs, vi)
			} else {
				g.Outputs = append(g.Outputs, vi)
			}
		}
		return nil
	})
	for _, in := range inputs {
		if g.Initializers[in.Name] == nil {
			g.Inputs = append(g.Inputs, in)
		}
	}
	return err
}

func parseNode(b []byte) (Node, error) {
	n := Node{Attrs: map[string]Attr{}}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			n.Inputs = append(n.Inputs, string(v))
		case 2:
			n.Outputs = append(n.Outputs, string(v))
		case 3:
			n.Name = string(v)
		case 4:
			n.OpType = string(v)
		case 7:
			n.Domain = string(v)
		case 5:
			name, a, err := parseAttr(v)
			if err != nil {
				return fmt.Errorf("attribute: %w", err)
			}
			n.Attrs[name] = a
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("%s %s: %w", n.OpType, n.Name, err)
	}
	return n, nil
}

func parseAttr(b []byte) (string, Attr, error) {
	var name string
	var a Attr
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			name = string(v)
		case num == 2 && typ == protowire.Fixed32Type:
			a.F = math.Float32frombits(uint32(x))
		case num == 3 && typ == protowire.VarintType:
			a.I = int64(x)
		case num == 4 && typ == protowire.BytesType:
			a.S = append([]byte(nil), v...)
		case num == 5 && typ == protowire.BytesType:
			t, err := parseTensor(v)
			if err != nil {
				return err
			}
			a.T = t
		case num == 7:
			fs, err := floats(typ, v, x)
			if err != nil {
				return err
			}
			a.Floats = append(a.Floats, fs...)
		case num == 8:
			is, err := varints(typ, v, x)
			if err != nil {
				return err
			}
			a.Ints = append(a.Ints, is...)
		}
		return nil
	})
	return name, a, err
}

func parseTensor(b []byte) (*Tensor, error) {
	t := &Tensor{}
	var raw []byte
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 1:
			is, err := varints(typ, v, x)
			if err != nil {
				return err
			}
			t.Dims = append(t.Dims, is...)
		case 2:
			t.Type = int32(x)
		case 4:
			fs, err := floats(typ, v, x)
			if err != nil {
				return err
			}
			t.Float = append(t.Float, fs...)
		case 5, 7:
			is, err := varints(typ, v, x)
			if err != nil {
				return err
			}
			for _, i := range is {
				if num == 5 {
					i = int64(int32(i))
				}
				t.Int = append(t.Int, i)
			}
		case 8:
			t.Name = string(v)
		case 9:
			raw = v
		case 13, 14:
			return errors.New("external tensor data is not supported")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	n := int64(1)
	for _, d := range t.Dims {
		if d < 0 || d > 1<<31 {
			return nil, fmt.Errorf("tensor %s: dimension %d", t.Name, d)
		}
		n *= d
	}
	if raw != nil {
		switch t.Type {
		case TypeFloat:
			if int64(len(raw)) != 4*n {
				return nil, fmt.Errorf("tensor %s: %d raw bytes for %d floats", t.Name, len(raw), n)
			}
			t.Float = make([]float32, n)
			for i := range t.Float {
				t.Float[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		case TypeInt64:
			if int64(len(raw)) != 8*n {
				return nil, fmt.Errorf("tensor %s: %d raw bytes for %d int64s", t.Name, len(raw), n)
			}
			t.Int = make([]int64, n)
			for i := range t.Int {
				t.Int[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			}
		case TypeInt32:
			if int64(len(raw)) != 4*n {
				return nil, fmt.Errorf("tensor %s: %d raw bytes for %d int32s", t.Name, len(raw), n)
			}
			t.Int = make([]int64, n)
			for i := range t.Int {
				t.Int[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
			}
		default:
			return nil, fmt.Errorf("tensor %s: element type %d is not supported", t.Name, t.Type)
		}
	}
	if got := int64(len(t.Float) + len(t.Int)); got != n {
		return nil, fmt.Errorf("tensor %s: %d values for dims %v", t.Name, got, t.Dims)
	}
	return t, nil
}

func parseValueInfo(b []byte) (ValueInfo, error) {
	var vi ValueInfo
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			vi.Name = string(v)
		case 2: // TypeProto -> tensor_type (1) -> shape (2) -> dim (1) -> dim_value (1)
			return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num != 1 || typ != protowire.BytesType {
					return nil
				}
				return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
					if num != 2 || typ != protowire.BytesType {
						return nil
					}
					return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
						if num != 1 || typ != protowire.BytesType {
							return nil
						}
						d := int64(-1)
						err := fields(v, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
							if num == 1 && typ == protowire.VarintType {
								d = int64(x)
							}
							return nil
						})
						vi.Shape = append(vi.Shape, d)
						return err
					})
				})
			})
		}
		return nil
	})
	return vi, err
}

// fields calls fn for each field of a message: v holds a length-delimited
// field's bytes, x a varint's or fixed field's value.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var y uint32
			y, n = protowire.ConsumeFixed32(b)
			x = uint64(y)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// floats reads a repeated float field: packed (bytes) or one fixed32.
func floats(typ protowire.Type, v []byte, x uint64) ([]float32, error) {
	if typ == protowire.Fixed32Type {
		return []float32{math.Float32frombits(uint32(x))}, nil
	}
	if typ != protowire.BytesType || len(v)%4 != 0 {
		return nil, errors.New("malformed float list")
	}
	out := make([]float32, len(v)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(v[4*i:]))
	}
	return out, nil
}

// varints reads a repeated integer field: packed (bytes) or one varint.
func varints(typ protowire.Type, v []byte, x uint64) ([]int64, error) {
	if typ == protowire.VarintType {
		return []int64{int64(x)}, nil
	}
	if typ != protowire.BytesType {
		return nil, errors.New("malformed integer list")
	}
	var out []int64
	for len(v) > 0 {
		y, n := protowire.ConsumeVarint(v)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		out = append(out, int64(y))
		v = v[n:]
	}
	return out, nil
}
