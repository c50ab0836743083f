package onnx

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

func openGraph(tb testing.TB, path string) *Graph {
	tb.Helper()
	requireRuntime(tb)
	g, err := OpenGraph(path)
	if err != nil {
		tb.Fatal(err)
	}
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
			if err := g.Run(context.Background(), map[string]*tensor.Dense{"x": x, "t": c.t}, map[string]*tensor.Dense{"eps": out}); err != nil {
				t.Fatal(err)
			}
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
	if !ok || in.DType != Float16 || !slices.Equal(in.Dims, []int64{-1, 2, -1, -1}) {
		t.Errorf("Input(x) = %+v, %v; want float16 [-1 2 -1 -1]", in, ok)
	}
	out, ok := g.Output("eps")
	if !ok || out.DType != Float16 {
		t.Errorf("Output(eps) = %+v, %v; want float16", out, ok)
	}
	if _, ok := g.Input("nope"); ok {
		t.Error("Input(nope) found")
	}
	if _, ok := g.Output("nope"); ok {
		t.Error("Output(nope) found")
	}
	info := g.Info()
	if last := info.Providers[len(info.Providers)-1]; last != "CPUExecutionProvider" {
		t.Errorf("last provider %q, want CPUExecutionProvider", last)
	}
	info.Inputs[0].Name = "changed"
	if name := g.Info().Inputs[0].Name; name != "x" {
		t.Errorf("Info does not return a copy: input renamed %q", name)
	}
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
			wantError(t, g.Run(ctx, c.in, c.out), c.want)
		})
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := g.Run(cancelled, in, outs); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Run(ctx, in, outs); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
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
	if !errors.Is(err, ErrNonFinite) {
		t.Errorf("float16 overflow: %v, want ErrNonFinite", err)
	}
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
			wantError(t, err, c.want)
			_, err = Open(c.path)
			wantError(t, err, c.want)
		})
	}
	var perr *ProviderError
	_, err := OpenGraph(modelPath("dynamic.onnx"), WithCUDA(0, nil))
	if !errors.As(err, &perr) {
		t.Errorf("CUDA on a CPU-only runtime: %v, want a *ProviderError", err)
	}
	_, err = OpenGraph(modelPath("dynamic.onnx"), WithThreads(-1, 0))
	wantError(t, err, "thread counts")
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
	if n := len(all.Info().Outputs); n != 2 {
		t.Fatalf("%d outputs, want 2", n)
	}
	h1, p1 := hidden(), pooled()
	if err := all.Run(ctx, in, map[string]*tensor.Dense{"last_hidden_state": h1, "pooler_output": p1}); err != nil {
		t.Fatal(err)
	}
	err := all.Run(ctx, in, map[string]*tensor.Dense{"last_hidden_state": hidden()})
	// An unrequested float16 output cannot be allocated by the binding.
	wantError(t, err, "WithOutputs")

	one, err := OpenGraph(path, WithOutputs("last_hidden_state"))
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	if n := len(one.Info().Outputs); n != 1 {
		t.Fatalf("%d outputs, want 1", n)
	}
	h2 := hidden()
	if err := one.Run(ctx, in, map[string]*tensor.Dense{"last_hidden_state": h2}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(h1.Float32s(), h2.Float32s()) {
		t.Error("last_hidden_state differs when it is the only output")
	}
	wantError(t, one.Run(ctx, in, map[string]*tensor.Dense{"pooler_output": pooled()}), `no output "pooler_output"`)

	// The pooled output is the state at the end token (the largest id).
	for n := range 2 {
		end := 0
		for i := range 77 {
			if ids[n*77+i] > ids[n*77+end] {
				end = i
			}
		}
		if !slices.Equal(h1.Float32s()[(n*77+end)*768:(n*77+end+1)*768], p1.Float32s()[n*768:(n+1)*768]) {
			t.Errorf("sequence %d: pooler_output is not the state at the end token %d", n, end)
		}
	}

	_, err = OpenGraph(path, WithOutputs("nope"))
	wantError(t, err, `no output "nope"`)
}

// wantError fails t unless err is an error whose message contains want.
func wantError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want one containing %q", err, want)
	}
}

// TestOpenExternalData loads the tiny pipeline's float32 UNet, whose
// weights live in unet/weights.pb as in diffusers' export, with Open and
// OpenGraph, which both let the runtime resolve them.
func TestOpenExternalData(t *testing.T) {
	requireRuntime(t)
	path := sdtiny("fp32", "unet", "model.onnx")
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if ts := m.Info().Timestep; ts.Name != "timestep" || ts.DType != Int64 {
		t.Errorf("timestep input %q (%s), want timestep (int64)", ts.Name, ts.DType)
	}
	ehs := tensor.New(tensor.WithShape(1, 77, 768), tensor.Of(tensor.Float32))
	b, err := m.With("encoder_hidden_states", ehs)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	x := randDense(rng, 2, 4, 16, 8)
	out := zerosLike(x)
	if err := b.PredictNoise(context.Background(), out, x, []float32{500}); err != nil {
		t.Fatal(err)
	}

	g := openGraph(t, path)
	out2 := zerosLike(x)
	if err := g.Run(context.Background(), map[string]*tensor.Dense{
		"sample": x, "timestep": tensor.New(tensor.WithShape(2), tensor.WithBacking([]int64{500, 500})),
		"encoder_hidden_states": tensor.New(tensor.WithShape(2, 77, 768), tensor.Of(tensor.Float32)),
	}, map[string]*tensor.Dense{"out_sample": out2}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.Float32s(), out2.Float32s()) {
		t.Error("Open and OpenGraph predict differently")
	}
}

// TestInspect reads the names of an SDXL text encoder's 35 outputs without
// a session, and refuses what OpenGraph refuses.
func TestInspect(t *testing.T) {
	requireRuntime(t)
	gi, err := Inspect(sdtiny("xl16", "text_encoder_2", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if len(gi.Inputs) != 1 || gi.Inputs[0].Name != "input_ids" || gi.Inputs[0].DType != Int64 {
		t.Errorf("inputs %v, want input_ids int64", gi.Inputs)
	}
	if n := len(gi.Outputs); n != 35 || gi.Outputs[0].Name != "text_embeds" || gi.Outputs[34].Name != "hidden_states.32" {
		t.Errorf("%d outputs %v, want text_embeds, last_hidden_state, hidden_states.0..32", n, gi.Outputs)
	}
	if gi.Outputs[0].DType != Float16 || len(gi.Providers) != 0 {
		t.Errorf("text_embeds %v, providers %v", gi.Outputs[0], gi.Providers)
	}
	if _, err := Inspect(filepath.Join(t.TempDir(), "missing.onnx")); err == nil {
		t.Error("Inspect of a missing file: nil error")
	}
}
