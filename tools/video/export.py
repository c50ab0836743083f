"""Exports the trained video model's EMA weights to ONNX and writes the goldens of its Go test.

Usage (from the repository root):
    /usr/bin/python3 tools/video/export.py --ckpt out/video/ckpt.pt

Writes testdata/models/fashion_video.onnx (inputs x float32 [N,1,F,H,W], t float32 [N]; output
eps; N, F, H, W dynamic, H and W multiples of 4) and testdata/video/model_golden.json: for a few
shapes, torch's output on x = torch.manual_seed(seed); torch.randn(shape) (which ugo's
noise.NewTorchCPU reproduces), as its sum and its values at fixed positions. Prints the file's
size and sha256.
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import VideoUNet  # noqa: E402
from train import export_onnx  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", default=os.path.join(ROOT, "testdata/models/fashion_video.onnx"))
    ap.add_argument("--golden", default=os.path.join(ROOT, "testdata/video/model_golden.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    s = torch.load(args.ckpt)
    model = VideoUNet()
    model.load_state_dict(s["ema"])
    model.eval()
    export_onnx(model, args.out)
    cases = []
    for seed, shape, t in ((1, (1, 1, 8, 28, 28), 500.0), (2, (2, 1, 16, 28, 28), 250.5), (3, (1, 1, 8, 56, 56), 800.0)):
        torch.manual_seed(seed)
        x = torch.randn(shape)
        with torch.no_grad():
            eps = model(x, torch.full((shape[0],), t)).numpy().ravel()
        rng = np.random.default_rng(seed)
        pos = np.sort(rng.choice(eps.size, 64, replace=False))
        cases.append({"seed": seed, "shape": list(shape), "t": t, "sum": float(eps.astype(np.float64).sum()),
                      "positions": pos.tolist(), "values": [float(eps[p]) for p in pos]})
    with open(args.golden, "w") as f:
        json.dump({"step": s["step"], "cases": cases}, f, indent=1)
    data = open(args.out, "rb").read()
    print(f"{args.out}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}, step {s['step']}")


if __name__ == "__main__":
    main()
