#!/usr/bin/python3
"""Reference values for package noise, from Debian's torch 1.13 on CPU.

Run from the repository root (twice, once per torch CPU kernel):

    nice /usr/bin/python3 tools/goldens/noise_goldens.py avx2
    ATEN_CPU_CAPABILITY=default nice /usr/bin/python3 tools/goldens/noise_goldens.py generic

Writes noise/testdata/torch_cpu_<kernel>.txt: one line per torch.randn call,

    seed=<seed> call=<k> n=<n> <float32 bits as 8 hex digits> ...

where call counts torch.randn calls on one generator since
torch.manual_seed(seed), and noise/testdata/torch_cpu_<kernel>_big.bin: the
little-endian float32 bits of torch.manual_seed(0); torch.randn(20011).

torch picks the kernel at start-up: AVX2 by default on x86-64 machines with
AVX2, the portable one with ATEN_CPU_CAPABILITY=default. The script checks
that the environment matches the kernel named on the command line.
"""
import os
import struct
import sys

import torch

SIZES = [1, 2, 3, 15, 16, 17, 31, 32, 100, 1000]
SEEDS = [0, 42, 2**32 + 5, 5, 123456789]


def bits(t):
    return " ".join("%08x" % struct.unpack("<I", struct.pack("<f", v))[0] for v in t.tolist())


PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)


def philox_randn(seed, offset, n):
    import numpy as np
    m32 = np.uint64(0xFFFFFFFF)
    c0 = np.full(n, offset, dtype=np.uint64)
    c1 = np.zeros(n, dtype=np.uint64)
    c2 = np.arange(n, dtype=np.uint64)
    c3 = np.zeros(n, dtype=np.uint64)
    k0, k1 = seed & 0xFFFFFFFF, seed >> 32
    for r in range(10):
        if r:
            k0 = (k0 + PHILOX_W[0]) & 0xFFFFFFFF
            k1 = (k1 + PHILOX_W[1]) & 0xFFFFFFFF
        p0 = c0 * np.uint64(PHILOX_M[0])
        p1 = c2 * np.uint64(PHILOX_M[1])
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p1 & m32,
                          (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & m32)
    inv = np.float64(np.float32(2.3283064e-10))
    inv2pi = np.float64(np.float32(2.3283064e-10 * 6.2831855))
    u = c0.astype(np.float64) * inv + inv / 2
    v = c1.astype(np.float64) * inv2pi + inv2pi / 2
    return torch.from_numpy((np.sqrt(-2.0 * np.log(u)) * np.sin(v)).astype(np.float32))


def philox_main():
    out = []
    for seed in [0, 42, 2**32 + 5, 2**63 + 1]:
        for k, n in enumerate([1, 3, 16, 17, 100, 1000]):
            out.append("seed=%d call=%d n=%d %s" % (seed, k, n, bits(philox_randn(seed, k, n))))
    with open("noise/testdata/philox_webui.txt", "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    kernel = sys.argv[1]
    if kernel == "philox":
        philox_main()
        return
    generic = os.environ.get("ATEN_CPU_CAPABILITY") == "default"
    if (kernel == "generic") != generic:
        sys.exit("kernel %s needs ATEN_CPU_CAPABILITY=default iff generic" % kernel)
    out = []
    # Successive calls on one generator: covers both regimes, the cached
    # second Box-Muller value carried across calls, and the tail redraw.
    for seed in SEEDS:
        torch.manual_seed(seed)
        for k, n in enumerate(SIZES + SIZES[::-1]):
            out.append("seed=%d call=%d n=%d %s" % (seed, k, n, bits(torch.randn(n))))
    # A fresh generator per size.
    for n in SIZES:
        torch.manual_seed(7)
        out.append("seed=7 call=0 n=%d %s" % (n, bits(torch.randn(n))))
    # Shapes are flattened: randn(2, 3, 4) == randn(24).
    torch.manual_seed(0)
    out.append("seed=0 call=0 n=24 %s" % bits(torch.randn(2, 3, 4).flatten()))
    path = "noise/testdata/torch_cpu_%s.txt" % kernel
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    torch.manual_seed(0)
    big = torch.randn(20011)
    with open("noise/testdata/torch_cpu_%s_big.bin" % kernel, "wb") as f:
        f.write(big.numpy().astype("<f4").tobytes())
    print("wrote", path)


if __name__ == "__main__":
    main()
