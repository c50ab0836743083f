"""Writes testdata/video/render_golden.json: tools/video/clips.py's render (torch's
affine_grid + grid_sample) on a synthetic 28x28 image under a few motions, the reference
for examples/internal/video's Go Render.

Usage (from the repository root): /usr/bin/python3 tools/video/golden.py
"""
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clips import render  # noqa: E402


def main():
    h = w = 28
    yy, xx = np.mgrid[0:h, 0:w]
    img = (np.sin(xx / 3.0) * np.cos(yy / 5.0) * 0.9 + ((xx - 14) ** 2 + (yy - 12) ** 2 < 60) * 0.1).astype(np.float32)
    motions = [
        ([-2.5, 1.5, 0.0, 1.0], [2.5, -1.5, 0.0, 1.0]),
        ([0.0, 0.0, -math.radians(20), 1.0], [0.0, 0.0, math.radians(20), 1.0]),
        ([0.0, 0.0, 0.0, 0.8], [0.0, 0.0, 0.0, 1.07]),
        ([1.0, -3.0, math.radians(12), 1.05], [-2.0, 3.0, -math.radians(15), 0.78]),
    ]
    cases = []
    for frames in (1, 4):
        for s, e in motions:
            out = render(img[None], np.array([s]), np.array([e]), frames)
            cases.append({"frames": frames, "start": s, "end": e,
                          "out": [round(float(v), 6) for v in out.numpy().ravel()]})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata", "video", "render_golden.json")
    with open(path, "w") as f:
        json.dump({"h": h, "w": w, "image": [round(float(v), 6) for v in img.ravel()], "cases": cases}, f)


if __name__ == "__main__":
    main()
