#!/usr/bin/python3
"""Regenerate diffusers_goldens.json: betas, alphas_cumprod and inference
timesteps computed with PyTorch and NumPy following the code of diffusers'
DDPMScheduler / DDIMScheduler (__init__, betas_for_alpha_bar,
rescale_zero_terminal_snr, set_timesteps). diffusers itself is not needed.

Run with Debian's interpreter (it has torch and numpy):
    /usr/bin/python3 gen_diffusers.py > diffusers_goldens.json
or `go test ./schedule -run Diffusers -update`, which runs this script.
"""
import json
import math
import struct
import sys

import numpy as np
import torch


def bits(t):
    """float32 tensor -> list of IEEE-754 bit patterns (exact)."""
    return [struct.unpack("<I", struct.pack("<f", float(v)))[0] for v in t.tolist()]


def alpha_bar_cosine(u):
    return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2


def cosine_betas(T, max_beta=0.999):
    out = []
    for i in range(T):
        out.append(min(1 - alpha_bar_cosine((i + 1) / T) / alpha_bar_cosine(i / T), max_beta))
    return torch.tensor(out, dtype=torch.float32)


def rescale(betas):
    alphas = 1.0 - betas
    abar = torch.cumprod(alphas, dim=0)
    sq = abar.sqrt()
    s0 = sq[0].clone()
    sT = sq[-1].clone()
    sq -= sT
    sq *= s0 / (s0 - sT)
    abar = sq ** 2
    alphas = torch.cat([abar[0:1], abar[1:] / abar[:-1]])
    return 1 - alphas


def make_betas(schedule, T, start, end, trained=None):
    if trained is not None:
        return torch.tensor(trained, dtype=torch.float32)
    if schedule == "linear":
        return torch.linspace(start, end, T, dtype=torch.float32)
    if schedule == "scaled_linear":
        return torch.linspace(start ** 0.5, end ** 0.5, T, dtype=torch.float32) ** 2
    if schedule == "squaredcos_cap_v2":
        return cosine_betas(T)
    if schedule == "sigmoid":
        b = torch.linspace(-6, 6, T)
        return torch.sigmoid(b) * (end - start) + start
    raise ValueError(schedule)


SCHEDULES = [
    ("linear", 1000, 0.0001, 0.02, False),
    ("scaled_linear", 1000, 0.00085, 0.012, False),
    ("squaredcos_cap_v2", 1000, 0, 0, False),
    ("sigmoid", 1000, 0.0001, 0.02, False),
    ("linear", 1000, 0.0001, 0.02, True),
    ("scaled_linear", 1000, 0.00085, 0.012, True),
    ("squaredcos_cap_v2", 1000, 0, 0, True),
    ("scaled_linear", 1000, 0.0001, 0.02, False),
    ("linear", 1001, 0.0001, 0.02, False),
    ("linear", 20, 0.001, 0.2, False),
    ("scaled_linear", 77, 0.001, 0.05, False),
    ("linear", 10, 0.0001, 0.5, False),
    ("linear", 2, 0.0001, 0.02, False),
    ("linear", 1, 0.0001, 0.02, False),
    ("squaredcos_cap_v2", 50, 0, 0, False),
    ("sigmoid", 333, 0.0003, 0.035, False),
]

TRAINED = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0]


def timesteps(spacing, T, n, offset):
    if spacing == "linspace":
        return np.linspace(0, T - 1, n).round()[::-1].copy().astype(np.int64)
    if spacing == "leading":
        ratio = T // n
        ts = (np.arange(0, n) * ratio).round()[::-1].copy().astype(np.int64)
        return ts + offset
    if spacing == "trailing":
        ratio = T / n
        ts = np.round(np.arange(T, 0, -ratio)).astype(np.int64)
        return ts - 1
    raise ValueError(spacing)


def main():
    schedules = []
    for name, T, start, end, rz in SCHEDULES:
        b = make_betas(name, T, start, end)
        if rz:
            b = rescale(b)
        ac = torch.cumprod(1.0 - b, dim=0)
        schedules.append(dict(beta_schedule=name, T=T, beta_start=start, beta_end=end,
                              rescale_betas_zero_snr=rz, betas=bits(b), alphas_cumprod=bits(ac)))
    b = make_betas(None, len(TRAINED), 0, 0, TRAINED)
    schedules.append(dict(beta_schedule="trained_betas", T=len(TRAINED), trained_betas=TRAINED,
                          rescale_betas_zero_snr=False, betas=bits(b),
                          alphas_cumprod=bits(torch.cumprod(1.0 - b, dim=0))))

    steps = []
    ns = [1, 2, 3, 4, 5, 7, 10, 13, 15, 20, 25, 29, 30, 31, 50, 64, 100]
    for T in [1, 2, 7, 50, 999, 1000, 4000]:
        for spacing in ["leading", "trailing", "linspace"]:
            for offset in ([0, 1] if spacing == "leading" else [0]):
                for n in sorted(set([k for k in ns if k <= T] + ([k for k in range(1, T + 1)] if T <= 50 else []))):
                    if offset and (T // n) * (n - 1) + offset > T - 1:
                        continue
                    ts = timesteps(spacing, T, n, offset)
                    steps.append(dict(T=T, n=n, spacing=spacing, offset=offset, timesteps=ts.tolist()))
    # Whole sweeps n = 1..T, as checksums: for each n the length of the
    # NumPy result and sum over i < n of (i+1)*ts[i].
    sweeps = []
    for T in [999, 1000]:
        for spacing in ["leading", "trailing", "linspace"]:
            lens, sums = [], []
            for n in range(1, T + 1):
                ts = timesteps(spacing, T, n, 0)
                lens.append(len(ts))
                sums.append(int(sum((i + 1) * int(v) for i, v in enumerate(ts[:n]))))
            sweeps.append(dict(T=T, spacing=spacing, len=lens, weighted_sum=sums))
    json.dump(dict(generator="gen_diffusers.py", torch=torch.__version__, numpy=np.__version__,
                   cpu_capability=torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else "",
                   schedules=schedules, timesteps=steps, sweeps=sweeps), sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
