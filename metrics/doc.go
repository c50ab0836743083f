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
// needed and the result is never complex.
//
// The estimate is biased upward for small sample counts; compare only
// distances computed with the same number of samples.
package metrics
