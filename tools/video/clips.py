"""Synthetic video clips from Fashion-MNIST images: a garment that moves, turns or zooms smoothly.

Each clip takes one 28x28 image and an affine motion whose parameters change linearly over the
clip (constant velocity): translate, rotate, zoom, translate+rotate or zoom+rotate. Frame f of F
sits at s = f / (F - 1) along the motion, so a 16-frame clip covers the same motion as an 8-frame
one at half the speed per frame. Pixels are in [-1, 1]; what the motion uncovers is background
(-1). Everything is drawn from a numpy Generator, so a clip set is reproducible from its seed.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

MOTIONS = ("translate", "rotate", "zoom", "translate+rotate", "zoom+rotate")


def draw_motion(rng, kind):
    """Start and end (dx, dy in pixels, angle in radians, scale) of one motion of the given kind."""
    start = np.array([0.0, 0.0, 0.0, 1.0])
    end = np.array([0.0, 0.0, 0.0, 1.0])
    if "translate" in kind:
        d = rng.uniform(3.0, 7.0)            # total displacement in pixels
        phi = rng.uniform(0, 2 * math.pi)
        v = d * np.array([math.cos(phi), math.sin(phi)])
        start[:2], end[:2] = -v / 2, v / 2
    if "rotate" in kind:
        a = math.radians(rng.uniform(20.0, 50.0)) * rng.choice([-1.0, 1.0])
        start[2], end[2] = -a / 2, a / 2
    if "zoom" in kind:
        lo, hi = rng.uniform(0.75, 0.85), rng.uniform(1.0, 1.1)
        if rng.random() < 0.5:
            lo, hi = hi, lo
        start[3], end[3] = lo, hi
    return start, end


def render(images, starts, ends, frames):
    """images float32 [N,28,28] in [-1, 1]; starts, ends [N,4]; returns clips [N,1,F,28,28]."""
    n, h, w = images.shape
    s = np.linspace(0.0, 1.0, frames)
    p = starts[:, None, :] + (ends - starts)[:, None, :] * s[None, :, None]  # [N,F,4]
    p = p.reshape(-1, 4)
    dx, dy, a, sc = p[:, 0], p[:, 1], p[:, 2], p[:, 3]
    # Output point q = sc * R(a) p + t, so the sampled input point is p = R(-a) (q - t) / sc.
    c, sn = np.cos(a) / sc, np.sin(a) / sc
    tx, ty = dx * 2 / w, dy * 2 / h
    theta = np.stack([
        np.stack([c, sn, -(c * tx + sn * ty)], 1),
        np.stack([-sn, c, -(-sn * tx + c * ty)], 1),
    ], 1).astype(np.float32)  # [N*F,2,3]
    src = torch.from_numpy(np.repeat(images, frames, axis=0)[:, None] + 1.0)  # background 0 for zero padding
    grid = F.affine_grid(torch.from_numpy(theta), (n * frames, 1, h, w), align_corners=False)
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1.0
    return out.reshape(n, frames, 1, h, w).permute(0, 2, 1, 3, 4).contiguous()


def make_clips(images, n, frames, rng, flip=False):
    """n clips of the given frame count from random images of the uint8 array images [M,28,28].

    Returns (clips float32 tensor [n,1,F,28,28], image indices [n], motion kinds [n])."""
    idx = rng.integers(0, images.shape[0], n)
    x = images[idx].astype(np.float32) / 127.5 - 1.0
    if flip:
        m = rng.random(n) < 0.5
        x[m] = x[m][:, :, ::-1]
    kinds = rng.integers(0, len(MOTIONS), n)
    se = [draw_motion(rng, MOTIONS[k]) for k in kinds]
    starts = np.stack([a for a, _ in se])
    ends = np.stack([b for _, b in se])
    return render(x, starts, ends, frames), idx, kinds
