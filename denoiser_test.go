package ugo_test

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

func dense(shape ...int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n)))
}

func TestDenoiserFuncCallsFunction(t *testing.T) {
	var got []float32
	f := ugo.DenoiserFunc(func(_ context.Context, dst, x *tensor.Dense, ts []float32) error {
		got = ts
		copy(dst.Float32s(), x.Float32s())
		return nil
	})
	x := dense(1, 1, 2, 2)
	copy(x.Float32s(), []float32{1, 2, 3, 4})
	dst := dense(1, 1, 2, 2)
	require.NoError(t, f.PredictNoise(context.Background(), dst, x, []float32{7}))
	require.Equal(t, []float32{1, 2, 3, 4}, dst.Float32s())
	require.Equal(t, []float32{7}, got)
}

func TestCheckPrediction(t *testing.T) {
	ok := dense(2, 1, 4, 4)
	tests := []struct {
		name    string
		dst, x  *tensor.Dense
		t       []float32
		wantErr bool
	}{
		{"valid rank 4, one t", dense(2, 1, 4, 4), ok, []float32{3}, false},
		{"valid rank 4, t per element", dense(2, 1, 4, 4), ok, []float32{3, 4}, false},
		{"valid rank 5", dense(1, 2, 3, 4, 4), dense(1, 2, 3, 4, 4), []float32{1}, false},
		{"nil x", dense(2, 1, 4, 4), nil, []float32{1}, true},
		{"nil dst", nil, ok, []float32{1}, true},
		{"rank 3", dense(1, 4, 4), dense(1, 4, 4), []float32{1}, true},
		{"shape mismatch", dense(2, 1, 4, 2), ok, []float32{1}, true},
		{"float64", tensor.New(tensor.WithShape(2, 1, 4, 4), tensor.Of(tensor.Float64)), ok, []float32{1}, true},
		{"three t for two", dense(2, 1, 4, 4), ok, []float32{1, 2, 3}, true},
		{"no t", dense(2, 1, 4, 4), ok, nil, true},
		{"NaN t", dense(2, 1, 4, 4), ok, []float32{float32(math.NaN())}, true},
		{"Inf t", dense(2, 1, 4, 4), ok, []float32{float32(math.Inf(1))}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ugo.CheckPrediction(tc.dst, tc.x, tc.t)
			if tc.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
		})
	}
	var se *ugo.ShapeError
	require.True(t, errors.As(ugo.CheckPrediction(dense(2, 1, 4, 2), ok, []float32{1}), &se))
	require.Equal(t, "dst", se.What)
}

func TestTimestepAt(t *testing.T) {
	require.Equal(t, float32(5), ugo.TimestepAt([]float32{5}, 3))
	require.Equal(t, float32(2), ugo.TimestepAt([]float32{1, 2}, 1))
}

// TestTensorProgramStarts builds and runs a separate program that imports
// gorgonia.org/tensor. With a go4.org/unsafe/assume-no-moving-gc too old for
// the running Go version, such a program panics during init; this test
// proves the pinned version does not.
func TestTensorProgramStarts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	dir := t.TempDir()
	src := `package main

import (
	"fmt"

	"gorgonia.org/tensor"
)

func main() {
	x := tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float32{1, 2, 3, 4}))
	fmt.Println(x.Shape())
}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644))
	modDir, err := os.Getwd()
	require.NoError(t, err)
	bin := filepath.Join(dir, "starts")
	build := exec.Command("go", "build", "-o", bin, filepath.Join(dir, "main.go"))
	build.Dir = modDir // build inside this module so that go.mod's pins apply
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command(bin).CombinedOutput()
	require.NoError(t, err, "program importing gorgonia.org/tensor failed to start: %s", out)
	require.Equal(t, "(2, 2)\n", string(out))
}

func TestCheckPredictionDoesNotAllocate(t *testing.T) {
	x, dst := dense(2, 1, 8, 8), dense(2, 1, 8, 8)
	ts := []float32{1, 2}
	allocs := testing.AllocsPerRun(100, func() {
		if err := ugo.CheckPrediction(dst, x, ts); err != nil {
			t.Fatal(err)
		}
		_ = x.Float32s()
	})
	require.Zero(t, allocs)
}
