// Package compiler turns TensorFlow.js graph models (and ONNX files, through
// ONNXGraph) into TFLite files: it imports the GraphDef into a small NHWC
// graph of TFLite-level operators
// (folding constants), rewrites it (batch-norm folding into convolutions,
// relu6 and activation fusion, dead-code removal), lowers it to a
// tflitefile.Model in float32 or int8 (per-channel weights, calibrated
// per-tensor activations), and checks the result against gates: parity with
// the TF.js reference (ONNX Runtime for ONNX files) for float, agreement
// with float for int8.
package compiler

import (
	"fmt"

	tfl "imageapid/models/tflitefile"
)

// Value is one tensor of the graph. Constants carry F32 or I32 data.
type Value struct {
	Name  string
	Shape []int
	Type  tfl.TensorType
	F32   []float32
	I32   []int32
	// I8 holds quantized constant data; Q the quantization of a quantized value.
	I8 []int8
	Q  *QuantParams
}

// QuantParams are affine quantization parameters, per tensor (one entry)
// or per channel along Axis.
type QuantParams struct {
	Scale []float64
	Zero  []int
	Axis  int
}

// IsConst reports whether the value is a constant.
func (v *Value) IsConst() bool { return v != nil && (v.F32 != nil || v.I32 != nil || v.I8 != nil) }

// Size is the number of elements.
func (v *Value) Size() int { return numel(v.Shape) }

func numel(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// Op is one TFLite-level operator with its attributes. Inputs may hold nil
// for an omitted optional input.
type Op struct {
	Code tfl.Op
	In   []*Value
	Out  *Value
	// Source is the TF node the op came from, for error messages.
	Source string

	Act              tfl.Activation
	Padding          tfl.Padding
	StrideW, StrideH int
	DilW, DilH       int
	FilterW, FilterH int
	DepthMultiplier  int
	Axis             int
	KeepDims         bool
	Alpha            float32
	Beta             float32
	AlignCorners     bool
	HalfPixel        bool
	Symmetric        bool
	// Version is the operator version for the kernel registry (set by the quantizer).
	Version int
}

func (op *Op) version() int32 {
	if op.Version > 0 {
		return int32(op.Version)
	}
	return 1
}

// Graph is a single-subgraph network.
type Graph struct {
	Name    string
	Inputs  []*Value
	Outputs []*Value
	Ops     []*Op
}

// consumers counts how many op inputs and graph outputs read each value.
func (g *Graph) consumers() map[*Value][]*Op {
	c := map[*Value][]*Op{}
	for _, op := range g.Ops {
		for _, in := range op.In {
			if in != nil {
				c[in] = append(c[in], op)
			}
		}
	}
	return c
}

func (g *Graph) isOutput(v *Value) bool {
	for _, o := range g.Outputs {
		if o == v {
			return true
		}
	}
	return false
}

// replaceUses makes every reader of old read repl instead.
func (g *Graph) replaceUses(old, repl *Value) {
	for _, op := range g.Ops {
		for i, in := range op.In {
			if in == old {
				op.In[i] = repl
			}
		}
	}
	for i, o := range g.Outputs {
		if o == old {
			// Keep the graph output's name on the value that now carries it.
			repl.Name = old.Name
			g.Outputs[i] = repl
		}
	}
}

// removeOp deletes one op from the op list.
func (g *Graph) removeOp(op *Op) {
	for i, o := range g.Ops {
		if o == op {
			g.Ops = append(g.Ops[:i], g.Ops[i+1:]...)
			return
		}
	}
}

// removeDead drops ops whose outputs nobody reads.
func (g *Graph) removeDead() {
	for {
		c := g.consumers()
		kept := g.Ops[:0]
		changed := false
		for _, op := range g.Ops {
			if len(c[op.Out]) == 0 && !g.isOutput(op.Out) {
				changed = true
				continue
			}
			kept = append(kept, op)
		}
		g.Ops = kept
		if !changed {
			return
		}
	}
}

// Stats counts ops by code, for the progress line.
func (g *Graph) Stats() map[string]int {
	s := map[string]int{}
	for _, op := range g.Ops {
		s[op.Code.String()]++
	}
	return s
}

func constF32(name string, shape []int, data []float32) *Value {
	return &Value{Name: name, Shape: shape, Type: tfl.Float32, F32: data}
}

func constI32(name string, shape []int, data []int32) *Value {
	return &Value{Name: name, Shape: shape, Type: tfl.Int32, I32: data}
}

func shapeString(s []int) string { return fmt.Sprint(s) }
