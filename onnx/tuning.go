package onnx

import (
	"fmt"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// GraphOptimization is ONNX Runtime's graph optimisation level: how much
// it rewrites a graph (constant folding, node fusions, layout changes)
// when it creates a session.
type GraphOptimization int

const (
	// OptimizeAll applies every optimisation, layout changes included. It
	// is ONNX Runtime's default and what Open uses without
	// WithGraphOptimization.
	OptimizeAll GraphOptimization = iota
	// OptimizeExtended applies the basic optimisations and the fusions of
	// ONNX Runtime's own operators, without layout changes.
	OptimizeExtended
	// OptimizeBasic applies the semantics-preserving rewrites only
	// (constant folding, redundant node removal).
	OptimizeBasic
	// OptimizeNone runs the graph as written.
	OptimizeNone
)

// String returns "all", "extended", "basic" or "none".
func (g GraphOptimization) String() string {
	switch g {
	case OptimizeAll:
		return "all"
	case OptimizeExtended:
		return "extended"
	case OptimizeBasic:
		return "basic"
	case OptimizeNone:
		return "none"
	}
	return fmt.Sprintf("GraphOptimization(%d)", int(g))
}

func (g GraphOptimization) ort() ort.GraphOptimizationLevel {
	switch g {
	case OptimizeExtended:
		return ort.GraphOptimizationLevelEnableExtended
	case OptimizeBasic:
		return ort.GraphOptimizationLevelEnableBasic
	case OptimizeNone:
		return ort.GraphOptimizationLevelDisableAll
	}
	return ort.GraphOptimizationLevelEnableAll
}

// tuning holds the session options that change how, not what, a session
// computes.
type tuning struct {
	profile   string // profile file prefix; "" for none
	optimized string // where to save the optimised graph; "" for nowhere
	level     GraphOptimization
	config    [][2]string // session configuration entries, in order
}

// WithProfiling makes ONNX Runtime record every operator of every Run
// call (its session profiler) and write the trace, in Chrome's trace-event
// JSON format, to a file named prefix_DATE_TIME.json (ProfileFiles lists
// them). The runtime creates the file with the session and completes it
// when the Model or Graph is closed. The trace lists, per node, its operator type, the
// execution provider and the duration of each call, and the duration of
// each whole Run call (examples/ortprof summarises it). Profiling adds a
// little time to every call; use it to see where time goes, not to time.
// prefix must not be empty.
func WithProfiling(prefix string) Option {
	return func(c *config) {
		if prefix == "" {
			c.errs = append(c.errs, fmt.Errorf("onnx: WithProfiling: empty file prefix"))
			return
		}
		c.tune.profile = prefix
	}
}

// WithGraphOptimization sets how far ONNX Runtime optimises the graph when
// the session is created. The default is OptimizeAll.
func WithGraphOptimization(level GraphOptimization) Option {
	return func(c *config) {
		if level < OptimizeAll || level > OptimizeNone {
			c.errs = append(c.errs, fmt.Errorf("onnx: WithGraphOptimization: unknown level %d", int(level)))
			return
		}
		c.tune.level = level
	}
}

// WithOptimizedModelPath makes ONNX Runtime save the graph it runs, after
// its graph optimisations, to path (an ONNX file) when the session is
// created. Opening that file later with WithGraphOptimization(OptimizeNone)
// skips the optimisation work at load time. A graph optimised at
// OptimizeAll may contain operators of ONNX Runtime's CPU provider only
// (such as its NCHWc convolutions): save it at OptimizeExtended for a file
// that other providers and machines can run.
func WithOptimizedModelPath(path string) Option {
	return func(c *config) {
		if path == "" {
			c.errs = append(c.errs, fmt.Errorf("onnx: WithOptimizedModelPath: empty path"))
			return
		}
		c.tune.optimized = path
	}
}

// WithSpinning sets whether ONNX Runtime's intra-op worker threads spin
// (busy-wait) for work between operators instead of sleeping. Spinning is
// its default and saves the wake-up latency between the many small
// operators of a diffusion model's graph; turning it off gives the cores
// back at once when other work shares the machine (two models running
// concurrently, or other processes), at some cost in latency per
// operator. It sets the session configuration entry
// "session.intra_op.allow_spinning".
func WithSpinning(spin bool) Option {
	v := "0"
	if spin {
		v = "1"
	}
	return WithSessionConfig(spinningKey, v)
}

// spinningKey is the session configuration entry WithSpinning sets.
const spinningKey = "session.intra_op.allow_spinning"

// sets reports whether a session configuration entry for key was given.
func (t *tuning) sets(key string) bool {
	for _, kv := range t.config {
		if kv[0] == key {
			return true
		}
	}
	return false
}

// WithSessionConfig adds an ONNX Runtime session configuration entry
// (the keys of onnxruntime_session_options_config_keys.h, such as
// "session.intra_op.allow_spinning" or "session.set_denormal_as_zero").
// Later entries for the same key replace earlier ones. The runtime
// ignores unknown keys and accepts some values it does not understand
// without an error: check a setting's effect, for example with
// WithProfiling. An empty key is an error.
func WithSessionConfig(key, value string) Option {
	return func(c *config) {
		if strings.TrimSpace(key) == "" {
			c.errs = append(c.errs, fmt.Errorf("onnx: WithSessionConfig: empty key"))
			return
		}
		c.tune.config = append(c.tune.config, [2]string{key, value})
	}
}

// apply sets the tuning on session options.
func (t *tuning) apply(so *ort.SessionOptions) error {
	if t.level != OptimizeAll {
		if err := so.SetGraphOptimizationLevel(t.level.ort()); err != nil {
			return fmt.Errorf("onnx: setting graph optimization level %s: %w", t.level, err)
		}
	}
	if t.optimized != "" {
		if err := so.SetOptimizedModelFilePath(t.optimized); err != nil {
			return fmt.Errorf("onnx: setting optimized model path: %w", err)
		}
	}
	if t.profile != "" {
		if err := so.EnableProfiling(t.profile); err != nil {
			return fmt.Errorf("onnx: enabling profiling: %w", err)
		}
	}
	for _, kv := range t.config {
		if err := so.AddSessionConfigEntry(kv[0], kv[1]); err != nil {
			return fmt.Errorf("onnx: session config %s=%s: %w", kv[0], kv[1], err)
		}
	}
	return nil
}
