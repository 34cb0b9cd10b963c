package compiler

import (
	"context"
	"path/filepath"
	"testing"

	"imageapid/internal/testenv"
	"imageapid/models"
)

// BenchmarkModels times one inference of each compiled model in float32 and
// int8 under XNNPACK on one thread, both built in the same run from the
// committed calibration, so the ratio compares like with like.
func BenchmarkModels(b *testing.B) {
	root := testenv.Root(b)
	_, entries := compiledEntries(b)
	srcs := entrySources(b, entries)
	crops, err := FixtureCrops{Dir: filepath.Join(root, "third_party", "fixtures"), N: 1}.Crops(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for _, mi := range entries {
		spec, err := SpecFor(mi, root)
		if err != nil {
			b.Fatal(err)
		}
		l, err := Load(spec, srcs[mi.Source.Package])
		if err != nil {
			b.Fatal(err)
		}
		files := map[string]func() ([]byte, error){"float32": l.Float}
		// An int8 file that XNNPACK cannot run (recorded by calibration) is not timed.
		if spec.Ranges != nil && (spec.Agreement == nil || spec.Agreement.Error == "") {
			files["int8"] = func() ([]byte, error) { return l.Int8(spec.Ranges) }
		}
		in, err := l.Inputs(crops)
		if err != nil {
			b.Fatal(err)
		}
		for _, prec := range []string{"float32", "int8"} {
			build, ok := files[prec]
			if !ok {
				continue
			}
			b.Run(mi.Name+"/"+prec, func(b *testing.B) {
				fb, err := build()
				if err != nil {
					b.Fatal(err)
				}
				m, err := models.OpenBytes(mi.Name, fb, models.ModelOptions{Delegate: models.DelegateXNNPACK, Threads: 1, Pool: 1})
				if err != nil {
					b.Skipf("%s %s does not load under XNNPACK: %v", mi.Name, prec, err)
				}
				defer m.Close()
				if st := m.DelegateStatus(); st.Actual != models.DelegateXNNPACK {
					b.Skipf("%s %s does not load under XNNPACK: %s", mi.Name, prec, st.Fallback)
				}
				err = m.Run(context.Background(), func(it *models.Interpreter) error {
					x, err := it.Input(0)
					if err != nil {
						return err
					}
					copy(x, in[0])
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						if err := it.Invoke(); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				// After the loop: ResetTimer drops metrics reported before it.
				b.ReportMetric(float64(m.DelegateStatus().DelegatedNodes), "xnnpack-nodes")
				b.ReportMetric(float64(m.DelegateStatus().Nodes), "nodes")
			})
		}
	}
}
