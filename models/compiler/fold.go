package compiler

import (
	"fmt"
	"math"

	"imageapid/models/tfjs"
	tfl "imageapid/models/tflitefile"
)

// foldNode evaluates a node whose inputs are all constants.
func foldNode(n *tfjs.Node, ins []*Value) (*Value, error) {
	x := ins[0]
	switch n.Op {
	case "Reshape", "ExpandDims", "Squeeze":
		shape, err := reshapeTarget(n, x.Shape, ins[1:])
		if err != nil {
			return nil, err
		}
		return &Value{Name: n.Name, Shape: shape, Type: x.Type, F32: x.F32, I32: x.I32}, nil
	case "Cast":
		dst := ""
		if a, ok := n.Attr["DstT"]; ok {
			dst = a.Type
		}
		switch dst {
		case "DT_FLOAT":
			return constF32(n.Name, x.Shape, toF32(x)), nil
		case "DT_INT32":
			f := toF32(x)
			out := make([]int32, len(f))
			for i, v := range f {
				out[i] = int32(v)
			}
			return constI32(n.Name, x.Shape, out), nil
		}
		return nil, fmt.Errorf("cast to %q", dst)
	case "Add", "AddV2", "BiasAdd", "Sub", "Mul", "RealDiv", "Maximum", "Minimum":
		if len(ins) < 2 {
			return nil, fmt.Errorf("needs two inputs")
		}
		return foldBinary(n, ins[0], ins[1])
	case "Neg", "Rsqrt", "Sqrt", "Square", "Abs", "Relu", "Exp":
		f := toF32(x)
		out := make([]float32, len(f))
		for i, v := range f {
			d := float64(v)
			switch n.Op {
			case "Neg":
				d = -d
			case "Rsqrt":
				d = 1 / math.Sqrt(d)
			case "Sqrt":
				d = math.Sqrt(d)
			case "Square":
				d = d * d
			case "Abs":
				d = math.Abs(d)
			case "Relu":
				d = math.Max(d, 0)
			case "Exp":
				d = math.Exp(d)
			}
			out[i] = float32(d)
		}
		return constF32(n.Name, x.Shape, out), nil
	case "StridedSlice", "Slice":
		begin, size, outShape, strides, err := staticSlice(n, x.Shape, ins[1:])
		if err != nil {
			return nil, err
		}
		idx := gatherIndex(x.Shape, begin, size, strides)
		v := &Value{Name: n.Name, Shape: outShape, Type: x.Type}
		if x.F32 != nil {
			v.F32 = make([]float32, len(idx))
			for i, j := range idx {
				v.F32[i] = x.F32[j]
			}
		} else {
			v.I32 = make([]int32, len(idx))
			for i, j := range idx {
				v.I32[i] = x.I32[j]
			}
		}
		return v, nil
	case "Pack":
		// Stacks scalars or vectors of equal shape along axis 0 (the only case shape code needs).
		if axis, _ := n.Int("axis"); axis != 0 {
			return nil, fmt.Errorf("pack along axis %d", axis)
		}
		v := &Value{Name: n.Name, Shape: append([]int{len(ins)}, x.Shape...), Type: x.Type}
		for _, in := range ins {
			v.F32 = append(v.F32, in.F32...)
			v.I32 = append(v.I32, in.I32...)
		}
		return v, nil
	}
	return nil, fmt.Errorf("no constant evaluation for %q", n.Op)
}

func toF32(v *Value) []float32 {
	if v.F32 != nil {
		return v.F32
	}
	out := make([]float32, len(v.I32))
	for i, x := range v.I32 {
		out[i] = float32(x)
	}
	return out
}

func foldBinary(n *tfjs.Node, a, b *Value) (*Value, error) {
	shape, err := broadcast(a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	ia, ib := broadcastIndex(a.Shape, shape), broadcastIndex(b.Shape, shape)
	isInt := a.F32 == nil && b.F32 == nil
	fa, fb := toF32(a), toF32(b)
	out := make([]float64, numel(shape))
	for i := range out {
		x, y := float64(fa[ia[i]]), float64(fb[ib[i]])
		var r float64
		switch n.Op {
		case "Add", "AddV2", "BiasAdd":
			r = x + y
		case "Sub":
			r = x - y
		case "Mul":
			r = x * y
		case "RealDiv":
			r = x / y
		case "Maximum":
			r = math.Max(x, y)
		case "Minimum":
			r = math.Min(x, y)
		}
		if !isInt {
			// Match float32 arithmetic, as TF.js computes.
			r = float64(float32(r))
		}
		out[i] = r
	}
	if isInt {
		v := make([]int32, len(out))
		for i, r := range out {
			v[i] = int32(r)
		}
		return constI32(n.Name, shape, v), nil
	}
	v := make([]float32, len(out))
	for i, r := range out {
		v[i] = float32(r)
	}
	return constF32(n.Name, shape, v), nil
}

// broadcastIndex maps each element of shape `to` to its source element in `from`.
func broadcastIndex(from, to []int) []int {
	n := numel(to)
	out := make([]int, n)
	rank := len(to)
	pad := make([]int, rank)
	for i := range pad {
		pad[i] = 1
	}
	copy(pad[rank-len(from):], from)
	for i := 0; i < n; i++ {
		rem, src, mul := i, 0, 1
		for d := rank - 1; d >= 0; d-- {
			c := rem % to[d]
			rem /= to[d]
			if pad[d] != 1 {
				src += c * mul
			}
			mul *= pad[d]
		}
		out[i] = src
	}
	return out
}

// reshapeTarget computes the static result shape of Reshape, ExpandDims or Squeeze.
func reshapeTarget(n *tfjs.Node, in []int, args []*Value) ([]int, error) {
	switch n.Op {
	case "Reshape":
		if len(args) < 1 || !args[0].IsConst() || args[0].I32 == nil {
			return nil, fmt.Errorf("target shape is not an integer constant")
		}
		shape := make([]int, len(args[0].I32))
		unknown := -1
		known := 1
		for i, d := range args[0].I32 {
			shape[i] = int(d)
			if d == -1 {
				if unknown >= 0 {
					return nil, fmt.Errorf("two unknown dimensions in %v", args[0].I32)
				}
				unknown = i
			} else {
				known *= int(d)
			}
		}
		// A leading -1 in the input shape was a batch of one.
		if unknown >= 0 {
			shape[unknown] = numel(in) / known
		}
		if numel(shape) != numel(in) {
			return nil, fmt.Errorf("cannot reshape %v to %v", in, shape)
		}
		return shape, nil
	case "ExpandDims":
		if len(args) < 1 || !args[0].IsConst() || len(args[0].I32) != 1 {
			return nil, fmt.Errorf("axis is not an integer constant")
		}
		a := int(args[0].I32[0])
		if a < 0 {
			a += len(in) + 1
		}
		out := append(append(append([]int{}, in[:a]...), 1), in[a:]...)
		return out, nil
	case "Squeeze":
		dims := n.Ints("squeeze_dims")
		drop := map[int]bool{}
		for _, d := range dims {
			drop[normAxis(d, len(in))] = true
		}
		var out []int
		for i, d := range in {
			if (len(dims) == 0 && d == 1) || drop[i] {
				if d != 1 {
					return nil, fmt.Errorf("squeeze of dimension %d of size %d", i, d)
				}
				continue
			}
			out = append(out, d)
		}
		return out, nil
	}
	return nil, fmt.Errorf("not a reshape")
}

// staticSlice resolves Slice and StridedSlice to begin, size and strides per
// input dimension plus the output shape (with shrunk axes removed).
func staticSlice(n *tfjs.Node, in []int, args []*Value) (begin, size []int32, outShape, strides []int, err error) {
	for _, a := range args {
		if !a.IsConst() || a.I32 == nil {
			return nil, nil, nil, nil, fmt.Errorf("slice parameters are not integer constants")
		}
	}
	rank := len(in)
	begin, size = make([]int32, rank), make([]int32, rank)
	strides = make([]int, rank)
	if n.Op == "Slice" {
		if len(args) < 2 {
			return nil, nil, nil, nil, fmt.Errorf("slice needs begin and size")
		}
		for i := 0; i < rank; i++ {
			b, s := int(args[0].I32[i]), int(args[1].I32[i])
			if s < 0 {
				s = in[i] - b
			}
			begin[i], size[i], strides[i] = int32(b), int32(s), 1
			outShape = append(outShape, s)
		}
		return begin, size, outShape, strides, nil
	}
	if len(args) < 3 {
		return nil, nil, nil, nil, fmt.Errorf("strided slice needs begin, end and strides")
	}
	bm, _ := n.Int("begin_mask")
	em, _ := n.Int("end_mask")
	el, _ := n.Int("ellipsis_mask")
	na, _ := n.Int("new_axis_mask")
	sm, _ := n.Int("shrink_axis_mask")
	if el != 0 || na != 0 {
		return nil, nil, nil, nil, fmt.Errorf("ellipsis and new-axis masks are not supported")
	}
	for i := 0; i < rank; i++ {
		b, e, s := 0, in[i], 1
		if i < len(args[0].I32) {
			b, e, s = int(args[0].I32[i]), int(args[1].I32[i]), int(args[2].I32[i])
			if s <= 0 {
				return nil, nil, nil, nil, fmt.Errorf("non-positive stride %d", s)
			}
			if bm&(1<<i) != 0 {
				b = 0
			} else if b < 0 {
				b += in[i]
			}
			if em&(1<<i) != 0 {
				e = in[i]
			} else if e < 0 {
				e += in[i]
			}
			b = min(max(b, 0), in[i])
			e = min(max(e, 0), in[i])
		}
		shrink := i < len(args[0].I32) && sm&(1<<i) != 0
		if shrink {
			e, s = b+1, 1
		}
		cnt := 0
		if e > b {
			cnt = (e - b + s - 1) / s
		}
		begin[i], size[i], strides[i] = int32(b), int32(cnt), s
		if !shrink {
			outShape = append(outShape, cnt)
		}
	}
	return begin, size, outShape, strides, nil
}

// gatherIndex lists the flat source indices a strided slice reads.
func gatherIndex(shape []int, begin, size []int32, strides []int) []int {
	sz := make([]int, len(size))
	for i := range size {
		sz[i] = int(size[i])
	}
	n := numel(sz)
	out := make([]int, 0, n)
	for i := 0; i < n; i++ {
		rem, src, mul := i, 0, 1
		for d := len(shape) - 1; d >= 0; d-- {
			c := rem % sz[d]
			rem /= sz[d]
			src += (int(begin[d]) + c*strides[d]) * mul
			mul *= shape[d]
		}
		out = append(out, src)
	}
	return out
}

var _ = tfl.Float32
