// Package picture turns sample tensors into images: a batch of N x C x H x W
// float32 samples in [-1, 1] (the range diffusion models are trained on) is
// laid out as a grid and written as PNG. C = 1 gives grey images, C = 3 RGB.
//
// Values outside [-1, 1] are clipped; NaN becomes black, so a broken sample
// is visible rather than fatal.
//
// # Errors
//
// Grid refuses tensors other than float32 N,C,H,W with 1 or 3 channels
// (*ugo.ShapeError for nil, zero and transposed ones), non-positive column
// counts, padding outside [0, 4096], pictures over 2^20 pixels on a side
// and over ugo.MemoryLimit (*ugo.MemoryError). SideBySide skips nil images.
package picture
