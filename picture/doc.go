// Package picture turns sample tensors into images: a batch of N x C x H x W
// float32 samples in [-1, 1] (the range diffusion models are trained on) is
// laid out as a grid and written as PNG. C = 1 gives grey images, C = 3 RGB.
//
// Values outside [-1, 1] are clipped; NaN becomes black, so a broken sample
// is visible rather than fatal.
package picture
