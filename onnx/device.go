package onnx

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The device kinds a Device names.
const (
	DeviceCPU      = "cpu"      // ONNX Runtime's CPU provider only
	DeviceCUDA     = "cuda"     // WithCUDA
	DeviceTensorRT = "tensorrt" // WithTensorRT, then WithCUDA for what TensorRT cannot take
	DeviceWebGPU   = "webgpu"   // WithWebGPU
)

// DeviceKinds lists the device kinds ParseDevice accepts, for help texts.
var DeviceKinds = []string{DeviceCPU, DeviceCUDA, DeviceTensorRT, DeviceWebGPU}

// ErrInvalidDevice is wrapped by the errors of ParseDevice and Device.Set.
var ErrInvalidDevice = errors.New("invalid device")

// Device names where a model runs, in the form command-line programs take
// it: "cpu", "cuda" or "cuda:N" (GPU N), "tensorrt" or "tensorrt:N", and
// "webgpu" (WebGPU has no device index; see WithWebGPU). The zero value is
// the CPU. A *Device is a flag.Value:
//
//	dev := onnx.Device{Kind: onnx.DeviceCPU}
//	flag.Var(&dev, "device", "cpu, cuda[:N], tensorrt[:N] or webgpu")
//	...
//	m, err := onnx.Open(path, dev.Options()...)
type Device struct {
	// Kind is one of DeviceKinds; "" means DeviceCPU.
	Kind string
	// ID is the GPU index for CUDA and TensorRT; it must be 0 otherwise.
	ID int
}

// ParseDevice parses a device name such as "cuda:1" (see Device). Names are
// case-insensitive; anything else is an error wrapping ErrInvalidDevice.
func ParseDevice(s string) (Device, error) {
	kind, id, hasID := strings.Cut(strings.ToLower(strings.TrimSpace(s)), ":")
	d := Device{Kind: kind}
	switch kind {
	case DeviceCPU, DeviceCUDA, DeviceTensorRT, DeviceWebGPU:
	default:
		return Device{}, fmt.Errorf("onnx: %w %q: want %s", ErrInvalidDevice, s, deviceForms)
	}
	if hasID {
		if kind != DeviceCUDA && kind != DeviceTensorRT {
			return Device{}, fmt.Errorf("onnx: %w %q: only cuda and tensorrt take a device index", ErrInvalidDevice, s)
		}
		n, err := strconv.Atoi(id)
		if err != nil || n < 0 || id != strconv.Itoa(n) {
			return Device{}, fmt.Errorf("onnx: %w %q: the device index must be a non-negative integer", ErrInvalidDevice, s)
		}
		d.ID = n
	}
	return d, nil
}

const deviceForms = "cpu, cuda, cuda:N, tensorrt, tensorrt:N or webgpu"

// String returns the name ParseDevice parses back to d: the kind, followed
// by ":N" for a CUDA or TensorRT device other than 0.
func (d Device) String() string {
	k := d.Kind
	if k == "" {
		k = DeviceCPU
	}
	if d.ID != 0 {
		return k + ":" + strconv.Itoa(d.ID)
	}
	return k
}

// Set implements flag.Value: it parses s with ParseDevice.
func (d *Device) Set(s string) error {
	v, err := ParseDevice(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Options returns the options that select d: none for the CPU, WithCUDA,
// WithTensorRT followed by WithCUDA (nodes TensorRT cannot take then run on
// CUDA), or WithWebGPU, each with default provider options. Add
// WithFallback to choose what happens when the GPU is unavailable. A Device
// that ParseDevice would not return gives an option that makes Open fail
// with an error wrapping ErrInvalidDevice.
func (d Device) Options() []Option {
	if err := d.check(); err != nil {
		return []Option{func(c *config) { c.errs = append(c.errs, err) }}
	}
	switch d.Kind {
	case DeviceCUDA:
		return []Option{WithCUDA(d.ID, nil)}
	case DeviceTensorRT:
		return []Option{WithTensorRT(d.ID, nil), WithCUDA(d.ID, nil)}
	case DeviceWebGPU:
		return []Option{WithWebGPU(nil)}
	}
	return nil
}

// check reports a Device that ParseDevice cannot return.
func (d Device) check() error {
	switch d.Kind {
	case "", DeviceCPU, DeviceWebGPU:
		if d.ID != 0 {
			return fmt.Errorf("onnx: %w: %s with index %d (only cuda and tensorrt take a device index)", ErrInvalidDevice, d.String(), d.ID)
		}
	case DeviceCUDA, DeviceTensorRT:
		if d.ID < 0 {
			return fmt.Errorf("onnx: %w: negative device index %d", ErrInvalidDevice, d.ID)
		}
	default:
		return fmt.Errorf("onnx: %w: kind %q (want %s)", ErrInvalidDevice, d.Kind, strings.Join(DeviceKinds, ", "))
	}
	return nil
}
