// Package sampler turns a noise-predicting model into samples: the DDIM
// and DDPM samplers of diffusers, the PNDM (PLMS) sampler that Stable
// Diffusion folders name, the fast samplers that users run for 20-30 steps
// (DPM-Solver++, UniPC, Euler, Euler ancestral), the flow-matching Euler
// sampler of rectified-flow models (Stable Diffusion 3, FLUX), and the loop
// that drives any ugo.Denoiser with them.
//
// # Solvers and schedulers
//
// A Solver is what Sample drives. It splits a run in two, like diffusers'
// set_timesteps + step: Trajectory(n) computes the per-run Trajectory (the timesteps at
// which the model is called, the noise levels sigma the sample passes
// through, whether the model input is scaled, the initial noise level and
// which steps draw noise), and StepAt(dst, trajectory, i, in) advances the sample
// by step i, writing into a caller buffer (dst-first, like gonum's floats).
// Every solver is a plain struct with exported fields that mirror diffusers'
// scheduler_config.json keys, with constructors that fill them from a
// schedule.Config:
//
//   - DDIM and DDPM (NewDDIM, NewDDPM) reproduce diffusers' DDIMScheduler
//     and DDPMScheduler, quirks included (DDIM's previous timestep is
//     t - T/n whatever the spacing, and its final step lands on abar = 1 or
//     abar_0 per SetAlphaToOne; DDPM steps to the next timestep of its
//     list). Their Timesteps, PrevTimestep, NeedsNoise, Step and AddNoise
//     methods are diffusers' integer-timestep set_timesteps + step form.
//   - PNDM (NewPNDM) is diffusers' PNDMScheduler: with skip_prk_steps the
//     PLMS sampler of Stable Diffusion 1.x and 2.x (n+1 model calls for n
//     steps), without it F-PNDM with its Runge-Kutta warm-up (12 + (n-3)
//     calls).
//   - DPMSolverMultistep (NewDPMSolverMultistep) is diffusers'
//     DPMSolverMultistepScheduler with solver orders 1 to 3: DPM-Solver++
//     or its SDE variant, midpoint or Heun rule, Karras sigmas, final sigma
//     zero or sigma_min, lower_order_final, euler_at_final,
//     lambda_min_clipped, thresholding.
//   - UniPC (NewUniPC) is diffusers' UniPCMultistepScheduler (data
//     prediction, B(h) variants bh1 and bh2, orders 1 to 3, corrector
//     skipping, Karras sigmas).
//   - Euler and EulerAncestral (NewEuler, NewEulerAncestral) are diffusers'
//     EulerDiscreteScheduler and EulerAncestralDiscreteScheduler, that is
//     k-diffusion's samplers over a sigma list derived from the training
//     schedule, with Karras sigmas and Euler's churn.
//   - FlowMatchEuler (NewFlowMatchEuler) is diffusers'
//     FlowMatchEulerDiscreteScheduler, for models that predict the velocity
//     v = eps - x0 of x_s = (1-s) x0 + s eps (schedule.PredictFlow): the
//     flow levels s from 1 to 0 with a static shift or a dynamic one that
//     depends on the image's token count (mu, as diffusers' SD3 and FLUX
//     pipelines compute it), an exponential or linear time shift,
//     shift_terminal, Karras or exponential respacing, and the stochastic
//     variant. Its Trajectory.Sigmas are the flow levels s.
//
// All of them match diffusers in float32: the full-loop results that
// diffusers' scheduler tests publish, and whole pipeline-style runs of
// diffusers' own scheduler code (testdata/diffusers_runs.json, written by
// tools/goldens/diffusers_runs.py) to within a few float32 ulps.
//
// # Choosing a sampler from scheduler_config.json
//
// Kinds is the one name table of the package: each sampler's short name
// (used by command lines and pipeline requests) and the diffusers class it
// reproduces:
//
//	ddim     DDIMScheduler
//	ddpm     DDPMScheduler
//	pndm     PNDMScheduler
//	euler    EulerDiscreteScheduler
//	euler_a  EulerAncestralDiscreteScheduler
//	dpm++2m  DPMSolverMultistepScheduler
//	unipc    UniPCMultistepScheduler
//	flow_euler  FlowMatchEulerDiscreteScheduler
//
// FromConfig builds the sampler that a configuration's _class_name names,
// and New the one a short name or class names, from any configuration, as
// diffusers' SomeScheduler.from_config(pipe.scheduler.config) does: the
// keys the file gives (schedule.Config.Given) take effect, and the keys it
// does not give take the defaults of the class built, not of the class the
// file names (so Stable Diffusion 1.5's PNDM file, which gives no
// timestep_spacing, runs Euler with Euler's linspace default). A class that
// Kinds does not list is an *UnknownSamplerError that lists the supported
// ones.
//
// No key is dropped silently. The keys each class reads are those of its
// diffusers __init__; a key that the class reads either takes effect or,
// for a value this package does not implement, makes FromConfig fail with
// a *schedule.FieldError naming it. Keys of other classes are ignored, as
// diffusers ignores them (PNDMScheduler, for one, has no
// rescale_betas_zero_snr). Implemented: num_train_timesteps, beta_start,
// beta_end, beta_schedule, trained_betas, rescale_betas_zero_snr,
// prediction_type (epsilon, v_prediction, sample), timestep_spacing,
// steps_offset, clip_sample, clip_sample_range, set_alpha_to_one,
// thresholding, dynamic_thresholding_ratio, sample_max_value, variance_type
// (DDPM's fixed types), skip_prk_steps, solver_order, algorithm_type
// (dpmsolver++, sde-dpmsolver++), solver_type (midpoint, heun; bh1, bh2;
// each class maps the other's names to its default as diffusers does),
// lower_order_final, euler_at_final, use_karras_sigmas, sigma_min,
// sigma_max, final_sigmas_type, lambda_min_clipped (DPM-Solver reads a
// DEIS configuration's algorithm_type deis as dpmsolver++, as diffusers
// does), predict_x0 (true),
// disable_corrector, interpolation_type (linear), timestep_type (discrete,
// or continuous without v-prediction, where it changes nothing); and for
// FlowMatchEulerDiscreteScheduler shift, use_dynamic_shifting, base_shift,
// max_shift, base_image_seq_len, max_image_seq_len, time_shift_type,
// shift_terminal, use_karras_sigmas, use_exponential_sigmas and
// stochastic_sampling. Refused:
// the learned variance types, noise-prediction DPM-Solver (dpmsolver,
// sde-dpmsolver) and UniPC (predict_x0 false), use_exponential_sigmas,
// use_beta_sigmas, use_lu_lambdas, use_flow_sigmas and flow-matching
// options outside FlowMatchEulerDiscreteScheduler (use_dynamic_shifting,
// time_shift_type linear, shift_terminal), the flow_prediction prediction
// type outside it, its invert_sigmas (Mochi),
// solver_p, log_linear interpolation, continuous timesteps with
// v-prediction, prediction types diffusers does not implement for a class
// (sample for PNDM and Euler ancestral), the sigmoid beta_schedule outside
// DDPM (where diffusers raises), and the UniPC configurations whose
// last step diffusers itself turns into NaN or infinities (bh1, or
// lower_order_final false above order 1, with final_sigmas_type zero). flow_shift is read and
// changes nothing without use_flow_sigmas, as in diffusers.
//
// Known difference: diffusers computes numpy's float32 log of the training
// sigmas with a vectorised routine that is not always correctly rounded;
// this package rounds correctly, so the fractional timesteps of Karras
// sigmas may differ from diffusers' in the seventh digit, and in rare
// cases a timestep rounded (or, for DPM-Solver on squaredcos_cap_v2,
// truncated) to an integer may differ by one.
//
// A solver keeps no per-run state, so one value may drive concurrent runs:
// the trajectory belongs to the run, and the history of a multistep solver
// travels in the caller's buffers: the previous step's prediction of the
// clean sample (StepInput.PrevX0), which Sample double-buffers, and the
// Trajectory.State buffers of third-order and predictor-corrector solvers
// (StepInput.State), which Sample allocates once per run.
//
// # Timesteps and sigmas
//
// DDIM, DDPM, PNDM, DPMSolverMultistep and UniPC work on the variance-preserving sample
// x_t = sqrt(abar) x0 + sqrt(1-abar) eps, which the model sees as it is.
// The Euler samplers work on k-diffusion's x0 + sigma eps, sigma =
// sqrt((1-abar)/abar): the model sees it divided by Trajectory.InputNorm[i] =
// sqrt(sigma^2+1), that is as x_t again, and a run from noise starts at
// Trajectory.InitNoiseSigma. Their timesteps are fractional wherever sigma falls
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
// float32 tensor: one model call per step (PNDM: more) with the batch
// sharing the timestep. It allocates its buffers once per call and nothing per step.
// Options select the number of steps, the noise source, a progress
// callback that sees each step's predicted clean sample, resumption from a
// checkpoint (StartStep, plus PrevX0 for multistep solvers) and
// img2img/SDEdit starting points (Strength):
//
//	x, _ := noise.NewTensor(src, 1, 4, 64, 64) // standard normal initial noise
//	err := sampler.Sample(ctx, model, dpm, x, sampler.Options{Steps: 25, Noise: src})
//
// # Hooks on x and x0
//
// Methods that change the sample itself, not the model's prediction, plug
// into the loop through Options.Hook: Hook.X0 edits each step's predicted
// clean sample before the solver's own clip and before the step uses it
// (inside Solver.StepAt, through StepInput.X0Hook), and Hook.Sample edits
// the sample entering each step and the final one. Every Solver honours
// it; Hook documents exactly what each one reads from an edited x0,
// multistep histories included. Package guidance's BlockClamp (x0 clamped
// block-wise for Upsample Guidance) and package upscale's DemoFusion stage
// (skip residual) are hooks.
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
