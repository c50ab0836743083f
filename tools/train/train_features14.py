"""Trains the two 14x14 feature networks of ugo's high-resolution evaluation
(`make eval`) and exports each to ONNX with outputs `logits` [N,10] and
`features` [N,128]:

  --mode pooled  classifies training images area-downsampled (2x2 means) to
                 14x14: the features of FD_r, the structural score at 14.
  --mode crop    classifies random 14x14 crops of the real 28x28 training
                 images (the crop inherits its image's label): the features
                 of crop FD, a score of detail at 28.

Both train on the train split only; the reported accuracy is on the test split
(pooled test images, or one fixed random crop per test image).

Usage: /usr/bin/python3 tools/train/train_features14.py --mode crop --out out/crop14
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_classifier import Classifier, prepare  # noqa: E402


def random_crops(x, gen):
    """One random 14x14 crop (offsets 0..14 in each axis) of each [N,1,28,28] image."""
    n = x.shape[0]
    oy = torch.randint(0, 15, (n,), generator=gen)
    ox = torch.randint(0, 15, (n,), generator=gen)
    rows = (oy[:, None] + torch.arange(14)[None, :])  # [N,14]
    cols = (ox[:, None] + torch.arange(14)[None, :])
    idx = torch.arange(n)[:, None, None]
    return x[:, 0][idx, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("pooled", "crop"), required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    xtr, ytr, xte, yte = prepare(args)
    gen = torch.Generator().manual_seed(args.seed)
    if args.mode == "pooled":
        xtr, xte = F.avg_pool2d(xtr, 2), F.avg_pool2d(xte, 2)
    else:
        xte = random_crops(xte, torch.Generator().manual_seed(12345))
    m = Classifier(side=14)  # 14 -> 7 -> 3
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    start = time.time()
    bs = 128
    steps_per_epoch = len(xtr) // bs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=args.epochs * steps_per_epoch)
    acc = 0.0
    for ep in range(args.epochs):
        m.train()
        perm = torch.randperm(len(xtr))
        for i in range(steps_per_epoch):
            idx = perm[i * bs:(i + 1) * bs]
            x = xtr[idx]
            if args.mode == "crop":
                x = random_crops(x, gen)
            flip = torch.rand(len(idx)) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            loss = F.cross_entropy(m(x)[0], ytr[idx])
            opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        m.eval()
        with torch.no_grad():
            acc = sum((m(xte[i:i + 1000])[0].argmax(1) == yte[i:i + 1000]).sum().item()
                      for i in range(0, 10000, 1000)) / 10000
        print(f"epoch {ep + 1} loss {loss.item():.4f} test_acc {acc:.4f} elapsed {time.time() - start:.0f}s", flush=True)
    m.eval()
    torch.onnx.export(m, (xte[:2],), os.path.join(args.out, "features14.onnx"), opset_version=17,
                      input_names=["x"], output_names=["logits", "features"],
                      dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}, "features": {0: "N"}})
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump({"mode": args.mode, "test_accuracy": acc, "epochs": args.epochs, "seed": args.seed,
                   "threads": args.threads, "elapsed_s": time.time() - start}, f, indent=1)


if __name__ == "__main__":
    main()
