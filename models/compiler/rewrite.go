package compiler

import (
	tfl "imageapid/models/tflitefile"
)

// Optimize applies the float rewrites until nothing changes: PReLU spelled
// out in elementwise ops becomes one PRELU, constant multiply/add/sub after
// a convolution or fully connected layer fold into its weights and bias,
// min/max clamps to [0,6] become RELU6, and RELU/RELU6 after an op with a
// fused-activation slot move into that slot.
func Optimize(g *Graph) {
	for changed := true; changed; {
		changed = fusePrelu(g) || foldAffineIntoLinear(g) || fuseRelu6(g) || fuseActivations(g)
		g.removeDead()
	}
}

// nonNegative reports whether op's output cannot be negative (a fused RELU or RELU6).
func nonNegative(op *Op) bool {
	return (hasActivationSlot(op) && (op.Act == tfl.ActRelu || op.Act == tfl.ActRelu6)) ||
		op.Code == tfl.OpRelu || op.Code == tfl.OpRelu6
}

// fusePrelu finds PReLU spelled out as elementwise ops and replaces it with
// one PRELU op (XNNPACK runs PRELU as one kernel; the spelled-out form costs
// four to five passes over the tensor, and in int8 its MAXIMUM/MINIMUM/ABS
// fall out of XNNPACK). Both forms are exact rewrites in float:
//
//	max(x, 0) + a*min(x, 0)          (mobileface; either operand order)
//	relu(x) + c*(x - abs(x)), a = 2c (Human's MobileFaceNet)
//	x + c*(x - abs(x)) with x >= 0 is x (its PReLUs after a fused RELU)
//
// a must be a per-channel constant ([C] or broadcastable to it).
func fusePrelu(g *Graph) bool {
	cons := g.consumers()
	producer := map[*Value]*Op{}
	for _, op := range g.Ops {
		producer[op.Out] = op
	}
	// private reports whether v feeds only op (and is no graph output).
	private := func(v *Value, op *Op) bool {
		return len(cons[v]) == 1 && cons[v][0] == op && !g.isOutput(v)
	}
	// scaled splits MUL(c, v) into its per-channel constant and operand.
	scaled := func(op *Op, channels int) ([]float32, *Value) {
		if op == nil || op.Code != tfl.OpMul || op.Act != tfl.ActNone || len(op.In) != 2 {
			return nil, nil
		}
		for i := 0; i < 2; i++ {
			if c := perChannel(op.In[i], channels); c != nil && !op.In[1-i].IsConst() {
				return c, op.In[1-i]
			}
		}
		return nil, nil
	}
	for _, add := range g.Ops {
		if add.Code != tfl.OpAdd || add.Act != tfl.ActNone || len(add.In) != 2 || add.In[0].IsConst() || add.In[1].IsConst() {
			continue
		}
		channels := add.Out.Shape[len(add.Out.Shape)-1]
		for side := 0; side < 2; side++ {
			pos, mul := producer[add.In[side]], producer[add.In[1-side]]
			alpha, neg := scaled(mul, channels)
			// pos is max(x,0) or relu(x), read only here, or x itself when
			// x cannot be negative (then x also feeds the abs and the sub).
			if pos == nil || alpha == nil || !private(mul.Out, add) || (!private(pos.Out, add) && !nonNegative(pos)) {
				continue
			}
			negOp := producer[neg]
			if negOp == nil || !private(neg, mul) {
				continue
			}
			var x *Value
			switch {
			case pos.Code == tfl.OpMaximum && negOp.Code == tfl.OpMinimum:
				xp, bp, ok1 := clampOperand(pos)
				xn, bn, ok2 := clampOperand(negOp)
				if !ok1 || !ok2 || bp != 0 || bn != 0 || xp != xn {
					continue
				}
				x = xp
			case negOp.Code == tfl.OpSub && len(negOp.In) == 2 && (pos.Code == tfl.OpRelu || nonNegative(pos)):
				x = pos.In[0]
				if negOp.In[0] == pos.Out {
					x = pos.Out
				}
				abs := producer[negOp.In[1]]
				if negOp.In[0] != x || negOp.Act != tfl.ActNone || abs == nil || abs.Code != tfl.OpAbs ||
					abs.In[0] != x || !private(abs.Out, negOp) {
					continue
				}
				for i := range alpha {
					alpha[i] *= 2
				}
			default:
				continue
			}
			if !equalShape(x.Shape, add.Out.Shape) {
				continue
			}
			if x == pos.Out {
				// x is already non-negative (a fused RELU before the PReLU):
				// x - abs(x) is zero and the whole expression is x.
				g.replaceUses(add.Out, x)
				g.removeDead()
				return true
			}
			add.Code = tfl.OpPrelu
			add.In = []*Value{x, constF32(add.Out.Name+"/alpha", []int{channels}, alpha)}
			g.removeDead()
			return true
		}
	}
	return false
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

// hasActivationSlot lists the ops whose fused activation TFLite 2.9 runs.
// CONCATENATION has the slot in the schema but its kernel refuses any
// activation at prepare time, so a RELU after it stays a separate op.
func hasActivationSlot(op *Op) bool {
	switch op.Code {
	case tfl.OpConv2D, tfl.OpDepthwiseConv2D, tfl.OpFullyConnected, tfl.OpAdd, tfl.OpSub, tfl.OpMul,
		tfl.OpAveragePool2D, tfl.OpMaxPool2D:
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
