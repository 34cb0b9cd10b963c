package facetemplate

import (
	"math"
	"testing"
)

// FuzzTemplateDecode reads arbitrary blobs: no crash, an accepted template
// is unit length with the wanted model id, and encoding it again gives a
// blob that decodes to the same vector.
func FuzzTemplateDecode(f *testing.F) {
	vec := make([]float32, 8)
	for i := range vec {
		vec[i] = float32(i + 1)
	}
	good := Encode(7, vec)
	f.Add(good)
	f.Add(good[:len(good)-4])
	f.Add(append(append([]byte{}, good...), 0, 0, 0, 0))
	f.Add(Encode(8, vec))
	f.Add(Encode(7, make([]float32, 3)))
	f.Add([]byte("IAFT"))
	f.Add([]byte("IAFT\x01\x00\x07\x00\xff\xff\xff\xff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		tpl, err := Decode(b, 7)
		if err != nil {
			return
		}
		var norm float64
		for _, v := range tpl.Vector {
			norm += float64(v) * float64(v)
		}
		if tpl.ModelID != 7 || math.Abs(norm-1) > 1e-3 {
			t.Fatalf("accepted model %d with squared norm %f", tpl.ModelID, norm)
		}
		again, err := Decode(Encode(7, tpl.Vector), 7)
		if err != nil || len(again.Vector) != len(tpl.Vector) {
			t.Fatalf("re-encoded template: %v", err)
		}
		if d, err := Distance(tpl.Vector, again.Vector); err != nil || d > 1e-3 {
			t.Fatalf("re-encoding moved the template by %g (%v)", d, err)
		}
	})
}
