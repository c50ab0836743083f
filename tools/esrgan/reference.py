"""A NumPy forward pass of a TensorFlow.js layers model, written from the
Keras layer definitions (NHWC throughout, kernels in Keras' [kh, kw, in, out]
layout), independent of the ONNX graph convert.py builds: the ONNX model is
checked against it (goldens) and the restoration scores are computed with it.

Usage:
  /usr/bin/python3 tools/esrgan/reference.py goldens PKG_MODELS_DIR OUT_DIR
      writes OUT_DIR/x{2,3,4,8}.f32 and OUT_DIR/goldens.json: for each scale a
      crop of a real photograph (skimage's astronaut, downscaled) and the
      model's output on it, float32 little-endian, NHWC.
"""
import json
import os
import sys

import numpy as np

import tfjs


def conv2d(x, k, b, padding):
    """Keras Conv2D, stride 1: x [N, H, W, Cin], k [kh, kw, Cin, Cout]."""
    kh, kw = k.shape[:2]
    if padding == "same":
        ph, pw = kh // 2, kw // 2
        x = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    n, h, w, _ = x.shape
    oh, ow = h - kh + 1, w - kw + 1
    y = np.zeros((n, oh, ow, k.shape[3]), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            y += np.tensordot(x[:, i:i + oh, j:j + ow, :], k[i, j], axes=([3], [0]))
    if b is not None:
        y += b
    return y


def forward(layers, inp, out, weights, x):
    """Runs the model on x [N, H, W, 3] (float, [0, 255]) in float64."""
    vals = {}
    for l in layers:
        c = l.config
        ins = [vals[i] for i in l.inputs]
        if l.cls == "InputLayer":
            y = np.asarray(x, dtype=np.float64)
        elif l.cls == "Conv2D":
            y = conv2d(ins[0], weights[l.name + "/kernel"].astype(np.float64),
                       weights[l.name + "/bias"].astype(np.float64) if c.get("use_bias", True) else None, c["padding"])
            if c.get("activation", "linear") == "relu":
                y = np.maximum(y, 0)
        elif l.cls in ("Activation", "ReLU"):
            y = ins[0] if c.get("activation") == "linear" else np.maximum(ins[0], 0)
        elif l.cls == "Concatenate":
            y = np.concatenate(ins, axis=-1)
        elif l.cls == "Add":
            y = sum(ins[1:], ins[0])
        elif l.cls == "UpSampling2D":
            sh, sw = c["size"]
            y = ins[0].repeat(sh, axis=1).repeat(sw, axis=2)
        else:
            raise tfjs.Unsupported(l.cls)
        vals[l.name] = y
    return vals[out]


def load(models_dir, scale):
    return tfjs.load(os.path.join(models_dir, f"x{scale}", "model.json"))


def astronaut_crop(size, scale):
    """A size x size crop of skimage's astronaut (a NASA photograph, public
    domain), downscaled by scale with PIL's bicubic filter, as float32 [0, 255]."""
    from PIL import Image
    from skimage import data
    img = Image.fromarray(data.astronaut())
    # The face and the flag, at a scale where the crop holds detail.
    box = (160, 40, 160 + size * scale, 40 + size * scale)
    lr = img.crop(box).resize((size, size), Image.BICUBIC)
    return np.asarray(lr, dtype=np.float32)


def goldens(models_dir, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    index = {"source": "@upscalerjs/esrgan-slim@1.0.0", "input": "skimage.data.astronaut crop, bicubic-downscaled",
             "layout": "NHWC float32 little-endian: input [1, h, w, 3] then output [1, s*h, s*w, 3]", "scales": {}}
    for s in (2, 3, 4, 8):
        layers, inp, out, w = load(models_dir, s)
        lr = astronaut_crop(20, s)[None]
        sr = forward(layers, inp, out, w, lr).astype(np.float32)
        with open(os.path.join(out_dir, f"x{s}.f32"), "wb") as f:
            f.write(lr.astype("<f4").tobytes())
            f.write(sr.astype("<f4").tobytes())
        index["scales"][str(s)] = {"file": f"x{s}.f32", "input": list(lr.shape), "output": list(sr.shape),
                                   "output_min": float(sr.min()), "output_max": float(sr.max())}
        print(f"x{s}: {lr.shape} -> {sr.shape}, output range [{sr.min():.1f}, {sr.max():.1f}]", file=sys.stderr)
    with open(os.path.join(out_dir, "goldens.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "goldens":
        sys.exit(__doc__)
    goldens(sys.argv[2], sys.argv[3])
