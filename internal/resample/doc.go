// Package resample implements the two resampling operators of Upsample
// Guidance on the float32 backing slices of NCHW and NCFHW tensors:
//
//   - D, non-overlapping average pooling by integer factors per axis
//     ([Pooling.Pool]), and
//   - U, nearest-neighbour repetition by the same factors ([Pooling.Repeat] and
//     the fused update [Pooling.AddRepeated]).
//
// # Geometry
//
// A [Pooling] is built once for a high-resolution shape and a list of factors
// with [NewPooling]. The factors apply to the trailing axes: a two-element list
// [fH, fW] pools H and W of a rank-4 (N, C, H, W) or rank-5 (N, C, F, H, W)
// tensor; a three-element list [fF, fH, fW] also pools the frame axis F of a
// rank-5 tensor. Axes N and C are never pooled. k = fF*fH*fW is the number of
// elements averaged into one low-resolution element.
//
// # Exactness
//
// Pool sums each window in float64 and rounds once, so D(U(y)) == y holds
// bit for bit for every float32 y and every k below 2^29, even when 1/k is not
// a binary fraction (k = 3, 6, 9 ...).
//
// # Performance
//
// The kernels are single-threaded, allocation-free loops over contiguous rows
// with fast paths for the common factors 1 and 2 along W; repeated rows and
// frames are filled with copy. They are meant to run at memory bandwidth: see
// the benchmarks. Length mismatches are programmer errors and panic, as in
// gonum's floats package; user-facing validation happens in NewPooling.
package resample
