// Package sampler turns a noise-predicting model into samples: the DDIM and
// DDPM samplers of diffusers, and the loop that drives any ugo.Denoiser
// with them.
//
// # Schedulers
//
// A Scheduler is one algorithm in diffusers' set_timesteps + step form:
// Timesteps(n) picks the inference timesteps and Step advances a sample by
// one of them, writing into a caller buffer (dst-first, like gonum's
// floats). DDIM and DDPM are plain structs with exported fields that mirror
// diffusers' scheduler_config.json keys; NewDDIM and NewDDPM fill them from
// a schedule.Config. They reproduce diffusers step by step in float32,
// quirks included (the previous timestep is t - T/n whatever the spacing;
// DDIM's final step lands on abar = 1 or abar_0 per SetAlphaToOne), and
// match the full-loop results published in diffusers' scheduler tests.
// Each keeps no per-run state and is safe for concurrent runs.
//
// # The loop
//
// Sample runs a whole trajectory in place on an N,C,H,W (or N,C,F,H,W)
// float32 tensor: one model call per step with the batch sharing the
// timestep. It allocates its buffers once per call and nothing per step.
// Options select the number of steps, the noise source, a progress
// callback that sees each step's predicted clean sample, resumption from a
// checkpoint (StartStep) and img2img/SDEdit starting points (Strength):
//
//	x, _ := noise.NewTensor(src, 1, 4, 64, 64) // the initial noise x_T
//	err := sampler.Sample(ctx, model, ddim, x, sampler.Options{Steps: 50, Noise: src})
//
// # Noise
//
// Randomness comes from a noise.Source in a fixed order that matches
// diffusers' pipelines: the initial noise (drawn by the caller), or the
// img2img noise when Strength > 0, then one Normal call over the whole batch
// for every step that needs noise (every DDPM step but the last, every DDIM
// step when Eta > 0). A noise.TorchCPU seeded like torch.manual_seed thus
// reproduces a diffusers CPU run.
//
// # Errors
//
// Bad configurations, shapes and options are errors, never panics. Once the
// run has started, every failure is a *StepError that names the step and
// timestep: a model error, a NaN or infinity in the model output
// (ErrNonFinite), cancellation (wrapping ctx.Err()), or an error from the
// progress callback. The tensor then holds the consistent state from which
// Options{StartStep: err.Resume} continues, never a half-updated sample.
package sampler
