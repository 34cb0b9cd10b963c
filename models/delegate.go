package models

/*
#cgo LDFLAGS: -ltensorflowlite_c -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tensorflow/lite/c/common.h"

// The XNNPACK delegate's options struct is not in the shipped 2.9 headers. The
// library reads num_threads and flags and treats the zeroed rest as defaults;
// the padding leaves room for fields it may read that we do not name.
typedef struct {
	int32_t num_threads;
	uint32_t flags;
	void* reserved[8];
} imageapid_xnnpack_options;

TfLiteDelegate* TfLiteXNNPackDelegateCreate(const imageapid_xnnpack_options* options);
void TfLiteXNNPackDelegateDelete(TfLiteDelegate* delegate);

static TfLiteDelegate* imageapid_xnnpack_create(int threads) {
	imageapid_xnnpack_options o = {0};
	o.num_threads = threads;
	o.flags = 1u | 2u; // signed and unsigned 8-bit quantized kernels
	return TfLiteXNNPackDelegateCreate(&o);
}

// ---- Run-time loading ----

static void* imageapid_dlopen(const char* path, char* err, size_t n) {
	void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) snprintf(err, n, "%s", dlerror());
	return h;
}

static void* imageapid_dlsym(void* h, const char* name, char* err, size_t n) {
	dlerror();
	void* p = dlsym(h, name);
	if (p == NULL) {
		const char* e = dlerror();
		snprintf(err, n, "%s", e ? e : "symbol is NULL");
	}
	return p;
}

typedef void (*imageapid_delete_fn)(TfLiteDelegate*);

// ---- The counting wrapper every delegate is applied through ----
//
// TFLite's C API says nothing about which nodes a delegate took. The wrapper's
// Prepare runs the delegate's own Prepare and compares the execution plan
// before and after: every partition the delegate claimed became one node with
// builtin code DELEGATE (51 in TFLite's builtin_ops.h, not shipped).
enum { imageapid_builtin_delegate = 51 };

typedef struct {
	TfLiteDelegate outer; // what the interpreter sees; data_ points back here
	TfLiteDelegate* inner;
	imageapid_delete_fn destroy;
	int prepare_called;
	int prepare_status;
	int nodes_before;
	int nodes_claimed;
	int partitions;
} imageapid_wrapped;

static int imageapid_count_plan(TfLiteContext* ctx, int* delegate_nodes) {
	TfLiteIntArray* plan = NULL;
	*delegate_nodes = 0;
	if (ctx->GetExecutionPlan(ctx, &plan) != kTfLiteOk || plan == NULL) return -1;
	int size = plan->size;
	for (int i = 0; i < size; i++) {
		TfLiteNode* node = NULL;
		TfLiteRegistration* reg = NULL;
		if (ctx->GetNodeAndRegistration(ctx, plan->data[i], &node, &reg) == kTfLiteOk && reg != NULL &&
			reg->builtin_code == imageapid_builtin_delegate) {
			(*delegate_nodes)++;
		}
	}
	return size;
}

static TfLiteStatus imageapid_wrapped_prepare(TfLiteContext* ctx, TfLiteDelegate* d) {
	imageapid_wrapped* w = (imageapid_wrapped*)d->data_;
	int kernels_before = 0, kernels_after = 0;
	int before = imageapid_count_plan(ctx, &kernels_before);
	TfLiteStatus st = w->inner->Prepare(ctx, w->inner);
	w->prepare_called = 1;
	w->prepare_status = (int)st;
	if (st == kTfLiteOk) {
		int after = imageapid_count_plan(ctx, &kernels_after);
		w->nodes_before = before;
		w->partitions = kernels_after - kernels_before;
		// Each partition replaced k nodes with one.
		w->nodes_claimed = before - after + w->partitions;
	}
	return st;
}

static TfLiteStatus imageapid_wrapped_copy_from(TfLiteContext* ctx, TfLiteDelegate* d, TfLiteBufferHandle h, TfLiteTensor* t) {
	imageapid_wrapped* w = (imageapid_wrapped*)d->data_;
	return w->inner->CopyFromBufferHandle(ctx, w->inner, h, t);
}

static TfLiteStatus imageapid_wrapped_copy_to(TfLiteContext* ctx, TfLiteDelegate* d, TfLiteBufferHandle h, TfLiteTensor* t) {
	imageapid_wrapped* w = (imageapid_wrapped*)d->data_;
	return w->inner->CopyToBufferHandle(ctx, w->inner, h, t);
}

static void imageapid_wrapped_free(TfLiteContext* ctx, TfLiteDelegate* d, TfLiteBufferHandle* h) {
	imageapid_wrapped* w = (imageapid_wrapped*)d->data_;
	w->inner->FreeBufferHandle(ctx, w->inner, h);
}

static imageapid_wrapped* imageapid_wrap(TfLiteDelegate* inner, void* destroy) {
	imageapid_wrapped* w = (imageapid_wrapped*)calloc(1, sizeof(imageapid_wrapped));
	if (w == NULL) return NULL;
	w->inner = inner;
	w->destroy = (imageapid_delete_fn)destroy;
	w->prepare_status = -1;
	w->outer.data_ = w;
	w->outer.Prepare = imageapid_wrapped_prepare;
	w->outer.flags = inner->flags;
	if (inner->CopyFromBufferHandle) w->outer.CopyFromBufferHandle = imageapid_wrapped_copy_from;
	if (inner->CopyToBufferHandle) w->outer.CopyToBufferHandle = imageapid_wrapped_copy_to;
	if (inner->FreeBufferHandle) w->outer.FreeBufferHandle = imageapid_wrapped_free;
	return w;
}

static void imageapid_call_delete(void* destroy, TfLiteDelegate* d) {
	if (destroy != NULL && d != NULL) ((imageapid_delete_fn)destroy)(d);
}

static void imageapid_unwrap_delete(imageapid_wrapped* w) {
	if (w->destroy != NULL && w->inner != NULL) w->destroy(w->inner);
	free(w);
}

static void* imageapid_xnnpack_delete_fn(void) { return (void*)TfLiteXNNPackDelegateDelete; }

// ---- GPU (TfLiteGpuDelegateV2Create, as built for Jetson and ARM boards) ----
//
// TfLiteGpuDelegateOptionsV2 of TFLite 2.9 (delegates/gpu/delegate.h). The
// library fills it through TfLiteGpuDelegateOptionsV2Default; the padding
// leaves room for fields a newer build may add (the struct is returned in
// memory the caller provides, so a larger buffer is safe).
typedef struct {
	int32_t is_precision_loss_allowed;
	int32_t inference_preference;
	int32_t inference_priority1;
	int32_t inference_priority2;
	int32_t inference_priority3;
	int64_t experimental_flags;
	int32_t max_delegated_partitions;
	const char* serialization_dir;
	const char* model_token;
	char reserved[128];
} imageapid_gpu_options;

typedef imageapid_gpu_options (*imageapid_gpu_default_fn)(void);
typedef TfLiteDelegate* (*imageapid_gpu_create_fn)(const imageapid_gpu_options*);

static void imageapid_gpu_defaults(void* fn, imageapid_gpu_options* o) {
	*o = ((imageapid_gpu_default_fn)fn)();
}

static TfLiteDelegate* imageapid_gpu_create(void* fn, const imageapid_gpu_options* o) {
	return ((imageapid_gpu_create_fn)fn)(o);
}

// ---- Coral Edge TPU (libedgetpu's edgetpu_c.h) ----
typedef struct { int type; const char* path; } imageapid_edgetpu_device;
typedef struct { const char* name; const char* value; } imageapid_edgetpu_option;
typedef imageapid_edgetpu_device* (*imageapid_edgetpu_list_fn)(size_t*);
typedef void (*imageapid_edgetpu_free_devices_fn)(imageapid_edgetpu_device*);
typedef TfLiteDelegate* (*imageapid_edgetpu_create_fn)(int, const char*, const imageapid_edgetpu_option*, size_t);

// want_type: -1 any, 0 PCIe, 1 USB; want_index counts devices of that type.
static TfLiteDelegate* imageapid_edgetpu_create(void* list, void* free_devices, void* create,
	int want_type, int want_index, const char** names, const char** values, size_t n, char* err, size_t errn) {
	size_t num = 0;
	imageapid_edgetpu_device* devs = ((imageapid_edgetpu_list_fn)list)(&num);
	int seen = 0;
	TfLiteDelegate* d = NULL;
	int found = 0;
	for (size_t i = 0; i < num; i++) {
		if (want_type >= 0 && devs[i].type != want_type) continue;
		if (seen++ != want_index) continue;
		found = 1;
		imageapid_edgetpu_option opts[64];
		size_t k = n < 64 ? n : 64;
		for (size_t j = 0; j < k; j++) { opts[j].name = names[j]; opts[j].value = values[j]; }
		d = ((imageapid_edgetpu_create_fn)create)(devs[i].type, devs[i].path, opts, k);
		if (d == NULL) snprintf(err, errn, "edgetpu_create_delegate failed for device %s", devs[i].path);
		break;
	}
	if (!found) snprintf(err, errn, "no matching Edge TPU device (%zu found)", num);
	if (devs != NULL) ((imageapid_edgetpu_free_devices_fn)free_devices)(devs);
	return d;
}

// ---- External delegate plugins (tflite_plugin_create_delegate) ----
typedef TfLiteDelegate* (*imageapid_plugin_create_fn)(char**, char**, size_t, void (*)(const char*));

// The plugin reports why create failed through this callback, on the calling thread.
static __thread char imageapid_plugin_error[512];

static void imageapid_plugin_report(const char* msg) {
	size_t used = strlen(imageapid_plugin_error);
	if (used > 0 && used + 2 < sizeof(imageapid_plugin_error)) {
		strcat(imageapid_plugin_error, "; ");
		used += 2;
	}
	snprintf(imageapid_plugin_error + used, sizeof(imageapid_plugin_error) - used, "%s", msg);
}

static TfLiteDelegate* imageapid_plugin_create(void* fn, char** keys, char** values, size_t n, char* err, size_t errn) {
	imageapid_plugin_error[0] = 0;
	TfLiteDelegate* d = ((imageapid_plugin_create_fn)fn)(keys, values, n, imageapid_plugin_report);
	if (d == NULL) snprintf(err, errn, "%s", imageapid_plugin_error[0] ? imageapid_plugin_error : "tflite_plugin_create_delegate returned NULL");
	return d;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

// Delegate kinds a model can be configured with. Estimators never see them:
// they get interpreters from the runtime, which picks the delegate.
const (
	DelegateXNNPACK  = "xnnpack"
	DelegateNone     = "none"
	DelegateGPU      = "gpu"
	DelegateEdgeTPU  = "edgetpu"
	DelegateExternal = "external"
	// DelegateNNAPI is Android's Neural Networks API; it is named so that the
	// config check can say why it is refused on Linux.
	DelegateNNAPI = "nnapi"
)

// Libraries loaded at run time when the config names none. They are looked up
// the way dlopen does (the binary's run path, LD_LIBRARY_PATH, ld.so.cache), so
// one binary runs on boxes with and without them.
const (
	DefaultGPULibrary     = "libtensorflowlite_gpu_delegate.so"
	DefaultEdgeTPULibrary = "libedgetpu.so.1"
)

// gpuOptionKeys are the delegate_options a gpu model accepts (TFLite's
// TfLiteGpuDelegateOptionsV2 fields).
var gpuOptionKeys = []string{"precision_loss_allowed", "inference_preference", "inference_priority1",
	"inference_priority2", "inference_priority3", "experimental_flags", "max_delegated_partitions",
	"serialization_dir", "model_token"}

// delegate is what go-tflite's InterpreterOptions.AddDelegate takes.
type delegate interface {
	Delete()
	Ptr() unsafe.Pointer
}

// ValidateDelegate reports whether kind names a delegate this build supports.
func ValidateDelegate(kind string) error {
	switch kind {
	case DelegateXNNPACK, DelegateNone, DelegateGPU, DelegateEdgeTPU, DelegateExternal, "":
		return nil
	case DelegateNNAPI:
		return errors.New("delegate nnapi is Android's Neural Networks API and exists only on Android; " +
			"on Linux use gpu (Jetson/Mali), edgetpu (Coral), external (a vendor's TFLite plugin) or xnnpack")
	}
	return fmt.Errorf("unknown delegate %q (supported: %s, %s, %s, %s, %s)", kind,
		DelegateXNNPACK, DelegateNone, DelegateGPU, DelegateEdgeTPU, DelegateExternal)
}

// Validate checks a model's delegate settings as a whole, before anything loads.
func (mo ModelOptions) Validate() error {
	if err := ValidateDelegate(mo.Delegate); err != nil {
		return err
	}
	switch mo.Delegate {
	case DelegateXNNPACK, DelegateNone, "":
		if mo.Library != "" || len(mo.DelegateOptions) > 0 {
			return fmt.Errorf("delegate_library and delegate_options apply to gpu, edgetpu and external, not %q", mo.Delegate)
		}
	case DelegateExternal:
		if mo.Library == "" {
			return errors.New("delegate external needs delegate_library: the plugin's .so (it exports tflite_plugin_create_delegate)")
		}
	case DelegateGPU:
		if _, err := gpuOptions(mo.DelegateOptions); err != nil {
			return err
		}
	case DelegateEdgeTPU:
		if _, _, err := edgeTPUDevice(mo.DelegateOptions["device"]); err != nil {
			return err
		}
	}
	return nil
}

// delegateHandle is one delegate instance wrapped so that the runtime can see
// whether it prepared and how many nodes it took.
type delegateHandle struct {
	w *C.imageapid_wrapped
	// keep holds C strings the delegate may read for its whole life.
	keep []*C.char
}

func (h *delegateHandle) Ptr() unsafe.Pointer { return unsafe.Pointer(&h.w.outer) }

func (h *delegateHandle) Delete() {
	if h.w != nil {
		C.imageapid_unwrap_delete(h.w)
		h.w = nil
	}
	for _, s := range h.keep {
		C.free(unsafe.Pointer(s))
	}
	h.keep = nil
}

// delegateReport is what a delegate did to one interpreter's graph.
type delegateReport struct {
	prepared   bool
	rejected   bool // Prepare returned an error
	nodes      int  // nodes in the execution plan before delegation
	claimed    int
	partitions int
}

func (h *delegateHandle) report() delegateReport {
	return delegateReport{
		prepared:   h.w.prepare_called != 0,
		rejected:   h.w.prepare_called != 0 && h.w.prepare_status != 0,
		nodes:      int(h.w.nodes_before),
		claimed:    int(h.w.nodes_claimed),
		partitions: int(h.w.partitions),
	}
}

func wrap(d *C.TfLiteDelegate, destroy unsafe.Pointer, keep []*C.char) (*delegateHandle, error) {
	w := C.imageapid_wrap(d, destroy)
	if w == nil {
		C.imageapid_call_delete(destroy, d)
		freeAll(keep)
		return nil, errors.New("out of memory wrapping the delegate")
	}
	return &delegateHandle{w: w, keep: keep}, nil
}

// newDelegate creates one delegate instance for one interpreter; nil means
// plain CPU kernels. Errors say why the delegate is unavailable on this box.
func newDelegate(mo ModelOptions) (*delegateHandle, error) {
	switch mo.Delegate {
	case DelegateNone:
		return nil, nil
	case DelegateXNNPACK, "":
		d := C.imageapid_xnnpack_create(C.int(mo.Threads))
		if d == nil {
			return nil, errors.New("TfLiteXNNPackDelegateCreate returned NULL")
		}
		return wrap(d, C.imageapid_xnnpack_delete_fn(), nil)
	case DelegateGPU:
		return newGPUDelegate(mo)
	case DelegateEdgeTPU:
		return newEdgeTPUDelegate(mo)
	case DelegateExternal:
		return newPluginDelegate(mo)
	}
	return nil, ValidateDelegate(mo.Delegate)
}

// library is a shared object opened at run time. Handles are never closed:
// delegate libraries keep threads and driver state that do not survive
// dlclose, and the loader counts references anyway.
type library struct {
	name string
	h    unsafe.Pointer
}

func openLibrary(name string) (*library, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var buf [512]C.char
	h := C.imageapid_dlopen(cname, &buf[0], C.size_t(len(buf)))
	if h == nil {
		return nil, errors.New(C.GoString(&buf[0]))
	}
	return &library{name: name, h: h}, nil
}

func (l *library) symbol(name string) (unsafe.Pointer, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var buf [512]C.char
	p := C.imageapid_dlsym(l.h, cname, &buf[0], C.size_t(len(buf)))
	if p == nil {
		return nil, fmt.Errorf("%s: %s", l.name, C.GoString(&buf[0]))
	}
	return p, nil
}

func (l *library) symbols(names ...string) ([]unsafe.Pointer, error) {
	out := make([]unsafe.Pointer, len(names))
	for i, n := range names {
		p, err := l.symbol(n)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func newGPUDelegate(mo ModelOptions) (*delegateHandle, error) {
	set, err := gpuOptions(mo.DelegateOptions)
	if err != nil {
		return nil, err
	}
	lib, err := openLibrary(orDefault(mo.Library, DefaultGPULibrary))
	if err != nil {
		return nil, err
	}
	fns, err := lib.symbols("TfLiteGpuDelegateOptionsV2Default", "TfLiteGpuDelegateV2Create", "TfLiteGpuDelegateV2Delete")
	if err != nil {
		return nil, err
	}
	var o C.imageapid_gpu_options
	C.imageapid_gpu_defaults(fns[0], &o)
	var keep []*C.char
	for k, v := range set {
		switch k {
		case "precision_loss_allowed":
			o.is_precision_loss_allowed = C.int32_t(v.(int64))
		case "inference_preference":
			o.inference_preference = C.int32_t(v.(int64))
		case "inference_priority1":
			o.inference_priority1 = C.int32_t(v.(int64))
		case "inference_priority2":
			o.inference_priority2 = C.int32_t(v.(int64))
		case "inference_priority3":
			o.inference_priority3 = C.int32_t(v.(int64))
		case "experimental_flags":
			o.experimental_flags = C.int64_t(v.(int64))
		case "max_delegated_partitions":
			o.max_delegated_partitions = C.int32_t(v.(int64))
		case "serialization_dir", "model_token":
			s := C.CString(v.(string))
			keep = append(keep, s)
			if k == "serialization_dir" {
				o.serialization_dir = s
			} else {
				o.model_token = s
			}
		}
	}
	d := C.imageapid_gpu_create(fns[1], &o)
	if d == nil {
		for _, s := range keep {
			C.free(unsafe.Pointer(s))
		}
		return nil, fmt.Errorf("%s: TfLiteGpuDelegateV2Create returned NULL (no usable GPU, or an OpenCL/OpenGL driver problem)", lib.name)
	}
	return wrap(d, fns[2], keep)
}

// gpuOptions parses a gpu model's delegate_options: numbers, or the names
// TFLite's enums use, for the preference and priorities.
func gpuOptions(kv map[string]string) (map[string]any, error) {
	enums := map[string]map[string]int64{
		"inference_preference": {"fast_single_answer": 0, "sustained_speed": 1},
		"inference_priority":   {"auto": 0, "max_precision": 1, "min_latency": 2, "min_memory_usage": 3},
	}
	out := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		v := kv[k]
		switch k {
		case "serialization_dir", "model_token":
			out[k] = v
			continue
		case "precision_loss_allowed":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("gpu option %s=%q: want true or false", k, v)
			}
			out[k] = int64(0)
			if b {
				out[k] = int64(1)
			}
			continue
		}
		if !slices.Contains(gpuOptionKeys, k) {
			return nil, fmt.Errorf("unknown gpu option %q (known: %s)", k, strings.Join(gpuOptionKeys, ", "))
		}
		enum := enums[strings.TrimRight(k, "123")]
		if n, ok := enum[v]; ok {
			out[k] = n
			continue
		}
		n, err := strconv.ParseInt(v, 0, 64)
		if err != nil {
			want := "a number"
			if len(enum) > 0 {
				want += " or one of " + strings.Join(slices.Sorted(maps.Keys(enum)), ", ")
			}
			return nil, fmt.Errorf("gpu option %s=%q: want %s", k, v, want)
		}
		out[k] = n
	}
	return out, nil
}

// edgeTPUDevice parses the edgetpu "device" option the way Coral's tools
// spell it: "" or ":N" (any type), "usb", "usb:N", "pci", "pci:N".
func edgeTPUDevice(s string) (typ, index int, err error) {
	typ = -1
	name, num, hasNum := strings.Cut(s, ":")
	switch name {
	case "":
	case "pci":
		typ = 0
	case "usb":
		typ = 1
	default:
		return 0, 0, fmt.Errorf("edgetpu option device=%q: want usb, pci, usb:N, pci:N or :N", s)
	}
	if hasNum {
		if index, err = strconv.Atoi(num); err != nil || index < 0 {
			return 0, 0, fmt.Errorf("edgetpu option device=%q: bad index", s)
		}
	}
	return typ, index, nil
}

func newEdgeTPUDelegate(mo ModelOptions) (*delegateHandle, error) {
	typ, index, err := edgeTPUDevice(mo.DelegateOptions["device"])
	if err != nil {
		return nil, err
	}
	lib, err := openLibrary(orDefault(mo.Library, DefaultEdgeTPULibrary))
	if err != nil {
		return nil, err
	}
	fns, err := lib.symbols("edgetpu_list_devices", "edgetpu_free_devices", "edgetpu_create_delegate", "edgetpu_free_delegate")
	if err != nil {
		return nil, err
	}
	// Everything but "device" goes to libedgetpu as its own options
	// (e.g. Performance=Max, Usb.AlwaysDfu=True).
	keys, values := cStrings(mo.DelegateOptions, "device")
	defer freeAll(keys, values)
	var buf [512]C.char
	d := C.imageapid_edgetpu_create(fns[0], fns[1], fns[2], C.int(typ), C.int(index),
		cArray(keys), cArray(values), C.size_t(len(keys)), &buf[0], C.size_t(len(buf)))
	if d == nil {
		return nil, fmt.Errorf("%s: %s", lib.name, C.GoString(&buf[0]))
	}
	return wrap(d, fns[3], nil)
}

func newPluginDelegate(mo ModelOptions) (*delegateHandle, error) {
	lib, err := openLibrary(mo.Library)
	if err != nil {
		return nil, err
	}
	fns, err := lib.symbols("tflite_plugin_create_delegate", "tflite_plugin_destroy_delegate")
	if err != nil {
		return nil, err
	}
	keys, values := cStrings(mo.DelegateOptions, "")
	defer freeAll(keys, values)
	var buf [512]C.char
	d := C.imageapid_plugin_create(fns[0], cArray(keys), cArray(values), C.size_t(len(keys)), &buf[0], C.size_t(len(buf)))
	if d == nil {
		return nil, fmt.Errorf("%s: create: %s", lib.name, C.GoString(&buf[0]))
	}
	return wrap(d, fns[1], nil)
}

// cStrings returns kv's keys and values (sorted by key, skipping skip) as C
// strings the caller frees.
func cStrings(kv map[string]string, skip string) (keys, values []*C.char) {
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		if k == skip {
			continue
		}
		keys = append(keys, C.CString(k))
		values = append(values, C.CString(kv[k]))
	}
	return keys, values
}

func freeAll(lists ...[]*C.char) {
	for _, l := range lists {
		for _, s := range l {
			C.free(unsafe.Pointer(s))
		}
	}
}

// cArray passes a Go slice of C pointers as char**; the slice's backing array
// holds only C pointers, which cgo allows.
func cArray(s []*C.char) **C.char {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}
