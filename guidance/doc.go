// Package guidance provides Denoiser middleware: Upsample Guidance, which
// lets a diffusion model sample at 2x-4x the resolution it was trained at,
// classifier-free guidance, and ScaleDiff's Structure Guidance. Every
// guidance that acts on the model's predictions lives here; package
// upscale composes them into refinement stages.
//
// Each guidance wraps a ugo.Denoiser and is one, the way HTTP middleware
// wraps an http.Handler. Samplers know nothing about guidance; guidances
// compose by wrapping:
//
//	model := guidance.CFG(cond, uncond, 7.5)
//	guided, err := guidance.Upsample(model, sched, guidance.DefaultUpsampleOptions())
//	err = sampler.Sample(ctx, guided, ddim, x, sampler.Options{Steps: 50})
//
// # Upsample Guidance
//
// A network trained on HxW images, run on a 2Hx2W canvas, keeps the pixel
// scale of what it learned: it paints content at half the intended size,
// repeated across the canvas. Upsample Guidance (Hwang, Park and Jo, arXiv
// 2404.01709) corrects this with one extra model call on a downsampled copy
// of the sample. With D average pooling and U nearest repetition by integer
// factors (product k), the guided prediction at the target resolution is
//
//	eps~(x_t, t) = eps(x_t, t) + w_t * U( eps(D(x_t)/sqrt(P_t), tau) / sqrt(k)  -  D(eps(x_t, t)) )
//
// Two adjustments make the downsampled sample look like a training input:
//
//   - Time: D(x_t) has k times the SNR of x_t, so the low-resolution call
//     is evaluated at tau, where SNR(tau) = k*SNR(t) (fractional in
//     schedule.Continuous mode, the nearest training step in
//     schedule.Nearest mode).
//   - Power: D(x_t) has variance P_t = abar_t + (1-abar_t)/k; dividing by
//     sqrt(P_t) gives exactly sqrt(abar_tau) D(x_0) + sqrt(1-abar_tau) eps'
//     with eps' standard normal.
//
// With w_t = 1 the pooled guided prediction equals the low-resolution
// prediction, D(eps~) = eps(x~, tau)/sqrt(k): the coarse structure of the
// sample follows the model at the resolution it knows, while the detail
// added by U's complement comes from the full-resolution call.
//
// The weight is w_t = Theta while t >= (1-Eta)*T and 0 after
// (UpsampleOptions.Active says which); for latent models guidance is
// usually on for the noisy first 30%-60% of sampling only
// (LatentUpsampleOptions: Theta 1.2, Eta 0.6). UpsampleOptions.Validate
// holds the rules on the settings, for callers that check them before
// building a model. Where w_t = 0 for the whole batch the low-resolution call is skipped,
// so the guidance then costs nothing. Otherwise it costs one model call on
// 1/k of the elements (25% more compute at 2x2), which runs concurrently
// with the full-resolution call, or after it when the model reports that
// one call already keeps every CPU core busy (ugo.CPUFiller;
// UpsampleOptions.Sequential and Concurrent force either).
//
// The low-resolution call's context carries a ugo.Region: the caller's
// (or the whole sample's) with Scale multiplied by the H and W factors.
// A backend whose model is conditioned on the picture's geometry reads it
// and conditions that call on the size the downsampled sample stands for,
// not on the target's (SDXL's UNet, whose time_ids hold the original and
// target sizes, is such a model). The full-resolution call gets the caller's
// context unchanged.
//
// # Velocity and clean-sample models
//
// The formula above is in eps-space. A model that predicts the velocity v
// = sqrt(abar_t) eps - sqrt(1-abar_t) x0 (Stable Diffusion 2.x 768-v) or
// the clean sample x0 says so in UpsampleOptions.Prediction. Each output
// is then read as the noise it implies, eps = sqrt(abar_t) v +
// sqrt(1-abar_t) x_t for the high-resolution call and the same with
// abar_tau and the low-resolution input for the other, the correction is
// formed in eps-space, and the guided output is returned in the model's
// own type (the output whose implied noise is eps~). Feeding v outputs to
// the eps formula directly would be wrong twice over: the low-resolution
// term would be off by sqrt(P_t), and the term in D(x_t) that v lacks would
// be lost. With w_t = 1 the pooled guided output implies the
// low-resolution call's noise (over sqrt(k)) and, where tau matches the
// SNR exactly, its clean sample, for every prediction type. Where an
// output does not determine the noise (v at abar_t = 0, the last step of a
// zero-terminal-SNR schedule; x0 at abar_t = 1) it is returned unguided.
// Rectified-flow velocities have a section of their own below.
//
// # Rectified-flow models
//
// Stable Diffusion 3 and FLUX are rectified flows: x_s = (1-s) x0 + s eps
// with s from 1 (noise) to 0, the model called at the timestep T s and
// predicting the velocity v = eps - x0 (UpsampleOptions.Prediction
// schedule.PredictFlow). Pooling gives
//
//	D(x_s) = (1-s) D(x0) + (s/sqrt(k)) eps'
//
// with eps' standard normal, and a multiple c D(x_s) is a flow sample of
// level tau, (1-tau) D(x0) + tau eps', when c(1-s) = 1-tau and c s/sqrt(k)
// = tau, that is
//
//	tau = s / (s + sqrt(k)(1-s)),    c = (1-tau)/(1-s) = sqrt(k) / (s + sqrt(k)(1-s))
//
// These are the time and power adjustments of the variance-preserving
// case in flow units: the SNR ((1-s)/s)^2 is multiplied by k, and tau is
// below s except at the ends (tau = 0 at s = 0; tau = 1 and c = sqrt(k) at s
// = 1). With eps = x_s + (1-s) v and x0 = x_s - s v at the high resolution
// and eps_low = c D(x_s) + (1-tau) v_low at the low one, the eps-space
// formula gives the guided velocity v~ = (eps~ - x_s)/(1-s), which
// simplifies to
//
//	v~ = v + w_t U( (v_low + (1-sqrt(k)) D(x_s)) / (s + sqrt(k)(1-s))  -  D(v) )
//
// Upsample computes this form: the eps-space one is 0/0 at s = 1, the first
// level of every flow run, where the noise a velocity implies is x_s itself;
// the limit is finite and the guidance acts there. With w_t = 1 the pooled
// guided velocity implies the low-resolution call's clean sample, D(x0~) =
// c D(x_s) - tau v_low, and noise, D(eps~) = eps_low/sqrt(k), at every level.
// Eta counts on the timestep T s: guidance is on while s >= 1 - Eta.
// (The ablations NoTimeAdjustment and NoPowerAdjustment use the eps-space
// form and leave s = 1 unguided.)
//
// # Clipping x0 in pixel space
//
// Pixel-space samplers usually clip the predicted clean sample x0 to the
// data range (diffusers' clip_sample). Element-wise, that clip does not
// commute with pooling: where a block of the high-resolution x0 straddles
// a bound (fine texture on a black background), clipping raises or lowers
// the block's mean, and the pooled trajectory, which guidance keeps on the
// low-resolution model's path, drifts off it step after step.
// BlockClamp clamps x0 block-wise instead (block means clamped,
// deviations scaled down to fit), so that D(clamp(x0)) = clamp(D(x0)). It
// is a sampler.Hook (sampler.Options.Hook), not a Denoiser: it edits the
// clean sample the solver predicts, before the solver's own clip and
// before the step uses it, so it works with every solver, diffusers'
// default DDIM (use_clipped_model_output false) included. On the shipped
// Fashion-MNIST model at 2x (DDIM 50 steps, taking its update from the
// clipped x0), the pooled guided samples then follow the native 28x28 ones
// from the same noise to an RMS difference of 0.04, against 0.16 with
// diffusers' DDIM and an element-wise clip, and 0.57 without guidance
// (examples/internal/fashion, TestGuidedPooledTracksNative);
// README's table has what that does to sample quality.
//
// UpsampleHighLow takes the two calls' models separately: the usual pair is
// the model run in tiles of its training size for the high-resolution call
// (package tiling), so that memory stays flat as the output grows and a
// fixed-size export can sample above its size, and the plain model for the
// low-resolution call, whose input is at the training size.
//
// Factors apply per axis: [2, 2] (the default) for 2x images, [1, 2] for a
// panorama twice as wide, [3, 3] for 3x, [2, 1, 1] for twice as many video
// frames (samples N,C,F,H,W), [2, 2, 2] for both. examples/video samples a
// video model trained on 8-frame clips (testdata/models/fashion_video.onnx)
// at 16 frames and 56x56 with these factors and measures the clips' label
// changes and frame differences (docs/video).
//
// # Classifier-free guidance
//
// CFG combines a conditional and an unconditional prediction as
// eps_u + s*(eps_c - eps_u), calling both concurrently (one after the
// other when both models report that a call fills the CPU). The Upsample
// Guidance term is linear in the model output, so Upsample(CFG(...)) is the
// same as guiding each branch, at the cost of one combination.
//
// # Structure Guidance
//
// ScaleDiff (arXiv 2510.25818) pulls, at every restarted step of an SDEdit
// refinement, the low frequencies of the predicted clean sample towards
// those of a reference:
//
//	x0^ <- x0^ + gamma_t (LP(ref) - LP(x0^))
//
// with LP antialiased-bilinear down by a cutoff sf then bilinear up
// (upscale.LowPass) and gamma_t falling linearly from its weight to 0.
// StructureGuidance does this by rewriting the model output into the one
// that implies the corrected x0^ for the same x_t, which every solver then
// steps from: no hook in the sampling loop is needed. upscale.Refine
// applies it outermost, around Upsample Guidance, with gamma_t falling over
// the restarted steps. Its cost per step is one low-pass of the batch (4 ms
// for SD latents [2, 4, 128, 128] and 17 ms for a Fashion-MNIST batch [50,
// 1, 112, 112] on a busy 2-core machine, BenchmarkStructureGuidance),
// against seconds for the model call.
//
// # Concurrency and memory
//
// Every Denoiser here is safe for concurrent use when the models it wraps
// are. Buffers are kept per sample shape and reused, so a sampling loop
// allocates nothing per step once the first step has run. The concurrent
// model call runs on a small set of helper goroutines that exit after 30
// seconds without work. A panic in a wrapped model is re-raised on the
// caller's goroutine. Every middleware here implements ugo.CPUFiller with
// the answer of the model it wraps.
//
// # Errors
//
// Bad input is an error, never a panic:
//
//   - Upsample refuses a nil model (ugo.ErrNilDenoiser, typed nils such as
//     a nil *onnx.Model included), a nil or empty schedule (a zero
//     schedule.Schedule), and invalid options (factors outside [1, 65536],
//     Theta outside the float32 range, Eta outside [0, 1], an unknown time
//     matching or prediction type);
//   - a call with a sample whose axes the factors do not divide, or of the
//     wrong rank, shape or layout (a lazily transposed view) is a
//     *ugo.ShapeError; dst sharing memory with x is ugo.ErrAlias;
//   - a guided or CFG-combined prediction that overflows float32 is an
//     error wrapping ugo.ErrNonFinite;
//   - a workspace beyond ugo.MemoryLimit is a *ugo.MemoryError;
//   - errors of the wrapped models are returned, wrapped.
package guidance
