package sampler

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ugo-diffusion/ugo/schedule"
)

// The published full-loop results of diffusers'
// tests/schedulers/test_scheduler_pndm.py: 10 steps of the dummy model from
// dummy_sample_deter, linear betas, Runge-Kutta steps then linear
// multistep ones (the test calls step_prk and step_plms over prk_timesteps
// and plms_timesteps, which is what step does over timesteps).
func TestPNDMFullLoopGoldens(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(*PNDM)
		sum, mean float64
	}{
		{"no_noise", func(*PNDM) {}, 198.1318, 0.2580},
		{"with_v_prediction", func(d *PNDM) { d.PredictionType = schedule.PredictV }, 67.3986, 0.0878},
		{"with_set_alpha_to_one", func(d *PNDM) { d.Schedule, d.SetAlphaToOne = linearSchedule(t, 0.01), true }, 230.0399, 0.2995},
		{"with_no_set_alpha_to_one", func(d *PNDM) { d.Schedule = linearSchedule(t, 0.01) }, 186.9482, 0.2434},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &PNDM{Schedule: linearSchedule(t, 0.0001)}
			tc.edit(d)
			x := dummyDeter(false)
			if err := Sample(context.Background(), dummyModel, d, x, Options{Steps: 10}); err != nil {
				t.Fatal(err)
			}
			checkSumMean(t, x.Float32s(), tc.sum, tc.mean)
		})
	}
}

// The published full-loop results of diffusers'
// tests/schedulers/test_scheduler_unipc.py: 10 steps of the dummy model
// from dummy_sample_deter, linear betas, solver order 2, bh2,
// final_sigmas_type sigma_min, in an ordinary loop.
func TestUniPCFullLoopGoldens(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name      string
		edit      func(*UniPC)
		strength  float64
		sum, mean float64
	}{
		{"no_noise", func(*UniPC) {}, 0, nan, 0.2464},
		{"with_karras", func(u *UniPC) { u.UseKarrasSigmas = true }, 0, nan, 0.2925},
		{"with_v_prediction", func(u *UniPC) { u.PredictionType = schedule.PredictV }, 0, nan, 0.1014},
		{"with_karras_and_v_prediction", func(u *UniPC) { u.UseKarrasSigmas, u.PredictionType = true, schedule.PredictV }, 0, nan, 0.1966},
		// test_full_loop_with_noise: add_noise(dummy_noise_deter) at
		// timesteps[8], then the last 2 of 10 steps: img2img at 0.2.
		{"with_noise", func(*UniPC) {}, 0.2, 315.5757, 0.4109},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := &UniPC{Schedule: linearSchedule(t, 0.0001), SolverOrder: 2, SolverType: BH2, LowerOrderFinal: true, FinalSigmas: FinalSigmaMin}
			tc.edit(u)
			x := dummyDeter(false)
			opts := Options{Steps: 10}
			if tc.strength > 0 {
				opts.Strength = tc.strength
				opts.Noise = &fixedThen{first: dummyDeter(true).Float32s()}
			}
			if err := Sample(context.Background(), dummyModel, u, x, opts); err != nil {
				t.Fatal(err)
			}
			checkSumMean(t, x.Float32s(), tc.sum, tc.mean)
		})
	}
}

func parse(t *testing.T, js string) schedule.Config {
	t.Helper()
	c, err := schedule.ParseConfig([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return *c
}

// TestFromConfigRefuses checks that every key value a supported diffusers
// class reads and this package does not implement is refused with a
// *schedule.FieldError naming the key, and that the same key is ignored by
// the classes that do not read it, as diffusers' from_config ignores it.
func TestFromConfigRefuses(t *testing.T) {
	tests := []struct {
		class, body, key string
	}{
		{"DDPMScheduler", `"variance_type": "learned_range"`, "variance_type"},
		{"DDPMScheduler", `"variance_type": "learned"`, "variance_type"},
		{"DDIMScheduler", `"beta_schedule": "sigmoid"`, "beta_schedule"},
		{"PNDMScheduler", `"beta_schedule": "sigmoid"`, "beta_schedule"},
		{"EulerDiscreteScheduler", `"beta_schedule": "sigmoid"`, "beta_schedule"},
		{"EulerAncestralDiscreteScheduler", `"beta_schedule": "sigmoid"`, "beta_schedule"},
		{"DPMSolverMultistepScheduler", `"beta_schedule": "sigmoid"`, "beta_schedule"},
		{"UniPCMultistepScheduler", `"beta_schedule": "sigmoid"`, "beta_schedule"},
		{"PNDMScheduler", `"skip_prk_steps": true, "prediction_type": "sample"`, "prediction_type"},
		{"EulerDiscreteScheduler", `"use_exponential_sigmas": true`, "use_exponential_sigmas"},
		{"EulerDiscreteScheduler", `"use_beta_sigmas": true`, "use_beta_sigmas"},
		{"EulerDiscreteScheduler", `"interpolation_type": "log_linear"`, "interpolation_type"},
		{"EulerDiscreteScheduler", `"timestep_type": "continuous", "prediction_type": "v_prediction"`, "timestep_type"},
		{"EulerAncestralDiscreteScheduler", `"prediction_type": "sample"`, "prediction_type"},
		{"DPMSolverMultistepScheduler", `"algorithm_type": "dpmsolver"`, "algorithm_type"},
		{"DPMSolverMultistepScheduler", `"algorithm_type": "sde-dpmsolver"`, "algorithm_type"},
		{"DPMSolverMultistepScheduler", `"use_lu_lambdas": true`, "use_lu_lambdas"},
		{"DPMSolverMultistepScheduler", `"use_exponential_sigmas": true`, "use_exponential_sigmas"},
		{"DPMSolverMultistepScheduler", `"use_beta_sigmas": true`, "use_beta_sigmas"},
		{"DPMSolverMultistepScheduler", `"use_flow_sigmas": true`, "use_flow_sigmas"},
		{"DPMSolverMultistepScheduler", `"use_dynamic_shifting": true`, "use_dynamic_shifting"},
		{"DPMSolverMultistepScheduler", `"variance_type": "learned_range"`, "variance_type"},
		{"DPMSolverMultistepScheduler", `"time_shift_type": "linear"`, "time_shift_type"},
		{"UniPCMultistepScheduler", `"predict_x0": false`, "predict_x0"},
		{"UniPCMultistepScheduler", `"solver_p": {"_class_name": "DDIMScheduler"}`, "solver_p"},
		{"UniPCMultistepScheduler", `"shift_terminal": 0.1`, "shift_terminal"},
		{"UniPCMultistepScheduler", `"use_flow_sigmas": true`, "use_flow_sigmas"},
		{"UniPCMultistepScheduler", `"use_exponential_sigmas": true`, "use_exponential_sigmas"},
		{"UniPCMultistepScheduler", `"solver_type": "bh1"`, "solver_type"},
		{"UniPCMultistepScheduler", `"lower_order_final": false`, "lower_order_final"},
		{"UniPCMultistepScheduler", `"time_shift_type": "linear"`, "time_shift_type"},
		{"EulerDiscreteScheduler", `"prediction_type": "flow_prediction"`, "prediction_type"},
		{"FlowMatchEulerDiscreteScheduler", `"invert_sigmas": true`, "invert_sigmas"},
		{"FlowMatchEulerDiscreteScheduler", `"use_beta_sigmas": true`, "use_beta_sigmas"},
	}
	for _, tc := range tests {
		t.Run(tc.class+"/"+tc.key, func(t *testing.T) {
			cfg := parse(t, `{"_class_name": "`+tc.class+`", `+tc.body+`}`)
			_, err := FromConfig(cfg)
			var fe *schedule.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.key {
				t.Fatalf("FromConfig: err = %v, want a *schedule.FieldError for %q", err, tc.key)
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Errorf("error %q does not name %q", err, tc.key)
			}
		})
	}
	// DDIM reads none of these keys, so it ignores them, as diffusers does.
	for _, tc := range tests {
		if tc.class == "DDPMScheduler" || strings.Contains(tc.body, "skip_prk_steps") || tc.key == "prediction_type" ||
			tc.key == "beta_schedule" {
			continue // keys DDIM reads, with values it supports or refuses itself
		}
		cfg := parse(t, `{"_class_name": "`+tc.class+`", `+tc.body+`}`)
		if _, err := New("ddim", cfg); err != nil {
			t.Errorf("New(ddim) with %s: %v", tc.body, err)
		}
	}
}

// TestFromConfigKeysTakeEffect checks, for each key of the multistep
// classes, that changing it in the JSON changes the solver that
// FromConfig builds (the full runs against diffusers are in
// TestDiffusersRuns).
func TestFromConfigKeysTakeEffect(t *testing.T) {
	base := `"_class_name": "DPMSolverMultistepScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012`
	d, err := FromConfig(parse(t, `{`+base+`}`))
	if err != nil {
		t.Fatal(err)
	}
	def := *d.(*DPMSolverMultistep)
	for _, tc := range []struct {
		body string
		want func(*DPMSolverMultistep) bool
	}{
		{`"use_karras_sigmas": true`, func(d *DPMSolverMultistep) bool { return d.UseKarrasSigmas }},
		{`"algorithm_type": "sde-dpmsolver++"`, func(d *DPMSolverMultistep) bool { return d.Algorithm == SDEDPMSolverPP }},
		{`"solver_order": 3`, func(d *DPMSolverMultistep) bool { return d.SolverOrder == 3 }},
		{`"solver_order": 1`, func(d *DPMSolverMultistep) bool { return d.SolverOrder == 1 }},
		{`"solver_type": "heun"`, func(d *DPMSolverMultistep) bool { return d.SolverType == Heun }},
		{`"solver_type": "bh1"`, func(d *DPMSolverMultistep) bool { return d.SolverType == Midpoint }},
		{`"algorithm_type": "deis", "solver_type": "logrho"`, func(d *DPMSolverMultistep) bool {
			return d.Algorithm == DPMSolverPP && d.SolverType == Midpoint
		}},
		{`"lower_order_final": false`, func(d *DPMSolverMultistep) bool { return !d.LowerOrderFinal }},
		{`"euler_at_final": true`, func(d *DPMSolverMultistep) bool { return d.EulerAtFinal }},
		{`"final_sigmas_type": "sigma_min"`, func(d *DPMSolverMultistep) bool { return d.FinalSigmas == FinalSigmaMin }},
		{`"lambda_min_clipped": -5.1`, func(d *DPMSolverMultistep) bool { return d.LambdaMinClipped == -5.1 }},
		{`"lambda_min_clipped": -Infinity`, func(d *DPMSolverMultistep) bool { return math.IsInf(d.LambdaMinClipped, -1) }},
		{`"timestep_spacing": "trailing"`, func(d *DPMSolverMultistep) bool { return d.Spacing == schedule.Trailing }},
		{`"thresholding": true`, func(d *DPMSolverMultistep) bool { return d.Thresholding }},
		{`"prediction_type": "v_prediction"`, func(d *DPMSolverMultistep) bool { return d.PredictionType == schedule.PredictV }},
	} {
		s, err := FromConfig(parse(t, `{`+base+`, `+tc.body+`}`))
		if err != nil {
			t.Errorf("%s: %v", tc.body, err)
			continue
		}
		if !tc.want(s.(*DPMSolverMultistep)) {
			t.Errorf("%s: solver %+v", tc.body, s)
		}
	}
	if def.Spacing != schedule.Linspace || def.SolverOrder != 2 || !def.LowerOrderFinal || def.UseKarrasSigmas {
		t.Errorf("defaults: %+v", def)
	}

	u, err := FromConfig(parse(t, `{"_class_name": "UniPCMultistepScheduler", "solver_type": "bh1", "solver_order": 3, "final_sigmas_type": "sigma_min",
		"disable_corrector": [1, 2], "use_karras_sigmas": true, "sigma_min": 0.1, "sigma_max": 9, "lower_order_final": false}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := u.(*UniPC); got.SolverType != BH1 || got.SolverOrder != 3 || len(got.DisableCorrector) != 2 || !got.UseKarrasSigmas ||
		got.KarrasSigmaMin != 0.1 || got.KarrasSigmaMax != 9 || got.LowerOrderFinal {
		t.Errorf("UniPC from config: %+v", got)
	}
	e, err := FromConfig(parse(t, `{"_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": true, "sigma_min": 0.2,
		"final_sigmas_type": "sigma_min", "timestep_spacing": "leading", "steps_offset": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.(*Euler); !got.UseKarrasSigmas || got.KarrasSigmaMin != 0.2 || got.FinalSigmas != FinalSigmaMin ||
		got.Spacing != schedule.Leading || got.StepsOffset != 1 {
		t.Errorf("Euler from config: %+v", got)
	}
}

func TestRegistry(t *testing.T) {
	if len(Names()) != len(Kinds) {
		t.Fatal("Names and Kinds differ")
	}
	seen := map[string]bool{}
	for _, k := range Kinds {
		for _, name := range []string{k.Name, k.Class} {
			if seen[name] {
				t.Errorf("%q listed twice", name)
			}
			seen[name] = true
			cfg := parse(t, `{"skip_prk_steps": true}`)
			s, err := New(name, cfg)
			if err != nil {
				t.Errorf("New(%q): %v", name, err)
				continue
			}
			if _, err := s.Trajectory(10); err != nil {
				t.Errorf("New(%q).Trajectory(10): %v", name, err)
			}
		}
	}
	_, err := New("euler-a", schedule.DefaultConfig())
	var ue *UnknownSamplerError
	if !errors.As(err, &ue) {
		t.Fatalf("New(euler-a): err = %v, want *UnknownSamplerError", err)
	}
	for _, k := range Kinds {
		if !strings.Contains(err.Error(), k.Name) || !strings.Contains(err.Error(), k.Class) {
			t.Errorf("error %q does not list %s (%s)", err, k.Name, k.Class)
		}
	}
	if _, err := FromConfig(parse(t, `{"_class_name": "LMSDiscreteScheduler"}`)); !errors.As(err, &ue) || ue.Name != "LMSDiscreteScheduler" {
		t.Errorf("FromConfig(LMS): err = %v", err)
	}
	var fe *schedule.FieldError
	if _, err := FromConfig(parse(t, `{"beta_schedule": "linear"}`)); !errors.As(err, &fe) || fe.Field != "_class_name" {
		t.Errorf("FromConfig without _class_name: err = %v", err)
	}
}

// TestClassDefaults checks that keys a parsed file does not give take the
// defaults of the class built, as diffusers' from_config does, while a
// Config built in Go is taken as it is.
func TestClassDefaults(t *testing.T) {
	sd15 := parse(t, `{"_class_name": "PNDMScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085,
		"beta_end": 0.012, "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "clip_sample": false}`)
	e, err := New("euler", sd15)
	if err != nil {
		t.Fatal(err)
	}
	if sp := e.(*Euler).Spacing; sp != schedule.Linspace {
		t.Errorf("Euler from SD 1.5's config: spacing %q, want linspace", sp)
	}
	p, err := New("pndm", parse(t, `{"skip_prk_steps": true}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.(*PNDM).SetAlphaToOne {
		t.Error("PNDM without set_alpha_to_one: want PNDMScheduler's default false")
	}
	// PNDMScheduler has no rescale_betas_zero_snr; DDIMScheduler has.
	zsnr := parse(t, `{"skip_prk_steps": true, "rescale_betas_zero_snr": true}`)
	pz, err := New("pndm", zsnr)
	if err != nil {
		t.Fatal(err)
	}
	dz, err := New("ddim", zsnr)
	if err != nil {
		t.Fatal(err)
	}
	if ac := pz.(*PNDM).Schedule.AlphasCumprod(); ac[len(ac)-1] == 0 {
		t.Error("PNDM applied rescale_betas_zero_snr, which its diffusers class does not read")
	}
	if ac := dz.(*DDIM).Schedule.AlphasCumprod(); ac[len(ac)-1] != 0 {
		t.Error("DDIM ignored rescale_betas_zero_snr")
	}
	d, err := New("ddim", parse(t, `{}`))
	if err != nil {
		t.Fatal(err)
	}
	if !d.(*DDIM).SetAlphaToOne {
		t.Error("DDIM without set_alpha_to_one: want DDIMScheduler's default true")
	}
	g, err := New("euler", schedule.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if sp := g.(*Euler).Spacing; sp != schedule.Leading {
		t.Errorf("Euler from DefaultConfig: spacing %q, want the config's leading", sp)
	}
}
