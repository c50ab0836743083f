// Package tiling runs a diffusion model on overlapping tiles of a sample
// and blends the predictions: the route to resolutions far above the
// training size when the model is an opaque graph (an ONNX export, perhaps
// with static spatial axes) whose cost or memory grows with the square of
// the pixel count, or which cannot run above its size at all.
//
// Tiled is ugo.Denoiser middleware, like the guidances of package
// guidance. It is not a guidance: it changes where the model runs, not
// what its prediction means, and it composes with them:
//
//	tiles, err := tiling.Tiled(model, tiling.Options{Size: [2]int{64, 64}})
//	guided, err := guidance.UpsampleHighLow(tiles, model, sched, opts)
//
// runs Upsample Guidance with its high-resolution branch in tiles and its
// low-resolution branch, at the training size, on the whole (pooled)
// sample: the tiles give the detail, the low-resolution call the global
// structure that tiles alone lack (tiled sampling without it repeats
// objects in every tile, as in MultiDiffusion).
//
// # Tiles and blending
//
// Tiles of Options.Size cover the last two axes (H, W). Without jitter they
// spread evenly from edge to edge with at least Options.Overlap between
// neighbours; with Options.Jitter the grid moves at every step (by an
// offset derived from the seed and the timestep) so that seams do not stay
// in place. The prediction at a position is the mean of the predictions of
// the tiles that cover it, weighted by a trapezoid (Linear) or a Gaussian
// (Gaussian) over each tile, the weights normalised to sum to 1. Since
// the weights are separable and the grid is a product of two axis grids,
// the normalisation is done per axis, with no buffer of the sample's size.
//
// # Regions
//
// Each tile call's context carries a ugo.Region: the tile's Offset in the
// sample and the sample's Size (composed with a region the caller's
// context already carries), for backends whose inputs depend on the part
// of the picture a call covers (SDXL's crop coordinates). A call covers one
// tile position for every sample of the batch, so that its region is
// exact; Options.Batch tile calls run at once, on separate goroutines.
//
// # Memory and allocation
//
// Buffers are Options.Batch input and output tiles per sample shape and
// concurrent caller, plus a few vectors per axis: memory does not grow with
// the sample beyond the sample itself and the caller's buffers. Once they
// exist, a call allocates nothing: each tile call's context is a
// ugo.RegionContext kept with the tile's buffers.
//
// # Errors
//
// Tiled refuses a nil model and invalid options; a call with a sample of
// the wrong rank, shape or layout is a *ugo.ShapeError, dst sharing memory
// with x is ugo.ErrAlias, a tile workspace beyond ugo.MemoryLimit is a
// *ugo.MemoryError, and a tile call's error is returned wrapped with the
// tile's position. Cancellation is checked between batches of tiles. A
// panic in the model is re-raised on the caller's goroutine.
package tiling
