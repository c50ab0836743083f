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
//     every guidance and every test model implements, the DenoiserFunc
//     adapter, and the argument checks every implementation shares
//     (CheckSample, CheckPrediction, ShapeError). PredictNoise is dst-first:
//     it writes into a caller buffer, so a sampling loop allocates nothing
//     per step. Region, carried on a call's context, tells a backend which
//     part of the sample a call covers and at what scale (Upsample
//     Guidance's low-resolution branch, a tile), for models conditioned
//     on the picture's geometry such as SDXL.
//   - schedule: diffusers-exact beta schedules, alpha-bar and SNR at
//     fractional times, SNR matching (the time adjustment of Upsample
//     Guidance), timestep spacings and scheduler_config.json.
//   - noise: reproducible Gaussian sources, including one bit-compatible with
//     torch.manual_seed(seed); torch.randn(...) on CPU and one that follows
//     torch's CUDA Philox stream.
//   - guidance: Denoiser middleware. Upsample wraps a model trained at a low
//     resolution so that it predicts noise at a multiple of it; CFG is
//     classifier-free guidance; StructureGuidance is ScaleDiff's pull of
//     the predicted clean sample's low frequencies towards a reference.
//     They compose by wrapping.
//   - tiling: Denoiser middleware that runs a model on overlapping tiles of
//     its training size and blends the predictions, so that memory stays
//     flat as the output grows and a fixed-size export samples above its
//     size; with guidance.UpsampleHighLow the tiles give the detail and
//     the whole-sample low-resolution call the structure.
//   - sampler: the solvers of diffusers (DDIM, DDPM, DPM-Solver++, Euler,
//     Euler ancestral) and the loop that drives a Denoiser with them, with
//     progress, cancellation, resume and img2img.
//   - onnx: a Denoiser, and any other graph, on ONNX Runtime (CPU, CUDA,
//     TensorRT); the only package that needs cgo.
//   - pipeline: Stable Diffusion-style ONNX model folders (tokenizer, text
//     encoder, UNet, VAE) for text-to-image at and above the training size;
//     pipeline/clip is CLIP's byte-pair tokenizer.
//   - upscale: upscaling as stages (sample, SDEdit refinement, interpolation)
//     run one after another, with ScaleDiff's Latent Frequency Mixing and
//     (from package guidance) Structure Guidance.
//   - resize: resampling strategies as values (nearest, bilinear, antialiased
//     bilinear, bicubic, Lanczos3, area) with precomputed plans.
//   - graphmodel: a Denoiser over gorgonia expression graphs, in pure Go;
//     graphmodel/convnet is a small network trainable with it.
//   - metrics: the Frechet distance between feature sets, for quality
//     tables.
//   - picture: PNG grids of sample batches.
//
// The example programs in examples/ (the demo, the evaluation, text-to-image,
// upscaling, benchmarks, training in Go) use only these public packages.
//
// # Tensors
//
// Public boundaries use *tensor.Dense from gorgonia.org/tensor holding
// float32 values in row-major NCHW (images) or NCFHW (video) order. A lazily
// transposed (x.T without Materialize) or column-major tensor, whose
// backing slice is not in that order, is refused rather than read in
// storage order; so is a zero tensor.Dense. CheckSample and CheckDense are
// the shared checks.
//
// # Errors
//
// Every package returns errors, never panics, for what a caller, a model
// file or a configuration can get wrong; the few panics left are documented
// programmer errors (such as a dst-first kernel over slices of the wrong
// length). The errors shared by all packages live here:
//
//   - *ShapeError: a tensor of the wrong shape, rank, element type or
//     layout;
//   - ErrNonFinite: a NaN or infinity where a finite value is required (a
//     model output from any backend, an overflowing guidance or CFG
//     combination, a sampler step); sampler.ErrNonFinite and
//     onnx.ErrNonFinite are this value, so one errors.Is test serves all;
//   - ErrNilDenoiser: a nil model, including a typed nil such as the
//     *onnx.Model of a failed Open (IsNil, CheckDenoiser);
//   - ErrAlias: dst sharing memory with x in PredictNoise or a resize;
//   - *MemoryError (ErrTooLarge): a request whose own buffers would exceed
//     MemoryLimit, refused before anything is allocated, with the bytes it
//     would need. The limit defaults to 16 GiB (or GOMEMLIMIT when lower)
//     and SetMemoryLimit changes it; it bounds ugo's buffers, not the
//     memory a backend uses inside a model call.
package ugo
