package compiler

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imageapid/internal/testenv"
	"imageapid/models"
	"imageapid/models/tfjsref"
)

// describedEntry returns the manifest's face-api age/gender entry, its spec
// and its package.
func describedEntry(t *testing.T) (*models.ModelInfo, Spec, Source) {
	t.Helper()
	_, entries := compiledEntries(t)
	for _, mi := range entries {
		if mi.Name == "faceapi_age_gender" {
			spec, err := SpecFor(mi, testenv.Root(t))
			if err != nil {
				t.Fatal(err)
			}
			return mi, spec, packageSource(t, mi.Source.Package)
		}
	}
	t.Fatal("the manifest has no faceapi_age_gender entry")
	return nil, Spec{}, nil
}

// A description must read every weight of the manifest, name layers that
// exist, and use known ops: each mistake is refused before anything is emitted.
func TestDescriptionRefusesMistakes(t *testing.T) {
	_, spec, src := describedEntry(t)
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
// not with the description: a plausible slip (the first convolution's ReLU
// left out) compiles and runs, and the gate refuses it.
func TestDescribedGateCatchesWrongGraph(t *testing.T) {
	root := testenv.Root(t)
	if err := tfjsref.Default(root).Available(); err != nil {
		t.Skip(err)
	}
	_, spec, src := describedEntry(t)
	raw, err := os.ReadFile(filepath.Join(root, "models", "graphs", "faceapi_age_gender.json"))
	if err != nil {
		t.Fatal(err)
	}
	slip := bytes.Replace(raw, []byte(`"stride": 2, "relu": true}`), []byte(`"stride": 2}`), 1)
	if bytes.Equal(slip, raw) {
		t.Fatal("the description no longer has conv_in's ReLU")
	}
	crops, err := FixtureCrops{Dir: filepath.Join(root, "third_party", "fixtures"), N: 2}.Crops(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		desc []byte
		pass bool
	}{{"as committed", raw, true}, {"without conv_in's ReLU", slip, false}} {
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
		fb, err := l.Float()
		if err != nil {
			t.Fatal(err)
		}
		inputs, err := l.Inputs(crops)
		if err != nil {
			t.Fatal(err)
		}
		want, err := l.Reference(context.Background(), tfjsref.Default(root), inputs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := RunTFLite(context.Background(), "faceapi_age_gender", fb, inputs, models.DelegateXNNPACK)
		if err != nil {
			t.Fatal(err)
		}
		p, err := CheckFloat(got, want)
		t.Logf("%s: max error %.3g against face-api's own code", c.name, p.MaxErr)
		if (err == nil) != c.pass {
			t.Errorf("%s: gate passed=%v, want %v (%v)", c.name, err == nil, c.pass, err)
		}
	}
}
