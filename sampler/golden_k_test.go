package sampler

import (
	"context"
	"math"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/schedule"
)

// checkSumMean compares torch.sum(abs(x)) and torch.mean(abs(x)) with a
// published result under diffusers' tolerances (1e-2 on the sum, 1e-3 on
// the mean). A NaN want skips that value.
func checkSumMean(t *testing.T, x []float32, wantSum, wantMean float64) {
	t.Helper()
	sum, mean := absSumMean(x)
	if (!math.IsNaN(wantSum) && math.Abs(sum-wantSum) > 1e-2) || math.Abs(mean-wantMean) > 1e-3 {
		t.Errorf("sum %.4f mean %.6f, want %.4f and %.6f", sum, mean, wantSum, wantMean)
	}
	t.Logf("sum %.4f (diffusers %.4f), mean %.6f (diffusers %.6f)", sum, wantSum, mean, wantMean)
}

// The published full-loop results of diffusers'
// tests/schedulers/test_scheduler_dpm_multi.py: 10 steps of the dummy model
// from dummy_sample_deter, linear betas, solver order 2, midpoint,
// lower_order_final and euler_at_final off, final_sigmas_type sigma_min.
// The test loop is an ordinary one (the model sees the sample as is), so
// Sample runs it.
func TestDPMSolverFullLoopGoldens(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name      string
		edit      func(*DPMSolverMultistep)
		strength  float64
		sum, mean float64
	}{
		{"no_noise", func(*DPMSolverMultistep) {}, 0, nan, 0.3301},
		{"thres", func(d *DPMSolverMultistep) {
			d.Thresholding, d.DynamicThresholdingRatio, d.SampleMaxValue = true, 0.87, 0.5
		}, 0, nan, 1.1364},
		{"v_prediction", func(d *DPMSolverMultistep) { d.PredictionType = schedule.PredictV }, 0, nan, 0.2251},
		{"karras_and_v_prediction", func(d *DPMSolverMultistep) {
			d.PredictionType, d.UseKarrasSigmas = schedule.PredictV, true
		}, 0, nan, 0.2096},
		// test_full_loop_with_noise: add_noise(dummy_noise_deter) at
		// timesteps[5], then the last 5 of 10 steps: img2img at 0.5.
		{"with_noise", func(*DPMSolverMultistep) {}, 0.5, 318.4111, 0.4146},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &DPMSolverMultistep{Schedule: linearSchedule(t, 0.0001), SolverOrder: 2, FinalSigmas: FinalSigmaMin}
			tc.edit(d)
			x := dummyDeter(false)
			opts := Options{Steps: 10}
			if tc.strength > 0 {
				opts.Strength = tc.strength
				opts.Noise = &fixedThen{first: dummyDeter(true).Float32s()}
			}
			if err := Sample(context.Background(), dummyModel, d, x, opts); err != nil {
				t.Fatal(err)
			}
			checkSumMean(t, x.Float32s(), tc.sum, tc.mean)
		})
	}
}

// eulerTestLoop replays the loop of diffusers' test_scheduler_euler.py and
// test_scheduler_euler_ancestral.py, quirk included: the tests assign the
// output of scale_model_input back to sample, so step receives the scaled
// sample. It starts at step start of an n-step trajectory from x, which it
// updates; noise comes from src.
func eulerTestLoop(t *testing.T, s Solver, p *Trajectory, start int, x []float32, src noise.Source) {
	t.Helper()
	xt := tensor.New(tensor.WithShape(dB, dC, dH, dW), tensor.WithBacking(x))
	eps := tensor.New(tensor.WithShape(dB, dC, dH, dW), tensor.WithBacking(make([]float32, dN)))
	z := make([]float32, dN)
	for i := start; i < p.Len(); i++ {
		for j := range x {
			x[j] /= p.InputNorm[i]
		}
		if err := dummyModel(context.Background(), eps, xt, []float32{p.Timesteps[i]}); err != nil {
			t.Fatal(err)
		}
		in := StepInput{ModelOutput: eps.Float32s(), Sample: x}
		if p.Noisy[i] {
			src.Normal(z)
			in.Noise = z
		}
		if err := s.StepAt(x, p, i, in); err != nil {
			t.Fatal(err)
		}
	}
}

// The published full-loop results of diffusers' test_scheduler_euler.py
// and test_scheduler_euler_ancestral.py: T = 1100 linear betas, 10 steps
// on linspace spacing from dummy_sample_deter * init_noise_sigma, noise
// from torch.manual_seed(0).
func TestEulerFullLoopGoldens(t *testing.T) {
	s := schedule.Linear(1100, 0.0001, 0.02)
	tests := []struct {
		name      string
		solver    Solver
		start     int // test_full_loop_with_noise: add_noise at timesteps[start]
		sum, mean float64
	}{
		{"euler/no_noise", &Euler{Schedule: s}, 0, 10.0807, 0.0131},
		{"euler/v_prediction", &Euler{Schedule: s, PredictionType: schedule.PredictV}, 0, 0.0002, 2.2676e-06},
		{"euler/karras_sigmas", &Euler{Schedule: s, UseKarrasSigmas: true}, 0, 124.52299499511719, 0.16213932633399963},
		{"euler_ancestral/no_noise", &EulerAncestral{Schedule: s}, 0, 152.3192, 0.1983},
		{"euler_ancestral/v_prediction", &EulerAncestral{Schedule: s, PredictionType: schedule.PredictV}, 0, 108.4439, 0.1412},
		{"euler_ancestral/with_noise", &EulerAncestral{Schedule: s}, 8, 56163.0508, 73.1290},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.solver.Trajectory(10)
			if err != nil {
				t.Fatal(err)
			}
			x := dummyDeter(false).Float32s()
			for j := range x {
				x[j] *= p.InitNoiseSigma
			}
			if tc.start > 0 {
				if err := tc.solver.AddNoiseAt(x, x, dummyDeter(true).Float32s(), p, tc.start); err != nil {
					t.Fatal(err)
				}
			}
			eulerTestLoop(t, tc.solver, p, tc.start, x, noise.NewTorchCPU(0))
			checkSumMean(t, x, tc.sum, tc.mean)
		})
	}
}
