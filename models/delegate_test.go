package models_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/png"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"imageapid/internal/testenv"
	"imageapid/models"
)

// buildCountDelegate compiles the test plugin (testdata/delegate) into a
// temporary shared library and returns its path.
func buildCountDelegate(t testing.TB) string {
	t.Helper()
	root := testenv.Root(t)
	out := filepath.Join(t.TempDir(), "libcountdelegate.so")
	cmd := exec.Command("gcc", "-O2", "-shared", "-fPIC", "-Wall",
		"-I", filepath.Join(root, "third_party", "tflite", "include"),
		filepath.Join(root, "models", "testdata", "delegate", "countdelegate.c"), "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the test delegate plugin: %v\n%s", err, b)
	}
	return out
}

// syncBuffer collects log output from the runtime's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newRuntime(t testing.TB, opts models.Options, log *syncBuffer) *models.Runtime {
	t.Helper()
	root := testenv.Root(t)
	m, err := models.LoadManifest(filepath.Join(root, "models", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Dir = filepath.Join(root, "models", "build")
	if opts.Threads == 0 {
		opts.Threads = 1
	}
	var w interface{ Write([]byte) (int, error) } = &syncBuffer{}
	if log != nil {
		w = log
	}
	rt, err := models.NewRuntime(m, opts, slog.New(slog.NewTextHandler(w, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt
}

// imageInput fills a [1,H,W,3] input from a real photograph (nearest-neighbour
// resize, pixels scaled to [-1,1] as the MediaPipe models expect).
func imageInput(t testing.TB, in []float32, shape []int) {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(testenv.ReadFixture(t, "astronaut.png")))
	if err != nil {
		t.Fatal(err)
	}
	if len(shape) != 4 || shape[3] != 3 {
		for i := range in {
			in[i] = float32(i%255)/127.5 - 1
		}
		return
	}
	h, w := shape[1], shape[2]
	b := img.Bounds()
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, bl, _ := img.At(b.Min.X+x*b.Dx()/w, b.Min.Y+y*b.Dy()/h).RGBA()
			o := (y*w + x) * 3
			in[o], in[o+1], in[o+2] = float32(r>>8)/127.5-1, float32(g>>8)/127.5-1, float32(bl>>8)/127.5-1
		}
	}
}

// infer runs model once on the photograph and returns copies of its outputs.
func infer(t testing.TB, rt *models.Runtime, model string) [][]float32 {
	t.Helper()
	m, err := rt.Model(model)
	if err != nil {
		t.Fatal(err)
	}
	var outs [][]float32
	err = m.Run(context.Background(), func(it *models.Interpreter) error {
		inputs, _ := it.Describe()
		in, err := it.Input(0)
		if err != nil {
			return err
		}
		imageInput(t, in, inputs[0].Shape)
		if err := it.Invoke(); err != nil {
			return err
		}
		for n := 0; n < it.Outputs(); n++ {
			o, err := it.Output(n)
			if err != nil {
				return err
			}
			outs = append(outs, append([]float32(nil), o...))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return outs
}

func sumCounts(t *testing.T, path string) (total int, lines int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the plugin wrote no count file: %v", err)
	}
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		lines++
	}
	return total, lines
}

// TestExternalDelegateIsUsedAndExact loads the test plugin at run time as an
// external delegate: it must take the model's float ADD and RELU nodes,
// execute them on every Invoke, and give exactly the CPU kernels' outputs.
func TestExternalDelegateIsUsedAndExact(t *testing.T) {
	plugin := buildCountDelegate(t)
	for _, model := range []string{"face_detection_short_range", "face_landmark"} {
		t.Run(model, func(t *testing.T) {
			countFile := filepath.Join(t.TempDir(), "count")
			var log syncBuffer
			const pool, runs = 2, 3
			rt := newRuntime(t, models.Options{Delegate: models.DelegateXNNPACK, Pool: pool,
				PerModel: map[string]models.ModelOptions{model: {
					Delegate: models.DelegateExternal, Library: plugin,
					DelegateOptions: map[string]string{"ops": "add,relu", "count_file": countFile},
				}}}, &log)
			cpu := newRuntime(t, models.Options{Delegate: models.DelegateNone, Pool: 1}, nil)

			var got [][]float32
			for i := 0; i < runs; i++ {
				got = infer(t, rt, model)
			}
			st := rt.Delegates()[model]
			if st.Actual != models.DelegateExternal || st.Fallback != "" {
				t.Fatalf("the model must run on the plugin, got %+v\nlog: %s", st, log.String())
			}
			if st.DelegatedNodes == 0 || st.DelegatedNodes >= st.Nodes {
				t.Errorf("the plugin must take some but not all nodes: %+v", st)
			}
			if l := rt.Loaded()[model]; l != "external" {
				t.Errorf("Loaded() = %q, want external", l)
			}
			if !strings.Contains(log.String(), "model="+model+" ") || !strings.Contains(log.String(), "delegate=external") {
				t.Errorf("the load log must name the delegate: %s", log.String())
			}
			want := infer(t, cpu, model)
			if len(got) != len(want) {
				t.Fatalf("outputs: %d vs %d", len(got), len(want))
			}
			for o := range want {
				for i := range want[o] {
					// The plugin's float ADD/RELU are the same IEEE operations
					// as TFLite's reference kernels: the results are identical.
					if got[o][i] != want[o][i] {
						t.Fatalf("output %d[%d]: plugin %v, CPU kernels %v", o, i, got[o][i], want[o][i])
					}
				}
			}
			rt.Close() // destroys the delegates, which write their counts
			total, lines := sumCounts(t, countFile)
			// Each interpreter runs once at load (the accelerator check), then
			// the test's runs, all on interpreters of the pool.
			if lines != pool || total != (pool+runs)*st.DelegatedNodes {
				t.Errorf("the plugin executed %d nodes over %d delegates; want %d over %d (%d nodes x (%d loads + %d runs))",
					total, lines, (pool+runs)*st.DelegatedNodes, pool, st.DelegatedNodes, pool, runs)
			}
			t.Logf("%s: plugin took %d of %d nodes in %d partitions; outputs identical to CPU kernels",
				model, st.DelegatedNodes, st.Nodes, st.Partitions)
		})
	}
}

// TestDelegateFallback checks every way an accelerator can be unusable: the
// model must still load, run on XNNPACK with the outputs XNNPACK gives, and
// the runtime must say why in one log line and in its status.
func TestDelegateFallback(t *testing.T) {
	plugin := buildCountDelegate(t)
	otherLib := filepath.Join(testenv.Root(t), "third_party", "tflite", "linux_"+runtime.GOARCH, "libexternal_delegate_obj.so")
	const model = "face_detection_short_range"
	cases := []struct {
		name   string
		mo     models.ModelOptions
		model  string
		reason string
	}{
		{"gpu library missing", models.ModelOptions{Delegate: models.DelegateGPU}, model,
			"gpu: libtensorflowlite_gpu_delegate.so: cannot open shared object file"},
		{"edgetpu library missing", models.ModelOptions{Delegate: models.DelegateEdgeTPU}, model,
			"edgetpu: libedgetpu.so.1: cannot open shared object file"},
		{"plugin missing", models.ModelOptions{Delegate: models.DelegateExternal, Library: "/nonexistent/libvendor_delegate.so"}, model,
			"external: /nonexistent/libvendor_delegate.so: cannot open shared object file"},
		{"library is not a plugin", models.ModelOptions{Delegate: models.DelegateExternal, Library: otherLib}, model,
			"undefined symbol: tflite_plugin_create_delegate"},
		{"plugin create fails", models.ModelOptions{Delegate: models.DelegateExternal, Library: plugin,
			DelegateOptions: map[string]string{"precision": "fp8"}}, model,
			"create: countdelegate: unknown option precision"},
		{"plugin rejects the graph", models.ModelOptions{Delegate: models.DelegateExternal, Library: plugin,
			DelegateOptions: map[string]string{"reject_graph": "true"}}, model,
			"the delegate rejected the graph"},
		{"plugin claims no node", models.ModelOptions{Delegate: models.DelegateExternal, Library: plugin,
			DelegateOptions: map[string]string{"claim": "none"}}, model,
			"the delegate took none of the model's"},
		{"model has none of the plugin's ops", models.ModelOptions{Delegate: models.DelegateExternal, Library: plugin,
			DelegateOptions: map[string]string{"ops": "relu"}}, "face_landmark", // PRELU, no RELU
			"the delegate took none of the model's"},
	}
	xnn := newRuntime(t, models.Options{Delegate: models.DelegateXNNPACK, Pool: 1}, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var log syncBuffer
			rt := newRuntime(t, models.Options{Delegate: models.DelegateXNNPACK, Pool: 2,
				PerModel: map[string]models.ModelOptions{c.model: c.mo}}, &log)
			got := infer(t, rt, c.model)
			st := rt.Delegates()[c.model]
			if st.Requested != c.mo.Delegate || st.Actual != models.DelegateXNNPACK || !strings.Contains(st.Fallback, c.reason) {
				t.Errorf("status %+v: want %s falling back to xnnpack because %q", st, c.mo.Delegate, c.reason)
			}
			loaded := rt.Loaded()[c.model]
			if !strings.HasPrefix(loaded, "xnnpack (fallback from "+c.mo.Delegate+": ") || !strings.Contains(loaded, c.reason) {
				t.Errorf("Loaded() = %q", loaded)
			}
			lines := 0
			for _, l := range strings.Split(log.String(), "\n") {
				if strings.Contains(l, "model="+c.model+" ") {
					lines++
					want := fmt.Sprintf("model %s runs on xnnpack instead of %s", c.model, c.mo.Delegate)
					if !strings.Contains(l, "level=WARN") || !strings.Contains(l, want) || !strings.Contains(l, c.reason) {
						t.Errorf("log line %q: want a warning %q with the reason", l, want)
					}
				}
			}
			if lines != 1 {
				t.Errorf("want exactly one log line for %s, got %d:\n%s", c.model, lines, log.String())
			}
			want := infer(t, xnn, c.model)
			for o := range want {
				for i := range want[o] {
					if got[o][i] != want[o][i] {
						t.Fatalf("the fallback must run XNNPACK: output %d[%d] %v vs %v", o, i, got[o][i], want[o][i])
					}
				}
			}
		})
	}
}

func TestDelegateConfigChecks(t *testing.T) {
	for _, c := range []struct {
		mo   models.ModelOptions
		want string
	}{
		{models.ModelOptions{Delegate: models.DelegateNNAPI}, "exists only on Android"},
		{models.ModelOptions{Delegate: "tpu"}, `unknown delegate "tpu"`},
		{models.ModelOptions{Delegate: models.DelegateExternal}, "needs delegate_library"},
		{models.ModelOptions{Delegate: models.DelegateXNNPACK, Library: "x.so"}, "apply to gpu, edgetpu and external"},
		{models.ModelOptions{Delegate: models.DelegateGPU, DelegateOptions: map[string]string{"precision": "fp16"}}, `unknown gpu option "precision"`},
		{models.ModelOptions{Delegate: models.DelegateGPU, DelegateOptions: map[string]string{"inference_priority1": "fastest"}}, "min_latency"},
		{models.ModelOptions{Delegate: models.DelegateEdgeTPU, DelegateOptions: map[string]string{"device": "spi"}}, "want usb, pci"},
	} {
		err := c.mo.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error containing %q", c.mo, err, c.want)
		}
	}
	for _, ok := range []models.ModelOptions{
		{Delegate: models.DelegateGPU, DelegateOptions: map[string]string{"precision_loss_allowed": "true",
			"inference_preference": "sustained_speed", "inference_priority1": "min_latency", "max_delegated_partitions": "2"}},
		{Delegate: models.DelegateEdgeTPU, DelegateOptions: map[string]string{"device": "usb:1", "Performance": "Max"}},
		{Delegate: models.DelegateExternal, Library: "/usr/lib/libvendor.so", DelegateOptions: map[string]string{"any": "thing"}},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}

// BenchmarkDelegates compares plain CPU kernels, XNNPACK and the test plugin
// (which takes the float ADD/RELU nodes and leaves the rest to the CPU
// kernels) on each model with float ADDs, in one run.
func BenchmarkDelegates(b *testing.B) {
	plugin := buildCountDelegate(b)
	for _, model := range []string{"face_detection_short_range", "face_detection_full_range", "face_landmark", "age", "mobilefacenet"} {
		for _, mo := range []models.ModelOptions{
			{Delegate: models.DelegateNone},
			{Delegate: models.DelegateXNNPACK},
			{Delegate: models.DelegateExternal, Library: plugin, DelegateOptions: map[string]string{"ops": "add,relu"}},
		} {
			b.Run(model+"/"+mo.Delegate, func(b *testing.B) {
				rt := newRuntime(b, models.Options{Delegate: models.DelegateXNNPACK, Pool: 1,
					PerModel: map[string]models.ModelOptions{model: mo}}, nil)
				m, err := rt.Model(model)
				if err != nil {
					b.Fatal(err)
				}
				if st := m.DelegateStatus(); st.Actual != mo.Delegate {
					b.Fatalf("wanted %s, runs on %s", mo.Delegate, st)
				}
				err = m.Run(context.Background(), func(it *models.Interpreter) error {
					inputs, _ := it.Describe()
					in, err := it.Input(0)
					if err != nil {
						return err
					}
					imageInput(b, in, inputs[0].Shape)
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
			})
		}
	}
}
