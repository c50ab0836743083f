"""Trains the Fashion-MNIST classifier used by ugo's evaluation (Frechet
distance of its penultimate features) and exports it to ONNX with two outputs:
`logits` [N,10] and `features` [N,128].

Usage: /usr/bin/python3 tools/train/train_classifier.py --out out/classifier
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import load  # noqa: E402


class Classifier(nn.Module):
    """Two conv blocks, each halving the side, then 128 features and 10
    logits; side is the input's (28, or 14 for the 14x14 feature networks)."""

    def __init__(self, side=28):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 32, 3, padding=1)
        self.c3 = nn.Conv2d(32, 64, 3, padding=1)
        self.c4 = nn.Conv2d(64, 64, 3, padding=1)
        self.b1 = nn.BatchNorm2d(32)
        self.b2 = nn.BatchNorm2d(64)
        self.fc = nn.Linear(64 * (side // 4) ** 2, 128)
        self.head = nn.Linear(128, 10)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        h = F.relu(self.c1(x))
        h = F.max_pool2d(F.relu(self.b1(self.c2(h))), 2)
        h = F.relu(self.c3(h))
        h = F.max_pool2d(F.relu(self.b2(self.c4(h))), 2)
        feat = F.relu(self.fc(h.flatten(1)))
        return self.head(self.drop(feat)), feat


def prepare(args):
    """Sets the thread count and seed of args, makes the folder args.out and
    returns the train and test images as float32 [N,1,28,28] in [-1, 1] (the
    diffusion model's scaling) with int64 labels: xtr, ytr, xte, yte."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)

    def split(name):
        x, y = load(name)
        return torch.from_numpy(x.astype(np.float32) / 127.5 - 1).unsqueeze(1), torch.from_numpy(y.astype(np.int64))

    return split("train") + split("t10k")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="out/classifier")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    xtr, ytr, xte, yte = prepare(args)
    m = Classifier()
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    start = time.time()
    steps_per_epoch = len(xtr) // 128
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=args.epochs * steps_per_epoch)
    for ep in range(args.epochs):
        m.train()
        perm = torch.randperm(len(xtr))
        for i in range(steps_per_epoch):
            idx = perm[i * 128:(i + 1) * 128]
            x = xtr[idx]
            flip = torch.rand(len(idx)) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            loss = F.cross_entropy(m(x)[0], ytr[idx])
            opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        m.eval()
        with torch.no_grad():
            acc = sum((m(xte[i:i + 1000])[0].argmax(1) == yte[i:i + 1000]).sum().item() for i in range(0, 10000, 1000)) / 10000
        print(f"epoch {ep + 1} loss {loss.item():.4f} test_acc {acc:.4f} elapsed {time.time() - start:.0f}s", flush=True)
    m.eval()
    torch.onnx.export(m, (xte[:2],), os.path.join(args.out, "classifier.onnx"), opset_version=17,
                      input_names=["x"], output_names=["logits", "features"],
                      dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}, "features": {0: "N"}})
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump({"test_accuracy": acc, "epochs": args.epochs, "seed": args.seed,
                   "elapsed_s": time.time() - start}, f, indent=1)


if __name__ == "__main__":
    main()
