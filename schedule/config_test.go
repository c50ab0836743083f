package schedule

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestLoadConfigSD15(t *testing.T) {
	c, err := LoadConfig(filepath.Join("testdata", "sd15_scheduler_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.BetaStart, want.BetaEnd = 0.00085, 0.012
	want.BetaSchedule = BetaScaledLinear
	want.SetAlphaToOne = false
	want.SkipPRKSteps = true
	want.StepsOffset = 1
	want.ClipSample = false
	want.ClassName = "PNDMScheduler"
	if diff := cmp.Diff(want, *c, cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("SD 1.5 config (-want +got):\n%s", diff)
	}
	s, err := c.Schedule()
	if err != nil {
		t.Fatal(err)
	}
	// Stable Diffusion's well-known endpoints: abar_0 = 1 - 0.00085 and
	// abar_999 = 0.0047 (final SNR about 0.0047, log SNR about -5.36).
	ac := s.AlphasCumprod()
	if len(ac) != 1000 || ac[0] != 1-float32(0.00085) {
		t.Errorf("abar_0 = %v, want %v", ac[0], 1-float32(0.00085))
	}
	if math.Abs(float64(ac[999])-0.0047) > 1e-4 {
		t.Errorf("abar_999 = %v, want about 0.0047", ac[999])
	}
	// Bit-identical to the float32 constructor.
	if diff := cmp.Diff(ScaledLinear(1000, 0.00085, 0.012).Betas(), s.Betas()); diff != "" {
		t.Errorf("Config.Schedule differs from ScaledLinear:\n%s", diff)
	}
	ts, err := c.Timesteps(50)
	if err != nil {
		t.Fatal(err)
	}
	if ts[0] != 981 || ts[49] != 1 {
		t.Errorf("50 leading steps with offset 1 = %v..%v, want 981..1", ts[0], ts[49])
	}
}

func TestLoadConfigSD21(t *testing.T) {
	c, err := LoadConfig(filepath.Join("testdata", "sd21_scheduler_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c.PredictionType != PredictV || c.SetAlphaToOne || c.ClipSample || c.StepsOffset != 1 {
		t.Errorf("SD 2.1 config: %+v", c)
	}
}

func TestLoadConfigMissing(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "nope.json"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadConfig(missing) = %v, want an error wrapping os.ErrNotExist", err)
	}
}

func TestParseConfigValid(t *testing.T) {
	tests := []struct {
		name  string
		json  string
		check func(c *Config) bool
	}{
		{"empty object gives defaults", `{}`, func(c *Config) bool {
			d := DefaultConfig()
			return cmp.Equal(d, *c, cmpopts.IgnoreUnexported(Config{}))
		}},
		{"unknown and private keys ignored", `{"_class_name":"EulerDiscreteScheduler","use_karras_sigmas":true,"interpolation_type":"linear","timestep_type":"discrete","_x":{"y":[1,2]}}`,
			func(c *Config) bool { return c.NumTrainTimesteps == 1000 }},
		{"nulls keep defaults", `{"trained_betas":null,"variance_type":null,"beta_start":null}`,
			func(c *Config) bool {
				return c.TrainedBetas == nil && c.VarianceType == "fixed_small" && c.BetaStart == 0.0001
			}},
		{"integral float for an int", `{"num_train_timesteps":1000.0,"steps_offset":1e0}`,
			func(c *Config) bool { return c.NumTrainTimesteps == 1000 && c.StepsOffset == 1 }},
		{"beta range unused by the cosine schedule", `{"beta_schedule":"squaredcos_cap_v2","beta_start":0,"beta_end":0}`,
			func(c *Config) bool { return c.BetaStart == 0 }},
		{"trained betas set T", `{"trained_betas":[0.1,0.2,0.3]}`,
			func(c *Config) bool { return c.NumTrainTimesteps == 3 && len(c.TrainedBetas) == 3 }},
		{"every field", `{"num_train_timesteps":500,"beta_start":0.001,"beta_end":0.03,"beta_schedule":"squaredcos_cap_v2",
			"timestep_spacing":"trailing","steps_offset":2,"prediction_type":"sample","clip_sample":true,"clip_sample_range":1.5,
			"set_alpha_to_one":false,"thresholding":true,"dynamic_thresholding_ratio":0.9,"sample_max_value":2,
			"rescale_betas_zero_snr":true,"variance_type":"learned_range","skip_prk_steps":true}`,
			func(c *Config) bool {
				return c.NumTrainTimesteps == 500 && c.BetaStart == 0.001 && c.BetaEnd == 0.03 && c.BetaSchedule == BetaSquaredCos &&
					c.TimestepSpacing == Trailing && c.StepsOffset == 2 && c.PredictionType == PredictSample && c.ClipSample &&
					c.ClipSampleRange == 1.5 && !c.SetAlphaToOne && c.Thresholding && c.DynamicThresholdingRatio == 0.9 &&
					c.SampleMaxValue == 2 && c.RescaleBetasZeroSNR && c.VarianceType == "learned_range" && c.SkipPRKSteps
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
			if _, err := c.Schedule(); err != nil {
				t.Errorf("Schedule: %v", err)
			}
		})
	}
}

func TestParseConfigInvalid(t *testing.T) {
	tests := []struct {
		json  string
		field string // "" for a syntax error
	}{
		{`[]`, ""},
		{`{"num_train_timesteps":`, ""},
		{`"x"`, ""},
		{`{"num_train_timesteps":0}`, "num_train_timesteps"},
		{`{"num_train_timesteps":-5}`, "num_train_timesteps"},
		{`{"num_train_timesteps":10.5}`, "num_train_timesteps"},
		{`{"num_train_timesteps":"1000"}`, "num_train_timesteps"},
		{`{"num_train_timesteps":1e300}`, "num_train_timesteps"},
		{`{"beta_start":0}`, "beta_start"},
		{`{"beta_start":-0.1}`, "beta_start"},
		{`{"beta_start":1.5}`, "beta_start"},
		{`{"beta_start":1e39}`, "beta_start"},
		{`{"beta_start":1e-300}`, "beta_start"},
		{`{"beta_start":1e-9}`, "beta_start"},
		{`{"beta_end":"0.02"}`, "beta_end"},
		{`{"beta_end":2}`, "beta_end"},
		{`{"beta_schedule":"cosine"}`, "beta_schedule"},
		{`{"beta_schedule":7}`, "beta_schedule"},
		{`{"trained_betas":[0.1,"x"]}`, "trained_betas"},
		{`{"trained_betas":[0.1,0]}`, "trained_betas"},
		{`{"trained_betas":[1,0.5]}`, "trained_betas"},
		{`{"trained_betas":[]}`, "trained_betas"},
		{`{"trained_betas":{"a":1}}`, "trained_betas"},
		{`{"trained_betas":[0.1,0.2],"num_train_timesteps":3}`, "trained_betas"},
		{`{"timestep_spacing":"even"}`, "timestep_spacing"},
		{`{"steps_offset":-1}`, "steps_offset"},
		{`{"steps_offset":1000}`, "steps_offset"},
		{`{"prediction_type":"eps"}`, "prediction_type"},
		{`{"clip_sample":"yes"}`, "clip_sample"},
		{`{"clip_sample":1}`, "clip_sample"},
		{`{"clip_sample_range":0}`, "clip_sample_range"},
		{`{"set_alpha_to_one":"false"}`, "set_alpha_to_one"},
		{`{"thresholding":[]}`, "thresholding"},
		{`{"dynamic_thresholding_ratio":1.5}`, "dynamic_thresholding_ratio"},
		{`{"sample_max_value":-1}`, "sample_max_value"},
		{`{"rescale_betas_zero_snr":0}`, "rescale_betas_zero_snr"},
		{`{"variance_type":"fixed"}`, "variance_type"},
		{`{"skip_prk_steps":"true"}`, "skip_prk_steps"},
		{`{"_class_name":5}`, "_class_name"},
		{`{"solver_order":4}`, "solver_order"},
		{`{"solver_order":0}`, "solver_order"},
		{`{"algorithm_type":"unipc"}`, "algorithm_type"},
		{`{"solver_type":"rk4"}`, "solver_type"},
		{`{"lower_order_final":"no"}`, "lower_order_final"},
		{`{"euler_at_final":1}`, "euler_at_final"},
		{`{"predict_x0":null,"use_karras_sigmas":"true"}`, "use_karras_sigmas"},
		{`{"disable_corrector":[1.5]}`, "disable_corrector"},
		{`{"disable_corrector":3}`, "disable_corrector"},
		{`{"final_sigmas_type":"one"}`, "final_sigmas_type"},
		{`{"sigma_min":-1}`, "sigma_min"},
		{`{"sigma_min":0}`, "sigma_min"},
		{`{"sigma_max":0}`, "sigma_max"},
		{`{"sigma_max":"10"}`, "sigma_max"},
		{`{"lambda_min_clipped":NaN}`, "lambda_min_clipped"},
		{`{"lambda_min_clipped":"-5"}`, "lambda_min_clipped"},
		{`{"interpolation_type":"cubic"}`, "interpolation_type"},
		{`{"timestep_type":"fractional"}`, "timestep_type"},
		{`{"use_exponential_sigmas":"yes"}`, "use_exponential_sigmas"},
		{`{"flow_shift":Infinity}`, "flow_shift"},
	}
	for _, tt := range tests {
		t.Run(tt.json, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.json))
			if err == nil {
				// Some problems only show when the schedule is built.
				_, err = c.Schedule()
			}
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			var fe *FieldError
			if tt.field == "" {
				if errors.As(err, &fe) {
					t.Errorf("got field error %v, want a syntax error", err)
				}
				return
			}
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("error %q does not name field %q", err, tt.field)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q lacks the field name", err)
			}
		})
	}
}

func TestConfigValidateProgrammatic(t *testing.T) {
	c := DefaultConfig()
	c.TimestepSpacing = "bogus"
	var fe *FieldError
	if err := c.Validate(); !errors.As(err, &fe) || fe.Field != "timestep_spacing" {
		t.Errorf("Validate = %v", err)
	}
	if _, err := c.Schedule(); err == nil {
		t.Error("Schedule accepted an invalid config")
	}
	// A Config built in Go (no JSON) still gets diffusers' float64 bounds.
	c = DefaultConfig()
	c.BetaSchedule, c.BetaStart, c.BetaEnd = BetaScaledLinear, 0.00085, 0.012
	s, err := c.Schedule()
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(s.Betas(), ScaledLinear(1000, 0.00085, 0.012).Betas()) {
		t.Error("Config.Schedule and ScaledLinear differ")
	}
}

// TestParseConfigMultistepKeys reads the keys of the multistep and
// k-diffusion schedulers, the non-finite floats Python's json writes, and
// records which keys the file gives.
func TestParseConfigMultistepKeys(t *testing.T) {
	// As diffusers' save_config writes a DPMSolverMultistepScheduler.
	js := `{"_class_name": "DPMSolverMultistepScheduler", "_diffusers_version": "0.31.0",
		"algorithm_type": "sde-dpmsolver++", "beta_end": 0.012, "beta_schedule": "scaled_linear",
		"beta_start": 0.00085, "dynamic_thresholding_ratio": 0.995, "euler_at_final": true,
		"final_sigmas_type": "sigma_min", "lambda_min_clipped": -Infinity, "lower_order_final": false,
		"num_train_timesteps": 1000, "prediction_type": "epsilon", "rescale_betas_zero_snr": false,
		"sample_max_value": 1.0, "solver_order": 3, "solver_type": "heun", "steps_offset": 1,
		"thresholding": false, "timestep_spacing": "leading", "trained_betas": null,
		"use_karras_sigmas": true, "use_lu_lambdas": false, "variance_type": null,
		"sigma_min": 0.03, "sigma_max": null, "disable_corrector": [0, 2], "predict_x0": true,
		"flow_shift": 1.0, "use_flow_sigmas": false, "time_shift_type": "exponential",
		"note": "a string with Infinity and NaN inside"}`
	c, err := ParseConfig([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if c.ClassName != "DPMSolverMultistepScheduler" || c.AlgorithmType != "sde-dpmsolver++" || !c.EulerAtFinal ||
		c.FinalSigmasType != "sigma_min" || !math.IsInf(c.LambdaMinClipped, -1) || c.LowerOrderFinal ||
		c.SolverOrder != 3 || c.SolverType != "heun" || !c.UseKarrasSigmas || c.SigmaMin == nil || *c.SigmaMin != 0.03 ||
		c.SigmaMax != nil || len(c.DisableCorrector) != 2 || c.DisableCorrector[1] != 2 || c.Unsupported != nil {
		t.Errorf("parsed %+v", c)
	}
	for key, want := range map[string]bool{"solver_order": true, "lambda_min_clipped": true, "variance_type": false,
		"sigma_max": false, "timestep_spacing": true, "set_alpha_to_one": false, "_class_name": true} {
		if c.Given(key) != want {
			t.Errorf("Given(%q) = %v, want %v", key, !want, want)
		}
	}
	d := DefaultConfig()
	if !d.Given("timestep_spacing") || !d.Given("anything") {
		t.Error("a Config built in Go must count every key as given")
	}
	u, err := ParseConfig([]byte(`{"solver_p": {"_class_name": "DDIMScheduler"}, "shift_terminal": 0.02, "time_shift_type": "linear"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Unsupported) != 1 || u.Unsupported["solver_p"] == "" || u.ShiftTerminal != 0.02 || u.TimeShiftType != "linear" {
		t.Errorf("Unsupported = %v, shift_terminal %v, time_shift_type %q", u.Unsupported, u.ShiftTerminal, u.TimeShiftType)
	}
	v, err := ParseConfig([]byte(`{"lambda_min_clipped": Infinity, "solver_p": null, "shift_terminal": null}`))
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsInf(v.LambdaMinClipped, 1) || v.Unsupported != nil || v.ShiftTerminal != 0 {
		t.Errorf("parsed %+v", v)
	}
}

// TestPythonJSON checks the rewriting of Python's non-finite tokens
// against strings holding them and escaped quotes.
func TestPythonJSON(t *testing.T) {
	for in, want := range map[string]string{
		`{"a": -Infinity}`:                 `{"a": "-Infinity"}`,
		`{"a": [Infinity, NaN, 1]}`:        `{"a": ["Infinity", "NaN", 1]}`,
		`{"a": "Infinity", "b": "x\"NaN"}`: `{"a": "Infinity", "b": "x\"NaN"}`,
		`{"a": 1}`:                         `{"a": 1}`,
	} {
		if got := string(pythonJSON([]byte(in))); got != want {
			t.Errorf("pythonJSON(%s) = %s, want %s", in, got, want)
		}
	}
}
