package onnx

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

func openGraph(tb testing.TB, path string) *Graph {
	tb.Helper()
	requireRuntime(tb)
	g, err := OpenGraph(path)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = g.Close() })
	return g
}

// TestGraphMatchesReference feeds each test model through Graph with the
// timestep in several Go element types and compares with the Go reference.
func TestGraphMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	ts := []float32{12, 700}
	cases := []struct {
		name  string
		model string
		t     *tensor.Dense
		half  bool
		tol   float64
	}{
		{"float32 t", "dynamic.onnx", tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{12, 700})), false, 1e-4},
		{"float64 t into float32", "dynamic.onnx", tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{12, 700})), false, 1e-4},
		{"int64 t", "int64.onnx", tensor.New(tensor.WithShape(2), tensor.WithBacking([]int64{12, 700})), false, 1e-4},
		{"int32 t into int64", "int64.onnx", tensor.New(tensor.WithShape(2), tensor.WithBacking([]int32{12, 700})), false, 1e-4},
		{"int t into float32", "dynamic.onnx", tensor.New(tensor.WithShape(2), tensor.WithBacking([]int{12, 700})), false, 1e-4},
		{"float16 graph", "fp16.onnx", tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{12, 700})), true, 0.06},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := openGraph(t, modelPath(c.model))
			shape := []int{2, 2, 6, 10}
			x := randDense(rng, shape...)
			out := zerosLike(x)
			require.NoError(t, g.Run(context.Background(), map[string]*tensor.Dense{"x": x, "t": c.t}, map[string]*tensor.Dense{"eps": out}))
			xs := x.Float32s()
			if c.half {
				xs = roundHalf(xs)
			}
			want := reference(xs, shape, func(n int) float64 { return float64(ts[n]) }, nil)
			assertClose(t, out.Float32s(), want, c.tol, c.name)
		})
	}
}

func TestGraphInfo(t *testing.T) {
	g := openGraph(t, modelPath("fp16.onnx"))
	in, ok := g.Input("x")
	require.True(t, ok)
	require.Equal(t, Float16, in.DType)
	require.Equal(t, []int64{-1, 2, -1, -1}, in.Dims)
	out, ok := g.Output("eps")
	require.True(t, ok)
	require.Equal(t, Float16, out.DType)
	_, ok = g.Input("nope")
	require.False(t, ok)
	_, ok = g.Output("nope")
	require.False(t, ok)
	info := g.Info()
	require.Equal(t, "CPUExecutionProvider", info.Providers[len(info.Providers)-1])
	info.Inputs[0].Name = "changed"
	require.Equal(t, "x", g.Info().Inputs[0].Name, "Info returns a copy")
}

func TestGraphErrors(t *testing.T) {
	ctx := context.Background()
	g := openGraph(t, modelPath("int64.onnx"))
	x := tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float32))
	ti := tensor.New(tensor.WithShape(1), tensor.WithBacking([]int64{3}))
	out := tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float32))
	outs := map[string]*tensor.Dense{"eps": out}
	in := map[string]*tensor.Dense{"x": x, "t": ti}
	cases := []struct {
		name    string
		in, out map[string]*tensor.Dense
		want    string
	}{
		{"missing input", map[string]*tensor.Dense{"x": x}, outs, "not given"},
		{"unknown input", map[string]*tensor.Dense{"x": x, "t": ti, "y": x}, outs, `no input "y"`},
		{"nil input", map[string]*tensor.Dense{"x": x, "t": nil}, outs, "nil"},
		{"float into int", map[string]*tensor.Dense{"x": x, "t": tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{3}))}, outs, "cannot feed an int64"},
		{"rank", map[string]*tensor.Dense{"x": tensor.New(tensor.WithShape(2, 4, 4), tensor.Of(tensor.Float32)), "t": ti}, outs, "rank"},
		{"fixed dim", map[string]*tensor.Dense{"x": tensor.New(tensor.WithShape(1, 3, 4, 4), tensor.Of(tensor.Float32)), "t": ti}, outs, "want x[?,2,?,?]"},
		{"unknown output", in, map[string]*tensor.Dense{"nope": out}, `no output "nope"`},
		{"no outputs", in, nil, "no outputs"},
		{"float64 destination", in, map[string]*tensor.Dense{"eps": tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float64))}, "float32 destination"},
		{"wrong output size", in, map[string]*tensor.Dense{"eps": tensor.New(tensor.WithShape(1, 2, 4, 5), tensor.Of(tensor.Float32))}, "inference failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.ErrorContains(t, g.Run(ctx, c.in, c.out), c.want)
		})
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, g.Run(cancelled, in, outs), context.Canceled)
	require.NoError(t, g.Close())
	require.ErrorIs(t, g.Run(ctx, in, outs), ErrClosed)
	require.NoError(t, g.Close(), "a second Close is harmless")
}

func TestGraphNonFinite(t *testing.T) {
	// float16 overflows to infinity past 65504.
	g := openGraph(t, modelPath("fp16.onnx"))
	x := tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float32))
	for i := range x.Float32s() {
		x.Float32s()[i] = 60000
	}
	tt := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{1}))
	err := g.Run(context.Background(), map[string]*tensor.Dense{"x": x, "t": tt}, map[string]*tensor.Dense{"eps": zerosLike(x)})
	require.ErrorIs(t, err, ErrNonFinite)
}

func TestOpenGraphRejects(t *testing.T) {
	requireRuntime(t)
	cases := []struct{ name, path, want string }{
		{"missing", modelPath("missing.onnx"), "no such file"},
		{"directory", filepath.Join("..", "testdata", "onnx"), "is a directory"},
		{"not onnx", filepath.Join("..", "testdata", "onnx", "README.md"), "not a loadable ONNX model"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := OpenGraph(c.path)
			require.ErrorContains(t, err, c.want)
			_, err = Open(c.path)
			require.ErrorContains(t, err, c.want)
		})
	}
	var perr *ProviderError
	_, err := OpenGraph(modelPath("dynamic.onnx"), WithCUDA(0, nil))
	require.True(t, errors.As(err, &perr), "CUDA on a CPU-only runtime: %v", err)
	_, err = OpenGraph(modelPath("dynamic.onnx"), WithThreads(-1, 0))
	require.ErrorContains(t, err, "thread counts")
}

func sdtiny(parts ...string) string {
	return filepath.Join(append([]string{"..", "testdata", "sdtiny"}, parts...)...)
}

// TestGraphOutputs runs the float16 text encoder of the tiny SD pipeline
// (int32 input_ids, float16 last_hidden_state and pooler_output).
func TestGraphOutputs(t *testing.T) {
	requireRuntime(t)
	ctx := context.Background()
	path := sdtiny("fp16", "text_encoder", "model.onnx")
	ids := make([]int32, 2*77)
	for i := range ids {
		ids[i] = int32(49407 - i%3)
	}
	in := map[string]*tensor.Dense{"input_ids": tensor.New(tensor.WithShape(2, 77), tensor.WithBacking(ids))}
	hidden := func() *tensor.Dense { return tensor.New(tensor.WithShape(2, 77, 768), tensor.Of(tensor.Float32)) }
	pooled := func() *tensor.Dense { return tensor.New(tensor.WithShape(2, 768), tensor.Of(tensor.Float32)) }

	all := openGraph(t, path)
	require.Len(t, all.Info().Outputs, 2)
	h1, p1 := hidden(), pooled()
	require.NoError(t, all.Run(ctx, in, map[string]*tensor.Dense{"last_hidden_state": h1, "pooler_output": p1}))
	err := all.Run(ctx, in, map[string]*tensor.Dense{"last_hidden_state": hidden()})
	require.ErrorContains(t, err, "WithOutputs", "an unrequested float16 output cannot be allocated by the binding")

	one, err := OpenGraph(path, WithOutputs("last_hidden_state"))
	require.NoError(t, err)
	defer one.Close()
	require.Len(t, one.Info().Outputs, 1)
	h2 := hidden()
	require.NoError(t, one.Run(ctx, in, map[string]*tensor.Dense{"last_hidden_state": h2}))
	require.Equal(t, h1.Float32s(), h2.Float32s())
	require.ErrorContains(t, one.Run(ctx, in, map[string]*tensor.Dense{"pooler_output": pooled()}), `no output "pooler_output"`)

	// The pooled output is the state at the end token (the largest id).
	for n := range 2 {
		end := 0
		for i := range 77 {
			if ids[n*77+i] > ids[n*77+end] {
				end = i
			}
		}
		require.Equal(t, h1.Float32s()[(n*77+end)*768:(n*77+end+1)*768], p1.Float32s()[n*768:(n+1)*768])
	}

	_, err = OpenGraph(path, WithOutputs("nope"))
	require.ErrorContains(t, err, `no output "nope"`)
}

// TestOpenExternalData loads the tiny pipeline's float32 UNet, whose
// weights live in unet/weights.pb as in diffusers' export, with Open and
// OpenGraph, which both let the runtime resolve them.
func TestOpenExternalData(t *testing.T) {
	requireRuntime(t)
	path := sdtiny("fp32", "unet", "model.onnx")
	m, err := Open(path)
	require.NoError(t, err)
	defer m.Close()
	require.Equal(t, "timestep", m.Info().Timestep.Name)
	require.Equal(t, Int64, m.Info().Timestep.DType)
	ehs := tensor.New(tensor.WithShape(1, 77, 768), tensor.Of(tensor.Float32))
	b, err := m.With("encoder_hidden_states", ehs)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(7, 8))
	x := randDense(rng, 2, 4, 16, 8)
	out := zerosLike(x)
	require.NoError(t, b.PredictNoise(context.Background(), out, x, []float32{500}))

	g := openGraph(t, path)
	out2 := zerosLike(x)
	require.NoError(t, g.Run(context.Background(), map[string]*tensor.Dense{
		"sample": x, "timestep": tensor.New(tensor.WithShape(2), tensor.WithBacking([]int64{500, 500})),
		"encoder_hidden_states": tensor.New(tensor.WithShape(2, 77, 768), tensor.Of(tensor.Float32)),
	}, map[string]*tensor.Dense{"out_sample": out2}))
	require.Equal(t, out.Float32s(), out2.Float32s())
}
