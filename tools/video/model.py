"""A small video eps-prediction network built around the shipped Fashion-MNIST image UNet.

VideoUNet applies tools/train/unet.py's UNet to every frame (2-D convolutions, the image model's
weights) and adds temporal layers after each ResBlock: a temporal convolution (kernel 3 over
frames, at every pixel) and, at the 7x7 bottleneck, self-attention across frames. Each temporal
layer is a residual branch whose last projection starts at zero, so the untrained network is the
image model applied frame by frame (the AnimateDiff / Make-A-Video way of inflating an image
model). There is no frame position embedding: the network runs at any frame count.

Input x [N, C, F, H, W] and a float timestep t [N] (shared by the frames of a clip); output eps of
x's shape.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
from unet import UNet, timestep_embedding  # noqa: E402


def _to_time(h, n):
    """[N*F, C, H, W] -> [N*H*W, C, F]."""
    nf, c, hh, ww = h.shape
    return h.reshape(n, nf // n, c, hh, ww).permute(0, 3, 4, 2, 1).reshape(-1, c, nf // n)


def _from_time(y, n, hh, ww):
    """[N*H*W, C, F] -> [N*F, C, H, W]."""
    _, c, f = y.shape
    return y.reshape(n, hh, ww, c, f).permute(0, 4, 3, 1, 2).reshape(n * f, c, hh, ww)


class TemporalConv(nn.Module):
    """x + proj(SiLU(conv_k3(SiLU(norm(x))))) along the frame axis; proj starts at zero."""

    def __init__(self, c, groups=8):
        super().__init__()
        self.n = nn.GroupNorm(groups, c)
        self.c = nn.Conv1d(c, c, 3, padding=1)
        self.o = nn.Conv1d(c, c, 1)
        nn.init.zeros_(self.o.weight)
        nn.init.zeros_(self.o.bias)

    def forward(self, h, n):
        _, _, hh, ww = h.shape
        y = _to_time(h, n)
        y = self.o(F.silu(self.c(F.silu(self.n(y)))))
        return h + _from_time(y, n, hh, ww)


class TemporalAttention(nn.Module):
    """x + o(attention over frames at each pixel); o starts at zero."""

    def __init__(self, c, groups=8, heads=4):
        super().__init__()
        self.n = nn.GroupNorm(groups, c)
        self.qkv = nn.Conv1d(c, 3 * c, 1)
        self.o = nn.Conv1d(c, c, 1)
        nn.init.zeros_(self.o.weight)
        nn.init.zeros_(self.o.bias)
        self.heads = heads

    def forward(self, h, n):
        _, c, hh, ww = h.shape
        y = _to_time(h, n)  # [B, C, F]
        b, _, f = y.shape
        q, k, v = self.qkv(self.n(y)).reshape(b, 3, self.heads, c // self.heads, f).unbind(1)
        a = torch.softmax(torch.einsum("bhdi,bhdj->bhij", q, k) / math.sqrt(c // self.heads), dim=-1)
        y = torch.einsum("bhij,bhdj->bhdi", a, v).reshape(b, c, f)
        return h + _from_time(self.o(y), n, hh, ww)


class VideoUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.unet = UNet()
        self.td0 = TemporalConv(32)
        self.td1 = TemporalConv(64)
        self.tm1 = TemporalConv(128)
        self.tattn = TemporalAttention(128)
        self.tm2 = TemporalConv(128)
        self.tu1 = TemporalConv(64)
        self.tu0 = TemporalConv(32)

    def temporal_parameters(self):
        return [p for name, p in self.named_parameters() if not name.startswith("unet.")]

    def forward(self, x, t):
        n, c, f, hh, ww = x.shape
        u = self.unet
        x = x.permute(0, 2, 1, 3, 4).reshape(-1, c, hh, ww)          # [N*F, C, H, W]
        temb = u.temb(timestep_embedding(t, u.tdim))                  # [N, tdim]
        temb = temb[:, None, :].expand(n, f, temb.shape[1]).reshape(-1, temb.shape[1])
        h0 = self.td0(u.d0(u.inp(x), temb), n)                        # H
        h1 = self.td1(u.d1(u.down0(h0), temb), n)                     # H/2
        h = self.tm1(u.m1(u.down1(h1), temb), n)                      # H/4
        h = self.tattn(u.attn(h), n)
        h = self.tm2(u.m2(h, temb), n)
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        h = self.tu1(u.u1(torch.cat([h, h1], 1), temb), n)
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        h = self.tu0(u.u0(torch.cat([h, h0], 1), temb), n)
        y = u.out(h)                                                   # [N*F, C, H, W]
        return y.reshape(n, f, c, hh, ww).permute(0, 2, 1, 3, 4)


def load_image_unet(unet, path):
    """Loads an ONNX export of tools/train/unet.py's UNet (levels=2) into unet.

    Named initializers map to the state dict by name. The exporter folds each GroupNorm's affine
    parameters into a Mul and an Add after an InstanceNormalization; those constants are matched to
    the GroupNorm modules in the order the forward pass reaches them."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    sd = unet.state_dict()
    new = {}
    for k in sd:
        if k in inits:
            new[k] = torch.from_numpy(inits[k].copy())
    consumers = {}
    for node in m.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    affine = []
    for node in m.graph.node:
        if node.op_type != "InstanceNormalization":
            continue
        cur = node.output[0]
        mul = add = None
        for _ in range(4):
            nxt = consumers[cur][0]
            if nxt.op_type == "Mul":
                mul = [i for i in nxt.input if i in inits][0]
            if nxt.op_type == "Add" and mul is not None:
                add = [i for i in nxt.input if i in inits][0]
                break
            cur = nxt.output[0]
        affine.append((inits[mul].reshape(-1), inits[add].reshape(-1)))
    order = []
    hooks = [mod.register_forward_pre_hook(lambda mod, inp, name=name: order.append(name))
             for name, mod in unet.named_modules() if isinstance(mod, nn.GroupNorm)]
    with torch.no_grad():
        unet(torch.zeros(1, 1, 28, 28), torch.zeros(1))
    for hk in hooks:
        hk.remove()
    if len(order) != len(affine):
        raise ValueError(f"{len(order)} GroupNorms, {len(affine)} normalisations in the graph")
    for name, (w, b) in zip(order, affine):
        new[name + ".weight"] = torch.from_numpy(w.copy())
        new[name + ".bias"] = torch.from_numpy(b.copy())
    missing = set(sd) - set(new)
    if missing:
        raise ValueError(f"not in {path}: {sorted(missing)}")
    unet.load_state_dict(new)
