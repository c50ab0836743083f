"""Converts a TensorFlow.js layers model of a super-resolution network (the
RDNs of UpscalerJS's @upscalerjs/esrgan-slim: Conv2D, ReLU, Concatenate, Add,
UpSampling2D) to ONNX with the onnx package alone (no TensorFlow).

The ONNX graph keeps the Keras interface: input LR float32 [N, H, W, 3] and
output SR float32 [N, s*H, s*W, 3] (NHWC, RGB, values in [0, 255]), with N,
H and W dynamic. Inside, it works in NCHW: one Transpose after the input,
one before the output. Conv2D becomes Conv (kernel transposed from Keras'
[kh, kw, in, out] to [out, in, kh, kw], "same" padding as symmetric pads),
ReLU Relu, Concatenate Concat on the channel axis, Add a chain of Add,
UpSampling2D a nearest-neighbour Resize (asymmetric coordinates, floor:
an exact repeat). Any other layer or option is refused with a message
naming it (see tfjs.py).

Usage:
  /usr/bin/python3 tools/esrgan/convert.py MODEL_JSON OUT_ONNX --scale S [--source TEXT]

The output is deterministic: the same model.json gives the same bytes.
"""
import argparse
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import tfjs

OPSET = 17
NCHW_AXIS = {-1: 1, 3: 1}


def convert(path, scale, source=""):
    layers, inp, out, weights = tfjs.load(path)
    nodes, inits = [], []
    name = {}  # Keras layer -> ONNX tensor (NCHW)

    def relu(x, n):
        nodes.append(helper.make_node("Relu", [x], [n], name=n))
        return n

    for l in layers:
        c = l.config
        ln = "rdn/" + l.name  # tensor names apart from the graph's LR and SR
        if l.cls == "InputLayer":
            if c["batch_input_shape"][3] != 3:
                raise tfjs.Unsupported(f"input {l.name}: {c['batch_input_shape'][3]} channels (only RGB)")
            nodes.append(helper.make_node("Transpose", ["LR"], [ln + "_nchw"], name=ln + "_nchw", perm=[0, 3, 1, 2]))
            name[l.name] = ln + "_nchw"
            continue
        ins = [name[i] for i in l.inputs]
        if l.cls == "Conv2D":
            k = weights[l.name + "/kernel"]
            kh, kw = k.shape[:2]
            w = numpy_helper.from_array(np.ascontiguousarray(k.transpose(3, 2, 0, 1)), l.name + "/W")
            inits.append(w)
            args = [ins[0], w.name]
            if c.get("use_bias", True):
                b = numpy_helper.from_array(weights[l.name + "/bias"], l.name + "/B")
                inits.append(b)
                args.append(b.name)
            ph, pw = (kh // 2, kw // 2) if c["padding"] == "same" else (0, 0)
            y = ln if c.get("activation", "linear") == "linear" else ln + "_conv"
            nodes.append(helper.make_node("Conv", args, [y], name=y, kernel_shape=[kh, kw], pads=[ph, pw, ph, pw], strides=[1, 1], dilations=[1, 1], group=1))
            if c.get("activation", "linear") == "relu":
                y = relu(y, ln)
            name[l.name] = y
        elif l.cls in ("Activation", "ReLU"):
            if l.cls == "Activation" and c["activation"] == "linear":
                name[l.name] = ins[0]
            else:
                name[l.name] = relu(ins[0], ln)
        elif l.cls == "Concatenate":
            nodes.append(helper.make_node("Concat", ins, [ln], name=ln, axis=NCHW_AXIS[c.get("axis", -1)]))
            name[l.name] = ln
        elif l.cls == "Add":
            if len(ins) < 2:
                raise tfjs.Unsupported(f"layer {l.name}: Add of {len(ins)} inputs")
            acc = ins[0]
            for j, x in enumerate(ins[1:]):
                y = ln if j == len(ins) - 2 else f"{ln}_{j}"
                nodes.append(helper.make_node("Add", [acc, x], [y], name=y))
                acc = y
            name[l.name] = acc
        elif l.cls == "UpSampling2D":
            sh, sw = c["size"]
            sc = numpy_helper.from_array(np.array([1, 1, sh, sw], dtype=np.float32), l.name + "/scales")
            inits.append(sc)
            nodes.append(helper.make_node("Resize", [ins[0], "", sc.name], [ln], name=ln, mode="nearest",
                                          coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
            name[l.name] = ln
        else:  # tfjs.load refuses these already
            raise tfjs.Unsupported(f"layer {l.name}: type {l.cls}")
    up = [l.config["size"] for l in layers if l.cls == "UpSampling2D"]
    total = (int(np.prod([u[0] for u in up])), int(np.prod([u[1] for u in up])))
    if total != (scale, scale):
        raise tfjs.Unsupported(f"the graph upsamples by {total[0]}x{total[1]}, not the declared --scale {scale}")
    nodes.append(helper.make_node("Transpose", [name[out]], ["SR"], name="SR_nhwc", perm=[0, 2, 3, 1]))
    x = helper.make_tensor_value_info("LR", TensorProto.FLOAT, ["N", "H", "W", 3])
    y = helper.make_tensor_value_info("SR", TensorProto.FLOAT, ["N", f"{scale}*H", f"{scale}*W", 3])
    graph = helper.make_graph(nodes, "rdn_x%d" % scale, [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ugo tools/esrgan/convert.py")
    model.ir_version = 8
    meta = {"scale": str(scale), "layout": "NHWC", "range": "0,255", "channels": "RGB"}
    if source:
        meta["source"] = source
    for k, v in meta.items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.checker.check_model(model, full_check=True)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_json")
    ap.add_argument("out")
    ap.add_argument("--scale", type=int, required=True)
    ap.add_argument("--source", default="")
    a = ap.parse_args()
    try:
        m = convert(a.model_json, a.scale, a.source)
    except tfjs.Unsupported as e:
        sys.exit(f"convert: {a.model_json}: {e}")
    onnx.save(m, a.out)
    n = sum(int(np.prod(i.dims)) for i in m.graph.initializer if not i.name.endswith("/scales"))
    print(f"convert: {a.out}: {len(m.graph.node)} nodes, {n:,} parameters", file=sys.stderr)


if __name__ == "__main__":
    main()
