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
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import load  # noqa: E402
from unet import UNet  # noqa: E402


def export_onnx(model, path, size=28):
    model.eval()
    x = torch.randn(2, 1, size, size)
    t = torch.tensor([10.0, 500.0])
    torch.onnx.export(
        model, (x, t), path, opset_version=17,
        input_names=["x", "t"], output_names=["eps"],
        dynamic_axes={"x": {0: "N", 2: "H", 3: "W"}, "t": {0: "N"}, "eps": {0: "N", 2: "H", 3: "W"}},
    )


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

    say(f"start: size={args.size} params={nparams} step={step} minutes={args.minutes} extend={args.extend} batch={args.batch} lr={args.lr} seed={args.seed}")
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
        export_onnx(ema, os.path.join(args.out, "unet.onnx.tmp"), args.size)
        os.replace(os.path.join(args.out, "unet.onnx.tmp"), os.path.join(args.out, "unet.onnx"))
        with open(os.path.join(args.out, "meta.json"), "w") as f:
            json.dump({"step": step, "elapsed_s": el, "params": nparams, "batch": args.batch, "lr": args.lr,
                       "ema": args.ema, "seed": args.seed, "size": args.size, "recent_loss": run_loss / max(run_n, 1),
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
        t = torch.randint(0, T, (args.batch,))
        eps = torch.randn_like(x0)
        a = abar[t][:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        model.train()
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
