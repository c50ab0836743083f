"""Trains the small text-to-image latent model: the VAE, then a UNet with its text encoder.

Usage (from the repository root, Debian's torch; one thread each, resumable):

    /usr/bin/python3 tools/latent/train.py vae  --minutes 8  --out out/latent
    /usr/bin/python3 tools/latent/train.py unet --minutes 17 --out out/latent --prediction epsilon
    /usr/bin/python3 tools/latent/train.py unet --minutes 17 --out out/latent --prediction v_prediction

Add --resume to continue a run from its checkpoint (--minutes is then the new
total budget of that run: wall-clock minutes for vae, CPU minutes of the
process for unet, whose --wall-minutes caps one invocation's wall time). Images: Fashion-MNIST's training split
only, 28x28 padded to 32x32 with the background value, in [-1, 1], as three
equal channels (SD's RGB interface).

vae: KL autoencoder, loss = mean squared + mean absolute reconstruction error
     + 1e-6 x KL (summed over latents, per pixel of the image, as SD's kl_weight
     is applied to sums), plus --equivariance times the pooling-equivariance
     loss (equivariance_loss: pooled latents must decode to pooled images, and
     the pooled latent of a 2x upsampled image must be the image's latent;
     the scale-equivariance regularisation of EQ-VAE, Kouzelis et al. 2025,
     arXiv 2502.09509, in the form Upsample Guidance needs); --init fine-tunes
     an existing checkpoint. Then encodes the training split (posterior mean and
     log variance, out/latent/latents.pt), computes SD's scaling_factor as
     1 / std of posterior samples of the first 10,000 training images, and
     logs the pooling errors on 500 held-out images (pooling_errors).

     The shipped VAE: `vae --minutes 6` (reconstruction only), then
     `vae --init <that vae.pt> --equivariance 0.5 --lr 5e-4 --minutes 8` into
     a fresh --out folder.
unet: text encoder + UNet trained jointly; scaled_linear betas (0.00085, 0.012,
     T = 1000); prompts drawn from prompts.py per image; 10% of prompts dropped
     to "" for classifier-free guidance; MSE on epsilon or on v
     (v = sqrt(abar) eps - sqrt(1 - abar) x0); AdamW with warm-up and a cosine
     decay over the wall-clock budget; EMA 0.999 of both networks (exported).
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "train"))
from clip_bpe import Tokenizer  # noqa: E402
from data import load  # noqa: E402
import models  # noqa: E402
import prompts  # noqa: E402

UNET_CH = (32, 64)
TEXT_DIM = 64


def images(split):
    x, y = load(split)
    x = torch.from_numpy(x.astype(np.float32) / 127.5 - 1.0).unsqueeze(1)
    x = F.pad(x, (2, 2, 2, 2), value=-1.0)
    return x, torch.from_numpy(y.astype(np.int64))


def betas():
    return torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float32) ** 2


def token_table():
    """All prompt token ids: (ids [P,77] int64, labels [P], set of ids incl. the empty prompt)."""
    tok = Tokenizer()
    ps = prompts.all_prompts()
    ids = torch.tensor([tok.encode(p) for _, p in ps], dtype=torch.int64)
    labels = torch.tensor([l for l, _ in ps])
    empty = torch.tensor(tok.encode(""), dtype=torch.int64)
    used = sorted(set(ids.flatten().tolist()) | set(empty.tolist()))
    longest = max(int((row != 49407).sum()) + 1 for row in ids)
    assert longest <= models.CONTEXT, longest
    return ids[:, :models.CONTEXT], labels, empty[:models.CONTEXT], used


def make_unet_models(used):
    return models.TextEncoder(used, dim=TEXT_DIM), models.UNet(TEXT_DIM, ch=UNET_CH, temb=128)


class Run:
    def __init__(self, args, name):
        self.args, self.name = args, name
        os.makedirs(args.out, exist_ok=True)
        self.ckpt = os.path.join(args.out, name + ".pt")
        self.log = open(os.path.join(args.out, name + ".log"), "a")

    def say(self, msg):
        msg = time.strftime("%H:%M:%S ") + msg
        print(msg, flush=True)
        self.log.write(msg + "\n")
        self.log.flush()

    def lr(self, base, step, elapsed):
        warm = min(1.0, (step + 1) / 200)
        frac = min(1.0, elapsed / (60 * self.args.minutes))
        return base * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def train_vae(args):
    run = Run(args, "vae")
    x, _ = images("train")
    vae = models.VAE()
    if args.init:
        vae.load_state_dict(torch.load(args.init)["vae"])
    opt = torch.optim.Adam(vae.parameters(), lr=args.lr)
    step, elapsed0 = 0, 0.0
    if args.resume and os.path.exists(run.ckpt):
        s = torch.load(run.ckpt)
        vae.load_state_dict(s["vae"]); opt.load_state_dict(s["opt"])
        step, elapsed0 = s["step"], s["elapsed"]
    run.say(f"vae: {sum(p.numel() for p in vae.parameters())} parameters, step {step}, {args.threads} thread(s)")
    g = torch.Generator().manual_seed(args.seed + step)
    t0, last, losses = time.time(), time.time(), []

    def save():
        torch.save({"vae": vae.state_dict(), "opt": opt.state_dict(), "step": step,
                    "elapsed": elapsed0 + time.time() - t0}, run.ckpt)

    while elapsed0 + time.time() - t0 < 60 * args.minutes:
        for grp in opt.param_groups:
            grp["lr"] = run.lr(args.lr, step, elapsed0 + time.time() - t0)
        idx = torch.randint(0, x.shape[0], (args.batch,), generator=g)
        img = x[idx]
        flip = torch.rand(args.batch, generator=g) < 0.5
        img = torch.where(flip[:, None, None, None], img.flip(3), img).expand(-1, 3, -1, -1)
        mean, logvar = vae.encode(img)
        z = mean + torch.randn(mean.shape, generator=g) * (0.5 * logvar).exp()
        rec = vae.decoder(z)
        kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).sum(dim=(1, 2, 3)).mean() / img[0].numel()
        mse = (rec - img).pow(2).mean()
        loss = mse + (rec - img).abs().mean() + 1e-6 * kl
        eq = torch.zeros(())
        if args.equivariance > 0:
            eq = equivariance_loss(vae, img, mean, g)
            loss = loss + args.equivariance * eq
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        losses.append(mse.item())
        if time.time() - last > 60:
            run.say(f"step {step} mse {np.mean(losses[-100:]):.5f} kl/px {kl.item():.4f} eq {eq.item():.5f} "
                    f"{(time.time() - t0) / max(1, len(losses)):.2f} s/step")
            save()
            last = time.time()
    save()
    run.say(f"vae done: step {step}, mse (last 100) {np.mean(losses[-100:]) if losses else float('nan'):.5f}")
    encode_all(args, run, vae)


def equivariance_loss(vae, img, mean, g):
    """Scale equivariance of the latent under 2x2 average pooling, the
    relation Upsample Guidance assumes of a latent space (its low-resolution
    branch sees the pooled latent of the high-resolution sample):

      decoder: D(pool(E(x))) = pool(x)            (EQ-VAE's form, at 32 -> 16)
      encoder: pool(E(up(x))) = E(x)              (the 2x relation itself: 64 -> 32)
               D(pool(E(up(x)))) = x

    up is nearest or bilinear 2x upsampling (half the batch each), on a quarter
    of the batch (an encoder pass at 64x64 costs four at 32x32). Mean squared
    plus mean absolute error of images; latent error relative to E(x)'s mean
    square (so that shrinking the latents cannot lower it)."""
    pooled = F.avg_pool2d(mean, 2)
    small = F.avg_pool2d(img, 2)
    dec = vae.decoder(pooled)
    loss = (dec - small).pow(2).mean() + (dec - small).abs().mean()
    q = img.shape[0] // 4
    part = img[:q]
    up = torch.cat([F.interpolate(part[:q // 2], scale_factor=2.0, mode="nearest"),
                    F.interpolate(part[q // 2:], scale_factor=2.0, mode="bilinear", align_corners=False)])
    zp = F.avg_pool2d(vae.encode(up)[0], 2)
    target = mean[:q]
    loss = loss + (zp - target).pow(2).mean() / target.pow(2).mean().detach()
    dec2 = vae.decoder(zp)
    return loss + (dec2 - part).pow(2).mean() + (dec2 - part).abs().mean()


@torch.no_grad()
def pooling_errors(vae, x):
    """The equivariance errors above on held-out images x (no gradient)."""
    z = vae.encode(x)[0]
    out = {"reconstruction mse": (vae.decoder(z) - x).pow(2).mean().item()}
    small = F.avg_pool2d(x, 2)
    out["D(pool E x) vs pool x mse"] = (vae.decoder(F.avg_pool2d(z, 2)) - small).pow(2).mean().item()
    for mode in ("nearest", "bilinear"):
        kw = {} if mode == "nearest" else {"align_corners": False}
        zp = F.avg_pool2d(vae.encode(F.interpolate(x, scale_factor=2.0, mode=mode, **kw))[0], 2)
        out[f"pool E up_{mode} x vs E x (relative)"] = ((zp - z).pow(2).mean() / z.pow(2).mean()).item()
        out[f"D(pool E up_{mode} x) vs x mse"] = (vae.decoder(zp) - x).pow(2).mean().item()
    return out


@torch.no_grad()
def encode_all(args, run, vae):
    vae.eval()
    x, y = images("train")
    means, logvars = [], []
    for i in range(0, x.shape[0], 500):
        m, lv = vae.encode(x[i:i + 500].expand(-1, 3, -1, -1))
        means.append(m)
        logvars.append(lv)
    mean, logvar = torch.cat(means), torch.cat(logvars)
    g = torch.Generator().manual_seed(0)
    z = mean[:10000] + torch.randn(mean[:10000].shape, generator=g) * (0.5 * logvar[:10000]).exp()
    scaling = 1.0 / z.std().item()
    rec = vae.decoder(mean[:2000])
    mse = (rec - x[:2000].expand(-1, 3, -1, -1)).pow(2).mean().item()
    tx, _ = images("t10k")
    trec = vae.decoder(vae.encode(tx[:2000].expand(-1, 3, -1, -1))[0])
    tmse = (trec - tx[:2000].expand(-1, 3, -1, -1)).pow(2).mean().item()
    torch.save({"mean": mean, "logvar": logvar, "labels": y, "scaling_factor": scaling}, os.path.join(args.out, "latents.pt"))
    for k, v in pooling_errors(vae, tx[:500].expand(-1, 3, -1, -1)).items():
        run.say(f"held-out {k}: {v:.5f}")
    run.say(f"latents: {tuple(mean.shape)}, latent std {z.std().item():.4f} -> scaling_factor {scaling:.5f}, "
            f"mean posterior std {(0.5 * logvar).exp().mean().item():.4f}, reconstruction mse train {mse:.5f} test {tmse:.5f}")


def train_unet(args):
    pred = args.prediction
    run = Run(args, "unet_" + pred)
    lat = torch.load(os.path.join(args.out, "latents.pt"))
    mean, logvar, labels, scaling = lat["mean"], lat["logvar"], lat["labels"], lat["scaling_factor"]
    ids, plabels, empty, used = token_table()
    by_class = [torch.nonzero(plabels == c).flatten() for c in range(10)]
    te, unet = make_unet_models(used)
    ema_te, ema_unet = make_unet_models(used)
    ema_te.load_state_dict(te.state_dict()); ema_unet.load_state_dict(unet.state_dict())
    params = list(te.parameters()) + list(unet.parameters())
    ema_params = list(ema_te.parameters()) + list(ema_unet.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    step, elapsed0 = 0, 0.0
    if args.init and not (args.resume and os.path.exists(run.ckpt)):
        s = torch.load(args.init)  # warm start: weights only (EMA copies start from the weights)
        te.load_state_dict(s["ema_te"]); unet.load_state_dict(s["ema_unet"])
        ema_te.load_state_dict(s["ema_te"]); ema_unet.load_state_dict(s["ema_unet"])
        run.say(f"warm start from {args.init} (its step {s['step']})")
    if args.resume and os.path.exists(run.ckpt):
        s = torch.load(run.ckpt)
        te.load_state_dict(s["te"]); unet.load_state_dict(s["unet"])
        ema_te.load_state_dict(s["ema_te"]); ema_unet.load_state_dict(s["ema_unet"]); opt.load_state_dict(s["opt"])
        step, elapsed0 = s["step"], s["elapsed"]
    run.say(f"unet {pred}: {sum(p.numel() for p in unet.parameters())} + text {sum(p.numel() for p in te.parameters())} "
            f"parameters, {len(used)} token ids, scaling_factor {scaling:.5f}, step {step}, {args.threads} thread(s)")
    abar = torch.cumprod(1 - betas(), 0)
    g = torch.Generator().manual_seed(args.seed + step)
    t0, last, losses = time.time(), time.time(), []

    def save():
        torch.save({"te": te.state_dict(), "unet": unet.state_dict(), "ema_te": ema_te.state_dict(),
                    "ema_unet": ema_unet.state_dict(), "opt": opt.state_dict(), "step": step,
                    "elapsed": cpu(), "prediction": pred, "scaling_factor": scaling,
                    "used": used, "loss": float(np.mean(losses[-200:])) if losses else None}, run.ckpt)

    # The budget is CPU time of this process (on a shared machine the wall time is
    # longer); --wall-minutes caps the wall time of this invocation.
    c0 = time.process_time()

    def cpu():
        return elapsed0 + time.process_time() - c0

    while cpu() < 60 * args.minutes and time.time() - t0 < 60 * args.wall_minutes:
        for grp in opt.param_groups:
            grp["lr"] = run.lr(args.lr, step, cpu())
        idx = torch.randint(0, mean.shape[0], (args.batch,), generator=g)
        x0 = (mean[idx] + torch.randn(mean[idx].shape, generator=g) * (0.5 * logvar[idx]).exp()) * scaling
        pick = torch.stack([by_class[c][torch.randint(0, len(by_class[c]), (1,), generator=g)][0] for c in labels[idx].tolist()])
        tok = ids[pick]
        drop = torch.rand(args.batch, generator=g) < 0.1
        tok = torch.where(drop[:, None], empty[None, :], tok)
        t = torch.randint(0, 1000, (args.batch,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        a = abar[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        target = eps if pred == "epsilon" else a.sqrt() * eps - (1 - a).sqrt() * x0
        h, _ = te(tok)
        loss = (unet(xt, t, h) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema_params, params):
                e.mul_(decay).add_(p.detach(), alpha=1 - decay)
        losses.append(loss.item())
        if time.time() - last > 60:
            run.say(f"step {step} loss {np.mean(losses[-200:]):.5f} lr {opt.param_groups[0]['lr']:.2e} "
                    f"{(time.time() - t0) / max(1, len(losses)):.2f} s/step wall, cpu {cpu() / 60:.1f} min")
            save()
            last = time.time()
    save()
    run.say(f"unet {pred} done: step {step}, loss (last 200) {np.mean(losses[-200:]) if losses else float('nan'):.5f}, "
            f"{cpu() / 60:.1f} CPU minutes, {(time.time() - t0) / 60:.1f} wall minutes this run")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("stage", choices=["vae", "unet", "encode"])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--out", default="out/latent")
    ap.add_argument("--prediction", default="epsilon", choices=["epsilon", "v_prediction"])
    ap.add_argument("--wall-minutes", type=float, default=1e9, help="unet: stop this invocation after this wall time")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", default="", help="start from this checkpoint's weights (vae: a fine-tune; unet: a warm start)")
    ap.add_argument("--equivariance", type=float, default=0.0,
                    help="vae: weight of the pooling-equivariance loss (0: plain KL autoencoder)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.stage == "vae":
        args.lr = args.lr or 2e-3
        train_vae(args)
    elif args.stage == "encode":
        vae = models.VAE()
        vae.load_state_dict(torch.load(os.path.join(args.out, "vae.pt"))["vae"])
        encode_all(args, Run(args, "vae"), vae)
    else:
        args.lr = args.lr or 1e-3
        train_unet(args)


if __name__ == "__main__":
    main()
