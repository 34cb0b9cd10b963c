package compiler

import (
	"bytes"
	"context"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imageapid/internal/testenv"
	"imageapid/models"
	"imageapid/models/tfjsref"
)

// describedEntry returns the manifest's entry of a described model, its
// spec and its package.
func describedEntry(t *testing.T, name string) (*models.ModelInfo, Spec, Source) {
	t.Helper()
	_, entries := compiledEntries(t)
	for _, mi := range entries {
		if mi.Name == name {
			spec, err := SpecFor(mi, testenv.Root(t))
			if err != nil {
				t.Fatal(err)
			}
			return mi, spec, packageSource(t, mi.Source.Package)
		}
	}
	t.Fatalf("the manifest has no %s entry", name)
	return nil, Spec{}, nil
}

// A description must read every weight of the manifest, name layers that
// exist, and use known ops: each mistake is refused before anything is emitted.
func TestDescriptionRefusesMistakes(t *testing.T) {
	_, spec, src := describedEntry(t, "faceapi_age_gender")
	raw, err := os.ReadFile(filepath.Join(testenv.Root(t), "models", "graphs", "faceapi_age_gender.json"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct{ old, new, want string }{
		"missing layer": {`    {"name": "gender_logits", "op": "dense", "weights": "fc/gender", "from": ["flat"]},` + "\n" +
			`    {"name": "gender", "op": "softmax"}`, `    {"name": "gender", "op": "softmax", "from": ["flat"]}`, "never read"},
		"unknown input": {`"from": ["conv_in"]}`, `"from": ["conv_typo"]}`, "which no earlier layer is"},
		"unknown op":    {`"op": "flatten"`, `"op": "flattenn"`, "unknown op"},
		"wrong weight":  {`"weights": "fc/age"`, `"weights": "fc/ages"`, "has no fc/ages"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if !bytes.Contains(raw, []byte(c.old)) {
				t.Fatalf("the description no longer holds %q", c.old)
			}
			d, err := ParseDescription(bytes.Replace(raw, []byte(c.old), []byte(c.new), 1))
			if err != nil {
				t.Fatal(err)
			}
			s := spec
			s.Description = d
			_, err = Load(s, src)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error saying %q", err, c.want)
			}
		})
	}
}

// The float gate compares a described model with the library's own code,
// not with the description: a plausible slip compiles and runs, and the gate
// refuses it.
func TestDescribedGateCatchesWrongGraph(t *testing.T) {
	for _, c := range []struct{ model, slip, old, new string }{
		{"faceapi_age_gender", "without conv_in's ReLU", `"stride": 2, "relu": true}`, `"stride": 2}`},
		// residualDown appends the zero row and column after the branch's last
		// ones (tf.concat([out, zeros], 1)), not before.
		{"faceapi_face_recognition", "conv256_down's zero row and column first",
			`{"name": "conv256_down/conv2_padded", "op": "pad", "pad": [[0, 0], [0, 1], [0, 1], [0, 0]]}`,
			`{"name": "conv256_down/conv2_padded", "op": "pad", "pad": [[0, 0], [1, 0], [1, 0], [0, 0]]}`},
	} {
		t.Run(c.model, func(t *testing.T) { gateCatchesSlip(t, c.model, c.slip, c.old, c.new) })
	}
}

func gateCatchesSlip(t *testing.T, model, slipName, old, new string) {
	root := testenv.Root(t)
	if err := tfjsref.Default(root).Available(); err != nil {
		t.Skip(err)
	}
	_, spec, src := describedEntry(t, model)
	raw, err := os.ReadFile(filepath.Join(root, "models", "graphs", model+".json"))
	if err != nil {
		t.Fatal(err)
	}
	slip := bytes.Replace(raw, []byte(old), []byte(new), 1)
	if bytes.Equal(slip, raw) {
		t.Fatalf("the description no longer holds %s", old)
	}
	crops, err := FixtureCrops{Dir: filepath.Join(root, "third_party", "fixtures"), N: 2}.Crops(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		desc []byte
		pass bool
	}{{"as committed", raw, true}, {slipName, slip, false}} {
		d, err := ParseDescription(c.desc)
		if err != nil {
			t.Fatal(err)
		}
		s := spec
		s.Description = d
		l, err := Load(s, src)
		if err != nil {
			t.Fatal(err)
		}
		p, err := floatGate(t, l, crops)
		t.Logf("%s: max error %.3g against face-api's own code", c.name, p.MaxErr)
		if (err == nil) != c.pass {
			t.Errorf("%s: gate passed=%v, want %v (%v)", c.name, err == nil, c.pass, err)
		}
	}
}

// floatGate compiles a loaded model to float, runs it and its reference on
// the crops and returns the float gate's verdict.
func floatGate(t *testing.T, l *Loaded, crops []*image.RGBA) (FloatParity, error) {
	t.Helper()
	fb, err := l.Float()
	if err != nil {
		t.Fatal(err)
	}
	inputs, err := l.Inputs(crops)
	if err != nil {
		t.Fatal(err)
	}
	want, err := l.Reference(context.Background(), tfjsref.Default(testenv.Root(t)), inputs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := RunTFLite(context.Background(), l.Spec.Name, fb, inputs, models.DelegateXNNPACK)
	if err != nil {
		t.Fatal(err)
	}
	return CheckFloat(got, want)
}
