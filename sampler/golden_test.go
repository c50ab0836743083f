package sampler

import (
	"context"
	"math"
	"testing"

	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/schedule"
)

// The published full-loop results of diffusers'
// tests/schedulers/test_scheduler_ddim.py and test_scheduler_ddpm.py, whose
// tolerances (1e-2 on the sum, 1e-3 on the mean) are kept.
func TestDDIMFullLoopGoldens(t *testing.T) {
	tests := []struct {
		name      string
		pred      schedule.PredictionType
		betaStart float32
		alphaOne  bool
		strength  float64
		sum, mean float64
	}{
		{"no_noise", schedule.PredictEpsilon, 0.0001, true, 0, 172.0067, 0.223967},
		{"v_prediction", schedule.PredictV, 0.0001, true, 0, 52.5302, 0.0684},
		{"set_alpha_to_one", schedule.PredictEpsilon, 0.01, true, 0, 149.8295, 0.1951},
		{"no_set_alpha_to_one", schedule.PredictEpsilon, 0.01, false, 0, 149.0784, 0.1941},
		// test_full_loop_with_noise: add_noise at timesteps[8], then the
		// last two of 10 steps, which is img2img at strength 0.2.
		{"with_noise", schedule.PredictEpsilon, 0.0001, true, 0.2, 354.5418, 0.4616},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &DDIM{
				Schedule:       linearSchedule(t, tc.betaStart),
				PredictionType: tc.pred,
				Clip:           Clip{ClipSample: true},
				SetAlphaToOne:  tc.alphaOne,
			}
			x := dummyDeter(false)
			opts := Options{Steps: 10}
			if tc.strength > 0 {
				opts.Strength = tc.strength
				opts.Noise = &fixedThen{first: dummyDeter(true).Float32s()}
			}
			if err := Sample(context.Background(), dummyModel, d, x, opts); err != nil {
				t.Fatal(err)
			}
			sum, mean := absSumMean(x.Float32s())
			if math.Abs(sum-tc.sum) > 1e-2 || math.Abs(mean-tc.mean) > 1e-3 {
				t.Errorf("sum %.4f mean %.6f, want %.4f and %.6f", sum, mean, tc.sum, tc.mean)
			}
			t.Logf("sum %.4f (diffusers %.4f), mean %.6f", sum, tc.sum, mean)
		})
	}
}

func TestDDPMFullLoopGoldens(t *testing.T) {
	if testing.Short() {
		t.Skip("1000-step loops")
	}
	tests := []struct {
		name      string
		pred      schedule.PredictionType
		strength  float64
		sum, mean float64
	}{
		{"no_noise", schedule.PredictEpsilon, 0, 258.9606, 0.3372},
		{"v_prediction", schedule.PredictV, 0, 202.0296, 0.2631},
		// test_full_loop_with_noise: the last 2 of 1000 steps.
		{"with_noise", schedule.PredictEpsilon, 0.002, 387.9466, 0.5051},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &DDPM{Schedule: linearSchedule(t, 0.0001), PredictionType: tc.pred, Clip: Clip{ClipSample: true}, VarianceType: schedule.FixedSmall}
			x := dummyDeter(false)
			var src noise.Source = noise.NewTorchCPU(0)
			if tc.strength > 0 {
				src = &fixedThen{first: dummyDeter(true).Float32s(), rest: src}
			}
			if err := Sample(context.Background(), dummyModel, d, x, Options{Steps: 1000, Noise: src, Strength: tc.strength}); err != nil {
				t.Fatal(err)
			}
			sum, mean := absSumMean(x.Float32s())
			if math.Abs(sum-tc.sum) > 1e-2 || math.Abs(mean-tc.mean) > 1e-3 {
				t.Errorf("sum %.4f mean %.6f, want %.4f and %.6f", sum, mean, tc.sum, tc.mean)
			}
			t.Logf("sum %.4f (diffusers %.4f), mean %.6f", sum, tc.sum, mean)
		})
	}
}

func TestVarianceGoldens(t *testing.T) {
	s := linearSchedule(t, 0.0001)
	ddim := &DDIM{Schedule: s, SetAlphaToOne: true}
	ddpm := &DDPM{Schedule: s}
	tests := []struct {
		name    string
		get     func(t, prev int) (float32, error)
		t, prev int
		want    float64
	}{
		{"ddim", ddim.Variance, 0, 0, 0},
		{"ddim", ddim.Variance, 420, 400, 0.14771},
		{"ddim", ddim.Variance, 980, 960, 0.32460},
		{"ddim", ddim.Variance, 487, 486, 0.00979},
		{"ddim", ddim.Variance, 999, 998, 0.02},
		{"ddpm", ddpm.Variance, 0, -1, 0},
		{"ddpm", ddpm.Variance, 487, 486, 0.00979},
		{"ddpm", ddpm.Variance, 999, 998, 0.02},
	}
	for _, tc := range tests {
		got, err := tc.get(tc.t, tc.prev)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(float64(got)-tc.want) > 1e-5 {
			t.Errorf("%s variance(%d, %d) = %v, want %v", tc.name, tc.t, tc.prev, got, tc.want)
		}
	}
}

func TestTimestepsStepsOffset(t *testing.T) {
	// test_steps_offset: leading spacing, offset 1, 5 steps.
	d := &DDIM{Schedule: linearSchedule(t, 0.0001), StepsOffset: 1}
	got, err := d.Timesteps(5)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{801, 601, 401, 201, 1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Timesteps(5) = %v, want %v", got, want)
		}
	}
	// Spacing goes through to the schedule package.
	d.Spacing = schedule.Trailing
	if got, err = d.Timesteps(3); err != nil || got[0] != 999 {
		t.Errorf("trailing Timesteps(3) = %v, %v; want a run starting at 999", got, err)
	}
}
