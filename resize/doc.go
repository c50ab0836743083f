// Package resize resamples float32 images, latents and video frames (the
// last two axes, H and W, of NCHW and NCFHW tensors) with the usual
// strategies: nearest neighbour, bilinear, antialiased bilinear, bicubic,
// Lanczos and area averaging.
//
// It follows golang.org/x/image/draw: strategies are package values
// (Nearest, Bilinear, AntialiasBilinear, Bicubic, Lanczos3, Area) or a
// *Kernel of one's own, and a Strategy precomputes a Plan for one pair of
// sizes, whose weights are then reused for every plane and every call:
//
//	p, err := resize.Bicubic.Plan(128, 128, 64, 64) // 64x64 -> 128x128
//	if err != nil { ... }
//	err = p.Resize(dst, src) // dst [N, C, 128, 128], src [N, C, 64, 64]
//
// Plan.Scale works on backing slices (dst first, panicking on a length
// mismatch, as gonum's floats); Plan.Resize and To validate tensors and
// return errors.
//
// # Conventions
//
// Sample centres sit at half-integer positions (torch's align_corners=False,
// PIL's and OpenCV's convention): output sample i of n covers the source
// interval [i, i+1) times src/n. Consequences that the tests check:
//
//   - Nearest upsampling by an integer factor repeats each sample, and Area
//     downsampling by an integer factor averages blocks, so Area(Nearest(x))
//     == x exactly for integer factors (the U and D operators of Upsample
//     Guidance).
//   - Every strategy keeps a constant constant (weights are normalised) and
//     is the identity when the size does not change.
//   - Upsampling by an odd integer factor f puts output sample f*j + (f-1)/2
//     on the centre of source sample j; the interpolating kernels
//     (Bilinear, AntialiasBilinear, Bicubic, Lanczos3) reproduce the source
//     sample there.
//
// Which library each strategy matches (TestMatchesReferenceLibraries
// compares them with torch 1.13 and PIL on resizes up and down by
// testdata/reference.py: bit for bit with PIL's float32 mode, to 5e-7 with
// torch):
//
//	Nearest            PIL NEAREST, torch "nearest-exact"
//	Bilinear           torch "bilinear" (antialias=False): replicate edges, no antialiasing
//	AntialiasBilinear  PIL BILINEAR, torch "bilinear" with antialias=True
//	Bicubic            PIL BICUBIC (Catmull-Rom, a = -0.5), torch "bicubic" with antialias=True
//	Lanczos3           PIL LANCZOS
//	Area               OpenCV INTER_AREA; torch "area" (average pooling) for integer factors
//
// Kernels with Antialias are stretched by the scale factor when
// downsampling and drop the taps beyond an edge; kernels without it keep
// their width (and alias when downsampling) and replicate the edge samples.
//
// # Precision and performance
//
// Weights and sums are float64, rounded once per pass to float32. Resizing
// is separable: a horizontal pass into a pooled scratch plane, then a
// vertical pass that adds whole rows. Axes that do not change are skipped
// and single-tap axes (Nearest; Area upsampling by an integer factor) become
// gathers and row copies. Resizing allocates nothing once
// the plan's scratch pool is warm; a Plan is safe for concurrent use.
//
// Measured with go test -bench Scale ./resize on a 2-core x86-64 machine
// busy with another job (so on the slow side), one goroutine:
//
//	                        4x64x64->128x128   3x512x512->1024x1024   50x28x28->112x112
//	Nearest                     0.15 ms              9 ms                  1.1 ms
//	Area                        0.11 ms              8 ms                  0.7 ms
//	Bilinear                    0.74 ms             40 ms                  6.8 ms
//	AntialiasBilinear           0.83 ms             32 ms                  6.0 ms
//	Bicubic                     1.3 ms              60 ms                 10 ms
//	Lanczos3                    1.6 ms              51 ms                 15 ms
//
// An upscaling pipeline resizes once per stage, against seconds per
// sampling step for a real model.
//
// # Errors
//
// To and Plan.Resize refuse nil, zero, lazily transposed and column-major
// tensors (*ugo.ShapeError from ugo.CheckDense), non-positive sizes, kernels
// without a finite positive support, a dst that shares memory with src
// (ugo.ErrAlias) and results beyond ugo.MemoryLimit (*ugo.MemoryError).
// Scale, the allocation-free kernel over raw slices, panics on slices of
// the wrong length, as gonum's floats does: a programmer error. NaN and
// infinite inputs propagate into the output like any other value.
package resize
