package sampler

import (
	"fmt"
	"math"

	"github.com/ugo-diffusion/ugo/schedule"
)

// fieldError returns the *schedule.FieldError that refuses a configuration
// key.
func fieldError(key, format string, args ...any) error {
	return &schedule.FieldError{Field: key, Reason: fmt.Sprintf(format, args...)}
}

// spacingFor returns cfg's timestep spacing, or def (the class's default)
// when cfg does not give timestep_spacing.
func spacingFor(cfg *schedule.Config, def schedule.Spacing) schedule.Spacing {
	if !cfg.Given("timestep_spacing") {
		return def
	}
	return cfg.TimestepSpacing
}

// refuseUnsupported returns a *schedule.FieldError for the first of the
// options of cfg that class reads and this package does not implement:
// exponential, beta, Lu or flow sigmas, dynamic shifting, a terminal shift
// and a non-exponential time shift where the class has them (keys lists
// which it has), and the keys of cfg.Unsupported that class reads.
func refuseUnsupported(cfg *schedule.Config, class string, keys ...string) error {
	for _, k := range keys {
		var on bool
		switch k {
		case "use_exponential_sigmas":
			on = cfg.UseExponentialSigmas
		case "use_beta_sigmas":
			on = cfg.UseBetaSigmas
		case "use_lu_lambdas":
			on = cfg.UseLuLambdas
		case "use_flow_sigmas":
			on = cfg.UseFlowSigmas
		case "use_dynamic_shifting":
			on = cfg.UseDynamicShifting
		case "shift_terminal":
			if cfg.ShiftTerminal != 0 {
				return fieldError(k, "%v is not supported by this module's %s", cfg.ShiftTerminal, class)
			}
			continue
		case "time_shift_type":
			if cfg.TimeShiftType != "" && cfg.TimeShiftType != "exponential" {
				return fieldError(k, "%q is not supported by this module's %s", cfg.TimeShiftType, class)
			}
			continue
		default:
			if v, ok := cfg.Unsupported[k]; ok {
				return fieldError(k, "%s is not supported by this module's %s", v, class)
			}
			continue
		}
		if on {
			return fieldError(k, "true is not supported by this module's %s", class)
		}
	}
	return nil
}

// refuseSigmoid refuses the sigmoid beta schedule, which only
// DDPMScheduler implements in diffusers (the other classes raise
// NotImplementedError), when cfg uses it.
func refuseSigmoid(cfg *schedule.Config, class string) error {
	if cfg.TrainedBetas == nil && cfg.BetaSchedule == schedule.BetaSigmoid {
		return fieldError("beta_schedule", `"sigmoid" is implemented by DDPMScheduler only, not by %s`, class)
	}
	return nil
}

// refuseLearnedVariance refuses the variance types that need a model
// predicting its variance too (twice the channels).
func refuseLearnedVariance(cfg *schedule.Config, class string) error {
	if cfg.Given("variance_type") && (cfg.VarianceType == "learned" || cfg.VarianceType == "learned_range") {
		return fieldError("variance_type", "%q needs a model that predicts its variance; not supported by %s", cfg.VarianceType, class)
	}
	return nil
}

// finalSigmasFor converts final_sigmas_type.
func finalSigmasFor(cfg *schedule.Config) FinalSigmas {
	if cfg.FinalSigmasType == "" {
		return FinalZero
	}
	return FinalSigmas(cfg.FinalSigmasType)
}

// optSigma converts sigma_min or sigma_max: 0 for nil (the schedule's own).
func optSigma(v *float64) float64 {
	if v == nil {
		return 0
	}
	return *v
}

// lambdaClip is the lambda_min_clipped of a config, -Inf when not given.
// A configured 0 becomes the negative number closest to 0, which clips
// the same float32 lambdas, since the field's 0 means no clipping.
func lambdaClip(cfg *schedule.Config) float64 {
	if !cfg.Given("lambda_min_clipped") {
		return math.Inf(-1)
	}
	if cfg.LambdaMinClipped == 0 {
		return -math.SmallestNonzeroFloat64
	}
	return cfg.LambdaMinClipped
}
