// Package pipeline runs Stable Diffusion-style latent text-to-image models
// exported to ONNX, at their training resolution or at 2x-4x of it with
// Upsample Guidance (Hwang, Park and Jo, arXiv 2404.01709).
//
//	m, err := pipeline.Load("stable-diffusion-v1-5-onnx")
//	if err != nil { ... }
//	defer m.Close()
//	res, err := m.Generate(ctx, pipeline.Request{
//		Prompt: "a photo of a cat sitting on a wooden table",
//		Width:  1024, Height: 1024, // 2x SD 1.5's 512: Upsample Guidance 2x2
//		Steps:  50, GuidanceScale: new(7.5), Seed: 42,
//	})
//	if err != nil { ... }
//	err = res.WritePNG("cat.png")
//
// examples/txt2img is a command-line front end.
//
// # Model folders
//
// Load reads the layout that diffusers' OnnxStableDiffusionPipeline
// (scripts/convert_stable_diffusion_checkpoint_to_onnx.py) and optimum's ONNX
// export write: scheduler/scheduler_config.json, tokenizer/ (vocab.json and
// merges.txt, or tokenizer.json), text_encoder/model.onnx (input_ids int32
// or int64 [batch, 77] -> last_hidden_state [batch, 77, 768]),
// unet/model.onnx (sample [batch, 4, H/8, W/8] for SD, timestep [batch] int64 or
// float, or rank-0 float32 or float16 as optimum >= 1.24 writes it,
// encoder_hidden_states [batch, 77, 768] -> out_sample) and
// vae_decoder/model.onnx (latent_sample -> sample [batch, 3, H, W]). UNet
// weights stored beside the graph (unet/weights.pb, model.onnx_data) are
// found. Optional config.json files give the VAE scaling factor (0.18215 for
// SD 1.x and 2.x when absent), the training size, the VAE scale (8) and
// the latent channels (4); nothing else assumes SD's values, and
// testdata/models holds two models with a VAE scale of 4 and a 32-pixel
// training size (tools/latent). The training size decides the default
// image size and Upsample Guidance's factors; without a config it is
// inferred where the folder tells (a 1024-wide text encoder with
// v_prediction is SD 2.x 768-v: 768), else 512 with a warning (see Load;
// WithSampleSize overrides it).
// A folder lacking files is a *MissingError naming all of them; parts that do
// not fit together are rejected with an error naming them. float16 exports
// work as they are: the onnx package converts at the boundary, so everything
// here is float32.
//
// # Stable Diffusion XL
//
// A folder with text_encoder_2/model.onnx, or whose model_index.json names
// a StableDiffusionXL pipeline class (StableDiffusionXLPipeline, optimum's
// ORTStableDiffusionXLPipeline), loads as SDXL (Info.SDXL), in the layout
// optimum writes: tokenizer/ and tokenizer_2/ (SDXL's second tokenizer
// pads with "!"), text_encoder/ (input_ids -> last_hidden_state,
// pooler_output, hidden_states.0..12), text_encoder_2/ (input_ids ->
// text_embeds, last_hidden_state, hidden_states.0..32), and a UNet taking
// sample, timestep, encoder_hidden_states [batch, 77, 2048], text_embeds
// [batch, 1280] and time_ids [batch, 6]. As diffusers'
// StableDiffusionXLPipeline does, the text states are both encoders'
// penultimate hidden states (hidden_states[-2]) side by side (768 + 1280),
// the pooled embedding is text_encoder_2's text_embeds, and under CFG an
// empty negative prompt gives zero states and zero pooled embedding when
// model_index.json's force_zeros_for_empty_prompt is true (the default;
// diffusers does this when negative_prompt is None), while a non-empty one
// is encoded like the prompt. The VAE config's scaling_factor (0.13025)
// is used; the VAE runs in the precision of its own graph, float32 in
// optimum's SDXL exports even when the UNet is float16 (SDXL's VAE
// overflows in half precision).
//
// time_ids, [original H, original W, crop top, crop left, target H,
// target W] in pixels, are set per UNet call from the ugo.Region the call's
// context carries (TimeIDs): for a call over the whole latent, the image
// size and crop (0, 0), diffusers' defaults; for Upsample Guidance's
// low-resolution call, the size the downsampled latent stands for, which
// at factors equal to size/SampleSize is the training size (1024x1024 for
// SDXL), so that branch is conditioned as the model was trained to see a
// picture of that size, not told that its 1024-pixel input is a 2048-pixel
// picture; for a tile, its offset in the image as the crop.
//
// The refiner (model_index.json requires_aesthetics_score, text_encoder_2
// without text_encoder, or a UNet with 5 time_ids) is recognised and
// refused with an *UnsupportedError (ErrUnsupported): it refines latents
// image to image and conditions on an aesthetic score.
//
// # What Generate does
//
//  1. The prompt and the negative prompt are tokenized with CLIP's BPE
//     (package clip), padded and truncated to 77 tokens, and encoded in one
//     text-encoder call.
//  2. The initial latents, [Images, C, H/s, W/s] (C latent channels, s the
//     VAE scale: [Images, 4, H/8, W/8] for SD), are one draw from the
//     noise source (noise.NewTorchCPU(Seed) by default).
//  3. The UNet predicts what scheduler_config.json's prediction_type says
//     (the noise, or the velocity of SD 2.x 768-v models, or the clean
//     sample) under classifier-free guidance, u + s*(c - u), with both
//     branches in one batched UNet call (separate concurrent calls when the
//     export has a fixed batch size); CFG runs only when s > 1 (a scale of
//     0 or 1 runs the conditional branch alone), as diffusers does.
//  4. Upsample Guidance wraps that prediction when the size is an integer
//     multiple of the training size (see below), reading it as the noise it
//     implies for the prediction type and returning the same type.
//  5. A sampler samples the latents, configured from scheduler_config.json
//     as diffusers' from_config would configure it: Request.Sampler names
//     one of sampler.Kinds by short name or diffusers class, DDIM
//     (DDIMScheduler) by default; the others are DDPM (DDPMScheduler),
//     PNDM (PNDMScheduler, what SD 1.x/2.x folders name), Euler (EulerDiscreteScheduler), Euler ancestral
//     (EulerAncestralDiscreteScheduler), DPM-Solver++ orders 1-3
//     (DPMSolverMultistepScheduler) and UniPC (UniPCMultistepScheduler).
//     Every key of the file that the chosen class reads takes effect, and
//     one whose value package sampler does not implement fails the request
//     with a *schedule.FieldError naming it; the package sampler
//     documentation lists the keys. Keys the file does not give take the
//     chosen class's defaults.
//  6. The latents are divided by the scaling factor and decoded by the VAE,
//     whole or in tiles (DecodeOptions).
//
// Model.Resolve resolves a request into its Settings without running it;
// Model.EncodePrompts (Model.Encode for SDXL's pooled embedding),
// Model.Denoiser (Model.DenoiserFor) and Model.Decode expose the stages for
// callers who drive their own sampling loop.
//
// # Upsample Guidance
//
// Guidance works in latent space. Its factors [fH, fW] are, per axis, the
// largest integer f <= size/SampleSize that divides the latent size:
// 1024x1024 on SD 1.5 gives [2, 2], 1536x1536 [3, 3], 1536x1024 [2, 3],
// 2048x2048 [4, 4]; sizes below twice the training size get no guidance.
// Request.Upsample.Factors (a guidance.UpsampleOptions) sets them explicitly, for example [1, 2] for a
// 512x1024 panorama. Each guided step adds one UNet call on the latent
// pooled by the factors (1/(fH*fW) of the pixels), run concurrently with the
// full-size call. The defaults, guidance.LatentUpsampleOptions, are those of the public
// implementations for SD 1.5 at 1024x1024: theta 1.2 and eta 0.6, that is
// guidance on the steps with t >= 400 of 1000 (the noisiest 60%, where the
// layout is decided) and off afterwards, where it would only blur detail.
// The same defaults apply at 3x and 4x, where they have not been tuned; a
// nil Request.Upsample means guidance.LatentUpsampleOptions(),
// &guidance.UpsampleOptions{} means no guidance. The guidance window and
// the rules on the settings are the guidance package's
// (UpsampleOptions.Active and Validate).
//
// # Tiled VAE decoding and memory
//
// SD's VAE decoder is the memory peak at high resolution: at 2048x2048 its
// mid-block attention alone runs over 256x256 = 65536 latent positions
// (a 16 GiB attention matrix in float32), besides 2 GiB activations of 128
// channels at full size. DecodeOptions tiles the latent (64x64 tiles, 512
// pixels, overlapping by at least 16; images above 1024x1024 pixels by
// default) and blends the tiles with weights that vanish near each tile's
// own edges and sum to one, so the peak follows the tile size. Measured on
// the tiny test VAE at 2048x2048 (TestDecodeMemory, UGO_MEMORY_REPORT=1;
// peak RSS of a fresh process, 53 MB before decoding): whole decode 804 MB,
// tiled 196 MB; examples/txt2img end to end at 2048x2048 (4 steps): 862 MB
// untiled, 253 MB tiled, with identical PNGs. With a real SD VAE the
// whole-image numbers are tens of gigabytes, the tiled ones those of a
// 512x512 decode plus the 48 MB image. VAE.Encode tiles the same way with
// the VAE's DecodeOptions (image tiles of TileSize times the VAE scale), so
// that image-space upscaling (upscale.Refine with a Codec) is bounded too;
// Request.Tile tiles the UNet's own calls (package tiling).
//
// # Seeds and matching diffusers
//
// With the default source the initial latents equal those of
//
//	generator = torch.manual_seed(seed)  # a CPU generator
//	latents = torch.randn((images, 4, height // 8, width // 8), generator=generator)
//
// which is what diffusers' StableDiffusionPipeline draws when called with
// generator=torch.manual_seed(seed) (or torch.Generator("cpu").manual_seed),
// whatever the device. To compare a whole run, use
//
//	pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
//	image = pipe(prompt, height=H, width=W, num_inference_steps=steps,
//	             guidance_scale=scale, negative_prompt=neg,
//	             generator=torch.manual_seed(seed)).images[0]
//
// with Upsample Guidance off (it has no diffusers counterpart): the
// timesteps, guidance arithmetic and DDIM updates are diffusers', and what
// remains different is the numerics of the ONNX export. The other samplers
// match their diffusers schedulers (EulerDiscreteScheduler.from_config and so
// on) the same way. For the stochastic ones (DDPM, Euler ancestral, DDIM with
// eta > 0) the step noise is drawn from the same source in diffusers' order.
// diffusers' OnnxStableDiffusionPipeline draws its latents with NumPy's
// RandomState instead, which no source here reproduces; Request.Noise accepts
// noise.NewPhilox(seed) to match the AUTOMATIC1111 webui's GPU seeds.
//
// # Concurrency and allocation
//
// A Model is safe for concurrent use. Once the first step has run, a
// sampling step allocates nothing beyond the few small values the ONNX
// Runtime binding allocates per UNet call.
//
// # Errors
//
// Load and Resolve check everything they can before any model runs:
//
//   - *MissingError: required files absent from the folder;
//   - *ConfigError: a configuration value outside what the pipeline can use
//     (a sample size that is not a positive multiple of the VAE scale or
//     exceeds MaxSampleSize, latent channels beyond MaxLatentChannels, a
//     scaling factor that is not positive, too many block_out_channels);
//     malformed JSON is an error naming the file; scheduler and tokenizer
//     files fail with the schedule and clip packages' errors;
//   - parts that do not fit together (hidden sizes, latent channels, input
//     names) are errors naming both parts;
//   - *UnsupportedError (ErrUnsupported): a folder recognised but not run
//     (the SDXL refiner);
//   - *ugo.ShapeError from Resolve: a size the UNet cannot take, including
//     latent sizes that are not multiples of 2^(len(block_out_channels)-1)
//     from unet/config.json (Info.LatentMultiple), at full size or in the
//     low-resolution branch of Upsample Guidance;
//   - *ugo.MemoryError (ugo.ErrTooLarge) from Resolve: a request whose latents,
//     images and buffers would exceed ugo.MemoryLimit, with the bytes it
//     would need;
//   - the methods of a nil or unloaded *Model (what a failed Load returns)
//     return an error wrapping ugo.ErrNilDenoiser;
//   - during Generate, the sampler's *sampler.StepError (ugo.ErrNonFinite
//     for NaN or infinite predictions), ctx.Err(), and *onnx.RunError when
//     ONNX Runtime fails inside a graph.
//
// # What was and was not tested
//
// Real Stable Diffusion weights cannot be downloaded where ugo is developed,
// so nothing in this package has been run on a real SD checkpoint. Tested,
// end to end, on two tiny random-weight pipelines made by tools/sdtiny/gen.py
// (testdata/sdtiny) with the exact input and output names, ranks, element
// types and dynamic axes of diffusers' SD 1.5 ONNX export: fp32 with an int64
// timestep and external UNet weights (weights.pb), fp16 with float16
// everything and optimum-style config.json files; and on SDXL-shaped ones
// made by tools/sdtiny/gen_sdxl.py with optimum's SDXL signatures at tiny
// widths (xl: float32, int64 timestep [steps]; xl16: float16 text encoders
// and UNet with a rank-0 float16 timestep, float32 VAE; xlrefiner: the
// refiner's signature): conditioning assembly against the encoders run
// directly, time_ids per call (bit-equal to the UNet bound by hand),
// generation at 1x and at 2x with Upsample Guidance, CFG and tiled
// decoding. The tests cover loading
// and every missing-file and mismatched-part error, tokenization (on
// vocabularies the tests build, including transformers' CLIP test vocabulary
// and CLIP's published ids for "a photo of a cat"), text encoding against
// the graph run directly, the CFG arithmetic against direct UNet calls, the
// Upsample Guidance window and factors (low-resolution calls exactly on the
// steps with t >= (1-eta)*T, at the divided size; bit-identical predictions
// outside the window), tiled against whole decoding (equal to 1e-4 away
// from the seams, and everywhere when the overlap exceeds the decoder's
// receptive field), determinism for a seed, the seed-to-latents mapping
// (one torch.randn-compatible draw), cancellation, and allocations.
// Not tested: picture quality of any kind (random weights make noise
// pictures), agreement with diffusers' images on real weights, whether
// theta 1.2 / eta 0.6 suit 3x and 4x, real SD VAE tiling artefacts (GroupNorm
// statistics and attention differ per tile, unlike in the tiny VAE), GPU
// execution providers, and memory and speed at real model sizes.
package pipeline
