// Package modelcall holds what ugo's Denoiser middleware (packages guidance
// and tiling) shares: an argument check that allocates nothing on success, a
// cache of workspaces by sample shape that survives garbage collections, and
// model calls run on reusable helper goroutines, so that concurrent model
// calls allocate nothing per sampling step.
package modelcall
