package onnx

import (
	"bytes"
	"context"
	"errors"
	ort "github.com/yalue/onnxruntime_go"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"pgregory.net/rapid"
	"slices"
	"strings"
	"sync"
	"testing"

	"gorgonia.org/tensor"
)

// shippedModel is the path of a model under testdata/models.
func shippedModel(name string) string { return filepath.Join("..", "testdata", "models", name) }

// specTol bounds |specialised - dynamic| relative to max(1, |dynamic|) at
// OptimizeAll, where the NCHWc layout pass, knowing the shapes, fuses
// residual Adds into convolutions and so rounds differently: 4e-7 to 7e-7
// measured on the shipped models (a few float32 ulps), with a margin for
// other CPUs' kernels.
const specTol = 2e-6

// maxRelDiff returns max |a-b| / max(1, |b|).
func maxRelDiff(tb testing.TB, a, b []float32) float64 {
	tb.Helper()
	if len(a) != len(b) {
		tb.Fatalf("length %d != %d", len(a), len(b))
	}
	worst := 0.0
	for i := range a {
		d := math.Abs(float64(a[i])-float64(b[i])) / max(1, math.Abs(float64(b[i])))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		worst = max(worst, d)
	}
	return worst
}

// denoiseCase is a denoiser call: a model, how to bind it, and sample shapes.
type denoiseCase struct {
	name   string
	path   string
	shapes [][]int
	bind   func(tb testing.TB, m *Model) interface {
		PredictNoise(context.Context, *tensor.Dense, *tensor.Dense, []float32) error
	}
}

func plainBind(_ testing.TB, m *Model) interface {
	PredictNoise(context.Context, *tensor.Dense, *tensor.Dense, []float32) error
} {
	return m
}

// cfgBind binds the latent UNet's encoder_hidden_states for cond and uncond
// and returns their batched classifier-free-guidance combination, at scale
// 1 so that the combination does not amplify the differences compared.
func cfgBind(tb testing.TB, m *Model) interface {
	PredictNoise(context.Context, *tensor.Dense, *tensor.Dense, []float32) error
} {
	rng := rand.New(rand.NewPCG(7, 8))
	cond, err := m.With("encoder_hidden_states", randDense(rng, 1, 77, 64))
	if err != nil {
		tb.Fatal(err)
	}
	uncond, err := m.With("encoder_hidden_states", randDense(rng, 1, 77, 64))
	if err != nil {
		tb.Fatal(err)
	}
	g, err := BatchedCFG(cond, uncond, 1)
	if err != nil {
		tb.Fatal(err)
	}
	if !g.Batched() {
		tb.Fatal("CFG not batched")
	}
	return g
}

var denoiseCases = []denoiseCase{
	{"fashion", shippedModel("fashion_unet.onnx"), [][]int{{1, 1, 28, 28}, {2, 1, 56, 56}, {1, 1, 64, 48}, {3, 1, 12, 20}}, plainBind},
	{"fashion fixed 28", shippedModel("fashion_unet_fixed28.onnx"), [][]int{{2, 1, 28, 28}}, plainBind},
	{"video", shippedModel("fashion_video.onnx"), [][]int{{1, 1, 4, 28, 28}, {1, 1, 2, 16, 16}}, plainBind},
	{"latent UNet, batched CFG", shippedModel("fashion_ldm_eps/unet/model.onnx"), [][]int{{1, 4, 8, 8}, {2, 4, 16, 16}}, cfgBind},
}

// predict runs d on a deterministic sample of the shape.
func predict(tb testing.TB, d interface {
	PredictNoise(context.Context, *tensor.Dense, *tensor.Dense, []float32) error
}, shape []int, seed uint64) []float32 {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, uint64(len(shape))))
	x := randDense(rng, shape...)
	ts := make([]float32, shape[0])
	for i := range ts {
		ts[i] = float32(999 - 137*i)
	}
	dst := zerosLike(x)
	if err := d.PredictNoise(context.Background(), dst, x, ts); err != nil {
		tb.Fatalf("shape %v: %v", shape, err)
	}
	return dst.Float32s()
}

// TestShapeSessionsMatchDynamic compares every shipped denoiser's
// specialised sessions with its dynamic session: bit for bit at
// OptimizeExtended, where the only change is the folded shape arithmetic,
// and within specTol at the default OptimizeAll.
func TestShapeSessionsMatchDynamic(t *testing.T) {
	requireRuntime(t)
	for _, c := range denoiseCases {
		for _, level := range []GraphOptimization{OptimizeAll, OptimizeExtended} {
			opts := []Option{WithThreads(1, 1), WithGraphOptimization(level)}
			dyn, err := Open(c.path, opts...)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := Open(c.path, append(opts, WithShapeSessions(len(c.shapes)))...)
			if err != nil {
				t.Fatal(err)
			}
			dd, sd := c.bind(t, dyn), c.bind(t, spec)
			for i, shape := range c.shapes {
				want := predict(t, dd, shape, uint64(i))
				got := predict(t, sd, shape, uint64(i))
				again := predict(t, sd, shape, uint64(i))
				if !slices.Equal(got, again) {
					t.Errorf("%s %v (%s): two calls of the specialised session differ", c.name, shape, level)
				}
				rel := maxRelDiff(t, got, want)
				switch {
				case level == OptimizeExtended && rel != 0:
					t.Errorf("%s %v (%s): specialised differs from dynamic by %g, want bit-identical", c.name, shape, level, rel)
				case rel > specTol:
					t.Errorf("%s %v (%s): specialised differs from dynamic by %g (relative), want <= %g", c.name, shape, level, rel, specTol)
				}
				t.Logf("%s %v (%s): max relative difference %g", c.name, shape, level, rel)
			}
			ss := spec.ShapeSessions()
			if len(ss) != len(c.shapes) {
				t.Errorf("%s (%s): %d shape sessions, want %d", c.name, level, len(ss), len(c.shapes))
			}
			for i, s := range ss {
				if s.Err != nil {
					t.Errorf("%s (%s): session %d failed: %v", c.name, level, i, s.Err)
				}
				batch := int64(c.shapes[i][0])
				if c.bind != nil && strings.Contains(c.name, "CFG") {
					batch *= 2
				}
				if got := s.Inputs[0].Dims; got[0] != batch || got[len(got)-1] != int64(c.shapes[i][len(c.shapes[i])-1]) {
					t.Errorf("%s: session %d has sample dims %v for shape %v", c.name, i, got, c.shapes[i])
				}
			}
			if err := dyn.Close(); err != nil {
				t.Error(err)
			}
			if err := spec.Close(); err != nil {
				t.Error(err)
			}
			if got := spec.ShapeSessions(); len(got) != 0 {
				t.Errorf("%s: %d shape sessions after Close", c.name, len(got))
			}
		}
	}
}

// TestShapeSessionsTestModels runs the small test models of every
// timestep form (float32 and int64 [N], rank 0, float16, an extra input)
// through specialised sessions: their outputs equal the dynamic session's
// bit for bit, and the Go reference's.
func TestShapeSessionsTestModels(t *testing.T) {
	requireRuntime(t)
	ctx := context.Background()
	for _, name := range []string{"dynamic.onnx", "int64.onnx", "scalar.onnx", "fp16.onnx", "fp16scalar.onnx", "extra.onnx", "video.onnx"} {
		dyn := open(t, name)
		spec := open(t, name, WithShapeSessions(2))
		rng := rand.New(rand.NewPCG(3, 4))
		shape := []int{2, refC, 6, 5}
		if strings.HasPrefix(name, "video") {
			shape = []int{2, refC, 3, 6, 5}
		}
		x := randDense(rng, shape...)
		ts := []float32{700, 700}
		var dd, sd interface {
			PredictNoise(context.Context, *tensor.Dense, *tensor.Dense, []float32) error
		} = dyn, spec
		if len(dyn.Info().Extra) > 0 {
			cond := randDense(rng, 1, 3, refD)
			bd, err := dyn.With("encoder_hidden_states", cond)
			if err != nil {
				t.Fatal(err)
			}
			bs, err := spec.With("encoder_hidden_states", cond)
			if err != nil {
				t.Fatal(err)
			}
			dd, sd = bd, bs
		}
		want, got := zerosLike(x), zerosLike(x)
		if err := dd.PredictNoise(ctx, want, x, ts); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := sd.PredictNoise(ctx, got, x, ts); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(got.Float32s(), want.Float32s()) {
			d, i := maxDiff(t, got.Float32s(), want.Float32s())
			t.Errorf("%s: specialised differs from dynamic by %g at %d", name, d, i)
		}
		ss := spec.ShapeSessions()
		if len(ss) != 1 || ss[0].Err != nil {
			t.Fatalf("%s: shape sessions %+v, want one that works", name, ss)
		}
		if !slices.Equal(ss[0].Inputs[0].Dims, []int64{2, refC, 6, 5}) && !slices.Equal(ss[0].Inputs[0].Dims, []int64{2, refC, 3, 6, 5}) {
			t.Errorf("%s: sample fixed to %v", name, ss[0].Inputs[0].Dims)
		}
		if name == "scalar.onnx" || name == "fp16scalar.onnx" {
			if len(ss[0].Inputs[1].Dims) != 0 {
				t.Errorf("%s: a rank-0 timestep fixed to %v", name, ss[0].Inputs[1].Dims)
			}
		} else if !slices.Equal(ss[0].Inputs[1].Dims, []int64{2}) {
			t.Errorf("%s: timestep fixed to %v, want [2]", name, ss[0].Inputs[1].Dims)
		}
	}
}

// TestShapeSessionsCap checks that at most max sessions are created, that
// calls of further shapes run in the dynamic session (bit for bit its
// output), and that a shape seen before keeps its session.
func TestShapeSessionsCap(t *testing.T) {
	requireRuntime(t)
	path := shippedModel("fashion_unet.onnx")
	opts := []Option{WithThreads(1, 1)}
	dyn, err := Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer dyn.Close()
	spec, err := Open(path, append(opts, WithShapeSessions(2))...)
	if err != nil {
		t.Fatal(err)
	}
	defer spec.Close()
	shapes := [][]int{{1, 1, 16, 16}, {1, 1, 8, 12}, {1, 1, 12, 8}, {2, 1, 16, 16}, {1, 1, 16, 16}}
	for i, shape := range shapes {
		got := predict(t, spec, shape, 9)
		want := predict(t, dyn, shape, 9)
		if i >= 2 && i < 4 && !slices.Equal(got, want) {
			d, _ := maxDiff(t, got, want)
			t.Errorf("shape %v beyond the cap: differs from the dynamic session by %g, want bit-identical", shape, d)
		}
		if rel := maxRelDiff(t, got, want); rel > specTol {
			t.Errorf("shape %v: differs from the dynamic session by %g", shape, rel)
		}
	}
	ss := spec.ShapeSessions()
	if len(ss) != 2 {
		t.Fatalf("%d shape sessions, want 2", len(ss))
	}
	for i, want := range [][]int64{{1, 1, 16, 16}, {1, 1, 8, 12}} {
		if !slices.Equal(ss[i].Inputs[0].Dims, want) || ss[i].Err != nil {
			t.Errorf("session %d: %v (err %v), want sample %v", i, ss[i].Inputs[0], ss[i].Err, want)
		}
	}
}

// TestShapeSessionsConcurrent calls one model at two shapes from several
// goroutines at once, as Upsample Guidance does, with room for one
// specialised session: every call of a shape gives the same result, equal
// to the dynamic session's within specTol, and only one session exists.
func TestShapeSessionsConcurrent(t *testing.T) {
	requireRuntime(t)
	path := shippedModel("fashion_unet.onnx")
	dyn, err := Open(path, WithThreads(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer dyn.Close()
	for _, max := range []int{1, 2} {
		spec, err := Open(path, WithThreads(1, 1), WithShapeSessions(max))
		if err != nil {
			t.Fatal(err)
		}
		shapes := [][]int{{1, 1, 16, 16}, {1, 1, 8, 8}}
		const calls = 6
		results := make([][][]float32, len(shapes))
		var wg sync.WaitGroup
		for s := range shapes {
			results[s] = make([][]float32, calls)
			for k := range calls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(5, 6))
					x := randDense(rng, shapes[s]...)
					dst := zerosLike(x)
					if err := spec.PredictNoise(context.Background(), dst, x, []float32{400}); err != nil {
						t.Error(err)
						return
					}
					results[s][k] = dst.Float32s()
				}()
			}
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		for s, shape := range shapes {
			rng := rand.New(rand.NewPCG(5, 6))
			x := randDense(rng, shape...)
			want := zerosLike(x)
			if err := dyn.PredictNoise(context.Background(), want, x, []float32{400}); err != nil {
				t.Fatal(err)
			}
			for k := range calls {
				if !slices.Equal(results[s][k], results[s][0]) {
					t.Errorf("max %d, shape %v: call %d differs from call 0", max, shape, k)
				}
			}
			if rel := maxRelDiff(t, results[s][0], want.Float32s()); rel > specTol {
				t.Errorf("max %d, shape %v: differs from the dynamic session by %g", max, shape, rel)
			}
		}
		if n := len(spec.ShapeSessions()); n != max {
			t.Errorf("max %d: %d shape sessions", max, n)
		}
		if err := spec.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestShapeSessionsOptions(t *testing.T) {
	requireRuntime(t)
	for _, n := range []int{0, -1, MaxShapeSessions + 1} {
		if m, err := Open(modelPath("dynamic.onnx"), WithShapeSessions(n)); err == nil || !strings.Contains(err.Error(), "WithShapeSessions") {
			m.Close()
			t.Errorf("Open with WithShapeSessions(%d): err %v, want a WithShapeSessions error", n, err)
		}
		if g, err := OpenGraph(modelPath("dynamic.onnx"), WithShapeSessions(n)); err == nil || !strings.Contains(err.Error(), "WithShapeSessions") {
			g.Close()
			t.Errorf("OpenGraph with WithShapeSessions(%d): err %v, want a WithShapeSessions error", n, err)
		}
	}
	m := open(t, "dynamic.onnx", WithShapeSessions(MaxShapeSessions))
	if ss := m.ShapeSessions(); ss != nil {
		t.Errorf("shape sessions before any call: %v", ss)
	}
	var nilModel *Model
	var nilGraph *Graph
	if nilModel.ShapeSessions() != nil || nilGraph.ShapeSessions() != nil {
		t.Error("a nil Model or Graph has shape sessions")
	}
	plain := open(t, "dynamic.onnx")
	predict(t, plain, []int{1, refC, 4, 4}, 1)
	if ss := plain.ShapeSessions(); ss != nil {
		t.Errorf("shape sessions without WithShapeSessions: %v", ss)
	}
}

// TestShapeSessionsFailure: a shape whose fixed graph the runtime rejects
// when it creates the session (pool2.onnx at an odd width) is logged,
// reported by ShapeSessions and run in the dynamic session, which fails
// with its *RunError as it does without the option.
func TestShapeSessionsFailure(t *testing.T) {
	requireRuntime(t)
	var logs bytes.Buffer
	m := open(t, "pool2.onnx", WithShapeSessions(2), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	x := randDense(rand.New(rand.NewPCG(1, 1)), 1, refC, 4, 5)
	err := m.PredictNoise(context.Background(), zerosLike(x), x, []float32{1})
	var re *RunError
	if !errors.As(err, &re) {
		t.Fatalf("odd width: err %v, want a *RunError", err)
	}
	ss := m.ShapeSessions()
	if len(ss) != 1 {
		t.Fatalf("%d shape sessions, want 1", len(ss))
	}
	if ss[0].Err == nil || !strings.Contains(ss[0].Err.Error(), "Incompatible dimensions") {
		t.Errorf("shape session error %v, want the runtime's shape inference error", ss[0].Err)
	}
	if !strings.Contains(logs.String(), "shape-specialised") || !strings.Contains(logs.String(), "x[1,2,4,5]") {
		t.Errorf("the failed shape session was not logged: %q", logs.String())
	}
	// An even size still works and gets the other session.
	predict(t, m, []int{1, refC, 4, 6}, 2)
	if n := len(m.ShapeSessions()); n != 2 {
		t.Errorf("%d shape sessions after a good shape, want 2", n)
	}
}

// TestShapeSessionsExternalData opens the tiny SD UNet, whose weights are
// stored beside it (unet/weights.pb), from the rewritten model in memory.
func TestShapeSessionsExternalData(t *testing.T) {
	requireRuntime(t)
	path := filepath.Join("..", "testdata", "sdtiny", "fp32", "unet", "model.onnx")
	dyn, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer dyn.Close()
	spec, err := Open(path, WithShapeSessions(1), WithGraphOptimization(OptimizeExtended))
	if err != nil {
		t.Fatal(err)
	}
	defer spec.Close()
	emb := dyn.Info().Extra[0]
	rng := rand.New(rand.NewPCG(1, 2))
	cond := randDense(rng, 1, 7, int(emb.Dims[2]))
	bd, err := dyn.With(emb.Name, cond)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := spec.With(emb.Name, cond)
	if err != nil {
		t.Fatal(err)
	}
	shape := []int{1, int(dyn.Info().Sample.Dims[1]), 8, 8}
	if shape[1] <= 0 {
		shape[1] = 4
	}
	want, got := predict(t, bd, shape, 1), predict(t, bs, shape, 1)
	ss := spec.ShapeSessions()
	if len(ss) != 1 || ss[0].Err != nil {
		t.Fatalf("shape sessions %+v, want one that works", ss)
	}
	if rel := maxRelDiff(t, got, want); rel > specTol {
		t.Errorf("specialised differs from dynamic by %g", rel)
	}
}

// TestShapeSessionsGraph runs the latent model's text encoder and VAE
// decoder as Graphs with specialised sessions: equal to the dynamic
// session's output within specTol, and the same in repeated calls.
func TestShapeSessionsGraph(t *testing.T) {
	requireRuntime(t)
	dir := shippedModel("fashion_ldm_eps")
	ids := make([]int64, 77)
	for i := range ids {
		ids[i] = int64(49406 + min(i, 1))
		if i > 0 && i < 5 {
			ids[i] = int64(320 + 17*i)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		path    string
		in, out string
		input   *tensor.Dense
		outDims []int
	}{
		{filepath.Join(dir, "text_encoder", "model.onnx"), "input_ids", "last_hidden_state",
			tensor.New(tensor.WithShape(1, 77), tensor.WithBacking(ids)), []int{1, 77, 64}},
		{filepath.Join(dir, "vae_decoder", "model.onnx"), "latent_sample", "sample", randDense(rng, 1, 4, 8, 8), []int{1, 3, 32, 32}},
	}
	for _, c := range cases {
		run := func(opts ...Option) ([]float32, []ShapeSession) {
			g, err := OpenGraph(c.path, append(opts, WithOutputs(c.out))...)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			var out []float32
			for range 2 {
				dst := tensor.New(tensor.WithShape(c.outDims...), tensor.Of(tensor.Float32))
				if err := g.Run(context.Background(), map[string]*tensor.Dense{c.in: c.input}, map[string]*tensor.Dense{c.out: dst}); err != nil {
					t.Fatalf("%s: %v", c.path, err)
				}
				if out != nil && !slices.Equal(out, dst.Float32s()) {
					t.Errorf("%s: two calls differ", c.path)
				}
				out = dst.Float32s()
			}
			return out, g.ShapeSessions()
		}
		for _, level := range []GraphOptimization{OptimizeAll, OptimizeExtended} {
			want, _ := run(WithGraphOptimization(level))
			got, ss := run(WithGraphOptimization(level), WithShapeSessions(1))
			if len(ss) != 1 || ss[0].Err != nil {
				t.Fatalf("%s: shape sessions %+v, want one that works", c.path, ss)
			}
			// The text encoder differs even at OptimizeExtended: with its
			// shapes known, the runtime turns MatMul + Add into Gemm and
			// fuses a SkipLayerNormalization.
			rel := maxRelDiff(t, got, want)
			if rel > specTol {
				t.Errorf("%s (%s): specialised differs from dynamic by %g", c.path, level, rel)
			}
			t.Logf("%s (%s): %v, max relative difference %g", c.path, level, ss[0].Inputs, rel)
		}
	}
}

// TestFixInputDimsIdentity: rewriting no input copies every shipped model
// byte for byte, and fixing dimensions twice equals fixing them once.
func TestFixInputDimsIdentity(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "models", "*.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob(filepath.Join("..", "testdata", "onnx", "*.onnx"))
	files = append(files, more...)
	if len(files) < 10 {
		t.Fatalf("only %d models found", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		same, err := fixInputDims(data, nil)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !bytes.Equal(same, data) {
			t.Errorf("%s: rewriting no input changed the file", f)
		}
	}
	data, err := os.ReadFile(shippedModel("fashion_unet.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	dims := map[string][]int64{"x": {2, 1, 56, 40}, "t": {2}}
	once, err := fixInputDims(data, dims)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := fixInputDims(once, dims)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(once, twice) {
		t.Error("fixing the dimensions twice differs from fixing them once")
	}
	if len(once) >= len(data)+64 || len(once) < len(data)-64 {
		t.Errorf("rewritten model %d bytes, original %d", len(once), len(data))
	}
}

// TestFixInputDimsRuntime: the runtime reads the dimensions fixInputDims
// wrote, for random shapes of the dynamic test model (its N, H and W are
// symbolic).
func TestFixInputDimsRuntime(t *testing.T) {
	requireRuntime(t)
	data, err := os.ReadFile(modelPath("extra.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.Int64Range(1, 16).Draw(rt, "n")
		h := rapid.Int64Range(1, 300).Draw(rt, "h")
		w := rapid.Int64Range(1, 300).Draw(rt, "w")
		l := rapid.Int64Range(1, 77).Draw(rt, "l")
		want := map[string][]int64{"sample": {n, refC, h, w}, "timestep": {n}, "encoder_hidden_states": {n, l, refD}}
		if rapid.Bool().Draw(rt, "sample only") {
			delete(want, "timestep")
			delete(want, "encoder_hidden_states")
		}
		fixed, err := fixInputDims(data, want)
		if err != nil {
			rt.Fatal(err)
		}
		ins, _, err := ort.GetInputOutputInfoWithONNXData(fixed)
		if err != nil {
			rt.Fatal(err)
		}
		for _, in := range ins {
			got := []int64(in.Dimensions)
			if w, ok := want[in.Name]; ok {
				if !slices.Equal(got, w) {
					rt.Fatalf("%s: dims %v, want %v", in.Name, got, w)
				}
			} else if !slices.Contains(got, -1) {
				rt.Fatalf("%s: dims %v, want it left dynamic", in.Name, got)
			}
		}
	})
}

func TestFixInputDimsErrors(t *testing.T) {
	data, err := os.ReadFile(modelPath("fixed.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := os.ReadFile(modelPath("dynamic.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		dims map[string][]int64
		want string
	}{
		{"fixed dimension differs", data, map[string][]int64{"x": {1, 2, 8, 9}}, "fixed to 8 in the graph, the call has 9"},
		{"rank", dyn, map[string][]int64{"x": {1, 2, 8}}, "rank 4"},
		{"rank, longer", dyn, map[string][]int64{"t": {1, 1}}, "rank 1"},
		{"no such input", dyn, map[string][]int64{"x": {1, 2, 8, 8}, "cond": {1}, "eps": {1}}, "no input cond, eps"},
		{"not a protobuf", []byte("this is not an ONNX model"), map[string][]int64{"x": {1}}, "malformed protobuf"},
		{"truncated", dyn[:len(dyn)/2], map[string][]int64{"x": {1, 2, 8, 8}}, "malformed protobuf"},
		{"no graph", []byte{0x08, 0x08}, map[string][]int64{}, "no graph"},
	}
	for _, c := range cases {
		_, err := fixInputDims(c.data, c.dims)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want it to contain %q", c.name, err, c.want)
		}
	}
	// The same dimensions as fixed in the graph are accepted.
	if _, err := fixInputDims(data, map[string][]int64{"x": {1, 2, 8, 8}, "t": {1}}); err != nil {
		t.Errorf("fixed dimensions restated: %v", err)
	}
}

// TestFixInputDimsNoPanic: no corruption of a model's bytes makes
// fixInputDims panic.
func TestFixInputDimsNoPanic(t *testing.T) {
	data, err := os.ReadFile(modelPath("extra.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	rapid.Check(t, func(rt *rapid.T) {
		b := slices.Clone(data)
		for range rapid.IntRange(1, 8).Draw(rt, "flips") {
			i := rapid.IntRange(0, len(b)-1).Draw(rt, "at")
			b[i] = rapid.Byte().Draw(rt, "byte")
		}
		b = b[:rapid.IntRange(0, len(b)).Draw(rt, "len")]
		_, _ = fixInputDims(b, map[string][]int64{"sample": {1, refC, 4, 4}})
	})
}

// TestShapeSessionsNodeCount reads the runtime's own profile: a call in a
// specialised session runs fewer nodes than one in the dynamic session, and
// no Shape node (the shape arithmetic was folded when the session was
// created).
func TestShapeSessionsNodeCount(t *testing.T) {
	requireRuntime(t)
	cases := []struct {
		name  string
		path  string
		shape []int
		bind  func(testing.TB, *Model) interface {
			PredictNoise(context.Context, *tensor.Dense, *tensor.Dense, []float32) error
		}
	}{
		{"fashion 28", shippedModel("fashion_unet.onnx"), []int{1, 1, 28, 28}, plainBind},
		{"latent UNet 32 px", shippedModel("fashion_ldm_eps/unet/model.onnx"), []int{1, 4, 8, 8}, cfgBind},
	}
	for _, c := range cases {
		nodes := map[bool]ProfileRun{}
		for _, spec := range []bool{false, true} {
			prefix := filepath.Join(t.TempDir(), "p")
			opts := []Option{WithThreads(1, 1), WithProfiling(prefix)}
			if spec {
				opts = append(opts, WithShapeSessions(1))
			}
			m, err := Open(c.path, opts...)
			if err != nil {
				t.Fatal(err)
			}
			predict(t, c.bind(t, m), c.shape, 1)
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			files, err := ProfileFiles(prefix)
			if err != nil {
				t.Fatal(err)
			}
			var runs []ProfileRun
			for _, f := range files {
				p, err := ReadProfileFile(f)
				if err != nil {
					t.Fatal(err)
				}
				runs = append(runs, p.Runs...)
				if strings.Contains(filepath.Base(f), "_shape1_") != (spec && len(p.Runs) == 1) {
					t.Errorf("%s: profile %s has %d runs", c.name, filepath.Base(f), len(p.Runs))
				}
			}
			if len(runs) != 1 {
				t.Fatalf("%s (specialised %v): %d runs in %d profiles, want 1", c.name, spec, len(runs), len(files))
			}
			nodes[spec] = runs[0]
		}
		count := func(r ProfileRun, op string) int {
			n := 0
			for _, nd := range r.Nodes {
				if nd.Op == op {
					n++
				}
			}
			return n
		}
		d, s := nodes[false], nodes[true]
		if len(s.Nodes) >= len(d.Nodes) || count(d, "Shape") == 0 || count(s, "Shape") != 0 {
			t.Errorf("%s: %d nodes (%d Shape) in the specialised session, %d (%d Shape) in the dynamic one",
				c.name, len(s.Nodes), count(s, "Shape"), len(d.Nodes), count(d, "Shape"))
		}
		t.Logf("%s: %d nodes per call in the dynamic session, %d in the specialised one", c.name, len(d.Nodes), len(s.Nodes))
	}
}

// TestShapeSessionsAllocs: a steady-state call in a specialised session
// allocates no more than one in the dynamic session.
func TestShapeSessionsAllocs(t *testing.T) {
	requireRuntime(t)
	ctx := context.Background()
	x := randDense(rand.New(rand.NewPCG(1, 2)), 1, refC, 8, 8)
	dst, ts := zerosLike(x), []float32{10}
	allocs := map[bool]float64{}
	for _, spec := range []bool{false, true} {
		var opts []Option
		if spec {
			opts = append(opts, WithShapeSessions(1))
		}
		m := open(t, "dynamic.onnx", opts...)
		if err := m.PredictNoise(ctx, dst, x, ts); err != nil {
			t.Fatal(err)
		}
		allocs[spec] = testing.AllocsPerRun(20, func() { _ = m.PredictNoise(ctx, dst, x, ts) })
		if spec && len(m.ShapeSessions()) != 1 {
			t.Fatal("no shape session")
		}
	}
	if allocs[true] > allocs[false] {
		t.Errorf("%v allocations per call in a specialised session, %v in the dynamic one", allocs[true], allocs[false])
	}
}
