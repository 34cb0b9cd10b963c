package compiler

import (
	"fmt"
	"math"
	"strings"

	"imageapid/models/tfjs"
	tfl "imageapid/models/tflitefile"
)

// importer converts TF nodes to ops, one node at a time in dependency order.
type importer struct {
	model  *tfjs.Model
	name   string
	nodes  map[string]*tfjs.Node
	values map[string]*Value // by node name (output 0)
	g      *Graph
	busy   map[string]bool
}

// Import builds the graph of a TF.js model with batch size 1. outputs, when
// non-empty, cuts the graph at those tensors instead of the signature's.
func Import(name string, m *tfjs.Model, outputs []string) (*Graph, error) {
	im := &importer{model: m, name: name, nodes: map[string]*tfjs.Node{}, values: map[string]*Value{},
		g: &Graph{Name: name}, busy: map[string]bool{}}
	for i := range m.Nodes {
		im.nodes[m.Nodes[i].Name] = &m.Nodes[i]
	}
	// Inputs in signature order, else Placeholder order.
	var inputs []string
	for _, p := range m.Inputs {
		n, _, _ := tfjs.SplitTensorName(p.Tensor)
		inputs = append(inputs, n)
	}
	if len(inputs) == 0 {
		for _, n := range m.Nodes {
			if n.Op == "Placeholder" {
				inputs = append(inputs, n.Name)
			}
		}
	}
	for _, in := range inputs {
		if _, err := im.value(in); err != nil {
			return nil, err
		}
	}
	type out struct{ name, tensor string }
	var outs []out
	if len(outputs) > 0 {
		for _, o := range outputs {
			outs = append(outs, out{o, o})
		}
	} else {
		for _, p := range m.Outputs {
			outs = append(outs, out{p.Key, p.Tensor})
		}
	}
	if len(outs) == 0 {
		return nil, fmt.Errorf("model %s: no signature outputs and none given", name)
	}
	for _, o := range outs {
		nodeName, idx, _ := tfjs.SplitTensorName(o.tensor)
		if idx != 0 {
			return nil, fmt.Errorf("model %s: output %s reads output %d of a node; only output 0 is supported", name, o.tensor, idx)
		}
		v, err := im.value(nodeName)
		if err != nil {
			return nil, err
		}
		if v.IsConst() {
			return nil, fmt.Errorf("model %s: output %s is a constant", name, o.tensor)
		}
		if im.g.isOutput(v) || isInput(im.g, v) {
			// An output that is also another output or an input needs its own tensor.
			c := &Value{Name: o.name, Shape: v.Shape, Type: v.Type}
			im.g.Ops = append(im.g.Ops, &Op{Code: tfl.OpReshape, In: []*Value{v, shapeConst(c.Name, v.Shape)}, Out: c, Source: o.tensor})
			v = c
		}
		v.Name = o.name
		im.g.Outputs = append(im.g.Outputs, v)
	}
	return im.g, nil
}

func isInput(g *Graph, v *Value) bool {
	for _, i := range g.Inputs {
		if i == v {
			return true
		}
	}
	return false
}

func (im *importer) errorf(n *tfjs.Node, format string, args ...any) error {
	return fmt.Errorf("model %s: node %s (%s): %s", im.name, n.Name, n.Op, fmt.Sprintf(format, args...))
}

// value returns the value of a node's output 0, importing it first.
func (im *importer) value(name string) (*Value, error) {
	if v, ok := im.values[name]; ok {
		return v, nil
	}
	n, ok := im.nodes[name]
	if !ok {
		return nil, fmt.Errorf("model %s: no node named %q", im.name, name)
	}
	if im.busy[name] {
		return nil, fmt.Errorf("model %s: cycle through node %s", im.name, name)
	}
	im.busy[name] = true
	defer delete(im.busy, name)
	var ins []*Value
	for _, s := range n.Inputs {
		nodeName, idx, ok := tfjs.SplitTensorName(s)
		if !ok {
			continue // control dependency
		}
		if idx != 0 && !strings.HasPrefix(im.nodes[nodeName].Op, "FusedBatchNorm") {
			return nil, im.errorf(n, "reads output %d of %s; only output 0 is supported", idx, nodeName)
		}
		v, err := im.value(nodeName)
		if err != nil {
			return nil, err
		}
		ins = append(ins, v)
	}
	v, err := im.convert(n, ins)
	if err != nil {
		return nil, err
	}
	im.values[name] = v
	return v, nil
}

// emit appends an op producing a new activation value.
func (im *importer) emit(n *tfjs.Node, code tfl.Op, ins []*Value, shape []int, typ tfl.TensorType, set func(*Op)) *Value {
	out := &Value{Name: n.Name, Shape: shape, Type: typ}
	op := &Op{Code: code, In: ins, Out: out, Source: n.Name}
	if set != nil {
		set(op)
	}
	im.g.Ops = append(im.g.Ops, op)
	return out
}

func allConst(ins []*Value) bool {
	for _, v := range ins {
		if !v.IsConst() {
			return false
		}
	}
	return len(ins) > 0
}

func (im *importer) convert(n *tfjs.Node, ins []*Value) (*Value, error) {
	need := func(k int) error {
		if len(ins) < k {
			return im.errorf(n, "has %d inputs, needs %d", len(ins), k)
		}
		return nil
	}
	switch n.Op {
	case "Const":
		w, ok := im.model.Weights[n.Name]
		if !ok {
			return nil, im.errorf(n, "constant has no weights entry")
		}
		if w.F32 != nil {
			return constF32(n.Name, w.Shape, w.F32), nil
		}
		return constI32(n.Name, w.Shape, w.I32), nil
	case "Placeholder":
		shape := n.Shape("shape")
		for i, d := range shape {
			if d < 0 {
				if i != 0 {
					return nil, im.errorf(n, "input shape %v has an unknown non-batch dimension", shape)
				}
				shape[i] = 1
			}
		}
		v := &Value{Name: n.Name, Shape: shape, Type: tfl.Float32}
		im.g.Inputs = append(im.g.Inputs, v)
		return v, nil
	case "Identity", "StopGradient", "Snapshot":
		if err := need(1); err != nil {
			return nil, err
		}
		return ins[0], nil
	case "Shape":
		// Shapes are static once the input's is (batch 1, fixed sides).
		if err := need(1); err != nil {
			return nil, err
		}
		return shapeConst(n.Name, ins[0].Shape), nil
	case "Cast":
		if t, _ := n.Attr["DstT"]; len(ins) == 1 && !ins[0].IsConst() && t.Type == "DT_FLOAT" && ins[0].Type == tfl.Float32 {
			return ins[0], nil
		}
	}
	if allConst(ins) {
		v, err := foldNode(n, ins)
		if err != nil {
			return nil, im.errorf(n, "constant folding: %v", err)
		}
		return v, nil
	}
	x := ins[0]
	switch n.Op {
	case "Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative":
		return im.conv(n, ins)
	case "MatMul", "_FusedMatMul":
		return im.matmul(n, ins)
	case "BiasAdd", "Add", "AddV2", "Sub", "Mul", "RealDiv", "Maximum", "Minimum":
		if err := need(2); err != nil {
			return nil, err
		}
		codes := map[string]tfl.Op{"BiasAdd": tfl.OpAdd, "Add": tfl.OpAdd, "AddV2": tfl.OpAdd, "Sub": tfl.OpSub,
			"Mul": tfl.OpMul, "RealDiv": tfl.OpDiv, "Maximum": tfl.OpMaximum, "Minimum": tfl.OpMinimum}
		shape, err := broadcast(ins[0].Shape, ins[1].Shape)
		if err != nil {
			return nil, im.errorf(n, "%v", err)
		}
		return im.emit(n, codes[n.Op], ins[:2], shape, tfl.Float32, nil), nil
	case "FusedBatchNorm", "FusedBatchNormV3":
		if err := need(5); err != nil {
			return nil, err
		}
		mul, add, err := batchNormAffine(n, ins[1], ins[2], ins[3], ins[4])
		if err != nil {
			return nil, im.errorf(n, "%v", err)
		}
		c := len(mul)
		scaled := &Value{Name: n.Name + "/scaled", Shape: x.Shape, Type: tfl.Float32}
		im.g.Ops = append(im.g.Ops, &Op{Code: tfl.OpMul, In: []*Value{x, constF32(n.Name+"/scale", []int{c}, mul)}, Out: scaled, Source: n.Name})
		return im.emit(n, tfl.OpAdd, []*Value{scaled, constF32(n.Name+"/offset", []int{c}, add)}, x.Shape, tfl.Float32, nil), nil
	case "Relu", "Relu6", "Elu", "Sigmoid", "Tanh", "Softmax", "Abs", "Square", "Rsqrt", "Sqrt", "Neg", "Exp":
		codes := map[string]tfl.Op{"Relu": tfl.OpRelu, "Relu6": tfl.OpRelu6, "Elu": tfl.OpElu, "Sigmoid": tfl.OpLogistic,
			"Tanh": tfl.OpTanh, "Softmax": tfl.OpSoftmax, "Abs": tfl.OpAbs, "Square": tfl.OpSquare, "Rsqrt": tfl.OpRsqrt,
			"Sqrt": tfl.OpSqrt, "Neg": tfl.OpNeg, "Exp": tfl.OpExp}
		return im.emit(n, codes[n.Op], ins[:1], x.Shape, tfl.Float32, func(o *Op) { o.Beta = 1 }), nil
	case "Prelu":
		if err := need(2); err != nil {
			return nil, err
		}
		return im.emit(n, tfl.OpPrelu, ins[:2], x.Shape, tfl.Float32, nil), nil
	case "LeakyRelu":
		alpha, ok := n.Float("alpha")
		if !ok {
			alpha = 0.2
		}
		return im.emit(n, tfl.OpLeakyRelu, ins[:1], x.Shape, tfl.Float32, func(o *Op) { o.Alpha = float32(alpha) }), nil
	case "MaxPool", "AvgPool":
		return im.pool(n, x)
	case "Mean", "Sum", "Max":
		if err := need(2); err != nil {
			return nil, err
		}
		return im.reduce(n, x, ins[1])
	case "Pad", "MirrorPad":
		if err := need(2); err != nil {
			return nil, err
		}
		return im.pad(n, x, ins[1])
	case "Reshape", "ExpandDims", "Squeeze":
		shape, err := reshapeTarget(n, x.Shape, ins[1:])
		if err != nil {
			return nil, im.errorf(n, "%v", err)
		}
		return im.emit(n, tfl.OpReshape, []*Value{x, shapeConst(n.Name, shape)}, shape, x.Type, nil), nil
	case "ConcatV2":
		if err := need(2); err != nil {
			return nil, err
		}
		axisV := ins[len(ins)-1]
		parts := ins[:len(ins)-1]
		if !axisV.IsConst() || len(axisV.I32) != 1 {
			return nil, im.errorf(n, "axis is not a constant")
		}
		axis := normAxis(int(axisV.I32[0]), len(x.Shape))
		shape := append([]int{}, x.Shape...)
		shape[axis] = 0
		for i, p := range parts {
			if len(p.Shape) != len(shape) {
				return nil, im.errorf(n, "input %d has rank %d, not %d", i, len(p.Shape), len(shape))
			}
			shape[axis] += p.Shape[axis]
		}
		for i, p := range parts {
			if p.IsConst() && p.F32 == nil {
				return nil, im.errorf(n, "input %d is an integer constant", i)
			}
		}
		return im.emit(n, tfl.OpConcatenation, parts, shape, tfl.Float32, func(o *Op) { o.Axis = axis }), nil
	case "Transpose":
		if err := need(2); err != nil {
			return nil, err
		}
		perm := ins[1]
		if !perm.IsConst() || len(perm.I32) != len(x.Shape) {
			return nil, im.errorf(n, "permutation is not a constant of rank %d", len(x.Shape))
		}
		shape := make([]int, len(x.Shape))
		for i, p := range perm.I32 {
			shape[i] = x.Shape[p]
		}
		return im.emit(n, tfl.OpTranspose, []*Value{x, perm}, shape, x.Type, nil), nil
	case "StridedSlice", "Slice":
		return im.slice(n, ins)
	case "ResizeBilinear", "ResizeNearestNeighbor":
		if err := need(2); err != nil {
			return nil, err
		}
		size := ins[1]
		if !size.IsConst() || len(size.I32) != 2 || len(x.Shape) != 4 {
			return nil, im.errorf(n, "size is not a constant pair")
		}
		shape := []int{x.Shape[0], int(size.I32[0]), int(size.I32[1]), x.Shape[3]}
		code := tfl.OpResizeBilinear
		if n.Op == "ResizeNearestNeighbor" {
			code = tfl.OpResizeNearestNeighbor
		}
		return im.emit(n, code, []*Value{x, size}, shape, tfl.Float32, func(o *Op) {
			o.AlignCorners = n.Bool("align_corners")
			o.HalfPixel = n.Bool("half_pixel_centers")
		}), nil
	}
	return nil, im.errorf(n, "unsupported operation %q", n.Op)
}

// conv lowers Conv2D and depthwise convolutions, fused or not.
func (im *importer) conv(n *tfjs.Node, ins []*Value) (*Value, error) {
	if len(ins) < 2 {
		return nil, im.errorf(n, "needs input and filter")
	}
	x, w := ins[0], ins[1]
	if !w.IsConst() || w.F32 == nil || len(w.Shape) != 4 {
		return nil, im.errorf(n, "filter is not a constant 4-D float tensor")
	}
	if len(x.Shape) != 4 {
		return nil, im.errorf(n, "input rank %d, want 4 (NHWC)", len(x.Shape))
	}
	if f, ok := n.Str("data_format"); ok && f != "NHWC" {
		return nil, im.errorf(n, "data format %s; only NHWC is supported", f)
	}
	strides := n.Ints("strides")
	if len(strides) != 4 {
		strides = []int{1, 1, 1, 1}
	}
	dil := n.Ints("dilations")
	if len(dil) != 4 {
		dil = []int{1, 1, 1, 1}
	}
	kh, kw, cin, cout := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	depthwise := strings.Contains(n.Op, "Depthwise")
	if !depthwise && cin != x.Shape[3] {
		return nil, im.errorf(n, "filter expects %d input channels, input has %d", cin, x.Shape[3])
	}
	if depthwise && cin != x.Shape[3] {
		return nil, im.errorf(n, "depthwise filter expects %d channels, input has %d", cin, x.Shape[3])
	}
	in := x
	padding, err := im.convPadding(n, &in, x)
	if err != nil {
		return nil, err
	}
	outC := cout
	var filter *Value
	if depthwise {
		// [H,W,C,M] -> [1,H,W,C*M]: the same bytes, depth_multiplier M.
		outC = cin * cout
		filter = constF32(n.Name+"/filter", []int{1, kh, kw, outC}, w.F32)
	} else {
		// HWIO -> OHWI.
		t := make([]float32, len(w.F32))
		for h := 0; h < kh; h++ {
			for ww := 0; ww < kw; ww++ {
				for i := 0; i < cin; i++ {
					for o := 0; o < cout; o++ {
						t[((o*kh+h)*kw+ww)*cin+i] = w.F32[((h*kw+ww)*cin+i)*cout+o]
					}
				}
			}
		}
		filter = constF32(n.Name+"/filter", []int{cout, kh, kw, cin}, t)
	}
	bias := make([]float32, outC)
	oh := convOut(in.Shape[1], kh, strides[1], dil[1], padding)
	ow := convOut(in.Shape[2], kw, strides[2], dil[2], padding)
	shape := []int{x.Shape[0], oh, ow, outC}

	fused := n.Strs("fused_ops")
	var post []string
	if len(fused) > 0 {
		args := ins[2:]
		switch fused[0] {
		case "BiasAdd":
			if len(args) < 1 || !args[0].IsConst() || len(args[0].F32) != outC {
				return nil, im.errorf(n, "bias is not a constant of %d values", outC)
			}
			copy(bias, args[0].F32)
			args = args[1:]
		case "FusedBatchNorm":
			if len(args) < 4 {
				return nil, im.errorf(n, "fused batch norm needs 4 arguments")
			}
			mul, add, err := batchNormAffine(n, args[0], args[1], args[2], args[3])
			if err != nil || len(mul) != outC {
				return nil, im.errorf(n, "fused batch norm: %v", err)
			}
			scaleOutChannels(filter, mul, depthwise, false)
			copy(bias, add)
			args = args[4:]
		default:
			return nil, im.errorf(n, "unsupported fused operation %q", fused[0])
		}
		post = fused[1:]
		ins = append([]*Value{nil, nil}, args...)
	}
	y := im.emit(n, tfl.OpConv2D, []*Value{in, filter, constF32(n.Name+"/bias", []int{outC}, bias)}, shape, tfl.Float32, func(o *Op) {
		o.Padding = padding
		o.StrideH, o.StrideW = strides[1], strides[2]
		o.DilH, o.DilW = dil[1], dil[2]
		if depthwise {
			o.Code = tfl.OpDepthwiseConv2D
			o.DepthMultiplier = cout
		}
	})
	return im.activations(n, y, post, ins[2:])
}

// activations appends the fused activations of a _Fused* node.
func (im *importer) activations(n *tfjs.Node, y *Value, post []string, args []*Value) (*Value, error) {
	for _, a := range post {
		pre := &Value{Name: y.Name + "/pre_" + strings.ToLower(a), Shape: y.Shape, Type: y.Type}
		// The op that produced y now writes pre; the activation writes y.
		last := im.g.Ops[len(im.g.Ops)-1]
		last.Out = pre
		op := &Op{In: []*Value{pre}, Out: y, Source: n.Name}
		switch a {
		case "Relu":
			op.Code = tfl.OpRelu
		case "Relu6":
			op.Code = tfl.OpRelu6
		case "Elu":
			op.Code = tfl.OpElu
		case "Sigmoid":
			op.Code = tfl.OpLogistic
		case "Tanh":
			op.Code = tfl.OpTanh
		case "Prelu":
			if len(args) < 1 {
				return nil, im.errorf(n, "fused Prelu without alpha")
			}
			op.Code = tfl.OpPrelu
			op.In = append(op.In, args[0])
		case "LeakyRelu":
			alpha, ok := n.Float("leakyrelu_alpha")
			if !ok {
				alpha = 0.2
			}
			op.Code = tfl.OpLeakyRelu
			op.Alpha = float32(alpha)
		default:
			return nil, im.errorf(n, "unsupported fused activation %q", a)
		}
		im.g.Ops = append(im.g.Ops, op)
	}
	return y, nil
}

// convPadding returns the TFLite padding, inserting a PAD for EXPLICIT padding.
func (im *importer) convPadding(n *tfjs.Node, in **Value, x *Value) (tfl.Padding, error) {
	p, _ := n.Str("padding")
	switch p {
	case "SAME":
		return tfl.Same, nil
	case "VALID", "":
		return tfl.Valid, nil
	case "EXPLICIT":
		e := n.Ints("explicit_paddings")
		if len(e) != 8 {
			return 0, im.errorf(n, "explicit padding %v is not 4 pairs", e)
		}
		pads := make([]int32, 8)
		shape := append([]int{}, x.Shape...)
		for i := range e {
			pads[i] = int32(e[i])
			shape[i/2] += e[i]
		}
		padded := &Value{Name: n.Name + "/pad", Shape: shape, Type: tfl.Float32}
		im.g.Ops = append(im.g.Ops, &Op{Code: tfl.OpPad, In: []*Value{x, constI32(n.Name+"/paddings", []int{4, 2}, pads)}, Out: padded, Source: n.Name})
		*in = padded
		return tfl.Valid, nil
	}
	return 0, im.errorf(n, "unsupported padding %q", p)
}

func convOut(in, k, stride, dil int, p tfl.Padding) int {
	if p == tfl.Same {
		return (in + stride - 1) / stride
	}
	ek := (k-1)*dil + 1
	return (in-ek)/stride + 1
}

// batchNormAffine returns the per-channel multiplier and offset of a batch norm.
func batchNormAffine(n *tfjs.Node, scale, offset, mean, variance *Value) (mul, add []float32, err error) {
	for _, v := range []*Value{scale, offset, mean, variance} {
		if !v.IsConst() || v.F32 == nil {
			return nil, nil, fmt.Errorf("batch norm parameters are not float constants")
		}
	}
	eps, ok := n.Float("epsilon")
	if !ok {
		eps = 1e-3
	}
	c := len(scale.F32)
	if len(offset.F32) != c || len(mean.F32) != c || len(variance.F32) != c {
		return nil, nil, fmt.Errorf("batch norm parameter sizes differ")
	}
	mul, add = make([]float32, c), make([]float32, c)
	for i := 0; i < c; i++ {
		m := float64(scale.F32[i]) / math.Sqrt(float64(variance.F32[i])+eps)
		mul[i] = float32(m)
		add[i] = float32(float64(offset.F32[i]) - float64(mean.F32[i])*m)
	}
	return mul, add, nil
}

// scaleOutChannels multiplies a filter's output channels: OHWI (first dim),
// depthwise [1,H,W,C*M] (last dim) or fully connected [out,in] (first dim).
func scaleOutChannels(filter *Value, mul []float32, lastDim bool, _ bool) {
	c := len(mul)
	if lastDim {
		for i := range filter.F32 {
			filter.F32[i] *= mul[i%c]
		}
		return
	}
	per := len(filter.F32) / c
	for i := range filter.F32 {
		filter.F32[i] *= mul[i/per]
	}
}

func (im *importer) matmul(n *tfjs.Node, ins []*Value) (*Value, error) {
	if len(ins) < 2 {
		return nil, im.errorf(n, "needs two inputs")
	}
	x, w := ins[0], ins[1]
	if n.Bool("transpose_a") {
		return nil, im.errorf(n, "transpose_a is not supported")
	}
	if !w.IsConst() || w.F32 == nil || len(w.Shape) != 2 {
		return nil, im.errorf(n, "weights are not a constant matrix (BATCH_MATMUL is not supported)")
	}
	if len(x.Shape) != 2 {
		return nil, im.errorf(n, "input rank %d, want 2", len(x.Shape))
	}
	var in, out int
	var t []float32
	if n.Bool("transpose_b") {
		out, in = w.Shape[0], w.Shape[1]
		t = append([]float32{}, w.F32...)
	} else {
		in, out = w.Shape[0], w.Shape[1]
		t = make([]float32, len(w.F32))
		for i := 0; i < in; i++ {
			for o := 0; o < out; o++ {
				t[o*in+i] = w.F32[i*out+o]
			}
		}
	}
	if in != x.Shape[1] {
		return nil, im.errorf(n, "weights expect %d inputs, input has %d", in, x.Shape[1])
	}
	bias := make([]float32, out)
	fused := n.Strs("fused_ops")
	var post []string
	args := ins[2:]
	if len(fused) > 0 {
		if fused[0] != "BiasAdd" {
			return nil, im.errorf(n, "unsupported fused operation %q", fused[0])
		}
		if len(args) < 1 || !args[0].IsConst() || len(args[0].F32) != out {
			return nil, im.errorf(n, "bias is not a constant of %d values", out)
		}
		copy(bias, args[0].F32)
		args = args[1:]
		post = fused[1:]
	}
	y := im.emit(n, tfl.OpFullyConnected, []*Value{x, constF32(n.Name+"/weights", []int{out, in}, t),
		constF32(n.Name+"/bias", []int{out}, bias)}, []int{x.Shape[0], out}, tfl.Float32, nil)
	return im.activations(n, y, post, args)
}

func (im *importer) pool(n *tfjs.Node, x *Value) (*Value, error) {
	k := n.Ints("ksize")
	s := n.Ints("strides")
	if len(k) != 4 || len(s) != 4 || k[0] != 1 || k[3] != 1 {
		return nil, im.errorf(n, "unsupported pooling window %v strides %v", k, s)
	}
	p, _ := n.Str("padding")
	padding := tfl.Valid
	switch p {
	case "SAME":
		padding = tfl.Same
	case "VALID":
	default:
		return nil, im.errorf(n, "unsupported padding %q", p)
	}
	shape := []int{x.Shape[0], convOut(x.Shape[1], k[1], s[1], 1, padding), convOut(x.Shape[2], k[2], s[2], 1, padding), x.Shape[3]}
	code := tfl.OpMaxPool2D
	if n.Op == "AvgPool" {
		code = tfl.OpAveragePool2D
	}
	return im.emit(n, code, []*Value{x}, shape, tfl.Float32, func(o *Op) {
		o.Padding = padding
		o.FilterH, o.FilterW = k[1], k[2]
		o.StrideH, o.StrideW = s[1], s[2]
	}), nil
}

func (im *importer) reduce(n *tfjs.Node, x, axes *Value) (*Value, error) {
	if !axes.IsConst() || axes.I32 == nil {
		return nil, im.errorf(n, "reduction axes are not an integer constant")
	}
	keep := n.Bool("keep_dims")
	red := map[int]bool{}
	norm := make([]int32, len(axes.I32))
	for i, a := range axes.I32 {
		ax := normAxis(int(a), len(x.Shape))
		red[ax] = true
		norm[i] = int32(ax)
	}
	var shape []int
	for i, d := range x.Shape {
		switch {
		case !red[i]:
			shape = append(shape, d)
		case keep:
			shape = append(shape, 1)
		}
	}
	code := map[string]tfl.Op{"Mean": tfl.OpMean, "Sum": tfl.OpSum, "Max": tfl.OpReduceMax}[n.Op]
	return im.emit(n, code, []*Value{x, constI32(n.Name+"/axes", []int{len(norm)}, norm)}, shape, tfl.Float32,
		func(o *Op) { o.KeepDims = keep }), nil
}

func (im *importer) pad(n *tfjs.Node, x, p *Value) (*Value, error) {
	if !p.IsConst() || p.I32 == nil || len(p.I32) != 2*len(x.Shape) {
		return nil, im.errorf(n, "paddings are not a constant [%d,2]", len(x.Shape))
	}
	shape := append([]int{}, x.Shape...)
	for i := range shape {
		shape[i] += int(p.I32[2*i] + p.I32[2*i+1])
	}
	pads := constI32(n.Name+"/paddings", []int{len(x.Shape), 2}, p.I32)
	if n.Op == "MirrorPad" {
		mode, _ := n.Str("mode")
		return im.emit(n, tfl.OpMirrorPad, []*Value{x, pads}, shape, tfl.Float32, func(o *Op) { o.Symmetric = mode == "SYMMETRIC" }), nil
	}
	return im.emit(n, tfl.OpPad, []*Value{x, pads}, shape, tfl.Float32, nil), nil
}

// slice lowers Slice and StridedSlice with unit strides to SLICE (+ RESHAPE
// for shrunk axes); other strides become STRIDED_SLICE.
func (im *importer) slice(n *tfjs.Node, ins []*Value) (*Value, error) {
	x := ins[0]
	begin, size, outShape, strides, err := staticSlice(n, x.Shape, ins[1:])
	if err != nil {
		return nil, im.errorf(n, "%v", err)
	}
	unit := true
	for _, s := range strides {
		unit = unit && s == 1
	}
	sliceShape := make([]int, len(size))
	for i := range size {
		sliceShape[i] = int(size[i])
	}
	var y *Value
	if unit {
		y = im.emit(n, tfl.OpSlice, []*Value{x, constI32(n.Name+"/begin", []int{len(begin)}, begin),
			constI32(n.Name+"/size", []int{len(size)}, size)}, sliceShape, x.Type, nil)
	} else {
		end := make([]int32, len(begin))
		st := make([]int32, len(begin))
		for i := range begin {
			end[i] = begin[i] + int32(strides[i])*size[i]
			st[i] = int32(strides[i])
		}
		y = im.emit(n, tfl.OpStridedSlice, []*Value{x, constI32(n.Name+"/begin", []int{len(begin)}, begin),
			constI32(n.Name+"/end", []int{len(end)}, end), constI32(n.Name+"/strides", []int{len(st)}, st)}, sliceShape, x.Type, nil)
	}
	if equalShape(sliceShape, outShape) {
		return y, nil
	}
	y.Name += "/slice"
	return im.emit(n, tfl.OpReshape, []*Value{y, shapeConst(n.Name, outShape)}, outShape, x.Type, nil), nil
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func shapeConst(name string, shape []int) *Value {
	s := make([]int32, len(shape))
	for i, d := range shape {
		s[i] = int32(d)
	}
	return constI32(name+"/shape", []int{len(s)}, s)
}

func normAxis(a, rank int) int {
	if a < 0 {
		a += rank
	}
	return a
}

// broadcast returns the numpy-style broadcast shape.
func broadcast(a, b []int) ([]int, error) {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := 0; i < n; i++ {
		da, db := 1, 1
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db || db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}
