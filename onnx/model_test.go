package onnx

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

var _ ugo.Denoiser = (*Model)(nil)
var _ ugo.Denoiser = (*Bound)(nil)
var _ ugo.Denoiser = (*CFG)(nil)

func TestPredictMatchesReference(t *testing.T) {
	embed := func(seed uint64, n, l int) ([][][]float32, *tensor.Dense) {
		rng := rand.New(rand.NewPCG(seed, 1))
		d := randDense(rng, n, l, refD)
		data := d.Float32s()
		rows := make([][][]float32, n)
		for i := range n {
			for j := range l {
				rows[i] = append(rows[i], data[(i*l+j)*refD:(i*l+j+1)*refD])
			}
		}
		return rows, d
	}
	cases := []struct {
		name  string
		model string
		shape []int
		t     []float32
		// roundT is how the model sees timesteps; half marks a float16 model.
		roundT func(float32) float64
		half   bool
		cond   [2]int // batch, length of a bound encoder_hidden_states (0: none)
		tol    float64
	}{
		{"dynamic/1x8x8", "dynamic.onnx", []int{1, 2, 8, 8}, []float32{999}, nil, false, [2]int{}, 1e-4},
		{"dynamic/3x5x7 per-element t", "dynamic.onnx", []int{3, 2, 5, 7}, []float32{0, 250.25, 999}, nil, false, [2]int{}, 1e-4},
		{"dynamic/2x16x12 shared t", "dynamic.onnx", []int{2, 2, 16, 12}, []float32{437.5}, nil, false, [2]int{}, 1e-4},
		{"int64/rounds fractional t", "int64.onnx", []int{3, 2, 6, 6}, []float32{10.5, 499.3, 11.5}, func(v float32) float64 { return math.RoundToEven(float64(v)) }, false, [2]int{}, 1e-4},
		{"fixed/1x8x8", "fixed.onnx", []int{1, 2, 8, 8}, []float32{123.75}, nil, false, [2]int{}, 1e-4},
		{"scalar/batch 3 one t", "scalar.onnx", []int{3, 2, 4, 9}, []float32{640}, nil, false, [2]int{}, 1e-4},
		{"scalar/batch 2 equal ts", "scalar.onnx", []int{2, 2, 4, 4}, []float32{7, 7}, nil, false, [2]int{}, 1e-4},
		{"fp16/2x8x8", "fp16.onnx", []int{2, 2, 8, 8}, []float32{100, 900}, nil, true, [2]int{}, 0.06},
		{"extra/cond batch 1 repeated", "extra.onnx", []int{3, 2, 6, 5}, []float32{1, 2, 3}, nil, false, [2]int{1, 3}, 1e-4},
		{"extra/cond per element", "extra.onnx", []int{2, 2, 6, 5}, []float32{500}, nil, false, [2]int{2, 7}, 1e-4},
		{"fp16scalar/optimum fp16, rank-0 float16 t", "fp16scalar.onnx", []int{3, 2, 6, 5}, []float32{640}, nil, true, [2]int{1, 3}, 0.06},
		{"fp16scalar/batch 2 equal ts", "fp16scalar.onnx", []int{2, 2, 4, 4}, []float32{7.25, 7.25}, nil, true, [2]int{2, 5}, 0.06},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := open(t, tc.model)
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			x := randDense(rng, tc.shape...)
			xs := slices.Clone(x.Float32s())
			dst := zerosLike(x)
			var d ugo.Denoiser = m
			var condOf func(int) [][]float32
			if tc.cond[0] > 0 {
				rows, c := embed(uint64(i), tc.cond[0], tc.cond[1])
				b, err := m.With("encoder_hidden_states", c)
				if err != nil {
					t.Fatal(err)
				}
				d = b
				condOf = func(n int) [][]float32 { return rows[n%tc.cond[0]] }
			}
			if err := d.PredictNoise(context.Background(), dst, x, tc.t); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(xs, x.Float32s()) {
				t.Fatal("PredictNoise modified x")
			}
			tOf := func(n int) float64 {
				v := ugo.TimestepAt(tc.t, n)
				if tc.roundT != nil {
					return tc.roundT(v)
				}
				if tc.half {
					return float64(roundHalf([]float32{v})[0])
				}
				return float64(v)
			}
			in := xs
			if tc.half {
				in = roundHalf(xs)
			}
			want := reference(in, tc.shape, tOf, condOf)
			assertClose(t, dst.Float32s(), want, tc.tol, tc.model)

			// A second call on the same shape reuses the cached tensors and
			// must give the same answer.
			dst2 := zerosLike(x)
			if err := d.PredictNoise(context.Background(), dst2, x, tc.t); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(dst.Float32s(), dst2.Float32s()) {
				t.Fatal("second call differs from the first")
			}
		})
	}
}

func TestInfo(t *testing.T) {
	cases := []struct {
		model           string
		sample, ts, out string
		sampleT, tT     DType
		outT            DType
		tshape          TimestepShape
		dynBatch, dynHW bool
		extra           []string
	}{
		{"dynamic.onnx", "x", "t", "eps", Float32, Float32, Float32, TimestepBatch, true, true, nil},
		{"int64.onnx", "x", "t", "eps", Float32, Int64, Float32, TimestepBatch, true, true, nil},
		{"fixed.onnx", "x", "t", "eps", Float32, Float32, Float32, TimestepBatch, false, false, nil},
		{"fp16.onnx", "x", "t", "eps", Float16, Float16, Float16, TimestepBatch, true, true, nil},
		{"scalar.onnx", "x", "t", "eps", Float32, Float32, Float32, TimestepScalar, true, true, nil},
		{"extra.onnx", "sample", "timestep", "out_sample", Float32, Float32, Float32, TimestepBatch, true, true, []string{"encoder_hidden_states"}},
		{"fp16scalar.onnx", "sample", "timestep", "out_sample", Float16, Float16, Float16, TimestepScalar, true, true, []string{"encoder_hidden_states"}},
	}
	for _, tc := range cases {
		t.Run(tc.model, func(t *testing.T) {
			mi := open(t, tc.model).Info()
			if mi.Sample.Name != tc.sample || mi.Timestep.Name != tc.ts || mi.Output.Name != tc.out {
				t.Errorf("roles = %s, %s, %s; want %s, %s, %s", mi.Sample.Name, mi.Timestep.Name, mi.Output.Name, tc.sample, tc.ts, tc.out)
			}
			if mi.Sample.DType != tc.sampleT || mi.Timestep.DType != tc.tT || mi.Output.DType != tc.outT {
				t.Errorf("dtypes = %v, %v, %v; want %v, %v, %v", mi.Sample.DType, mi.Timestep.DType, mi.Output.DType, tc.sampleT, tc.tT, tc.outT)
			}
			if mi.TimestepShape != tc.tshape {
				t.Errorf("TimestepShape = %v, want %v", mi.TimestepShape, tc.tshape)
			}
			if mi.DynamicBatch() != tc.dynBatch || mi.DynamicSize() != tc.dynHW {
				t.Errorf("DynamicBatch, DynamicSize = %v, %v; want %v, %v", mi.DynamicBatch(), mi.DynamicSize(), tc.dynBatch, tc.dynHW)
			}
			var extra []string
			for _, e := range mi.Extra {
				extra = append(extra, e.Name)
			}
			if !slices.Equal(extra, tc.extra) {
				t.Errorf("Extra = %v, want %v", extra, tc.extra)
			}
			if !slices.Equal(mi.Providers, []string{"CPUExecutionProvider"}) {
				t.Errorf("Providers = %v", mi.Providers)
			}
			if mi.RuntimeVersion == "" {
				t.Error("RuntimeVersion is empty")
			}
		})
	}
}

func TestNameOverrides(t *testing.T) {
	m := open(t, "extra.onnx", WithInputNames("sample", "timestep"), WithOutputName("out_sample"))
	if mi := m.Info(); mi.Sample.Name != "sample" || mi.Timestep.Name != "timestep" || mi.Output.Name != "out_sample" {
		t.Fatalf("roles = %v %v %v", mi.Sample, mi.Timestep, mi.Output)
	}
}

func TestShapeErrors(t *testing.T) {
	fixed := open(t, "fixed.onnx")
	scalar := open(t, "scalar.onnx")
	dyn := open(t, "dynamic.onnx")
	cases := []struct {
		name  string
		m     *Model
		shape []int
		t     []float32
		want  string
	}{
		{"fixed height", fixed, []int{1, 2, 16, 8}, []float32{1}, "H = 8"},
		{"fixed width", fixed, []int{1, 2, 8, 4}, []float32{1}, "W = 8"},
		{"fixed batch", fixed, []int{2, 2, 8, 8}, []float32{1}, "N = 1"},
		{"channels", dyn, []int{1, 3, 8, 8}, []float32{1}, "C = 2"},
		{"rank 5 on a 2-D model", dyn, []int{1, 2, 2, 8, 8}, []float32{1}, "rank 4"},
		{"scalar t, differing", scalar, []int{2, 2, 4, 4}, []float32{1, 2}, "one timestep per call"},
		{"t count", dyn, []int{2, 2, 4, 4}, []float32{1, 2, 3}, "timesteps"},
		{"t NaN", dyn, []int{1, 2, 4, 4}, []float32{float32(math.NaN())}, "finite"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := zerosLike(tensor.New(tensor.WithShape(tc.shape...), tensor.Of(tensor.Float32)))
			err := tc.m.PredictNoise(context.Background(), zerosLike(x), x, tc.t)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	t.Run("CheckShape", func(t *testing.T) {
		var se *ugo.ShapeError
		if err := fixed.Info().CheckShape([]int{1, 2, 16, 16}); !errors.As(err, &se) {
			t.Fatalf("CheckShape: %v, want a *ugo.ShapeError", err)
		}
		if err := dyn.Info().CheckShape([]int{5, 2, 56, 40}); err != nil {
			t.Fatalf("CheckShape on a dynamic model: %v", err)
		}
	})
	t.Run("bad tensors", func(t *testing.T) {
		x := zerosLike(tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float32)))
		bad := []struct {
			name   string
			dst, x *tensor.Dense
		}{
			{"float64 x", zerosLike(x), tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float64))},
			{"rank 3 x", tensor.New(tensor.WithShape(2, 4, 4), tensor.Of(tensor.Float32)), tensor.New(tensor.WithShape(2, 4, 4), tensor.Of(tensor.Float32))},
			{"dst shape", tensor.New(tensor.WithShape(1, 2, 4, 5), tensor.Of(tensor.Float32)), x},
			{"nil x", zerosLike(x), nil},
		}
		for _, b := range bad {
			var se *ugo.ShapeError
			if err := dyn.PredictNoise(context.Background(), b.dst, b.x, []float32{1}); !errors.As(err, &se) {
				t.Errorf("%s: err = %v, want a *ugo.ShapeError", b.name, err)
			}
		}
	})
}

func TestNonFiniteOutput(t *testing.T) {
	for _, name := range []string{"dynamic.onnx", "fp16.onnx"} {
		t.Run(name, func(t *testing.T) {
			m := open(t, name)
			x := zerosLike(tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float32)))
			x.Float32s()[5] = float32(math.NaN())
			err := m.PredictNoise(context.Background(), zerosLike(x), x, []float32{1})
			if !errors.Is(err, ErrNonFinite) {
				t.Fatalf("err = %v, want ErrNonFinite", err)
			}
		})
	}
	t.Run("fp16 overflow", func(t *testing.T) {
		m := open(t, "fp16.onnx")
		x := zerosLike(tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float32)))
		for i := range x.Float32s() {
			x.Float32s()[i] = 60000 // finite in float16, the conv overflows it
		}
		if err := m.PredictNoise(context.Background(), zerosLike(x), x, []float32{1}); !errors.Is(err, ErrNonFinite) {
			t.Fatalf("err = %v, want ErrNonFinite", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	requireRuntime(t)
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.onnx")
	if err := os.WriteFile(corrupt, []byte("this is not a protobuf \x00\x01\x02 model"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.onnx")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.onnx")
	whole, err := os.ReadFile(modelPath("dynamic.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truncated, whole[:len(whole)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		path string
		opts []Option
		want string
	}{
		{"missing file", filepath.Join(dir, "nope.onnx"), nil, "no such file"},
		{"empty file", empty, nil, "empty"},
		{"corrupt file", corrupt, nil, "not a loadable ONNX model"},
		{"truncated file", truncated, nil, "not a loadable ONNX model"},
		{"unknown sample name", modelPath("dynamic.onnx"), []Option{WithInputNames("latents", "")}, `no sample (x) input named "latents"`},
		{"unknown timestep name", modelPath("dynamic.onnx"), []Option{WithInputNames("", "sigma")}, `no timestep (t) input named "sigma"`},
		{"unknown output name", modelPath("dynamic.onnx"), []Option{WithOutputName("noise_pred")}, `no noise (eps) output named "noise_pred"`},
		{"swapped names: rank", modelPath("dynamic.onnx"), []Option{WithInputNames("t", "x")}, "has rank 1, want 4"},
		{"swapped names on the int64 model", modelPath("int64.onnx"), []Option{WithInputNames("t", "x")}, "has rank 1"},
		{"negative threads", modelPath("dynamic.onnx"), []Option{WithThreads(-1, 0)}, "thread counts"},
		{"negative device", modelPath("dynamic.onnx"), []Option{WithCUDA(-1, nil)}, "negative"},
		{"bad fallback", modelPath("dynamic.onnx"), []Option{WithFallback(Fallback(7))}, "unknown policy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Open(tc.path, tc.opts...)
			if err == nil {
				m.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestWith(t *testing.T) {
	m := open(t, "extra.onnx")
	x := zerosLike(tensor.New(tensor.WithShape(2, 2, 4, 4), tensor.Of(tensor.Float32)))
	t.Run("unbound", func(t *testing.T) {
		err := m.PredictNoise(context.Background(), zerosLike(x), x, []float32{1})
		if err == nil || !strings.Contains(err.Error(), "not bound") {
			t.Fatalf("err = %v, want an unbound-input error", err)
		}
	})
	bad := []struct {
		name  string
		input string
		value *tensor.Dense
		want  string
	}{
		{"unknown input", "text_embeds", tensor.New(tensor.WithShape(1, 3, 4), tensor.Of(tensor.Float32)), "no extra input"},
		{"sample input", "sample", tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float32)), "only extra inputs"},
		{"nil", "encoder_hidden_states", nil, "nil"},
		{"rank", "encoder_hidden_states", tensor.New(tensor.WithShape(3, 4), tensor.Of(tensor.Float32)), "rank 3"},
		{"fixed dim", "encoder_hidden_states", tensor.New(tensor.WithShape(1, 3, 5), tensor.Of(tensor.Float32)), "dimension 2 = 4"},
		{"dtype", "encoder_hidden_states", tensor.New(tensor.WithShape(1, 3, 4), tensor.Of(tensor.Bool)), "not supported"},
		{"NaN", "encoder_hidden_states", tensor.New(tensor.WithShape(1, 1, 4), tensor.WithBacking([]float32{0, float32(math.NaN()), 0, 0})), "finite"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			_, err := m.With(b.input, b.value)
			if err == nil || !strings.Contains(err.Error(), b.want) {
				t.Fatalf("err = %v, want it to mention %q", err, b.want)
			}
		})
	}
	t.Run("batch mismatch", func(t *testing.T) {
		b, err := m.With("encoder_hidden_states", tensor.New(tensor.WithShape(3, 2, 4), tensor.Of(tensor.Float32)))
		if err != nil {
			t.Fatal(err)
		}
		err = b.PredictNoise(context.Background(), zerosLike(x), x, []float32{1})
		if err == nil || !strings.Contains(err.Error(), "batch 3") {
			t.Fatalf("err = %v, want a batch error", err)
		}
	})
	t.Run("int values feed float input", func(t *testing.T) {
		b, err := m.With("encoder_hidden_states", tensor.New(tensor.WithShape(1, 1, 4), tensor.WithBacking([]int64{1, 2, 3, 4})))
		if err != nil {
			t.Fatal(err)
		}
		dst := zerosLike(x)
		if err := b.PredictNoise(context.Background(), dst, x, []float32{0}); err != nil {
			t.Fatal(err)
		}
		want := reference(x.Float32s(), []int{2, 2, 4, 4}, func(int) float64 { return 0 },
			func(int) [][]float32 { return [][]float32{{1, 2, 3, 4}} })
		assertClose(t, dst.Float32s(), want, 1e-4, "int-bound")
	})
}

func TestBatchedCFG(t *testing.T) {
	m := open(t, "extra.onnx")
	rng := rand.New(rand.NewPCG(3, 3))
	x := randDense(rng, 2, 2, 6, 6)
	ts := []float32{300, 700}
	cases := []struct {
		name        string
		condL, uncL int
		batched     bool
	}{
		{"same length: one call", 3, 3, true},
		{"different lengths: two calls", 3, 5, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := randDense(rng, 1, tc.condL, refD)
			u := randDense(rng, 1, tc.uncL, refD)
			cb, err := m.With("encoder_hidden_states", c)
			if err != nil {
				t.Fatal(err)
			}
			ub, err := m.With("encoder_hidden_states", u)
			if err != nil {
				t.Fatal(err)
			}
			const scale = 7.5
			g, err := BatchedCFG(cb, ub, scale)
			if err != nil {
				t.Fatal(err)
			}
			if g.Batched() != tc.batched {
				t.Fatalf("Batched() = %v, want %v", g.Batched(), tc.batched)
			}
			dst := zerosLike(x)
			if err := g.PredictNoise(context.Background(), dst, x, ts); err != nil {
				t.Fatal(err)
			}
			rows := func(d *tensor.Dense, l int) func(int) [][]float32 {
				return func(int) [][]float32 {
					var r [][]float32
					for j := range l {
						r = append(r, d.Float32s()[j*refD:(j+1)*refD])
					}
					return r
				}
			}
			tOf := func(n int) float64 { return float64(ts[n]) }
			ec := reference(x.Float32s(), []int{2, 2, 6, 6}, tOf, rows(c, tc.condL))
			eu := reference(x.Float32s(), []int{2, 2, 6, 6}, tOf, rows(u, tc.uncL))
			want := make([]float32, len(ec))
			for i := range want {
				want[i] = eu[i] + scale*(ec[i]-eu[i])
			}
			assertClose(t, dst.Float32s(), want, 1e-3, "cfg")
		})
	}
	t.Run("errors", func(t *testing.T) {
		other := open(t, "extra.onnx")
		e := tensor.New(tensor.WithShape(1, 1, refD), tensor.Of(tensor.Float32))
		a, _ := m.With("encoder_hidden_states", e)
		b, _ := other.With("encoder_hidden_states", e)
		if _, err := BatchedCFG(a, b, 2); err == nil {
			t.Error("BatchedCFG over two models succeeded")
		}
		if _, err := BatchedCFG(a, nil, 2); err == nil {
			t.Error("BatchedCFG with nil succeeded")
		}
		if _, err := BatchedCFG(a, a, math.Inf(1)); err == nil {
			t.Error("BatchedCFG with an infinite scale succeeded")
		}
		if _, err := BatchedCFG(a, a, 1e39); err == nil {
			t.Error("BatchedCFG with a scale beyond float32 succeeded")
		}
		if _, err := BatchedCFG(m.root, a, 2); err == nil {
			t.Error("BatchedCFG with an unbound denoiser succeeded")
		}
	})
}

// TestConcurrent runs 8 goroutines over one model with different shapes,
// timesteps and bindings, checking every answer (run it with -race).
func TestConcurrent(t *testing.T) {
	m := open(t, "extra.onnx")
	shapes := [][]int{{1, 2, 8, 8}, {2, 2, 5, 7}, {3, 2, 4, 4}, {1, 2, 16, 6}}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 11))
			c := randDense(rng, 1, 1+g%3, refD)
			b, err := m.With("encoder_hidden_states", c)
			if err != nil {
				errs <- err
				return
			}
			cond := func(int) [][]float32 {
				var r [][]float32
				for j := range 1 + g%3 {
					r = append(r, c.Float32s()[j*refD:(j+1)*refD])
				}
				return r
			}
			for it := range 12 {
				shape := shapes[(g+it)%len(shapes)]
				x := randDense(rng, shape...)
				ts := []float32{float32(rng.IntN(1000))}
				dst := zerosLike(x)
				if err := b.PredictNoise(context.Background(), dst, x, ts); err != nil {
					errs <- err
					return
				}
				want := reference(x.Float32s(), shape, func(int) float64 { return float64(ts[0]) }, cond)
				if d, i := maxDiff(t, dst.Float32s(), want); d > 1e-4 {
					errs <- errors.New("goroutine result mismatch at " + fmtShape(shape) + " index " + fmtShape([]int{i}))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestClose(t *testing.T) {
	requireRuntime(t)
	m, err := Open(modelPath("dynamic.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	x := zerosLike(tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float32)))
	if err := m.PredictNoise(context.Background(), zerosLike(x), x, []float32{1}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := m.PredictNoise(context.Background(), zerosLike(x), x, []float32{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

func TestThreads(t *testing.T) {
	for _, th := range [][2]int{{1, 1}, {2, 2}, {0, 0}} {
		m := open(t, "dynamic.onnx", WithThreads(th[0], th[1]))
		rng := rand.New(rand.NewPCG(5, 5))
		x := randDense(rng, 2, 2, 9, 9)
		dst := zerosLike(x)
		if err := m.PredictNoise(context.Background(), dst, x, []float32{3, 4}); err != nil {
			t.Fatalf("threads %v: %v", th, err)
		}
		want := reference(x.Float32s(), []int{2, 2, 9, 9}, func(n int) float64 { return float64(3 + n) }, nil)
		assertClose(t, dst.Float32s(), want, 1e-4, "threads")
	}
}
