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

// ugoNewScalar creates a rank-0 tensor of element type elem in memory that
// ONNX Runtime allocates, and returns it and the address of its element. It
// returns NULL or an OrtStatus.
static void *ugoNewScalar(int elem, void **value, void **data) {
	void *alloc = NULL;
	void *st = ((ugoStatusFn1)ugoApi[ugoGetAllocatorWithDefaultOptions])(&alloc);
	if (st != NULL) {
		return st;
	}
	int64_t none = 0;
	st = ((ugoCreateTensorFn)ugoApi[ugoCreateTensorAsOrtValue])(alloc, &none, 0, elem, value);
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
	*data = p;
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

// rankZero is a rank-0 tensor created through ONNX Runtime's C API in
// memory ONNX Runtime owns, and rewritten in place by its set methods. It
// exists because onnxruntime_go cannot create a rank-0 float16 tensor (its
// tensors need at least one dimension, and its scalars have no float16
// type), which optimum's float16 exports take as their timestep since
// optimum 1.24; and because its Scalar.Set replaces the Go slice rather than
// writing the memory ONNX Runtime reads, so its scalars cannot be reused.
//
// A session reads an input only through GetInternals, which returns the
// tensor's OrtValue. The other methods of ort.Value mention the binding's
// cgo types, which no other package can name, so they come from an embedded
// placeholder scalar: DataType reports float32, the placeholder's type.
type rankZero struct {
	*ort.Scalar[float32]
	dt        DType
	value     unsafe.Pointer // OrtValue*
	data      unsafe.Pointer // the element
	internals *ort.ValueInternalData
}

// valueInternals has the layout of ort.ValueInternalData, a struct holding
// one OrtValue pointer (checked by loadScalarAPI).
type valueInternals struct{ value unsafe.Pointer }

var scalarAPI struct {
	once sync.Once
	err  error
}

// loadScalarAPI finds the C API table once, after the runtime is
// initialised.
func loadScalarAPI() error {
	scalarAPI.once.Do(func() {
		t := reflect.TypeFor[ort.ValueInternalData]()
		if t.NumField() != 1 || t.Field(0).Type.Kind() != reflect.Pointer {
			scalarAPI.err = errors.New("onnx: this onnxruntime_go version's ValueInternalData is not one OrtValue pointer")
			return
		}
		runtimeState.mu.Lock()
		path := runtimeState.path
		runtimeState.mu.Unlock()
		if path == "" {
			scalarAPI.err = errors.New("onnx: rank-0 tensors need the ONNX Runtime library loaded by this package (InitRuntime)")
			return
		}
		cpath := C.CString(path)
		defer C.free(unsafe.Pointer(cpath))
		if msg := C.ugoLoadApi(cpath); msg != nil {
			scalarAPI.err = fmt.Errorf("onnx: finding ONNX Runtime's C API in %s: %s", path, C.GoString(msg))
		}
	})
	return scalarAPI.err
}

// onnxElementType returns ONNX's element type code (TensorProto.DataType).
func onnxElementType(dt DType) (C.int, bool) {
	switch dt {
	case Float32:
		return 1, true
	case Int32:
		return 6, true
	case Int64:
		return 7, true
	case Float16:
		return 10, true
	case Float64:
		return 11, true
	}
	return 0, false
}

// newRankZero returns a rank-0 tensor of type dt holding zero.
func newRankZero(dt DType) (*rankZero, error) {
	elem, ok := onnxElementType(dt)
	if !ok {
		return nil, fmt.Errorf("onnx: no rank-0 %s tensor", dt)
	}
	if err := loadScalarAPI(); err != nil {
		return nil, err
	}
	placeholder, err := ort.NewEmptyScalar[float32]()
	if err != nil {
		return nil, err
	}
	r := &rankZero{Scalar: placeholder, dt: dt}
	if st := C.ugoNewScalar(elem, &r.value, &r.data); st != nil {
		msg := C.GoString(C.ugoErrorMessage(st))
		C.ugoReleaseStatusFn(st)
		placeholder.Destroy()
		return nil, fmt.Errorf("onnx: creating a rank-0 %s tensor: %s", dt, msg)
	}
	r.internals = (*ort.ValueInternalData)(unsafe.Pointer(&valueInternals{value: r.value}))
	return r, nil
}

// newHalfScalar returns a rank-0 float16 tensor holding the half-precision
// bits v.
func newHalfScalar(v uint16) (*rankZero, error) {
	r, err := newRankZero(Float16)
	if err == nil {
		r.setFloat16(v)
	}
	return r, err
}

// The set methods write the element; each is for the tensor's own type.
func (r *rankZero) setFloat32(v float32) { *(*float32)(r.data) = v }
func (r *rankZero) setFloat16(v uint16)  { *(*uint16)(r.data) = v }
func (r *rankZero) setFloat64(v float64) { *(*float64)(r.data) = v }
func (r *rankZero) setInt64(v int64)     { *(*int64)(r.data) = v }
func (r *rankZero) setInt32(v int32)     { *(*int32)(r.data) = v }

// GetInternals returns the tensor's OrtValue, for Run.
func (r *rankZero) GetInternals() *ort.ValueInternalData { return r.internals }

// GetShape returns the empty shape of a scalar.
func (r *rankZero) GetShape() ort.Shape { return ort.Shape{} }

// Destroy releases the tensor and the placeholder.
func (r *rankZero) Destroy() error {
	if r.value != nil {
		C.ugoReleaseValueFn(r.value)
		r.value, r.data, r.internals = nil, nil, nil
	}
	if r.Scalar != nil {
		err := r.Scalar.Destroy()
		r.Scalar = nil
		return err
	}
	return nil
}
