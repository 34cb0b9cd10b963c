package models

/*
#cgo LDFLAGS: -ltensorflowlite_c
#include <stdint.h>
#include <stdlib.h>
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
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Delegate kinds a model can be configured with. Adding an accelerator means
// adding a kind here and a case in newDelegate; estimators never change.
const (
	DelegateXNNPACK = "xnnpack"
	DelegateNone    = "none"
)

// delegate is what go-tflite's InterpreterOptions.AddDelegate takes.
type delegate interface {
	Delete()
	Ptr() unsafe.Pointer
}

// ValidateDelegate reports whether kind names a delegate this build supports.
func ValidateDelegate(kind string) error {
	switch kind {
	case DelegateXNNPACK, DelegateNone, "":
		return nil
	}
	return fmt.Errorf("unknown delegate %q (supported: %s, %s)", kind, DelegateXNNPACK, DelegateNone)
}

// newDelegate creates one delegate instance for one interpreter; nil means plain CPU kernels.
func newDelegate(kind string, threads int) (delegate, error) {
	switch kind {
	case DelegateNone:
		return nil, nil
	case DelegateXNNPACK, "":
		d := C.imageapid_xnnpack_create(C.int(threads))
		if d == nil {
			return nil, fmt.Errorf("create XNNPACK delegate")
		}
		return &xnnpackDelegate{d: d}, nil
	}
	return nil, ValidateDelegate(kind)
}

type xnnpackDelegate struct{ d *C.TfLiteDelegate }

func (x *xnnpackDelegate) Delete() {
	if x.d != nil {
		C.TfLiteXNNPackDelegateDelete(x.d)
		x.d = nil
	}
}

func (x *xnnpackDelegate) Ptr() unsafe.Pointer { return unsafe.Pointer(x.d) }
