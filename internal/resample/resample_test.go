package resample

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// geometry mirrors a Pooling with explicit rank-5 extents for the reference
// implementations below, which use plain index arithmetic.
type geometry struct {
	n, c, f, h, w int
	ff, fh, fw    int
}

func geometryOf(shape, factors []int) geometry {
	g := geometry{n: shape[0], c: shape[1], f: 1, ff: 1, fh: 1, fw: 1}
	if len(shape) == 5 {
		g.f, g.h, g.w = shape[2], shape[3], shape[4]
	} else {
		g.h, g.w = shape[2], shape[3]
	}
	full := []int{1, 1, 1}
	copy(full[3-len(factors):], factors)
	g.ff, g.fh, g.fw = full[0], full[1], full[2]
	return g
}

func (g geometry) hi(o, z, y, x int) int { return ((o*g.f+z)*g.h+y)*g.w + x }
func (g geometry) lo(o, z, y, x int) int {
	return ((o*(g.f/g.ff)+z)*(g.h/g.fh)+y)*(g.w/g.fw) + x
}

func refPool(g geometry, src []float32) []float32 {
	dst := make([]float32, len(src)/(g.ff*g.fh*g.fw))
	k := float64(g.ff * g.fh * g.fw)
	for o := range g.n * g.c {
		for z := range g.f / g.ff {
			for y := range g.h / g.fh {
				for x := range g.w / g.fw {
					var sum float64
					for a := range g.ff {
						for b := range g.fh {
							for c := range g.fw {
								sum += float64(src[g.hi(o, z*g.ff+a, y*g.fh+b, x*g.fw+c)])
							}
						}
					}
					dst[g.lo(o, z, y, x)] = float32(sum / k)
				}
			}
		}
	}
	return dst
}

func refRepeat(g geometry, src []float32) []float32 {
	dst := make([]float32, len(src)*g.ff*g.fh*g.fw)
	for o := range g.n * g.c {
		for z := range g.f {
			for y := range g.h {
				for x := range g.w {
					dst[g.hi(o, z, y, x)] = src[g.lo(o, z/g.ff, y/g.fh, x/g.fw)]
				}
			}
		}
	}
	return dst
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

var cases = []struct {
	shape, factors []int
}{
	{[]int{1, 1, 4, 4}, []int{2, 2}},
	{[]int{2, 3, 6, 8}, []int{2, 2}},
	{[]int{2, 3, 6, 8}, []int{1, 2}},
	{[]int{1, 2, 6, 9}, []int{3, 3}},
	{[]int{1, 2, 6, 9}, []int{2, 1}},
	{[]int{1, 2, 6, 12}, []int{3, 4}},
	{[]int{2, 2, 6, 8}, []int{2}},
	{[]int{2, 2, 6, 8}, []int{1, 1}},
	{[]int{1, 2, 4, 6, 8}, []int{2, 2, 2}},
	{[]int{1, 2, 4, 6, 8}, []int{2, 1, 1}},
	{[]int{2, 1, 3, 6, 8}, []int{2, 2}},
	{[]int{1, 1, 6, 4, 6}, []int{3, 1, 3}},
	{[]int{1, 1, 4, 1560}, []int{2, 3}}, // more than one column chunk
	{[]int{1, 1, 2, 2, 2100}, []int{2, 1, 4}},
}

func TestKernelsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%v/%v", tc.shape, tc.factors), func(t *testing.T) {
			p, err := NewPooling(tc.shape, tc.factors)
			if err != nil {
				t.Fatal(err)
			}
			g := geometryOf(tc.shape, tc.factors)
			high := randSlice(r, p.HighLen())
			low := make([]float32, p.LowLen())
			p.Pool(low, high, 1)
			want := refPool(g, high)
			for i := range low {
				if d := math.Abs(float64(low[i] - want[i])); d > 1e-6*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("Pool[%d] = %v, want %v", i, low[i], want[i])
				}
			}
			scaled := make([]float32, p.LowLen())
			p.Pool(scaled, high, 0.5)
			for i := range scaled {
				if d := math.Abs(float64(scaled[i] - want[i]/2)); d > 1e-6*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("Pool scaled [%d] = %v, want %v", i, scaled[i], want[i]/2)
				}
			}

			y := randSlice(r, p.LowLen())
			up := make([]float32, p.HighLen())
			p.Repeat(up, y)
			wantUp := refRepeat(g, y)
			for i := range up {
				if up[i] != wantUp[i] {
					t.Fatalf("Repeat[%d] = %v, want %v", i, up[i], wantUp[i])
				}
			}

			acc := append([]float32(nil), high...)
			const alpha = float32(-0.75)
			p.AddRepeated(acc, y, alpha)
			for i := range acc {
				if w := high[i] + float32(alpha*wantUp[i]); acc[i] != w {
					t.Fatalf("AddRepeated[%d] = %v, want %v", i, acc[i], w)
				}
			}
		})
	}
}

func TestLowShape(t *testing.T) {
	tests := []struct {
		shape, factors, want []int
	}{
		{[]int{2, 4, 64, 48}, []int{2, 2}, []int{2, 4, 32, 24}},
		{[]int{1, 4, 64, 128}, []int{1, 2}, []int{1, 4, 64, 64}},
		{[]int{1, 3, 8, 16, 16}, []int{2, 1, 1}, []int{1, 3, 4, 16, 16}},
		{[]int{1, 3, 8, 16, 16}, []int{4, 4}, []int{1, 3, 8, 4, 4}},
	}
	for _, tc := range tests {
		p, err := NewPooling(tc.shape, tc.factors)
		if err != nil {
			t.Fatal(err)
		}
		got := p.LowShape(nil, len(tc.shape), tc.shape[0], tc.shape[1])
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("LowShape(%v, %v) = %v, want %v", tc.shape, tc.factors, got, tc.want)
		}
		k := 1
		for _, f := range tc.factors {
			k *= f
		}
		if p.K() != k || p.LowLen()*k != p.HighLen() {
			t.Errorf("K = %d LowLen = %d HighLen = %d for factors %v", p.K(), p.LowLen(), p.HighLen(), tc.factors)
		}
	}
}

func TestNewPoolingErrors(t *testing.T) {
	tests := []struct {
		name           string
		shape, factors []int
		msg            string
	}{
		{"rank3", []int{1, 4, 4}, []int{2, 2}, "rank 3"},
		{"rank6", []int{1, 1, 1, 1, 4, 4}, []int{2, 2}, "rank 6"},
		{"zero dim", []int{1, 0, 4, 4}, []int{2, 2}, "non-positive"},
		{"no factors", []int{1, 1, 4, 4}, nil, "0 factors"},
		{"too many factors", []int{1, 1, 4, 4}, []int{2, 2, 2}, "3 factors"},
		{"zero factor", []int{1, 1, 4, 4}, []int{0, 2}, "at least 1"},
		{"negative factor", []int{1, 1, 4, 4}, []int{2, -2}, "at least 1"},
		{"H not divisible", []int{1, 1, 5, 4}, []int{2, 2}, "axis H"},
		{"W not divisible", []int{1, 1, 4, 6}, []int{2, 4}, "axis W"},
		{"F not divisible", []int{1, 1, 3, 4, 4}, []int{2, 2, 2}, "axis F"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewPooling(tc.shape, tc.factors)
			if err == nil {
				t.Fatalf("NewPooling(%v, %v) succeeded, want an error", tc.shape, tc.factors)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
}

func TestKernelsPanicOnLengthMismatch(t *testing.T) {
	p, err := NewPooling([]int{1, 1, 4, 4}, []int{2, 2})
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(){
		"Pool":        func() { p.Pool(make([]float32, 3), make([]float32, 16), 1) },
		"Repeat":      func() { p.Repeat(make([]float32, 15), make([]float32, 4)) },
		"AddRepeated": func() { p.AddRepeated(make([]float32, 16), make([]float32, 5), 1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic on a length mismatch", name)
				}
			}()
			f()
		}()
	}
}

// drawGeometry draws a small shape and a factor list that divides it.
func drawGeometry(t *rapid.T) (shape, factors []int) {
	rank := rapid.IntRange(4, 5).Draw(t, "rank")
	nf := rapid.IntRange(1, rank-2).Draw(t, "nfactors")
	shape = []int{rapid.IntRange(1, 2).Draw(t, "n"), rapid.IntRange(1, 3).Draw(t, "c")}
	spatial := make([]int, rank-2)
	factors = make([]int, nf)
	for i := range spatial {
		f := 1
		if j := i - (rank - 2 - nf); j >= 0 {
			f = rapid.IntRange(1, 4).Draw(t, fmt.Sprintf("f%d", i))
			factors[j] = f
		}
		spatial[i] = f * rapid.IntRange(1, 5).Draw(t, fmt.Sprintf("m%d", i))
	}
	return append(shape, spatial...), factors
}

func TestPropertyPoolOfRepeatIsIdentity(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		shape, factors := drawGeometry(t)
		p, err := NewPooling(shape, factors)
		if err != nil {
			t.Fatal(err)
		}
		y := make([]float32, p.LowLen())
		for i := range y {
			y[i] = rapid.Float32().Draw(t, "y")
			if math.IsInf(float64(y[i]), 0) || math.IsNaN(float64(y[i])) || math.Abs(float64(y[i])) > 1e30 {
				y[i] = 1
			}
		}
		up := make([]float32, p.HighLen())
		p.Repeat(up, y)
		back := make([]float32, p.LowLen())
		p.Pool(back, up, 1)
		for i := range y {
			if back[i] != y[i] {
				t.Fatalf("D(U(y))[%d] = %v, want %v (shape %v factors %v)", i, back[i], y[i], shape, factors)
			}
		}
	})
}

func TestPropertyPoolIsMean(t *testing.T) {
	// D is linear and preserves the mean of every plane.
	rapid.Check(t, func(t *rapid.T) {
		shape, factors := drawGeometry(t)
		p, err := NewPooling(shape, factors)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 7))
		x := randSlice(r, p.HighLen())
		low := make([]float32, p.LowLen())
		p.Pool(low, x, 1)
		var sh, sl float64
		for _, v := range x {
			sh += float64(v)
		}
		for _, v := range low {
			sl += float64(v)
		}
		if d := math.Abs(sh/float64(len(x)) - sl/float64(len(low))); d > 1e-5 {
			t.Fatalf("mean changed by %v under pooling", d)
		}
	})
}

func TestPropertyPooledNoiseVariance(t *testing.T) {
	// For eps ~ N(0, I), D(eps) has variance 1/k.
	rapid.Check(t, func(t *rapid.T) {
		factors := []int{rapid.IntRange(1, 3).Draw(t, "fh"), rapid.IntRange(1, 3).Draw(t, "fw")}
		shape := []int{1, 1, 48 * factors[0], 48 * factors[1]}
		p, err := NewPooling(shape, factors)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 11))
		eps := randSlice(r, p.HighLen())
		low := make([]float32, p.LowLen())
		p.Pool(low, eps, 1)
		var ss float64
		for _, v := range low {
			ss += float64(v) * float64(v)
		}
		got := ss / float64(len(low)) * float64(p.K())
		// k*Var(D eps) is a chi-square mean over 2304 samples: sd ~ sqrt(2/2304) ~ 0.03.
		if math.Abs(got-1) > 0.15 {
			t.Fatalf("k*Var(D(eps)) = %v for factors %v, want 1", got, factors)
		}
	})
}

func TestPropertyRepeatLinearity(t *testing.T) {
	// AddRepeated(dst, y, a) on a zero dst equals a*Repeat(y).
	rapid.Check(t, func(t *rapid.T) {
		shape, factors := drawGeometry(t)
		p, err := NewPooling(shape, factors)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 3))
		y := randSlice(r, p.LowLen())
		a := float32(rapid.Float64Range(-4, 4).Draw(t, "alpha"))
		acc := make([]float32, p.HighLen())
		p.AddRepeated(acc, y, a)
		up := make([]float32, p.HighLen())
		p.Repeat(up, y)
		for i := range up {
			if acc[i] != float32(a*up[i]) {
				t.Fatalf("AddRepeated[%d] = %v, want %v", i, acc[i], a*up[i])
			}
		}
	})
}
