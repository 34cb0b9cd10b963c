package compiler

import (
	"context"
	"path"
	"path/filepath"
	"testing"

	"imageapid/internal/testenv"
	"imageapid/models/onnx"
	"imageapid/models/tfjsref"
)

// The float gate of an ONNX build compares with ONNX Runtime on the
// original file, not with the converted graph: a plausible conversion slip
// (PyTorch's symmetric padding of a stride-2 convolution read as TF's SAME,
// which pads the bottom and right only) compiles and runs, and the gate
// refuses it.
func TestONNXGateCatchesWrongConversion(t *testing.T) {
	root := testenv.Root(t)
	if err := tfjsref.Default(root).ONNXAvailable(); err != nil {
		t.Skip(err)
	}
	mi, spec, src := describedEntry(t, "faceplugin_recognition")
	if !spec.ONNX {
		t.Fatalf("%s is not an onnx build", mi.Name)
	}
	raw, err := src(spec.Graph)
	if err != nil {
		t.Fatal(err)
	}
	crops, err := FixtureCrops{Dir: filepath.Join(root, "third_party", "fixtures"), N: 2}.Crops(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		slip bool
	}{{"as converted", false}, {"first convolution padded SAME", true}} {
		om, err := onnx.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ONNXGraph(om)
		if err != nil {
			t.Fatal(err)
		}
		if c.slip {
			first := om.Graph.Nodes[0]
			if first.OpType != "Conv" || first.IntsAttr("strides")[0] != 2 {
				t.Fatalf("the first node is %s %v, not a stride-2 convolution", first.OpType, first.IntsAttr("strides"))
			}
			slipped := false
			for i := range m.Nodes {
				if m.Nodes[i].Name == first.Outputs[0]+"/conv" {
					m.Nodes[i].Attr["padding"] = strAttr("SAME")
					delete(m.Nodes[i].Attr, "explicit_paddings")
					slipped = true
				}
			}
			if !slipped {
				t.Fatal("the converted graph has no node for the first convolution")
			}
		}
		l, err := imported(spec, m, nil, map[string][]byte{path.Base(spec.Graph): raw})
		if err != nil {
			t.Fatal(err)
		}
		p, err := floatGate(t, l, crops)
		t.Logf("%s: max error %.3g against ONNX Runtime", c.name, p.MaxErr)
		if (err == nil) == c.slip {
			t.Errorf("%s: gate passed=%v, want %v (%v)", c.name, err == nil, !c.slip, err)
		}
	}
}

// A cut or damaged file is an error, never a panic; an operator the
// converter does not know is refused by name.
func TestONNXRefusesDamage(t *testing.T) {
	_, spec, src := describedEntry(t, "faceplugin_recognition")
	raw, err := src(spec.Graph)
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{0, 1, 7, 100, len(raw) / 3, len(raw) - 1} {
		if _, err := onnx.Parse(raw[:cut]); err == nil && cut < len(raw)-1 {
			t.Errorf("a file cut at %d of %d bytes parsed", cut, len(raw))
		}
	}
	om, err := onnx.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	om.Graph.Nodes[1].OpType = "Softplus"
	if _, err := ONNXGraph(om); err == nil {
		t.Error("an unknown operator was converted")
	} else {
		t.Log(err)
	}
}
