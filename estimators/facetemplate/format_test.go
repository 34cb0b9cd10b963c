package facetemplate_test

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"imageapid/estimators/facetemplate"
)

func TestTemplateRoundTrip(t *testing.T) {
	vec := []float32{3, 4, 0}
	b := facetemplate.Encode(7, vec)
	if len(b)%4 != 0 || len(b) != 12+4*3 {
		t.Fatalf("blob of %d bytes, want 24", len(b))
	}
	tpl, err := facetemplate.Decode(b, 7)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(tpl.Vector[0])-0.6) > 1e-6 || math.Abs(float64(tpl.Vector[1])-0.8) > 1e-6 {
		t.Errorf("vector %v, want the unit vector [0.6 0.8 0]", tpl.Vector)
	}
	d, err := facetemplate.Distance(tpl.Vector, tpl.Vector)
	if err != nil || d != 0 {
		t.Errorf("distance to itself %v, %v", d, err)
	}
	opposite, _ := facetemplate.Decode(facetemplate.Encode(7, []float32{-3, -4, 0}), 7)
	if d, _ := facetemplate.Distance(tpl.Vector, opposite.Vector); math.Abs(d-4) > 1e-6 {
		t.Errorf("distance to the opposite vector %v, want 4", d)
	}
}

func TestTemplateRefusals(t *testing.T) {
	good := facetemplate.Encode(7, []float32{1, 2, 3, 4})
	edit := func(f func([]byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, facetemplate.ErrNotTemplate},
		{"bad magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), facetemplate.ErrNotTemplate},
		{"version", edit(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[4:], 2); return b }), facetemplate.ErrVersion},
		{"model", edit(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[6:], 8); return b }), facetemplate.ErrModel},
		{"short", good[:len(good)-4], facetemplate.ErrLength},
		{"long", append(append([]byte(nil), good...), 0, 0, 0, 0), facetemplate.ErrLength},
		{"not unit", edit(func(b []byte) []byte { b[15] ^= 0x20; return b }), facetemplate.ErrNotNormalized},
	}
	for _, c := range cases {
		if _, err := facetemplate.Decode(c.b, 7); !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := facetemplate.Distance([]float32{1}, []float32{1, 0}); err == nil {
		t.Error("distance between different dimensions did not fail")
	}
}

// The committed tables: monotone rates, and a score that falls with distance
// and is near 1 for identical templates.
func TestCommittedCalibration(t *testing.T) {
	for _, flip := range []bool{false, true} {
		c, err := facetemplate.LoadCalibration(facetemplate.DefaultNetwork, flip)
		if err != nil {
			t.Fatal(err)
		}
		prevFAR, prevFRR, prevScore := -1.0, 2.0, 2.0
		for d := 0.0; d <= 4.2; d += 0.013 {
			far, frr := c.Rates(d)
			s := c.Score(d)
			if far < prevFAR || frr > prevFRR || s > prevScore || s < 0 || s > 1 {
				t.Fatalf("flip=%v: not monotone at distance %.3f: fa_r %v fr_r %v score %v", flip, d, far, frr, s)
			}
			prevFAR, prevFRR, prevScore = far, frr, s
		}
		if s := c.Score(0); s < 0.99 {
			t.Errorf("flip=%v: score at distance 0 is %v", flip, s)
		}
		if far, frr := c.Rates(c.EERThreshold); math.Abs(far-frr) > 0.02 {
			t.Errorf("flip=%v: at the EER threshold fa_r %v and fr_r %v differ", flip, far, frr)
		}
	}
}
