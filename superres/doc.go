// Package superres runs pretrained super-resolution networks (ESRGAN-type
// models exported to ONNX) on diffusion samples, and provides the
// upscale.Stage that puts them in an upscaling pipeline: a traditional
// upscaler enlarges, then upscale.Refine (SDEdit, optionally with Upsample
// Guidance and Structure Guidance) repairs.
//
// # Models
//
// Open loads an ONNX graph with one image input and one image output and
// the Options that describe it: the factor (Scale), the layout (NHWC for
// Keras and TensorFlow.js models, NCHW for PyTorch exports), the number of
// channels (RGB or grey) and the value range ([0, 255] by default).
// Model.Upscale and Model.UpscaleTo take samples [N, C, H, W] in
// Options.SampleRange ([-1, 1] by default, the range of pixel diffusion
// models and of VAE-decoded images) and return them upscaled, mapped back to
// that range and clipped to the model's. Grey samples (C = 1) go through an
// RGB model as three equal channels, and the output's channels are averaged
// back to one.
//
// The repository ships UpscalerJS's esrgan-slim models (MIT; scales 2, 3, 4
// and 8; residual dense networks, about 230,000 parameters each), converted
// from their TensorFlow.js files by tools/esrgan (`make esrgan` re-creates
// them), as testdata/models/esrgan_slim_x{2,3,4,8}.onnx:
//
//	m, err := superres.Open("testdata/models/esrgan_slim_x4.onnx", superres.Options{Scale: 4})
//	if err != nil { ... }
//	defer m.Close()
//	big, err := m.Upscale(ctx, samples) // [N, C, 4H, 4W]
//
// # Tiling
//
// Large inputs are cut into square cores of Options.Tile input pixels, each
// run with Options.Overlap pixels of context on every side (where the image
// has them), keeping only the core's output. Memory then depends on the
// tile size and Options.Batch, not on the image size. A convolutional
// network sees only a bounded neighbourhood of each pixel (10 input pixels
// for esrgan-slim), so with an overlap at least that radius the tiled result
// equals the whole-image one to float rounding: the tests check it
// exactly for a network in Go and to 1.2e-4 (of 255) for the ONNX models.
//
// # Pipelines
//
// Stage is an upscale.Stage. Before an upscale.Refine of the size it
// produces, the refinement starts from the network's output (Refine's own
// resize is then the identity):
//
//	outs, err := upscale.Run(ctx, s, nil,
//		upscale.Generate{Height: 28, Width: 28},
//		superres.Stage{Model: m},
//		upscale.Refine{Height: 112, Width: 112, Strength: 0.3,
//			Structure: &guidance.StructureOptions{}})
//
// With a Codec the stage decodes latents, upscales the images and encodes
// them again.
//
// # What the shipped models do
//
// The conversion is exact: the ONNX models equal a NumPy forward pass of the
// Keras graphs to 1.2e-4 (values in [0, 255]) and reproduce the upscaled
// image UpscalerJS ships with the package to 8-bit rounding. As restorers
// the slim models are modest: on five real photographs downscaled by 2, 3,
// 4 and 8 with a bicubic filter they score within 0.8 dB of bicubic
// interpolation in PSNR (on average 0.3 dB below at x2, about equal at x3
// and x4, 0.5 dB below at x8), above it on 3 of the 20 pairs (the README's
// table; tools/esrgan/evaluate.py).
package superres
