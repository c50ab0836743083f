// Package lowpass is ScaleDiff's low-pass filter LP (arXiv 2510.25818):
// antialiased bilinear down by a cutoff factor sf, then bilinear back up.
// Package upscale uses it for Latent Frequency Mixing (upscale.LowPass,
// upscale.MixFrequencies) and package guidance for Structure Guidance, so
// that both filter alike.
package lowpass
