package analytic

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gorgonia.org/tensor"
	"pgregory.net/rapid"
)

func newTensor(shape ...int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n)))
}

func fill(x *tensor.Dense, r *rand.Rand) {
	for i, d := 0, x.Data().([]float32); i < len(d); i++ {
		d[i] = float32(r.NormFloat64())
	}
}

// linearAlphaBar is a smooth alphaBar for tests: 1 at t = 0 down to 0.01 at t = 1000.
func linearAlphaBar(t float64) float64 { return 1 - 0.99*t/1000 }

func TestSpectrum(t *testing.T) {
	tests := []struct {
		n int
		l float64
	}{{1, 2}, {8, 0}, {8, 1}, {16, 3}, {32, 4}, {7, 2.5}, {5, 20}}
	for _, tc := range tests {
		s := Spectrum(tc.n, tc.l)
		var sum float64
		for k, v := range s {
			if v < 0 {
				t.Errorf("Spectrum(%d, %v)[%d] = %v < 0", tc.n, tc.l, k, v)
			}
			if d := math.Abs(v - s[(tc.n-k)%tc.n]); d > 1e-9*(1+v) {
				t.Errorf("Spectrum(%d, %v) not even at %d: %v vs %v", tc.n, tc.l, k, v, s[(tc.n-k)%tc.n])
			}
			sum += v
		}
		// The trace of the covariance is n times the periodised c(0) >= 1.
		want := float64(tc.n)
		if tc.l > 0 {
			want = 0
			for m := -50; m <= 50; m++ {
				r := float64(m * tc.n)
				want += math.Exp(-r * r / (2 * tc.l * tc.l))
			}
			want *= float64(tc.n)
		}
		if math.Abs(sum-want) > 1e-9*want {
			t.Errorf("Spectrum(%d, %v) sums to %v, want %v", tc.n, tc.l, sum, want)
		}
	}
}

func TestNewFieldErrors(t *testing.T) {
	for _, lengths := range [][]float64{nil, {1, 2, 3, 4}, {-1}, {math.NaN()}, {math.Inf(1), 1}} {
		if _, err := NewField(lengths...); err == nil {
			t.Errorf("NewField(%v) succeeded, want an error", lengths)
		}
	}
	f, err := NewField(1, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Denoiser(linearAlphaBar).PredictNoise(context.Background(), newTensor(1, 1, 4, 4), newTensor(1, 1, 4, 4), []float32{10}); err == nil {
		t.Error("a 3-length field accepted a rank-4 tensor")
	}
	if err := f.Denoiser(linearAlphaBar).PredictNoise(context.Background(), newTensor(1, 1, 4, 4), newTensor(1, 1, 4, 5), []float32{10}); err == nil {
		t.Error("mismatched shapes accepted")
	}
	if err := f.Denoiser(nil).PredictNoise(context.Background(), newTensor(1, 1, 2, 4, 4), newTensor(1, 1, 2, 4, 4), []float32{10}); err == nil {
		t.Error("nil alphaBar accepted")
	}
	bad := f.Denoiser(func(float64) float64 { return 2 })
	if err := bad.PredictNoise(context.Background(), newTensor(1, 1, 2, 4, 4), newTensor(1, 1, 2, 4, 4), []float32{10}); err == nil {
		t.Error("alphaBar out of [0, 1] accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.Denoiser(linearAlphaBar).PredictNoise(ctx, newTensor(1, 1, 2, 4, 4), newTensor(1, 1, 2, 4, 4), []float32{10}); err != context.Canceled {
		t.Errorf("cancelled context gave %v, want context.Canceled", err)
	}
}

// denseCovariance builds the full covariance matrix of one plane of f on the
// grid ext (F, H, W) from the periodised one-dimensional covariances.
func denseCovariance(lengths []float64, ext [3]int) *mat.SymDense {
	full := []float64{0, 0, 0}
	copy(full[3-len(lengths):], lengths)
	c1 := func(axis, d int) float64 {
		n, l := ext[axis], full[axis]
		if l == 0 {
			if d == 0 {
				return 1
			}
			return 0
		}
		var s float64
		for m := -50; m <= 50; m++ {
			r := float64(d + m*n)
			s += math.Exp(-r * r / (2 * l * l))
		}
		return s
	}
	n := ext[0] * ext[1] * ext[2]
	cov := mat.NewSymDense(n, nil)
	idx := func(i int) (int, int, int) { return i / (ext[1] * ext[2]), i / ext[2] % ext[1], i % ext[2] }
	for i := range n {
		zi, yi, xi := idx(i)
		for j := i; j < n; j++ {
			zj, yj, xj := idx(j)
			cov.SetSym(i, j, c1(0, (zj-zi+ext[0])%ext[0])*c1(1, (yj-yi+ext[1])%ext[1])*c1(2, (xj-xi+ext[2])%ext[2]))
		}
	}
	return cov
}

// fataler is the part of testing.TB that rapid.T also has.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// checkAgainstDense compares the FFT predictor with sqrt(1-a) (a Sigma + (1-a) I)^-1 x.
func checkAgainstDense(t fataler, lengths []float64, shape []int, tstep float32, seed uint64) {
	t.Helper()
	f, err := NewField(lengths...)
	if err != nil {
		t.Fatal(err)
	}
	x, dst := newTensor(shape...), newTensor(shape...)
	fill(x, rand.New(rand.NewPCG(seed, 1)))
	if err := f.Denoiser(linearAlphaBar).PredictNoise(context.Background(), dst, x, []float32{tstep}); err != nil {
		t.Fatal(err)
	}
	ext := [3]int{1, 1, 1}
	copy(ext[3-(len(shape)-2):], shape[2:])
	cov := denseCovariance(lengths, ext)
	n := cov.SymmetricDim()
	a := linearAlphaBar(float64(tstep))
	var m mat.Dense
	m.Scale(a, cov)
	for i := range n {
		m.Set(i, i, m.At(i, i)+1-a)
	}
	xs, ds := x.Data().([]float32), dst.Data().([]float32)
	for p := 0; p < len(xs); p += n {
		rhs := mat.NewVecDense(n, nil)
		for i := range n {
			rhs.SetVec(i, math.Sqrt(1-a)*float64(xs[p+i]))
		}
		var want mat.VecDense
		if err := want.SolveVec(&m, rhs); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if d := math.Abs(float64(ds[p+i]) - want.AtVec(i)); d > 1e-4*(1+math.Abs(want.AtVec(i))) {
				t.Fatalf("lengths %v shape %v t %v: eps[%d] = %v, dense solve gives %v", lengths, shape, tstep, p+i, ds[p+i], want.AtVec(i))
			}
		}
	}
}

func TestDenoiserMatchesDenseSolve(t *testing.T) {
	tests := []struct {
		lengths []float64
		shape   []int
		t       float32
	}{
		{[]float64{1, 1}, []int{1, 1, 4, 6}, 500},
		{[]float64{2, 1.5}, []int{2, 3, 6, 5}, 100},
		{[]float64{2}, []int{1, 2, 5, 8}, 900},
		{[]float64{0, 2}, []int{1, 1, 3, 8}, 300},
		{[]float64{1.5, 1, 2}, []int{1, 3, 4, 3, 5}, 700},
		{[]float64{1, 2}, []int{2, 1, 3, 4, 4}, 50},
		{[]float64{3, 3}, []int{1, 1, 6, 6}, 999},
		{[]float64{3, 3}, []int{1, 1, 6, 6}, 5},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%v/%v/%v", tc.lengths, tc.shape, tc.t), func(t *testing.T) {
			checkAgainstDense(t, tc.lengths, tc.shape, tc.t, uint64(i))
		})
	}
}

func TestPropertyDenoiserMatchesDenseSolve(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		rank := rapid.IntRange(4, 5).Draw(rt, "rank")
		shape := []int{rapid.IntRange(1, 2).Draw(rt, "n"), rapid.IntRange(1, 3).Draw(rt, "c")}
		for i := range rank - 2 {
			shape = append(shape, rapid.IntRange(1, 6).Draw(rt, fmt.Sprintf("d%d", i)))
		}
		nl := rapid.IntRange(1, rank-2).Draw(rt, "nlengths")
		lengths := make([]float64, nl)
		for i := range lengths {
			lengths[i] = rapid.Float64Range(0, 4).Draw(rt, fmt.Sprintf("l%d", i))
		}
		tstep := float32(rapid.Float64Range(5, 999).Draw(rt, "t"))
		checkAgainstDense(rt, lengths, shape, tstep, rapid.Uint64().Draw(rt, "seed"))
	})
}

func TestPropertyTranslationEquivariant(t *testing.T) {
	// The predictor is a convolution: shifting the input shifts the output.
	f, err := NewField(2, 3)
	if err != nil {
		t.Fatal(err)
	}
	d := f.Denoiser(linearAlphaBar)
	rapid.Check(t, func(rt *rapid.T) {
		h := rapid.IntRange(2, 12).Draw(rt, "h")
		w := rapid.IntRange(2, 12).Draw(rt, "w")
		sy := rapid.IntRange(0, h-1).Draw(rt, "sy")
		sx := rapid.IntRange(0, w-1).Draw(rt, "sx")
		x, shifted := newTensor(1, 1, h, w), newTensor(1, 1, h, w)
		fill(x, rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "seed"), 2)))
		xs, ss := x.Data().([]float32), shifted.Data().([]float32)
		for y := range h {
			for xx := range w {
				ss[((y+sy)%h)*w+(xx+sx)%w] = xs[y*w+xx]
			}
		}
		e, es := newTensor(1, 1, h, w), newTensor(1, 1, h, w)
		tt := []float32{float32(rapid.Float64Range(0, 999).Draw(rt, "t"))}
		if err := d.PredictNoise(context.Background(), e, x, tt); err != nil {
			rt.Fatal(err)
		}
		if err := d.PredictNoise(context.Background(), es, shifted, tt); err != nil {
			rt.Fatal(err)
		}
		ed, esd := e.Data().([]float32), es.Data().([]float32)
		for y := range h {
			for xx := range w {
				a, b := ed[y*w+xx], esd[((y+sy)%h)*w+(xx+sx)%w]
				if math.Abs(float64(a-b)) > 1e-5 {
					rt.Fatalf("shift (%d,%d): %v vs %v at (%d,%d)", sy, sx, a, b, y, xx)
				}
			}
		}
	})
}

func TestSampleStatistics(t *testing.T) {
	tests := []struct {
		lengths []float64
		shape   []int
		axis    int
	}{
		{[]float64{2, 2}, []int{4, 1, 64, 64}, 3},
		{[]float64{2, 2}, []int{4, 1, 64, 64}, 2},
		{[]float64{4, 4}, []int{4, 2, 64, 64}, 3},
		{[]float64{3, 1}, []int{4, 1, 64, 64}, 2},
		{[]float64{3, 1, 1}, []int{2, 1, 64, 16, 16}, 2},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%v/%v/axis%d", tc.lengths, tc.shape, tc.axis), func(t *testing.T) {
			f, err := NewField(tc.lengths...)
			if err != nil {
				t.Fatal(err)
			}
			x := newTensor(tc.shape...)
			if err := f.Sample(x, rand.New(rand.NewPCG(uint64(i), 5))); err != nil {
				t.Fatal(err)
			}
			var ss float64
			data := x.Data().([]float32)
			for _, v := range data {
				ss += float64(v) * float64(v)
			}
			if v := ss / float64(len(data)); math.Abs(v-1) > 0.2 {
				t.Errorf("variance %v, want 1", v)
			}
			l, err := CorrelationLength(x, tc.axis)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.lengths[len(tc.lengths)-(len(tc.shape)-tc.axis)]
			t.Logf("measured correlation length %.3f, field length %v", l, want)
			if math.Abs(l-want) > 0.15*want {
				t.Errorf("correlation length %v, want %v", l, want)
			}
		})
	}
}

func TestAutocorrelation(t *testing.T) {
	// A period-4 cosine along W has rho(d) = cos(pi d / 2).
	x := newTensor(1, 1, 3, 8)
	d := x.Data().([]float32)
	for i := range d {
		d[i] = float32(math.Cos(math.Pi * float64(i%8) / 2))
	}
	rho, err := Autocorrelation(x, 3)
	if err != nil {
		t.Fatal(err)
	}
	for lag, v := range rho {
		if want := math.Cos(math.Pi * float64(lag) / 2); math.Abs(v-want) > 1e-6 {
			t.Errorf("rho(%d) = %v, want %v", lag, v, want)
		}
	}
	l, err := CorrelationLength(x, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Linear interpolation between rho(0) = 1 and rho(1) = 0.
	if want := 1 - math.Exp(-0.5); math.Abs(l-want) > 1e-6 {
		t.Errorf("CorrelationLength = %v, want %v", l, want)
	}
	for _, axis := range []int{0, 1, 4} {
		if _, err := Autocorrelation(x, axis); err == nil {
			t.Errorf("axis %d accepted for a rank-4 tensor", axis)
		}
	}
	if _, err := Autocorrelation(newTensor(1, 1, 2, 2), 2); err == nil {
		t.Error("all-zero tensor accepted")
	}
	flat := newTensor(1, 1, 4, 4)
	for i, dd := 0, flat.Data().([]float32); i < len(dd); i++ {
		dd[i] = 1
	}
	if l, _ := CorrelationLength(flat, 3); !math.IsInf(l, 1) {
		t.Errorf("constant field has correlation length %v, want +Inf", l)
	}
}

func BenchmarkDenoiser(b *testing.B) {
	for _, shape := range [][]int{{1, 1, 64, 64}, {4, 4, 64, 64}, {1, 2, 16, 32, 32}} {
		b.Run(fmt.Sprint(shape), func(b *testing.B) {
			f, _ := NewField(3, 3)
			d := f.Denoiser(linearAlphaBar)
			x, dst := newTensor(shape...), newTensor(shape...)
			fill(x, rand.New(rand.NewPCG(1, 1)))
			for b.Loop() {
				if err := d.PredictNoise(context.Background(), dst, x, []float32{500}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
