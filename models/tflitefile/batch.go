package tflitefile

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// FreeBatch returns a copy of a model file whose RESHAPE operators no longer
// fix the batch: every reshape target (its constant shape input and its
// ReshapeOptions.new_shape) whose first dimension is batch gets -1 there,
// so that the interpreter's inputs can be resized to another batch. Values
// are changed in place (same size, same layout); nothing else is touched.
// It reports how many reshape targets it changed.
func FreeBatch(model []byte, batch int32) ([]byte, int, error) {
	out := append([]byte(nil), model...)
	r := fbReader{b: out}
	root, err := r.root()
	if err != nil {
		return nil, 0, err
	}
	codes, err := r.vector(root, 1) // Model.operator_codes
	if err != nil {
		return nil, 0, fmt.Errorf("operator codes: %w", err)
	}
	isReshape := make([]bool, len(codes))
	for i, c := range codes {
		code := int32(r.scalarI8(c, 0)) // deprecated_builtin_code
		if v, ok := r.scalarI32(c, 3); ok && v > code {
			code = v // builtin_code, for codes past 127
		}
		isReshape[i] = Op(code) == OpReshape
	}
	subgraphs, err := r.vector(root, 2)
	if err != nil {
		return nil, 0, fmt.Errorf("subgraphs: %w", err)
	}
	buffers, err := r.vector(root, 4)
	if err != nil {
		return nil, 0, fmt.Errorf("buffers: %w", err)
	}
	changed := 0
	for _, sg := range subgraphs {
		tensors, err := r.vector(sg, 0)
		if err != nil {
			return nil, 0, fmt.Errorf("tensors: %w", err)
		}
		ops, err := r.vector(sg, 3)
		if err != nil {
			return nil, 0, fmt.Errorf("operators: %w", err)
		}
		for _, op := range ops {
			idx, _ := r.scalarU32(op, 0)
			if int(idx) >= len(isReshape) || !isReshape[idx] {
				continue
			}
			if r.scalarU8(op, 3) == reshapeOptionsType {
				if opts, ok := r.table(op, 4); ok && r.freeFirst(opts, 0, 4, batch) {
					changed++
				}
			}
			p, n, ok := r.vectorData(op, 1, 4) // Operator.inputs
			if !ok || n < 2 {
				continue
			}
			shapeTensor := int(int32(binary.LittleEndian.Uint32(out[p+4:])))
			if shapeTensor < 0 || shapeTensor >= len(tensors) || TensorType(r.scalarI8(tensors[shapeTensor], 1)) != Int32 {
				continue
			}
			buf, _ := r.scalarU32(tensors[shapeTensor], 2)
			if buf > 0 && int(buf) < len(buffers) && r.freeFirst(buffers[buf], 0, 1, batch) {
				changed++
			}
		}
	}
	return out, changed, nil
}

// reshapeOptionsType is ReshapeOptions in the BuiltinOptions union.
const reshapeOptionsType = 17

// freeFirst sets the first int32 of vector field id of the table at t to -1
// when it is batch; elem is the vector's element size (4 for an int vector,
// 1 for a Buffer's data: bytes holding int32s).
func (r fbReader) freeFirst(t, id, elem int, batch int32) bool {
	p, n, ok := r.vectorData(t, id, elem)
	if !ok || n*elem < 4 || int32(binary.LittleEndian.Uint32(r.b[p:])) != batch {
		return false
	}
	binary.LittleEndian.PutUint32(r.b[p:], 0xFFFFFFFF)
	return true
}

// fbReader reads tables of a FlatBuffer, refusing offsets outside it.
type fbReader struct{ b []byte }

var errOutside = errors.New("offset outside the file")

func (r fbReader) u32(p int) (uint32, bool) {
	if p < 0 || p+4 > len(r.b) {
		return 0, false
	}
	return binary.LittleEndian.Uint32(r.b[p:]), true
}

func (r fbReader) root() (int, error) {
	off, ok := r.u32(0)
	if !ok || int(off) >= len(r.b) {
		return 0, errOutside
	}
	return int(off), nil
}

// field returns the position of field id of the table at t, or -1 when absent.
func (r fbReader) field(t, id int) int {
	so, ok := r.u32(t)
	if !ok {
		return -1
	}
	vt := t - int(int32(so))
	if vt < 0 || vt+4 > len(r.b) {
		return -1
	}
	size := int(binary.LittleEndian.Uint16(r.b[vt:]))
	at := 4 + 2*id
	if at+2 > size || vt+at+2 > len(r.b) {
		return -1
	}
	off := int(binary.LittleEndian.Uint16(r.b[vt+at:]))
	if off == 0 {
		return -1
	}
	return t + off
}

func (r fbReader) scalarU8(t, id int) uint8 {
	p := r.field(t, id)
	if p < 0 || p >= len(r.b) {
		return 0
	}
	return r.b[p]
}

func (r fbReader) scalarI8(t, id int) int8 { return int8(r.scalarU8(t, id)) }

func (r fbReader) scalarU32(t, id int) (uint32, bool) {
	p := r.field(t, id)
	if p < 0 {
		return 0, false
	}
	return r.u32(p)
}

func (r fbReader) scalarI32(t, id int) (int32, bool) {
	v, ok := r.scalarU32(t, id)
	return int32(v), ok
}

// ref follows the offset stored in field id of the table at t.
func (r fbReader) ref(t, id int) (int, bool) {
	p := r.field(t, id)
	if p < 0 {
		return 0, false
	}
	off, ok := r.u32(p)
	if !ok || p+int(off) >= len(r.b) {
		return 0, false
	}
	return p + int(off), true
}

func (r fbReader) table(t, id int) (int, bool) { return r.ref(t, id) }

// vectorData returns where the elements of a vector field start and how
// many there are, each elem bytes wide.
func (r fbReader) vectorData(t, id, elem int) (int, int, bool) {
	v, ok := r.ref(t, id)
	if !ok {
		return 0, 0, false
	}
	n, ok := r.u32(v)
	if !ok || v+4+int(n)*elem > len(r.b) {
		return 0, 0, false
	}
	return v + 4, int(n), true
}

// vector returns the tables of a vector-of-tables field (empty when absent).
func (r fbReader) vector(t, id int) ([]int, error) {
	p, n, ok := r.vectorData(t, id, 4)
	if !ok {
		if r.field(t, id) < 0 {
			return nil, nil
		}
		return nil, errOutside
	}
	out := make([]int, n)
	for i := range out {
		off, _ := r.u32(p + 4*i)
		out[i] = p + 4*i + int(off)
		if out[i] >= len(r.b) {
			return nil, errOutside
		}
	}
	return out, nil
}
