package convnet

import (
	"context"
	"fmt"
	"math"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/noise"
)

// refForward computes the network of Net's documentation directly, in
// float64 loops over the parameters: the test oracle for Build.
func refForward(net *Net, x []float32, shape [4]int, t []float32) []float32 {
	out64, _ := refForward64(net, x, shape, t)
	out := make([]float32, len(out64))
	for i, v := range out64 {
		out[i] = float32(v)
	}
	return out
}

// refForward64 is refForward without the final rounding to float32; it
// returns v too.
func refForward64(net *Net, x []float32, shape [4]int, t []float32) (eps, v []float64) {
	N, C, H, W := shape[0], shape[1], shape[2], shape[3]
	cfg := net.Config()
	p := func(name string) []float64 {
		v := net.Param(name).Float32s()
		out := make([]float64, len(v))
		for i, f := range v {
			out[i] = float64(f)
		}
		return out
	}
	silu := func(a float64) float64 { return a / (1 + math.Exp(-a)) }
	// linear returns a @ w + b for one row a.
	linear := func(a []float64, w, b []float64) []float64 {
		out := append([]float64(nil), b...)
		for i, ai := range a {
			for j := range out {
				out[j] += ai * w[i*len(out)+j]
			}
		}
		return out
	}
	// conv returns conv_d(in; w) + s[c] for one batch element, in of
	// shape (cin, H, W), w of shape (cout, cin, 3, 3), zero padding d.
	conv := func(in []float64, cin, H, W int, w []float64, cout, d int, s []float64) []float64 {
		out := make([]float64, cout*H*W)
		for co := 0; co < cout; co++ {
			for y := 0; y < H; y++ {
				for xx := 0; xx < W; xx++ {
					sum := s[co]
					for ci := 0; ci < cin; ci++ {
						for ky := 0; ky < 3; ky++ {
							iy := y + (ky-1)*d
							if iy < 0 || iy >= H {
								continue
							}
							for kx := 0; kx < 3; kx++ {
								ix := xx + (kx-1)*d
								if ix < 0 || ix >= W {
									continue
								}
								sum += w[((co*cin+ci)*3+ky)*3+kx] * in[(ci*H+iy)*W+ix]
							}
						}
					}
					out[(co*H+y)*W+xx] = sum
				}
			}
		}
		return out
	}
	// residual returns h + silu(conv_d(h) + s(layer)), in place.
	residual := func(h []float64, H, W int, ht []float64, layer string, d int) {
		r := conv(h, cfg.Width, H, W, p(layer+".w"), cfg.Width, d, linear(ht, p(layer+".p"), p(layer+".b")))
		for i := range h {
			h[i] += silu(r[i])
		}
	}

	freqs := net.Freqs()
	half := len(freqs)
	// interp interpolates f(abar) linearly between training steps (and
	// extrapolates linearly outside them).
	abar := cfg.AlphasCumprod
	interp := func(t float32, f func(float64) float64) float64 {
		k := int(math.Floor(float64(t)))
		k = max(0, min(k, len(abar)-2))
		a, b := f(float64(abar[k])), f(float64(abar[k+1]))
		return a + (b-a)*(float64(t)-float64(k))
	}
	if t[0] < 0 {
		panic("refForward: negative t")
	}
	eps = make([]float64, len(x))
	v = make([]float64, len(x))
	for n := 0; n < N; n++ {
		tn := t[0]
		if len(t) > 1 {
			tn = t[n]
		}
		emb := make([]float64, 2*half)
		for j, f := range freqs {
			arg := float64(tn * f) // the graph multiplies in float32
			emb[j] = math.Sin(arg)
			emb[half+j] = math.Cos(arg)
		}
		ht := linear(emb, p("time.w1"), p("time.b1"))
		for i := range ht {
			ht[i] = silu(ht[i])
		}
		in := make([]float64, C*H*W)
		for i := range in {
			in[i] = float64(x[n*C*H*W+i])
		}
		h1 := conv(in, C, H, W, p("stem.w"), cfg.Width, 1, linear(ht, p("stem.p"), p("stem.b")))
		for i := range h1 {
			h1[i] = silu(h1[i])
		}
		residual(h1, H, W, ht, "enc", 1)
		H2, W2 := H/2, W/2
		h2 := make([]float64, cfg.Width*H2*W2)
		for c := 0; c < cfg.Width; c++ {
			for y := 0; y < H2; y++ {
				for xx := 0; xx < W2; xx++ {
					a := h1[(c*H+2*y)*W+2*xx:]
					b := h1[(c*H+2*y+1)*W+2*xx:]
					h2[(c*H2+y)*W2+xx] = (a[0] + a[1] + b[0] + b[1]) / 4
				}
			}
		}
		for i, d := range cfg.Dilations {
			residual(h2, H2, W2, ht, fmt.Sprintf("mid%d", i), d)
		}
		h := h1
		for c := 0; c < cfg.Width; c++ {
			for y := 0; y < H; y++ {
				for xx := 0; xx < W; xx++ {
					h[(c*H+y)*W+xx] += h2[(c*H2+y/2)*W2+xx/2]
				}
			}
		}
		residual(h, H, W, ht, "dec", 1)
		vn := conv(h, cfg.Width, H, W, p("out.w"), C, 1, linear(ht, p("out.p"), p("out.b")))
		skip := linear(ht, p("skip.p"), p("skip.b"))
		ca := interp(tn, math.Sqrt)
		cb := interp(tn, func(a float64) float64 { return math.Sqrt(1 - a) })
		for i := range vn {
			vn[i] += skip[i/(H*W)] * in[i]
			eps[n*C*H*W+i] = ca*vn[i] + cb*in[i]
		}
		copy(v[n*C*H*W:], vn)
	}
	return eps, v
}

// randomNet returns a network of cfg whose every parameter, biases
// included, is random, so that every term of the forward pass matters.
func randomNet(t testing.TB, cfg Config, seed uint64) *Net {
	t.Helper()
	net, err := New(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	src := noise.NewPCG(seed + 100)
	for _, p := range net.Params() {
		v := p.Value.Float32s()
		src.Normal(v)
		shape := p.Value.Shape()
		scale := 0.1 // biases
		switch len(shape) {
		case 4:
			scale = 1 / math.Sqrt(float64(shape[1]*9))
		case 2:
			scale = 1 / math.Sqrt(float64(shape[0]))
		}
		for i := range v {
			v[i] *= float32(scale)
		}
	}
	return net
}

func dense(shape ...int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n)))
}

func TestBuildMatchesReference(t *testing.T) {
	small := Config{Channels: 2, Width: 6, Dilations: []int{1, 3}, EmbedDim: 8, TimeHidden: 5, AlphasCumprod: testAbar}
	cases := []struct {
		name  string
		cfg   Config
		shape [4]int
		t     []float32
	}{
		{"14x14 batch 3 distinct t", small, [4]int{3, 2, 14, 14}, []float32{0, 371.25, 999}},
		{"28x28 batch 2 shared t", small, [4]int{2, 2, 28, 28}, []float32{640}},
		{"6x10 batch 2", small, [4]int{2, 2, 6, 10}, []float32{12, 500}},
		{"2x2", small, [4]int{1, 2, 2, 2}, []float32{3}},
		{"fractional t", small, [4]int{3, 2, 4, 4}, []float32{0.25, 365.9, 998.5}},
		{"default config 14x14", DefaultConfig(), [4]int{2, 1, 14, 14}, []float32{10, 900}},
		{"default config 28x28 shared t", DefaultConfig(), [4]int{2, 1, 28, 28}, []float32{250}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			net := randomNet(t, tc.cfg, uint64(i+1))
			model, err := net.Denoiser()
			if err != nil {
				t.Fatal(err)
			}
			s := tc.shape
			x, dst := dense(s[:]...), dense(s[:]...)
			noise.NewPCG(uint64(i + 50)).Normal(x.Float32s())
			if err := model.PredictNoise(context.Background(), dst, x, tc.t); err != nil {
				t.Fatal(err)
			}
			want := refForward(net, x.Float32s(), s, tc.t)
			var maxDiff, maxAbs float64
			for j, g := range dst.Float32s() {
				maxDiff = math.Max(maxDiff, math.Abs(float64(g)-float64(want[j])))
				maxAbs = math.Max(maxAbs, math.Abs(float64(want[j])))
			}
			t.Logf("max |diff| %.3g (max |eps| %.3g)", maxDiff, maxAbs)
			if maxAbs < 0.1 {
				t.Errorf("outputs are all near zero (max %g): the test would prove little", maxAbs)
			}
			if maxDiff > 1e-5*math.Max(1, maxAbs) {
				t.Errorf("max |graph - reference| = %g, want <= 1e-5 relative to %g", maxDiff, maxAbs)
			}
			if len(tc.t) == 1 && s[0] > 1 {
				// len(t) == 1 equals the same timestep repeated.
				rep := make([]float32, s[0])
				for j := range rep {
					rep[j] = tc.t[0]
				}
				dst2 := dense(s[:]...)
				if err := model.PredictNoise(context.Background(), dst2, x, rep); err != nil {
					t.Fatal(err)
				}
				for j, v := range dst2.Float32s() {
					if v != dst.Float32s()[j] {
						t.Fatalf("element %d: %v with t repeated, %v with len(t) == 1", j, v, dst.Float32s()[j])
					}
				}
			}
		})
	}
}
