"""Writes reference.json: resizes of one random 7x9 plane by torch 1.13's
interpolate and PIL's Image.resize (mode "F", float32), the libraries whose
conventions package resize follows. Run with Debian's python3-torch and
python3-pil:

    /usr/bin/python3 resize/testdata/reference.py
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

rng = np.random.RandomState(0)
x = rng.rand(7, 9).astype(np.float32)
t = torch.from_numpy(x)[None, None]
im = Image.fromarray(x, mode="F")


def torch_resize(h, w, mode, **kw):
    if mode in ("bilinear", "bicubic"):
        kw["align_corners"] = False
    return F.interpolate(t, size=(h, w), mode=mode, **kw)[0, 0].numpy()


def pil_resize(h, w, f):
    return np.array(im.resize((w, h), f))


cases = []


def add(strategy, lib, h, w, y):
    cases.append({"strategy": strategy, "library": lib, "h": h, "w": w, "want": [float(v) for v in y.reshape(-1)]})


for h, w in [(15, 20), (3, 4), (21, 27), (7, 9)]:
    add("bilinear", "torch bilinear", h, w, torch_resize(h, w, mode="bilinear"))
    add("antialias-bilinear", "torch bilinear antialias", h, w, torch_resize(h, w, mode="bilinear", antialias=True))
    add("antialias-bilinear", "PIL BILINEAR", h, w, pil_resize(h, w, Image.BILINEAR))
    add("bicubic", "PIL BICUBIC", h, w, pil_resize(h, w, Image.BICUBIC))
    add("bicubic", "torch bicubic antialias", h, w, torch_resize(h, w, mode="bicubic", antialias=True))
    add("lanczos3", "PIL LANCZOS", h, w, pil_resize(h, w, Image.LANCZOS))
    add("nearest", "torch nearest-exact", h, w, torch_resize(h, w, mode="nearest-exact"))
    add("nearest", "PIL NEAREST", h, w, pil_resize(h, w, Image.NEAREST))
for h, w in [(7, 3), (1, 1), (7, 9)]:  # integer factors: torch's area is average pooling
    add("area", "torch area", h, w, torch_resize(h, w, mode="area"))

out = {"src": [float(v) for v in x.reshape(-1)], "h": 7, "w": 9, "cases": cases}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.json"), "w") as f:
    f.write('{"h": 7, "w": 9, "src": %s, "cases": [\n' % json.dumps(out["src"]))
    f.write(",\n".join(json.dumps(c) for c in cases))
    f.write("\n]}\n")
print(len(cases), "cases")
