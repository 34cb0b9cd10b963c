package onnx

import (
	"encoding/binary"
	"math"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func msg(fields ...[]byte) []byte {
	var b []byte
	for _, f := range fields {
		b = append(b, f...)
	}
	return b
}

func bytesField(num protowire.Number, v []byte) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func varintField(num protowire.Number, v uint64) []byte {
	b := protowire.AppendTag(nil, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func packed(vs ...int64) []byte {
	var b []byte
	for _, v := range vs {
		b = protowire.AppendVarint(b, uint64(v))
	}
	return b
}

// tinyModel is a hand-encoded ModelProto: one Conv node with ints and an
// int attribute, a raw-data float initializer, a typed int64 initializer
// and an input with a symbolic batch dimension.
func tinyModel() []byte {
	raw := make([]byte, 8)
	binary.LittleEndian.PutUint32(raw, math.Float32bits(1.5))
	binary.LittleEndian.PutUint32(raw[4:], math.Float32bits(-2))
	weights := msg(bytesField(1, packed(2, 1)), varintField(2, TypeFloat), bytesField(8, []byte("w")), bytesField(9, raw))
	shape := msg(bytesField(1, packed(4)), varintField(2, TypeInt64), bytesField(8, []byte("s")), bytesField(7, packed(1, 2, 3, 4)))
	node := msg(bytesField(1, []byte("x")), bytesField(1, []byte("w")), bytesField(2, []byte("y")), bytesField(3, []byte("conv0")),
		bytesField(4, []byte("Conv")),
		bytesField(5, msg(bytesField(1, []byte("pads")), bytesField(8, packed(1, 1, 1, 1)))),
		bytesField(5, msg(bytesField(1, []byte("group")), varintField(3, 2))))
	dim := func(v []byte) []byte { return bytesField(1, v) }
	input := msg(bytesField(1, []byte("x")), bytesField(2, bytesField(1, bytesField(2,
		msg(dim(bytesField(2, []byte("N"))), dim(varintField(1, 3)), dim(varintField(1, 8)), dim(varintField(1, 8)))))))
	graph := msg(bytesField(1, node), bytesField(2, []byte("g")), bytesField(5, weights), bytesField(5, shape),
		bytesField(11, input), bytesField(11, bytesField(1, []byte("w"))), bytesField(12, bytesField(1, []byte("y"))))
	return msg(varintField(1, 7), bytesField(2, []byte("test")), bytesField(7, graph),
		bytesField(8, msg(bytesField(1, nil), varintField(2, 13))))
}

func TestParseReadsTheSubset(t *testing.T) {
	m, err := Parse(tinyModel())
	if err != nil {
		t.Fatal(err)
	}
	if m.IRVersion != 7 || m.Producer != "test" || m.Opsets[""] != 13 {
		t.Errorf("header: ir %d, producer %q, opsets %v", m.IRVersion, m.Producer, m.Opsets)
	}
	g := m.Graph
	if len(g.Nodes) != 1 || g.Nodes[0].OpType != "Conv" || g.Nodes[0].Name != "conv0" {
		t.Fatalf("nodes %+v", g.Nodes)
	}
	n := g.Nodes[0]
	if got := n.IntsAttr("pads"); len(got) != 4 || got[0] != 1 || n.IntAttr("group", 1) != 2 || n.IntAttr("missing", 9) != 9 {
		t.Errorf("attributes %+v", n.Attrs)
	}
	if w := g.Initializers["w"]; w == nil || len(w.Float) != 2 || w.Float[0] != 1.5 || w.Float[1] != -2 {
		t.Errorf("raw float initializer %+v", w)
	}
	if s := g.Initializers["s"]; s == nil || len(s.Int) != 4 || s.Int[3] != 4 {
		t.Errorf("typed int64 initializer %+v", s)
	}
	if len(g.Inputs) != 1 || g.Inputs[0].Name != "x" || len(g.Inputs[0].Shape) != 4 || g.Inputs[0].Shape[0] != -1 || g.Inputs[0].Shape[3] != 8 {
		t.Errorf("inputs (initializers left out) %+v", g.Inputs)
	}
	if len(g.Outputs) != 1 || g.Outputs[0].Name != "y" {
		t.Errorf("outputs %+v", g.Outputs)
	}
}

func TestParseRefusesDamage(t *testing.T) {
	b := tinyModel()
	for cut := 1; cut < len(b); cut++ {
		if _, err := Parse(b[:cut]); err == nil {
			t.Errorf("the model cut at %d of %d bytes parsed", cut, len(b))
		}
	}
	// An initializer whose raw data does not fill its dims.
	short := msg(bytesField(1, packed(3)), varintField(2, TypeFloat), bytesField(8, []byte("w")), bytesField(9, make([]byte, 8)))
	if _, err := parseTensor(short); err == nil {
		t.Error("a float tensor of 3 values with 8 raw bytes parsed")
	}
}
