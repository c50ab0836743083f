package sampler

import (
	"context"
	"fmt"
	"runtime/debug"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/schedule"
)

// cheapModel returns a DenoiserFunc computing eps = 0.1 x that allocates
// nothing in steady state: it caches the backing slices of the tensors it
// saw last (tensor.Dense.Data allocates), as a real backend would keep its
// bindings.
func cheapModel() ugo.Denoiser {
	var lastDst, lastX *tensor.Dense
	var d, xs []float32
	return ugo.DenoiserFunc(func(_ context.Context, dst, x *tensor.Dense, _ []float32) error {
		if dst != lastDst || x != lastX {
			lastDst, lastX, d, xs = dst, x, dst.Float32s(), x.Float32s()
		}
		for i, v := range xs {
			d[i] = 0.1 * v
		}
		return nil
	})
}

func latent(shape ...int) *tensor.Dense {
	x := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	if err := noise.FillTensor(noise.NewPCG(1), x); err != nil {
		panic(err)
	}
	return x
}

// TestNoAllocPerStep checks that the allocations of a Sample call do not
// grow with the number of steps. The garbage collector is off while it
// counts: a collection during the count adds runtime allocations of its
// own.
func TestNoAllocPerStep(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	s := schedule.ScaledLinear(1000, 0.00085, 0.012)
	for name, sch := range map[string]Solver{
		"ddim":         &DDIM{Schedule: s},
		"ddim_eta":     &DDIM{Schedule: s, Eta: 1, Clip: Clip{Threshold: Threshold{Thresholding: true}}},
		"ddpm":         &DDPM{Schedule: s, Clip: Clip{ClipSample: true}},
		"ddpm_thresh":  &DDPM{Schedule: s, Clip: Clip{Threshold: Threshold{Thresholding: true}}, VarianceType: schedule.FixedSmallLog},
		"dpm2m":        &DPMSolverMultistep{Schedule: s, Threshold: Threshold{Thresholding: true}},
		"dpm2m_sde":    &DPMSolverMultistep{Schedule: s, Algorithm: SDEDPMSolverPP, UseKarrasSigmas: true},
		"euler_karras": &Euler{Schedule: s, UseKarrasSigmas: true},
		"euler_churn":  &Euler{Schedule: s, SChurn: 1},
		"euler_a":      &EulerAncestral{Schedule: s},
		"dpm3":         &DPMSolverMultistep{Schedule: s, SolverOrder: 3, LowerOrderFinal: true},
		"pndm_plms":    &PNDM{Schedule: s, SkipPRKSteps: true},
		"pndm_prk":     &PNDM{Schedule: s},
		"unipc3_bh1": &UniPC{Schedule: s, SolverOrder: 3, SolverType: BH1, Threshold: Threshold{Thresholding: true}, DisableCorrector: []int{2},
			FinalSigmas: FinalSigmaMin},
		"unipc2_v": &UniPC{Schedule: s, PredictionType: schedule.PredictV, UseKarrasSigmas: true, LowerOrderFinal: true},
	} {
		allocs := func(steps int) float64 {
			x := latent(2, 4, 8, 8)
			src := noise.NewPCG(2)
			progress := func(ProgressInfo) error { return nil }
			model := cheapModel()
			return testing.AllocsPerRun(3, func() {
				if err := Sample(context.Background(), model, sch, x, Options{Steps: steps, Noise: src, Progress: progress}); err != nil {
					t.Fatal(err)
				}
			})
		}
		few, many := allocs(5), allocs(50)
		if many != few {
			t.Errorf("%s: %v allocations for 5 steps, %v for 50: something allocates per step", name, few, many)
		}
	}
}

func BenchmarkSample(b *testing.B) {
	s := schedule.ScaledLinear(1000, 0.00085, 0.012)
	for _, bc := range []struct {
		name string
		s    Solver
	}{
		{"ddim", &DDIM{Schedule: s}},
		{"ddim_eta1", &DDIM{Schedule: s, Eta: 1}},
		{"ddim_threshold", &DDIM{Schedule: s, Clip: Clip{Threshold: Threshold{Thresholding: true}}}},
		{"ddpm", &DDPM{Schedule: s}},
		{"dpm2m", &DPMSolverMultistep{Schedule: s, LowerOrderFinal: true}},
		{"dpm2m_karras", &DPMSolverMultistep{Schedule: s, LowerOrderFinal: true, UseKarrasSigmas: true}},
		{"dpm2m_sde", &DPMSolverMultistep{Schedule: s, Algorithm: SDEDPMSolverPP}},
		{"euler", &Euler{Schedule: s}},
		{"euler_karras", &Euler{Schedule: s, UseKarrasSigmas: true}},
		{"euler_a", &EulerAncestral{Schedule: s}},
	} {
		const steps = 20
		x := latent(1, 4, 64, 64)
		init := append([]float32(nil), x.Float32s()...)
		src := noise.NewPCG(1)
		model := cheapModel()
		b.Run(fmt.Sprintf("%s/1x4x64x64/%dsteps", bc.name, steps), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(4 * len(init) * steps))
			for b.Loop() {
				copy(x.Float32s(), init)
				if err := Sample(context.Background(), model, bc.s, x, Options{Steps: steps, Noise: src}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStep measures one step of each solver on an SD-sized latent:
// the allocations reported must be 0.
func BenchmarkStep(b *testing.B) {
	s := schedule.ScaledLinear(1000, 0.00085, 0.012)
	const n = 4 * 64 * 64
	x, eps, z, x0, prev := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	noise.NewPCG(1).Normal(x)
	noise.NewPCG(2).Normal(eps)
	noise.NewPCG(3).Normal(z)
	noise.NewPCG(4).Normal(prev)
	for _, bc := range []struct {
		name string
		s    Solver
	}{
		{"ddim", &DDIM{Schedule: s}},
		{"ddim_v_clip", &DDIM{Schedule: s, PredictionType: schedule.PredictV, Clip: Clip{ClipSample: true}}},
		{"ddpm", &DDPM{Schedule: s}},
		{"dpm2m", &DPMSolverMultistep{Schedule: s}},
		{"dpm2m_threshold", &DPMSolverMultistep{Schedule: s, Threshold: Threshold{Thresholding: true}}},
		{"dpm2m_sde", &DPMSolverMultistep{Schedule: s, Algorithm: SDEDPMSolverPP}},
		{"euler", &Euler{Schedule: s}},
		{"euler_churn", &Euler{Schedule: s, SChurn: 1}},
		{"euler_a", &EulerAncestral{Schedule: s}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, err := bc.s.Trajectory(20)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(4 * n)
			dst := make([]float32, n)
			scratch := make([]float32, n)
			in := StepInput{ModelOutput: eps, Sample: x, Noise: z, X0: x0, Scratch: scratch}
			if p.Multistep {
				in.PrevX0 = prev
			}
			for b.Loop() {
				if err := bc.s.StepAt(dst, p, 10, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
