"""The networks of the small text-to-image latent model (SD's interfaces, small widths).

    VAE          KL autoencoder, 3x32x32 <-> LATENT x8x8 (factor 4: two downsamplings)
    TextEncoder  CLIP-style causal transformer over CLIP token ids; the token
                 embedding holds only the tokens the prompts use: a lookup table
                 (uint8, one entry per CLIP id) remaps ids inside the graph
    UNet         SD-style: ResBlocks with the time embedding, transformer blocks
                 (self-attention, cross-attention to the first CONTEXT text
                 states, GELU MLP), two resolutions (8x8 and 4x4 at the
                 trained size)
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LATENT = 4
VOCAB_SIZE = 49408
# The UNet's cross-attention reads the first CONTEXT text states (every prompt
# fits: <|startoftext|>, at most 14 tokens, <|endoftext|>); the text encoder is
# causal, so those states do not depend on the rest of the 77 ids, and training
# runs the text encoder on CONTEXT ids only.
CONTEXT = 16


def norm(c):
    return nn.GroupNorm(8, c, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb=0):
        super().__init__()
        self.n1, self.c1 = norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.t = nn.Linear(temb, cout) if temb else None
        self.n2, self.c2 = norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, t=None):
        h = self.c1(F.silu(self.n1(x)))
        if self.t is not None:
            h = h + self.t(F.silu(t))[:, :, None, None]
        h = self.c2(F.silu(self.n2(h)))
        return self.skip(x) + h


def attention(q, k, v, heads, mask=None):
    b, n, c = q.shape
    m = k.shape[1]
    d = c // heads
    q = q.reshape(b, n, heads, d).transpose(1, 2)
    k = k.reshape(b, m, heads, d).transpose(1, 2)
    v = v.reshape(b, m, heads, d).transpose(1, 2)
    w = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(d))
    if mask is not None:
        w = w + mask
    o = torch.matmul(torch.softmax(w, dim=-1), v)
    return o.transpose(1, 2).reshape(b, n, c)


class Attention(nn.Module):
    def __init__(self, dim, ctx_dim, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(ctx_dim, dim, bias=False)
        self.v = nn.Linear(ctx_dim, dim, bias=False)
        self.o = nn.Linear(dim, dim)

    def forward(self, x, ctx=None, mask=None):
        ctx = x if ctx is None else ctx
        return self.o(attention(self.q(x), self.k(ctx), self.v(ctx), self.heads, mask))


class Transformer2D(nn.Module):
    """SD's SpatialTransformer: norm, proj_in, [self-attn, cross-attn, GEGLU-free MLP], proj_out."""

    def __init__(self, c, ctx_dim, heads=4):
        super().__init__()
        self.norm = norm(c)
        self.proj_in = nn.Conv2d(c, c, 1)
        self.n1, self.attn1 = nn.LayerNorm(c), Attention(c, c, heads)
        self.n2, self.attn2 = nn.LayerNorm(c), Attention(c, ctx_dim, heads)
        self.n3 = nn.LayerNorm(c)
        self.ff = nn.Sequential(nn.Linear(c, 2 * c), nn.GELU(), nn.Linear(2 * c, c))
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x, ctx):
        b, c, h, w = x.shape
        y = self.proj_in(self.norm(x)).reshape(b, c, h * w).transpose(1, 2)
        y = y + self.attn1(self.n1(y))
        y = y + self.attn2(self.n2(y), ctx)
        y = y + self.ff(self.n3(y))
        return x + self.proj_out(y.transpose(1, 2).reshape(b, c, h, w))


class UNet(nn.Module):
    """UNet2DConditionModel-shaped: epsilon or v from (sample, timestep, encoder_hidden_states)."""

    def __init__(self, ctx_dim, ch=(64, 128), temb=256, ctx_len=CONTEXT):
        super().__init__()
        self.ctx_len = ctx_len
        self.ch = ch
        c0, c1 = ch
        self.freq_dim = ch[0]
        half = self.freq_dim // 2
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half))
        self.t1, self.t2 = nn.Linear(self.freq_dim, temb), nn.Linear(temb, temb)
        self.conv_in = nn.Conv2d(LATENT, c0, 3, padding=1)
        self.d0r, self.d0a = ResBlock(c0, c0, temb), Transformer2D(c0, ctx_dim)
        self.down = nn.Conv2d(c0, c0, 3, stride=2, padding=1)
        self.d1r, self.d1a = ResBlock(c0, c1, temb), Transformer2D(c1, ctx_dim)
        self.m1, self.ma, self.m2 = ResBlock(c1, c1, temb), Transformer2D(c1, ctx_dim), ResBlock(c1, c1, temb)
        self.u1r, self.u1a = ResBlock(2 * c1, c1, temb), Transformer2D(c1, ctx_dim)
        self.up = nn.Conv2d(c1, c1, 3, padding=1)
        self.u0r, self.u0a = ResBlock(c1 + c0, c0, temb), Transformer2D(c0, ctx_dim)
        self.out_norm, self.conv_out = norm(c0), nn.Conv2d(c0, LATENT, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states):
        t = timestep.float().reshape(-1, 1) * self.freqs.reshape(1, -1)
        t = torch.cat([torch.cos(t), torch.sin(t)], dim=1)  # SD's flip_sin_to_cos
        temb = self.t2(F.silu(self.t1(t)))
        ctx = encoder_hidden_states[:, :self.ctx_len]
        h = self.conv_in(sample)
        s0 = self.d0a(self.d0r(h, temb), ctx)
        h = self.down(s0)
        s1 = self.d1a(self.d1r(h, temb), ctx)
        h = self.m2(self.ma(self.m1(s1, temb), ctx), temb)
        h = self.u1a(self.u1r(torch.cat([h, s1], 1), temb), ctx)
        h = self.up(F.interpolate(h, size=s0.shape[-2:], mode="nearest"))  # odd sizes too, as diffusers does
        h = self.u0a(self.u0r(torch.cat([h, s0], 1), temb), ctx)
        return self.conv_out(F.silu(self.out_norm(h)))


class TextEncoder(nn.Module):
    """CLIPTextModel-shaped: input_ids -> (last_hidden_state, pooler_output)."""

    def __init__(self, token_ids, dim=128, layers=2, heads=4, length=77):
        super().__init__()
        lut = torch.zeros(VOCAB_SIZE, dtype=torch.uint8)  # unknown ids -> row 0
        assert len(token_ids) < 255
        for i, tok in enumerate(sorted(token_ids)):
            lut[tok] = i + 1
        self.register_buffer("lut", lut)
        self.tok = nn.Embedding(len(token_ids) + 1, dim)
        self.pos = nn.Parameter(torch.randn(length, dim) * 0.01)
        self.heads = heads
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            self.blocks.append(nn.ModuleDict({
                "n1": nn.LayerNorm(dim), "attn": Attention(dim, dim, heads),
                "n2": nn.LayerNorm(dim), "ff": nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim)),
            }))
        self.final = nn.LayerNorm(dim)
        self.register_buffer("causal", torch.triu(torch.full((length, length), -1e9), diagonal=1))

    def forward(self, input_ids):
        ids = input_ids.long()
        n, l = ids.shape
        h = self.tok(self.lut[ids].long()) + self.pos[:l]
        mask = self.causal[:l, :l]
        for b in self.blocks:
            h = h + b["attn"](b["n1"](h), mask=mask)
            h = h + b["ff"](b["n2"](h))
        h = self.final(h)
        pooled = h[torch.arange(n), ids.argmax(dim=-1)]  # the end token, as CLIP pools
        return h, pooled


class Encoder(nn.Module):
    def __init__(self, ch=(16, 32, 48)):
        super().__init__()
        c0, c1, c2 = ch
        self.conv_in = nn.Conv2d(3, c0, 3, padding=1)
        self.d0 = nn.Conv2d(c0, c1, 3, stride=2, padding=1)
        self.r0 = ResBlock(c1, c1)
        self.d1 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.r1 = ResBlock(c2, c2)
        self.out_norm, self.conv_out = norm(c2), nn.Conv2d(c2, 2 * LATENT, 3, padding=1)

    def forward(self, x):
        h = self.r0(self.d0(F.silu(self.conv_in(x))))
        h = self.r1(self.d1(h))
        return self.conv_out(F.silu(self.out_norm(h)))  # mean, logvar


class Decoder(nn.Module):
    def __init__(self, ch=(16, 32, 48)):
        super().__init__()
        c0, c1, c2 = ch
        self.conv_in = nn.Conv2d(LATENT, c2, 3, padding=1)
        self.r0 = ResBlock(c2, c2)
        self.u0 = nn.Conv2d(c2, c1, 3, padding=1)
        self.r1 = ResBlock(c1, c1)
        self.u1 = nn.Conv2d(c1, c0, 3, padding=1)
        self.out_norm, self.conv_out = norm(c0), nn.Conv2d(c0, 3, 3, padding=1)

    def forward(self, z):
        h = self.r0(self.conv_in(z))
        h = self.r1(self.u0(F.interpolate(h, scale_factor=2.0, mode="nearest")))
        h = self.u1(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.out_norm(h)))


class VAE(nn.Module):
    block_out_channels = (16, 32, 48)  # diffusers' reading: factor 2^(len-1) = 4

    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = Encoder(), Decoder()

    def encode(self, x):
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, torch.clamp(logvar, -30.0, 20.0)


class VAEEncoderExport(nn.Module):
    """vae_encoder as diffusers' ONNX export: sample -> latent_sample (the posterior's sample).

    diffusers' export script traces encoder.encode(sample).latent_dist.sample()
    with noise from the export; here the graph returns the posterior mean
    (deterministic), which is what a sample with zero noise is."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, sample):
        return self.vae.encode(sample)[0]


class VAEDecoderExport(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample):
        return self.vae.decoder(latent_sample)
