#!/usr/bin/python3
"""Torch reference runs of the fast samplers of package sampler.

Run from the repository root:

    nice -n 19 /usr/bin/python3 tools/goldens/sampler_ksamplers.py

Writes sampler/testdata/ksamplers_torch.json, which
sampler/ksamplers_golden_test.go compares sampler.Sample against.

diffusers is not installed here (Debian has only torch 1.13 and numpy), so
this script re-implements, in the same float32 torch / float64 numpy
arithmetic, what diffusers' DPMSolverMultistepScheduler,
EulerDiscreteScheduler and EulerAncestralDiscreteScheduler do in
set_timesteps and step, and the loop of a diffusers pipeline around them:

  * txt2img: latents = torch.randn(shape, generator) * init_noise_sigma,
    then per step model(scale_model_input(latents, t), t) and step(...,
    generator=generator), so the step noise continues the same generator;
  * img2img: noise = torch.randn(shape, generator), add_noise(x0, noise,
    timesteps[t_start]) with t_start = n - int(n * strength), then the steps
    from t_start on.

It was written from diffusers' documented algorithms; the published values
of diffusers' own tests, checked in sampler/golden_k_test.go, anchor both
implementations. The model is diffusers' test dummy, sample * t / (t + 1).
"""
import json
import math
import os

import numpy as np
import torch

OUT = os.path.join("sampler", "testdata", "ksamplers_torch.json")
SHAPE = (2, 4, 4, 4)


def alphas_cumprod(kind, T, beta_start, beta_end):
    if kind == "linear":
        betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float32)
    else:  # scaled_linear
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float32) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def base_timesteps(spacing, T, n, offset, dtype):
    if spacing == "linspace":
        return np.linspace(0, T - 1, n, dtype=dtype)[::-1].copy()
    if spacing == "leading":
        ratio = T // n
        ts = (np.arange(0, n) * ratio).round()[::-1].copy().astype(dtype)
        return ts + offset
    ratio = T / n
    ts = np.round(np.arange(T, 0, -ratio)).astype(dtype)[:n]
    return ts - 1


def sigma_to_t(sigma, log_sigmas):
    log_sigma = np.log(np.maximum(sigma, 1e-10))
    dists = log_sigma - log_sigmas[:, np.newaxis]
    low_idx = np.cumsum((dists >= 0), axis=0).argmax(axis=0).clip(max=log_sigmas.shape[0] - 2)
    high_idx = low_idx + 1
    low, high = log_sigmas[low_idx], log_sigmas[high_idx]
    w = np.clip((low - log_sigma) / (low - high), 0, 1)
    t = (1 - w) * low_idx + w * high_idx
    return t.reshape(sigma.shape)


def karras(sigma_min, sigma_max, n):
    rho = 7.0
    ramp = np.linspace(0, 1, n)
    min_inv, max_inv = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (max_inv + ramp * (min_inv - max_inv)) ** rho


class Euler:
    """EulerDiscreteScheduler (ancestral=False) and
    EulerAncestralDiscreteScheduler (ancestral=True)."""

    def __init__(self, ac, n, spacing="linspace", offset=0, karras_sigmas=False, pred="epsilon",
                 ancestral=False, s_churn=0.0, s_tmin=0.0, s_tmax=float("inf"), s_noise=1.0):
        T = len(ac)
        self.pred, self.ancestral = pred, ancestral
        self.s_churn, self.s_tmin, self.s_tmax, self.s_noise = s_churn, s_tmin, s_tmax, s_noise
        ts = base_timesteps(spacing, T, n, offset, np.float32)
        sig_all = np.array(((1 - ac) / ac) ** 0.5)
        log_sigmas = np.log(sig_all)
        sig = np.interp(ts, np.arange(0, T), sig_all)
        if karras_sigmas:
            sig = karras(sig[-1].item(), sig[0].item(), n)
            ts = np.array([sigma_to_t(s, log_sigmas) for s in sig])
        sig = np.concatenate([sig, [0.0]]).astype(np.float32)
        self.sigmas = torch.from_numpy(sig)
        self.timesteps = torch.from_numpy(ts.astype(np.float32))
        m = self.sigmas.max()
        self.init_noise_sigma = m if spacing in ("linspace", "trailing") else (m**2 + 1) ** 0.5

    def scale(self, x, i):
        return x / ((self.sigmas[i] ** 2 + 1) ** 0.5)

    def add_noise(self, x0, noise, i):
        return x0 + noise * self.sigmas[i]

    def x0(self, out, x, sigma, sigma_hat):
        if self.pred == "epsilon":
            return x - sigma_hat * out
        if self.pred == "v_prediction":
            return out * (-sigma / (sigma**2 + 1) ** 0.5) + (x / (sigma**2 + 1))
        return out

    def step(self, out, i, x, gen):
        sigma = self.sigmas[i]
        if self.ancestral:
            x0 = self.x0(out, x, sigma, sigma)
            s_from, s_to = self.sigmas[i], self.sigmas[i + 1]
            up = (s_to**2 * (s_from**2 - s_to**2) / s_from**2) ** 0.5
            down = (s_to**2 - up**2) ** 0.5
            d = (x - x0) / sigma
            prev = x + d * (down - sigma)
            noise = torch.randn(out.shape, generator=gen, dtype=out.dtype)
            return prev + noise * up
        n = len(self.timesteps)
        gamma = min(self.s_churn / n, 2**0.5 - 1) if self.s_tmin <= sigma <= self.s_tmax else 0.0
        sigma_hat = sigma * (gamma + 1)
        if gamma > 0:
            noise = torch.randn(out.shape, generator=gen, dtype=out.dtype)
            x = x + noise * self.s_noise * (sigma_hat**2 - sigma**2) ** 0.5
        x0 = self.x0(out, x, sigma, sigma_hat)
        d = (x - x0) / sigma_hat
        return x + d * (self.sigmas[i + 1] - sigma_hat)


class DPM:
    """DPMSolverMultistepScheduler, orders 1 and 2, dpmsolver++ and
    sde-dpmsolver++."""

    def __init__(self, ac, n, spacing="linspace", offset=0, karras_sigmas=False, pred="epsilon",
                 order=2, algorithm="dpmsolver++", solver_type="midpoint", lower_order_final=True,
                 euler_at_final=False, final="zero", thresholding=False, ratio=0.995, max_value=1.0):
        T = len(ac)
        self.pred, self.order, self.algorithm, self.solver_type = pred, order, algorithm, solver_type
        self.lower_order_final, self.euler_at_final, self.final = lower_order_final, euler_at_final, final
        self.thresholding, self.ratio, self.max_value = thresholding, ratio, max_value
        if spacing == "linspace":
            ts = np.linspace(0, T - 1, n + 1).round()[::-1][:-1].copy().astype(np.int64)
        elif spacing == "leading":
            ratio_ = T // (n + 1)
            ts = (np.arange(0, n + 1) * ratio_).round()[::-1][:-1].copy().astype(np.int64) + offset
        else:
            ts = np.arange(T, 0, -T / n).round().copy().astype(np.int64)[:n] - 1
        sig_all = np.array(((1 - ac) / ac) ** 0.5)
        log_sigmas = np.log(sig_all)
        if karras_sigmas:
            s = np.flip(sig_all).copy()
            sig = karras(s[-1].item(), s[0].item(), n)
            ts = np.array([sigma_to_t(v, log_sigmas) for v in sig]).round()
        else:
            sig = np.interp(ts, np.arange(0, T), sig_all)
        last = (((1 - ac[0]) / ac[0]) ** 0.5).item() if final == "sigma_min" else 0.0
        self.sigmas = torch.from_numpy(np.concatenate([sig, [last]]).astype(np.float32))
        self.timesteps = torch.from_numpy(ts).to(torch.int64)
        self.init_noise_sigma = 1.0
        self.history = None

    @staticmethod
    def alpha_sigma(sigma):
        a = 1 / ((sigma**2 + 1) ** 0.5)
        return a, sigma * a

    def scale(self, x, i):
        return x

    def add_noise(self, x0, noise, i):
        a, s = self.alpha_sigma(self.sigmas[i])
        return a * x0 + s * noise

    def threshold(self, x0):
        b = x0.shape[0]
        flat = x0.reshape(b, -1)
        s = torch.quantile(flat.abs(), self.ratio, dim=1)
        s = torch.clamp(s, min=1, max=self.max_value).unsqueeze(1)
        return (torch.clamp(flat, -s, s) / s).reshape(x0.shape)

    def step(self, out, i, x, gen):
        n = len(self.timesteps)
        a_s, s_s = self.alpha_sigma(self.sigmas[i])
        if self.pred == "epsilon":
            x0 = (x - s_s * out) / a_s
        elif self.pred == "v_prediction":
            x0 = a_s * x - s_s * out
        else:
            x0 = out
        if self.thresholding:
            x0 = self.threshold(x0)
        prev_x0, self.history = self.history, x0
        lower_final = i == n - 1 and (self.euler_at_final or (self.lower_order_final and n < 15) or self.final == "zero")
        sde = self.algorithm == "sde-dpmsolver++"
        noise = torch.randn(out.shape, generator=gen, dtype=torch.float32) if sde else None
        a_t, s_t = self.alpha_sigma(self.sigmas[i + 1])
        lam_t = torch.log(a_t) - torch.log(s_t)
        lam_s = torch.log(a_s) - torch.log(s_s)
        h = lam_t - lam_s
        if self.order == 1 or prev_x0 is None or lower_final:
            if sde:
                return (s_t / s_s * torch.exp(-h)) * x + (a_t * (1 - torch.exp(-2.0 * h))) * x0 \
                    + s_t * torch.sqrt(1.0 - torch.exp(-2 * h)) * noise
            return (s_t / s_s) * x - (a_t * (torch.exp(-h) - 1.0)) * x0
        a_p, s_p = self.alpha_sigma(self.sigmas[i - 1])
        lam_p = torch.log(a_p) - torch.log(s_p)
        r0 = (lam_s - lam_p) / h
        D0, D1 = x0, (1.0 / r0) * (x0 - prev_x0)
        if sde:
            base = (s_t / s_s * torch.exp(-h)) * x + (a_t * (1 - torch.exp(-2.0 * h))) * D0
            if self.solver_type == "midpoint":
                base = base + 0.5 * (a_t * (1 - torch.exp(-2.0 * h))) * D1
            else:
                base = base + (a_t * ((1.0 - torch.exp(-2.0 * h)) / (-2.0 * h) + 1.0)) * D1
            return base + s_t * torch.sqrt(1.0 - torch.exp(-2.0 * h)) * noise
        if self.solver_type == "midpoint":
            return (s_t / s_s) * x - (a_t * (torch.exp(-h) - 1.0)) * D0 - 0.5 * (a_t * (torch.exp(-h) - 1.0)) * D1
        return (s_t / s_s) * x - (a_t * (torch.exp(-h) - 1.0)) * D0 + (a_t * ((torch.exp(-h) - 1.0) / h + 1.0)) * D1


def dummy_model(x, t):
    return x * t / (t + 1)


def clean_sample():
    n = int(np.prod(SHAPE))
    return (torch.arange(n, dtype=torch.float32) / n - 0.5).reshape(SHAPE)


def run(case):
    ac = alphas_cumprod(case["betas"], case["T"], case["beta_start"], case["beta_end"])
    n, kw = case["steps"], dict(case["kwargs"])
    sched = DPM(ac, n, **kw) if case["solver"] == "dpm" else Euler(ac, n, ancestral=case["solver"] == "euler_a", **kw)
    gen = torch.Generator().manual_seed(case["seed"])
    strength = case.get("strength", 0)
    start = 0
    if strength > 0:
        start = n - int(n * strength)
        noise = torch.randn(SHAPE, generator=gen, dtype=torch.float32)
        x = sched.add_noise(clean_sample(), noise, start)
    else:
        x = torch.randn(SHAPE, generator=gen, dtype=torch.float32) * sched.init_noise_sigma
    for i in range(start, n):
        t = sched.timesteps[i]
        out = dummy_model(sched.scale(x, i), t)
        x = sched.step(out, i, x, gen)
    return {
        "name": case["name"],
        "timesteps": [float(v) for v in sched.timesteps.tolist()],
        "sigmas": [float(v) for v in sched.sigmas.tolist()],
        "init_noise_sigma": float(sched.init_noise_sigma),
        "sample": [float(v) for v in x.flatten().tolist()],
    }


SD = dict(betas="scaled_linear", T=1000, beta_start=0.00085, beta_end=0.012)
CASES = [
    dict(name="euler_linspace", solver="euler", steps=20, seed=0, kwargs={}, **SD),
    dict(name="euler_karras_leading", solver="euler", steps=25, seed=1,
         kwargs=dict(spacing="leading", offset=1, karras_sigmas=True), **SD),
    dict(name="euler_churn_trailing", solver="euler", steps=15, seed=2,
         kwargs=dict(spacing="trailing", s_churn=2.0, s_tmin=0.5, s_tmax=10.0, s_noise=1.003), **SD),
    dict(name="euler_v", solver="euler", steps=12, seed=3, kwargs=dict(pred="v_prediction"), **SD),
    dict(name="euler_a_linspace", solver="euler_a", steps=20, seed=4, kwargs={}, **SD),
    dict(name="euler_a_v_trailing", solver="euler_a", steps=12, seed=5,
         kwargs=dict(spacing="trailing", pred="v_prediction"), **SD),
    dict(name="euler_a_img2img", solver="euler_a", steps=20, seed=6, strength=0.5, kwargs={}, **SD),
    dict(name="dpm2m", solver="dpm", steps=25, seed=7, kwargs={}, **SD),
    dict(name="dpm2m_karras", solver="dpm", steps=20, seed=8, kwargs=dict(karras_sigmas=True), **SD),
    dict(name="dpm2m_heun_leading", solver="dpm", steps=12, seed=9,
         kwargs=dict(spacing="leading", offset=1, solver_type="heun", final="sigma_min"), **SD),
    dict(name="dpm2m_sde_karras", solver="dpm", steps=20, seed=10,
         kwargs=dict(algorithm="sde-dpmsolver++", karras_sigmas=True), **SD),
    dict(name="dpm2m_threshold_sample", solver="dpm", steps=10, seed=11,
         kwargs=dict(pred="sample", thresholding=True, ratio=0.9, max_value=1.5, spacing="trailing"),
         betas="linear", T=1000, beta_start=0.0001, beta_end=0.02),
    dict(name="dpm1_img2img", solver="dpm", steps=20, seed=12, strength=0.6, kwargs=dict(order=1), **SD),
    dict(name="dpm2m_img2img", solver="dpm", steps=20, seed=13, strength=0.6, kwargs={}, **SD),
]


def main():
    torch.set_num_threads(1)
    out = {
        "generator": "tools/goldens/sampler_ksamplers.py",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "shape": list(SHAPE),
        "cases": [run(c) for c in CASES],
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", OUT, len(out["cases"]), "cases")


if __name__ == "__main__":
    main()
