package sampler

import (
	"context"
	"fmt"
)

// Hook edits the sample of a run between its steps (Options.Hook), for
// methods that change the sample itself rather than the model's
// prediction: a constraint on the predicted clean sample (such as the
// block-wise clamp of package guidance), a blend with a reference sample
// (DemoFusion's skip residual in package upscale). Sample calls it at
// every step of every Solver, and allocates nothing for it.
//
// X0 is called once per model call, from inside Solver.StepAt, with the
// call's prediction of the clean sample for the whole batch, as the solver
// computes it from the model output and before the solver uses it: before
// the solver's own clip_sample or dynamic thresholding, which then apply
// to what X0 leaves. X0 may edit x0 in place; the step then takes its
// update from the edited x0 wherever the solver's formula reads x0:
//
//   - DDIM: x0 in sqrt(abar_prev) x0; the direction term keeps the
//     model's noise unless UseClippedModelOutput re-derives it from x0.
//   - DDPM, Euler, EulerAncestral: the whole update.
//   - DPMSolverMultistep, UniPC (multistep): the whole update, and the
//     edited (then thresholded) x0 is what the history keeps: the next
//     steps read it through StepInput.PrevX0 or the solver's State, so an
//     edit at step i also enters steps i+1 and i+2 of higher orders.
//   - PNDM (multistep on noise predictions): X0 sees the clean sample
//     implied by the call's combined noise prediction; where X0 changes
//     it, the step uses the noise that the edited x0 implies. The history
//     keeps the model's raw outputs, as diffusers does.
//   - FlowMatchEuler: x0 = x - s v; where X0 changes it the step uses the
//     velocity the edited x0 implies.
//
// Elements that X0 leaves unchanged step exactly as without a hook, bit for
// bit.
//
// Sample is called with the sample x that enters each step i of the run,
// before the model sees it (after the Strength noising or the initial
// noise scaling for the first step), and once more with the final sample
// (At.Step = Trajectory.Len()). So every step's result passes through it.
// It may edit x in place. A Progress callback after step i sees the result
// of step i before Sample edits it as the input of step i+1, so that a run
// resumed with StartStep = i+1 applies the edit once.
//
// A Hook error stops the run with a *StepError wrapping a *HookError; x is
// left as it was before the hook's call. A non-finite value left by a hook
// stops the run with ErrNonFinite. A Hook used by concurrent runs must be
// safe for concurrent use; both methods must not retain their slices.
type Hook interface {
	X0(ctx context.Context, at HookStep, x0 []float32) error
	Sample(ctx context.Context, at HookStep, x []float32) error
}

// HookStep locates a Hook call within its run. Its slices and the
// Trajectory are the run's own: read them, do not modify or retain them.
type HookStep struct {
	// Step is the index of the step: for Hook.X0 the step whose model
	// output the x0 comes from, for Hook.Sample the step that x enters
	// (Trajectory.Len() for the final sample). Steps is Trajectory.Len().
	Step, Steps int
	// Trajectory is the run's schedule: Timesteps[Step] is the timestep
	// of the step (the model's, for X0; the next call's, for Sample), and
	// Sigmas[Step], where the solver fills Sigmas, its noise level.
	Trajectory *Trajectory
	// Solver drives the run: Solver.AddNoiseAt(dst, x0, noise,
	// Trajectory, Step) gives the sample that enters Step for a clean
	// sample x0, in the solver's own parametrisation of x.
	Solver Solver
	// Shape is the shape of the sample, N,C,H,W or N,C,F,H,W.
	Shape []int
}

// Timestep returns the model timestep of the step, or -1 for the final
// sample.
func (h HookStep) Timestep() float32 {
	if h.Trajectory == nil || h.Step < 0 || h.Step >= h.Trajectory.Len() {
		return -1
	}
	return h.Trajectory.Timesteps[h.Step]
}

// HookError reports an error returned by a Hook; a *StepError wraps it.
type HookError struct {
	// Method is "X0" or "Sample", Step the HookStep.Step of the call.
	Method string
	Step   int
	Err    error
}

// Error implements error.
func (e *HookError) Error() string {
	return fmt.Sprintf("sampler: hook %s at step %d: %v", e.Method, e.Step, e.Err)
}

// Unwrap returns the hook's error.
func (e *HookError) Unwrap() error { return e.Err }

// callX0 runs the X0 hook of a step, when there is one, on the raw x0
// predictions in x0.
func (in *StepInput) callX0(x0 []float32) error {
	if in.X0Hook == nil {
		return nil
	}
	return in.X0Hook(x0)
}

// hookBuffer returns in.X0, or a new buffer when a hook or thresholding
// needs one and the caller gave none.
func (in *StepInput) hookBuffer(need bool) []float32 {
	if in.X0 == nil && need {
		return make([]float32, len(in.Sample))
	}
	return in.X0
}
