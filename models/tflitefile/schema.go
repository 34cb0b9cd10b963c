// Package tflitefile writes TensorFlow Lite model files: the subset of the
// TFLite FlatBuffer schema the model compiler needs (one subgraph of builtin
// operators, float32/int8/int32 tensors with optional affine quantization),
// serialized by the package's own small FlatBuffers writer from the format's
// field ids. Output is deterministic: the same Model gives the same bytes.
package tflitefile

import (
	"fmt"
)

// TensorType is the element type of a tensor (schema enum TensorType).
type TensorType int8

const (
	Float32 TensorType = 0
	Int32   TensorType = 2
	UInt8   TensorType = 3
	Int64   TensorType = 4
	Int8    TensorType = 9
)

func (t TensorType) String() string {
	switch t {
	case Float32:
		return "float32"
	case Int32:
		return "int32"
	case UInt8:
		return "uint8"
	case Int64:
		return "int64"
	case Int8:
		return "int8"
	}
	return fmt.Sprintf("type%d", int(t))
}

// Op is a builtin operator code (schema enum BuiltinOperator).
type Op int32

const (
	OpAdd                   Op = 0
	OpAveragePool2D         Op = 1
	OpConcatenation         Op = 2
	OpConv2D                Op = 3
	OpDepthwiseConv2D       Op = 4
	OpDequantize            Op = 6
	OpFullyConnected        Op = 9
	OpL2Normalization       Op = 11
	OpLogistic              Op = 14
	OpMaxPool2D             Op = 17
	OpMul                   Op = 18
	OpRelu                  Op = 19
	OpRelu6                 Op = 21
	OpReshape               Op = 22
	OpResizeBilinear        Op = 23
	OpSoftmax               Op = 25
	OpTanh                  Op = 28
	OpPad                   Op = 34
	OpTranspose             Op = 39
	OpMean                  Op = 40
	OpSub                   Op = 41
	OpDiv                   Op = 42
	OpSqueeze               Op = 43
	OpStridedSlice          Op = 45
	OpExp                   Op = 47
	OpPrelu                 Op = 54
	OpMaximum               Op = 55
	OpMinimum               Op = 57
	OpNeg                   Op = 59
	OpSlice                 Op = 65
	OpSum                   Op = 74
	OpSqrt                  Op = 75
	OpRsqrt                 Op = 76
	OpReduceMax             Op = 82
	OpSquare                Op = 92
	OpResizeNearestNeighbor Op = 97
	OpLeakyRelu             Op = 98
	OpMirrorPad             Op = 100
	OpAbs                   Op = 101
	OpElu                   Op = 111
	OpQuantize              Op = 114
)

var opNames = map[Op]string{
	OpAdd: "ADD", OpAveragePool2D: "AVERAGE_POOL_2D", OpConcatenation: "CONCATENATION", OpConv2D: "CONV_2D",
	OpDepthwiseConv2D: "DEPTHWISE_CONV_2D", OpDequantize: "DEQUANTIZE", OpFullyConnected: "FULLY_CONNECTED",
	OpL2Normalization: "L2_NORMALIZATION", OpLogistic: "LOGISTIC", OpMaxPool2D: "MAX_POOL_2D", OpMul: "MUL",
	OpRelu: "RELU", OpRelu6: "RELU6", OpReshape: "RESHAPE", OpResizeBilinear: "RESIZE_BILINEAR",
	OpSoftmax: "SOFTMAX", OpTanh: "TANH", OpPad: "PAD", OpTranspose: "TRANSPOSE", OpMean: "MEAN", OpSub: "SUB",
	OpDiv: "DIV", OpSqueeze: "SQUEEZE", OpStridedSlice: "STRIDED_SLICE", OpExp: "EXP", OpPrelu: "PRELU",
	OpMaximum: "MAXIMUM", OpMinimum: "MINIMUM", OpNeg: "NEG", OpSlice: "SLICE", OpSum: "SUM", OpSqrt: "SQRT",
	OpRsqrt: "RSQRT", OpReduceMax: "REDUCE_MAX", OpSquare: "SQUARE",
	OpResizeNearestNeighbor: "RESIZE_NEAREST_NEIGHBOR", OpLeakyRelu: "LEAKY_RELU", OpMirrorPad: "MIRROR_PAD",
	OpAbs: "ABS", OpElu: "ELU", OpQuantize: "QUANTIZE",
}

func (o Op) String() string {
	if n, ok := opNames[o]; ok {
		return n
	}
	return fmt.Sprintf("OP%d", int32(o))
}

// Activation is a fused activation function (schema enum ActivationFunctionType).
type Activation int8

const (
	ActNone  Activation = 0
	ActRelu  Activation = 1
	ActRelu1 Activation = 2
	ActRelu6 Activation = 3
	ActTanh  Activation = 4
)

// Padding is the schema enum Padding.
type Padding int8

const (
	Same  Padding = 0
	Valid Padding = 1
)

// Model is one TFLite model with a single subgraph. Buffer 0 is always the
// empty sentinel: Encode adds it, so Tensor.Buffer indexes Buffers from 1.
type Model struct {
	Description string
	Tensors     []Tensor
	Inputs      []int32
	Outputs     []int32
	Operators   []Operator
	// Buffers holds constant data; Tensor.Buffer = i+1 refers to Buffers[i].
	Buffers [][]byte
}

// Tensor is one tensor of the subgraph.
type Tensor struct {
	Name  string
	Shape []int32
	Type  TensorType
	// Buffer is 0 for activations, else 1 + index into Model.Buffers.
	Buffer uint32
	Quant  *Quantization
}

// Quantization is affine quantization: real = Scale * (q - ZeroPoint), per
// tensor (one scale) or per channel along QuantizedDimension.
type Quantization struct {
	Scale              []float32
	ZeroPoint          []int64
	QuantizedDimension int32
}

// Operator is one builtin operator invocation. Version is the operator
// version the kernel registration needs (1 when zero).
type Operator struct {
	Op      Op
	Version int32
	Inputs  []int32
	Outputs []int32
	Options Options
}

// Options are an operator's builtin options table.
type Options interface {
	unionType() uint8
	table() *fbTable
}

// Encode serializes the model.
func (m *Model) Encode() ([]byte, error) {
	type codeKey struct {
		op      Op
		version int32
	}
	var codes []codeKey
	codeIndex := map[codeKey]int{}
	ops := make(fbRefs, 0, len(m.Operators))
	for i, o := range m.Operators {
		v := o.Version
		if v == 0 {
			v = 1
		}
		k := codeKey{o.Op, v}
		idx, ok := codeIndex[k]
		if !ok {
			idx = len(codes)
			codeIndex[k] = idx
			codes = append(codes, k)
		}
		for _, t := range append(append([]int32{}, o.Inputs...), o.Outputs...) {
			if t < -1 || int(t) >= len(m.Tensors) {
				return nil, fmt.Errorf("operator %d (%v): tensor index %d out of range", i, o.Op, t)
			}
		}
		t := &fbTable{}
		t.u32(0, uint32(idx))
		t.addRef(1, int32s(o.Inputs))
		t.addRef(2, int32s(o.Outputs))
		if o.Options != nil {
			t.u8(3, o.Options.unionType())
			t.addRef(4, o.Options.table())
		}
		ops = append(ops, t)
	}
	opcodes := make(fbRefs, 0, len(codes))
	for _, c := range codes {
		t := &fbTable{}
		dep := int8(127) // PLACEHOLDER_FOR_GREATER_OP_CODES
		if c.op < 127 {
			dep = int8(c.op)
		}
		t.i8(0, dep)
		t.i32(2, c.version)
		t.i32(3, int32(c.op))
		opcodes = append(opcodes, t)
	}
	tensors := make(fbRefs, 0, len(m.Tensors))
	for i, tn := range m.Tensors {
		if int(tn.Buffer) > len(m.Buffers) {
			return nil, fmt.Errorf("tensor %d (%s): buffer %d out of range", i, tn.Name, tn.Buffer)
		}
		t := &fbTable{}
		t.addRef(0, int32s(tn.Shape))
		t.i8(1, int8(tn.Type))
		t.u32(2, tn.Buffer)
		t.addRef(3, fbString(tn.Name))
		if q := tn.Quant; q != nil {
			qt := &fbTable{}
			qt.addRef(2, float32s(q.Scale))
			qt.addRef(3, int64s(q.ZeroPoint))
			qt.i32(6, q.QuantizedDimension)
			t.addRef(4, qt)
		}
		tensors = append(tensors, t)
	}
	sub := &fbTable{}
	sub.addRef(0, tensors)
	sub.addRef(1, int32s(m.Inputs))
	sub.addRef(2, int32s(m.Outputs))
	sub.addRef(3, ops)
	sub.addRef(4, fbString("main"))

	buffers := fbRefs{&fbTable{}}
	for _, b := range m.Buffers {
		t := &fbTable{}
		if len(b) > 0 {
			t.addRef(0, &fbBytes{data: b, count: len(b), align: 16})
		}
		buffers = append(buffers, t)
	}
	root := &fbTable{}
	root.u32(0, 3) // schema version
	root.addRef(1, opcodes)
	root.addRef(2, fbRefs{sub})
	root.addRef(3, fbString(m.Description))
	root.addRef(4, buffers)
	return finish(root, "TFL3"), nil
}
