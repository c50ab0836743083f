// Package schedule implements the discrete noise schedules of diffusion
// models, their continuous-time extension, SNR matching for Upsample
// Guidance, inference timestep spacing, and diffusers'
// scheduler_config.json.
//
// # Schedules
//
// A Schedule is defined by T betas (training steps t = 0..T-1) and holds
// abar_t = prod_{s<=t} (1 - beta_s), the signal power of the
// variance-preserving forward process
//
//	x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,    SNR(t) = abar_t / (1 - abar_t).
//
// Linear, ScaledLinear, SquaredCosCapV2 and Sigmoid build diffusers'
// beta_schedule options and FromBetas its trained_betas;
// RescaleZeroTerminalSNR applies rescale_betas_zero_snr. Betas and
// AlphasCumprod are computed in float32 operation for operation as
// diffusers (on PyTorch's CPU kernels) computes them, so that they agree
// to the bit; see the constructors for the exceptions.
//
// # Fractional times
//
// Upsample Guidance evaluates models at fractional, SNR-matched times, so
// AlphaBar, SNR and LogSNR accept a float64 t. They are exact at integer t
// (the float32 abar widened to float64) and interpolate log SNR linearly
// between integers: log SNR decreases (weakly) with t, so the
// interpolation is monotone, it is the natural scale for SNR matching
// (multiplying the SNR by k adds ln k), and it keeps abar = sigmoid(log
// SNR) inside (0, 1). InverseSNR and MatchedTime invert exactly this
// interpolation, so in Continuous mode
//
//	abar(tau) = k*abar(t) / (1 + (k-1)*abar(t))
//
// holds to float64 rounding whenever the target is inside the schedule's
// range. Times are clamped to [0, T-1].
//
// Zero terminal SNR. After RescaleZeroTerminalSNR, abar(T-1) = 0 and log
// SNR is -Inf there. A segment [i, i+1] that ends at zero SNR is
// interpolated linearly in abar instead (log SNR would be -Inf on the
// whole open segment), which stays continuous and monotone and never
// produces NaN: AlphaBar, SNR and LogSNR return 0, 0 and -Inf at the
// zero-SNR steps, InverseSNR(0) returns T-1, and MatchedTime returns t
// when SNR(t) = 0.
//
// # SNR matching and power
//
// Average pooling x_t over k elements multiplies its SNR by k. MatchedTime
// returns the time tau with SNR(tau) = k*SNR(t), tau <= t, either
// continuous or at the Nearest training step; PowerFactor returns the
// variance P_t = abar_t + (1-abar_t)/k of the pooled sample.
//
// # Inference timesteps and configuration
//
// Timesteps reproduces diffusers' leading, trailing and linspace spacings,
// including steps_offset. Config mirrors the keys of the configurations of
// diffusers' DDPMScheduler, DDIMScheduler, PNDMScheduler,
// EulerDiscreteScheduler, EulerAncestralDiscreteScheduler,
// DPMSolverMultistepScheduler, UniPCMultistepScheduler and
// FlowMatchEulerDiscreteScheduler (rectified flow: shift, dynamic
// shifting, PredictFlow), _class_name included; ParseConfig and LoadConfig read scheduler_config.json (with
// the -Infinity that Python writes for lambda_min_clipped) with field-level
// validation and record which keys the file gives (Config.Given), and
// Config.Schedule builds the schedule it describes. Which values a sampler
// supports is decided by package sampler, whose FromConfig builds the
// sampler that _class_name names and refuses, key by key, what it does not
// implement.
package schedule
