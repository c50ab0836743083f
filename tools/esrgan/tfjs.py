"""Reads a TensorFlow.js layers model (model.json and its weight shards) into
plain Python: the Keras functional graph as a list of layers and the weights
as NumPy arrays. Used by convert.py (to ONNX) and reference.py (a NumPy
forward pass); neither needs TensorFlow.

Only the layer types of UpscalerJS's RDN models are supported; any other
layer, or an option these layers do not implement (strides, dilation, groups,
channels_first, a padding or activation this reader does not know), raises
Unsupported with the layer's name and what is wrong.
"""
import json
import os

import numpy as np

SUPPORTED = ("InputLayer", "Conv2D", "Activation", "ReLU", "Concatenate", "Add", "UpSampling2D")
ACTIVATIONS = ("linear", "relu")


class Unsupported(Exception):
    """A layer or option the converter does not implement."""


class Layer:
    """One Keras layer: its class, name, inputs (layer names) and config."""

    def __init__(self, cls, name, inputs, config):
        self.cls, self.name, self.inputs, self.config = cls, name, inputs, config

    def __repr__(self):
        return f"{self.cls}({self.name} <- {', '.join(self.inputs)})"


def _dtype(name):
    if name == "float32":
        return np.float32
    raise Unsupported(f"weights of dtype {name} (only float32 shards are read; quantised weights are not)")


def _check(layer):
    c, n = layer.config, layer.name
    if layer.cls not in SUPPORTED:
        raise Unsupported(f"layer {n}: type {layer.cls} is not supported (supported: {', '.join(SUPPORTED)})")
    if c.get("data_format", "channels_last") != "channels_last":
        raise Unsupported(f"layer {n}: data_format {c['data_format']} (only channels_last)")
    if layer.cls == "Conv2D":
        kh, kw = c["kernel_size"]
        if list(c.get("strides", [1, 1])) != [1, 1]:
            raise Unsupported(f"layer {n}: strides {c['strides']} (only 1)")
        if list(c.get("dilation_rate", [1, 1])) != [1, 1]:
            raise Unsupported(f"layer {n}: dilation_rate {c['dilation_rate']} (only 1)")
        if c.get("groups", 1) != 1:
            raise Unsupported(f"layer {n}: groups {c['groups']} (only 1)")
        pad = c.get("padding", "valid")
        if pad == "same" and (kh % 2 == 0 or kw % 2 == 0):
            raise Unsupported(f"layer {n}: padding same with even kernel {kh}x{kw}")
        if pad not in ("same", "valid"):
            raise Unsupported(f"layer {n}: padding {pad}")
        if pad == "valid" and (kh, kw) != (1, 1):
            raise Unsupported(f"layer {n}: padding valid with a {kh}x{kw} kernel (only 1x1) would shrink the image")
        if c.get("activation", "linear") not in ACTIVATIONS:
            raise Unsupported(f"layer {n}: activation {c['activation']} (supported: {', '.join(ACTIVATIONS)})")
    if layer.cls == "Activation" and c["activation"] not in ACTIVATIONS:
        raise Unsupported(f"layer {n}: activation {c['activation']} (supported: {', '.join(ACTIVATIONS)})")
    if layer.cls == "ReLU":
        if c.get("max_value") is not None or c.get("negative_slope", 0) != 0 or c.get("threshold", 0) != 0:
            raise Unsupported(f"layer {n}: ReLU with max_value/negative_slope/threshold (only the plain ReLU)")
    if layer.cls == "Concatenate" and c.get("axis", -1) not in (-1, 3):
        raise Unsupported(f"layer {n}: Concatenate on axis {c['axis']} (only the channel axis, -1 or 3)")
    if layer.cls == "UpSampling2D":
        if c.get("interpolation", "nearest") != "nearest":
            raise Unsupported(f"layer {n}: UpSampling2D interpolation {c['interpolation']} (only nearest)")
    if layer.cls == "InputLayer":
        shape = c.get("batch_input_shape")
        if shape is None or len(shape) != 4:
            raise Unsupported(f"layer {n}: input shape {shape} (only images [N, H, W, C])")


def load(path):
    """Returns (layers, inputs, outputs, weights) of the model.json at path.

    layers is in the file's (topological) order; inputs and outputs are layer
    names; weights maps "layer/kernel" and "layer/bias" to arrays in Keras
    layout (kernel [kh, kw, in, out]).
    """
    with open(path) as f:
        model = json.load(f)
    if model.get("format") != "layers-model":
        raise Unsupported(f"{path}: format {model.get('format')!r} (only TF.js layers-model; graph models are not read)")
    topo = model["modelTopology"]
    cfg = topo.get("model_config", topo)
    if cfg["class_name"] not in ("Functional", "Model"):
        raise Unsupported(f"{path}: model class {cfg['class_name']} (only functional models)")
    layers = []
    for l in cfg["config"]["layers"]:
        nodes = l.get("inbound_nodes", [])
        if len(nodes) > 1:
            raise Unsupported(f"layer {l['name']}: called {len(nodes)} times (shared layers are not supported)")
        inputs = []
        for node in nodes:
            for src in node:
                if src[1] != 0 or src[2] != 0:
                    raise Unsupported(f"layer {l['name']}: input {src[:3]} is not the first output of the first call")
                inputs.append(src[0])
        layer = Layer(l["class_name"], l["name"], inputs, l["config"])
        _check(layer)
        layers.append(layer)
    ins = [x[0] for x in cfg["config"]["input_layers"]]
    outs = [x[0] for x in cfg["config"]["output_layers"]]
    if len(ins) != 1 or len(outs) != 1:
        raise Unsupported(f"{path}: {len(ins)} inputs and {len(outs)} outputs (only one of each)")

    weights = {}
    base = os.path.dirname(path)
    for group in model["weightsManifest"]:
        blob = b"".join(open(os.path.join(base, p), "rb").read() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            if "quantization" in w:
                raise Unsupported(f"weight {w['name']}: quantised weights are not supported")
            dt = _dtype(w["dtype"])
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            size = n * np.dtype(dt).itemsize
            if off + size > len(blob):
                raise Unsupported(f"weight {w['name']}: shard too short ({len(blob)} bytes, need {off + size})")
            weights[w["name"]] = np.frombuffer(blob, dtype="<f4", count=n, offset=off).reshape(w["shape"]).copy()
            off += size
        if off != len(blob):
            raise Unsupported(f"weights group {group['paths']}: {len(blob) - off} bytes left over")
    for layer in layers:
        if layer.cls == "Conv2D":
            k = weights.get(layer.name + "/kernel")
            if k is None:
                raise Unsupported(f"layer {layer.name}: no kernel in the weights manifest")
            kh, kw = layer.config["kernel_size"]
            if k.shape[:2] != (kh, kw) or k.shape[3] != layer.config["filters"]:
                raise Unsupported(f"layer {layer.name}: kernel shape {k.shape} does not match the config")
            if layer.config.get("use_bias", True) and layer.name + "/bias" not in weights:
                raise Unsupported(f"layer {layer.name}: no bias in the weights manifest")
    return layers, ins[0], outs[0], weights
