package compiler

import (
	"strconv"
	"strings"
	"testing"
)

// CenterNet's graph rebuilt for a smaller input keeps its upsampling
// sizes in proportion (its outputs stay a quarter of the input side), and
// a side that would need fractional upsampling sizes is refused. The float
// gate against TF.js on the rebuilt graph runs in TestBuildReproducesManifest
// (the centernet_320 entry).
func TestInputSize(t *testing.T) {
	src := buildSource(t)
	spec := Spec{Name: "centernet", Graph: "package/models/centernet.json", Precision: "float32",
		Outputs: []string{"tower_0/wh", "tower_0/keypoints"}, Input: InputSpec{Color: "rgb", Range: [2]float64{0, 255}}}
	for _, size := range []int{512, 256, 320} {
		spec.InputSize = size
		l, err := Load(spec, src)
		if err != nil {
			t.Fatalf("input %d: %v", size, err)
		}
		in, out := l.Describe()
		if got := in[0].Shape; got[1] != size || got[2] != size {
			t.Errorf("input %d: input shape %v", size, got)
		}
		for _, o := range out {
			if o.Shape[1] != size/4 || o.Shape[2] != size/4 {
				t.Errorf("input %d: output %s shape %v, want %d x %d", size, o.Name, o.Shape, size/4, size/4)
			}
		}
		if size != 512 && !strings.Contains(string(l.ModelJSON), `"size":"`+strconv.Itoa(size)+`"`) {
			t.Errorf("input %d: the model.json the reference runs does not carry the new side", size)
		}
	}
	spec.InputSize = 300
	if _, err := Load(spec, src); err == nil || !strings.Contains(err.Error(), "not whole") {
		t.Errorf("input 300 (upsampling to 18.75 cells): %v, want a refusal", err)
	}
}
