#!/usr/bin/python3
"""Reference values for metrics.KID, in float64 numpy.

Run from the repository root:

    /usr/bin/python3 tools/goldens/kid_golden.py

Writes metrics/testdata/kid_golden.json: deterministic feature sets X and Y
(one subset covering all of Y, so no random draw is involved) and the
unbiased squared MMD with the polynomial kernel k(x, y) = (x.y/d + 1)^3, the
estimator of Binkowski et al., "Demystifying MMD GANs" (ICLR 2018), as the
common KID tools compute it for one subset of equal sizes:

    MMD^2_u = sum_{i!=j} k(x_i,x_j)/(m(m-1)) + sum_{i!=j} k(y_i,y_j)/(m(m-1))
              - 2 sum_{i,j} k(x_i,y_j)/(m m)

and, for sets of different sizes n and m, the same estimator with n(n-1),
m(m-1) and n m.
"""
import json

import numpy as np


def kernel(a, b):
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def mmd2_unbiased(x, y):
    n, m = len(x), len(y)
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
            + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * kxy.sum() / (n * m))


def main():
    rng = np.random.RandomState(20260)
    cases = []
    for name, n, m, d, shift in [("equal sizes", 40, 40, 8, 0.5), ("same distribution", 50, 50, 6, 0.0),
                                 ("different sizes", 30, 70, 5, 1.0)]:
        x = rng.randn(n, d).astype(np.float32)
        y = (rng.randn(m, d) * 1.2 + shift).astype(np.float32)
        cases.append({"name": name, "dim": d, "x": x.ravel().tolist(), "y": y.ravel().tolist(),
                      "mmd2": mmd2_unbiased(x.astype(np.float64), y.astype(np.float64))})
    with open("metrics/testdata/kid_golden.json", "w") as f:
        json.dump(cases, f)


if __name__ == "__main__":
    main()
