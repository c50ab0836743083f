package ugo

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime/debug"
	"sync/atomic"
	"unsafe"

	"gorgonia.org/tensor"
)

// ErrNonFinite is wrapped by every error that reports a NaN or an infinity
// where a finite number was required: a model output (from any backend), a
// guided prediction whose arithmetic overflowed float32, or a sampler step
// whose result left the float32 range. errors.Is(err, ErrNonFinite) holds
// for all of them, whichever package returned the error; the packages'
// own ErrNonFinite names are aliases of this value.
var ErrNonFinite = errors.New("non-finite value")

// ErrNilDenoiser is wrapped by the error a constructor or a call returns
// when a Denoiser argument is nil, including a typed nil (a nil pointer, map
// or func stored in the interface), which a plain d == nil test misses.
var ErrNilDenoiser = errors.New("nil Denoiser")

// ErrAlias is wrapped by the error CheckPrediction returns when dst and x
// share memory. A Denoiser reads x after it has started writing dst (the
// guidance middleware does, and concurrently), so dst == x would silently
// give a different result.
var ErrAlias = errors.New("dst shares memory with x")

// ErrTooLarge is wrapped by a *MemoryError: a request whose estimated
// memory exceeds MemoryLimit.
var ErrTooLarge = errors.New("request too large")

// FirstNonFinite returns the index of the first NaN or infinity in v, or -1.
func FirstNonFinite(v []float32) int {
	// f - f is +0 for every finite f and NaN for NaN and the infinities,
	// and a sum with a NaN term is NaN: sixteen elements are checked with
	// one comparison (four independent sums), and only a block that fails
	// is searched. About four times faster than testing math.IsNaN and
	// math.IsInf element by element.
	i := 0
	for ; i+16 <= len(v); i += 16 {
		w := (*[16]float32)(v[i : i+16])
		a := (w[0] - w[0]) + (w[1] - w[1]) + (w[2] - w[2]) + (w[3] - w[3])
		b := (w[4] - w[4]) + (w[5] - w[5]) + (w[6] - w[6]) + (w[7] - w[7])
		c := (w[8] - w[8]) + (w[9] - w[9]) + (w[10] - w[10]) + (w[11] - w[11])
		d := (w[12] - w[12]) + (w[13] - w[13]) + (w[14] - w[14]) + (w[15] - w[15])
		if a+b+c+d != 0 {
			break
		}
	}
	for ; i < len(v); i++ {
		if v[i]-v[i] != 0 {
			return i
		}
	}
	return -1
}

// CheckFinite returns an error wrapping ErrNonFinite that names what and
// the first offending index when v holds a NaN or an infinity, and nil
// otherwise. It does not allocate when v is finite.
func CheckFinite(what string, v []float32) error {
	if i := FirstNonFinite(v); i >= 0 {
		return fmt.Errorf("%s: %w %v at index %d", what, ErrNonFinite, v[i], i)
	}
	return nil
}

// IsNil reports whether d is nil or holds a nil pointer, map, slice, chan
// or func (a typed nil, such as the *onnx.Model of a failed Open). d is
// usually a Denoiser; any interface value works (a sampler.Solver, a
// noise.Source).
func IsNil(d any) bool {
	if d == nil {
		return true
	}
	v := reflect.ValueOf(d)
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.Interface, reflect.UnsafePointer:
		return v.IsNil()
	}
	return false
}

// CheckDenoiser returns an error wrapping ErrNilDenoiser, naming the
// argument, when IsNil(d), and nil otherwise. Constructors of middleware
// call it so that a nil model is refused when it is wrapped, not when it is
// first called.
func CheckDenoiser(name string, d Denoiser) error {
	if IsNil(d) {
		if d == nil {
			return fmt.Errorf("ugo: %s: %w", name, ErrNilDenoiser)
		}
		return fmt.Errorf("ugo: %s: %w (a nil %T)", name, ErrNilDenoiser, d)
	}
	return nil
}

// DefaultMemoryLimit is the initial MemoryLimit: 16 GiB, or the Go
// runtime's soft memory limit (GOMEMLIMIT, debug.SetMemoryLimit) when that
// is lower.
const DefaultMemoryLimit int64 = 16 << 30

var memoryLimit atomic.Int64

func init() {
	limit := DefaultMemoryLimit
	if l := debug.SetMemoryLimit(-1); l > 0 && l < limit {
		limit = l
	}
	memoryLimit.Store(limit)
}

// MemoryLimit returns the number of bytes a single request may need before
// the packages of ugo refuse it with a *MemoryError: a sampling run (the
// sample and the sampler's buffers), a guided call's workspace, a pipeline
// request (latents, images), an example program's batch. The estimates
// count ugo's own buffers, not the memory a backend such as ONNX Runtime
// uses inside a model call.
func MemoryLimit() int64 { return memoryLimit.Load() }

// SetMemoryLimit sets MemoryLimit to bytes and returns the previous limit.
// bytes <= 0 removes the limit (math.MaxInt64). It is safe for concurrent
// use; requests already checked are not affected.
func SetMemoryLimit(bytes int64) int64 {
	if bytes <= 0 {
		bytes = math.MaxInt64
	}
	return memoryLimit.Swap(bytes)
}

// MemoryError reports a request whose estimated memory exceeds
// MemoryLimit. It wraps ErrTooLarge.
type MemoryError struct {
	// What describes the request, such as "sampler: a 2x4x8192x8192 sample".
	What string
	// Need is the estimated number of bytes (math.MaxInt64 when the
	// estimate itself overflows), Limit the MemoryLimit it exceeds.
	Need, Limit int64
}

// Error implements error.
func (e *MemoryError) Error() string {
	need := "more than 8 EiB"
	if e.Need < math.MaxInt64 {
		need = formatBytes(e.Need)
	}
	return fmt.Sprintf("%s would need %s, more than the memory limit of %s (ugo.SetMemoryLimit)", e.What, need, formatBytes(e.Limit))
}

// Unwrap returns ErrTooLarge.
func (e *MemoryError) Unwrap() error { return ErrTooLarge }

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), 0
	for f >= unit && i < 6 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTPE"[i-1])
}

// CheckMemory returns a *MemoryError when need bytes exceed MemoryLimit
// (or need is negative, an overflowed estimate), and nil otherwise. what
// describes the request in the error.
func CheckMemory(what string, need int64) error {
	limit := MemoryLimit()
	if need < 0 {
		need = math.MaxInt64
	}
	if need > limit {
		return &MemoryError{What: what, Need: need, Limit: limit}
	}
	return nil
}

// TensorBytes returns the number of bytes of copies float32 tensors of the
// given shape, or math.MaxInt64 when the product overflows or a dimension
// is negative. It is the building block of memory estimates.
func TensorBytes(copies int, shape ...int) int64 {
	n := int64(4)
	if copies < 0 {
		return math.MaxInt64
	}
	for _, d := range append([]int{copies}, shape...) {
		if d < 0 {
			return math.MaxInt64
		}
		if d != 0 && n > math.MaxInt64/int64(d) {
			return math.MaxInt64
		}
		n *= int64(d)
	}
	return n
}

// overlaps reports whether two float32 slices share memory.
func overlaps(a, b []float32) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	pa, pb := uintptr(unsafe.Pointer(unsafe.SliceData(a))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	ea, eb := pa+uintptr(len(a))*4, pb+uintptr(len(b))*4
	return pa < eb && pb < ea
}

// Overlapping reports whether the backing slices of two float32 tensors
// share memory (dst == x, or views of one buffer). Both must be float32.
func Overlapping(a, b *tensor.Dense) bool {
	return overlaps(a.Float32s(), b.Float32s())
}
