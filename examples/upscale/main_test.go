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
)

func pngSize(t *testing.T, path string) (int, int) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	return img.Bounds().Dx(), img.Bounds().Dy()
}

// A pixel-space model: the small convolutional test model, "trained" at
// 8x8 with 2 channels, upscaled 8 -> 16 -> 32 by every method.
func TestPixelModel(t *testing.T) {
	ortest.Require(t)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-model", "../../testdata/onnx/dynamic.onnx", "-trained", "8", "-channels", "2",
		"-sizes", "16,32", "-n", "2", "-cols", "2", "-steps", "4", "-threads", "1", "-out", out}, &stdout, &stderr)
	require.NoError(t, err, "%s", stderr.String())
	for _, f := range []string{"ug_0_32.png", "ug-stages_0_16.png", "ug-stages_1_32.png", "refine_0_8.png", "refine_1_16.png", "refine_2_32.png", "scalediff_2_32.png"} {
		require.Contains(t, stdout.String(), filepath.Join(out, f))
	}
	// Two 32x32 images side by side with 2 pixels around and between.
	w, h := pngSize(t, filepath.Join(out, "scalediff_2_32.png"))
	require.Equal(t, [2]int{2*32 + 3*2, 32 + 2*2}, [2]int{w, h})
	w, _ = pngSize(t, filepath.Join(out, "compare_32.png"))
	require.Equal(t, 4*(2*32+3*2)+3*12, w, "four methods side by side, 12 pixels apart")
	require.Contains(t, stderr.String(), "scalediff")
}

// A latent model: the tiny random-weight Stable Diffusion folder at 64
// pixels (8x8 latents), upscaled to 128 through its VAE.
func TestLatentModel(t *testing.T) {
	ortest.Require(t)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-model", "../../testdata/sdtiny/fp32", "-sample-size", "64", "-prompt", "a cat",
		"-sizes", "128", "-n", "2", "-steps", "4", "-threads", "1", "-methods", "refine,scalediff,ug", "-out", out}, &stdout, &stderr)
	require.NoError(t, err, "%s", stderr.String())
	require.Contains(t, stdout.String(), filepath.Join(out, "scalediff_1_128.png"))
	require.Contains(t, stdout.String(), filepath.Join(out, "refine_0_64.png"))
	require.Contains(t, stdout.String(), "(refine, scalediff, ug)")
	w, h := pngSize(t, filepath.Join(out, "ug_0_128.png"))
	require.Equal(t, [2]int{2*128 + 3*2, 128 + 2*2}, [2]int{w, h})
}

// The shipped Fashion-MNIST model with the shipped ESRGAN x4 model: 28 ->
// 112 by the network, then refined.
func TestSuperResolution(t *testing.T) {
	ortest.Require(t)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-sr", "../../testdata/models/esrgan_slim_x4.onnx", "-sizes", "112",
		"-methods", "refine,sr,sr-refine", "-n", "2", "-cols", "2", "-steps", "4", "-threads", "1", "-out", out}, &stdout, &stderr)
	require.NoError(t, err, "%s", stderr.String())
	for _, f := range []string{"sr_1_112.png", "sr-refine_1_112.png", "sr-refine_2_112.png"} {
		require.Contains(t, stdout.String(), filepath.Join(out, f))
	}
	w, h := pngSize(t, filepath.Join(out, "sr-refine_2_112.png"))
	require.Equal(t, [2]int{2*112 + 3*2, 112 + 2*2}, [2]int{w, h})
	require.Contains(t, stdout.String(), "(refine, sr, sr-refine)")
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-methods", "ug,magic"}, "unknown method"},
		{[]string{"-sizes", "56,28"}, "increase"},
		{[]string{"-sizes", "x"}, "positive size"},
		{[]string{"-strength", "-0.1"}, "strength"},
		{[]string{"-cutoff", "2"}, "cutoff"},
		{[]string{"-filter", "spline"}, "unknown strategy"},
		{[]string{"-n", "0"}, "positive"},
		{[]string{"extra"}, "unexpected"},
		{[]string{"-methods", "sr"}, "needs a super-resolution model"},
		{[]string{"-sr", "m.onnx", "-sr-scale", "0"}, "-sr-scale"},
		{[]string{"-device", "gpu"}, "invalid device"},
		{[]string{"-device", "webgpu:0"}, "invalid device"},
	} {
		_, err := parse(tc.args, &bytes.Buffer{})
		require.Error(t, err, "%v", tc.args)
		require.True(t, strings.Contains(err.Error(), tc.want), "%v: %v", tc.args, err)
	}
	require.ErrorContains(t, checkSizes([]int{56, 60}, 28, 1), "60")
	o, err := parse(nil, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, methods, o.methods)
	require.Equal(t, "bicubic", o.filter.String())
	require.Equal(t, "cpu", o.device.String())
	o, err = parse([]string{"-device", "webgpu", "-threads", "2"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "webgpu", o.device.String())
	require.Len(t, o.onnx, 2, "threads and the WebGPU provider")
}
