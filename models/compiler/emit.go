package compiler

import (
	"encoding/binary"
	"fmt"
	"math"

	tfl "imageapid/models/tflitefile"
)

// emitter assigns tensor and buffer indices in a deterministic order.
type emitter struct {
	m     *tfl.Model
	index map[*Value]int32
	names map[string]int
}

// Emit lowers a (float or quantized) graph to a TFLite model.
func Emit(g *Graph, description string) (*tfl.Model, error) {
	e := &emitter{m: &tfl.Model{Description: description}, index: map[*Value]int32{}, names: map[string]int{}}
	for _, v := range g.Inputs {
		e.m.Inputs = append(e.m.Inputs, e.tensor(v))
	}
	for _, op := range g.Ops {
		o := tfl.Operator{Op: op.Code, Version: op.version()}
		for _, in := range op.In {
			if in == nil {
				o.Inputs = append(o.Inputs, -1)
				continue
			}
			o.Inputs = append(o.Inputs, e.tensor(in))
		}
		o.Outputs = []int32{e.tensor(op.Out)}
		opts, err := op.options()
		if err != nil {
			return nil, fmt.Errorf("op %s from %s: %w", op.Code, op.Source, err)
		}
		o.Options = opts
		e.m.Operators = append(e.m.Operators, o)
	}
	for _, v := range g.Outputs {
		idx, ok := e.index[v]
		if !ok {
			return nil, fmt.Errorf("output %s is produced by no op", v.Name)
		}
		e.m.Outputs = append(e.m.Outputs, idx)
	}
	return e.m, nil
}

func (e *emitter) tensor(v *Value) int32 {
	if i, ok := e.index[v]; ok {
		return i
	}
	name := v.Name
	if k := e.names[name]; k > 0 {
		name = fmt.Sprintf("%s_%d", name, k)
	}
	e.names[v.Name]++
	t := tfl.Tensor{Name: name, Type: v.Type, Quant: v.quant()}
	for _, d := range v.Shape {
		t.Shape = append(t.Shape, int32(d))
	}
	if v.IsConst() || v.I8 != nil {
		e.m.Buffers = append(e.m.Buffers, v.bytes())
		t.Buffer = uint32(len(e.m.Buffers))
	}
	i := int32(len(e.m.Tensors))
	e.m.Tensors = append(e.m.Tensors, t)
	e.index[v] = i
	return i
}

func (v *Value) bytes() []byte {
	switch {
	case v.I8 != nil:
		b := make([]byte, len(v.I8))
		for i, x := range v.I8 {
			b[i] = byte(x)
		}
		return b
	case v.F32 != nil && v.Type == tfl.Float32:
		b := make([]byte, 0, 4*len(v.F32))
		for _, x := range v.F32 {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
		return b
	}
	b := make([]byte, 0, 4*len(v.I32))
	for _, x := range v.I32 {
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return b
}

func (v *Value) quant() *tfl.Quantization {
	if v.Q == nil {
		return nil
	}
	q := &tfl.Quantization{QuantizedDimension: int32(v.Q.Axis)}
	for i, s := range v.Q.Scale {
		q.Scale = append(q.Scale, float32(s))
		q.ZeroPoint = append(q.ZeroPoint, int64(v.Q.Zero[i]))
	}
	return q
}

func (op *Op) options() (tfl.Options, error) {
	switch op.Code {
	case tfl.OpConv2D:
		return &tfl.Conv2DOptions{Padding: op.Padding, StrideW: int32(op.StrideW), StrideH: int32(op.StrideH),
			Activation: op.Act, DilationW: int32(op.DilW), DilationH: int32(op.DilH)}, nil
	case tfl.OpDepthwiseConv2D:
		return &tfl.DepthwiseConv2DOptions{Padding: op.Padding, StrideW: int32(op.StrideW), StrideH: int32(op.StrideH),
			DepthMultiplier: int32(op.DepthMultiplier), Activation: op.Act, DilationW: int32(op.DilW), DilationH: int32(op.DilH)}, nil
	case tfl.OpMaxPool2D, tfl.OpAveragePool2D:
		return &tfl.Pool2DOptions{Padding: op.Padding, StrideW: int32(op.StrideW), StrideH: int32(op.StrideH),
			FilterWidth: int32(op.FilterW), FilterHeight: int32(op.FilterH), Activation: op.Act}, nil
	case tfl.OpFullyConnected:
		return &tfl.FullyConnectedOptions{Activation: op.Act}, nil
	case tfl.OpSoftmax:
		return &tfl.SoftmaxOptions{Beta: op.Beta}, nil
	case tfl.OpConcatenation:
		return &tfl.ConcatenationOptions{Axis: int32(op.Axis), Activation: op.Act}, nil
	case tfl.OpAdd, tfl.OpSub, tfl.OpMul, tfl.OpDiv:
		return &tfl.ArithmeticOptions{Op: op.Code, Activation: op.Act}, nil
	case tfl.OpReshape:
		return &tfl.ReshapeOptions{NewShape: op.In[1].I32}, nil
	case tfl.OpMean, tfl.OpSum, tfl.OpReduceMax:
		return &tfl.ReducerOptions{KeepDims: op.KeepDims}, nil
	case tfl.OpResizeBilinear:
		return &tfl.ResizeBilinearOptions{AlignCorners: op.AlignCorners, HalfPixelCenters: op.HalfPixel}, nil
	case tfl.OpResizeNearestNeighbor:
		return &tfl.ResizeNearestNeighborOptions{AlignCorners: op.AlignCorners, HalfPixelCenters: op.HalfPixel}, nil
	case tfl.OpLeakyRelu:
		return &tfl.LeakyReluOptions{Alpha: op.Alpha}, nil
	case tfl.OpMirrorPad:
		return &tfl.MirrorPadOptions{Symmetric: op.Symmetric}, nil
	case tfl.OpStridedSlice:
		return &tfl.StridedSliceOptions{}, nil
	}
	if op.Act != tfl.ActNone {
		return nil, fmt.Errorf("fused activation on an op without an activation slot")
	}
	return nil, nil
}
