"""Small eps-prediction UNet for Fashion-MNIST (ugo's demo models).

Fully convolutional apart from one self-attention block at the lowest
resolution. With the default two downsamplings (the 28x28 model) it runs at any
H, W that are multiples of 4; with levels=1 (the 14x14 model: 14 -> 7, where a
second halving would give 3.5) at any H, W that are even. The timestep is a
float input (fractional SNR-matched times are meaningful to it).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def timestep_embedding(t, dim):
    """Sinusoidal embedding of a float timestep tensor of shape [N]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, tdim, groups=8):
        super().__init__()
        self.n1 = nn.GroupNorm(groups, cin)
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.t = nn.Linear(tdim, cout)
        self.n2 = nn.GroupNorm(groups, cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb):
        h = self.c1(F.silu(self.n1(x)))
        h = h + self.t(temb)[:, :, None, None]
        h = self.c2(F.silu(self.n2(h)))
        return h + self.skip(x)


class Attention(nn.Module):
    def __init__(self, c, groups=8, heads=4):
        super().__init__()
        self.n = nn.GroupNorm(groups, c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.o = nn.Conv2d(c, c, 1)
        self.heads = heads

    def forward(self, x):
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.n(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        # Matrix products rather than einsum: exported, they become MatMul
        # nodes, which ONNX Runtime runs faster than Einsum (see
        # tools/ortopt/attention_matmul.py). The same values as
        # einsum("nhdi,nhdj->nhij", q, k) and einsum("nhij,nhdj->nhdi", a, v).
        a = torch.softmax(q.transpose(-1, -2) @ k / math.sqrt(c // self.heads), dim=-1)
        y = (a @ v.transpose(-1, -2)).transpose(-1, -2).reshape(n, c, h, w)
        return x + self.o(y)


class UNet(nn.Module):
    def __init__(self, ch=(32, 64, 128), tdim=128, in_ch=1, levels=2):
        super().__init__()
        c0, c1, c2 = ch
        self.tdim = tdim
        self.levels = levels
        if levels == 1:
            # One halving: 32 channels at H, then 64 -> 128 with attention at H/2, and back.
            self.temb = nn.Sequential(nn.Linear(tdim, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
            self.inp = nn.Conv2d(in_ch, c0, 3, padding=1)
            self.d0 = ResBlock(c0, c0, tdim)
            self.down0 = nn.Conv2d(c0, c0, 3, stride=2, padding=1)
            self.d1 = ResBlock(c0, c1, tdim)
            self.m1 = ResBlock(c1, c2, tdim)
            self.attn = Attention(c2)
            self.m2 = ResBlock(c2, c2, tdim)
            self.u1 = ResBlock(c2 + c1, c1, tdim)
            self.u0 = ResBlock(c1 + c0, c0, tdim)
            self.out = nn.Sequential(nn.GroupNorm(8, c0), nn.SiLU(), nn.Conv2d(c0, in_ch, 3, padding=1))
            return
        if levels != 2:
            raise ValueError(f"levels must be 1 or 2, got {levels}")
        self.temb = nn.Sequential(nn.Linear(tdim, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.inp = nn.Conv2d(in_ch, c0, 3, padding=1)
        self.d0 = ResBlock(c0, c0, tdim)
        self.down0 = nn.Conv2d(c0, c0, 3, stride=2, padding=1)
        self.d1 = ResBlock(c0, c1, tdim)
        self.down1 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)
        self.m1 = ResBlock(c1, c2, tdim)
        self.attn = Attention(c2)
        self.m2 = ResBlock(c2, c2, tdim)
        self.u1 = ResBlock(c2 + c1, c1, tdim)
        self.u0 = ResBlock(c1 + c0, c0, tdim)
        self.out = nn.Sequential(nn.GroupNorm(8, c0), nn.SiLU(), nn.Conv2d(c0, in_ch, 3, padding=1))

    def forward(self, x, t):
        temb = self.temb(timestep_embedding(t, self.tdim))
        if self.levels == 1:
            h0 = self.d0(self.inp(x), temb)           # H
            h1 = self.d1(self.down0(h0), temb)        # H/2
            h = self.m1(h1, temb)
            h = self.m2(self.attn(h), temb)
            h = self.u1(torch.cat([h, h1], 1), temb)
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = self.u0(torch.cat([h, h0], 1), temb)
            return self.out(h)
        h0 = self.d0(self.inp(x), temb)               # H
        h1 = self.d1(self.down0(h0), temb)            # H/2
        h = self.m1(self.down1(h1), temb)             # H/4
        h = self.m2(self.attn(h), temb)
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        h = self.u1(torch.cat([h, h1], 1), temb)
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        h = self.u0(torch.cat([h, h0], 1), temb)
        return self.out(h)
