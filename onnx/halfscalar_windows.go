//go:build windows

package onnx

import (
	"errors"

	ort "github.com/yalue/onnxruntime_go"
)

// halfScalar would be a rank-0 float16 tensor; on Windows the C API shim
// that creates one is not built.
type halfScalar struct{ ort.Value }

func newHalfScalar(uint16) (*halfScalar, error) {
	return nil, errors.New("onnx: rank-0 float16 inputs (optimum's float16 timesteps) are not supported on Windows")
}

func (h *halfScalar) set(uint16) {}
