package schedule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
)

// Beta schedule names accepted in Config.BetaSchedule, as in diffusers.
const (
	BetaLinear       = "linear"
	BetaScaledLinear = "scaled_linear"
	BetaSquaredCos   = "squaredcos_cap_v2"
	BetaSigmoid      = "sigmoid"
)

// PredictionType says what a model's output is, with diffusers' names: the
// noise (PredictEpsilon), the velocity v = sqrt(abar) eps - sqrt(1-abar) x0
// (PredictV), the clean sample x0 (PredictSample), or the rectified-flow
// velocity v = eps - x0 of x_s = (1-s) x0 + s eps (PredictFlow: SD3,
// FLUX). Samplers and guidance read the empty PredictionType as
// PredictEpsilon.
type PredictionType string

// The prediction types of diffusers.
const (
	PredictEpsilon PredictionType = "epsilon"
	PredictV       PredictionType = "v_prediction"
	PredictSample  PredictionType = "sample"
	// PredictFlow is the velocity of a rectified-flow model, diffusers'
	// "flow_prediction". Its samples are x_s = (1-s) x0 + s eps with s in
	// [0, 1], and the model is called at the timestep s *
	// num_train_timesteps; package sampler's FlowMatchEuler samples it.
	PredictFlow PredictionType = "flow_prediction"
)

// VarianceType is DDPM's posterior variance, with diffusers' names.
// Package sampler's DDPM describes the fixed ones and reads the empty
// VarianceType as FixedSmall; the learned ones need a model with twice the
// channels and are parsed but not sampled.
type VarianceType string

// The variance types of diffusers' DDPMScheduler.
const (
	FixedSmall    VarianceType = "fixed_small"
	FixedSmallLog VarianceType = "fixed_small_log"
	FixedLarge    VarianceType = "fixed_large"
	FixedLargeLog VarianceType = "fixed_large_log"
	Learned       VarianceType = "learned"
	LearnedRange  VarianceType = "learned_range"
)

// Config holds the keys of a diffusers scheduler_config.json that the
// schedulers package sampler reproduces understand (DDPMScheduler,
// DDIMScheduler, PNDMScheduler, EulerDiscreteScheduler,
// EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler,
// UniPCMultistepScheduler, FlowMatchEulerDiscreteScheduler). Field comments give the JSON key. The zero
// Config is not useful; start from DefaultConfig or ParseConfig.
type Config struct {
	NumTrainTimesteps int            // num_train_timesteps: T, in [1, MaxTrainTimesteps]
	BetaStart         float32        // beta_start, in (0, 1]
	BetaEnd           float32        // beta_end, in (0, 1]
	BetaSchedule      string         // beta_schedule: linear, scaled_linear, squaredcos_cap_v2 or sigmoid
	TrainedBetas      []float32      // trained_betas: when non-nil, used instead of BetaSchedule
	TimestepSpacing   Spacing        // timestep_spacing: leading, trailing or linspace
	StepsOffset       int            // steps_offset: added to Leading timesteps
	PredictionType    PredictionType // prediction_type: epsilon, v_prediction, sample or flow_prediction
	ClipSample        bool           // clip_sample: clip the predicted x0 to ±ClipSampleRange
	ClipSampleRange   float32        // clip_sample_range, > 0
	// SetAlphaToOne (set_alpha_to_one) makes DDIM's final step use
	// abar_prev = 1 rather than abar_0.
	SetAlphaToOne            bool
	Thresholding             bool    // thresholding: dynamic thresholding of x0 (Imagen)
	DynamicThresholdingRatio float32 // dynamic_thresholding_ratio, in (0, 1]
	SampleMaxValue           float32 // sample_max_value, > 0
	RescaleBetasZeroSNR      bool    // rescale_betas_zero_snr: apply RescaleZeroTerminalSNR
	// VarianceType (variance_type) is DDPM's posterior variance: fixed_small,
	// fixed_small_log, fixed_large, fixed_large_log, learned or
	// learned_range.
	VarianceType VarianceType
	SkipPRKSteps bool // skip_prk_steps (PNDM)

	// ClassName (_class_name) names the diffusers scheduler class the
	// file configures, such as "PNDMScheduler"; sampler.FromConfig builds
	// the sampler it names. Empty when absent.
	ClassName string

	// The keys below belong to the multistep and k-diffusion-style
	// schedulers (DPMSolverMultistepScheduler, UniPCMultistepScheduler,
	// EulerDiscreteScheduler). Their defaults are those of diffusers;
	// where a key's default differs between classes (solver_type), the
	// zero value stands for the class's own default.

	SolverOrder     int    // solver_order: 1, 2 or 3 (0 = the class default, 2)
	AlgorithmType   string // algorithm_type: dpmsolver++ (default), sde-dpmsolver++, dpmsolver, sde-dpmsolver, deis (DEIS)
	SolverType      string // solver_type: midpoint, heun (DPM-Solver); bh1, bh2 (UniPC); "" = the class default
	LowerOrderFinal bool   // lower_order_final (default true)
	EulerAtFinal    bool   // euler_at_final
	PredictX0       bool   // predict_x0 (UniPC, default true)
	// DisableCorrector (disable_corrector, UniPC) lists the step indices
	// whose corrector is skipped.
	DisableCorrector []int
	UseKarrasSigmas  bool   // use_karras_sigmas
	FinalSigmasType  string // final_sigmas_type: zero (default) or sigma_min
	// SigmaMin and SigmaMax (sigma_min, sigma_max; Euler, UniPC) bound
	// Karras sigmas; nil (JSON null, the default) means the schedule's
	// own smallest and largest sigma.
	SigmaMin, SigmaMax *float64
	// LambdaMinClipped (lambda_min_clipped, DPM-Solver) clips the log-SNR
	// half lambda = log(alpha_t/sigma_t) of the timesteps from below;
	// -Inf, the default, clips nothing.
	LambdaMinClipped  float64
	InterpolationType string // interpolation_type (Euler): linear (default) or log_linear
	TimestepType      string // timestep_type (Euler): discrete (default) or continuous

	// Options of diffusers that no sampler of this module implements.
	// They are parsed so that a sampler can refuse a configuration that
	// turns them on rather than silently ignore them.
	UseExponentialSigmas bool    // use_exponential_sigmas
	UseBetaSigmas        bool    // use_beta_sigmas
	UseLuLambdas         bool    // use_lu_lambdas
	UseFlowSigmas        bool    // use_flow_sigmas
	FlowShift            float64 // flow_shift (default 1), used with use_flow_sigmas
	UseDynamicShifting   bool    // use_dynamic_shifting

	// The keys below belong to FlowMatchEulerDiscreteScheduler (SD3,
	// FLUX); see package sampler's FlowMatchEuler. use_dynamic_shifting,
	// use_karras_sigmas, use_exponential_sigmas and use_beta_sigmas are
	// above. ShiftTerminal and TimeShiftType are read by
	// DPMSolverMultistepScheduler and UniPCMultistepScheduler too, which
	// this module refuses with them set.

	Shift           float64 // shift: the static time shift (default 1, none)
	BaseShift       float64 // base_shift: mu at BaseImageSeqLen (default 0.5)
	MaxShift        float64 // max_shift: mu at MaxImageSeqLen (default 1.15)
	BaseImageSeqLen int     // base_image_seq_len (default 256)
	MaxImageSeqLen  int     // max_image_seq_len (default 4096)
	// TimeShiftType (time_shift_type) is the form of the dynamic shift:
	// exponential (default) or linear.
	TimeShiftType string
	// ShiftTerminal (shift_terminal) stretches the shifted sigmas so that
	// the last one is this value; 0 (JSON null, the default) leaves them.
	ShiftTerminal      float64
	InvertSigmas       bool // invert_sigmas (Mochi)
	StochasticSampling bool // stochastic_sampling
	// Unsupported holds the keys with a non-default value that this
	// module recognises but does not implement and that have no field
	// above, such as solver_p or shift_terminal, with their raw JSON
	// value; the samplers whose diffusers class reads the key refuse
	// them.
	Unsupported map[string]string

	// given records the keys ParseConfig read (nil for a Config built in
	// Go): see Given.
	given map[string]bool

	// The float64 values of beta_start and beta_end as read from JSON:
	// diffusers takes square roots and differences of them in float64.
	// Used only while they still round to BetaStart and BetaEnd.
	betaStart64, betaEnd64 float64
}

// DefaultConfig returns the defaults of diffusers' DDPMScheduler and
// DDIMScheduler: 1000 steps, linear betas from 1e-4 to 0.02, leading
// spacing, offset 0, epsilon prediction, clip_sample on with range 1,
// set_alpha_to_one on (DDIM), no thresholding (ratio 0.995, max 1), no
// zero-SNR rescaling, fixed_small variance (DDPM); and the defaults of the
// multistep schedulers' keys (lower_order_final and predict_x0 on,
// final_sigmas_type zero, lambda_min_clipped -Inf, linear interpolation,
// discrete timesteps, flow_shift 1); and those of
// FlowMatchEulerDiscreteScheduler (shift 1, base_shift 0.5, max_shift
// 1.15, sequence lengths 256 and 4096, exponential time shift, no
// shift_terminal). Like every Config built in Go, it
// counts all its keys as given (see Given).
func DefaultConfig() Config {
	return Config{
		NumTrainTimesteps:        1000,
		BetaStart:                0.0001,
		BetaEnd:                  0.02,
		BetaSchedule:             BetaLinear,
		TimestepSpacing:          Leading,
		PredictionType:           PredictEpsilon,
		ClipSample:               true,
		ClipSampleRange:          1,
		SetAlphaToOne:            true,
		DynamicThresholdingRatio: 0.995,
		SampleMaxValue:           1,
		VarianceType:             FixedSmall,
		LowerOrderFinal:          true,
		PredictX0:                true,
		FinalSigmasType:          "zero",
		LambdaMinClipped:         math.Inf(-1),
		InterpolationType:        "linear",
		TimestepType:             "discrete",
		FlowShift:                1,
		Shift:                    1,
		BaseShift:                0.5,
		MaxShift:                 1.15,
		BaseImageSeqLen:          256,
		MaxImageSeqLen:           4096,
		TimeShiftType:            "exponential",
		betaStart64:              0.0001,
		betaEnd64:                0.02,
	}
}

// FieldError reports an invalid value in a scheduler configuration.
type FieldError struct {
	Field  string // the JSON key, such as "beta_schedule"
	Reason string
}

// Error implements error.
func (e *FieldError) Error() string {
	return fmt.Sprintf("schedule: config field %q: %s", e.Field, e.Reason)
}

// LoadConfig reads and parses a scheduler_config.json file; see ParseConfig.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return c, nil
}

// ParseConfig parses a diffusers scheduler_config.json. It starts from
// DefaultConfig and overlays the keys present, recording them (Given).
// _class_name sets ClassName; other keys starting with "_"
// (_diffusers_version) and keys that no scheduler of this module's
// diffusers classes reads are ignored, as diffusers' from_config ignores
// the keys a class does not take; a null value keeps the default. Python's
// json module writes -Infinity, Infinity and NaN for non-finite floats (a
// saved DPMSolverMultistepScheduler has "lambda_min_clipped": -Infinity);
// they are read as such. Invalid values, such as a string where a number
// belongs, a beta outside (0, 1], an unknown beta_schedule or a
// trained_betas list whose length differs from num_train_timesteps, are
// rejected with a *FieldError naming the key. When trained_betas is given
// without num_train_timesteps, T is its length.
//
// Whether a key's value is supported is the sampler's decision, since
// diffusers' classes read different keys: sampler.FromConfig refuses, with
// a *FieldError naming the key, a value that the class named by
// _class_name reads and this module does not implement.
func ParseConfig(data []byte) (*Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(pythonJSON(data), &raw); err != nil {
		return nil, fmt.Errorf("schedule: config is not a JSON object: %w", err)
	}
	c := DefaultConfig()
	p := parser{raw: raw}
	p.str("_class_name", &c.ClassName)
	p.int("num_train_timesteps", &c.NumTrainTimesteps, 1, MaxTrainTimesteps)
	p.float("beta_start", &c.BetaStart, &c.betaStart64)
	p.float("beta_end", &c.BetaEnd, &c.betaEnd64)
	p.enum("beta_schedule", &c.BetaSchedule, BetaLinear, BetaScaledLinear, BetaSquaredCos, BetaSigmoid)
	p.betas("trained_betas", &c.TrainedBetas)
	var sp string
	if p.enum("timestep_spacing", &sp, string(Leading), string(Trailing), string(Linspace)) {
		c.TimestepSpacing = Spacing(sp)
	}
	p.int("steps_offset", &c.StepsOffset, 0, MaxTrainTimesteps)
	enum(&p, "prediction_type", &c.PredictionType, PredictEpsilon, PredictV, PredictSample, PredictFlow)
	p.bool("clip_sample", &c.ClipSample)
	p.float("clip_sample_range", &c.ClipSampleRange, nil)
	p.bool("set_alpha_to_one", &c.SetAlphaToOne)
	p.bool("thresholding", &c.Thresholding)
	p.float("dynamic_thresholding_ratio", &c.DynamicThresholdingRatio, nil)
	p.float("sample_max_value", &c.SampleMaxValue, nil)
	p.bool("rescale_betas_zero_snr", &c.RescaleBetasZeroSNR)
	enum(&p, "variance_type", &c.VarianceType, FixedSmall, FixedSmallLog, FixedLarge, FixedLargeLog, Learned, LearnedRange)
	p.bool("skip_prk_steps", &c.SkipPRKSteps)

	p.int("solver_order", &c.SolverOrder, 1, 3)
	p.enum("algorithm_type", &c.AlgorithmType, "dpmsolver++", "sde-dpmsolver++", "dpmsolver", "sde-dpmsolver", "deis")
	p.enum("solver_type", &c.SolverType, "midpoint", "heun", "bh1", "bh2", "logrho")
	p.bool("lower_order_final", &c.LowerOrderFinal)
	p.bool("euler_at_final", &c.EulerAtFinal)
	p.bool("predict_x0", &c.PredictX0)
	p.ints("disable_corrector", &c.DisableCorrector)
	p.bool("use_karras_sigmas", &c.UseKarrasSigmas)
	p.enum("final_sigmas_type", &c.FinalSigmasType, "zero", "sigma_min")
	p.optFloat("sigma_min", &c.SigmaMin)
	p.optFloat("sigma_max", &c.SigmaMax)
	p.float64("lambda_min_clipped", &c.LambdaMinClipped)
	p.enum("interpolation_type", &c.InterpolationType, "linear", "log_linear")
	p.enum("timestep_type", &c.TimestepType, "discrete", "continuous")
	p.bool("use_exponential_sigmas", &c.UseExponentialSigmas)
	p.bool("use_beta_sigmas", &c.UseBetaSigmas)
	p.bool("use_lu_lambdas", &c.UseLuLambdas)
	p.bool("use_flow_sigmas", &c.UseFlowSigmas)
	p.float64("flow_shift", &c.FlowShift)
	p.bool("use_dynamic_shifting", &c.UseDynamicShifting)
	p.float64("shift", &c.Shift)
	p.float64("base_shift", &c.BaseShift)
	p.float64("max_shift", &c.MaxShift)
	p.int("base_image_seq_len", &c.BaseImageSeqLen, 0, math.MaxInt32)
	p.int("max_image_seq_len", &c.MaxImageSeqLen, 0, math.MaxInt32)
	p.enum("time_shift_type", &c.TimeShiftType, "exponential", "linear")
	p.float64("shift_terminal", &c.ShiftTerminal)
	p.bool("invert_sigmas", &c.InvertSigmas)
	p.bool("stochastic_sampling", &c.StochasticSampling)
	// Keys without a field: recorded in Unsupported when not at their
	// default.
	for key, def := range unsupportedDefaults {
		if v := p.value(key); v != nil && string(bytes.TrimSpace(v)) != def {
			if c.Unsupported == nil {
				c.Unsupported = map[string]string{}
			}
			c.Unsupported[key] = abbrev(v)
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	c.given = map[string]bool{}
	for key := range raw {
		if p.present(key) {
			c.given[key] = true
		}
	}
	if c.TrainedBetas != nil && !p.present("num_train_timesteps") {
		c.NumTrainTimesteps = len(c.TrainedBetas)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// unsupportedDefaults holds the keys of the supported diffusers classes
// that no field of Config represents, with their default JSON value.
var unsupportedDefaults = map[string]string{
	"solver_p": "null", // UniPC: a second scheduler as predictor
}

// Given reports whether the configuration gives key a value. For a
// Config from ParseConfig, the keys present (not null) in the JSON are
// given, and the others keep the defaults of DefaultConfig only as
// placeholders: a sampler built from it applies its own diffusers class's
// defaults to them, as diffusers' from_config does (it drops the keys
// that took defaults when the file was loaded). A Config built in Go
// counts every key as given.
//
// A field changed after ParseConfig keeps the given status of its key:
// set it to the value intended for every sampler, or parse a modified
// JSON.
func (c *Config) Given(key string) bool {
	if c.given == nil {
		return true
	}
	return c.given[key]
}

// Validate checks every field of c and returns a *FieldError for the first
// invalid one. beta_start and beta_end are only checked when they are used
// (not with trained_betas or squaredcos_cap_v2).
func (c *Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	unitInterval := func(v float32) bool { return v > 0 && v <= 1 }
	positive := func(v float32) bool { return v > 0 && !math.IsInf(float64(v), 1) }
	switch {
	case c.NumTrainTimesteps < 1 || c.NumTrainTimesteps > MaxTrainTimesteps:
		return bad("num_train_timesteps", "%d is outside [1, %d]", c.NumTrainTimesteps, MaxTrainTimesteps)
	case c.usesBetaRange() && !unitInterval(c.BetaStart):
		return bad("beta_start", "%v is outside (0, 1]", c.BetaStart)
	case c.usesBetaRange() && !unitInterval(c.BetaEnd):
		return bad("beta_end", "%v is outside (0, 1]", c.BetaEnd)
	case !oneOf(c.BetaSchedule, BetaLinear, BetaScaledLinear, BetaSquaredCos, BetaSigmoid):
		return bad("beta_schedule", "unknown schedule %q", c.BetaSchedule)
	case c.TrainedBetas != nil && len(c.TrainedBetas) != c.NumTrainTimesteps:
		return bad("trained_betas", "has %d values, num_train_timesteps is %d", len(c.TrainedBetas), c.NumTrainTimesteps)
	case !c.TimestepSpacing.Valid():
		return bad("timestep_spacing", "unknown spacing %q", string(c.TimestepSpacing))
	case c.StepsOffset < 0 || c.StepsOffset >= c.NumTrainTimesteps:
		return bad("steps_offset", "%d is outside [0, num_train_timesteps)", c.StepsOffset)
	case !oneOf(c.PredictionType, PredictEpsilon, PredictV, PredictSample, PredictFlow):
		return bad("prediction_type", "unknown prediction type %q", c.PredictionType)
	case !positive(c.ClipSampleRange):
		return bad("clip_sample_range", "%v is not a positive finite number", c.ClipSampleRange)
	case !unitInterval(c.DynamicThresholdingRatio):
		return bad("dynamic_thresholding_ratio", "%v is outside (0, 1]", c.DynamicThresholdingRatio)
	case !positive(c.SampleMaxValue):
		return bad("sample_max_value", "%v is not a positive finite number", c.SampleMaxValue)
	case !oneOf(c.VarianceType, FixedSmall, FixedSmallLog, FixedLarge, FixedLargeLog, Learned, LearnedRange):
		return bad("variance_type", "unknown variance type %q", c.VarianceType)
	case c.SolverOrder < 0 || c.SolverOrder > 3:
		return bad("solver_order", "%d is outside [1, 3]", c.SolverOrder)
	case !oneOf(c.AlgorithmType, "", "dpmsolver++", "sde-dpmsolver++", "dpmsolver", "sde-dpmsolver", "deis"):
		return bad("algorithm_type", "unknown algorithm %q", c.AlgorithmType)
	case !oneOf(c.SolverType, "", "midpoint", "heun", "bh1", "bh2", "logrho"):
		return bad("solver_type", "unknown solver type %q", c.SolverType)
	case !oneOf(c.FinalSigmasType, "", "zero", "sigma_min"):
		return bad("final_sigmas_type", "unknown final sigmas type %q", c.FinalSigmasType)
	case c.SigmaMin != nil && !(*c.SigmaMin > 0 && *c.SigmaMin <= math.MaxFloat32):
		return bad("sigma_min", "%v is not a positive finite number", *c.SigmaMin)
	case c.SigmaMax != nil && !(*c.SigmaMax > 0 && *c.SigmaMax <= math.MaxFloat32):
		return bad("sigma_max", "%v is not a positive finite number", *c.SigmaMax)
	case math.IsNaN(c.LambdaMinClipped):
		return bad("lambda_min_clipped", "NaN")
	case !oneOf(c.InterpolationType, "", "linear", "log_linear"):
		return bad("interpolation_type", "unknown interpolation %q", c.InterpolationType)
	case !oneOf(c.TimestepType, "", "discrete", "continuous"):
		return bad("timestep_type", "unknown timestep type %q", c.TimestepType)
	case math.IsNaN(c.FlowShift) || math.IsInf(c.FlowShift, 0):
		return bad("flow_shift", "%v is not a finite number", c.FlowShift)
	case !(c.Shift > 0 && c.Shift <= math.MaxFloat32):
		return bad("shift", "%v is not a positive finite number", c.Shift)
	case !(math.Abs(c.BaseShift) <= math.MaxFloat32):
		return bad("base_shift", "%v is not a finite number", c.BaseShift)
	case !(math.Abs(c.MaxShift) <= math.MaxFloat32):
		return bad("max_shift", "%v is not a finite number", c.MaxShift)
	case c.BaseImageSeqLen < 0 || c.MaxImageSeqLen < 0:
		return bad("base_image_seq_len", "negative sequence lengths %d, %d", c.BaseImageSeqLen, c.MaxImageSeqLen)
	case !oneOf(c.TimeShiftType, "", "exponential", "linear"):
		return bad("time_shift_type", "unknown time shift %q", c.TimeShiftType)
	case !(c.ShiftTerminal >= 0 && c.ShiftTerminal < 1):
		return bad("shift_terminal", "%v is outside [0, 1) (0 = none)", c.ShiftTerminal)
	}
	for i, b := range c.TrainedBetas {
		if !unitInterval(b) {
			return bad("trained_betas", "value %d = %v is outside (0, 1]", i, b)
		}
	}
	return nil
}

// usesBetaRange reports whether BetaStart and BetaEnd matter.
func (c *Config) usesBetaRange() bool {
	return c.TrainedBetas == nil && c.BetaSchedule != BetaSquaredCos
}

func oneOf[T ~string](s T, allowed ...T) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}

// Schedule builds the noise schedule the configuration describes:
// TrainedBetas if set, else BetaSchedule with BetaStart, BetaEnd and
// NumTrainTimesteps, then RescaleZeroTerminalSNR if RescaleBetasZeroSNR.
//
// A Schedule is immutable, so the schedules of the last few configurations
// without TrainedBetas are remembered and returned again: a pipeline that
// builds a sampler per request (about 40 microseconds of float32-exact
// arithmetic for 1000 steps) builds the schedule once.
func (c *Config) Schedule() (*Schedule, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	start, end := decimal64(c.BetaStart), decimal64(c.BetaEnd)
	if float32(c.betaStart64) == c.BetaStart {
		start = c.betaStart64
	}
	if float32(c.betaEnd64) == c.BetaEnd {
		end = c.betaEnd64
	}
	var key scheduleKey
	if c.TrainedBetas == nil {
		key = scheduleKey{c.BetaSchedule, c.NumTrainTimesteps, c.BetaStart, c.BetaEnd, start, end, c.RescaleBetasZeroSNR}
		if s := built.get(key); s != nil {
			return s, nil
		}
	}
	s, err := c.build(start, end)
	if err == nil && c.TrainedBetas == nil {
		built.put(key, s)
	}
	return s, err
}

// build is Schedule without the memory of recent schedules.
func (c *Config) build(start, end float64) (*Schedule, error) {
	T := c.NumTrainTimesteps
	var (
		s   *Schedule
		err error
	)
	switch {
	case c.TrainedBetas != nil:
		s, err = FromBetas(c.TrainedBetas)
	case c.BetaSchedule == BetaLinear:
		s, err = build(linspace32(c.BetaStart, c.BetaEnd, T))
	case c.BetaSchedule == BetaScaledLinear:
		s, err = build(scaledBetas(T, start, end))
	case c.BetaSchedule == BetaSquaredCos:
		s, err = build(squaredCosBetas(T))
	case c.BetaSchedule == BetaSigmoid:
		s, err = build(sigmoidBetas(T, start, end))
	}
	if err != nil {
		field := "beta_start"
		if c.TrainedBetas != nil {
			field = "trained_betas"
		}
		return nil, &FieldError{Field: field, Reason: err.Error()}
	}
	if c.RescaleBetasZeroSNR {
		s = s.RescaleZeroTerminalSNR()
	}
	return s, nil
}

// scheduleKey is what a Schedule built from a Config without TrainedBetas
// depends on: the kind, T, the float32 bounds and the float64 ones the
// betas are computed from, and the zero-terminal-SNR rescale.
type scheduleKey struct {
	kind        string
	T           int
	start32     float32
	end32       float32
	start, end  float64
	rescaleZero bool
}

// recentSchedules remembers the schedules of the last len(entries)
// distinct keys, the most recently used first.
type recentSchedules struct {
	mu      sync.Mutex
	entries [8]struct {
		key scheduleKey
		s   *Schedule
	}
	n int
}

var built recentSchedules

func (r *recentSchedules) get(k scheduleKey) *Schedule {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.n {
		if r.entries[i].key == k {
			e := r.entries[i]
			copy(r.entries[1:i+1], r.entries[:i])
			r.entries[0] = e
			return e.s
		}
	}
	return nil
}

func (r *recentSchedules) put(k scheduleKey, s *Schedule) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n = min(r.n+1, len(r.entries))
	copy(r.entries[1:r.n], r.entries[:r.n-1])
	r.entries[0].key, r.entries[0].s = k, s
}

// parser decodes known keys one by one, remembering the first error.
type parser struct {
	raw map[string]json.RawMessage
	err error
}

// value returns the raw value of key, or nil when it is absent or null or
// an earlier key failed.
func (p *parser) value(key string) json.RawMessage {
	if p.err != nil {
		return nil
	}
	v, ok := p.raw[key]
	if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return nil
	}
	return v
}

func (p *parser) present(key string) bool {
	v, ok := p.raw[key]
	return ok && !bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

func (p *parser) fail(key, format string, args ...any) {
	p.err = &FieldError{Field: key, Reason: fmt.Sprintf(format, args...)}
}

// number decodes a JSON number as float64.
func (p *parser) number(key string, v json.RawMessage) (float64, bool) {
	var f float64
	if err := json.Unmarshal(v, &f); err != nil {
		p.fail(key, "want a finite number, got %s", abbrev(v))
		return 0, false
	}
	return f, true
}

func (p *parser) int(key string, dst *int, lo, hi int) {
	v := p.value(key)
	if v == nil {
		return
	}
	f, ok := p.number(key, v)
	if !ok {
		return
	}
	if f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		p.fail(key, "want an integer in [%d, %d], got %s", lo, hi, abbrev(v))
		return
	}
	*dst = int(f)
}

func (p *parser) float(key string, dst *float32, dst64 *float64) {
	v := p.value(key)
	if v == nil {
		return
	}
	f, ok := p.number(key, v)
	if !ok {
		return
	}
	if math.Abs(f) > math.MaxFloat32 {
		p.fail(key, "%s overflows float32", abbrev(v))
		return
	}
	*dst = float32(f)
	if dst64 != nil {
		*dst64 = f
	}
}

func (p *parser) bool(key string, dst *bool) {
	v := p.value(key)
	if v == nil {
		return
	}
	if err := json.Unmarshal(v, dst); err != nil {
		p.fail(key, "want true or false, got %s", abbrev(v))
	}
}

// enum is parser.enum for a string type T.
func enum[T ~string](p *parser, key string, dst *T, allowed ...T) bool {
	s := string(*dst)
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	if !p.enum(key, &s, names...) {
		return false
	}
	*dst = T(s)
	return true
}

// enum decodes a string among allowed and reports whether it set dst.
func (p *parser) enum(key string, dst *string, allowed ...string) bool {
	v := p.value(key)
	if v == nil {
		return false
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		p.fail(key, "want a string, got %s", abbrev(v))
		return false
	}
	if !oneOf(s, allowed...) {
		p.fail(key, "%q is not one of %s", s, strings.Join(allowed, ", "))
		return false
	}
	*dst = s
	return true
}

func (p *parser) str(key string, dst *string) {
	v := p.value(key)
	if v == nil {
		return
	}
	if err := json.Unmarshal(v, dst); err != nil {
		p.fail(key, "want a string, got %s", abbrev(v))
	}
}

// float64 decodes a number, or one of Python's -Infinity, Infinity.
func (p *parser) float64(key string, dst *float64) {
	v := p.value(key)
	if v == nil {
		return
	}
	switch string(bytes.TrimSpace(v)) {
	case `"` + pyNegInf + `"`:
		*dst = math.Inf(-1)
		return
	case `"` + pyInf + `"`:
		*dst = math.Inf(1)
		return
	}
	if f, ok := p.number(key, v); ok {
		*dst = f
	}
}

// optFloat decodes a number into a new float64; null leaves dst nil.
func (p *parser) optFloat(key string, dst **float64) {
	v := p.value(key)
	if v == nil {
		return
	}
	if f, ok := p.number(key, v); ok {
		*dst = &f
	}
}

func (p *parser) ints(key string, dst *[]int) {
	v := p.value(key)
	if v == nil {
		return
	}
	var xs []json.RawMessage
	if err := json.Unmarshal(v, &xs); err != nil {
		p.fail(key, "want a list of integers, got %s", abbrev(v))
		return
	}
	out := make([]int, len(xs))
	for i, x := range xs {
		f, ok := p.number(key, x)
		if !ok {
			return
		}
		if f != math.Trunc(f) || math.Abs(f) > MaxTrainTimesteps {
			p.fail(key, "value %d = %s is not an integer in [-%d, %d]", i, abbrev(x), MaxTrainTimesteps, MaxTrainTimesteps)
			return
		}
		out[i] = int(f)
	}
	*dst = out
}

func (p *parser) betas(key string, dst *[]float32) {
	v := p.value(key)
	if v == nil {
		return
	}
	var xs []json.RawMessage
	if err := json.Unmarshal(v, &xs); err != nil {
		p.fail(key, "want a list of numbers, got %s", abbrev(v))
		return
	}
	if len(xs) == 0 || len(xs) > MaxTrainTimesteps {
		p.fail(key, "has %d values, want 1..%d", len(xs), MaxTrainTimesteps)
		return
	}
	out := make([]float32, len(xs))
	for i, x := range xs {
		f, ok := p.number(key, x)
		if !ok {
			return
		}
		out[i] = float32(f)
		if !(out[i] > 0 && out[i] <= 1) {
			p.fail(key, "value %d = %s is outside (0, 1]", i, abbrev(x))
			return
		}
	}
	*dst = out
}

// Python's json module writes these tokens for non-finite floats;
// pythonJSON turns them into these strings.
const (
	pyNegInf = "-Infinity"
	pyInf    = "Infinity"
	pyNaN    = "NaN"
)

// pythonJSON returns data with the bare tokens -Infinity, Infinity and NaN
// outside strings replaced by JSON strings, so that encoding/json accepts
// what Python's json.dump writes. Other data is returned unchanged.
func pythonJSON(data []byte) []byte {
	if !bytes.Contains(data, []byte(pyInf)) && !bytes.Contains(data, []byte(pyNaN)) {
		return data
	}
	out := make([]byte, 0, len(data)+16)
	inString := false
	for i := 0; i < len(data); i++ {
		ch := data[i]
		if inString {
			out = append(out, ch)
			switch ch {
			case '\\':
				if i+1 < len(data) {
					i++
					out = append(out, data[i])
				}
			case '"':
				inString = false
			}
			continue
		}
		if ch == '"' {
			inString = true
			out = append(out, ch)
			continue
		}
		replaced := false
		for _, tok := range []string{pyNegInf, pyInf, pyNaN} {
			if bytes.HasPrefix(data[i:], []byte(tok)) {
				out = append(out, '"')
				out = append(out, tok...)
				out = append(out, '"')
				i += len(tok) - 1
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, ch)
		}
	}
	return out
}

// abbrev shortens a raw JSON value for an error message.
func abbrev(v json.RawMessage) string {
	s := string(bytes.TrimSpace(v))
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}

// Timesteps returns the n inference timesteps the configuration selects:
// Timesteps(c.NumTrainTimesteps, n, c.TimestepSpacing, c.StepsOffset).
func (c *Config) Timesteps(n int) ([]int, error) {
	return Timesteps(c.NumTrainTimesteps, n, c.TimestepSpacing, c.StepsOffset)
}
