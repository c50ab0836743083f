// Package metrics measures sample quality the way diffusion papers do.
//
// # Frechet distance
//
// The Frechet distance between two sets of feature vectors (FID when the
// features come from Inception-v3; here any classifier's penultimate layer)
// fits a Gaussian to each set and returns
//
//	FD = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))
//
// (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a
// Local Nash Equilibrium", 2017). The trace of the matrix square root is
// computed from the eigenvalues of the symmetric matrix S1^(1/2) S2 S1^(1/2),
// which has the same spectrum as S1 S2, so no non-symmetric square root is
// needed and the result is never complex. A FrechetReference computes the
// reference's square root once for many distances against it.
//
// The estimate is biased upward for small sample counts; compare only
// distances computed with the same number of samples.
//
// # Kernel inception distance
//
// KID (Binkowski et al., "Demystifying MMD GANs", 2018) is the unbiased
// estimate of the squared maximum mean discrepancy between the two feature
// distributions with the kernel k(x, y) = (x.y/dim + 1)^3, averaged over
// random subsets of the reference. Unlike FD it has no bias in the number of
// samples, so it can be near zero or slightly negative for matching
// distributions. A KIDReference holds the subsets; KIDSample.KID evaluates a
// generated set under any weighting of its vectors without new kernel
// evaluations, which makes bootstrap intervals cheap.
//
// # Error bars
//
// Bootstrap returns a bootstrap confidence interval of any statistic of n
// items (percentile, basic or normal), handing the statistic each resample as
// per-item multiplicities; FitGaussianWeighted and KIDSample.KID take them
// directly. The Frechet distance of a resample is biased upward (repeated
// items shrink its spread), so its percentile interval sits above the
// estimate; the Normal method (estimate -+ z bootstrap standard errors) keeps
// the interval around it.
//
// # Errors
//
// Fits refuse NaN or infinite features (wrapping ugo.ErrNonFinite),
// dimensions that do not divide the data, fewer than two vectors and
// covariances beyond ugo.MemoryLimit (*ugo.MemoryError); distances refuse
// nil Gaussians, Gaussians without dimensions or with a covariance of
// another size, non-finite means or covariances, and mismatched
// dimensions.
package metrics
