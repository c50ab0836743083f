"""Generates the tiny ONNX test models of package onnx (testdata/onnx/).

Usage (from the repository root):

    nice /usr/bin/python3 tools/testmodels/gen.py [--out testdata/onnx]

Every model computes the same small function, so that the Go tests can
check ONNX Runtime's output against a few lines of Go (onnx/reference_test.go):

    eps[n,o,h,w] = sum_{i,ky,kx} W[o,i,ky,kx] * x[n,i,h+ky-1,w+kx-1]   (3x3 conv, zero padding 1)
                 + B[o] + A[o] * t[n] / 1000
                 (+ sum_d P[o,d] * mean_l c[n,l,d]   for the model with an extra input)

with C = 2 channels in and out and weights given by integer formulas
(exactly representable in float16):

    W[o,i,ky,kx] = ((3*o + 5*i + 7*ky + 11*kx) % 13 - 6) / 8
    B[o]         = (o + 1) / 4
    A[o]         = (2*o + 1) / 2
    P[o,d]       = ((o + 2*d) % 5 - 2) / 4            (D = 4)

Models (all opset 17, weights inline, each a few KB):

    dynamic.onnx  x [N,2,H,W] f32, t [N] f32 -> eps [N,2,H,W]; dynamic N, H, W (torch export)
    int64.onnx    same, t [N] int64 (cast to float inside the graph)
    fixed.onnx    x [1,2,8,8] f32, t [1] f32 -> eps [1,2,8,8]; nothing dynamic
    fp16.onnx     x [N,2,H,W] f16, t [N] f16 -> eps f16; built from dynamic.onnx
                  by converting types (CPU torch 1.13 cannot trace a half conv)
    scalar.onnx   x [N,2,H,W] f32, t scalar f32 (one timestep for the whole batch)
    extra.onnx    diffusers names: sample, timestep [N] f32, encoder_hidden_states
                  [N,L,4] f32 -> out_sample; dynamic N, H, W, L
    fp16scalar.onnx  optimum >= 1.24's float16 UNet signature: sample [N,2,H,W] f16,
                  timestep [] f16 (rank 0), encoder_hidden_states [N,L,4] f16
                  -> out_sample f16; built from a scalar-timestep extra.onnx
    video.onnx    x [N,2,F,H,W] f32, t [N] f32 -> eps [N,2,F,H,W]; dynamic N, F, H, W:
                  the convolution is 3x3x3 over (F, H, W), with weights
                  W[o,i,ky,kx] * (kf+1)/4 for frame offset kf-1 (zero padding 1)
    video_f4.onnx the same with the frame count fixed at 4 (N, H, W dynamic)

With int64.onnx (diffusers' script 2022, optimum <= 1.23), dynamic.onnx
(float32 [N], diffusers' script since Nov 2022), scalar.onnx (rank-0 float32)
and fp16scalar.onnx these cover the timestep forms real exporters write.

One VAE encoder, for package pipeline:

    vae_encoder_params.onnx  sample [N,3,H,W] f32 -> latent_parameters [N,8,H/8,W/8]:
                  optimum >= 1.23's output, the posterior's mean (channels 0-3)
                  and log-variance (4-7) stacked; the mean is the latent_sample
                  of testdata/sdtiny/fp32/vae_encoder/model.onnx (its weights are
                  read from there), the log-variance a second convolution

Hostile models (built node by node with onnx.helper; they test how the
backend fails, not what it computes):

    nan.onnx      x [N,2,H,W], t [N] -> eps = sqrt(-1 - x*x): NaN everywhere
    pool2.onnx    x [N,2,H,W], t [N] -> eps = x - up2(avgpool2(x)): dynamic H, W
                  that must be even (odd sizes fail inside ONNX Runtime)
    shrink.onnx   x [N,2,H,W], t [N] -> eps [N,2,H/2,W/2]: an output the shape
                  of x cannot hold
    intout.onnx   x [N,2,H,W], t [N] -> eps int64: an output no noise can be read from
    rank3.onnx    x [N,H,W], t [N] -> eps [N,H,W]: a sample of rank 3

Only Debian's torch 1.13 and onnx are needed (/usr/bin/python3).
"""
import argparse
import os

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

C = 2
D = 4


def weights():
    w = np.zeros((C, C, 3, 3), np.float32)
    for o in range(C):
        for i in range(C):
            for ky in range(3):
                for kx in range(3):
                    w[o, i, ky, kx] = ((3 * o + 5 * i + 7 * ky + 11 * kx) % 13 - 6) / 8
    b = np.array([(o + 1) / 4 for o in range(C)], np.float32)
    a = np.array([(2 * o + 1) / 2 for o in range(C)], np.float32)
    p = np.array([[((o + 2 * d) % 5 - 2) / 4 for d in range(D)] for o in range(C)], np.float32)
    return w, b, a, p


class Net(torch.nn.Module):
    def __init__(self, int_t=False, scalar_t=False, extra=False):
        super().__init__()
        w, b, a, p = weights()
        self.conv = torch.nn.Conv2d(C, C, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(w))
            self.conv.bias.copy_(torch.from_numpy(b))
        self.register_buffer("a", torch.from_numpy(a).view(1, C, 1, 1))
        self.register_buffer("p", torch.from_numpy(p))
        self.int_t = int_t
        self.scalar_t = scalar_t
        self.extra = extra

    def forward(self, x, t, c=None):
        if self.int_t:
            t = t.float()
        t = t.reshape(-1, 1, 1, 1)
        y = self.conv(x) + self.a * t / 1000.0
        if self.extra:
            h = c.mean(dim=1) @ self.p.t()
            y = y + h.reshape(-1, C, 1, 1)
        return y


class VideoNet(torch.nn.Module):
    """Net's function on N,C,F,H,W samples: a 3x3x3 convolution over frames and pixels."""

    def __init__(self):
        super().__init__()
        w, b, a, _ = weights()
        self.conv = torch.nn.Conv3d(C, C, 3, padding=1)
        w5 = np.stack([w * (kf + 1) / 4 for kf in range(3)], axis=2)  # [o,i,kf,ky,kx]
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(w5))
            self.conv.bias.copy_(torch.from_numpy(b))
        self.register_buffer("a", torch.from_numpy(a).view(1, C, 1, 1, 1))

    def forward(self, x, t):
        return self.conv(x) + self.a * t.reshape(-1, 1, 1, 1, 1) / 1000.0


def export(model, args, path, input_names, output_names, dynamic_axes):
    model.eval()
    torch.onnx.export(
        model, args, path, opset_version=17,
        input_names=input_names, output_names=output_names,
        dynamic_axes=dynamic_axes, do_constant_folding=True)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    return m


def to_fp16(src, dst):
    """Rewrites a float32 model into a float16 one."""
    m = onnx.load(src)
    g = m.graph
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT:
            arr = numpy_helper.to_array(init).astype(np.float16)
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
    for node in g.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                    arr = numpy_helper.to_array(attr.t).astype(np.float16)
                    attr.t.CopyFrom(numpy_helper.from_array(arr))
        if node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to" and attr.i == TensorProto.FLOAT:
                    attr.i = TensorProto.FLOAT16
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = TensorProto.FLOAT16
    del g.value_info[:]
    onnx.checker.check_model(m)
    onnx.save(m, dst)


def hostile(out):
    """The hostile models: see the module docstring."""
    f = TensorProto.FLOAT
    x = helper.make_tensor_value_info("x", f, ["N", C, "H", "W"])
    t = helper.make_tensor_value_info("t", f, ["N"])

    def save(name, nodes, out_shape, inits=()):
        eps = helper.make_tensor_value_info("eps", f, out_shape)
        g = helper.make_graph(nodes, name, [x, t], [eps], initializer=list(inits))
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="ugo-testmodels")
        m.ir_version = 8
        onnx.checker.check_model(m)
        onnx.save(m, os.path.join(out, name))

    one = numpy_helper.from_array(np.array(1, dtype=np.float32), "one")
    save("nan.onnx", [
        helper.make_node("Mul", ["x", "x"], ["xx"]),
        helper.make_node("Add", ["xx", "one"], ["xx1"]),
        helper.make_node("Neg", ["xx1"], ["neg"]),
        helper.make_node("Sqrt", ["neg"], ["eps"]),
    ], ["N", C, "H", "W"], [one])
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "scales")
    save("pool2.onnx", [
        helper.make_node("AveragePool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Resize", ["p", "", "scales"], ["u"], mode="nearest"),
        helper.make_node("Sub", ["x", "u"], ["eps"]),
    ], ["N", C, "H", "W"], [scales])
    save("shrink.onnx", [
        helper.make_node("AveragePool", ["x"], ["eps"], kernel_shape=[2, 2], strides=[2, 2]),
    ], ["N", C, "H2", "W2"])

    eps64 = helper.make_tensor_value_info("eps", TensorProto.INT64, ["N", C, "H", "W"])
    g = helper.make_graph([helper.make_node("Cast", ["x"], ["eps"], to=TensorProto.INT64)], "intout.onnx", [x, t], [eps64])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="ugo-testmodels")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, "intout.onnx"))

    x3 = helper.make_tensor_value_info("x", f, ["N", "H", "W"])
    eps3 = helper.make_tensor_value_info("eps", f, ["N", "H", "W"])
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["eps"])], "rank3.onnx", [x3, t], [eps3])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="ugo-testmodels")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, "rank3.onnx"))


class ParamsEncoder(torch.nn.Module):
    """A VAE encoder returning the posterior's parameters, as optimum >= 1.23."""

    def __init__(self, weight, bias):
        super().__init__()
        self.mean = torch.nn.Conv2d(3, weight.shape[0], 8, stride=8)
        self.logvar = torch.nn.Conv2d(3, weight.shape[0], 8, stride=8)
        with torch.no_grad():
            self.mean.weight.copy_(torch.from_numpy(weight.copy()))
            self.mean.bias.copy_(torch.from_numpy(bias.copy()))
            self.logvar.weight.copy_(-torch.from_numpy(weight.copy()) / 2)
            self.logvar.bias.fill_(-1.0)

    def forward(self, sample):
        return torch.cat([self.mean(sample), self.logvar(sample)], dim=1)


def vae_encoder_params(src, dst):
    m = onnx.load(src)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    weight = next(v for v in inits.values() if v.ndim == 4)
    bias = next(v for v in inits.values() if v.ndim == 1)
    export(ParamsEncoder(weight, bias), (torch.randn(1, 3, 16, 16),), dst, ["sample"], ["latent_parameters"],
           {"sample": {0: "batch", 2: "height", 3: "width"},
            "latent_parameters": {0: "batch", 2: "height", 3: "width"}})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata/onnx")
    ap.add_argument("--sdtiny", default="testdata/sdtiny/fp32/vae_encoder/model.onnx",
                    help="the latent_sample VAE encoder whose weights vae_encoder_params.onnx reuses")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    x = torch.randn(2, C, 8, 8)
    t = torch.tensor([10.0, 500.0])
    dyn = {"x": {0: "N", 2: "H", 3: "W"}, "t": {0: "N"}, "eps": {0: "N", 2: "H", 3: "W"}}

    p = os.path.join(args.out, "dynamic.onnx")
    export(Net(), (x, t), p, ["x", "t"], ["eps"], dyn)

    export(Net(int_t=True), (x, torch.tensor([10, 500])), os.path.join(args.out, "int64.onnx"),
           ["x", "t"], ["eps"], dyn)

    export(Net(), (x[:1], t[:1]), os.path.join(args.out, "fixed.onnx"), ["x", "t"], ["eps"], None)

    to_fp16(p, os.path.join(args.out, "fp16.onnx"))

    export(Net(), (x, torch.tensor(10.0)), os.path.join(args.out, "scalar.onnx"), ["x", "t"], ["eps"],
           {"x": {0: "N", 2: "H", 3: "W"}, "eps": {0: "N", 2: "H", 3: "W"}})

    c = torch.randn(2, 3, D)
    export(Net(extra=True), (x, t, c), os.path.join(args.out, "extra.onnx"),
           ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
           {"sample": {0: "N", 2: "H", 3: "W"}, "timestep": {0: "N"},
            "encoder_hidden_states": {0: "N", 1: "L"}, "out_sample": {0: "N", 2: "H", 3: "W"}})

    x5 = torch.randn(2, C, 4, 8, 8)
    export(VideoNet(), (x5, t), os.path.join(args.out, "video.onnx"), ["x", "t"], ["eps"],
           {"x": {0: "N", 2: "F", 3: "H", 4: "W"}, "t": {0: "N"}, "eps": {0: "N", 2: "F", 3: "H", 4: "W"}})
    export(VideoNet(), (x5, t), os.path.join(args.out, "video_f4.onnx"), ["x", "t"], ["eps"],
           {"x": {0: "N", 3: "H", 4: "W"}, "t": {0: "N"}, "eps": {0: "N", 3: "H", 4: "W"}})

    hostile(args.out)

    scalar_extra = os.path.join(args.out, "fp16scalar.onnx")
    export(Net(extra=True), (x, torch.tensor(10.0), c), scalar_extra,
           ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
           {"sample": {0: "N", 2: "H", 3: "W"},
            "encoder_hidden_states": {0: "N", 1: "L"}, "out_sample": {0: "N", 2: "H", 3: "W"}})
    to_fp16(scalar_extra, scalar_extra)

    vae_encoder_params(args.sdtiny, os.path.join(args.out, "vae_encoder_params.onnx"))

    for name in sorted(os.listdir(args.out)):
        if name.endswith(".onnx"):
            path = os.path.join(args.out, name)
            m = onnx.load(path)
            ios = [(i.name, i.type.tensor_type.elem_type,
                    [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
                   for i in list(m.graph.input) + list(m.graph.output)]
            print(f"{name}: {os.path.getsize(path)} bytes {ios}")


if __name__ == "__main__":
    main()
