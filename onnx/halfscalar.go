//go:build !windows

package onnx

/*
#cgo linux LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

// ONNX Runtime's C API is a table of function pointers (struct OrtApi in
// onnxruntime_c_api.h) that only ever grows: an entry keeps its index in
// every release. These are the indices of the entries used here, all present
// since API version 1.
enum {
	ugoGetErrorMessage = 2,
	ugoCreateTensorAsOrtValue = 48,
	ugoGetTensorMutableData = 51,
	ugoGetAllocatorWithDefaultOptions = 78,
	ugoReleaseStatus = 93,
	ugoReleaseValue = 96,
};

enum { ugoFloat16 = 10 }; // ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16

typedef struct {
	void *(*GetApi)(uint32_t version);
	const char *(*GetVersionString)(void);
} ugoApiBase;

typedef void *(*ugoStatusFn1)(void *);
typedef void *(*ugoStatusFn2)(void *, void *);
typedef void *(*ugoCreateTensorFn)(void *, const int64_t *, size_t, int, void **);
typedef const char *(*ugoMessageFn)(void *);
typedef void (*ugoReleaseFn)(void *);

static void **ugoApi;

// ugoLoadApi finds the API table of the ONNX Runtime library at path, which
// the binding has already loaded (dlopen returns the same library). It
// returns NULL or an error text.
static const char *ugoLoadApi(const char *path) {
	void *h = dlopen(path, RTLD_LAZY);
	if (h == NULL) {
		return dlerror();
	}
	ugoApiBase *(*base)(void) = (ugoApiBase *(*)(void))dlsym(h, "OrtGetApiBase");
	if (base == NULL) {
		return "the library has no OrtGetApiBase";
	}
	void **api = (void **)base()->GetApi(1);
	if (api == NULL) {
		return "the library does not offer API version 1";
	}
	ugoApi = api;
	return NULL;
}

static const char *ugoErrorMessage(void *status) {
	return ((ugoMessageFn)ugoApi[ugoGetErrorMessage])(status);
}

static void ugoReleaseStatusFn(void *status) {
	((ugoReleaseFn)ugoApi[ugoReleaseStatus])(status);
}

static void ugoReleaseValueFn(void *value) {
	((ugoReleaseFn)ugoApi[ugoReleaseValue])(value);
}

// ugoNewHalfScalar creates a rank-0 float16 tensor in memory that ONNX
// Runtime allocates, and returns it and the address of its element. It
// returns NULL or an OrtStatus.
static void *ugoNewHalfScalar(void **value, uint16_t **data) {
	void *alloc = NULL;
	void *st = ((ugoStatusFn1)ugoApi[ugoGetAllocatorWithDefaultOptions])(&alloc);
	if (st != NULL) {
		return st;
	}
	int64_t none = 0;
	st = ((ugoCreateTensorFn)ugoApi[ugoCreateTensorAsOrtValue])(alloc, &none, 0, ugoFloat16, value);
	if (st != NULL) {
		return st;
	}
	void *p = NULL;
	st = ((ugoStatusFn2)ugoApi[ugoGetTensorMutableData])(*value, &p);
	if (st != NULL) {
		ugoReleaseValueFn(*value);
		*value = NULL;
		return st;
	}
	*data = (uint16_t *)p;
	return NULL;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// halfScalar is a rank-0 float16 tensor, which onnxruntime_go cannot create
// (its tensors need at least one dimension, and its scalars have no float16
// type) but optimum's float16 exports take as their timestep since optimum
// 1.24. The tensor is created through ONNX Runtime's C API in memory
// ONNX Runtime owns; set writes its element.
//
// A session reads an input only through GetInternals, which returns the
// tensor's OrtValue. The other methods of ort.Value mention the binding's
// cgo types, which no other package can name, so they come from an embedded
// placeholder scalar: DataType reports float32, the placeholder's type.
type halfScalar struct {
	*ort.Scalar[float32]
	value     unsafe.Pointer // OrtValue*
	data      *C.uint16_t
	internals *ort.ValueInternalData
}

// valueInternals has the layout of ort.ValueInternalData, a struct holding
// one OrtValue pointer (checked by halfScalarSupported).
type valueInternals struct{ value unsafe.Pointer }

var halfAPI struct {
	once sync.Once
	err  error
}

// loadHalfAPI finds the C API table once, after the runtime is initialised.
func loadHalfAPI() error {
	halfAPI.once.Do(func() {
		t := reflect.TypeFor[ort.ValueInternalData]()
		if t.NumField() != 1 || t.Field(0).Type.Kind() != reflect.Pointer {
			halfAPI.err = errors.New("onnx: this onnxruntime_go version's ValueInternalData is not one OrtValue pointer")
			return
		}
		runtimeState.mu.Lock()
		path := runtimeState.path
		runtimeState.mu.Unlock()
		if path == "" {
			halfAPI.err = errors.New("onnx: float16 scalars need the ONNX Runtime library loaded by this package (InitRuntime)")
			return
		}
		cpath := C.CString(path)
		defer C.free(unsafe.Pointer(cpath))
		if msg := C.ugoLoadApi(cpath); msg != nil {
			halfAPI.err = fmt.Errorf("onnx: finding ONNX Runtime's C API in %s: %s", path, C.GoString(msg))
		}
	})
	return halfAPI.err
}

// newHalfScalar returns a rank-0 float16 tensor holding the half-precision
// bits v.
func newHalfScalar(v uint16) (*halfScalar, error) {
	if err := loadHalfAPI(); err != nil {
		return nil, err
	}
	placeholder, err := ort.NewEmptyScalar[float32]()
	if err != nil {
		return nil, err
	}
	h := &halfScalar{Scalar: placeholder}
	if st := C.ugoNewHalfScalar(&h.value, &h.data); st != nil {
		msg := C.GoString(C.ugoErrorMessage(st))
		C.ugoReleaseStatusFn(st)
		placeholder.Destroy()
		return nil, fmt.Errorf("onnx: creating a float16 scalar: %s", msg)
	}
	h.internals = (*ort.ValueInternalData)(unsafe.Pointer(&valueInternals{value: h.value}))
	h.set(v)
	return h, nil
}

// set writes the half-precision bits v into the tensor.
func (h *halfScalar) set(v uint16) { *h.data = C.uint16_t(v) }

// GetInternals returns the float16 tensor's OrtValue, for Run.
func (h *halfScalar) GetInternals() *ort.ValueInternalData { return h.internals }

// GetShape returns the empty shape of a scalar.
func (h *halfScalar) GetShape() ort.Shape { return ort.Shape{} }

// Destroy releases the tensor and the placeholder.
func (h *halfScalar) Destroy() error {
	if h.value != nil {
		C.ugoReleaseValueFn(h.value)
		h.value, h.data, h.internals = nil, nil, nil
	}
	if h.Scalar != nil {
		err := h.Scalar.Destroy()
		h.Scalar = nil
		return err
	}
	return nil
}
