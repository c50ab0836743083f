package sampler

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/noise"
)

// Options configures Sample.
type Options struct {
	// Steps is the number of inference steps n of the full run; the
	// solver's trajectory is Solver.Trajectory(Steps). Required. The trajectory has one
	// model call per step, except for solvers whose diffusers class calls
	// the model more often (PNDM: n+1 calls, or 12 + (n-3) with its
	// Runge-Kutta steps); StartStep, ProgressInfo and
	// StepError count model calls, Strength counts steps.
	Steps int
	// Noise supplies the standard normal noise of stochastic steps and of
	// Strength. Each such use is one Normal call over the whole batch, in
	// this order: the Strength noise first, then one call per step that
	// needs noise (Trajectory.Noisy), in step order. That is the order of
	// diffusers' pipelines, so a torch-compatible source seeded as the
	// torch.Generator reproduces their runs. Required when some step needs
	// noise or Strength > 0.
	Noise noise.Source
	// Progress, if not nil, is called after every completed step. A
	// non-nil error stops the run; Sample returns it in a *StepError.
	Progress func(ProgressInfo) error
	// StartStep resumes a run: x holds the sample after StartStep steps
	// of the full Steps-step run (as saved from ProgressInfo.Sample after
	// step StartStep-1), and sampling continues from step StartStep. No
	// noise is added and x is not scaled. For a stochastic solver, the
	// result equals the uninterrupted run's when Noise continues the same
	// stream (in another process: save the source's state with its
	// MarshalBinary in the Progress callback and restore it with
	// UnmarshalBinary); for a multistep solver, when PrevX0 is given too.
	StartStep int
	// PrevX0 completes a resume for multistep solvers (Trajectory.Multistep,
	// such as the second-order DPMSolverMultistep): the ProgressInfo.X0 of
	// step StartStep-1, saved with the sample. Without it the resumed run
	// restarts the solver's history with a first-order step, as after an
	// img2img start, and differs slightly from the uninterrupted run.
	// Other solvers ignore it; it requires StartStep > 0.
	PrevX0 *tensor.Dense
	// Strength, in (0, 1], turns Sample into img2img/SDEdit: x holds a
	// clean sample, which is noised to the level of step Steps -
	// int(Steps*Strength) with one draw from Noise (Solver.AddNoiseAt), and
	// only the remaining int(Steps*Strength) steps run (diffusers' img2img
	// convention). 0 means an ordinary run from noise. A resumed img2img
	// run sets StartStep and leaves Strength 0.
	Strength float64
	// Hook, if not nil, edits the predicted clean sample of every step
	// and the sample between steps; see Hook for exactly when.
	Hook Hook
}

// ProgressInfo describes a completed step. Its tensors are views of buffers
// that Sample keeps using: copy what must outlive the callback, and do not
// modify them.
type ProgressInfo struct {
	// Step is the index of the completed step in the full run, 0-based;
	// Steps is the length of the full run (the trajectory's model calls).
	Step, Steps int
	// Timestep is the training timestep the step started from, rounded
	// to the nearest integer where the model was called at a fractional
	// one; ModelTimestep is the exact timestep the model saw.
	Timestep      int
	ModelTimestep float32
	// Sample is x after the step: the input of step Step+1, which is what
	// a checkpoint saves (resume with StartStep = Step+1).
	Sample *tensor.Dense
	// X0 is the step's prediction of the clean sample, after clipping or
	// thresholding. A checkpoint of a multistep solver saves it too
	// (Options.PrevX0).
	X0 *tensor.Dense
}

// StepError reports a run that stopped before its end: a model error, a
// non-finite model output, cancellation of the context, a Progress error.
// x then holds a consistent sample, never a half-updated one: the input of
// step Resume, so that Options.StartStep = Resume continues the run.
type StepError struct {
	// Step is the index of the step being processed when the run stopped
	// and Timestep its training timestep (rounded, as in ProgressInfo).
	Step, Timestep int
	// Resume is the StartStep that continues the run from x.
	Resume int
	// Err is the cause; errors.Is(err, context.Canceled) and
	// errors.Is(err, ErrNonFinite) see through a StepError.
	Err error
}

// Error implements error.
func (e *StepError) Error() string {
	return fmt.Sprintf("sampler: step %d (timestep %d): %v", e.Step, e.Timestep, e.Err)
}

// Unwrap returns the cause.
func (e *StepError) Unwrap() error { return e.Err }

// Sample runs the sampling loop: it calls model once per step with the
// whole batch at one shared timestep (t passed as a 1-element slice) and
// advances x with the solver, in place. x is float32 N,C,H,W or
// N,C,F,H,W; on entry it holds standard normal initial noise (fill it with
// noise.FillTensor from the same Source as Options.Noise to reproduce a
// diffusers run), which Sample first multiplies by the trajectory's
// InitNoiseSigma (1 except for the Euler samplers); or a clean sample
// (Options.Strength); or a saved state (Options.StartStep). On success it
// holds the final sample.
//
// Sample allocates its buffers once per call and nothing per step. It
// returns promptly when ctx is cancelled, with an error wrapping ctx.Err().
// Any error after the run has started is a *StepError; see there for what x
// holds then.
func Sample(ctx context.Context, model ugo.Denoiser, s Solver, x *tensor.Dense, opts Options) error {
	r, err := newRun(model, s, x, opts)
	if err != nil {
		return err
	}
	if err := r.allocate(); err != nil {
		return err
	}
	return r.loop(ctx)
}

// run is one call of Sample: its validated arguments, its trajectory and,
// once allocated, its buffers.
type run struct {
	model ugo.Denoiser
	s     Solver
	x     *tensor.Dense
	opts  Options
	shape []int
	p     *Trajectory
	// n is the number of model calls, start the first step run.
	n, start  int
	needNoise bool

	xs, eps, next, scratch, z, xin []float32
	size, batch                    int
	epsT, in                       *tensor.Dense
	x0                             [2][]float32
	x0T                            [2]*tensor.Dense
	state                          [][]float32

	// The hook's context and step, read by x0Hook, which is built once
	// per run.
	hookCtx  context.Context
	hookStep HookStep
	x0Hook   func([]float32) error
}

// newRun validates the arguments of Sample and computes the trajectory.
func newRun(model ugo.Denoiser, s Solver, x *tensor.Dense, opts Options) (*run, error) {
	if err := ugo.CheckDenoiser("model", model); err != nil {
		return nil, fmt.Errorf("sampler: Sample needs a model and a solver: %w", err)
	}
	if ugo.IsNil(s) {
		return nil, errors.New("sampler: Sample needs a model and a solver, got a nil solver")
	}
	shape, err := ugo.CheckSample("x", x)
	if err != nil {
		return nil, err
	}
	if opts.Steps <= 0 {
		return nil, fmt.Errorf("sampler: %d steps, want at least 1", opts.Steps)
	}
	if !(opts.Strength >= 0 && opts.Strength <= 1) {
		return nil, fmt.Errorf("sampler: strength %v, want a number in [0, 1]", opts.Strength)
	}
	if opts.StartStep > 0 && opts.Strength > 0 {
		return nil, errors.New("sampler: set StartStep or Strength, not both: a resumed img2img run needs only StartStep")
	}
	if opts.PrevX0 != nil {
		if opts.StartStep == 0 {
			return nil, errors.New("sampler: Options.PrevX0 resumes a run and needs StartStep > 0")
		}
		ps, err := ugo.CheckSample("PrevX0", opts.PrevX0)
		if err != nil {
			return nil, err
		}
		if !slices.Equal([]int(tensor.Shape(ps)), []int(shape)) {
			return nil, &ugo.ShapeError{What: "PrevX0", Got: ps, Want: fmt.Sprintf("the shape of x %v", shape)}
		}
	}
	p, err := s.Trajectory(opts.Steps)
	if err != nil {
		return nil, err
	}
	// The trajectory has a model call per step, or more (PNDM's n+1).
	n := opts.Steps
	if p != nil {
		n = max(n, p.Len())
	}
	if err := p.check(n); err != nil {
		return nil, err
	}
	if opts.StartStep < 0 || opts.StartStep > n {
		return nil, fmt.Errorf("sampler: start step %d, want 0..%d", opts.StartStep, n)
	}
	start := opts.StartStep
	if opts.Strength > 0 {
		kept := int(float64(opts.Steps) * opts.Strength)
		if kept == 0 {
			return nil, fmt.Errorf("sampler: strength %v of %d steps leaves no step to run", opts.Strength, opts.Steps)
		}
		start = opts.Steps - kept
	}
	needNoise := opts.Strength > 0
	for _, noisy := range p.Noisy[start:] {
		needNoise = needNoise || noisy
	}
	if needNoise && ugo.IsNil(opts.Noise) {
		return nil, errors.New("sampler: the run draws noise but Options.Noise is nil")
	}

	return &run{model: model, s: s, x: x, opts: opts, shape: shape, p: p, n: n, start: start, needNoise: needNoise}, nil
}

// allocate checks the entry values and allocates the buffers of the run,
// once per call.
func (r *run) allocate() error {
	shape, p, x, opts, needNoise := r.shape, r.p, r.x, r.opts, r.needNoise
	xs := x.Float32s()
	size, batch := len(xs), shape[0]
	if err := ugo.CheckFinite("sampler: x on entry", xs); err != nil {
		return err
	}
	if opts.PrevX0 != nil {
		if err := ugo.CheckFinite("sampler: Options.PrevX0", opts.PrevX0.Float32s()); err != nil {
			return err
		}
	}
	// eps, next, x0 (one or two), the noise and the normalised input.
	copies := 3
	if p.Multistep {
		copies++
	}
	if needNoise {
		copies++
	}
	if p.InputNorm != nil {
		copies++
	}
	if need := ugo.TensorBytes(copies, shape...); need > ugo.MemoryLimit() {
		return ugo.CheckMemory(fmt.Sprintf("sampler: the buffers of a %v sample", shape), need)
	}
	eps := make([]float32, size)
	// next receives each step's result, which replaces x only once it is
	// known to be finite: an error leaves x at the last good state.
	next := make([]float32, size)
	scratch := make([]float32, size/batch)
	var z []float32
	if needNoise {
		z = make([]float32, size)
	}
	newT := func(data []float32) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
	}
	epsT := newT(eps)
	// x0 holds the clean-sample predictions: two buffers that alternate
	// for a multistep solver, whose step reads the previous one.
	x0 := [2][]float32{make([]float32, size)}
	x0T := [2]*tensor.Dense{newT(x0[0])}
	if p.Multistep {
		x0[1] = make([]float32, size)
		x0T[1] = newT(x0[1])
	}
	var state [][]float32
	for range p.State {
		state = append(state, make([]float32, size))
	}
	// in is what the model sees: x itself, or x / InputNorm[i].
	in := x
	var xin []float32
	if p.InputNorm != nil {
		xin = make([]float32, size)
		in = newT(xin)
	}

	r.xs, r.size, r.batch = xs, size, batch
	r.eps, r.next, r.scratch, r.z, r.xin = eps, next, scratch, z, xin
	r.epsT, r.in, r.x0, r.x0T, r.state = epsT, in, x0, x0T, state
	if opts.Hook != nil {
		r.hookStep = HookStep{Steps: r.n, Trajectory: p, Solver: r.s, Shape: r.shape}
		r.x0Hook = func(x0 []float32) error {
			if err := opts.Hook.X0(r.hookCtx, r.hookStep, x0); err != nil {
				return &HookError{Method: "X0", Step: r.hookStep.Step, Err: err}
			}
			return nil
		}
	}
	return nil
}

// sampleHook runs the Sample hook on buf for the step that it enters and
// checks what the hook leaves.
func (r *run) sampleHook(ctx context.Context, step int, buf []float32) error {
	r.hookStep.Step = step
	if err := r.opts.Hook.Sample(ctx, r.hookStep, buf); err != nil {
		return &HookError{Method: "Sample", Step: step, Err: err}
	}
	return ugo.CheckFinite("sampler: sample after the hook", buf)
}

// loop prepares the sample (noised for Strength, scaled by InitNoiseSigma
// from noise) and runs the steps.
func (r *run) loop(ctx context.Context) error {
	model, s, x, opts, shape, p, n, start := r.model, r.s, r.x, r.opts, r.shape, r.p, r.n, r.start
	xs, eps, next, scratch, z, xin := r.xs, r.eps, r.next, r.scratch, r.z, r.xin
	size, batch, epsT, in, x0, x0T, state := r.size, r.batch, r.epsT, r.in, r.x0, r.x0T, r.state
	tbuf := []float32{0}
	cur, hasPrev := 0, false
	if p.Multistep && opts.PrevX0 != nil {
		copy(x0[1], opts.PrevX0.Float32s())
		hasPrev = true
	}
	switch {
	case opts.Strength > 0:
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sampler: %w", err)
		}
		opts.Noise.Normal(z)
		if err := s.AddNoiseAt(next, xs, z, p, start); err != nil {
			return err
		}
		if err := ugo.CheckFinite("sampler: noised sample (Strength)", next); err != nil {
			return err
		}
		copy(xs, next)
	case start == 0:
		if sigma := p.initSigma(); sigma != 1 {
			for j, v := range xs {
				next[j] = v * sigma
			}
			if ugo.FirstNonFinite(next) >= 0 {
				return ugo.CheckFinite(fmt.Sprintf("sampler: initial noise times InitNoiseSigma %v", sigma), next)
			}
			copy(xs, next)
		}
	}
	hook := opts.Hook != nil
	if hook {
		r.hookCtx = ctx
		defer func() { r.hookCtx = nil }()
	}
	for i := start; i < n; i++ {
		t := p.Timesteps[i]
		ti := roundTimestep(t)
		fail := func(err error) error { return &StepError{Step: i, Timestep: ti, Resume: i, Err: err} }
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if hook {
			// The sample entering step i, edited on a copy so that an
			// error leaves x as it was.
			copy(next, xs)
			if err := r.sampleHook(ctx, i, next); err != nil {
				return fail(err)
			}
			copy(xs, next)
			r.hookStep.Step = i
		}
		if xin != nil {
			c := p.InputNorm[i]
			for j, v := range xs {
				xin[j] = v / c
			}
		}
		tbuf[0] = t
		if err := model.PredictNoise(ctx, epsT, in, tbuf); err != nil {
			return fail(err)
		}
		if !slices.Equal([]int(epsT.Shape()), []int(shape)) || epsT.DataSize() != size {
			return fail(&ugo.ShapeError{What: "model output", Got: epsT.Shape().Clone(), Want: fmt.Sprintf("the shape of x %v", shape)})
		}
		if err := ugo.CheckFinite("model output", eps); err != nil {
			return fail(err)
		}
		prev := -1
		if i+1 < n {
			prev = roundTimestep(p.Timesteps[i+1])
		}
		stepIn := StepInput{
			Timestep:    ti,
			Prev:        prev,
			ModelOutput: eps,
			Sample:      xs,
			X0:          x0[cur],
			Batch:       batch,
			Scratch:     scratch,
			State:       state,
			StateSteps:  i - start,
			X0Hook:      r.x0Hook,
		}
		if hasPrev {
			stepIn.PrevX0 = x0[1-cur]
		}
		if p.Noisy[i] {
			opts.Noise.Normal(z)
			stepIn.Noise = z
		}
		if err := s.StepAt(next, p, i, stepIn); err != nil {
			return fail(err)
		}
		if err := ugo.CheckFinite("solver step result", next); err != nil {
			// A configuration the solver cannot divide by (such as zero
			// terminal SNR with epsilon prediction) or an overflow; x is
			// still the input of this step.
			return fail(err)
		}
		if hook && i == n-1 {
			if err := r.sampleHook(ctx, n, next); err != nil {
				return fail(err)
			}
		}
		copy(xs, next)
		x0Done := x0T[cur]
		if p.Multistep {
			cur, hasPrev = 1-cur, true
		}
		if opts.Progress != nil {
			info := ProgressInfo{Step: i, Steps: n, Timestep: ti, ModelTimestep: t, Sample: x, X0: x0Done}
			if err := opts.Progress(info); err != nil {
				return &StepError{Step: i, Timestep: ti, Resume: i + 1, Err: fmt.Errorf("progress: %w", err)}
			}
		}
	}
	return nil
}
