package onnx

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

func TestCancelledBeforeCall(t *testing.T) {
	m := open(t, "dynamic.onnx")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	x := zerosLike(tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float32)))
	if err := m.PredictNoise(ctx, zerosLike(x), x, []float32{1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestTerminateFlag drives binding.run with the terminate flag set, as the
// context callback sets it during a run: the run fails with ctx's error and
// the binding is usable again afterwards (the flag was cleared).
func TestTerminateFlag(t *testing.T) {
	m := open(t, "dynamic.onnx")
	x := zerosLike(tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float32)))
	b, _, err := m.call(context.Background(), zerosLike(x), x, []float32{1}, []*Bound{m.root})
	if err != nil {
		t.Fatal(err)
	}
	defer m.done(b)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.ro.Terminate(); err != nil {
		t.Fatal(err)
	}
	if err := b.run(ctx, m.sess, nil, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("terminated run: err = %v, want context.Canceled", err)
	}
	if b.broken {
		t.Fatal("binding marked broken")
	}
	if err := b.run(context.Background(), m.sess, nil, ""); err != nil {
		t.Fatalf("run after termination: %v", err)
	}
}

// TestCancelDuringRun cancels calls on a large input while ONNX Runtime is
// working and checks they stop with the context's error, and that the model
// keeps working afterwards.
func TestCancelDuringRun(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	m := open(t, "dynamic.onnx", WithThreads(1, 1))
	rng := rand.New(rand.NewPCG(1, 2))
	x := randDense(rng, 1, 2, 512, 512)
	dst := zerosLike(x)
	start := time.Now()
	if err := m.PredictNoise(context.Background(), dst, x, []float32{1}); err != nil {
		t.Fatal(err)
	}
	full := time.Since(start)
	stopped := 0
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), full/10)
		err := m.PredictNoise(ctx, dst, x, []float32{1})
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, context.DeadlineExceeded):
			stopped++
		default:
			t.Fatalf("err = %v, want nil or context.DeadlineExceeded", err)
		}
	}
	if stopped == 0 {
		t.Fatalf("no call was stopped (a full call takes %v)", full)
	}
	t.Logf("%d of 5 calls stopped by a deadline of %v (a full call takes %v)", stopped, full/10, full)
	if err := m.PredictNoise(context.Background(), dst, x, []float32{1}); err != nil {
		t.Fatalf("call after cancellations: %v", err)
	}
	want := reference(x.Float32s()[:2*512*512], []int{1, 2, 512, 512}, func(int) float64 { return 1 }, nil)
	assertClose(t, dst.Float32s(), want, 1e-4, "after cancellations")
}

// TestSteadyStateAllocations checks that a repeated call of one shape
// allocates no tensors: only the binding's per-run argument slices remain.
func TestSteadyStateAllocations(t *testing.T) {
	m := open(t, "dynamic.onnx")
	x := zerosLike(tensor.New(tensor.WithShape(2, 2, 16, 16), tensor.Of(tensor.Float32)))
	dst := zerosLike(x)
	ts := []float32{5, 6}
	ctx := context.Background()
	if err := m.PredictNoise(ctx, dst, x, ts); err != nil {
		t.Fatal(err)
	}
	var err error
	allocs := testing.AllocsPerRun(20, func() {
		if e := m.PredictNoise(ctx, dst, x, ts); e != nil {
			err = e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// Argument validation (ugo.CheckPrediction) allocates through
	// tensor.Dense.Data, and onnxruntime_go's RunWithOptions allocates its
	// argument arrays on every run. Nothing else may allocate.
	check := testing.AllocsPerRun(20, func() { _ = ugo.CheckPrediction(dst, x, ts) })
	b, _, err := m.call(ctx, dst, x, ts, []*Bound{m.root})
	if err != nil {
		t.Fatal(err)
	}
	run := testing.AllocsPerRun(20, func() { _ = b.run(ctx, m.sess, nil, "") })
	m.done(b)
	if allocs > check+run {
		t.Fatalf("%v allocations per steady-state call, want <= %v (validation) + %v (session run)", allocs, check, run)
	}
	t.Logf("%v allocations per call: %v in validation, %v in the session run", allocs, check, run)
}
