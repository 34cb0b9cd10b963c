package compiler

import (
	tfl "imageapid/models/tflitefile"
)

// Optimize applies the float rewrites until nothing changes: constant
// multiply/add/sub after a convolution or fully connected layer fold into its
// weights and bias, min/max clamps to [0,6] become RELU6, and RELU/RELU6
// after an op with a fused-activation slot move into that slot.
func Optimize(g *Graph) {
	for changed := true; changed; {
		changed = foldAffineIntoLinear(g) || fuseRelu6(g) || fuseActivations(g)
		g.removeDead()
	}
}

func isLinear(op *Op) bool {
	return op.Code == tfl.OpConv2D || op.Code == tfl.OpDepthwiseConv2D || op.Code == tfl.OpFullyConnected
}

// perChannel returns a constant's values broadcast per output channel (the
// last dimension), or nil when the constant varies along another dimension.
func perChannel(c *Value, channels int) []float32 {
	if !c.IsConst() || c.F32 == nil {
		return nil
	}
	for i, d := range c.Shape {
		if i < len(c.Shape)-1 && d != 1 {
			return nil
		}
	}
	out := make([]float32, channels)
	switch len(c.F32) {
	case 1:
		for i := range out {
			out[i] = c.F32[0]
		}
	case channels:
		copy(out, c.F32)
	default:
		return nil
	}
	return out
}

// foldAffineIntoLinear folds y = linear(x)*c, linear(x)+c, linear(x)-c.
func foldAffineIntoLinear(g *Graph) bool {
	cons := g.consumers()
	for _, op := range g.Ops {
		if !isLinear(op) || op.Act != tfl.ActNone || g.isOutput(op.Out) || len(cons[op.Out]) != 1 {
			continue
		}
		next := cons[op.Out][0]
		if next.Code != tfl.OpMul && next.Code != tfl.OpAdd && next.Code != tfl.OpSub {
			continue
		}
		if len(next.In) != 2 || next.Act != tfl.ActNone {
			continue
		}
		var c *Value
		switch {
		case next.In[0] == op.Out:
			c = next.In[1]
		case next.In[1] == op.Out && next.Code != tfl.OpSub:
			c = next.In[0]
		default:
			continue
		}
		channels := op.Out.Shape[len(op.Out.Shape)-1]
		vals := perChannel(c, channels)
		if vals == nil {
			continue
		}
		// Broadcasting must not change the output shape.
		if shape, err := broadcast(op.Out.Shape, c.Shape); err != nil || !equalShape(shape, op.Out.Shape) {
			continue
		}
		filter, bias := cloneConst(op.In[1]), cloneConst(op.In[2])
		switch next.Code {
		case tfl.OpMul:
			scaleOutChannels(filter, vals, op.Code == tfl.OpDepthwiseConv2D, false)
			for i := range bias.F32 {
				bias.F32[i] *= vals[i]
			}
		case tfl.OpAdd:
			for i := range bias.F32 {
				bias.F32[i] += vals[i]
			}
		case tfl.OpSub:
			for i := range bias.F32 {
				bias.F32[i] -= vals[i]
			}
		}
		op.In[1], op.In[2] = filter, bias
		// The linear op now produces what `next` produced.
		op.Out = next.Out
		g.removeOp(next)
		return true
	}
	return false
}

func cloneConst(v *Value) *Value {
	c := *v
	c.F32 = append([]float32{}, v.F32...)
	return &c
}

func constScalar(v *Value) (float32, bool) {
	if !v.IsConst() || v.F32 == nil {
		return 0, false
	}
	for _, x := range v.F32[1:] {
		if x != v.F32[0] {
			return 0, false
		}
	}
	return v.F32[0], len(v.F32) > 0
}

// clampOperand returns the non-constant operand of a MINIMUM/MAXIMUM with a
// scalar constant bound.
func clampOperand(op *Op) (*Value, float32, bool) {
	if len(op.In) != 2 {
		return nil, 0, false
	}
	for i := 0; i < 2; i++ {
		if b, ok := constScalar(op.In[1-i]); ok && !op.In[i].IsConst() && numel(op.In[1-i].Shape) <= numel(op.In[i].Shape) {
			return op.In[i], b, true
		}
	}
	return nil, 0, false
}

// fuseRelu6 turns max(min(x,6),0), min(max(x,0),6) and relu6(relu(x)) into relu6(x).
func fuseRelu6(g *Graph) bool {
	cons := g.consumers()
	producer := map[*Value]*Op{}
	for _, op := range g.Ops {
		producer[op.Out] = op
	}
	for _, outer := range g.Ops {
		if outer.Code != tfl.OpMaximum && outer.Code != tfl.OpMinimum {
			continue
		}
		mid, b1, ok := clampOperand(outer)
		if !ok {
			continue
		}
		inner := producer[mid]
		if inner == nil || len(cons[mid]) != 1 || g.isOutput(mid) {
			continue
		}
		x, b2, ok := clampOperand(inner)
		if !ok {
			continue
		}
		isRelu6 := (outer.Code == tfl.OpMaximum && b1 == 0 && inner.Code == tfl.OpMinimum && b2 == 6) ||
			(outer.Code == tfl.OpMinimum && b1 == 6 && inner.Code == tfl.OpMaximum && b2 == 0)
		if !isRelu6 || !equalShape(x.Shape, outer.Out.Shape) {
			continue
		}
		outer.Code, outer.In = tfl.OpRelu6, []*Value{x}
		return true
	}
	for _, op := range g.Ops {
		if op.Code != tfl.OpRelu6 {
			continue
		}
		p := producer[op.In[0]]
		if p != nil && p.Code == tfl.OpRelu && len(cons[p.Out]) == 1 && !g.isOutput(p.Out) {
			op.In[0] = p.In[0]
			return true
		}
	}
	return false
}

func hasActivationSlot(op *Op) bool {
	switch op.Code {
	case tfl.OpConv2D, tfl.OpDepthwiseConv2D, tfl.OpFullyConnected, tfl.OpAdd, tfl.OpSub, tfl.OpMul,
		tfl.OpAveragePool2D, tfl.OpMaxPool2D, tfl.OpConcatenation:
		return true
	}
	return false
}

// fuseActivations moves a RELU or RELU6 into the preceding op's activation slot.
func fuseActivations(g *Graph) bool {
	cons := g.consumers()
	producer := map[*Value]*Op{}
	for _, op := range g.Ops {
		producer[op.Out] = op
	}
	for _, act := range g.Ops {
		var a tfl.Activation
		switch act.Code {
		case tfl.OpRelu:
			a = tfl.ActRelu
		case tfl.OpRelu6:
			a = tfl.ActRelu6
		default:
			continue
		}
		p := producer[act.In[0]]
		if p == nil || !hasActivationSlot(p) || p.Act != tfl.ActNone || len(cons[p.Out]) != 1 || g.isOutput(p.Out) {
			continue
		}
		p.Act = a
		p.Out = act.Out
		g.removeOp(act)
		return true
	}
	return false
}
