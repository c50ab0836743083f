package graphmodel_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/graphmodel"
	"github.com/ugo-diffusion/ugo/graphmodel/convnet"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

var testAbar = schedule.Linear(1000, 1e-4, 0.02).AlphasCumprod()

func dense(shape ...int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n)))
}

func randomDense(seed uint64, shape ...int) *tensor.Dense {
	x := dense(shape...)
	noise.NewPCG(seed).Normal(x.Float32s())
	return x
}

// scaleModel builds eps = x * w[c] + t/1000 for any rank, with w a shared
// weight of one value per channel.
func scaleBuild(w *tensor.Dense) graphmodel.BuildFunc {
	return func(g *gorgonia.ExprGraph, x, t *gorgonia.Node) (*gorgonia.Node, error) {
		xs := x.Shape()
		if len(xs) == 5 {
			// gorgonia v0.9.18 broadcasts over the first four axes only:
			// fold F into H, and unfold the result.
			x4, err := gorgonia.Reshape(x, tensor.Shape{xs[0], xs[1], xs[2] * xs[3], xs[4]})
			if err != nil {
				return nil, err
			}
			y, err := scaleBuild(w)(g, x4, t)
			if err != nil {
				return nil, err
			}
			return gorgonia.Reshape(y, xs)
		}
		wn, err := graphmodel.Weight(g, "w", w)
		if err != nil {
			return nil, err
		}
		bshape := make(tensor.Shape, len(xs))
		var wAxes, tAxes []byte
		for i := range bshape {
			bshape[i] = 1
			if i != 1 {
				wAxes = append(wAxes, byte(i))
			}
			if i != 0 {
				tAxes = append(tAxes, byte(i))
			}
		}
		bshape[1] = xs[1]
		w4, err := gorgonia.Reshape(wn, bshape)
		if err != nil {
			return nil, err
		}
		xw, err := gorgonia.BroadcastHadamardProd(x, w4, nil, wAxes)
		if err != nil {
			return nil, err
		}
		tshape := make(tensor.Shape, len(xs))
		for i := range tshape {
			tshape[i] = 1
		}
		tshape[0] = xs[0]
		t4, err := gorgonia.Reshape(t, tshape)
		if err != nil {
			return nil, err
		}
		ts, err := gorgonia.Mul(t4, gorgonia.NewConstant(float32(0.001)))
		if err != nil {
			return nil, err
		}
		return gorgonia.BroadcastAdd(xw, ts, nil, tAxes)
	}
}

func scaleModel(t testing.TB, channels int) (*graphmodel.Model, *tensor.Dense) {
	t.Helper()
	w := dense(channels)
	for i := range w.Float32s() {
		w.Float32s()[i] = 0.5 + float32(i)
	}
	m, err := graphmodel.New(scaleBuild(w))
	if err != nil {
		t.Fatal(err)
	}
	return m, w
}

func TestScaleModelValues(t *testing.T) {
	m, _ := scaleModel(t, 2)
	for _, shape := range [][]int{{2, 2, 3, 4}, {1, 2, 2, 3, 3}} {
		x := randomDense(1, shape...)
		dst := dense(shape...)
		ts := []float32{100, 700}[:shape[0]]
		if err := m.PredictNoise(context.Background(), dst, x, ts); err != nil {
			t.Fatal(err)
		}
		per := len(x.Float32s()) / shape[0]
		perC := per / shape[1]
		for i, v := range x.Float32s() {
			n, c := i/per, i%per/perC
			want := v*(0.5+float32(c)) + ts[n]*0.001
			if got := dst.Float32s()[i]; math.Abs(float64(got-want)) > 1e-6 {
				t.Fatalf("shape %v element %d: %v, want %v", shape, i, got, want)
			}
		}
	}
}

func TestCacheCompilesOncePerShape(t *testing.T) {
	m, _ := scaleModel(t, 1)
	ctx := context.Background()
	call := func(shape ...int) {
		t.Helper()
		if err := m.PredictNoise(ctx, dense(shape...), dense(shape...), []float32{1}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		call(1, 1, 8, 8)
	}
	call(1, 1, 4, 4)
	call(1, 1, 4, 4)
	if got, want := m.Stats(), (graphmodel.Stats{Compiles: 2, Hits: 3, Shapes: 2}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	call(2, 1, 4, 4) // the batch size is part of the shape
	if got, want := m.Stats(), (graphmodel.Stats{Compiles: 3, Hits: 3, Shapes: 3}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

// Under guidance.Upsample, each guided step calls the model at the sample's
// shape and at the half-size shape: two compilations for the whole run,
// cache hits for every other call.
func TestCacheUnderUpsampleGuidance(t *testing.T) {
	net, err := convnet.New(convnet.Config{Channels: 1, Width: 4, Dilations: []int{1}, EmbedDim: 4, TimeHidden: 4, AlphasCumprod: testAbar}, 1)
	if err != nil {
		t.Fatal(err)
	}
	model, err := net.Denoiser()
	if err != nil {
		t.Fatal(err)
	}
	sched := schedule.Linear(1000, 1e-4, 0.02)
	guided, err := guidance.Upsample(model, sched, guidance.DefaultUpsampleOptions())
	if err != nil {
		t.Fatal(err)
	}
	ddim := &sampler.DDIM{Schedule: sched}
	x := randomDense(3, 2, 1, 16, 16)
	const steps = 6
	if err := sampler.Sample(context.Background(), guided, ddim, x, sampler.Options{Steps: steps}); err != nil {
		t.Fatal(err)
	}
	if got, want := model.Stats(), (graphmodel.Stats{Compiles: 2, Hits: 2*steps - 2, Shapes: 2}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	for _, v := range x.Float32s() {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatal("non-finite sample")
		}
	}
}

// Calls at two shapes from several goroutines (run with -race) give the
// results of serial calls, bit for bit, and leave the shared weights
// untouched.
func TestConcurrentCalls(t *testing.T) {
	cfg := convnet.Config{Channels: 1, Width: 6, Dilations: []int{1, 2}, EmbedDim: 8, TimeHidden: 8, AlphasCumprod: testAbar}
	net, err := convnet.New(cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	before := map[string][]float32{}
	shapes := map[string][]int{}
	for _, p := range net.Params() {
		before[p.Name] = append([]float32(nil), p.Value.Float32s()...)
		shapes[p.Name] = append([]int(nil), p.Value.Shape()...)
	}
	model, err := net.Denoiser()
	if err != nil {
		t.Fatal(err)
	}
	inputs := []*tensor.Dense{randomDense(1, 2, 1, 14, 14), randomDense(2, 2, 1, 8, 8)}
	ts := []float32{300, 800}
	want := make([]*tensor.Dense, len(inputs))
	for i, x := range inputs {
		want[i] = dense(x.Shape()...)
		if err := model.PredictNoise(context.Background(), want[i], x, ts); err != nil {
			t.Fatal(err)
		}
	}
	const workers, calls = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*calls)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := w % len(inputs)
			dst := dense(inputs[i].Shape()...)
			for range calls {
				if err := model.PredictNoise(context.Background(), dst, inputs[i], ts); err != nil {
					errs <- err
					return
				}
				for j, v := range dst.Float32s() {
					if v != want[i].Float32s()[j] {
						errs <- errors.New("concurrent result differs from the serial one")
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := model.Stats()
	if st.Compiles != 2 || st.Hits != workers*calls {
		t.Errorf("stats %+v, want 2 compiles and %d hits", st, workers*calls)
	}
	for _, p := range net.Params() {
		if !slices.Equal([]int(p.Value.Shape()), shapes[p.Name]) {
			t.Errorf("%s: shape changed from %v to %v", p.Name, shapes[p.Name], p.Value.Shape())
		}
		for j, v := range p.Value.Float32s() {
			if math.Float32bits(v) != math.Float32bits(before[p.Name][j]) {
				t.Fatalf("%s[%d] changed from %v to %v", p.Name, j, before[p.Name][j], v)
			}
		}
	}
}

func TestPredictNoiseErrors(t *testing.T) {
	m, _ := scaleModel(t, 1)
	ctx := context.Background()
	x := dense(1, 1, 4, 4)
	f64 := tensor.New(tensor.WithShape(1, 1, 4, 4), tensor.Of(tensor.Float64))
	cases := []struct {
		name   string
		dst, x *tensor.Dense
		t      []float32
	}{
		{"nil x", dense(1, 1, 4, 4), nil, []float32{1}},
		{"nil dst", nil, x, []float32{1}},
		{"float64 x", dense(1, 1, 4, 4), f64, []float32{1}},
		{"float64 dst", f64, x, []float32{1}},
		{"rank 3", dense(1, 4, 4), dense(1, 4, 4), []float32{1}},
		{"dst shape", dense(1, 1, 4, 5), x, []float32{1}},
		{"no timestep", dense(1, 1, 4, 4), x, nil},
		{"too many timesteps", dense(1, 1, 4, 4), x, []float32{1, 2}},
		{"NaN timestep", dense(1, 1, 4, 4), x, []float32{float32(math.NaN())}},
	}
	for _, tc := range cases {
		err := m.PredictNoise(ctx, tc.dst, tc.x, tc.t)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
	}
	var se *ugo.ShapeError
	if err := m.PredictNoise(ctx, dense(1, 1, 4, 5), x, []float32{1}); !errors.As(err, &se) {
		t.Errorf("dst shape mismatch: %v, want a *ugo.ShapeError", err)
	}
	if st := m.Stats(); st.Compiles != 0 || st.Shapes != 0 {
		t.Errorf("invalid calls compiled graphs: %+v", st)
	}
}

func TestCancelledContext(t *testing.T) {
	m, _ := scaleModel(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := m.PredictNoise(ctx, dense(1, 1, 4, 4), dense(1, 1, 4, 4), []float32{1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if st := m.Stats(); st.Compiles != 0 {
		t.Errorf("a cancelled call compiled a graph: %+v", st)
	}
	// After a compiled graph exists, cancellation still wins.
	if err := m.PredictNoise(context.Background(), dense(1, 1, 4, 4), dense(1, 1, 4, 4), []float32{1}); err != nil {
		t.Fatal(err)
	}
	if err := m.PredictNoise(ctx, dense(1, 1, 4, 4), dense(1, 1, 4, 4), []float32{1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestBuildErrors(t *testing.T) {
	ctx := context.Background()
	other := gorgonia.NewGraph()
	otherNode := gorgonia.NewTensor(other, tensor.Float32, 4, gorgonia.WithShape(1, 1, 4, 4), gorgonia.WithName("o"))
	cases := []struct {
		name  string
		build graphmodel.BuildFunc
		want  string
	}{
		{"error", func(g *gorgonia.ExprGraph, x, t *gorgonia.Node) (*gorgonia.Node, error) {
			return nil, errors.New("no such layer")
		}, "no such layer"},
		{"panic", func(g *gorgonia.ExprGraph, x, t *gorgonia.Node) (*gorgonia.Node, error) {
			panic("boom")
		}, "panic: boom"},
		{"gorgonia panic", func(g *gorgonia.ExprGraph, x, t *gorgonia.Node) (*gorgonia.Node, error) {
			// A value of the wrong dtype makes gorgonia panic.
			return gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 1, 4, 4),
				gorgonia.WithValue(tensor.New(tensor.WithShape(1, 1, 4, 4), tensor.Of(tensor.Float64)))), nil
		}, "panic"},
		{"nil output", func(g *gorgonia.ExprGraph, x, t *gorgonia.Node) (*gorgonia.Node, error) {
			return nil, nil
		}, "nil node"},
		{"wrong shape", func(g *gorgonia.ExprGraph, x, t *gorgonia.Node) (*gorgonia.Node, error) {
			return gorgonia.Reshape(x, tensor.Shape{1, 16})
		}, "shape"},
		{"wrong dtype", func(g *gorgonia.ExprGraph, x, t *gorgonia.Node) (*gorgonia.Node, error) {
			return gorgonia.NewTensor(g, tensor.Float64, 4, gorgonia.WithShape(1, 1, 4, 4), gorgonia.WithName("y"),
				gorgonia.WithValue(tensor.New(tensor.WithShape(1, 1, 4, 4), tensor.Of(tensor.Float64)))), nil
		}, "dtype"},
		{"other graph", func(g *gorgonia.ExprGraph, x, t *gorgonia.Node) (*gorgonia.Node, error) {
			return otherNode, nil
		}, "another graph"},
	}
	for _, tc := range cases {
		m, err := graphmodel.New(tc.build)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // a failed build is not cached: the second call builds again
			err = m.PredictNoise(ctx, dense(1, 1, 4, 4), dense(1, 1, 4, 4), []float32{1})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
			}
		}
		if st := m.Stats(); st != (graphmodel.Stats{}) {
			t.Errorf("%s: stats %+v after failed builds, want zero", tc.name, st)
		}
	}
	if _, err := graphmodel.New(nil); err == nil {
		t.Error("New(nil): no error")
	}
}

// The convnet's own checks surface as build errors.
func TestConvNetShapeErrors(t *testing.T) {
	net, err := convnet.New(convnet.Config{Channels: 1, Width: 2, EmbedDim: 2, TimeHidden: 2, AlphasCumprod: testAbar}, 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := net.Denoiser()
	if err != nil {
		t.Fatal(err)
	}
	for _, shape := range [][]int{{1, 3, 4, 4}, {1, 1, 2, 4, 4}} {
		if err := m.PredictNoise(context.Background(), dense(shape...), dense(shape...), []float32{1}); err == nil {
			t.Errorf("shape %v: no error", shape)
		} else {
			t.Log(err)
		}
	}
}

func TestWeightErrors(t *testing.T) {
	g := gorgonia.NewGraph()
	w := dense(2, 3)
	if _, err := graphmodel.Weight(nil, "w", w); err == nil {
		t.Error("nil graph: no error")
	}
	if _, err := graphmodel.Weight(g, "w", nil); err == nil {
		t.Error("nil tensor: no error")
	}
	view, err := w.Slice(nil, tensor.S(1, 3))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := graphmodel.Weight(g, "v", view.(*tensor.Dense)); err == nil {
		t.Error("view: no error")
	}
	n, err := graphmodel.Weight(g, "w", w)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal([]int(n.Shape()), []int{2, 3}) {
		t.Errorf("node shape %v", n.Shape())
	}
	// The node shares w's numbers but not its header.
	w.Float32s()[4] = 42
	if v := n.Value().(*tensor.Dense); v == w || v.Float32s()[4] != 42 {
		t.Error("the node's value should be a new header over w's backing slice")
	}
}
