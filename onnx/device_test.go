package onnx

import (
	"errors"
	"flag"
	"io"
	"maps"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func TestParseDevice(t *testing.T) {
	good := []struct {
		in   string
		want Device
		str  string
	}{
		{"cpu", Device{Kind: DeviceCPU}, "cpu"},
		{"CPU", Device{Kind: DeviceCPU}, "cpu"},
		{" cuda ", Device{Kind: DeviceCUDA}, "cuda"},
		{"cuda:0", Device{Kind: DeviceCUDA}, "cuda"},
		{"cuda:3", Device{Kind: DeviceCUDA, ID: 3}, "cuda:3"},
		{"TensorRT:1", Device{Kind: DeviceTensorRT, ID: 1}, "tensorrt:1"},
		{"tensorrt", Device{Kind: DeviceTensorRT}, "tensorrt"},
		{"webgpu", Device{Kind: DeviceWebGPU}, "webgpu"},
		{"WebGPU", Device{Kind: DeviceWebGPU}, "webgpu"},
	}
	for _, tc := range good {
		got, err := ParseDevice(tc.in)
		if err != nil || got != tc.want || got.String() != tc.str {
			t.Errorf("ParseDevice(%q) = %+v (%q), %v; want %+v (%q)", tc.in, got, got.String(), err, tc.want, tc.str)
		}
	}
	for _, in := range []string{"", "gpu", "cuda:", "cuda:-1", "cuda:+1", "cuda:01", "cuda:1.5", "cuda:x", "cuda:1:2",
		"webgpu:0", "webgpu:1", "cpu:0", "vulkan", "tpu", "cuda 1", "cuda:99999999999999999999"} {
		d, err := ParseDevice(in)
		if !errors.Is(err, ErrInvalidDevice) {
			t.Errorf("ParseDevice(%q) = %+v, %v; want an error wrapping ErrInvalidDevice", in, d, err)
		}
	}
	var zero Device
	if zero.String() != "cpu" || len(zero.Options()) != 0 {
		t.Errorf("zero Device = %q with %d options, want the CPU", zero.String(), len(zero.Options()))
	}
}

// TestParseDeviceProperties: every valid device round-trips through
// String, and any string either parses to a device whose String parses back
// to it or fails with ErrInvalidDevice.
func TestParseDeviceProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		kind := rapid.SampledFrom(DeviceKinds).Draw(t, "kind")
		d := Device{Kind: kind}
		if kind == DeviceCUDA || kind == DeviceTensorRT {
			d.ID = rapid.IntRange(0, 1<<20).Draw(t, "id")
		}
		back, err := ParseDevice(d.String())
		if err != nil || back != d {
			t.Fatalf("ParseDevice(%q) = %+v, %v; want %+v", d.String(), back, err, d)
		}
		if strings.ToUpper(d.String()) != d.String() {
			if up, err := ParseDevice(strings.ToUpper(d.String())); err != nil || up != d {
				t.Fatalf("upper case %q: %+v, %v", strings.ToUpper(d.String()), up, err)
			}
		}
	})
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.OneOf(
			rapid.String(),
			rapid.Map(rapid.IntRange(-3, 30), func(n int) string { return "cuda:" + strconv.Itoa(n) }),
			rapid.StringMatching(`(cpu|cuda|tensorrt|webgpu|gpu)(:[0-9a-z+-]{0,3})?`),
		).Draw(t, "s")
		d, err := ParseDevice(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidDevice) {
				t.Fatalf("ParseDevice(%q): %v does not wrap ErrInvalidDevice", s, err)
			}
			return
		}
		if back, err := ParseDevice(d.String()); err != nil || back != d {
			t.Fatalf("ParseDevice(%q) = %+v, whose String %q parses to %+v, %v", s, d, d.String(), back, err)
		}
		if d.check() != nil {
			t.Fatalf("ParseDevice(%q) returned an invalid %+v", s, d)
		}
	})
}

// TestDeviceOptions checks the providers each device asks for, in order.
func TestDeviceOptions(t *testing.T) {
	cases := []struct {
		dev   Device
		names []string
		id    string
	}{
		{Device{Kind: DeviceCPU}, nil, ""},
		{Device{}, nil, ""},
		{Device{Kind: DeviceCUDA, ID: 2}, []string{"CUDAExecutionProvider"}, "2"},
		{Device{Kind: DeviceTensorRT, ID: 1}, []string{"TensorrtExecutionProvider", "CUDAExecutionProvider"}, "1"},
		{Device{Kind: DeviceWebGPU}, []string{WebGPUProvider}, ""},
	}
	for _, tc := range cases {
		c := &config{}
		for _, o := range tc.dev.Options() {
			o(c)
		}
		if len(c.errs) > 0 {
			t.Fatalf("%v: %v", tc.dev, c.errs)
		}
		var names []string
		for _, p := range c.providers {
			names = append(names, p.name)
			if got := p.options["device_id"]; got != tc.id {
				t.Errorf("%v: %s device_id = %q, want %q", tc.dev, p.name, got, tc.id)
			}
		}
		if strings.Join(names, ",") != strings.Join(tc.names, ",") {
			t.Errorf("%v: providers %v, want %v", tc.dev, names, tc.names)
		}
	}
	for _, bad := range []Device{{Kind: "gpu"}, {Kind: DeviceCUDA, ID: -1}, {Kind: DeviceWebGPU, ID: 1}, {Kind: DeviceCPU, ID: 2}} {
		_, err := Open(modelPath("dynamic.onnx"), bad.Options()...)
		if !errors.Is(err, ErrInvalidDevice) {
			t.Errorf("Open with %+v: %v, want an error wrapping ErrInvalidDevice", bad, err)
		}
	}
}

// TestWithWebGPUOptions: the options map is copied, and kept as given.
func TestWithWebGPUOptions(t *testing.T) {
	in := map[string]string{"powerPreference": "high-performance"}
	c := &config{}
	WithWebGPU(in)(c)
	in["powerPreference"] = "low-power"
	if len(c.providers) != 1 || c.providers[0].kind != "webgpu" ||
		!maps.Equal(c.providers[0].options, map[string]string{"powerPreference": "high-performance"}) {
		t.Fatalf("providers = %+v", c.providers)
	}
}

func TestDeviceFlag(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var d Device
	fs.Var(&d, "device", "")
	if err := fs.Parse([]string{"-device", "cuda:1"}); err != nil || d != (Device{Kind: DeviceCUDA, ID: 1}) {
		t.Fatalf("-device cuda:1: %+v, %v", d, err)
	}
	fs = flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&d, "device", "")
	if err := fs.Parse([]string{"-device", "opencl"}); err == nil || !strings.Contains(err.Error(), "invalid device") {
		t.Fatalf("-device opencl: %v", err)
	}
	if d != (Device{Kind: DeviceCUDA, ID: 1}) {
		t.Fatalf("a refused value changed the flag: %+v", d)
	}
}
