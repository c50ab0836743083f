// Package analytic provides an exactly solvable diffusion "model" for tests:
// the optimal noise predictor for a periodic, stationary Gaussian random field
// with a known covariance.
//
// # The field
//
// A [Field] is a zero-mean, unit-variance Gaussian random field on a periodic
// grid whose covariance between two elements d pixels apart is the separable
// Gaussian
//
//	C(d) = prod_i exp(-d_i^2 / (2 l_i^2))
//
// periodised over the grid, with one correlation length l_i per pooled axis
// (H and W, optionally F). Batch elements and channels are independent
// fields. A periodic stationary covariance is diagonalised by the discrete
// Fourier transform: with a unitary DFT, the coefficient at frequency f has
// variance S(f), the eigenvalue of the circulant covariance, and distinct
// frequencies are uncorrelated.
//
// # The denoiser
//
// For x_t = sqrt(abar) x_0 + sqrt(1-abar) eps, the minimum-mean-square-error
// noise prediction is, frequency by frequency,
//
//	E[eps | x_t](f) = sqrt(1-abar) / (abar*S(f) + 1 - abar) * x_t(f).
//
// [Denoiser] evaluates exactly this with gonum's FFT. Like a trained
// convolutional network it is defined in pixels, not in fractions of the
// image: evaluated on a grid of any size it is the exact predictor for a field
// with correlation length l pixels on that grid. Sampling it at twice its
// "training" grid therefore reproduces the failure mode Upsample Guidance
// addresses: content keeps its pixel scale instead of growing with the
// canvas.
//
// # Measuring
//
// [CorrelationLength] estimates the correlation length of samples along one
// axis from their empirical autocorrelation, the statistic the guidance tests
// compare.
package analytic
