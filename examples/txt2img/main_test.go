package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ugo-diffusion/ugo/internal/ortest"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/pipeline"
)

func TestRun(t *testing.T) {
	ortest.Require(t)
	out := filepath.Join(t.TempDir(), "out.png")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-model", "../../testdata/sdtiny/fp16", "-prompt", "a photo of a cat",
		"-size", "192x128", "-steps", "3", "-seed", "1", "-images", "2", "-sample-size", "64", "-threads", "1",
		"-tile", "always", "-tile-size", "8", "-tile-overlap", "2", "-memstats", "-out", out}, &stdout, &stderr)
	require.NoError(t, err, "%s", stderr.String())
	require.Contains(t, stdout.String(), "192x128, 3 ddim steps")
	require.Contains(t, stdout.String(), "Upsample Guidance factors 2x3")
	require.Contains(t, stdout.String(), "peak resident memory")
	require.Contains(t, stderr.String(), "denoise [")
	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	require.Equal(t, 2*192+3*8, img.Bounds().Dx(), "two images, 8 grey pixels around and between")
	require.Equal(t, 128+2*8, img.Bounds().Dy())
}

// TestRunSDXL draws from the tiny float16 SDXL export at twice its
// training size, and refuses the refiner.
func TestRunSDXL(t *testing.T) {
	ortest.Require(t)
	out := filepath.Join(t.TempDir(), "xl.png")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-model", "../../testdata/sdtiny/xl16", "-prompt", "a photo of a cat",
		"-size", "256x256", "-steps", "3", "-seed", "1", "-threads", "1", "-sampler", "euler", "-quiet", "-out", out}, &stdout, &stderr)
	require.NoError(t, err, "%s", stderr.String())
	require.Contains(t, stdout.String(), "SDXL: two text encoders, 64-wide pooled embedding")
	require.Contains(t, stdout.String(), "Upsample Guidance factors 2x2")
	_, err = os.Stat(out)
	require.NoError(t, err)
	err = run(context.Background(), []string{"-model", "../../testdata/sdtiny/xlrefiner", "-prompt", "x", "-quiet", "-out", out}, &stdout, &stderr)
	require.ErrorIs(t, err, pipeline.ErrUnsupported)
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{}, "-model is required"},
		{[]string{"-model", "m", "-size", "big"}, "-size"},
		{[]string{"-model", "m", "-ug-factor", "2y"}, "-ug-factor"},
		{[]string{"-model", "m", "-tile", "sometimes"}, "-tile"},
		{[]string{"-model", "m", "-provider", "tpu"}, "-provider"},
		{[]string{"-model", "m", "-device", "tpu"}, "invalid device"},
		{[]string{"-model", "m", "-device", "webgpu:1"}, "invalid device"},
		{[]string{"-model", "m", "-device", "cuda:-1"}, "invalid device"},
		{[]string{"-model", "m", "-device", "2"}, "needs -provider"},
		{[]string{"-model", "m", "-provider", "tensorrt", "-device", "cuda"}, "disagree"},
		{[]string{"-model", "m", "extra"}, "unexpected arguments"},
		{[]string{"-nope"}, "not defined"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			_, err := parse(c.args, &bytes.Buffer{})
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestParseDevice(t *testing.T) {
	cases := []struct {
		args []string
		want onnx.Device
	}{
		{nil, onnx.Device{Kind: onnx.DeviceCPU}},
		{[]string{"-device", "webgpu"}, onnx.Device{Kind: onnx.DeviceWebGPU}},
		{[]string{"-device", "cuda:2"}, onnx.Device{Kind: onnx.DeviceCUDA, ID: 2}},
		{[]string{"-device", "TensorRT"}, onnx.Device{Kind: onnx.DeviceTensorRT}},
		{[]string{"-provider", "cuda"}, onnx.Device{Kind: onnx.DeviceCUDA}},
		{[]string{"-provider", "cuda", "-device", "1"}, onnx.Device{Kind: onnx.DeviceCUDA, ID: 1}},
		{[]string{"-provider", "tensorrt", "-device", "tensorrt:3"}, onnx.Device{Kind: onnx.DeviceTensorRT, ID: 3}},
		{[]string{"-provider", "cpu", "-device", "0"}, onnx.Device{Kind: onnx.DeviceCPU}},
	}
	for _, c := range cases {
		o, err := parse(append([]string{"-model", "m"}, c.args...), &bytes.Buffer{})
		require.NoError(t, err, "%v", c.args)
		require.Equal(t, c.want, o.device, "%v", c.args)
		require.Len(t, o.onnx, len(c.want.Options()), "%v: the device's options are passed on", c.args)
	}
}

func TestParse(t *testing.T) {
	o, err := parse([]string{"-model", "m", "-size", "1536x1024", "-ug-factor", "2x3", "-cfg", "0", "-seed", "7", "-ug-nearest"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, 1536, o.req.Width)
	require.Equal(t, 1024, o.req.Height)
	require.Equal(t, []int{2, 3}, o.req.Upsample.Factors)
	require.Equal(t, 0.0, *o.req.GuidanceScale, "-cfg 0 turns CFG off, as guidance_scale=0.0 in diffusers")
	require.Equal(t, uint64(7), o.req.Seed)
	o, err = parse([]string{"-model", "m", "-ug-factor", "off"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Zero(t, o.req.Upsample.Theta)
}

func TestRunMissingModel(t *testing.T) {
	ortest.Require(t)
	err := run(context.Background(), []string{"-model", t.TempDir(), "-quiet"}, &bytes.Buffer{}, &bytes.Buffer{})
	require.ErrorContains(t, err, "missing scheduler/scheduler_config.json")
}
