"""PyTorch eager reference for ugo's DDIM + Upsample Guidance sampler.

Runs, in plain PyTorch on the CPU, the sampler that examples/bench runs in Go
on ONNX Runtime, on the same weights and from the same initial noise, and
compares the two:

  * the model: tools/train/unet.py's UNet with the weights of the ONNX file
    examples/bench used (its initializers; GroupNorm affine parameters, which
    the exporter folds into Mul/Add constants, are found by walking the
    graph), or with the EMA weights of a training checkpoint (--weights
    ckpt.pt);
  * the initial noise: image i of a batch is torch.manual_seed(seed + i);
    torch.randn(1, 1, S, S), which the Go side reproduces bit for bit with
    noise.NewTorchCPU;
  * the sampler: diffusers' DDIMScheduler defaults (linear betas 1e-4..0.02,
    T = 1000, leading spacing, clip_sample on, set_alpha_to_one on, eta 0)
    with use_clipped_model_output (the noise re-derived from the clipped x0),
    as the demo runs it, written out in float32 torch ops;
  * Upsample Guidance (arXiv 2404.01709) with ugo's defaults (theta 1, on for
    the whole run, continuous SNR-matched time tau, power adjustment): per
    step, eps + U(eps(D(x)/sqrt(P_t), tau)/sqrt(k) - D(eps)) with D average
    pooling and U nearest repetition by the factor f, k = f*f, then the
    block-wise x0 clamp of ClipSampleRange 1. The two model calls run one
    after the other, as in a typical eager implementation.

Usage, after `go run ./examples/bench ... -dump DIR`:

    /usr/bin/python3 tools/reference/reference.py --go DIR [--runs R] [--threads T]

It reads DIR/bench.json (model path, sizes, batch, steps, seed, threads, the
Go timings) and the Go samples, times the same settings the same way (median
over interleaved runs of the wall time of one batch, divided by the batch
size, noise generation included), and prints a Markdown table with the
max abs difference of the final samples and the time ratio torch / Go.
With --save it also writes the torch samples as torch_SIZE_MODE.npy into DIR.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
from unet import UNet  # noqa: E402

T = 1000
BETA_START, BETA_END = 1e-4, 0.02


# ---------------------------------------------------------------- weights

def unet_for(shapes):
    """Builds a UNet whose channel widths fit a name -> shape mapping."""
    c0, cin = shapes["inp.weight"][0], shapes["inp.weight"][1]
    c1 = shapes["d1.c1.weight"][0]
    c2 = shapes["m1.c1.weight"][0]
    tdim = shapes["temb.0.weight"][0]
    return UNet(ch=(c0, c1, c2), tdim=tdim, in_ch=cin)


def groupnorm_order(model, size=28):
    """Names of the GroupNorm modules in the order a forward pass runs them."""
    names = {m: n for n, m in model.named_modules()}
    order, hooks = [], []
    for m in model.modules():
        if isinstance(m, nn.GroupNorm):
            hooks.append(m.register_forward_hook(lambda mod, i, o: order.append(names[mod])))
    with torch.no_grad():
        model(torch.zeros(1, model.inp.in_channels, size, size), torch.zeros(1))
    for h in hooks:
        h.remove()
    return order


def load_onnx_weights(path):
    """Rebuilds the UNet from the initializers of an ONNX export."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(path).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    model = unet_for({k: v.shape for k, v in inits.items()})
    state = {}
    for key, ref in model.state_dict().items():
        if key in inits:
            if tuple(inits[key].shape) != tuple(ref.shape):
                raise ValueError(f"{path}: {key} has shape {inits[key].shape}, want {tuple(ref.shape)}")
            state[key] = torch.from_numpy(inits[key].copy())

    # GroupNorm is exported as InstanceNormalization -> Reshape -> Mul(weight)
    # -> Add(bias), in execution order; the weight and bias are [C, 1, 1].
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def follow(name, op):
        """First node of type op downstream of tensor name that takes an initializer."""
        frontier, seen = [name], set()
        for _ in range(4):
            nxt = []
            for tname in frontier:
                for node in consumers.get(tname, []):
                    if id(node) in seen:
                        continue
                    seen.add(id(node))
                    if node.op_type == op:
                        const = [i for i in node.input if i in inits]
                        if const:
                            return node, inits[const[0]]
                    nxt.extend(node.output)
            frontier = nxt
        raise ValueError(f"{path}: no {op} with a constant after {name}")

    norms = [n for n in graph.node if n.op_type == "InstanceNormalization"]
    order = groupnorm_order(model)
    if len(norms) != len(order):
        raise ValueError(f"{path}: {len(norms)} InstanceNormalization nodes, the UNet has {len(order)} GroupNorms")
    for node, name in zip(norms, order):
        mul, w = follow(node.output[0], "Mul")
        _, b = follow(mul.output[0], "Add")
        state[name + ".weight"] = torch.from_numpy(w.reshape(-1).copy())
        state[name + ".bias"] = torch.from_numpy(b.reshape(-1).copy())
    model.load_state_dict(state, strict=True)  # every parameter must be found
    return model


def load_checkpoint_weights(path):
    """Rebuilds the UNet from the EMA weights of a training checkpoint."""
    ckpt = torch.load(path, map_location="cpu")
    state = ckpt["ema"]
    model = unet_for({k: tuple(v.shape) for k, v in state.items()})
    model.load_state_dict(state, strict=True)
    return model


# ---------------------------------------------------------------- schedule

class Schedule:
    """diffusers' linear schedule and ugo's SNR matching (schedule.MatchedTime)."""

    def __init__(self):
        betas = torch.linspace(BETA_START, BETA_END, T, dtype=torch.float32)
        self.abar = torch.cumprod(1.0 - betas, dim=0)  # float32, as diffusers
        a = self.abar.double().numpy()
        lsnr = np.log(a) - np.log1p(-a)
        self.lsnr = np.minimum.accumulate(lsnr)  # ugo guards monotonicity

    def matched_time(self, t, k):
        """Continuous tau with SNR(tau) = k * SNR(t), log SNR interpolated linearly."""
        target = self.lsnr[t] + math.log(k)
        i = int(np.count_nonzero(self.lsnr >= target)) - 1  # last step with lsnr >= target
        if i < 0:
            tau = 0.0
        elif i == T - 1:
            tau = float(T - 1)
        else:
            l0, l1 = self.lsnr[i], self.lsnr[i + 1]
            tau = i + min(max((l0 - target) / (l0 - l1), 0.0), 1.0)
        return min(tau, float(t))

    def power_scale(self, t, k):
        """1 / sqrt(P_t), P_t = abar_t + (1 - abar_t)/k, as float32."""
        a = float(self.abar[t])
        return float(np.float32(1 / math.sqrt(min(a + (1 - a) / k, 1.0))))


def ddim_timesteps(steps):
    """diffusers' DDIMScheduler.set_timesteps with leading spacing, offset 0."""
    ratio = T // steps
    return (np.arange(0, steps) * ratio).round()[::-1].astype(np.int64), ratio


# ---------------------------------------------------------------- sampler

def initial_noise(seeds, size):
    xs = []
    for s in seeds:
        torch.manual_seed(s)
        xs.append(torch.randn(1, 1, size, size))
    return torch.cat(xs)


def predict(model, sched, x, t, factor, guided):
    n = x.shape[0]
    eps = model(x, torch.full((n,), float(t)))
    if not guided:
        return eps
    k = factor * factor
    tau = sched.matched_time(int(t), k)
    low = F.avg_pool2d(x, factor) * sched.power_scale(int(t), k)
    eps_low = model(low, torch.full((n,), tau, dtype=torch.float32))
    g = eps_low * np.float32(1 / math.sqrt(k)) - F.avg_pool2d(eps, factor)
    eps = eps + up(g, factor)
    return block_clamp_eps(x, eps, sched.abar[int(t)], factor)


def up(v, f):
    """Nearest repetition by f on both image axes (U)."""
    return v.repeat_interleave(f, 2).repeat_interleave(f, 3)


def block_clamp_eps(x, eps, at, f, r=1.0):
    """guidance.UpsampleOptions.ClipSampleRange written out independently:
    the x0 that eps implies is clamped per f x f block (block mean clamped to
    [-r, r], deviations from the mean scaled down just enough to fit) and eps
    rewritten to imply it, on the elements that change."""
    a, s = at ** 0.5, (1 - at) ** 0.5
    x0 = (x - s * eps) / a
    m = F.avg_pool2d(x0, f)
    mc, um = up(m.clamp(-r, r), f), up(m, f)
    d = x0 - um
    cand = mc + d
    one = torch.ones_like(x0)
    scale = torch.where(cand > r, (r - mc) / d, torch.where(cand < -r, (-r - mc) / d, one))
    scale = torch.where((x0 > r) | (x0 < -r), scale, one)  # only out-of-range elements limit a block
    sb = up(-F.max_pool2d(-scale, f), f).clamp(min=0)
    x0c = (mc + sb * d).clamp(-r, r)
    moved = ((sb < 1) | (um > r) | (um < -r)) & (x0c != x0)
    return torch.where(moved, (x - a * x0c) / s, eps)


def sample(model, sched, seeds, size, steps, guided):
    """DDIM (eta 0, clip_sample, set_alpha_to_one, use_clipped_model_output)
    from per-image seeds."""
    factor = size // 28
    x = initial_noise(seeds, size)
    ts, ratio = ddim_timesteps(steps)
    one = torch.tensor(1.0)
    for t in ts:
        eps = predict(model, sched, x, t, factor, guided)
        prev = t - ratio
        at = sched.abar[t]
        ap = sched.abar[prev] if prev >= 0 else one
        x0 = ((x - (1 - at) ** 0.5 * eps) / at ** 0.5).clamp(-1, 1)
        eps = (x - at ** 0.5 * x0) / (1 - at) ** 0.5  # use_clipped_model_output
        x = ap ** 0.5 * x0 + (1 - ap) ** 0.5 * eps
    return x


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--go", required=True, help="folder written by examples/bench -dump")
    ap.add_argument("--weights", help="ONNX model or training checkpoint (default: the model in bench.json)")
    ap.add_argument("--runs", type=int, help="timed runs per setting (default: as the Go side)")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: as the Go side, else all CPUs)")
    ap.add_argument("--save", action="store_true", help="write torch_SIZE_MODE.npy into the --go folder")
    args = ap.parse_args()

    with open(os.path.join(args.go, "bench.json")) as f:
        bench = json.load(f)
    if bench.get("theta", 1) != 1 or bench.get("eta", 1) != 1 or bench.get("time_matching", "continuous") != "continuous":
        sys.exit("reference.py implements theta 1, eta 1, continuous time matching only")
    threads = args.threads or bench.get("threads") or os.cpu_count()
    torch.set_num_threads(threads)
    runs = args.runs or bench["runs"]
    weights = args.weights or bench["model"]
    model = load_checkpoint_weights(weights) if weights.endswith((".pt", ".pth")) else load_onnx_weights(weights)
    model.eval()
    sched = Schedule()
    n, steps = bench["n"], bench["steps"]
    seeds = [bench["seed"] + i for i in range(n)]
    go = {(r["size"], r["mode"]): r for r in bench["results"]}
    sizes = sorted({r["size"] for r in bench["results"]})
    # plain and guided sampling at every size the Go side ran them at (plain
    # only at the training size)
    settings = [(s, m) for s in sizes for m in ("plain", "guided")
                if any(r["size"] == s and r["mode"].startswith(m) for r in bench["results"])]

    noise_diff = {}
    for s in sizes:
        go_noise = np.load(os.path.join(args.go, bench["noise"][str(s)]))
        noise_diff[s] = float(np.abs(initial_noise(seeds, s).numpy() - go_noise).max())

    times = {st: [] for st in settings}
    final = {}
    with torch.inference_mode():
        for st in settings:  # warm-up
            sample(model, sched, seeds, st[0], min(2, steps), st[1] == "guided")
        for r in range(runs):
            for j in range(len(settings)):
                st = settings[(j + r) % len(settings)]
                print(f"\rrun {r + 1}/{runs} {st[0]}_{st[1]:<10}", end="", file=sys.stderr, flush=True)
                t0 = time.perf_counter()
                x = sample(model, sched, seeds, st[0], steps, st[1] == "guided")
                times[st].append((time.perf_counter() - t0) / n)
                final.setdefault(st, x.numpy())
    print(file=sys.stderr)

    load = os.getloadavg()[0]
    print(f"PyTorch {torch.__version__} eager, {threads} threads; weights {os.path.basename(weights)}; "
          f"{n} images per batch, {steps} DDIM steps, median of {runs} interleaved runs; "
          f"load average {load:.2f} at end.\n")
    print("| size | mode | torch ms per image | Go ms per image | torch / Go | max abs diff (Go - torch) | initial noise diff |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    worst = 0.0
    for s, m in [(r["size"], r["mode"]) for r in bench["results"]]:
        # The Go modes differ from plain or guided sampling in call
        # scheduling and session kind (the _shapes modes) only.
        base = "guided" if m.startswith("guided") else "plain"
        ref = final[(s, base)]
        got = np.load(os.path.join(args.go, go[(s, m)]["file"]))
        diff = float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max())
        worst = max(worst, diff)
        tms = statistics.median(times[(s, base)]) * 1000
        gms = go[(s, m)]["ms_per_image"]
        print(f"| {s} | {m} | {tms:.1f} | {gms:.1f} | {tms / gms:.2f} | {diff:.2e} | {noise_diff[s]:.1e} |")
        if args.save and m == base:
            np.save(os.path.join(args.go, f"torch_{s}_{m}.npy"), ref)
    print(f"\nLargest difference {worst:.2e} ({'within' if worst <= 1e-3 else 'ABOVE'} the 1e-3 target).")


if __name__ == "__main__":
    main()
