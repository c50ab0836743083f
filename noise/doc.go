// Package noise provides reproducible standard-normal noise for diffusion
// samplers: the same seed gives the same picture here as in diffusers, the
// AUTOMATIC1111 webui or stable-diffusion.cpp.
//
// # Sources
//
// A Source fills a []float32 with independent N(0, 1) values. Three are
// provided:
//
//   - TorchCPU equals torch.manual_seed(seed) followed by torch.randn on the
//     CPU, which is how diffusers draws initial latents when it is given a
//     CPU generator: torch.randn(shape, generator=torch.manual_seed(seed)).
//     It is bit-exact with torch's AVX2 kernel (x86-64, the default), and
//     within 2 units in the last place of its portable kernel (TorchGeneric).
//   - Philox equals torch.randn on a CUDA device as reproduced by the
//     AUTOMATIC1111 webui ("NV" random source) and stable-diffusion.cpp
//     (--rng cuda).
//   - PCG is the fast default when no other tool needs to be matched.
//
// Sources keep their own state and are not safe for concurrent use.
//
// # Calls matter
//
// For the torch-compatible sources, one Normal call is one torch.randn call.
// torch.randn(24) followed by torch.randn(40) is not torch.randn(64): TorchCPU
// treats requests below 16 values and requests of 16 or more differently and
// redraws the last 16 values of a request whose length is not a multiple of
// 16, and Philox restarts its counter on every call. Always draw a whole tensor
// with one call, as FillTensor and NewTensor do; torch.randn(2, 4, 8, 8)
// equals one Normal call over 512 values.
//
// # Draw order for samplers
//
// A sampler that wants to reproduce a diffusers run from a seed draws from a
// single source in the order diffusers does:
//
//  1. the initial latents, one call over the whole batch tensor (N, C, H, W),
//     before the first step;
//  2. then, for each step that adds noise, one call over a tensor of the
//     sample's shape, in step order: every DDPM step except the last one
//     (t = 0 adds no noise, and diffusers draws nothing there), and every
//     DDIM step when eta > 0. Deterministic steps (DDIM with eta = 0) draw
//     nothing.
//
// diffusers draws step noise with randn_tensor(shape, generator=g), which is
// torch.randn on the generator's device, so with a CPU generator every draw
// above is a TorchCPU.Normal call. Pipelines that pass one generator per
// batch element draw each element's latents separately; reproduce them with
// one source per element: PerImage(TorchSeeds(seeds...)...) splits every
// call over a batch into one call per element, each from its own source, so
// an image's noise does not depend on the batch it is drawn in.
//
// # Saving and restoring a stream
//
// Every source implements encoding.BinaryMarshaler and
// encoding.BinaryUnmarshaler (as math/rand/v2's PCG does): MarshalBinary
// saves the whole state, UnmarshalBinary restores it into a source of the
// same kind, so that a run resumed in another process continues the same
// stream of noise. A state that is not one this package wrote for that kind
// of source is refused with an error wrapping ErrState, and the source is
// left unchanged.
//
// # Tensors
//
// FillTensor fills an existing float32 *tensor.Dense in row-major order;
// NewTensor allocates one. Both return errors, never panic, on bad input:
// a nil Source (typed nils included), a nil, zero, view, lazily transposed
// or column-major tensor, a shape with non-positive or too many elements.
// PerImage panics on an empty or nil source list and on a Normal length
// that does not split into its images: programmer errors, documented there.
package noise
