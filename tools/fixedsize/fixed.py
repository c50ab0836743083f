"""Writes testdata/models/fashion_unet_fixed28.onnx: the shipped Fashion-MNIST
UNet (testdata/models/fashion_unet.onnx) with its spatial axes static at the
training size, 28x28, as an export made with fixed spatial axes would have
them (torch.onnx.export without H and W in dynamic_axes). The batch axis N
stays dynamic. The weights and nodes are the shipped model's, unchanged:
only the declared shapes of the input x and the output eps change, so ONNX
Runtime refuses any other H or W, and package tiling is the way to sample
above 28x28 with it.

Usage (from the repository root):

    /usr/bin/python3 tools/fixedsize/fixed.py [--src testdata/models/fashion_unet.onnx] \
        [--out testdata/models/fashion_unet_fixed28.onnx] [--size 28]

Deterministic: the same source gives the same bytes.
"""

import argparse
import hashlib

import onnx


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default="testdata/models/fashion_unet.onnx")
    ap.add_argument("--out", default="testdata/models/fashion_unet_fixed28.onnx")
    ap.add_argument("--size", type=int, default=28)
    args = ap.parse_args()

    m = onnx.load(args.src)
    fixed = 0
    for v in list(m.graph.input) + list(m.graph.output):
        dims = v.type.tensor_type.shape.dim
        if len(dims) != 4:
            continue
        for d in dims[2:]:
            if d.dim_param not in ("H", "W"):
                raise SystemExit(f"{v.name}: spatial axis {d} is not the symbolic H or W of the dynamic export")
            d.Clear()
            d.dim_value = args.size
            fixed += 1
    if fixed != 4:
        raise SystemExit(f"fixed {fixed} axes, want H and W of x and eps")
    m.doc_string = f"fashion_unet.onnx with H and W static at {args.size} (tools/fixedsize/fixed.py)"
    onnx.checker.check_model(m)
    onnx.save(m, args.out)
    data = open(args.out, "rb").read()
    print(f"{args.out}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
