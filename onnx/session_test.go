package onnx

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

func openSession(tb testing.TB, name string) *Session {
	tb.Helper()
	requireRuntime(tb)
	s, err := OpenSession(modelPath(name))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSessionRunMatchesReference(t *testing.T) {
	s := openSession(t, "dynamic.onnx")
	info := s.Info()
	require.Len(t, info.Inputs, 2)
	require.Equal(t, "eps", info.Outputs[0].Name)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, shape := range [][]int{{1, 2, 4, 4}, {3, 2, 6, 10}} {
		x := randDense(rng, shape...)
		ts := make([]float32, shape[0])
		for i := range ts {
			ts[i] = float32(100*i) + 12.5
		}
		tt := tensor.New(tensor.WithShape(shape[0]), tensor.WithBacking(ts))
		out := zerosLike(x)
		require.NoError(t, s.Run(context.Background(), map[string]*tensor.Dense{"x": x, "t": tt}, map[string]*tensor.Dense{"eps": out}))
		want := reference(x.Float32s(), shape, func(n int) float64 { return float64(ts[n]) }, nil)
		assertClose(t, out.Float32s(), want, 1e-4, "session "+fmtShape(shape))
	}
}

func TestSessionErrors(t *testing.T) {
	s := openSession(t, "dynamic.onnx")
	ctx := context.Background()
	x := tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float32))
	tt := tensor.New(tensor.WithShape(1), tensor.Of(tensor.Float32))
	out := tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float32))
	in := map[string]*tensor.Dense{"x": x, "t": tt}
	outs := map[string]*tensor.Dense{"eps": out}

	require.ErrorContains(t, s.Run(ctx, map[string]*tensor.Dense{"x": x}, outs), "not given")
	require.ErrorContains(t, s.Run(ctx, map[string]*tensor.Dense{"x": x, "t": tt, "y": x}, outs), `no input "y"`)
	require.ErrorContains(t, s.Run(ctx, in, map[string]*tensor.Dense{"nope": out}), `no output "nope"`)
	require.ErrorContains(t, s.Run(ctx, in, nil), "no outputs")
	require.ErrorContains(t, s.Run(ctx, map[string]*tensor.Dense{"x": tensor.New(tensor.WithShape(1, 2, 4), tensor.Of(tensor.Float32)), "t": tt}, outs), "rank")
	require.ErrorContains(t, s.Run(ctx, map[string]*tensor.Dense{"x": tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float64)), "t": tt}, outs), "float32")
	// An output buffer of the wrong size is rejected by the runtime.
	require.Error(t, s.Run(ctx, in, map[string]*tensor.Dense{"eps": tensor.New(tensor.WithShape(1, 2, 4, 5), tensor.Of(tensor.Float32))}))

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, s.Run(cancelled, in, outs), context.Canceled)

	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Run(ctx, in, outs), ErrClosed)
	require.NoError(t, s.Close(), "a second Close is harmless")
}

func TestOpenSessionRejects(t *testing.T) {
	requireRuntime(t)
	_, err := OpenSession(modelPath("fp16.onnx"))
	require.ErrorContains(t, err, "float32 graphs only")
	_, err = OpenSession(modelPath("int64.onnx"))
	require.ErrorContains(t, err, "float32 graphs only")
	_, err = OpenSession(modelPath("missing.onnx"))
	require.Error(t, err)
	var perr *ProviderError
	_, err = OpenSession(modelPath("dynamic.onnx"), WithCUDA(0, nil))
	require.True(t, errors.As(err, &perr), "CUDA on a CPU-only runtime: %v", err)
}
