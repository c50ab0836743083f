package onnx

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

func dense32(shape ...int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n)))
}

// noErrorText fails when an error message shows a formatting failure.
func noErrorText(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "%!") {
		t.Fatalf("malformed error text: %q", err)
	}
}

// TestNilReceivers calls every method on nil values of the package's types,
// as a caller does after ignoring a failed Open: errors, never panics.
func TestNilReceivers(t *testing.T) {
	ctx := context.Background()
	x, dst := dense32(1, 2, 4, 4), dense32(1, 2, 4, 4)
	var m *Model
	if err := ugo.CheckDenoiser("model", m); !errors.Is(err, ugo.ErrNilDenoiser) {
		t.Fatalf("CheckDenoiser(nil *Model) = %v", err)
	}
	err := m.PredictNoise(ctx, dst, x, []float32{1})
	if !errors.Is(err, ugo.ErrNilDenoiser) || !errors.Is(err, ErrClosed) {
		t.Fatalf("nil Model PredictNoise: %v", err)
	}
	noErrorText(t, err)
	if mi := m.Info(); mi.Path != "" {
		t.Fatal("nil Model Info not empty")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.With("c", x); !errors.Is(err, ErrClosed) {
		t.Fatalf("nil Model With: %v", err)
	}
	var b *Bound
	if b.Model() != nil {
		t.Fatal("nil Bound Model")
	}
	if _, err := b.With("c", x); !errors.Is(err, ErrClosed) {
		t.Fatalf("nil Bound With: %v", err)
	}
	if err := b.PredictNoise(ctx, dst, x, []float32{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("nil Bound PredictNoise: %v", err)
	}
	if err := (&Bound{}).PredictNoise(ctx, dst, x, []float32{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("zero Bound PredictNoise: %v", err)
	}
	var g *CFG
	if g.Batched() {
		t.Fatal("nil CFG batched")
	}
	if err := g.PredictNoise(ctx, dst, x, []float32{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("nil CFG: %v", err)
	}
	if err := (&CFG{}).PredictNoise(ctx, dst, x, []float32{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("zero CFG: %v", err)
	}
	if _, err := BatchedCFG(&Bound{}, &Bound{}, 2); err == nil {
		t.Fatal("BatchedCFG of zero Bounds")
	}
	var gr *Graph
	if err := gr.Run(ctx, nil, map[string]*tensor.Dense{"y": x}); !errors.Is(err, ErrClosed) {
		t.Fatalf("nil Graph Run: %v", err)
	}
	if _, ok := gr.Input("x"); ok {
		t.Fatal("nil Graph Input")
	}
	if _, ok := gr.Output("x"); ok {
		t.Fatal("nil Graph Output")
	}
	_ = gr.Info()
	if err := gr.Close(); err != nil {
		t.Fatal(err)
	}
	// The sampler refuses a typed nil model up front.
	d, _ := sampler.NewDDIM(schedule.DefaultConfig())
	if err := sampler.Sample(ctx, m, d, x, sampler.Options{Steps: 2}); !errors.Is(err, ugo.ErrNilDenoiser) {
		t.Fatalf("Sample(nil *Model) = %v", err)
	}
}

// TestNaNModelMatchesEverySentinel: NaN from the backend is
// ugo.ErrNonFinite, and the sampler's name for it, directly and through a
// sampling run.
func TestNaNModelMatchesEverySentinel(t *testing.T) {
	m := open(t, "nan.onnx")
	x := dense32(1, 2, 4, 4)
	err := m.PredictNoise(context.Background(), dense32(1, 2, 4, 4), x, []float32{1})
	for _, target := range []error{ugo.ErrNonFinite, sampler.ErrNonFinite, ErrNonFinite} {
		if !errors.Is(err, target) {
			t.Fatalf("err = %v, want errors.Is %v", err, target)
		}
	}
	d, _ := sampler.NewDDIM(schedule.DefaultConfig())
	err = sampler.Sample(context.Background(), m, d, x, sampler.Options{Steps: 3})
	var se *sampler.StepError
	if !errors.Is(err, sampler.ErrNonFinite) || !errors.As(err, &se) || se.Resume != 0 {
		t.Fatalf("Sample: %v", err)
	}
}

// TestShapesTheGraphRefuses: sizes a graph with dynamic axes cannot take
// are typed errors: a *RunError from inside the runtime, or, declared with
// WithSpatialMultiple, a *ugo.ShapeError before the call.
func TestShapesTheGraphRefuses(t *testing.T) {
	ctx := context.Background()
	m := open(t, "pool2.onnx")
	if err := m.PredictNoise(ctx, dense32(1, 2, 4, 6), dense32(1, 2, 4, 6), []float32{1}); err != nil {
		t.Fatalf("even size: %v", err)
	}
	err := m.PredictNoise(ctx, dense32(1, 2, 5, 6), dense32(1, 2, 5, 6), []float32{1})
	var re *RunError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "[1 2 5 6]") || !strings.Contains(re.Model, "pool2.onnx") {
		t.Fatalf("odd size: err = %v, want a *RunError naming the shape and model", err)
	}
	m2 := open(t, "pool2.onnx", WithSpatialMultiple(2))
	var se *ugo.ShapeError
	for _, shape := range [][]int{{1, 2, 5, 6}, {1, 2, 4, 7}, {2, 2, 3, 3}} {
		err := m2.PredictNoise(ctx, dense32(shape...), dense32(shape...), []float32{1})
		if !errors.As(err, &se) {
			t.Fatalf("%v with WithSpatialMultiple(2): %v, want a *ugo.ShapeError", shape, err)
		}
		if err := m2.Info().CheckShape(shape); !errors.As(err, &se) {
			t.Fatalf("CheckShape(%v) = %v", shape, err)
		}
	}
	if _, err := Open(modelPath("pool2.onnx"), WithSpatialMultiple(0)); err == nil {
		t.Fatal("WithSpatialMultiple(0) accepted")
	}
	for _, th := range [][2]int{{MaxThreads + 1, 0}, {0, MaxThreads + 1}, {1 << 30, 1 << 30}, {-1, -1}} {
		if _, err := Open(modelPath("pool2.onnx"), WithThreads(th[0], th[1])); err == nil {
			t.Fatalf("WithThreads(%d, %d) accepted", th[0], th[1])
		}
	}
	shrink := open(t, "shrink.onnx")
	err = shrink.PredictNoise(ctx, dense32(1, 2, 4, 4), dense32(1, 2, 4, 4), []float32{1})
	if !errors.As(err, &re) {
		t.Fatalf("an output smaller than x: %v, want a *RunError", err)
	}
}

// TestHostileCalls feeds the backend the arguments a careless or hostile
// caller can build.
func TestHostileCalls(t *testing.T) {
	ctx := context.Background()
	m := open(t, "dynamic.onnx")
	fixed := open(t, "fixed.onnx")
	scalar := open(t, "scalar.onnx")
	transposed := dense32(1, 2, 4, 4)
	if err := transposed.T(0, 1, 3, 2); err != nil {
		t.Fatal(err)
	}
	same := dense32(1, 2, 4, 4)
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	tests := []struct {
		name   string
		model  *Model
		dst, x *tensor.Dense
		t      []float32
	}{
		{"nil x", m, dense32(1, 2, 4, 4), nil, []float32{1}},
		{"nil dst", m, nil, dense32(1, 2, 4, 4), []float32{1}},
		{"zero Dense x", m, dense32(1, 2, 4, 4), &tensor.Dense{}, []float32{1}},
		{"zero Dense dst", m, &tensor.Dense{}, dense32(1, 2, 4, 4), []float32{1}},
		{"transposed x", m, dense32(1, 2, 4, 4), transposed, []float32{1}},
		{"dst is x", m, same, same, []float32{1}},
		{"rank 3", m, dense32(2, 4, 4), dense32(2, 4, 4), []float32{1}},
		{"3 channels", m, dense32(1, 3, 4, 4), dense32(1, 3, 4, 4), []float32{1}},
		{"no t", m, dense32(1, 2, 4, 4), dense32(1, 2, 4, 4), nil},
		{"3 t for 2", m, dense32(2, 2, 4, 4), dense32(2, 2, 4, 4), []float32{1, 2, 3}},
		{"NaN t", m, dense32(1, 2, 4, 4), dense32(1, 2, 4, 4), []float32{nan}},
		{"Inf t", m, dense32(1, 2, 4, 4), dense32(1, 2, 4, 4), []float32{inf}},
		{"fixed model, other size", fixed, dense32(1, 2, 4, 4), dense32(1, 2, 4, 4), []float32{1}},
		{"fixed model, batch 2", fixed, dense32(2, 2, 8, 8), dense32(2, 2, 8, 8), []float32{1}},
		{"scalar t model, two t", scalar, dense32(2, 2, 4, 4), dense32(2, 2, 4, 4), []float32{1, 2}},
		{"float64 x", m, dense32(1, 2, 4, 4), tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float64)), []float32{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			noErrorText(t, tc.model.PredictNoise(ctx, tc.dst, tc.x, tc.t))
		})
	}
	// Binding hostile values to an extra input.
	ex := open(t, "extra.onnx")
	for name, v := range map[string]*tensor.Dense{
		"nil": nil, "zero": {}, "transposed": transposed, "rank 2": dense32(3, 4),
		"wrong width": dense32(1, 3, 5), "bool": tensor.New(tensor.WithShape(1, 3, 4), tensor.Of(tensor.Bool)),
	} {
		if _, err := ex.With("encoder_hidden_states", v); err == nil {
			t.Errorf("With(%s) accepted", name)
		} else {
			noErrorText(t, err)
		}
	}
	// Graph runs with hostile tensors.
	g, err := OpenGraph(modelPath("dynamic.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	tt := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{1}))
	for name, in := range map[string][2]*tensor.Dense{
		"zero x": {{}, dense32(1, 2, 4, 4)}, "zero out": {dense32(1, 2, 4, 4), {}},
		"transposed x": {transposed, dense32(1, 2, 4, 4)}, "nil x": {nil, dense32(1, 2, 4, 4)},
		"nil out": {dense32(1, 2, 4, 4), nil}, "wrong out size": {dense32(1, 2, 4, 4), dense32(1, 2, 4, 5)},
	} {
		ins := map[string]*tensor.Dense{"x": in[0], "t": tt}
		outs := map[string]*tensor.Dense{"eps": in[1]}
		t.Run(name, func(t *testing.T) {
			noErrorText(t, g.Run(ctx, ins, outs))
		})
	}
}

// TestHostileModelSignatures: models whose signature no denoiser can use
// are refused by Open (or, for a rank-3 sample, by every call), with errors.
func TestHostileModelSignatures(t *testing.T) {
	requireRuntime(t)
	if m, err := Open(modelPath("intout.onnx")); err == nil {
		err = m.PredictNoise(context.Background(), dense32(1, 2, 4, 4), dense32(1, 2, 4, 4), []float32{1})
		m.Close()
		if err == nil {
			t.Fatal("an int64 output read as noise")
		}
		noErrorText(t, err)
	} else {
		noErrorText(t, err)
	}
	m, err := Open(modelPath("rank3.onnx"))
	if err != nil {
		noErrorText(t, err)
		return
	}
	defer m.Close()
	for _, shape := range [][]int{{1, 4, 4, 4}, {1, 1, 1, 4, 4}} {
		err := m.PredictNoise(context.Background(), dense32(shape...), dense32(shape...), []float32{1})
		var se *ugo.ShapeError
		if !errors.As(err, &se) {
			t.Fatalf("a rank-3 model given %v: %v, want a *ugo.ShapeError", shape, err)
		}
	}
}

// TestCorruptModelFiles opens truncated, empty and foreign files: each is an
// error, and the runtime survives them.
func TestCorruptModelFiles(t *testing.T) {
	requireRuntime(t)
	data, err := os.ReadFile(modelPath("dynamic.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var cases [][]byte
	for n := 0; n < len(data); n += 29 {
		cases = append(cases, data[:n])
	}
	flipped := append([]byte(nil), data...)
	for i := 0; i < len(flipped); i += 53 {
		flipped[i] ^= 0xff
	}
	cases = append(cases, flipped, []byte("not a model"), []byte(strings.Repeat("\xff", 100)))
	tried, opened := 0, 0
	for _, c := range cases {
		p := filepath.Join(dir, "m.onnx")
		if err := os.WriteFile(p, c, 0o644); err != nil {
			t.Fatal(err)
		}
		tried++
		m, err := Open(p)
		if err != nil {
			noErrorText(t, err)
			continue
		}
		// A prefix or a flipped file that still parses must still work or fail cleanly.
		opened++
		x := dense32(1, 2, 4, 4)
		if err := m.PredictNoise(context.Background(), dense32(1, 2, 4, 4), x, []float32{1}); err != nil {
			noErrorText(t, err)
		}
		m.Close()
	}
	for _, p := range []string{dir, filepath.Join(dir, "missing.onnx")} {
		_, err := Open(p)
		noErrorText(t, err)
	}
	t.Logf("%d corrupt files, %d opened", tried, opened)
}
