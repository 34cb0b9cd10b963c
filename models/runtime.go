package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	tflite "github.com/mattn/go-tflite"

	"imageapid/models/tflitefile"
)

// Options configure the runtime: where the model files are, and the default
// delegate, thread count and pool size, any of which a model may override.
type Options struct {
	Dir      string
	Delegate string
	// Library and DelegateOptions configure the default delegate when it is
	// gpu, edgetpu or external (see ModelOptions).
	Library         string
	DelegateOptions map[string]string
	Threads         int
	// Pool is how many interpreters each model keeps, so that concurrent
	// requests do not serialize on one.
	Pool     int
	PerModel map[string]ModelOptions
	// ObserveInvoke, when set, is told how long each inference took (for metrics).
	ObserveInvoke func(model string, d time.Duration)
}

// ModelOptions override the runtime's defaults for one model; zero values inherit.
type ModelOptions struct {
	// Delegate is xnnpack, none, gpu, edgetpu or external. When it cannot be
	// used on this box the model falls back to xnnpack, then to plain CPU.
	Delegate string `yaml:"delegate"`
	// Library is the delegate's shared library: the plugin for external
	// (required), or instead of the default gpu/edgetpu library name.
	Library string `yaml:"delegate_library"`
	// DelegateOptions are the delegate's key/values: GPU options, libedgetpu
	// options (plus device: usb, pci, usb:N...), or the plugin's options.
	DelegateOptions map[string]string `yaml:"delegate_options"`
	Threads         int               `yaml:"threads"`
	Pool            int               `yaml:"pool"`

	// batch, when positive, resizes the first dimension of every input
	// before the tensors are allocated (see Runtime.ModelWithBatch).
	batch int
}

func (o Options) forModel(name string) ModelOptions {
	mo := ModelOptions{Delegate: o.Delegate, Library: o.Library, DelegateOptions: o.DelegateOptions,
		Threads: o.Threads, Pool: o.Pool}
	if p, ok := o.PerModel[name]; ok {
		if p.Delegate != "" && p.Delegate != mo.Delegate {
			// Another kind: the default's library and options are not its own.
			mo.Delegate, mo.Library, mo.DelegateOptions = p.Delegate, "", nil
		}
		if p.Library != "" {
			mo.Library = p.Library
		}
		if p.DelegateOptions != nil {
			mo.DelegateOptions = p.DelegateOptions
		}
		if p.Threads > 0 {
			mo.Threads = p.Threads
		}
		if p.Pool > 0 {
			mo.Pool = p.Pool
		}
	}
	if mo.Delegate == "" {
		mo.Delegate = DelegateXNNPACK
	}
	if mo.Threads <= 0 {
		mo.Threads = 1
	}
	if mo.Pool <= 0 {
		mo.Pool = 1
	}
	return mo
}

// Runtime loads verified models and hands them out by name.
type Runtime struct {
	manifest *Manifest
	opts     Options
	log      *slog.Logger

	mu     sync.Mutex
	loaded map[string]*Model
}

// NewRuntime returns a runtime over the models listed in manifest.
func NewRuntime(manifest *Manifest, opts Options, log *slog.Logger) (*Runtime, error) {
	if err := opts.forModel("").Validate(); err != nil {
		return nil, err
	}
	for name := range opts.PerModel {
		if _, err := manifest.Find(name); err != nil {
			return nil, fmt.Errorf("model options: %w", err)
		}
		if err := opts.forModel(name).Validate(); err != nil {
			return nil, fmt.Errorf("model %s: %w", name, err)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runtime{manifest: manifest, opts: opts, log: log, loaded: map[string]*Model{}}, nil
}

// Model returns the named model, loading and verifying it on first use.
func (r *Runtime) Model(name string) (*Model, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m, ok := r.loaded[name]; ok {
		return m, nil
	}
	info, err := r.manifest.Find(name)
	if err != nil {
		return nil, err
	}
	m, err := loadModel(info, filepath.Join(r.opts.Dir, info.File), r.opts.forModel(name), r.opts.ObserveInvoke)
	if err != nil {
		return nil, err
	}
	st := m.DelegateStatus()
	attrs := []any{"model", name, "file", info.File, "delegate", st.Actual,
		"delegated_nodes", fmt.Sprintf("%d/%d", st.DelegatedNodes, st.Nodes),
		"threads", m.Threads, "interpreters", cap(m.pool), "precision", info.Precision}
	if st.Fallback != "" {
		// The one line an operator needs: which accelerator was asked for, why
		// it is not used, and what runs instead.
		r.log.Warn(fmt.Sprintf("model %s runs on %s instead of %s", name, st.Actual, st.Requested),
			append(attrs, "requested", st.Requested, "reason", st.Fallback)...)
	} else {
		r.log.Info("model loaded", attrs...)
	}
	r.loaded[name] = m
	return m, nil
}

// ModelWithBatch returns the named model with the first (batch) dimension
// of its inputs resized to batch, and its Info's tensors as they then are:
// a network shipped with a fixed batch of two runs one face for half the
// work. It is loaded once per batch size, beside the model as shipped.
func (r *Runtime) ModelWithBatch(name string, batch int) (*Model, error) {
	if batch <= 0 {
		return nil, fmt.Errorf("model %s: batch %d is not positive", name, batch)
	}
	info, err := r.manifest.Find(name)
	if err != nil {
		return nil, err
	}
	if len(info.Inputs) > 0 && len(info.Inputs[0].Shape) > 0 && info.Inputs[0].Shape[0] == batch {
		return r.Model(name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := fmt.Sprintf("%s@batch=%d", name, batch)
	if m, ok := r.loaded[key]; ok {
		return m, nil
	}
	mo := r.opts.forModel(name)
	mo.batch = batch
	m, err := loadModel(info, filepath.Join(r.opts.Dir, info.File), mo, r.opts.ObserveInvoke)
	if err != nil {
		return nil, err
	}
	resized := *info
	resized.Inputs, resized.Outputs = m.all[0].Describe()
	m.Info = &resized
	r.log.Info("model loaded", "model", name, "batch", batch, "delegate", m.DelegateStatus().Actual,
		"threads", m.Threads, "interpreters", cap(m.pool))
	r.loaded[key] = m
	return m, nil
}

// Loaded lists the models loaded so far with the delegate each actually runs
// on: "xnnpack", or after a fallback e.g. "xnnpack (fallback from gpu:
// libtensorflowlite_gpu_delegate.so: cannot open shared object file: ...)".
func (r *Runtime) Loaded() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.loaded))
	for n, m := range r.loaded {
		out[n] = m.DelegateStatus().String()
	}
	return out
}

// Manifest lists every model the runtime may load, loaded or not.
func (r *Runtime) Manifest() []ModelInfo {
	return append([]ModelInfo(nil), r.manifest.Models...)
}

// Delegates reports the delegate status of each model loaded so far.
func (r *Runtime) Delegates() map[string]DelegateStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]DelegateStatus, len(r.loaded))
	for n, m := range r.loaded {
		out[n] = m.DelegateStatus()
	}
	return out
}

// Close frees every loaded model; no model may be in use.
func (r *Runtime) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for n, m := range r.loaded {
		m.close()
		delete(r.loaded, n)
	}
}

// VerifyFile checks that the file at path has the manifest's sha256.
func VerifyFile(info *ModelInfo, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w (run `make models`)", info.Name, err)
	}
	sum := sha256.Sum256(b)
	got := hex.EncodeToString(sum[:])
	if got != info.SHA256 {
		return nil, fmt.Errorf("model %s: file %s has sha256 %s, the manifest expects %s",
			info.Name, path, got, info.SHA256)
	}
	return b, nil
}

// Model is one loaded network with a pool of ready interpreters.
type Model struct {
	Info *ModelInfo
	// Delegate is the delegate the model actually runs on (after any fallback).
	Delegate string
	Threads  int

	model *tflite.Model
	pool  chan *Interpreter
	all   []*Interpreter
}

func loadModel(info *ModelInfo, path string, mo ModelOptions, observe func(string, time.Duration)) (*Model, error) {
	b, err := VerifyFile(info, path)
	if err != nil {
		return nil, err
	}
	if mo.batch > 0 && len(info.Inputs) > 0 && len(info.Inputs[0].Shape) > 0 {
		// Reshapes to the shipped batch would refuse the resized inputs.
		if b, _, err = tflitefile.FreeBatch(b, int32(info.Inputs[0].Shape[0])); err != nil {
			return nil, fmt.Errorf("model %s: free its batch: %w", info.Name, err)
		}
	}
	tm := tflite.NewModel(b)
	if tm == nil {
		return nil, fmt.Errorf("model %s: TFLite cannot parse %s", info.Name, path)
	}
	m := &Model{Info: info, Delegate: mo.Delegate, Threads: mo.Threads, model: tm, pool: make(chan *Interpreter, mo.Pool)}
	for i := 0; i < mo.Pool; i++ {
		it, err := newInterpreter(tm, mo)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("model %s: %w", info.Name, err)
		}
		if i == 0 {
			// The first interpreter settles the delegate; the others use the
			// same one rather than retrying what already failed.
			m.Delegate = it.status.Actual
			mo.Delegate = it.status.Actual
			if mo.Delegate != it.status.Requested {
				mo.Library, mo.DelegateOptions = "", nil
			}
		}
		if observe != nil {
			name := info.Name
			it.observe = func(d time.Duration) { observe(name, d) }
		}
		m.all = append(m.all, it)
		m.pool <- it
	}
	return m, nil
}

// Run borrows an interpreter for the duration of fn, waiting for one while
// ctx allows.
func (m *Model) Run(ctx context.Context, fn func(*Interpreter) error) error {
	var it *Interpreter
	select {
	case it = <-m.pool:
	case <-ctx.Done():
		return fmt.Errorf("model %s: wait for an interpreter: %w", m.Info.Name, ctx.Err())
	}
	defer func() { m.pool <- it }()
	return fn(it)
}

// DelegateStatus says which delegate the model runs on and, after a
// fallback, why not on the one configured.
func (m *Model) DelegateStatus() DelegateStatus {
	if len(m.all) == 0 {
		return DelegateStatus{Requested: m.Delegate, Actual: m.Delegate}
	}
	return m.all[0].status
}

func (m *Model) close() {
	for _, it := range m.all {
		it.close()
	}
	m.all = nil
	if m.model != nil {
		m.model.Delete()
		m.model = nil
	}
}

// Interpreter is one TFLite interpreter; it is used by one goroutine at a time.
type Interpreter struct {
	it       *tflite.Interpreter
	opts     *tflite.InterpreterOptions
	delegate delegate
	observe  func(time.Duration)
	status   DelegateStatus
}

// DelegateStatus says which delegate a model was configured with and which
// one it runs on.
type DelegateStatus struct {
	Requested string `json:"requested"`
	Actual    string `json:"actual"`
	// Fallback says why Requested is not used; empty when it is.
	Fallback string `json:"fallback,omitempty"`
	// Nodes is the size of the graph and DelegatedNodes how many of its
	// nodes the delegate took (0 on plain CPU kernels).
	Nodes          int `json:"nodes"`
	DelegatedNodes int `json:"delegated_nodes"`
	Partitions     int `json:"partitions"`
}

func (s DelegateStatus) String() string {
	if s.Fallback == "" {
		return s.Actual
	}
	return fmt.Sprintf("%s (fallback from %s)", s.Actual, s.Fallback)
}

// fallbackChain lists the delegates to try, best first: an accelerator falls
// back to XNNPACK, and XNNPACK to plain CPU kernels.
func fallbackChain(kind string) []string {
	switch kind {
	case DelegateNone:
		return []string{DelegateNone}
	case DelegateXNNPACK, "":
		return []string{DelegateXNNPACK, DelegateNone}
	}
	return []string{kind, DelegateXNNPACK, DelegateNone}
}

// isAccelerator reports whether kind is a delegate that must take part of
// the graph to be worth keeping.
func isAccelerator(kind string) bool {
	return kind != DelegateNone && kind != DelegateXNNPACK && kind != ""
}

// newInterpreter returns an interpreter on the first delegate of mo's
// fallback chain that loads, accepts the graph and runs it.
func newInterpreter(tm *tflite.Model, mo ModelOptions) (*Interpreter, error) {
	requested := mo.Delegate
	if requested == "" {
		requested = DelegateXNNPACK
	}
	var reasons []string
	for _, kind := range fallbackChain(requested) {
		try := mo
		if kind != requested {
			try.Delegate, try.Library, try.DelegateOptions = kind, "", nil
		}
		it, err := tryInterpreter(tm, try)
		if err == nil {
			it.status.Requested = requested
			if len(reasons) > 0 {
				it.status.Fallback = strings.Join(reasons, "; then ")
			}
			return it, nil
		}
		reasons = append(reasons, fmt.Sprintf("%s: %v", kind, err))
	}
	return nil, fmt.Errorf("no delegate works: %s", strings.Join(reasons, "; "))
}

func tryInterpreter(tm *tflite.Model, mo ModelOptions) (*Interpreter, error) {
	opts := tflite.NewInterpreterOptions()
	opts.SetNumThread(mo.Threads)
	h, err := newDelegate(mo)
	if err != nil {
		opts.Delete()
		return nil, err
	}
	out := &Interpreter{opts: opts, status: DelegateStatus{Actual: mo.Delegate}}
	if h != nil {
		out.delegate = h
		opts.AddDelegate(h)
	}
	out.it = tflite.NewInterpreter(tm, opts)
	if out.it == nil {
		rejected := h != nil && h.report().rejected
		out.close()
		if rejected {
			return nil, errors.New("the delegate rejected the graph (its Prepare failed)")
		}
		return nil, errors.New("TFLite could not build the interpreter with this delegate")
	}
	if mo.batch > 0 {
		for n := 0; n < out.it.GetInputTensorCount(); n++ {
			t := out.it.GetInputTensor(n)
			dims := make([]int32, t.NumDims())
			for d := range dims {
				dims[d] = int32(t.Dim(d))
			}
			if len(dims) == 0 || int(dims[0]) == mo.batch {
				continue
			}
			dims[0] = int32(mo.batch)
			if st := out.it.ResizeInputTensor(n, dims); st != tflite.OK {
				out.close()
				return nil, fmt.Errorf("resize input %d to batch %d: status %v", n, mo.batch, st)
			}
		}
	}
	if st := out.it.AllocateTensors(); st != tflite.OK {
		out.close()
		return nil, fmt.Errorf("allocate tensors: status %v", st)
	}
	if h != nil {
		rep := h.report()
		out.status.Nodes, out.status.DelegatedNodes, out.status.Partitions = rep.nodes, rep.claimed, rep.partitions
		if isAccelerator(mo.Delegate) {
			if rep.claimed == 0 {
				out.close()
				return nil, fmt.Errorf("the delegate took none of the model's %d nodes", rep.nodes)
			}
			// Accelerators can fail at the first Invoke (driver, memory);
			// find out now rather than on the first request.
			if st := out.it.Invoke(); st != tflite.OK {
				out.close()
				return nil, fmt.Errorf("first invoke: status %v", st)
			}
		}
	}
	return out, nil
}

func (i *Interpreter) close() {
	if i.it != nil {
		i.it.Delete()
		i.it = nil
	}
	if i.delegate != nil {
		i.delegate.Delete()
		i.delegate = nil
	}
	if i.opts != nil {
		i.opts.Delete()
		i.opts = nil
	}
}

// Input returns input tensor n as a writable float32 slice.
func (i *Interpreter) Input(n int) ([]float32, error) {
	if n < 0 || n >= i.it.GetInputTensorCount() {
		return nil, fmt.Errorf("input %d out of range", n)
	}
	t := i.it.GetInputTensor(n)
	if t.Type() != tflite.Float32 {
		return nil, fmt.Errorf("input %d is %v, not float32", n, t.Type())
	}
	return t.Float32s(), nil
}

// Invoke runs the network.
func (i *Interpreter) Invoke() error {
	if i.observe != nil {
		defer func(start time.Time) { i.observe(time.Since(start)) }(time.Now())
	}
	if st := i.it.Invoke(); st != tflite.OK {
		return fmt.Errorf("invoke: status %v", st)
	}
	return nil
}

// Output returns output tensor n as a float32 slice, valid until the next Invoke.
func (i *Interpreter) Output(n int) ([]float32, error) {
	if n < 0 || n >= i.it.GetOutputTensorCount() {
		return nil, fmt.Errorf("output %d out of range", n)
	}
	t := i.it.GetOutputTensor(n)
	if t.Type() != tflite.Float32 {
		return nil, fmt.Errorf("output %d is %v, not float32", n, t.Type())
	}
	return t.Float32s(), nil
}

// Describe returns the interpreter's inputs and outputs as the manifest records them.
func (i *Interpreter) Describe() (inputs, outputs []TensorInfo) {
	for n := 0; n < i.it.GetInputTensorCount(); n++ {
		inputs = append(inputs, tensorInfo(i.it.GetInputTensor(n)))
	}
	for n := 0; n < i.it.GetOutputTensorCount(); n++ {
		outputs = append(outputs, tensorInfo(i.it.GetOutputTensor(n)))
	}
	return inputs, outputs
}

func tensorInfo(t *tflite.Tensor) TensorInfo {
	shape := make([]int, t.NumDims())
	for d := range shape {
		shape[d] = t.Dim(d)
	}
	return TensorInfo{Name: t.Name(), Shape: shape, Type: dtypeName(t.Type())}
}

func dtypeName(t tflite.TensorType) string {
	switch t {
	case tflite.Float32:
		return "float32"
	case tflite.Int8:
		return "int8"
	case tflite.UInt8:
		return "uint8"
	case tflite.Int32:
		return "int32"
	}
	return t.String()
}

// Inspect loads a model file without a manifest entry and describes its tensors.
func Inspect(b []byte) (inputs, outputs []TensorInfo, err error) {
	tm := tflite.NewModel(b)
	if tm == nil {
		return nil, nil, fmt.Errorf("TFLite cannot parse the model")
	}
	defer tm.Delete()
	it, err := newInterpreter(tm, ModelOptions{Delegate: DelegateNone, Threads: 1, Pool: 1})
	if err != nil {
		return nil, nil, err
	}
	defer it.close()
	in, out := it.Describe()
	return in, out, nil
}

// File returns the verified bytes of a non-network file listed in the
// manifest (such as the canonical face geometry).
func (r *Runtime) File(name string) ([]byte, error) {
	info, err := r.manifest.Find(name)
	if err != nil {
		return nil, err
	}
	return VerifyFile(info, filepath.Join(r.opts.Dir, info.File))
}
