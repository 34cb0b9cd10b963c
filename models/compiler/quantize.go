package compiler

import (
	"fmt"
	"math"

	tfl "imageapid/models/tflitefile"
)

// Ranges are calibrated activation ranges by value name.
type Ranges map[string][2]float64

// int8Ops run in int8; every other op runs in float between DEQUANTIZE and QUANTIZE.
var int8Ops = map[tfl.Op]bool{
	tfl.OpConv2D: true, tfl.OpDepthwiseConv2D: true, tfl.OpFullyConnected: true,
	tfl.OpAdd: true, tfl.OpSub: true, tfl.OpMul: true,
	tfl.OpMaxPool2D: true, tfl.OpAveragePool2D: true, tfl.OpReshape: true, tfl.OpMean: true,
	tfl.OpPad: true, tfl.OpSoftmax: true, tfl.OpLogistic: true, tfl.OpTanh: true,
	tfl.OpConcatenation: true, tfl.OpMaximum: true, tfl.OpMinimum: true, tfl.OpRelu: true, tfl.OpRelu6: true,
	tfl.OpReduceMax: true, tfl.OpSlice: true, tfl.OpTranspose: true, tfl.OpPrelu: true, tfl.OpLeakyRelu: true,
	// ABS stays float: XNNPACK 2.9 aborts on int8 ABS.

}

// int8Version is the operator version the converter gives the int8 kernels.
var int8Version = map[tfl.Op]int{
	tfl.OpConv2D: 3, tfl.OpDepthwiseConv2D: 3, tfl.OpFullyConnected: 4, tfl.OpAdd: 2, tfl.OpSub: 2, tfl.OpMul: 2,
	tfl.OpMaxPool2D: 2, tfl.OpAveragePool2D: 2, tfl.OpMean: 2, tfl.OpPad: 2, tfl.OpSoftmax: 2, tfl.OpLogistic: 2,
	tfl.OpTanh: 2, tfl.OpConcatenation: 2, tfl.OpMaximum: 2, tfl.OpMinimum: 2, tfl.OpRelu: 2, tfl.OpRelu6: 2,
	tfl.OpReduceMax: 2, tfl.OpSlice: 2, tfl.OpTranspose: 2, tfl.OpDequantize: 2, tfl.OpQuantize: 2, tfl.OpAbs: 2,
}

// passThrough ops must keep their input's quantization on the output.
var passThrough = map[tfl.Op]bool{
	tfl.OpMaxPool2D: true, tfl.OpAveragePool2D: true, tfl.OpReshape: true, tfl.OpPad: true,
	tfl.OpSlice: true, tfl.OpTranspose: true, tfl.OpReduceMax: true,
}

// sharedParams ops need the same quantization on all operands and the output.
var sharedParams = map[tfl.Op]bool{tfl.OpConcatenation: true, tfl.OpMaximum: true, tfl.OpMinimum: true}

func activationParams(lo, hi float64) *QuantParams {
	lo, hi = math.Min(lo, 0), math.Max(hi, 0)
	// A (nearly) constant activation still gets a usable scale: kernels
	// compare bias and output scales and reject vanishing ones.
	if hi-lo < 1e-3 {
		hi = lo + 1e-3
	}
	scale := float64(float32((hi - lo) / 255))
	zp := int(math.Round(-128 - lo/scale))
	zp = min(max(zp, -128), 127)
	return &QuantParams{Scale: []float64{scale}, Zero: []int{zp}}
}

func sameParams(a, b *QuantParams) bool {
	if a == nil || b == nil || len(a.Scale) != len(b.Scale) {
		return false
	}
	for i := range a.Scale {
		if a.Scale[i] != b.Scale[i] || a.Zero[i] != b.Zero[i] {
			return false
		}
	}
	return true
}

// quantizeConst quantizes a float constant with given per-tensor params.
func quantizeConst(v *Value, q *QuantParams) *Value {
	out := &Value{Name: v.Name, Shape: v.Shape, Type: tfl.Int8, Q: q, I8: make([]int8, len(v.F32))}
	for i, x := range v.F32 {
		out.I8[i] = int8(min(max(math.Round(float64(x)/q.Scale[0])+float64(q.Zero[0]), -128), 127))
	}
	return out
}

// symmetricWeights quantizes a filter per channel along axis (or per tensor when axis < 0).
func symmetricWeights(v *Value, axis int) *Value {
	channels := 1
	if axis >= 0 {
		channels = v.Shape[axis]
	}
	inner := 1
	if axis >= 0 {
		for _, d := range v.Shape[axis+1:] {
			inner *= d
		}
	}
	chanOf := func(i int) int {
		if axis < 0 {
			return 0
		}
		return (i / inner) % channels
	}
	maxAbs := make([]float64, channels)
	for i, x := range v.F32 {
		c := chanOf(i)
		maxAbs[c] = math.Max(maxAbs[c], math.Abs(float64(x)))
	}
	q := &QuantParams{Axis: max(axis, 0)}
	for _, m := range maxAbs {
		s := m / 127
		if s == 0 {
			s = 1
		}
		s = float64(float32(s))
		q.Scale = append(q.Scale, s)
		q.Zero = append(q.Zero, 0)
	}
	out := &Value{Name: v.Name, Shape: v.Shape, Type: tfl.Int8, Q: q, I8: make([]int8, len(v.F32))}
	for i, x := range v.F32 {
		c := chanOf(i)
		out.I8[i] = int8(min(max(math.Round(float64(x)/q.Scale[c]), -127), 127))
	}
	return out
}

func quantizeBias(b *Value, inScale float64, w *QuantParams) *Value {
	q := &QuantParams{Axis: 0}
	out := &Value{Name: b.Name, Shape: b.Shape, Type: tfl.Int32, Q: q, I32: make([]int32, len(b.F32))}
	for i, x := range b.F32 {
		ws := w.Scale[0]
		if len(w.Scale) > 1 {
			ws = w.Scale[i]
		}
		// Kernels recompute the product from the stored float32 scales.
		s := float64(float32(inScale)) * float64(float32(ws))
		if len(w.Scale) > 1 || i == 0 {
			q.Scale = append(q.Scale, s)
			q.Zero = append(q.Zero, 0)
		}
		out.I32[i] = int32(math.Round(float64(x) / s))
	}
	return out
}

// Quantize returns an int8 copy of a float graph: int8 weights and
// activations inside, float32 input and outputs through QUANTIZE and
// DEQUANTIZE at the edges and around ops that have no int8 kernel.
func Quantize(g *Graph, ranges Ranges) (*Graph, error) {
	q := &Graph{Name: g.Name, Inputs: g.Inputs}
	int8Of := map[*Value]*Value{}  // float value -> its int8 twin
	floatOf := map[*Value]*Value{} // int8 value -> float twin
	isInt8 := map[*Value]bool{}
	rangeOf := func(v *Value) (*QuantParams, error) {
		r, ok := ranges[v.Name]
		if !ok {
			return nil, fmt.Errorf("no calibrated range for %s (re-run calibration)", v.Name)
		}
		return activationParams(r[0], r[1]), nil
	}
	toInt8 := func(v *Value, params *QuantParams) (*Value, error) {
		if isInt8[v] {
			if params == nil || sameParams(v.Q, params) {
				return v, nil
			}
			r := &Value{Name: v.Name + "/requant", Shape: v.Shape, Type: tfl.Int8, Q: params}
			q.Ops = append(q.Ops, &Op{Code: tfl.OpQuantize, In: []*Value{v}, Out: r, Version: 2})
			isInt8[r] = true
			return r, nil
		}
		if t, ok := int8Of[v]; ok && (params == nil || sameParams(t.Q, params)) {
			return t, nil
		}
		if params == nil {
			var err error
			if params, err = rangeOf(v); err != nil {
				return nil, err
			}
		}
		t := &Value{Name: v.Name + "/int8", Shape: v.Shape, Type: tfl.Int8, Q: params}
		q.Ops = append(q.Ops, &Op{Code: tfl.OpQuantize, In: []*Value{v}, Out: t, Version: 2})
		int8Of[v] = t
		isInt8[t] = true
		return t, nil
	}
	toFloat := func(v *Value) *Value {
		if !isInt8[v] {
			return v
		}
		if f, ok := floatOf[v]; ok {
			return f
		}
		f := &Value{Name: v.Name + "/float", Shape: v.Shape, Type: tfl.Float32}
		q.Ops = append(q.Ops, &Op{Code: tfl.OpDequantize, In: []*Value{v}, Out: f, Version: 2})
		floatOf[v] = f
		return f
	}
	cur := map[*Value]*Value{} // float graph value -> value in q
	get := func(v *Value) *Value {
		if v == nil || v.IsConst() {
			return v
		}
		if c, ok := cur[v]; ok {
			return c
		}
		return v
	}
	for _, op := range g.Ops {
		n := *op
		n.In = make([]*Value, len(op.In))
		for i, in := range op.In {
			n.In[i] = get(in)
		}
		if !int8Ops[op.Code] {
			for i, in := range n.In {
				if in != nil && !in.IsConst() {
					n.In[i] = toFloat(in)
				}
			}
			n.Out = &Value{Name: op.Out.Name, Shape: op.Out.Shape, Type: tfl.Float32}
			q.Ops = append(q.Ops, &n)
			cur[op.Out] = n.Out
			continue
		}
		out := &Value{Name: op.Out.Name, Shape: op.Out.Shape, Type: tfl.Int8}
		var err error
		switch {
		case op.Code == tfl.OpSoftmax || op.Code == tfl.OpLogistic:
			out.Q = &QuantParams{Scale: []float64{1.0 / 256}, Zero: []int{-128}}
		case op.Code == tfl.OpTanh:
			out.Q = &QuantParams{Scale: []float64{1.0 / 128}, Zero: []int{0}}
		case passThrough[op.Code]:
		default:
			if out.Q, err = rangeOf(op.Out); err != nil {
				return nil, err
			}
		}
		// Activation inputs.
		for i, in := range n.In {
			if in == nil || in.IsConst() {
				continue
			}
			var want *QuantParams
			if sharedParams[op.Code] {
				want = out.Q
			}
			if n.In[i], err = toInt8(in, want); err != nil {
				return nil, err
			}
		}
		if passThrough[op.Code] {
			out.Q = n.In[0].Q
		}
		// Constant inputs.
		switch op.Code {
		case tfl.OpConv2D, tfl.OpDepthwiseConv2D, tfl.OpFullyConnected:
			axis := 0
			if op.Code == tfl.OpDepthwiseConv2D {
				axis = 3
			}
			if op.Code == tfl.OpFullyConnected {
				axis = -1
			}
			w := symmetricWeights(op.In[1], axis)
			n.In[1] = w
			if op.In[2] != nil {
				n.In[2] = quantizeBias(op.In[2], n.In[0].Q.Scale[0], w.Q)
			}
		default:
			for i, in := range op.In {
				if in == nil || !in.IsConst() {
					continue
				}
				if in.Type == tfl.Int32 {
					continue // shapes, axes, paddings
				}
				if sharedParams[op.Code] {
					n.In[i] = quantizeConst(in, out.Q)
					continue
				}
				lo, hi := 0.0, 0.0
				for _, x := range in.F32 {
					lo, hi = math.Min(lo, float64(x)), math.Max(hi, float64(x))
				}
				n.In[i] = quantizeConst(in, activationParams(lo, hi))
			}
		}
		n.Out = out
		n.Version = int8Version[op.Code]
		isInt8[out] = true
		q.Ops = append(q.Ops, &n)
		cur[op.Out] = out
	}
	for _, o := range g.Outputs {
		v := get(o)
		if isInt8[v] {
			f := &Value{Name: o.Name, Shape: o.Shape, Type: tfl.Float32}
			v.Name = o.Name + "/int8"
			q.Ops = append(q.Ops, &Op{Code: tfl.OpDequantize, In: []*Value{v}, Out: f, Version: 2})
			v = f
		}
		q.Outputs = append(q.Outputs, v)
	}
	return q, nil
}
