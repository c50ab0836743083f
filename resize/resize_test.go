package resize

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
	"pgregory.net/rapid"

	"github.com/ugo-diffusion/ugo"
)

// fataler is what mustPlan needs of *testing.T and *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

func mustPlan(t fataler, s Strategy, dh, dw, sh, sw int) *Plan {
	t.Helper()
	p, err := s.Plan(dh, dw, sh, sw)
	if err != nil {
		t.Fatalf("%s.Plan(%d, %d, %d, %d): %v", s, dh, dw, sh, sw, err)
	}
	return p
}

func randPlanes(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

func drawPlanes(t *rapid.T, n int, label string) []float32 {
	return rapid.SliceOfN(rapid.Float32Range(-4, 4), n, n).Draw(t, label)
}

func drawStrategy(t *rapid.T) Strategy {
	return rapid.SampledFrom(Strategies).Draw(t, "strategy")
}

// Nearest upsampling by integer factors followed by Area downsampling by the
// same factors gives back the input bit for bit: D(U(y)) = y.
func TestNearestThenAreaIsIdentity(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		planes := rapid.IntRange(1, 3).Draw(t, "planes")
		h := rapid.IntRange(1, 9).Draw(t, "h")
		w := rapid.IntRange(1, 9).Draw(t, "w")
		fh := rapid.IntRange(1, 5).Draw(t, "fh")
		fw := rapid.IntRange(1, 5).Draw(t, "fw")
		src := drawPlanes(t, planes*h*w, "src")
		up := make([]float32, planes*h*fh*w*fw)
		back := make([]float32, len(src))
		mustPlan(t, Nearest, h*fh, w*fw, h, w).Scale(up, src)
		mustPlan(t, Area, h, w, h*fh, w*fw).Scale(back, up)
		for i := range src {
			if back[i] != src[i] {
				t.Fatalf("Area(Nearest(x))[%d] = %v, want %v", i, back[i], src[i])
			}
		}
	})
}

// Every strategy keeps a constant plane constant, up or down, whatever the
// sizes.
func TestConstantStaysConstant(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawStrategy(t)
		sh := rapid.IntRange(1, 24).Draw(t, "sh")
		sw := rapid.IntRange(1, 24).Draw(t, "sw")
		dh := rapid.IntRange(1, 24).Draw(t, "dh")
		dw := rapid.IntRange(1, 24).Draw(t, "dw")
		c := rapid.Float32Range(-100, 100).Draw(t, "c")
		src := make([]float32, sh*sw)
		for i := range src {
			src[i] = c
		}
		dst := make([]float32, dh*dw)
		mustPlan(t, s, dh, dw, sh, sw).Scale(dst, src)
		tol := 1e-6 * (1 + math.Abs(float64(c)))
		for i, v := range dst {
			if math.Abs(float64(v-c)) > tol {
				t.Fatalf("%s %dx%d->%dx%d of the constant %v: dst[%d] = %v", s, sh, sw, dh, dw, c, i, v)
			}
		}
	})
}

// Resizing to the same size is the identity, bit for bit.
func TestSameSizeIsIdentity(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawStrategy(t)
		h := rapid.IntRange(1, 12).Draw(t, "h")
		w := rapid.IntRange(1, 12).Draw(t, "w")
		src := drawPlanes(t, 2*h*w, "src")
		dst := make([]float32, len(src))
		mustPlan(t, s, h, w, h, w).Scale(dst, src)
		require.Equal(t, src, dst, "%s", s)
	})
}

// Upsampling by an odd factor f puts output f*j + (f-1)/2 on the centre of
// source sample j, where every strategy reproduces the source sample (the
// interpolating kernels are 1 at 0 and 0 at the other integers). Nearest
// and Area reproduce it on the whole f x f block.
func TestInterpolatesAtSourceCentres(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawStrategy(t)
		f := rapid.SampledFrom([]int{3, 5}).Draw(t, "f")
		h := rapid.IntRange(1, 7).Draw(t, "h")
		w := rapid.IntRange(1, 7).Draw(t, "w")
		src := drawPlanes(t, h*w, "src")
		dst := make([]float32, h*f*w*f)
		mustPlan(t, s, h*f, w*f, h, w).Scale(dst, src)
		block := s == Nearest || s == Area
		for y := range h * f {
			for x := range w * f {
				j, i := y/f, x/f
				if !block && (y%f != (f-1)/2 || x%f != (f-1)/2) {
					continue
				}
				got, want := dst[y*w*f+x], src[j*w+i]
				if math.Abs(float64(got-want)) > 1e-5*(1+math.Abs(float64(want))) {
					t.Fatalf("%s x%d: dst[%d,%d] = %v, want source sample [%d,%d] = %v", s, f, y, x, got, j, i, want)
				}
			}
		}
	})
}

// Area downsampling by integer factors is average pooling.
func TestAreaDownIsBlockMean(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := rapid.IntRange(1, 6).Draw(t, "h")
		w := rapid.IntRange(1, 6).Draw(t, "w")
		fh := rapid.IntRange(1, 4).Draw(t, "fh")
		fw := rapid.IntRange(1, 4).Draw(t, "fw")
		H, W := h*fh, w*fw
		src := drawPlanes(t, H*W, "src")
		dst := make([]float32, h*w)
		mustPlan(t, Area, h, w, H, W).Scale(dst, src)
		for y := range h {
			for x := range w {
				sum := 0.0
				for dy := range fh {
					for dx := range fw {
						sum += float64(src[(y*fh+dy)*W+x*fw+dx])
					}
				}
				want := sum / float64(fh*fw)
				if got := float64(dst[y*w+x]); math.Abs(got-want) > 1e-6*(1+math.Abs(want)) {
					t.Fatalf("area [%d,%d] = %v, want block mean %v", y, x, got, want)
				}
			}
		}
	})
}

// Resizing is linear: R(a*x + y) = a*R(x) + R(y).
func TestLinear(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawStrategy(t)
		sh := rapid.IntRange(1, 10).Draw(t, "sh")
		sw := rapid.IntRange(1, 10).Draw(t, "sw")
		dh := rapid.IntRange(1, 20).Draw(t, "dh")
		dw := rapid.IntRange(1, 20).Draw(t, "dw")
		a := rapid.Float32Range(-3, 3).Draw(t, "a")
		x := drawPlanes(t, sh*sw, "x")
		y := drawPlanes(t, sh*sw, "y")
		comb := make([]float32, len(x))
		for i := range x {
			comb[i] = a*x[i] + y[i]
		}
		p := mustPlan(t, s, dh, dw, sh, sw)
		rx, ry, rc := make([]float32, dh*dw), make([]float32, dh*dw), make([]float32, dh*dw)
		p.Scale(rx, x)
		p.Scale(ry, y)
		p.Scale(rc, comb)
		for i := range rc {
			want := float64(a)*float64(rx[i]) + float64(ry[i])
			if math.Abs(float64(rc[i])-want) > 1e-4 {
				t.Fatalf("%s: R(a x + y)[%d] = %v, a R(x) + R(y) = %v", s, i, rc[i], want)
			}
		}
	})
}

// Mirroring the input mirrors the output for the kernels and Area, whose
// weights are symmetric (Nearest breaks ties at exact half positions towards
// the lower index and is left out).
func TestMirrorSymmetry(t *testing.T) {
	strategies := []Strategy{Bilinear, AntialiasBilinear, Bicubic, Lanczos3, Area}
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.SampledFrom(strategies).Draw(t, "strategy")
		sw := rapid.IntRange(1, 16).Draw(t, "sw")
		dw := rapid.IntRange(1, 16).Draw(t, "dw")
		x := drawPlanes(t, sw, "x")
		rev := make([]float32, sw)
		for i, v := range x {
			rev[sw-1-i] = v
		}
		p := mustPlan(t, s, 1, dw, 1, sw)
		a, b := make([]float32, dw), make([]float32, dw)
		p.Scale(a, x)
		p.Scale(b, rev)
		for i := range a {
			if math.Abs(float64(a[i]-b[dw-1-i])) > 1e-5 {
				t.Fatalf("%s %d->%d: R(x)[%d] = %v but R(mirror x)[%d] = %v", s, sw, dw, i, a[i], dw-1-i, b[dw-1-i])
			}
		}
	})
}

// Bilinear and Bicubic reproduce a linear ramp away from the edges (Keys'
// cubic reproduces polynomials up to degree 2 for a = -0.5), at any scale
// for Bilinear and when upsampling for Bicubic.
func TestRampReproduced(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k := rapid.SampledFrom([]*Kernel{Bilinear, AntialiasBilinear, Bicubic}).Draw(t, "kernel")
		sw := rapid.IntRange(6, 20).Draw(t, "sw")
		dw := rapid.IntRange(sw, 3*sw).Draw(t, "dw")
		if k == Bilinear {
			dw = rapid.IntRange(2, 3*sw).Draw(t, "dw any")
		}
		slope := rapid.Float64Range(-2, 2).Draw(t, "slope")
		x := make([]float32, sw)
		for i := range x {
			x[i] = float32(slope * float64(i))
		}
		out := make([]float32, dw)
		mustPlan(t, k, 1, dw, 1, sw).Scale(out, x)
		scale := float64(sw) / float64(dw)
		for i, v := range out {
			u := (float64(i)+0.5)*scale - 0.5 // source coordinate
			if u < k.Support || u > float64(sw-1)-k.Support {
				continue // edge taps are replicated or dropped
			}
			if want := slope * u; math.Abs(float64(v)-want) > 1e-5*(1+math.Abs(want)) {
				t.Fatalf("%s %d->%d of a ramp: out[%d] = %v, want %v", k, sw, dw, i, v, want)
			}
		}
	})
}

// Small cases worked out by hand from the definitions.
func TestWorkedExamples(t *testing.T) {
	for _, tc := range []struct {
		name   string
		s      Strategy
		src    []float32
		dw     int
		want   []float32
		approx bool
	}{
		// Centres at source coordinates -0.25, 0.25, 0.75, 1.25; the
		// outer two clamp to the edge samples.
		{"bilinear up", Bilinear, []float32{0, 4}, 4, []float32{0, 1, 3, 4}, false},
		// Downsampling by 2 without antialiasing reads the midpoint of
		// each pair.
		{"bilinear down", Bilinear, []float32{0, 4, 8, 12}, 2, []float32{2, 10}, false},
		// The triangle stretched to half-width 2 around source coordinate
		// 0.5 weighs samples -1..2 by 1/4, 3/4, 3/4, 1/4; sample -1 is
		// dropped and the rest renormalised by 7/4.
		{"antialias bilinear down", AntialiasBilinear, []float32{0, 4, 8, 12}, 2, []float32{(4*0.75 + 8*0.25) / 1.75, (4*0.25 + 8*0.75 + 12*0.75) / 1.75}, true},
		// Output centres at source positions 1 and 3 (pixel edges count
		// to the right).
		{"nearest down", Nearest, []float32{1, 2, 3, 4}, 2, []float32{2, 4}, false},
		{"nearest up", Nearest, []float32{1, 2}, 4, []float32{1, 1, 2, 2}, false},
		// Output 0 covers [0, 1.5): sample 0 fully, sample 1 half.
		{"area 3->2", Area, []float32{0, 3, 6}, 2, []float32{(0 + 0.5*3) / 1.5, (0.5*3 + 6) / 1.5}, true},
		{"area 2->3", Area, []float32{0, 3}, 3, []float32{0, 1.5, 3}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make([]float32, tc.dw)
			mustPlan(t, tc.s, 1, tc.dw, 1, len(tc.src)).Scale(got, tc.src)
			if tc.approx {
				require.InDeltaSlice(t, tc.want, got, 1e-6)
			} else {
				require.Equal(t, tc.want, got)
			}
		})
	}
}

// The Keys kernel at quarter positions: the weights of a 2x upsample.
func TestBicubicWeights(t *testing.T) {
	at := Bicubic.At
	for _, tc := range []struct{ t, want float64 }{
		{0, 1}, {1, 0}, {2, 0}, {0.25, 0.8671875}, {0.75, 0.2265625}, {1.25, -0.0703125}, {1.75, -0.0234375},
	} {
		require.InDelta(t, tc.want, at(tc.t), 1e-12, "Keys(%v)", tc.t)
		require.InDelta(t, tc.want, at(-tc.t), 1e-12, "Keys(-%v)", tc.t)
	}
	require.InDelta(t, 1.0, at(0.25)+at(0.75)+at(1.25)+at(1.75), 1e-12, "partition of unity")
	for _, x := range []float64{1, 2, -1, -2} {
		require.InDelta(t, 0, Lanczos3.At(x), 1e-15, "Lanczos3(%v)", x)
	}
}

func TestResizeTensors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, shape := range [][]int{{5, 7}, {2, 3, 5, 7}, {1, 2, 3, 5, 7}} {
		t.Run(fmt.Sprint(shape), func(t *testing.T) {
			n := 1
			for _, d := range shape {
				n *= d
			}
			src := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(randPlanes(rng, n)))
			dst, err := To(Bicubic, src, 10, 14)
			require.NoError(t, err)
			ds := []int(dst.Shape())
			require.Equal(t, append(append([]int(nil), shape[:len(shape)-2]...), 10, 14), ds)
			// Plane by plane, the same as Scale on one plane.
			p := mustPlan(t, Bicubic, 10, 14, 5, 7)
			one := make([]float32, 140)
			for i := range n / 35 {
				p.Scale(one, src.Float32s()[i*35:(i+1)*35])
				require.Equal(t, one, dst.Float32s()[i*140:(i+1)*140], "plane %d", i)
			}
			again := tensor.New(tensor.WithShape(ds...), tensor.WithBacking(make([]float32, len(dst.Float32s()))))
			require.NoError(t, p.Resize(again, src))
			require.Equal(t, dst.Float32s(), again.Float32s())
		})
	}
}

func TestErrors(t *testing.T) {
	f32 := func(shape ...int) *tensor.Dense {
		n := 1
		for _, d := range shape {
			n *= d
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n)))
	}
	for _, s := range Strategies {
		for _, sz := range [][4]int{{0, 1, 1, 1}, {1, -1, 1, 1}, {1, 1, MaxSide + 1, 1}} {
			_, err := s.Plan(sz[0], sz[1], sz[2], sz[3])
			require.Error(t, err, "%s %v", s, sz)
		}
	}
	_, err := (&Kernel{Name: "broken", Support: 1}).Plan(2, 2, 1, 1)
	require.Error(t, err, "kernel without At")
	_, err = (&Kernel{Name: "nan", Support: 1, At: func(float64) float64 { return math.NaN() }}).Plan(2, 2, 1, 1)
	require.Error(t, err, "NaN weights")
	_, err = (&Kernel{Name: "zero", Support: 1, At: func(float64) float64 { return 0 }}).Plan(2, 2, 1, 1)
	require.Error(t, err, "weights summing to zero")

	p := mustPlan(t, Bilinear, 4, 4, 2, 2)
	var se *ugo.ShapeError
	for name, tc := range map[string][2]*tensor.Dense{
		"nil src":       {f32(1, 4, 4), nil},
		"nil dst":       {nil, f32(1, 2, 2)},
		"rank 1":        {f32(16), f32(4)},
		"wrong size":    {f32(1, 4, 5), f32(1, 2, 2)},
		"wrong source":  {f32(1, 4, 4), f32(1, 3, 2)},
		"leading axes":  {f32(2, 4, 4), f32(1, 2, 2)},
		"rank mismatch": {f32(1, 1, 4, 4), f32(1, 2, 2)},
		"float64":       {f32(1, 4, 4), tensor.New(tensor.WithShape(1, 2, 2), tensor.WithBacking(make([]float64, 4)))},
	} {
		err := p.Resize(tc[0], tc[1])
		require.Error(t, err, name)
		require.True(t, errors.As(err, &se), "%s: %v is not a *ugo.ShapeError", name, err)
	}
	_, err = To(nil, f32(2, 2), 3, 3)
	require.Error(t, err)
	_, err = To(Area, f32(2, 2), 0, 3)
	require.Error(t, err)
	require.Panics(t, func() { p.Scale(make([]float32, 15), make([]float32, 4)) })

	_, err = ByName("cubic-spline")
	require.Error(t, err)
	for _, s := range Strategies {
		got, err := ByName(s.String())
		require.NoError(t, err)
		require.Equal(t, s, got)
	}
}

func TestPlanAccessors(t *testing.T) {
	p := mustPlan(t, Lanczos3, 30, 40, 10, 20)
	h, w := p.Src()
	require.Equal(t, [2]int{10, 20}, [2]int{h, w})
	h, w = p.Dst()
	require.Equal(t, [2]int{30, 40}, [2]int{h, w})
	require.Equal(t, "lanczos3 10x20->30x40", p.String())
	// Upsampling by 4, Lanczos3 reads 6 samples per output away from the
	// edges (fewer at the edges); by 3, a third of the outputs land on
	// source centres and read one.
	v, hz := mustPlan(t, Lanczos3, 400, 400, 100, 100).Taps()
	require.True(t, v > 5.8 && v <= 6 && hz == v, "taps %v %v", v, hz)
	v, _ = mustPlan(t, Lanczos3, 300, 300, 100, 100).Taps()
	require.True(t, v > 4.2 && v < 4.4, "taps on centres %v", v)
	// Downsampling by 4 with antialiasing reads 4x as many.
	v, _ = mustPlan(t, Lanczos3, 100, 100, 400, 400).Taps()
	require.True(t, v > 22 && v <= 24, "antialiased taps %v", v)
	v, _ = mustPlan(t, Nearest, 10, 10, 40, 40).Taps()
	require.Equal(t, 1.0, v)
}

// A Plan is used from many goroutines at once (run with -race).
func TestConcurrentUse(t *testing.T) {
	p := mustPlan(t, Bicubic, 24, 24, 16, 16)
	rng := rand.New(rand.NewPCG(3, 4))
	src := randPlanes(rng, 3*16*16)
	want := make([]float32, 3*24*24)
	p.Scale(want, src)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := make([]float32, len(want))
			for range 20 {
				p.Scale(got, src)
				for i := range got {
					if got[i] != want[i] {
						errs <- fmt.Sprintf("value %d differs: %v vs %v", i, got[i], want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func TestScaleAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	for _, s := range Strategies {
		p := mustPlan(t, s, 32, 48, 16, 16)
		src := make([]float32, 2*16*16)
		dst := make([]float32, 2*32*48)
		p.Scale(dst, src)
		if a := testing.AllocsPerRun(20, func() { p.Scale(dst, src) }); a != 0 {
			t.Errorf("%s: %v allocations per Scale", s, a)
		}
	}
}
