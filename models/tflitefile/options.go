package tflitefile

// Builtin options tables; the union type numbers are the schema's BuiltinOptions values.

type Conv2DOptions struct {
	Padding          Padding
	StrideW, StrideH int32
	Activation       Activation
	DilationW        int32
	DilationH        int32
}

func (o *Conv2DOptions) unionType() uint8 { return 1 }
func (o *Conv2DOptions) table() *fbTable {
	t := &fbTable{}
	t.i8(0, int8(o.Padding))
	t.i32(1, o.StrideW)
	t.i32(2, o.StrideH)
	t.i8(3, int8(o.Activation))
	t.i32(4, max(o.DilationW, 1))
	t.i32(5, max(o.DilationH, 1))
	return t
}

type DepthwiseConv2DOptions struct {
	Padding          Padding
	StrideW, StrideH int32
	DepthMultiplier  int32
	Activation       Activation
	DilationW        int32
	DilationH        int32
}

func (o *DepthwiseConv2DOptions) unionType() uint8 { return 2 }
func (o *DepthwiseConv2DOptions) table() *fbTable {
	t := &fbTable{}
	t.i8(0, int8(o.Padding))
	t.i32(1, o.StrideW)
	t.i32(2, o.StrideH)
	t.i32(3, o.DepthMultiplier)
	t.i8(4, int8(o.Activation))
	t.i32(5, max(o.DilationW, 1))
	t.i32(6, max(o.DilationH, 1))
	return t
}

type Pool2DOptions struct {
	Padding                   Padding
	StrideW, StrideH          int32
	FilterWidth, FilterHeight int32
	Activation                Activation
}

func (o *Pool2DOptions) unionType() uint8 { return 5 }
func (o *Pool2DOptions) table() *fbTable {
	t := &fbTable{}
	t.i8(0, int8(o.Padding))
	t.i32(1, o.StrideW)
	t.i32(2, o.StrideH)
	t.i32(3, o.FilterWidth)
	t.i32(4, o.FilterHeight)
	t.i8(5, int8(o.Activation))
	return t
}

type FullyConnectedOptions struct {
	Activation  Activation
	KeepNumDims bool
}

func (o *FullyConnectedOptions) unionType() uint8 { return 8 }
func (o *FullyConnectedOptions) table() *fbTable {
	t := &fbTable{}
	t.i8(0, int8(o.Activation))
	t.bool(2, o.KeepNumDims)
	return t
}

type SoftmaxOptions struct{ Beta float32 }

func (o *SoftmaxOptions) unionType() uint8 { return 9 }
func (o *SoftmaxOptions) table() *fbTable {
	t := &fbTable{}
	t.f32(0, o.Beta)
	return t
}

type ConcatenationOptions struct {
	Axis       int32
	Activation Activation
}

func (o *ConcatenationOptions) unionType() uint8 { return 10 }
func (o *ConcatenationOptions) table() *fbTable {
	t := &fbTable{}
	t.i32(0, o.Axis)
	t.i8(1, int8(o.Activation))
	return t
}

// ArithmeticOptions carries the fused activation of ADD, SUB, MUL and DIV.
type ArithmeticOptions struct {
	Op         Op
	Activation Activation
}

func (o *ArithmeticOptions) unionType() uint8 {
	switch o.Op {
	case OpAdd:
		return 11
	case OpMul:
		return 21
	case OpSub:
		return 28
	case OpDiv:
		return 29
	}
	panic("tflitefile: ArithmeticOptions for " + o.Op.String())
}
func (o *ArithmeticOptions) table() *fbTable {
	t := &fbTable{}
	t.i8(0, int8(o.Activation))
	return t
}

type ReshapeOptions struct{ NewShape []int32 }

func (o *ReshapeOptions) unionType() uint8 { return 17 }
func (o *ReshapeOptions) table() *fbTable {
	t := &fbTable{}
	t.addRef(0, int32s(o.NewShape))
	return t
}

// ReducerOptions serve MEAN, SUM and REDUCE_MAX.
type ReducerOptions struct{ KeepDims bool }

func (o *ReducerOptions) unionType() uint8 { return 27 }
func (o *ReducerOptions) table() *fbTable {
	t := &fbTable{}
	t.bool(0, o.KeepDims)
	return t
}

type ResizeBilinearOptions struct{ AlignCorners, HalfPixelCenters bool }

func (o *ResizeBilinearOptions) unionType() uint8 { return 15 }
func (o *ResizeBilinearOptions) table() *fbTable {
	t := &fbTable{}
	t.bool(2, o.AlignCorners)
	t.bool(3, o.HalfPixelCenters)
	return t
}

type ResizeNearestNeighborOptions struct{ AlignCorners, HalfPixelCenters bool }

func (o *ResizeNearestNeighborOptions) unionType() uint8 { return 74 }
func (o *ResizeNearestNeighborOptions) table() *fbTable {
	t := &fbTable{}
	t.bool(0, o.AlignCorners)
	t.bool(1, o.HalfPixelCenters)
	return t
}

type LeakyReluOptions struct{ Alpha float32 }

func (o *LeakyReluOptions) unionType() uint8 { return 75 }
func (o *LeakyReluOptions) table() *fbTable {
	t := &fbTable{}
	t.f32(0, o.Alpha)
	return t
}

// MirrorPadOptions: Symmetric false means REFLECT.
type MirrorPadOptions struct{ Symmetric bool }

func (o *MirrorPadOptions) unionType() uint8 { return 77 }
func (o *MirrorPadOptions) table() *fbTable {
	t := &fbTable{}
	t.i8(0, int8(b2u(o.Symmetric)))
	return t
}

type StridedSliceOptions struct {
	BeginMask, EndMask, EllipsisMask, NewAxisMask, ShrinkAxisMask int32
}

func (o *StridedSliceOptions) unionType() uint8 { return 32 }
func (o *StridedSliceOptions) table() *fbTable {
	t := &fbTable{}
	t.i32(0, o.BeginMask)
	t.i32(1, o.EndMask)
	t.i32(2, o.EllipsisMask)
	t.i32(3, o.NewAxisMask)
	t.i32(4, o.ShrinkAxisMask)
	return t
}
