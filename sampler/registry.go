package sampler

import (
	"fmt"
	"strings"

	"github.com/ugo-diffusion/ugo/schedule"
)

// Kind names one sampling algorithm of this package: the short name that
// command lines and pipeline requests use, and the diffusers scheduler
// class (the _class_name of scheduler_config.json) that it reproduces.
type Kind struct {
	Name  string // short name, such as "dpm++2m"
	Class string // diffusers class name, such as "DPMSolverMultistepScheduler"
}

// Kinds is the name table of the samplers that New and FromConfig build,
// in the order command lines list them.
var Kinds = []Kind{
	{"ddim", "DDIMScheduler"},
	{"ddpm", "DDPMScheduler"},
	{"pndm", "PNDMScheduler"},
	{"euler", "EulerDiscreteScheduler"},
	{"euler_a", "EulerAncestralDiscreteScheduler"},
	{"dpm++2m", "DPMSolverMultistepScheduler"},
	{"unipc", "UniPCMultistepScheduler"},
	{"flow_euler", "FlowMatchEulerDiscreteScheduler"},
}

// Names returns the short names of Kinds, in order.
func Names() []string {
	out := make([]string, len(Kinds))
	for i, k := range Kinds {
		out[i] = k.Name
	}
	return out
}

// UnknownSamplerError reports a sampler name or diffusers class that
// Kinds does not list.
type UnknownSamplerError struct {
	Name string // the name or class asked for
}

// Error implements error; the message lists the supported names and
// classes.
func (e *UnknownSamplerError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sampler: unknown sampler %q; supported: ", e.Name)
	for i, k := range Kinds {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s)", k.Name, k.Class)
	}
	return b.String()
}

// Lookup returns the Kind whose short name or diffusers class is name.
func Lookup(name string) (Kind, error) {
	for _, k := range Kinds {
		if name == k.Name || name == k.Class {
			return k, nil
		}
	}
	return Kind{}, &UnknownSamplerError{Name: name}
}

// New returns the sampler that name (a short name or a diffusers class
// name, see Kinds) designates, configured from cfg as diffusers'
// SchedulerClass.from_config(config) would be: the class's own defaults
// apply to every key that cfg does not give (schedule.Config.Given), so
// that a Stable Diffusion PNDM configuration without timestep_spacing runs
// an Euler sampler with Euler's linspace default, as in diffusers.
func New(name string, cfg schedule.Config) (Solver, error) {
	k, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	if cfg.PredictionType == schedule.PredictFlow && k.Class != "FlowMatchEulerDiscreteScheduler" {
		return nil, fieldError("prediction_type", "%q is a rectified-flow velocity, which %s does not sample: use FlowMatchEulerDiscreteScheduler (flow_euler)", cfg.PredictionType, k.Class)
	}
	switch k.Class {
	case "DDIMScheduler":
		return NewDDIM(cfg)
	case "DDPMScheduler":
		return NewDDPM(cfg)
	case "PNDMScheduler":
		return NewPNDM(cfg)
	case "UniPCMultistepScheduler":
		return NewUniPC(cfg)
	case "EulerDiscreteScheduler":
		return NewEuler(cfg)
	case "EulerAncestralDiscreteScheduler":
		return NewEulerAncestral(cfg)
	case "DPMSolverMultistepScheduler":
		return NewDPMSolverMultistep(cfg)
	case "FlowMatchEulerDiscreteScheduler":
		return NewFlowMatchEuler(cfg)
	}
	panic("sampler: Kinds lists " + k.Class + " without a constructor")
}

// FromConfig returns the sampler that cfg's _class_name names
// (cfg.ClassName), configured from cfg; see New. A configuration without
// _class_name is an error, as is a class that Kinds does not list.
func FromConfig(cfg schedule.Config) (Solver, error) {
	if cfg.ClassName == "" {
		return nil, &schedule.FieldError{Field: "_class_name", Reason: "missing: the configuration does not name its scheduler class"}
	}
	return New(cfg.ClassName, cfg)
}
