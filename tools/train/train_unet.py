"""Trains ugo's Fashion-MNIST eps-prediction UNet and exports it to ONNX.

Usage: /usr/bin/python3 tools/train/train_unet.py --minutes 90 --out out/train

With --size 14 it trains the 14x14 model instead: the training images are
area-downsampled (2x2 means) to 14x14 and the UNet has one downsampling
(levels=1), so it runs at any even H, W.

Linear betas 1e-4..0.02, T=1000 (diffusers' DDPMScheduler defaults), images
scaled to [-1, 1], random horizontal flips, AdamW with a time-based cosine
learning-rate schedule, EMA of the weights (exported). Writes a checkpoint,
an ONNX export of the EMA weights and a log line every few minutes, so the
run can be stopped at any point and resumed with --resume.

With --objective flow it trains a rectified-flow model instead (SD3's
parameterisation): x_s = (1 - s) x0 + s eps with s uniform in [0, 1], the
network sees the timestep 1000 s and predicts the velocity v = eps - x0 (MSE
on v). --init-onnx warm-starts the network from an exported model of the same
family (its initializers, matched by name; the GroupNorm affine parameters,
which the exporter renames, by order of use), checked against the file's own
outputs before training starts. The ONNX output is called "output".
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import onnx
import onnx.numpy_helper
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import load  # noqa: E402
from unet import UNet  # noqa: E402


def export_onnx(model, path, size=28, output="eps"):
    model.eval()
    x = torch.randn(2, 1, size, size)
    t = torch.tensor([10.0, 500.0])
    torch.onnx.export(
        model, (x, t), path, opset_version=17,
        input_names=["x", "t"], output_names=[output],
        dynamic_axes={"x": {0: "N", 2: "H", 3: "W"}, "t": {0: "N"}, output: {0: "N", 2: "H", 3: "W"}},
    )


def load_onnx_weights(model, path, size):
    """Copies an exported model's initializers into model and checks the result against the file.

    Named initializers map to parameters of the same name. torch exports GroupNorm as
    InstanceNormalization followed by Mul and Add with renamed [C,1,1] constants; those are
    matched to the GroupNorm modules in the order the graph uses them.
    """
    m = onnx.load(path)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in m.graph.initializer}
    state = model.state_dict()
    used = set()
    for k in state:
        if k in inits:
            state[k] = torch.from_numpy(inits[k].copy()).reshape(state[k].shape)
            used.add(k)
    # The affine constants after each InstanceNormalization, in graph order.
    produced_by = {}
    for n in m.graph.node:
        for o in n.output:
            produced_by[o] = n
    consumers = {}
    for n in m.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    affine = []
    for n in m.graph.node:
        if n.op_type != "InstanceNormalization":
            continue
        # InstanceNormalization -> Reshape -> Mul(gamma) -> Add(beta)
        cur = consumers[n.output[0]][0]
        while cur.op_type != "Mul":
            cur = consumers[cur.output[0]][0]
        gamma = next(i for i in cur.input if i in inits)
        add = consumers[cur.output[0]][0]
        beta = next(i for i in add.input if i in inits)
        affine.append((gamma, beta))
    norms = [name for name, mod in model.named_modules() if isinstance(mod, torch.nn.GroupNorm)]
    # named_modules is definition order; the forward pass uses the norms in a different order, so
    # the order is found by tracing which GroupNorm runs when.
    order = []
    hooks = [mod.register_forward_hook(lambda mod, i, o, name=name: order.append(name))
             for name, mod in model.named_modules() if isinstance(mod, torch.nn.GroupNorm)]
    with torch.no_grad():
        model.eval()
        model(torch.zeros(1, 1, size, size), torch.zeros(1))
    for h in hooks:
        h.remove()
    if sorted(order) != sorted(norms) or len(order) != len(affine):
        raise SystemExit(f"{path}: {len(affine)} GroupNorm affine pairs for {len(order)} GroupNorm calls")
    for name, (g, b) in zip(order, affine):
        state[name + ".weight"] = torch.from_numpy(inits[g].reshape(-1).copy())
        state[name + ".bias"] = torch.from_numpy(inits[b].reshape(-1).copy())
        used.update((name + ".weight", name + ".bias"))
    missing = [k for k in state if k not in used]
    if missing:
        raise SystemExit(f"{path}: no initializer for {missing}")
    model.load_state_dict(state)
    # Check: exporting the warm-started module again gives the file's initializers, in the same order.
    tmp = path + ".check.onnx"
    export_onnx(model, tmp, size, m.graph.output[0].name)
    again = [onnx.numpy_helper.to_array(i) for i in onnx.load(tmp).graph.initializer]
    os.remove(tmp)
    orig = [onnx.numpy_helper.to_array(i) for i in m.graph.initializer]
    if len(again) != len(orig) or any(a.shape != b.shape for a, b in zip(again, orig)):
        raise SystemExit(f"{path}: re-export has a different set of initializers")
    diff = max(float(np.abs(a - b).max()) if a.size else 0.0 for a, b in zip(again, orig))
    if diff > 0:
        raise SystemExit(f"{path}: warm start differs from the file by {diff}")
    return diff


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=90)
    ap.add_argument("--out", default="out/train")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--every", type=float, default=5, help="minutes between checkpoints")
    ap.add_argument("--size", type=int, default=28, choices=(14, 28),
                    help="training resolution: 28 (the images) or 14 (2x2 area-downsampled)")
    ap.add_argument("--objective", default="eps", choices=("eps", "flow"),
                    help="eps: DDPM noise prediction; flow: rectified-flow velocity v = eps - x0 at timestep 1000 s")
    ap.add_argument("--init-onnx", default="", help="warm-start from this exported model's weights")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--extend", type=float, default=0,
                    help="with --resume: train this many more minutes, with a fresh cosine schedule from --lr")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    os.makedirs(args.out, exist_ok=True)

    imgs, _ = load("train")
    data = torch.from_numpy(imgs.astype(np.float32) / 127.5 - 1.0).unsqueeze(1)  # [60000,1,28,28]
    levels = 2
    if args.size == 14:
        data = torch.nn.functional.avg_pool2d(data, 2)  # [60000,1,14,14], area downsampling
        levels = 1

    T = 1000
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float32)
    abar = torch.cumprod(1.0 - betas, 0)

    model = UNet(levels=levels)
    init_diff = None
    if args.init_onnx and not args.resume:
        init_diff = load_onnx_weights(model, args.init_onnx, args.size)
    ema = UNet(levels=levels)
    ema.load_state_dict(model.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    step, elapsed0 = 0, 0.0
    ckpt = os.path.join(args.out, "ckpt.pt")
    if args.resume and os.path.exists(ckpt):
        s = torch.load(ckpt)
        model.load_state_dict(s["model"]); ema.load_state_dict(s["ema"]); opt.load_state_dict(s["opt"])
        step, elapsed0 = s["step"], s["elapsed"]
    nparams = sum(p.numel() for p in model.parameters())
    log = open(os.path.join(args.out, "log.txt"), "a")

    def say(msg):
        print(msg, flush=True)
        log.write(msg + "\n"); log.flush()

    if init_diff is not None:
        say(f"warm start from {args.init_onnx}: re-exported initializers equal the file's (max diff {init_diff})")
    say(f"start: objective={args.objective} size={args.size} params={nparams} step={step} minutes={args.minutes} extend={args.extend} batch={args.batch} lr={args.lr} seed={args.seed}")
    budget = args.minutes * 60
    start = time.time() - elapsed0
    # The learning rate follows a cosine over a segment of the wall-clock budget: the whole run, or the
    # extension that --extend adds to a resumed one (a warm restart).
    seg_start, seg_len = 0.0, budget
    if args.extend > 0:
        seg_start, seg_len = elapsed0, args.extend * 60
        budget = elapsed0 + seg_len
    last_ckpt = time.time()
    run_loss, run_n = 0.0, 0

    def save(final=False):
        el = time.time() - start
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                    "step": step, "elapsed": el}, ckpt + ".tmp")
        os.replace(ckpt + ".tmp", ckpt)
        export_onnx(ema, os.path.join(args.out, "unet.onnx.tmp"), args.size,
                    "output" if args.objective == "flow" else "eps")
        os.replace(os.path.join(args.out, "unet.onnx.tmp"), os.path.join(args.out, "unet.onnx"))
        with open(os.path.join(args.out, "meta.json"), "w") as f:
            json.dump({"step": step, "elapsed_s": el, "params": nparams, "batch": args.batch, "lr": args.lr,
                       "ema": args.ema, "seed": args.seed, "size": args.size, "objective": args.objective,
                       "init_onnx": args.init_onnx, "recent_loss": run_loss / max(run_n, 1),
                       "final": final}, f, indent=1)

    while time.time() - start < budget:
        frac = min(1.0, max(0.0, (time.time() - start - seg_start) / seg_len))
        lr = args.lr * min(1.0, (step + 1) / 500) * (0.5 * (1 + np.cos(np.pi * frac)) * 0.9 + 0.1)
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(0, data.shape[0], (args.batch,))
        x0 = data[idx]
        flip = torch.rand(args.batch) < 0.5
        x0 = torch.where(flip[:, None, None, None], x0.flip(3), x0)
        eps = torch.randn_like(x0)
        model.train()
        if args.objective == "flow":
            s = torch.rand(args.batch)
            sb = s[:, None, None, None]
            xs = (1 - sb) * x0 + sb * eps
            loss = torch.mean((model(xs, 1000.0 * s) - (eps - x0)) ** 2)
        else:
            t = torch.randint(0, T, (args.batch,))
            a = abar[t][:, None, None, None]
            xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
            loss = torch.mean((model(xt, t.float()) - eps) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        d = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(d).add_(pm, alpha=1 - d)
            for be, bm in zip(ema.buffers(), model.buffers()):
                be.copy_(bm)
        run_loss += loss.item(); run_n += 1
        if step % 200 == 0:
            say(f"step {step} loss {run_loss / run_n:.4f} lr {lr:.2e} elapsed {time.time() - start:.0f}s")
            if time.time() - last_ckpt > args.every * 60:
                save(); last_ckpt = time.time(); say(f"checkpoint at step {step}")
            run_loss, run_n = 0.0, 0
    save(final=True)
    say(f"done: step {step} elapsed {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
