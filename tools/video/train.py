"""Trains the Fashion-MNIST video eps-model (tools/video/model.py) and exports it to ONNX.

Usage: /usr/bin/python3 tools/video/train.py --minutes 35 --threads 1 --out out/video

The spatial layers are the shipped image model (testdata/models/fashion_unet.onnx), loaded and
frozen; only the zero-initialised temporal layers train (AnimateDiff-style inflation). Clips are
made on the fly from the Fashion-MNIST training split (tools/video/clips.py: 8 frames of 28x28,
five motion types, random horizontal flips), the schedule is the image model's (linear betas
1e-4..0.02, T = 1000), the loss MSE on eps with one uniform integer t per clip. AdamW with a
warm-up and a cosine over the wall-clock budget, gradient clipping at 1, EMA of the weights
(exported). A checkpoint, an ONNX export and meta.json are written every few minutes; --resume
continues from the checkpoint.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import VideoUNet, load_image_unet  # noqa: E402
from clips import make_clips  # noqa: E402
from data import load  # noqa: E402  (tools/train, on the path through model)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def export_onnx(model, path):
    model.eval()
    x = torch.randn(2, 1, 8, 28, 28)
    t = torch.tensor([10.0, 500.0])
    torch.onnx.export(
        model, (x, t), path, opset_version=17,
        input_names=["x", "t"], output_names=["eps"],
        dynamic_axes={"x": {0: "N", 2: "F", 3: "H", 4: "W"}, "t": {0: "N"},
                      "eps": {0: "N", 2: "F", 3: "H", 4: "W"}},
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=35)
    ap.add_argument("--out", default="out/video")
    ap.add_argument("--image-model", default=os.path.join(ROOT, "testdata/models/fashion_unet.onnx"))
    ap.add_argument("--clips", type=int, default=6, help="clips per batch")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--ema", type=float, default=0.995)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--every", type=float, default=5, help="minutes between checkpoints")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    imgs, _ = load("train")

    T = 1000
    abar = torch.cumprod(1.0 - torch.linspace(1e-4, 0.02, T, dtype=torch.float32), 0)

    model = VideoUNet()
    load_image_unet(model.unet, args.image_model)
    for p in model.unet.parameters():
        p.requires_grad_(False)
    ema = VideoUNet()
    ema.load_state_dict(model.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    params = model.temporal_parameters()
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    step, elapsed0 = 0, 0.0
    ckpt = os.path.join(args.out, "ckpt.pt")
    if args.resume and os.path.exists(ckpt):
        s = torch.load(ckpt)
        model.load_state_dict(s["model"]); ema.load_state_dict(s["ema"]); opt.load_state_dict(s["opt"])
        step, elapsed0 = s["step"], s["elapsed"]
        rng = np.random.default_rng([args.seed, step])
        torch.manual_seed(args.seed + step)
    log = open(os.path.join(args.out, "log.txt"), "a")

    def say(msg):
        print(msg, flush=True)
        log.write(msg + "\n"); log.flush()

    ntrain = sum(p.numel() for p in params)
    say(f"start: trainable={ntrain} step={step} minutes={args.minutes} clips={args.clips} frames={args.frames} "
        f"lr={args.lr} seed={args.seed} threads={args.threads}")
    budget = args.minutes * 60
    start = time.time() - elapsed0
    cpu0 = time.process_time()
    last_ckpt = time.time()
    run_loss, run_n = 0.0, 0

    def save(final=False):
        el = time.time() - start
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                    "step": step, "elapsed": el}, ckpt + ".tmp")
        os.replace(ckpt + ".tmp", ckpt)
        tmp = os.path.join(args.out, "video.onnx.tmp")
        export_onnx(ema, tmp)
        os.replace(tmp, os.path.join(args.out, "video.onnx"))
        with open(os.path.join(args.out, "meta.json"), "w") as f:
            json.dump({"step": step, "elapsed_s": el, "cpu_s_this_run": time.process_time() - cpu0,
                       "trainable": ntrain, "clips": args.clips, "frames": args.frames, "lr": args.lr,
                       "ema": args.ema, "seed": args.seed, "recent_loss": run_loss / max(run_n, 1),
                       "final": final}, f, indent=1)

    while time.time() - start < budget:
        frac = min(1.0, max(0.0, (time.time() - start) / budget))
        lr = args.lr * min(1.0, (step + 1) / 100) * (0.5 * (1 + np.cos(np.pi * frac)) * 0.9 + 0.1)
        for g in opt.param_groups:
            g["lr"] = lr
        x0, _, _ = make_clips(imgs, args.clips, args.frames, rng, flip=True)
        t = torch.randint(0, T, (args.clips,))
        eps = torch.randn_like(x0)
        a = abar[t][:, None, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        model.train()
        loss = torch.mean((model(xt, t.float()) - eps) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        d = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(d).add_(pm, alpha=1 - d)
        run_loss += loss.item(); run_n += 1
        if step % 50 == 0:
            say(f"step {step} loss {run_loss / run_n:.4f} lr {lr:.2e} elapsed {time.time() - start:.0f}s "
                f"cpu {time.process_time() - cpu0:.0f}s")
            if time.time() - last_ckpt > args.every * 60:
                save(); last_ckpt = time.time(); say(f"checkpoint at step {step}")
            run_loss, run_n = 0.0, 0
    save(final=True)
    say(f"done: step {step} elapsed {time.time() - start:.0f}s cpu {time.process_time() - cpu0:.0f}s")


if __name__ == "__main__":
    main()
