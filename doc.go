// Package ugo samples pretrained diffusion models at resolutions above the
// one they were trained at, without retraining, through Upsample Guidance
// (Hwang, Park and Jo, "Upsample Guidance: Scale Up Diffusion Models without
// Training", arXiv 2404.01709).
//
// # Tour
//
// Data flows one way: noise -> sampler loop -> (guidance -> denoiser) -> sample.
//
//   - ugo (this package): the Denoiser interface, which every model backend,
//     every guidance and every test model implements, and the DenoiserFunc
//     adapter. PredictNoise is dst-first: it writes into a caller buffer, so a
//     sampling loop allocates nothing per step.
//   - schedule: diffusers-exact beta schedules, alpha-bar and SNR at
//     fractional times, SNR matching (the time adjustment of Upsample
//     Guidance), timestep spacings and scheduler_config.json.
//   - noise: reproducible Gaussian sources, including one bit-compatible with
//     torch.manual_seed(seed); torch.randn(...) on CPU.
//   - guidance: Denoiser middleware. Upsample wraps a model trained at a low
//     resolution so that it predicts noise at a multiple of it; CFG is
//     classifier-free guidance. They compose by wrapping.
//   - sampler: DDPM and DDIM loops matching diffusers, with progress,
//     cancellation and resume.
//   - onnx: a Denoiser on ONNX Runtime (CPU, CUDA), the only package that
//     needs cgo.
//
// # Tensors
//
// Public boundaries use *tensor.Dense from gorgonia.org/tensor holding
// float32 values in row-major NCHW (images) or NCFHW (video) order.
package ugo
