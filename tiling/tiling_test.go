package tiling

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"gorgonia.org/tensor"
	"pgregory.net/rapid"

	"github.com/ugo-diffusion/ugo"
)

// randTensor returns a tensor of the given shape with standard normal values.
func randTensor(r *rand.Rand, shape ...int) *tensor.Dense {
	x := newTensor(shape)
	for i := range x.Float32s() {
		x.Float32s()[i] = float32(r.NormFloat64())
	}
	return x
}

// pointwise predicts from each element alone: a translation-equivariant
// model with a receptive field of one pixel.
var pointwise = ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	if err := ugo.CheckPrediction(dst, x, t); err != nil {
		return err
	}
	per := len(x.Float32s()) / x.Shape()[0]
	d := dst.Float32s()
	for i, v := range x.Float32s() {
		d[i] = float32(math.Tanh(float64(v)))*1.5 + ugo.TimestepAt(t, i/per)/1000
	}
	return nil
})

// positional predicts from each element and its absolute position in the
// sample, read from the ugo.Region of the call (absent: the call covers the
// whole sample): equivariant only when the tile offsets are right.
var positional = ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	if err := ugo.CheckPrediction(dst, x, t); err != nil {
		return err
	}
	s := x.Shape()
	h, w := s[len(s)-2], s[len(s)-1]
	r, ok := ugo.RegionFrom(ctx)
	if !ok {
		r = ugo.Region{Size: [2]int{h, w}, Scale: [2]int{1, 1}}
	}
	d := dst.Float32s()
	for i, v := range x.Float32s() {
		y, xx := (i/w)%h+r.Offset[0], i%w+r.Offset[1]
		d[i] = v*0.5 + float32(y*r.Size[1]+xx)/float32(r.Size[0]*r.Size[1])
	}
	return nil
})

// global predicts from the whole input (its mean), so that tiles differ
// from the whole sample.
var global = ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	if err := ugo.CheckPrediction(dst, x, t); err != nil {
		return err
	}
	var m float64
	for _, v := range x.Float32s() {
		m += float64(v)
	}
	m /= float64(len(x.Float32s()))
	for i, v := range x.Float32s() {
		dst.Float32s()[i] = v*float32(m) + t[0]
	}
	return nil
})

func predict(t *testing.T, d ugo.Denoiser, x *tensor.Dense, ts []float32) []float32 {
	t.Helper()
	dst := newTensor(x.Shape())
	if err := d.PredictNoise(context.Background(), dst, x, ts); err != nil {
		t.Fatalf("PredictNoise on %v: %v", x.Shape(), err)
	}
	return dst.Float32s()
}

func TestWholeTileIsTheModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		shape []int
		size  [2]int
	}{
		{[]int{2, 3, 16, 16}, [2]int{16, 16}},
		{[]int{1, 1, 8, 12}, [2]int{8, 12}},
		{[]int{1, 2, 3, 8, 8}, [2]int{32, 32}},
		{[]int{3, 1, 5, 7}, [2]int{5, 9}},
	}
	for _, c := range cases {
		x := randTensor(r, c.shape...)
		ts := []float32{731.5}
		m, err := Tiled(global, Options{Size: c.size, Batch: 2, Jitter: true})
		if err != nil {
			t.Fatal(err)
		}
		got, want := predict(t, m, x, ts), predict(t, global, x, ts)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%v with tile %v: element %d is %v, want the model's %v", c.shape, c.size, i, got[i], want[i])
			}
		}
	}
	t.Logf("%d shapes", len(cases))
}

// drawCase draws a sample shape and tiling options.
func drawCase(t *rapid.T) ([]int, Options) {
	rank := rapid.IntRange(4, 5).Draw(t, "rank")
	shape := []int{rapid.IntRange(1, 3).Draw(t, "n"), rapid.IntRange(1, 3).Draw(t, "c")}
	if rank == 5 {
		shape = append(shape, rapid.IntRange(1, 3).Draw(t, "f"))
	}
	h, w := rapid.IntRange(1, 40).Draw(t, "h"), rapid.IntRange(1, 40).Draw(t, "w")
	shape = append(shape, h, w)
	var o Options
	for i := range 2 {
		o.Size[i] = rapid.IntRange(1, 24).Draw(t, "size")
		o.Overlap[i] = rapid.IntRange(0, o.Size[i]-1).Draw(t, "overlap")
	}
	o.Batch = rapid.IntRange(0, 4).Draw(t, "batch")
	o.Blend = Blend(rapid.IntRange(0, 1).Draw(t, "blend"))
	o.Jitter = rapid.Bool().Draw(t, "jitter")
	o.Seed = rapid.Uint64().Draw(t, "seed")
	return shape, o
}

func TestPropertyPointwiseModelTiledEqualsUntiled(t *testing.T) {
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		shape, o := drawCase(rt)
		r := rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "data"), 3))
		x := randTensor(r, shape...)
		ts := []float32{float32(rapid.IntRange(0, 999).Draw(rt, "t"))}
		if rapid.Bool().Draw(rt, "per-sample t") {
			ts = make([]float32, shape[0])
			for i := range ts {
				ts[i] = float32(r.IntN(1000))
			}
		}
		for _, model := range []ugo.Denoiser{pointwise, positional} {
			m, err := Tiled(model, o)
			if err != nil {
				rt.Fatal(err)
			}
			dst := newTensor(shape)
			if err := m.PredictNoise(context.Background(), dst, x, ts); err != nil {
				rt.Fatalf("%v with %+v: %v", shape, o, err)
			}
			want := newTensor(shape)
			if err := model.PredictNoise(context.Background(), want, x, ts); err != nil {
				rt.Fatal(err)
			}
			for i, v := range want.Float32s() {
				if g := dst.Float32s()[i]; math.Abs(float64(g-v)) > 1e-6*(1+math.Abs(float64(v))) {
					rt.Fatalf("%v with %+v: element %d is %v tiled, %v untiled", shape, o, i, g, v)
				}
			}
		}
		n++
	})
	t.Logf("%d cases, each with a pointwise and a position-aware model", n)
}

func TestPropertyGrid(t *testing.T) {
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		length := rapid.IntRange(1, 300).Draw(rt, "length")
		size := rapid.IntRange(1, 64).Draw(rt, "size")
		overlap := rapid.IntRange(0, size-1).Draw(rt, "overlap")
		a := newAxis(length, size, overlap, Blend(rapid.IntRange(0, 1).Draw(rt, "blend")))
		if rapid.Bool().Draw(rt, "jitter") {
			a.shifted(rapid.IntRange(0, a.stride()-1).Draw(rt, "shift"))
		} else {
			a.even()
		}
		s := a.starts
		if len(s) > a.maxTiles() || len(s) > len(a.weights) {
			rt.Fatalf("%d tiles, more than the bound %d", len(s), a.maxTiles())
		}
		if s[0] != 0 || s[len(s)-1]+a.size != length {
			rt.Fatalf("starts %v of tiles %d do not reach both ends of %d", s, a.size, length)
		}
		for i := 1; i < len(s); i++ {
			if s[i] <= s[i-1] || s[i-1]+a.size-s[i] < a.overlap {
				rt.Fatalf("starts %v (tile %d): tiles %d and %d overlap by less than %d", s, a.size, i-1, i, a.overlap)
			}
		}
		sum := make([]float64, length)
		for i, st := range s {
			for k, w := range a.weights[i] {
				if !(w > 0) {
					rt.Fatalf("tile %d: weight %v at %d, want positive", i, w, k)
				}
				sum[st+k] += float64(w)
			}
		}
		for p, v := range sum {
			if math.Abs(v-1) > 1e-6 {
				rt.Fatalf("starts %v: weights sum to %v at %d, want 1", s, v, p)
			}
		}
		n++
	})
	t.Logf("%d grids", n)
}

func TestEvenGridExamples(t *testing.T) {
	cases := []struct {
		length, size, overlap int
		want                  []int
	}{
		{28, 28, 7, []int{0}},
		{20, 28, 7, []int{0}},
		{56, 28, 7, []int{0, 14, 28}},
		{56, 28, 0, []int{0, 28}},
		{112, 28, 7, []int{0, 21, 42, 63, 84}},
		{64, 32, 8, []int{0, 16, 32}},
		{100, 32, 8, []int{0, 23, 45, 68}},
	}
	for _, c := range cases {
		a := newAxis(c.length, c.size, c.overlap, Linear)
		a.even()
		if !slices.Equal(a.starts, c.want) {
			t.Errorf("length %d, tile %d, overlap %d: starts %v, want %v", c.length, c.size, c.overlap, a.starts, c.want)
		}
	}
}

// recorder records the regions and input shapes of the calls it sees.
type recorder struct {
	mu      sync.Mutex
	regions []ugo.Region
	shapes  [][]int
	model   ugo.Denoiser
}

func (r *recorder) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	reg, ok := ugo.RegionFrom(ctx)
	if !ok {
		return errors.New("no region on the context of a tile call")
	}
	r.mu.Lock()
	r.regions = append(r.regions, reg)
	r.shapes = append(r.shapes, slices.Clone([]int(x.Shape())))
	r.mu.Unlock()
	return r.model.PredictNoise(ctx, dst, x, t)
}

func TestRegions(t *testing.T) {
	x := randTensor(rand.New(rand.NewPCG(5, 6)), 2, 4, 56, 84)
	rec := &recorder{model: pointwise}
	m, err := Tiled(rec, Options{Size: [2]int{28, 28}, Overlap: [2]int{7, 7}, Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	predict(t, m, x, []float32{500})
	var offsets [][2]int
	for i, r := range rec.regions {
		if r.Size != [2]int{56, 84} || r.Scale != [2]int{1, 1} {
			t.Fatalf("call %d: region %+v, want Size [56 84] and Scale [1 1]", i, r)
		}
		if !slices.Equal(rec.shapes[i], []int{2, 4, 28, 28}) {
			t.Fatalf("call %d: input %v, want [2 4 28 28]", i, rec.shapes[i])
		}
		offsets = append(offsets, r.Offset)
	}
	slices.SortFunc(offsets, func(a, b [2]int) int { return (a[0]-b[0])*1000 + a[1] - b[1] })
	var want [][2]int
	for _, y := range []int{0, 14, 28} {
		for _, xx := range []int{0, 19, 37, 56} {
			want = append(want, [2]int{y, xx})
		}
	}
	if !slices.Equal(offsets, want) {
		t.Fatalf("tile offsets %v, want %v", offsets, want)
	}

	// A region already on the context (the sample is itself part of a
	// larger one, at half scale) composes.
	rec.regions = nil
	outer := ugo.Region{Size: [2]int{224, 336}, Offset: [2]int{10, 20}, Scale: [2]int{2, 2}}
	dst := newTensor(x.Shape())
	if err := m.PredictNoise(ugo.WithRegion(context.Background(), outer), dst, x, []float32{500}); err != nil {
		t.Fatal(err)
	}
	for _, r := range rec.regions {
		oy, ox := (r.Offset[0]-10)/2, (r.Offset[1]-20)/2
		if r.Size != outer.Size || r.Scale != outer.Scale || !slices.Contains(want, [2]int{oy, ox}) {
			t.Fatalf("region %+v under %+v: want the outer size and scale and an offset of 10+2y, 20+2x for a tile at (y, x) in %v", r, outer, want)
		}
	}
}

func TestJitter(t *testing.T) {
	x := randTensor(rand.New(rand.NewPCG(7, 8)), 1, 1, 80, 80)
	grids := func(seed uint64, ts ...float32) [][][2]int {
		rec := &recorder{model: pointwise}
		m, err := Tiled(rec, Options{Size: [2]int{32, 32}, Jitter: true, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		var out [][][2]int
		for _, tv := range ts {
			rec.regions = nil
			predict(t, m, x, []float32{tv})
			var g [][2]int
			for _, r := range rec.regions {
				g = append(g, r.Offset)
			}
			out = append(out, g)
		}
		return out
	}
	ts := []float32{999, 979, 959, 939, 919, 899, 879, 859}
	a, b, c := grids(1, ts...), grids(1, ts...), grids(2, ts...)
	distinct := map[[2]int]bool{}
	for i := range ts {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("t=%v: the same seed gave grids %v and %v", ts[i], a[i], b[i])
		}
		for _, o := range a[i] {
			distinct[o] = true
		}
	}
	if len(distinct) <= len(a[0]) {
		t.Fatalf("jitter kept the tiles at %v over %d steps", distinct, len(ts))
	}
	same := 0
	for i := range ts {
		if slices.Equal(a[i], c[i]) {
			same++
		}
	}
	if same == len(ts) {
		t.Fatalf("seeds 1 and 2 gave the same grids %v", a)
	}
}

func TestCancellationBetweenBatches(t *testing.T) {
	for _, batch := range []int{1, 2, 4} {
		ctx, cancel := context.WithCancel(context.Background())
		var calls atomic.Int32
		model := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
			calls.Add(1)
			cancel()
			return pointwise(ctx, dst, x, t)
		})
		m, err := Tiled(model, Options{Size: [2]int{8, 8}, Batch: batch})
		if err != nil {
			t.Fatal(err)
		}
		x := randTensor(rand.New(rand.NewPCG(1, 1)), 1, 1, 64, 64)
		err = m.PredictNoise(ctx, newTensor(x.Shape()), x, []float32{1})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("batch %d: got %v, want context.Canceled", batch, err)
		}
		if n := int(calls.Load()); n > batch {
			t.Fatalf("batch %d: %d tile calls after cancellation in the first batch, want at most %d", batch, n, batch)
		}
	}
}

func TestModelErrorsAndPanics(t *testing.T) {
	boom := errors.New("boom")
	var calls atomic.Int32
	model := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
		if calls.Add(1) == 3 {
			return boom
		}
		return pointwise(ctx, dst, x, t)
	})
	m, _ := Tiled(model, Options{Size: [2]int{8, 8}, Batch: 2})
	x := randTensor(rand.New(rand.NewPCG(1, 1)), 1, 1, 32, 32)
	if err := m.PredictNoise(context.Background(), newTensor(x.Shape()), x, []float32{1}); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the model's error", err)
	}
	panicky := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
		if r, _ := ugo.RegionFrom(ctx); r.Offset != [2]int{} {
			panic("tile panic")
		}
		return pointwise(ctx, dst, x, t)
	})
	m, _ = Tiled(panicky, Options{Size: [2]int{8, 8}, Batch: 2})
	defer func() {
		if r := recover(); r != "tile panic" {
			t.Fatalf("recovered %v, want the model's panic re-raised", r)
		}
	}()
	_ = m.PredictNoise(context.Background(), newTensor(x.Shape()), x, []float32{1})
	t.Fatal("no panic")
}

func TestNoAllocationsPerCall(t *testing.T) {
	model := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
		d := dst.Float32s()
		for i, v := range x.Float32s() {
			d[i] = v * 0.5
		}
		return nil
	})
	x := randTensor(rand.New(rand.NewPCG(1, 1)), 2, 4, 64, 96)
	dst := newTensor(x.Shape())
	ts := []float32{500}
	for _, o := range []Options{{Size: [2]int{32, 32}}, {Size: [2]int{32, 32}, Batch: 3}, {Size: [2]int{32, 32}, Jitter: true, Batch: 2}} {
		m, _ := Tiled(model, o)
		ctx := context.Background()
		if err := m.PredictNoise(ctx, dst, x, ts); err != nil {
			t.Fatal(err)
		}
		if a := testing.AllocsPerRun(20, func() {
			ts[0]-- // a new jitter at every call
			if err := m.PredictNoise(ctx, dst, x, ts); err != nil {
				t.Fatal(err)
			}
		}); a != 0 && !raceEnabled {
			t.Errorf("%+v: %v allocations per call, want 0", o, a)
		}
	}
}

// filler is a model that says whether one call fills the CPU.
type filler struct {
	ugo.DenoiserFunc
	fills bool
}

func (f filler) FillsCPU() bool { return f.fills }

func TestFillsCPUIsTheModels(t *testing.T) {
	for _, fills := range []bool{false, true} {
		m, err := Tiled(filler{pointwise, fills}, Options{Size: [2]int{8, 8}})
		if err != nil {
			t.Fatal(err)
		}
		if got := ugo.FillsCPU(m); got != fills {
			t.Errorf("model filling the CPU %v: tiled model says %v", fills, got)
		}
	}
	m, _ := Tiled(pointwise, Options{Size: [2]int{8, 8}})
	if ugo.FillsCPU(m) {
		t.Error("a model that says nothing: tiled model says it fills the CPU")
	}
}
