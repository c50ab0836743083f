// Package sampler turns a noise-predicting model into samples: the DDIM
// and DDPM samplers of diffusers, the fast samplers that users run for
// 20-30 steps (DPM-Solver++(2M), Euler, Euler ancestral), and the loop that
// drives any ugo.Denoiser with them.
//
// # Solvers and schedulers
//
// A Solver is what Sample drives. It splits a run in two, like diffusers'
// set_timesteps + step: Plan(n) computes the per-run Plan (the timesteps at
// which the model is called, the noise levels sigma the sample passes
// through, whether the model input is scaled, the initial noise level and
// which steps draw noise), and StepAt(dst, plan, i, in) advances the sample
// by step i, writing into a caller buffer (dst-first, like gonum's floats).
// Every solver is a plain struct with exported fields that mirror diffusers'
// scheduler_config.json keys, with constructors that fill them from a
// schedule.Config:
//
//   - DDIM and DDPM (NewDDIM, NewDDPM) reproduce diffusers' DDIMScheduler
//     and DDPMScheduler, quirks included (the previous timestep is t - T/n
//     whatever the spacing; DDIM's final step lands on abar = 1 or abar_0
//     per SetAlphaToOne). They also implement Scheduler, the lower-level
//     integer-timestep interface; FromScheduler makes a Solver of any other
//     Scheduler.
//   - DPMSolverMultistep (NewDPMSolverMultistep) is diffusers'
//     DPMSolverMultistepScheduler with solver order 1 or 2: DPM-Solver++ or
//     its SDE variant, midpoint or Heun rule, Karras sigmas, final sigma
//     zero or sigma_min, lower_order_final, euler_at_final, thresholding.
//   - Euler and EulerAncestral (NewEuler, NewEulerAncestral) are diffusers'
//     EulerDiscreteScheduler and EulerAncestralDiscreteScheduler, that is
//     k-diffusion's samplers over a sigma list derived from the training
//     schedule, with Karras sigmas and Euler's churn.
//
// All of them match, in float32, the full-loop results that diffusers'
// scheduler tests publish, and whole pipeline-style runs of a torch
// reference (testdata/ksamplers_torch.json) to within an ulp or so.
//
// A solver keeps no per-run state, so one value may drive concurrent runs:
// the plan belongs to the run, and the one piece of history a multistep
// solver needs, the previous step's prediction of the clean sample, travels
// in the caller's buffers (StepInput.PrevX0), which Sample double-buffers.
//
// # Timesteps and sigmas
//
// DDIM, DDPM and DPMSolverMultistep work on the variance-preserving sample
// x_t = sqrt(abar) x0 + sqrt(1-abar) eps, which the model sees as it is.
// The Euler samplers work on k-diffusion's x0 + sigma eps, sigma =
// sqrt((1-abar)/abar): the model sees it divided by Plan.InputNorm[i] =
// sqrt(sigma^2+1), that is as x_t again, and a run from noise starts at
// Plan.InitNoiseSigma. Their timesteps are fractional wherever sigma falls
// between training steps (diffusers' linspace spacing; Karras sigmas, whose
// timesteps interpolate log sigma between training steps); ugo.Denoiser
// takes float32 timesteps, and ProgressInfo reports both the exact and the
// rounded timestep.
//
// Upsample Guidance modifies only the noise prediction, so it works with
// every solver unchanged: wrap the model (guidance.Upsample) and pass the
// wrapped Denoiser to Sample. It sees x_t and the (possibly fractional)
// timestep, whatever the solver.
//
// # The loop
//
// Sample runs a whole trajectory in place on an N,C,H,W (or N,C,F,H,W)
// float32 tensor: one model call per step with the batch sharing the
// timestep. It allocates its buffers once per call and nothing per step.
// Options select the number of steps, the noise source, a progress
// callback that sees each step's predicted clean sample, resumption from a
// checkpoint (StartStep, plus PrevX0 for multistep solvers) and
// img2img/SDEdit starting points (Strength):
//
//	x, _ := noise.NewTensor(src, 1, 4, 64, 64) // standard normal initial noise
//	err := sampler.Sample(ctx, model, dpm, x, sampler.Options{Steps: 25, Noise: src})
//
// # Noise
//
// Randomness comes from a noise.Source in a fixed order that matches
// diffusers' pipelines: the initial noise (drawn by the caller; Sample
// scales it by InitNoiseSigma), or the img2img noise when Strength > 0,
// then one Normal call over the whole batch for every step that needs
// noise (every DDPM step but the last, every DDIM step when Eta > 0, every
// EulerAncestral and SDE DPM-Solver step, Euler steps with churn). A
// noise.TorchCPU seeded like torch.manual_seed thus reproduces a diffusers
// CPU run.
//
// # Errors
//
// Bad configurations, shapes and options are errors, never panics. The typed
// errors and sentinels:
//
//   - *ugo.ShapeError: x, PrevX0 or a model output of the wrong shape, rank
//     or element type, or a lazily transposed view;
//   - ugo.ErrNilDenoiser: a nil model, including a typed nil such as the
//     *onnx.Model of a failed Open;
//   - *ugo.MemoryError (ugo.ErrTooLarge): the run's buffers would exceed
//     ugo.MemoryLimit; nothing is allocated or changed;
//   - ErrNonFinite (which is ugo.ErrNonFinite): a NaN or infinity in x or
//     PrevX0 on entry, in a model output, or in a step's result (a
//     configuration that divides by zero, such as zero terminal SNR with
//     epsilon prediction, or a float32 overflow);
//   - *StepError: any failure once the run has started, naming the step
//     and timestep and wrapping the cause: a model error, ErrNonFinite,
//     cancellation (wrapping ctx.Err()), or an error from the progress
//     callback.
//
// After a *StepError the tensor holds the finite, consistent state from
// which Options{StartStep: err.Resume} continues, never a half-updated or
// non-finite sample: each step is computed into a separate buffer and
// copied into x only once it is known to be finite.
package sampler
