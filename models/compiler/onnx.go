package compiler

import (
	"fmt"

	"imageapid/models/onnx"
	"imageapid/models/tfjs"
)

// ONNXGraph turns an ONNX graph (NCHW, as PyTorch exports it) into the
// equivalent TF.js GraphDef node list in NHWC, so that the importer, the
// rewrites, the emitter and the gates treat it like any graph model; the
// float gate then compares the compiled file with ONNX Runtime on the
// original file. It covers what the face-recognition networks in pinned
// packages use: Conv (plain and depthwise, explicit padding, bias), PRelu,
// Add, Relu and a final Reshape; anything else is refused by name.
func ONNXGraph(m *onnx.Model) (*tfjs.Model, error) {
	if v := m.Opsets[""]; v < 7 || v > 17 {
		return nil, fmt.Errorf("onnx: opset %d is outside 7..17", v)
	}
	g := &m.Graph
	if len(g.Inputs) != 1 || len(g.Inputs[0].Shape) != 4 {
		return nil, fmt.Errorf("onnx: want one NCHW input, have %v", g.Inputs)
	}
	in := g.Inputs[0]
	shape := []int{1, int(in.Shape[2]), int(in.Shape[3]), int(in.Shape[1])}
	for _, d := range shape {
		if d <= 0 {
			return nil, fmt.Errorf("onnx: input %s has an unknown dimension %v", in.Name, in.Shape)
		}
	}
	b := &graphBuilder{m: &tfjs.Model{Weights: map[string]*tfjs.Tensor{}}, used: map[string]bool{}}
	b.node(in.Name, "Placeholder", nil, map[string]tfjs.Attr{"shape": shapeAttr(shape)})
	for i := range g.Nodes {
		n := &g.Nodes[i]
		if err := onnxNode(b, g, n); err != nil {
			return nil, fmt.Errorf("onnx: node %d (%s %s): %w", i, n.OpType, n.Name, err)
		}
	}
	for _, o := range g.Outputs {
		b.m.Outputs = append(b.m.Outputs, tfjs.Port{Key: o.Name, Tensor: o.Name})
	}
	b.m.Inputs = []tfjs.Port{{Key: in.Name, Tensor: in.Name, Shape: shape}}
	return b.m, nil
}

// onnxNode appends the TF nodes of one ONNX node; its (first) output keeps
// the ONNX name, so later nodes find it.
func onnxNode(b *graphBuilder, g *onnx.Graph, n *onnx.Node) error {
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return fmt.Errorf("operator domain %q is not supported", n.Domain)
	}
	if len(n.Outputs) != 1 {
		return fmt.Errorf("%d outputs, want 1", len(n.Outputs))
	}
	out := n.Outputs[0]
	input := func(k int) (string, error) {
		if k >= len(n.Inputs) || n.Inputs[k] == "" {
			return "", fmt.Errorf("input %d is missing", k)
		}
		if g.Initializers[n.Inputs[k]] != nil {
			return "", fmt.Errorf("input %d (%s) is a constant where a tensor is expected", k, n.Inputs[k])
		}
		return n.Inputs[k], nil
	}
	constant := func(k int) (*onnx.Tensor, error) {
		if k >= len(n.Inputs) {
			return nil, fmt.Errorf("input %d is missing", k)
		}
		t := g.Initializers[n.Inputs[k]]
		if t == nil {
			return nil, fmt.Errorf("input %d (%s) must be a constant", k, n.Inputs[k])
		}
		return t, nil
	}
	x, err := input(0)
	if err != nil {
		return err
	}
	switch n.OpType {
	case "Conv":
		return onnxConv(b, n, x, constant)
	case "PRelu":
		slope, err := constant(1)
		if err != nil {
			return err
		}
		c := len(slope.Float)
		if c == 0 || !channelShaped(slope.Dims) {
			return fmt.Errorf("slope of dims %v is not per channel", slope.Dims)
		}
		alpha := b.constant(out+"/alpha", []int{c}, slope.Float, nil)
		b.node(out, "Prelu", []string{x, alpha}, nil)
	case "Relu":
		b.node(out, "Relu", []string{x}, nil)
	case "Add":
		y, err := input(1)
		if err != nil {
			return err
		}
		b.node(out, "AddV2", []string{x, y}, nil)
	case "Reshape":
		target, err := constant(1)
		if err != nil {
			return err
		}
		// ONNX flattens in NCHW order: go back to it first (free when the
		// spatial size is 1x1, as before an embedding's output).
		perm := b.constant(out+"/perm", []int{4}, nil, []int32{0, 3, 1, 2})
		nchw := b.node(out+"/nchw", "Transpose", []string{x, perm}, nil)
		dims := make([]int32, len(target.Int))
		for i, d := range target.Int {
			if d == 0 || d < -1 || d > 1<<30 {
				// 0 copies the input's dimension in ONNX, which TF's Reshape does not.
				return fmt.Errorf("reshape to %v is not supported", target.Int)
			}
			dims[i] = int32(d)
		}
		s := b.constant(out+"/shape", []int{len(dims)}, nil, dims)
		b.node(out, "Reshape", []string{nchw, s}, nil)
	default:
		return fmt.Errorf("operator %s is not supported", n.OpType)
	}
	return nil
}

// channelShaped says dims are [C] or [C, 1, 1].
func channelShaped(dims []int64) bool {
	return len(dims) == 1 || (len(dims) == 3 && dims[1] == 1 && dims[2] == 1)
}

// onnxConv is a Conv: Conv2D (group 1) or DepthwiseConv2dNative (one group
// per channel), with its padding made explicit and its bias added.
func onnxConv(b *graphBuilder, n *onnx.Node, x string, constant func(int) (*onnx.Tensor, error)) error {
	out := n.Outputs[0]
	w, err := constant(1)
	if err != nil {
		return err
	}
	if len(w.Dims) != 4 || w.Float == nil {
		return fmt.Errorf("weights of dims %v are not 4-D float", w.Dims)
	}
	o, ipg, kh, kw := int(w.Dims[0]), int(w.Dims[1]), int(w.Dims[2]), int(w.Dims[3])
	if ks := n.IntsAttr("kernel_shape"); ks != nil && (len(ks) != 2 || int(ks[0]) != kh || int(ks[1]) != kw) {
		return fmt.Errorf("kernel_shape %v disagrees with weights %v", ks, w.Dims)
	}
	for _, d := range n.IntsAttr("dilations") {
		if d != 1 {
			return fmt.Errorf("dilations %v are not supported", n.IntsAttr("dilations"))
		}
	}
	if ap, ok := n.Attrs["auto_pad"]; ok && string(ap.S) != "NOTSET" && string(ap.S) != "" {
		return fmt.Errorf("auto_pad %s is not supported", ap.S)
	}
	strides := n.IntsAttr("strides")
	sh, sw := 1, 1
	if len(strides) == 2 {
		sh, sw = int(strides[0]), int(strides[1])
	}
	if sh != sw {
		return fmt.Errorf("strides %v are not square", strides)
	}
	group := int(n.IntAttr("group", 1))
	var filter string
	var op string
	switch {
	case group == 1:
		// OIHW -> HWIO
		f := make([]float32, len(w.Float))
		for oi := 0; oi < o; oi++ {
			for ii := 0; ii < ipg; ii++ {
				for y := 0; y < kh; y++ {
					for xx := 0; xx < kw; xx++ {
						f[((y*kw+xx)*ipg+ii)*o+oi] = w.Float[((oi*ipg+ii)*kh+y)*kw+xx]
					}
				}
			}
		}
		filter, op = b.constant(out+"/filter", []int{kh, kw, ipg, o}, f, nil), "Conv2D"
	case ipg == 1 && group == o:
		// [C,1,H,W] -> [H,W,C,1]
		f := make([]float32, len(w.Float))
		for c := 0; c < o; c++ {
			for y := 0; y < kh; y++ {
				for xx := 0; xx < kw; xx++ {
					f[(y*kw+xx)*o+c] = w.Float[(c*kh+y)*kw+xx]
				}
			}
		}
		filter, op = b.constant(out+"/filter", []int{kh, kw, o, 1}, f, nil), "DepthwiseConv2dNative"
	default:
		return fmt.Errorf("group %d with %d input channels per group is not supported", group, ipg)
	}
	attrs := convAttrs(sh, "VALID")
	if pads := n.IntsAttr("pads"); len(pads) == 4 && (pads[0] != 0 || pads[1] != 0 || pads[2] != 0 || pads[3] != 0) {
		// ONNX pads are [top, left, bottom, right].
		attrs["padding"] = strAttr("EXPLICIT")
		attrs["explicit_paddings"] = intsAttr(0, 0, int(pads[0]), int(pads[2]), int(pads[1]), int(pads[3]), 0, 0)
	} else if len(pads) != 0 && len(pads) != 4 {
		return fmt.Errorf("pads %v are not 2-D", pads)
	}
	if len(n.Inputs) < 3 {
		b.node(out, op, []string{x, filter}, attrs)
		return nil
	}
	bias, err := constant(2)
	if err != nil {
		return err
	}
	if len(bias.Float) != o {
		return fmt.Errorf("bias has %d values for %d channels", len(bias.Float), o)
	}
	conv := b.node(out+"/conv", op, []string{x, filter}, attrs)
	bc := b.constant(out+"/bias", []int{o}, bias.Float, nil)
	b.node(out, "BiasAdd", []string{conv, bc}, nil)
	return nil
}
