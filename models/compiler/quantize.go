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
	tfl.OpLeakyRelu: 2, // PRELU has one version in TFLite 2.9, int8 included
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

// headMACs is the most multiply-accumulates an output's last linear layer
// may cost to be kept in float (see floatHead).
const headMACs = 4 << 20

// floatHead returns the ops that stay float at the end of the network: from
// each output back through the ops after the last linear layer (softmax,
// sigmoid, pooling, reshapes) and that layer itself when it is cheap. A
// classifier's logits quantized to 8 bits over their whole range tie or
// swap close classes; in float they cost a few hundred thousand
// multiply-adds, and XNNPACK runs the float tail too.
func floatHead(g *Graph) map[*Op]bool {
	producer := map[*Value]*Op{}
	for _, op := range g.Ops {
		producer[op.Out] = op
	}
	out := map[*Op]bool{}
	for _, o := range g.Outputs {
		for op := producer[o]; op != nil && !out[op]; {
			if isLinear(op) {
				if linearMACs(op) <= headMACs {
					out[op] = true
				}
				break
			}
			var next *Op
			for _, in := range op.In {
				if in != nil && !in.IsConst() {
					if next != nil {
						next = nil // a join: stop here
						break
					}
					next = producer[in]
				}
			}
			out[op] = true
			op = next
		}
	}
	return out
}

// linearMACs is a linear op's multiply-accumulate count.
func linearMACs(op *Op) int {
	w := op.In[1].Shape
	switch op.Code {
	case tfl.OpConv2D: // filter [O,H,W,I]
		return op.Out.Size() * w[1] * w[2] * w[3]
	case tfl.OpDepthwiseConv2D: // filter [1,H,W,C]
		return op.Out.Size() * w[1] * w[2]
	}
	return op.Out.Size() * w[len(w)-1] // fully connected [O,I]
}

// constParams are the per-tensor parameters of a float constant operand.
func constParams(c *Value) *QuantParams {
	lo, hi := 0.0, 0.0
	for _, x := range c.F32 {
		lo, hi = math.Min(lo, float64(x)), math.Max(hi, float64(x))
	}
	return activationParams(lo, hi)
}

// weightAxis is the per-channel axis of a linear op's filter (-1: per tensor).
func weightAxis(code tfl.Op) int {
	switch code {
	case tfl.OpDepthwiseConv2D:
		return 3
	case tfl.OpFullyConnected:
		return -1
	}
	return 0
}

// fitsXNNPACK reports whether XNNPACK's int8 (QS8) kernels accept the op's
// scales. XNNPACK rejects rescaling factors outside fixed ranges when it
// creates its runtime, and then the whole delegate fails to prepare and
// the model does not load under XNNPACK at all; an op whose calibrated
// ranges fall outside (a near-constant tensor, a multiply by zero) stays
// float instead. Ranges are XNNPACK's create-time checks.
func fitsXNNPACK(op *Op, in []*QuantParams, out *QuantParams) bool {
	within := func(r, lo, hi float64) bool { return r >= lo && r < hi }
	so := out.Scale[0]
	switch op.Code {
	case tfl.OpConv2D, tfl.OpDepthwiseConv2D, tfl.OpFullyConnected:
		w := symmetricWeights(op.In[1], weightAxis(op.Code))
		for _, sw := range w.Q.Scale {
			if in[0].Scale[0]*sw/so >= 256 {
				return false
			}
		}
	case tfl.OpAdd, tfl.OpSub:
		for _, p := range in[:2] {
			if !within(p.Scale[0]/so, 0x1p-10, 0x1p8) {
				return false
			}
		}
	case tfl.OpMul:
		return within(in[0].Scale[0]*in[1].Scale[0]/so, 0x1p-16, 0x1p8)
	case tfl.OpAveragePool2D, tfl.OpMean:
		return within(in[0].Scale[0]/so, 0x1p-8, 0x1p8)
	}
	return true
}

// lowerPrelu emits an int8 PRELU as relu(x) - alpha*relu(-x) in MUL and ADD
// ops: TFLite 2.9's XNNPACK has no int8 PRELU, and the TFLite kernel
// between XNNPACK partitions made int8 mobileface slower than float. The
// intermediate ranges follow from x's. It reports false (nothing emitted)
// when XNNPACK would refuse the scales; the op then stays a PRELU.
func lowerPrelu(op *Op, x *Value, toInt8 func(*Value, *QuantParams) (*Value, error),
	rangeOf func(*Value) (*QuantParams, error), emit func(*Op)) (bool, error) {
	xp, err := toInt8Params(x, rangeOf)
	if err != nil {
		return false, err
	}
	outQ, err := rangeOf(op.Out)
	if err != nil {
		return false, err
	}
	lo := float64(-128-xp.Zero[0]) * xp.Scale[0]
	hi := float64(127-xp.Zero[0]) * xp.Scale[0]
	negAlpha := make([]float32, len(op.In[1].F32))
	var aLo, aHi float64
	for i, a := range op.In[1].F32 {
		negAlpha[i] = -a
		aLo, aHi = math.Min(aLo, float64(-a)), math.Max(aHi, float64(-a))
	}
	one := constF32(op.Out.Name+"/one", []int{1}, []float32{1})
	minusOne := constF32(op.Out.Name+"/minus_one", []int{1}, []float32{-1})
	alpha := constF32(op.Out.Name+"/minus_alpha", op.In[1].Shape, negAlpha)
	posQ := activationParams(0, hi)
	negQ := activationParams(0, -lo)
	scaledQ := activationParams(aLo*-lo, aHi*-lo)
	checks := []struct {
		code    tfl.Op
		in, out []*QuantParams
	}{
		{tfl.OpMul, []*QuantParams{xp, constParams(one)}, []*QuantParams{posQ}},
		{tfl.OpMul, []*QuantParams{xp, constParams(minusOne)}, []*QuantParams{negQ}},
		{tfl.OpMul, []*QuantParams{negQ, constParams(alpha)}, []*QuantParams{scaledQ}},
		{tfl.OpAdd, []*QuantParams{posQ, scaledQ}, []*QuantParams{outQ}},
	}
	for _, c := range checks {
		if !fitsXNNPACK(&Op{Code: c.code}, c.in, c.out[0]) {
			return false, nil
		}
	}
	xq, err := toInt8(x, nil)
	if err != nil {
		return false, err
	}
	val := func(suffix string, q *QuantParams) *Value {
		return &Value{Name: op.Out.Name + suffix, Shape: op.Out.Shape, Type: tfl.Int8, Q: q}
	}
	mul := func(a *Value, c *Value, act tfl.Activation, out *Value) *Op {
		return &Op{Code: tfl.OpMul, In: []*Value{a, quantizeConst(c, constParams(c))}, Out: out, Act: act,
			Version: int8Version[tfl.OpMul], Source: op.Source}
	}
	pos, neg, scaled := val("/relu", posQ), val("/relu_neg", negQ), val("/neg_part", scaledQ)
	emit(mul(xq, one, tfl.ActRelu, pos))
	emit(mul(xq, minusOne, tfl.ActRelu, neg))
	emit(mul(neg, alpha, tfl.ActNone, scaled))
	emit(&Op{Code: tfl.OpAdd, In: []*Value{pos, scaled}, Out: val("", outQ), Version: int8Version[tfl.OpAdd], Source: op.Source})
	return true, nil
}

// toInt8Params are the parameters x has or will get in int8.
func toInt8Params(x *Value, rangeOf func(*Value) (*QuantParams, error)) (*QuantParams, error) {
	if x.Type == tfl.Int8 && x.Q != nil {
		return x.Q, nil
	}
	return rangeOf(x)
}

// Quantize returns an int8 copy of a float graph: int8 weights and
// activations inside, float32 input and outputs through QUANTIZE and
// DEQUANTIZE at the edges, around ops that have no int8 kernel and before
// the float head (floatHead).
func Quantize(g *Graph, ranges Ranges) (*Graph, error) {
	head := floatHead(g)
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
		emitFloat := func() {
			for i, in := range n.In {
				if in != nil && !in.IsConst() {
					n.In[i] = toFloat(in)
				}
			}
			n.Out = &Value{Name: op.Out.Name, Shape: op.Out.Shape, Type: tfl.Float32}
			q.Ops = append(q.Ops, &n)
			cur[op.Out] = n.Out
		}
		if !int8Ops[op.Code] || head[op] {
			emitFloat()
			continue
		}
		if op.Code == tfl.OpPrelu {
			ok, err := lowerPrelu(op, get(op.In[0]), toInt8, rangeOf, func(o *Op) {
				q.Ops = append(q.Ops, o)
				isInt8[o.Out] = true
				cur[op.Out] = o.Out
			})
			if err != nil {
				return nil, err
			}
			if ok {
				continue
			}
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
		if !passThrough[op.Code] {
			// The scales the op's operands will have, to check them
			// against XNNPACK's limits before anything is emitted.
			inQ := make([]*QuantParams, len(n.In))
			for i, in := range n.In {
				switch {
				case in == nil || (in.IsConst() && in.Type == tfl.Int32):
				case sharedParams[op.Code]:
					inQ[i] = out.Q
				case in.IsConst():
					inQ[i] = constParams(in)
				case isInt8[in]:
					inQ[i] = in.Q
				case int8Of[in] != nil:
					inQ[i] = int8Of[in].Q
				default:
					if inQ[i], err = rangeOf(in); err != nil {
						return nil, err
					}
				}
			}
			if !fitsXNNPACK(op, inQ, out.Q) {
				emitFloat()
				continue
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
			w := symmetricWeights(op.In[1], weightAxis(op.Code))
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
				n.In[i] = quantizeConst(in, constParams(in))
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
