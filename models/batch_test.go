package models_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"imageapid/internal/testenv"
	"imageapid/models"
	"imageapid/models/tflitefile"
)

// TestModelWithBatch: MobileFaceNet, shipped with a fixed batch of two
// (two reshapes say so), runs at batch one once its reshapes are freed, on
// XNNPACK, and embeds a face exactly as the first slot of the shipped model.
func TestModelWithBatch(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.Root(t), "models", "build", "mobilefacenet.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	freed, n, err := tflitefile.FreeBatch(b, 2)
	if err != nil || n == 0 || len(freed) != len(b) {
		t.Fatalf("FreeBatch changed %d reshape targets, %d -> %d bytes, %v", n, len(b), len(freed), err)
	}
	for _, bad := range [][]byte{nil, b[:3], b[:len(b)/3], append([]byte{0xFF, 0xFF, 0xFF, 0x7F}, b[4:]...)} {
		tflitefile.FreeBatch(bad, 2) // must return, not panic
	}
	rt := newRuntime(t, models.Options{Pool: 1}, nil)
	shipped, err := rt.Model("mobilefacenet")
	if err != nil {
		t.Fatal(err)
	}
	one, err := rt.ModelWithBatch("mobilefacenet", 1)
	if err != nil {
		t.Fatal(err)
	}
	if in, out := one.Info.Inputs[0].Shape, one.Info.Outputs[0].Shape; in[0] != 1 || in[1] != 112 || out[0] != 1 || out[1] != 192 {
		t.Fatalf("batch-one tensors %v -> %v", in, out)
	}
	if st := one.DelegateStatus(); st.Actual != models.DelegateXNNPACK || st.DelegatedNodes == 0 {
		t.Errorf("batch one runs on %+v, want XNNPACK", st)
	}
	if again, _ := rt.ModelWithBatch("mobilefacenet", 1); again != one {
		t.Error("the batch-one model was loaded twice")
	}
	if same, _ := rt.ModelWithBatch("mobilefacenet", 2); same != shipped {
		t.Error("the shipped batch was loaded again")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 112*112*3)
	for i := range x {
		x[i] = rng.Float32()*2 - 1
	}
	run := func(m *models.Model, slots int) []float32 {
		var out []float32
		err := m.Run(context.Background(), func(it *models.Interpreter) error {
			in, err := it.Input(0)
			if err != nil {
				return err
			}
			for s := 0; s < slots; s++ {
				copy(in[s*len(x):], x)
			}
			if err := it.Invoke(); err != nil {
				return err
			}
			o, err := it.Output(0)
			out = append(out, o[:192]...)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, c := run(shipped, 2), run(one, 1)
	for i := range a {
		if a[i] != c[i] {
			t.Fatalf("embedding value %d: %v at batch two, %v at batch one", i, a[i], c[i])
		}
	}
	if _, err := rt.ModelWithBatch("mobilefacenet", 0); err == nil {
		t.Error("batch 0 accepted")
	}
}
