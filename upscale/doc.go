// Package upscale builds upscaling pipelines out of a diffusion model
// trained at one resolution: direct sampling at 2x-4x with Upsample
// Guidance, SDEdit refinement of an upscaled image (the hires fix, SD
// upscale), multi-stage runs (28 -> 56 -> 112, 512 -> 1024 -> 2048) and
// ScaleDiff's refinements (Koh et al., arXiv 2510.25818): Latent Frequency
// Mixing and Structure Guidance. It works the same for pixel-space models
// (the Fashion-MNIST model) and latent models (Stable Diffusion, with a
// Codec for the VAE).
//
// # Stages
//
// A Stage turns a batch of samples into another. Sampling holds what they
// share: the plain model (a ugo.Denoiser), its schedule, a solver from
// package sampler, the number of steps, the training size and one noise
// source per image. The stages are
//
//   - Generate: sample from noise at a size, optionally with Upsample
//     Guidance (direct UG);
//   - Refine: upscale, add noise to strength r, denoise, optionally with
//     Upsample Guidance at the new size, Latent Frequency Mixing (Mix) and
//     Structure Guidance (Structure);
//   - DemoFusion: upscale, noise to the start of a full run, denoise with
//     DemoFusion's skip residual (a sampler.Hook blending the sample with
//     the noised upscaled input) and dilated sampling (interleaved
//     sub-grids denoised as separate images), optionally with Upsample
//     Guidance on the whole canvas; a chain Generate, DemoFusion at 2x,
//     at 3x... is DemoFusion's progressive upscaling;
//   - Interpolate: upscale only (no diffusion), through image space when a
//     Codec is given.
//
// Run chains stages and returns every stage's output:
//
//	s := upscale.Sampling{Model: model, Schedule: sched, Solver: ddim, Steps: 50,
//		Channels: 1, Trained: [2]int{28, 28}, Noise: noise.TorchSeeds(seeds...)}
//	ug := guidance.DefaultUpsampleOptions()
//	ug.Factors = nil // derived from Trained at each size
//	outs, err := upscale.Run(ctx, s, nil,
//		upscale.Generate{Height: 28, Width: 28},
//		upscale.Refine{Height: 56, Width: 56, Strength: 0.6, Upsample: &ug},
//		upscale.Refine{Height: 112, Width: 112, Strength: 0.5, Upsample: &ug,
//			Mix: &upscale.MixOptions{}, Structure: &guidance.StructureOptions{}})
//
// Every stage draws its noise (initial noise, SDEdit noise, stochastic
// steps) from the per-image sources in turn, so an image's result does not
// depend on the batch it is computed in, and the first stage of a seeded
// run equals a plain seeded run (the Fashion-MNIST examples draw image i
// from noise.NewTorchCPU(seed_i)).
//
// # Refinement (SDEdit)
//
// Refine at strength r with an n-step solver noises the upscaled reference
// to the level of step n - int(n*r) of the solver's trajectory with one draw
// (sampler.Options.Strength, as diffusers' img2img) and runs the remaining
// int(n*r) steps. Small r keeps the upscaled picture and sharpens it; large
// r lets the model redraw it, with the artefacts of sampling above the
// training size coming back unless Upsample Guidance is on.
//
// # Latent Frequency Mixing
//
// ScaleDiff builds the reference of a refinement as
//
//	Z_ref = LP(Z_latent_up) + (Z_rgb_up - LP(Z_rgb_up))
//
// where Z_latent_up is the latent upsampled in latent space (its structure
// is right but its detail blurred), Z_rgb_up the latent of the decoded
// image upsampled in RGB space and encoded again (detail the VAE knows how
// to render), and LP the low-pass antialiased-bilinear-down-by-sf then
// bilinear-up (LowPass; sf = 0.125 for SDXL, 0.25 for FLUX in the paper).
// MixFrequencies computes it; Refine.Mix turns it on, with Refine.Codec as
// the VAE.
//
// A pixel-space model has no latent space: both copies are then resizes of
// the same pixels, and the mix combines the low frequencies of one filter
// (Mix.Filter, bilinear by default) with the high frequencies of another
// (Refine.Filter, bicubic by default). With equal filters it is the plain
// upscale. It is kept so that the same pipeline runs on both kinds of
// model, but expect little from it on pixels.
//
// # Structure Guidance
//
// At every restarted step ScaleDiff pulls the low frequencies of the
// predicted clean sample towards the reference:
//
//	x0^ <- x0^ + gamma_t (LP(Z_ref) - LP(x0^))
//
// with gamma_t falling linearly from 1 at the first restarted step to 0 at
// the last. guidance.StructureGuidance is the Denoiser middleware that does
// this by rewriting the model output into the one that implies the
// corrected x0^ for the same x_t (for a noise prediction, eps -
// sqrt(abar/(1-abar)) times the correction), which every solver then steps
// from: no hook in the sampling loop is needed, and it composes with
// Upsample Guidance and classifier-free guidance by wrapping. It lives in
// package guidance with the other middleware; Refine.Structure turns it on
// (outermost, with From and To set to the restarted steps), and it filters
// with the same LP as LowPass. Its cost per step is one low-pass of the
// batch (see the guidance package documentation), against seconds for the
// model call.
//
// # DemoFusion
//
// DemoFusion (Du et al., CVPR 2024, arXiv 2311.16973) upscales stage by
// stage, each stage restarting from pure noise around the upsampled result
// of the one before and pulling the sample back to it (the skip residual,
// weight cos^3 falling from 1 at t = T to 0), while the dilated path
// denoises the sample's interleaved sub-grids at the training size for a
// global structure (weight cos^1). Its local path is the whole canvas, or
// MultiDiffusion's tiles as in the paper (DemoFusion.Tile), with or
// without Upsample Guidance. DemoFusion's weights
// follow the training timesteps, so the stage needs Sampling.Schedule. The
// skip residual runs as a hook on the sample, so it composes with every
// solver; the dilated path blends predictions, which equals DemoFusion's
// blend of stepped samples for steps affine in the model output.
//
// # Neighborhood Patch Attention
//
// ScaleDiff's third component, Neighborhood Patch Attention (NPA), is not
// here, because it changes the network, not the sampler: inside every
// self-attention layer the queries are cut into non-overlapping patches of
// half the training size and each patch attends only to the keys and
// values of a training-size window around it, while convolutions,
// cross-attention and the other layers run on the whole latent. A
// Denoiser only sees the model as a function from x_t to eps, and an ONNX
// graph is opaque to it. On an ONNX export it would take:
//
//   - rewriting the graph: locating each self-attention block (in
//     diffusers' SD exports, the MatMul-Softmax-MatMul chains of attn1 in
//     every BasicTransformerBlock, after the reshapes from [B, C, H, W] to
//     [B, H*W, C] and the head split), which differs between exporters,
//     opsets and optimisations (fused Attention or MultiHeadAttention
//     contrib ops after onnxruntime's transformer optimiser);
//   - replacing each with a subgraph that reshapes the tokens back to
//     [B, heads, H, W, d], extracts query patches (Reshape/Transpose for
//     non-overlapping tiles) and overlapping key/value windows (Slice per
//     window, or a Gather with precomputed indices; there is no unfold op
//     in ONNX), runs the attention per patch as a batched MatMul-Softmax-
//     MatMul, and scatters the results back; the window geometry depends
//     on H and W, so the graph must be built per resolution or computed
//     from Shape ops;
//   - or, instead, exporting the UNet again from PyTorch with an attention
//     processor that implements NPA (diffusers' attn_processor API), which
//     is the practical route.
//
// The stages here take any Denoiser, so a model exported with NPA plugs
// into Refine unchanged. Through an opaque model, NPA's substitute is
// tiling: Generate.Tile and Refine.Tile run the model on overlapping tiles
// of the training size (package tiling), blended with smooth weights
// (SD upscale, MultiDiffusion), with Upsample Guidance's low-resolution
// call on the whole pooled sample for the global structure that tiles
// alone lack. ScaleDiff's own ablation (SDXL at 4096^2) puts tiling with
// LFM and SG at NPA's quality for about twice its time; memory for the
// model calls then stays that of the training size, whatever the output.
//
// # What is measured
//
// The package tests check the pieces exactly (the stages against the
// sampler calls they stand for, Structure Guidance's x0 correction for
// every prediction type, frequency mixing identities) and, on the analytic
// Gaussian-field model, that Structure Guidance keeps a refinement's low
// frequencies closer to the reference. Image quality at 4x on the
// Fashion-MNIST model (direct UG, two-stage UG, bicubic + SDEdit, SDEdit
// with LFM and SG) is measured by examples/eval.
//
// # Errors
//
// Bad input is an error, never a panic: nil, zero, lazily transposed or
// otherwise unreadable tensors are *ugo.ShapeError values (ugo.CheckDense,
// ugo.CheckSample); a nil model or solver, typed nils included, wraps
// ugo.ErrNilDenoiser; an empty schedule, missing or nil noise sources,
// non-positive sizes and cutoffs outside (0, 1] are plain errors; a NaN or
// infinite Structure Guidance reference wraps ugo.ErrNonFinite; a Generate
// stage or a resize whose buffers would exceed ugo.MemoryLimit is a
// *ugo.MemoryError; the sampler's *sampler.StepError passes through.
package upscale
