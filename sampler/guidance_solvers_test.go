package sampler_test

import (
	"context"
	"math"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/internal/analytic"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

// fieldModelExt returns the exact denoiser of a Gaussian field with
// correlation length l pixels under schedule s.
func fieldModelExt(t testing.TB, s *schedule.Schedule, l float64) ugo.Denoiser {
	t.Helper()
	f, err := analytic.NewField(l, l)
	if err != nil {
		t.Fatal(err)
	}
	return f.Denoiser(s.AlphaBar)
}

// TestUpsampleGuidanceFastSolvers samples the analytic Gaussian field at
// twice its "trained" grid with each fast solver, with and without
// Upsample Guidance (guidance.Upsample wrapping the model; the solvers call
// it at fractional timesteps), and checks that guidance restores the
// trained-grid correlation length of the pooled sample, as it does with
// DDIM.
func TestUpsampleGuidanceFastSolvers(t *testing.T) {
	s := schedule.Linear(1000, 0.0001, 0.02)
	const l = 3.0
	model := fieldModelExt(t, s, l)
	guided, err := guidance.Upsample(model, s, guidance.DefaultUpsampleOptions())
	if err != nil {
		t.Fatal(err)
	}
	corr := func(x *tensor.Dense) float64 {
		var sum float64
		for _, axis := range []int{2, 3} {
			c, err := analytic.CorrelationLength(x, axis)
			if err != nil {
				t.Fatal(err)
			}
			sum += c / 2
		}
		return sum
	}
	pool := func(x *tensor.Dense) *tensor.Dense {
		sh := x.Shape()
		n, c, h, w := sh[0], sh[1], sh[2]/2, sh[3]/2
		src, dst := x.Float32s(), make([]float32, n*c*h*w)
		for b := range n * c {
			for i := range h {
				for j := range w {
					at := func(di, dj int) float32 { return src[(b*2*h+2*i+di)*2*w+2*j+dj] }
					dst[(b*h+i)*w+j] = (at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1)) / 4
				}
			}
		}
		return tensor.New(tensor.WithShape(n, c, h, w), tensor.WithBacking(dst))
	}
	for _, sc := range []struct {
		name  string
		s     sampler.Solver
		steps int
	}{
		{"dpm2m", &sampler.DPMSolverMultistep{Schedule: s, LowerOrderFinal: true}, 20},
		{"dpm2m_karras", &sampler.DPMSolverMultistep{Schedule: s, LowerOrderFinal: true, UseKarrasSigmas: true}, 20},
		{"euler", &sampler.Euler{Schedule: s}, 25},
		{"euler_a", &sampler.EulerAncestral{Schedule: s}, 30},
	} {
		t.Run(sc.name, func(t *testing.T) {
			sample := func(m ugo.Denoiser, seed uint64, size int) *tensor.Dense {
				src := noise.NewPCG(seed)
				x, err := noise.NewTensor(src, 6, 1, size, size)
				if err != nil {
					t.Fatal(err)
				}
				if err := sampler.Sample(context.Background(), m, sc.s, x, sampler.Options{Steps: sc.steps, Noise: src}); err != nil {
					t.Fatal(err)
				}
				return x
			}
			lRef := corr(sample(model, 1, 32))
			lPlain := corr(pool(sample(model, 2, 64)))
			lGuided := corr(pool(sample(guided, 2, 64)))
			closed := (lGuided - lPlain) / (lRef - lPlain)
			t.Logf("%d steps: pooled correlation length reference %.3f, plain %.3f, guided %.3f px: %.0f%% of the gap closed",
				sc.steps, lRef, lPlain, lGuided, 100*closed)
			if closed < 0.75 {
				t.Errorf("guidance closed %.0f%% of the correlation-length gap, want at least 75%%", 100*closed)
			}
			if math.Abs(lGuided-l) > 0.15*l {
				t.Errorf("guided pooled correlation length %.3f px, field length %v", lGuided, l)
			}
		})
	}
}
