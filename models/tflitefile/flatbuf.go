package tflitefile

import (
	"encoding/binary"
	"math"
	"sort"
)

// This file is a minimal FlatBuffers serializer. Unlike the usual builders it
// writes front to back: a table's vtable, then the table, then the objects its
// offset fields point at. Every uoffset therefore points forward, as the format
// requires, and the output depends only on the value tree (deterministic).

// fbNode is any object an offset can point at.
type fbNode interface {
	// write appends the object and returns the position its offsets must point at.
	write(w *fbWriter) int
}

// fbTable is a table under construction; fields are added by id.
type fbTable struct {
	fields []fbField
}

type fbField struct {
	id     int
	scalar []byte // little-endian scalar bytes, or nil for a reference
	ref    fbNode
}

func (t *fbTable) addScalar(id int, b []byte) {
	t.fields = append(t.fields, fbField{id: id, scalar: b})
}
func (t *fbTable) addRef(id int, n fbNode) {
	if n != nil {
		t.fields = append(t.fields, fbField{id: id, ref: n})
	}
}
func (t *fbTable) u8(id int, v uint8)    { t.addScalar(id, []byte{v}) }
func (t *fbTable) i8(id int, v int8)     { t.addScalar(id, []byte{byte(v)}) }
func (t *fbTable) bool(id int, v bool)   { t.addScalar(id, []byte{b2u(v)}) }
func (t *fbTable) i32(id int, v int32)   { t.u32(id, uint32(v)) }
func (t *fbTable) f32(id int, v float32) { t.u32(id, math.Float32bits(v)) }
func (t *fbTable) u32(id int, v uint32) {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, v)
	t.addScalar(id, b)
}

func b2u(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func (t *fbTable) inlineSize(f fbField) int {
	if f.ref != nil {
		return 4
	}
	return len(f.scalar)
}

func (t *fbTable) write(w *fbWriter) int {
	maxID := -1
	maxAlign := 4
	for _, f := range t.fields {
		if f.id > maxID {
			maxID = f.id
		}
		if s := t.inlineSize(f); s > maxAlign {
			maxAlign = s
		}
	}
	// vtable: [vtable bytes, table bytes, one uint16 offset per field id].
	w.align(2)
	vt := len(w.buf)
	vtLen := 4 + 2*(maxID+1)
	w.buf = append(w.buf, make([]byte, vtLen)...)

	// The table starts with an int32 soffset to its vtable (vtable = table - soffset).
	for (len(w.buf)+0)%4 != 0 {
		w.buf = append(w.buf, 0)
	}
	// Place larger fields first so each scalar can be aligned with little padding.
	order := make([]int, len(t.fields))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return t.inlineSize(t.fields[order[a]]) > t.inlineSize(t.fields[order[b]])
	})
	// Align the table so that, after the 4-byte soffset, 8-byte fields land aligned.
	if maxAlign == 8 {
		for (len(w.buf)+4)%8 != 0 {
			w.buf = append(w.buf, 0)
		}
	}
	start := len(w.buf)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(int32(start-vt)))
	slot := make([]int, len(t.fields))
	for _, i := range order {
		f := t.fields[i]
		size := t.inlineSize(f)
		w.align(size)
		slot[i] = len(w.buf)
		if f.ref != nil {
			w.buf = append(w.buf, 0, 0, 0, 0)
		} else {
			w.buf = append(w.buf, f.scalar...)
		}
	}
	binary.LittleEndian.PutUint16(w.buf[vt:], uint16(vtLen))
	binary.LittleEndian.PutUint16(w.buf[vt+2:], uint16(len(w.buf)-start))
	for i, f := range t.fields {
		binary.LittleEndian.PutUint16(w.buf[vt+4+2*f.id:], uint16(slot[i]-start))
	}
	for i, f := range t.fields {
		if f.ref == nil {
			continue
		}
		at := f.ref.write(w)
		binary.LittleEndian.PutUint32(w.buf[slot[i]:], uint32(at-slot[i]))
	}
	return start
}

// fbBytes is a vector of scalars given as raw little-endian bytes.
type fbBytes struct {
	data  []byte
	count int
	// align is the alignment of the first element (at least 4).
	align int
}

func (v *fbBytes) write(w *fbWriter) int {
	a := v.align
	if a < 4 {
		a = 4
	}
	for (len(w.buf)+4)%a != 0 {
		w.buf = append(w.buf, 0)
	}
	at := len(w.buf)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(v.count))
	w.buf = append(w.buf, v.data...)
	return at
}

// fbString is a NUL-terminated UTF-8 string.
type fbString string

func (s fbString) write(w *fbWriter) int {
	w.align(4)
	at := len(w.buf)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(s)))
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, 0)
	return at
}

// fbRefs is a vector of tables.
type fbRefs []fbNode

func (v fbRefs) write(w *fbWriter) int {
	w.align(4)
	at := len(w.buf)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(v)))
	slots := len(w.buf)
	w.buf = append(w.buf, make([]byte, 4*len(v))...)
	for i, n := range v {
		p := n.write(w)
		s := slots + 4*i
		binary.LittleEndian.PutUint32(w.buf[s:], uint32(p-s))
	}
	return at
}

type fbWriter struct{ buf []byte }

func (w *fbWriter) align(n int) {
	for n > 1 && len(w.buf)%n != 0 {
		w.buf = append(w.buf, 0)
	}
}

// finish serializes root with a 4-byte file identifier.
func finish(root fbNode, ident string) []byte {
	w := &fbWriter{buf: make([]byte, 8, 1<<16)}
	copy(w.buf[4:], ident)
	at := root.write(w)
	binary.LittleEndian.PutUint32(w.buf[0:], uint32(at))
	w.align(16)
	return w.buf
}

func int32s(v []int32) *fbBytes {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return &fbBytes{data: b, count: len(v), align: 4}
}

func float32s(v []float32) *fbBytes {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return &fbBytes{data: b, count: len(v), align: 4}
}

func int64s(v []int64) *fbBytes {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	return &fbBytes{data: b, count: len(v), align: 8}
}
