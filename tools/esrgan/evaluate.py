"""Restoration scores of the esrgan-slim models against bicubic: each real
photograph (skimage's sample photographs) and Fashion-MNIST test image is
cropped to a multiple of the scale, downscaled by the scale with PIL's
bicubic filter (antialiased) and rounded to 8 bits, then restored to the
original size by the model (reference.py's NumPy forward pass, which the
ONNX conversion is checked against) and by PIL's bicubic upscale. Reports
PSNR (dB, RGB, [0, 255], after clipping and rounding to 8 bits) and SSIM
(skimage.metrics.structural_similarity, data_range 255, mean over
channels) per image and scale, in Markdown.

Grey images (camera, Fashion-MNIST) are fed as three equal channels and the
output's channels averaged, as the Go super-resolution stage does.

Usage:
  /usr/bin/python3 tools/esrgan/evaluate.py PKG_DIR [--fashion N] > table.md

It ends with a check of the forward pass against the upscaled images
UpscalerJS ships in the package (assets/samples/*/result.png of
assets/fixture.png).
"""
import argparse
import gzip
import sys
import time

import numpy as np
from PIL import Image
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import reference

PHOTOS = ["astronaut", "camera", "chelsea", "coffee", "rocket"]


def to8(x):
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def restore(model, lr, scale):
    """lr uint8 [h, w] or [h, w, 3] -> (model, bicubic) uint8 at scale."""
    grey = lr.ndim == 2
    rgb = np.repeat(lr[..., None], 3, axis=2) if grey else lr
    sr = reference.forward(*model, rgb[None].astype(np.float32))[0]
    if grey:
        sr = sr.mean(axis=2)
    h, w = lr.shape[:2]
    bic = np.asarray(Image.fromarray(lr).resize((w * scale, h * scale), Image.BICUBIC))
    return to8(sr), bic


def scores(hr, out):
    ch = None if hr.ndim == 2 else 2
    return (peak_signal_noise_ratio(hr, out, data_range=255),
            structural_similarity(hr, out, data_range=255, channel_axis=ch))


def fashion(n):
    with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
        buf = f.read()
    return np.frombuffer(buf, dtype=np.uint8, offset=16).reshape(-1, 28, 28)[:n]


def upscalerjs_check(pkg):
    """The NumPy forward pass against the outputs UpscalerJS ships in the
    package (assets/fixture.png upscaled by its own TF.js run)."""
    fx = np.asarray(Image.open(f"{pkg}/assets/fixture.png"))[..., :3]
    for s in (2, 3, 4):
        want = np.asarray(Image.open(f"{pkg}/assets/samples/{s}x/result.png"))[..., :3].astype(np.int32)
        got = to8(reference.forward(*reference.load(f"{pkg}/models", s), fx[None].astype(np.float32))[0]).astype(np.int32)
        d = np.abs(got - want)
        print(f"UpscalerJS's own x{s} output of assets/fixture.png vs this forward pass (8-bit): "
              f"max abs diff {d.max()}, {np.count_nonzero(d)} of {d.size} values differ")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("package", help="the unpacked npm package (its models/ and assets/)")
    ap.add_argument("--scales", default="2,3,4,8")
    ap.add_argument("--fashion", type=int, default=200)
    a = ap.parse_args()
    scales = [int(s) for s in a.scales.split(",")]
    print("| image | size | scale | PSNR bicubic | PSNR ESRGAN | SSIM bicubic | SSIM ESRGAN |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    wins = total = 0
    for s in scales:
        model = reference.load(a.package + "/models", s)
        for name in PHOTOS:
            hr = getattr(data, name)()
            if hr.ndim == 3 and hr.shape[2] == 4:
                hr = hr[..., :3]
            h, w = (hr.shape[0] // s) * s, (hr.shape[1] // s) * s
            hr = hr[:h, :w]
            lr = np.asarray(Image.fromarray(hr).resize((w // s, h // s), Image.BICUBIC))
            t = time.time()
            sr, bic = restore(model, lr, s)
            pb, sb = scores(hr, bic)
            pe, se = scores(hr, sr)
            wins += pe > pb
            total += 1
            print(f"| {name} | {w}x{h} | x{s} | {pb:.2f} | {pe:.2f} | {sb:.4f} | {se:.4f} |", flush=True)
            print(f"{name} x{s}: {time.time() - t:.1f} s", file=sys.stderr)
        if a.fashion > 0 and 28 % s == 0:
            imgs = fashion(a.fashion)
            res = []
            for hr in imgs:
                lr = np.asarray(Image.fromarray(hr).resize((28 // s, 28 // s), Image.BICUBIC))
                sr, bic = restore(model, lr, s)
                res.append(scores(hr, bic) + scores(hr, sr))
            m = np.mean(res, axis=0)
            print(f"| Fashion-MNIST test, first {len(imgs)} (mean) | 28x28 | x{s} | {m[0]:.2f} | {m[2]:.2f} | {m[1]:.4f} | {m[3]:.4f} |", flush=True)
    print(f"\nESRGAN beats bicubic in PSNR on {wins} of {total} photographs.\n")
    upscalerjs_check(a.package)


if __name__ == "__main__":
    main()
