package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ugo-diffusion/ugo/internal/ortest"
)

var small = []string{"-sizes", "28,56", "-batches", "1,2", "-steps", "2", "-runs", "1", "-threads", "1"}

// TestCPUAgainstItself runs the whole check with the CPU as the device: every
// setting is compared (differences 0), timed on both sides and reported.
func TestCPUAgainstItself(t *testing.T) {
	ortest.Require(t)
	js := filepath.Join(t.TempDir(), "r.json")
	var out, errb bytes.Buffer
	code, err := run(context.Background(), append([]string{"-device", "cpu", "-json", js}, small...), &out, &errb)
	require.NoError(t, err, errb.String())
	require.Equal(t, 0, code, out.String())
	var rep report
	b, err := os.ReadFile(js)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	require.Equal(t, []string{"CPUExecutionProvider"}, rep.Providers)
	// 28: plain at batches 1, 2; 56: plain and guided at batches 1, 2.
	require.Len(t, rep.Results, 6)
	for _, r := range rep.Results {
		require.Empty(t, r.Skipped)
		require.Len(t, r.CPUMs, 1)
		require.Len(t, r.DeviceMs, 1)
		require.Zero(t, float64(r.EpsDiff), "%d %s: the same provider must give the same output", r.Size, r.Mode)
		require.Zero(t, float64(r.SampleDiff))
		require.Greater(t, r.EpsScale, 1.0, "eps of N(0,1) noise")
		require.False(t, r.Mismatch)
	}
	table := out.String()
	require.Contains(t, table, "| 56 | guided | 2 | 1+1 |")
	require.Equal(t, 6, strings.Count(table, "| yes |"), table)
}

// TestUnavailableDevice: a device that cannot be opened is reported with
// the runtime's error, the CPU table still comes, and the status says so.
func TestUnavailableDevice(t *testing.T) {
	ortest.Require(t)
	var out, errb bytes.Buffer
	js := filepath.Join(t.TempDir(), "r.json")
	// CUDA with the CPU-only library of `make ort`.
	code, err := run(context.Background(), append([]string{"-device", "cuda", "-sizes", "28", "-batches", "1", "-json", js}, small[4:]...), &out, &errb)
	require.NoError(t, err, errb.String())
	if code == 0 {
		t.Skip("CUDA is available here")
	}
	require.Equal(t, exitUnavailable, code)
	require.Contains(t, out.String(), "DEVICE cuda UNAVAILABLE: onnx: CUDAExecutionProvider unavailable")
	require.Contains(t, out.String(), "| 28 | plain | 1 | 1 |")
	require.Contains(t, out.String(), " | — | — | — | — | — (", "no device columns")
	var rep report
	b, err := os.ReadFile(js)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	require.Contains(t, rep.Unavailable, "CUDAExecutionProvider")
	require.Len(t, rep.Results, 1)
	r := rep.Results[0]
	require.True(t, math.IsNaN(float64(r.EpsDiff)) && math.IsNaN(float64(r.SampleDiff)), "no device: null differences")
	require.Len(t, r.CPUMs, 1)
	require.Empty(t, r.DeviceMs)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-device", "gpu"}, "invalid device"},
		{[]string{"-sizes", "30"}, "multiple of 28"},
		{[]string{"-batches", "0"}, "positive integer"},
		{[]string{"-steps", "0"}, "positive"},
		{[]string{"-t", "1000"}, "[0, 999]"},
		{[]string{"x"}, "unexpected"},
	} {
		_, err := parse(tc.args, &bytes.Buffer{})
		require.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
	c, err := parse(nil, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "webgpu", c.device.String())
	require.Equal(t, []int{28, 56, 112}, c.sizes)
}

func TestMaxAbsDiff(t *testing.T) {
	require.Equal(t, 0.5, maxAbsDiff([]float32{1, -2, 3}, []float32{1, -2.5, 3}))
	require.True(t, math.IsInf(maxAbsDiff([]float32{float32(math.NaN())}, []float32{0}), 1))
	require.Equal(t, 2.0, median([]float64{3, 1, 2}))
	require.Equal(t, 2.5, median([]float64{4, 1, 2, 3}))
	require.True(t, math.IsNaN(median(nil)))
}
