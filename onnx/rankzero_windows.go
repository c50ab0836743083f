//go:build windows

package onnx

import (
	"errors"

	ort "github.com/yalue/onnxruntime_go"
)

// rankZero would be a reusable rank-0 tensor; on Windows the C API shim
// that creates one is not built, so float16 scalars are refused and other
// scalar timesteps are created per call.
type rankZero struct{ ort.Value }

var errNoRankZero = errors.New("onnx: rank-0 float16 inputs (optimum's float16 timesteps) are not supported on Windows")

func newRankZero(DType) (*rankZero, error)    { return nil, errNoRankZero }
func newHalfScalar(uint16) (*rankZero, error) { return nil, errNoRankZero }
func (r *rankZero) setFloat32(float32)        {}
func (r *rankZero) setFloat16(uint16)         {}
func (r *rankZero) setFloat64(float64)        {}
func (r *rankZero) setInt64(int64)            {}
func (r *rankZero) setInt32(int32)            {}
