package onnx

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"gorgonia.org/tensor"
)

// TestRunObserver checks that every Run call of a Model and of a Graph,
// dynamic and shape-specialised, is reported once with its model's path
// and a time span inside the caller's, and that the observer adds no
// allocation to a steady-state prediction.
func TestRunObserver(t *testing.T) {
	var mu sync.Mutex
	var got []RunTiming
	observe := func(r RunTiming) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
	}
	take := func() []RunTiming {
		mu.Lock()
		defer mu.Unlock()
		r := got
		got = nil
		return r
	}
	check := func(t *testing.T, what string, want int, before, after time.Time) {
		t.Helper()
		rs := take()
		if len(rs) != want {
			t.Fatalf("%s: %d runs reported, want %d", what, len(rs), want)
		}
		for _, r := range rs {
			if r.Path != modelPath("dynamic.onnx") || r.Err != nil || len(r.Inputs) != 2 || !slices.Equal(r.Inputs[0], []int64{2, 2, 8, 8}) {
				t.Errorf("%s: reported %+v", what, r)
			}
			if r.Start.Before(before) || r.End.After(after) || r.Duration() < 0 {
				t.Errorf("%s: run %v..%v outside the call %v..%v", what, r.Start, r.End, before, after)
			}
		}
	}
	ctx := context.Background()
	for _, shapes := range []bool{false, true} {
		opts := []Option{WithRunObserver(observe)}
		if shapes {
			opts = append(opts, WithShapeSessions(2))
		}
		m := open(t, "dynamic.onnx", opts...)
		x := zerosLike(tensor.New(tensor.WithShape(2, 2, 8, 8), tensor.Of(tensor.Float32)))
		dst := zerosLike(x)
		before := time.Now()
		for range 3 {
			if err := m.PredictNoise(ctx, dst, x, []float32{1, 2}); err != nil {
				t.Fatal(err)
			}
		}
		check(t, "Model", 3, before, time.Now())
		allocs := testing.AllocsPerRun(10, func() { _ = m.PredictNoise(ctx, dst, x, []float32{1, 2}) })
		take()
		plain := open(t, "dynamic.onnx")
		if err := plain.PredictNoise(ctx, dst, x, []float32{1, 2}); err != nil {
			t.Fatal(err)
		}
		if base := testing.AllocsPerRun(10, func() { _ = plain.PredictNoise(ctx, dst, x, []float32{1, 2}) }); allocs > base {
			t.Errorf("shapes %v: %v allocations per observed call, %v without an observer", shapes, allocs, base)
		}

		g, err := OpenGraph(modelPath("dynamic.onnx"), opts...)
		if err != nil {
			t.Fatal(err)
		}
		before = time.Now()
		for range 2 {
			if err := g.Run(ctx, map[string]*tensor.Dense{"x": x, "t": tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, 2}))}, map[string]*tensor.Dense{"eps": dst}); err != nil {
				t.Fatal(err)
			}
		}
		check(t, "Graph", 2, before, time.Now())
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
