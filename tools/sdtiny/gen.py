"""Generates testdata/sdtiny: tiny Stable Diffusion 1.5-shaped ONNX pipelines.

Usage (from the repository root, with Debian's torch and onnx):

    nice -n 19 /usr/bin/python3 tools/sdtiny/gen.py [--out testdata/sdtiny]

Real Stable Diffusion weights cannot be downloaded where ugo is tested, so the
pipeline package is tested end to end on these stand-ins. They have random
weights and produce meaningless pictures, but every model has exactly the
input and output names, ranks, element types and dynamic axes of diffusers'
ONNX export of SD 1.5 (scripts/convert_stable_diffusion_checkpoint_to_onnx.py)
and the folder layout of diffusers' OnnxStableDiffusionPipeline and optimum:

    text_encoder  input_ids int32 [batch, sequence]
                  -> last_hidden_state [batch, sequence, 768], pooler_output [batch, 768]
    unet          sample [batch, channels, height, width], timestep [batch],
                  encoder_hidden_states [batch, sequence, 768] -> out_sample
    vae_decoder   latent_sample [batch, channels, height, width] -> sample [batch, 3, 8h, 8w]
    vae_encoder   sample [batch, channels, height, width] -> latent_sample [batch, 4, h/8, w/8]

Three variants:

    fp32/  float32 tensors; UNet timestep int64 (the diffusers script before
           its --fp16 option, and optimum); UNet weights stored as external
           data in unet/weights.pb, exactly as the diffusers script stores them
           (the real UNet is over 2 GB); no config.json files, so the pipeline
           must fall back to SD 1.x defaults.
    fp16/  float16 inputs, outputs and weights (diffusers' --fp16 export),
           timestep float16 [batch]; config.json files beside each model as
           optimum writes them (unet sample_size, vae scaling_factor).
           ONNX Runtime's CPU provider lacks float16 kernels for several ops
           and CPU torch 1.13 cannot trace half convolutions, so the graphs
           are exported in float32 and rewritten: float16 graph inputs and
           initializers are cast to float32 inside, outputs cast back.

    sd2v/  as fp32, with SD 2.x 768-v's signature: 1024-wide text states and
           prediction_type v_prediction; no config.json files (what diffusers'
           conversion script writes), so the training size (768) can only be
           inferred from those two.

The networks (a few thousand weights each):

    text encoder  token embedding of (id mod 997) + position embedding (16 dims),
                  a causal running mean over the sequence (like causal
                  attention), a linear map to 768 and LayerNorm; the pooled
                  output is the state at the end token (argmax id), as CLIP's.
    unet          sinusoidal time embedding and the sequence mean of the text
                  states added as a per-channel bias after conv_in, three
                  average-pool downsamplings and nearest upsamplings with skip
                  connections (so height and width must be multiples of 8, as
                  for SD's UNet), out = 0.9 sample + 0.5 tanh(conv_out(...)).
    vae decoder   conv, then three times (nearest 2x upsampling, conv), then
                  conv_out: a receptive field of under two latent pixels, so
                  tiled decoding equals whole decoding away from tile borders.
    vae encoder   one 8x8 stride-8 convolution.

The tokenizer is a CLIP byte-level BPE (vocab.json, merges.txt) learnt here
from a small built-in corpus: 512 byte tokens (in bytes_to_unicode order,
plain and with </w>), 300 merges, <|startoftext|> and <|endoftext|> last, as
in CLIP's own vocabulary. The scheduler is SD 1.5's scheduler_config.json.
"""
import argparse
import collections
import json
import math
import os
import shutil

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

HIDDEN = 768
LATENT = 4
CH = 16


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


CORPUS = """a photo of a cat sitting on a wooden table
a painting of a lighthouse on a rocky coast at sunset, highly detailed
an astronaut riding a horse on mars, digital art
a watercolor landscape with mountains and a river in the morning light
portrait of an old man with a beard, oil painting, dramatic lighting
a bowl of fruit on a kitchen counter, photograph, soft shadows
a city street at night in the rain with neon signs
blurry, low quality, deformed, ugly, bad anatomy, watermark, text
"""


def learn_bpe(corpus, n_merges):
    """Classic BPE on words of byte-level symbols with </w> on the last one."""
    b2u = bytes_to_unicode()
    counts = collections.Counter()
    for line in corpus.lower().split("\n"):
        for word in line.replace(",", " ").split():
            sym = "".join(b2u[b] for b in word.encode("utf-8"))
            counts[tuple(sym[:-1]) + (sym[-1] + "</w>",)] += 1
    merges = []
    words = dict(counts)
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        merges.append(best)
        nw = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            nw[tuple(out)] = nw.get(tuple(out), 0) + c
        words = nw
    return merges


def write_tokenizer(d):
    os.makedirs(d, exist_ok=True)
    b2u = bytes_to_unicode()
    base = list(b2u.values())
    vocab = base + [v + "</w>" for v in base]
    merges = learn_bpe(CORPUS, 300)
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    with open(os.path.join(d, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                   "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}, f, indent=2)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
                   "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                   "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}, f, indent=2)


class TextEncoder(torch.nn.Module):
    def __init__(self, hidden=HIDDEN):
        super().__init__()
        self.tok = torch.nn.Embedding(997, 16)
        self.pos = torch.nn.Parameter(torch.randn(77, 16))
        self.proj = torch.nn.Linear(16, hidden)
        self.norm = torch.nn.LayerNorm(hidden)

    def forward(self, input_ids):
        ids = input_ids.long()
        n, l = ids.shape
        h = self.tok(ids % 997) + self.pos[:l]
        h = torch.cumsum(h, dim=1) / torch.arange(1, l + 1, dtype=torch.float32).view(1, l, 1)
        h = self.norm(self.proj(h))
        end = input_ids.float().argmax(dim=-1)
        pooled = h[torch.arange(n), end]
        return h, pooled


class UNet(torch.nn.Module):
    def __init__(self, int_t, hidden=HIDDEN):
        super().__init__()
        self.int_t = int_t
        self.conv_in = torch.nn.Conv2d(LATENT, CH, 3, padding=1)
        self.t1 = torch.nn.Linear(16, CH)
        self.t2 = torch.nn.Linear(CH, CH)
        self.ctx = torch.nn.Linear(hidden, CH)
        self.down = torch.nn.ModuleList([torch.nn.Conv2d(CH, CH, 3, padding=1) for _ in range(3)])
        self.up = torch.nn.ModuleList([torch.nn.Conv2d(CH, CH, 3, padding=1) for _ in range(2)])
        self.conv_out = torch.nn.Conv2d(CH, LATENT, 3, padding=1)
        freqs = torch.exp(-math.log(10000.0) * torch.arange(8, dtype=torch.float32) / 8)
        self.register_buffer("freqs", freqs)

    def forward(self, sample, timestep, encoder_hidden_states):
        t = timestep.float().view(-1, 1) * self.freqs.view(1, -1)
        temb = torch.cat([torch.sin(t), torch.cos(t)], dim=1)
        temb = self.t2(torch.nn.functional.silu(self.t1(temb)))
        c = self.ctx(encoder_hidden_states.mean(dim=1))
        h = self.conv_in(sample) + (temb + c).view(-1, CH, 1, 1)
        skips = [torch.nn.functional.silu(h)]
        x = skips[0]
        for conv in self.down:
            x = torch.nn.functional.silu(conv(torch.nn.functional.avg_pool2d(x, 2)))
            skips.append(x)
        skips.pop()
        for conv in self.up:
            x = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest") + skips.pop()
            x = torch.nn.functional.silu(conv(x))
        x = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest") + skips.pop()
        return 0.9 * sample + 0.5 * torch.tanh(self.conv_out(x))


class VAEDecoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_in = torch.nn.Conv2d(LATENT, 8, 3, padding=1)
        self.ups = torch.nn.ModuleList([torch.nn.Conv2d(8, 8, 3, padding=1) for _ in range(3)])
        self.conv_out = torch.nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, latent_sample):
        x = torch.nn.functional.silu(self.conv_in(latent_sample))
        for conv in self.ups:
            x = torch.nn.functional.silu(conv(torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")))
        return self.conv_out(x)


class VAEEncoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, LATENT, 8, stride=8)

    def forward(self, sample):
        return self.conv(sample)


def export(model, args, path, inputs, outputs, axes):
    model.eval()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(model, args, path, opset_version=17, input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))


def to_fp16(path):
    """Makes float inputs, outputs and initializers float16, casting inside."""
    m = onnx.load(path)
    g = m.graph
    head, tail = [], []
    rename = {}
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT:
            arr = numpy_helper.to_array(init).astype(np.float16)
            name = init.name
            init.CopyFrom(numpy_helper.from_array(arr, name + "_fp16"))
            head.append(helper.make_node("Cast", [name + "_fp16"], [name], to=TensorProto.FLOAT))
    for vi in g.input:
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            rename[vi.name] = vi.name + "_fp32"
            head.append(helper.make_node("Cast", [vi.name], [vi.name + "_fp32"], to=TensorProto.FLOAT))
            vi.type.tensor_type.elem_type = TensorProto.FLOAT16
    outs = {}
    for vi in g.output:
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            outs[vi.name] = vi.name + "_fp32"
            tail.append(helper.make_node("Cast", [vi.name + "_fp32"], [vi.name], to=TensorProto.FLOAT16))
            vi.type.tensor_type.elem_type = TensorProto.FLOAT16
    rename.update(outs)
    for node in g.node:
        for i, n in enumerate(node.input):
            if n in rename:
                node.input[i] = rename[n]
        for i, n in enumerate(node.output):
            if n in outs:
                node.output[i] = outs[n]
    nodes = head + list(g.node) + tail
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    onnx.checker.check_model(m)
    onnx.save(m, path)


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}

# SD 2.x 768-v: the same schedule, v-prediction.
SD2V_SCHEDULER = dict(SCHEDULER, prediction_type="v_prediction")

MODEL_INDEX = {
    "_class_name": "OnnxStableDiffusionPipeline",
    "_diffusers_version": "0.14.0",
    "feature_extractor": [None, None],
    "requires_safety_checker": False,
    "safety_checker": [None, None],
    "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["diffusers", "OnnxRuntimeModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "OnnxRuntimeModel"],
    "vae_decoder": ["diffusers", "OnnxRuntimeModel"],
    "vae_encoder": ["diffusers", "OnnxRuntimeModel"],
}


def build(out, fp16, seed, hidden=HIDDEN, scheduler=SCHEDULER):
    torch.manual_seed(seed)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    write_json(os.path.join(out, "model_index.json"), MODEL_INDEX)
    write_json(os.path.join(out, "scheduler", "scheduler_config.json"), scheduler)
    write_tokenizer(os.path.join(out, "tokenizer"))

    p = os.path.join(out, "text_encoder", "model.onnx")
    ids = torch.full((1, 77), 49407, dtype=torch.int32)
    ids[0, 0] = 49406
    export(TextEncoder(hidden), (ids,), p, ["input_ids"], ["last_hidden_state", "pooler_output"],
           {"input_ids": {0: "batch", 1: "sequence"},
            "last_hidden_state": {0: "batch", 1: "sequence"}, "pooler_output": {0: "batch"}})
    if fp16:
        to_fp16(p)

    p = os.path.join(out, "unet", "model.onnx")
    t = torch.tensor([0.0, 1.0]) if fp16 else torch.tensor([0, 1], dtype=torch.int64)
    export(UNet(int_t=not fp16, hidden=hidden), (torch.randn(2, LATENT, 16, 16), t, torch.randn(2, 77, hidden)), p,
           ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
           {"sample": {0: "batch", 1: "channels", 2: "height", 3: "width"},
            "timestep": {0: "batch"},
            "encoder_hidden_states": {0: "batch", 1: "sequence"},
            "out_sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}})
    if fp16:
        to_fp16(p)
    else:
        m = onnx.load(p)
        os.remove(p)
        onnx.save_model(m, p, save_as_external_data=True, all_tensors_to_one_file=True,
                        location="weights.pb", size_threshold=1024, convert_attribute=False)

    p = os.path.join(out, "vae_decoder", "model.onnx")
    export(VAEDecoder(), (torch.randn(1, LATENT, 8, 8),), p, ["latent_sample"], ["sample"],
           {"latent_sample": {0: "batch", 1: "channels", 2: "height", 3: "width"},
            "sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}})
    if fp16:
        to_fp16(p)

    p = os.path.join(out, "vae_encoder", "model.onnx")
    export(VAEEncoder(), (torch.randn(1, 3, 64, 64),), p, ["sample"], ["latent_sample"],
           {"sample": {0: "batch", 1: "channels", 2: "height", 3: "width"},
            "latent_sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}})
    if fp16:
        to_fp16(p)
        # optimum writes each model's diffusers config beside it.
        write_json(os.path.join(out, "unet", "config.json"),
                   {"_class_name": "UNet2DConditionModel", "sample_size": 64, "in_channels": 4,
                    "out_channels": 4, "cross_attention_dim": hidden})
        vae = {"_class_name": "AutoencoderKL", "sample_size": 512, "latent_channels": 4,
               "block_out_channels": [128, 256, 512, 512], "scaling_factor": 0.18215}
        write_json(os.path.join(out, "vae_decoder", "config.json"), vae)
        write_json(os.path.join(out, "vae_encoder", "config.json"), vae)
        write_json(os.path.join(out, "text_encoder", "config.json"),
                   {"_class_name": "CLIPTextModel", "hidden_size": hidden, "max_position_embeddings": 77})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata/sdtiny")
    args = ap.parse_args()
    build(os.path.join(args.out, "fp32"), False, 1)
    build(os.path.join(args.out, "fp16"), True, 2)
    build(os.path.join(args.out, "sd2v"), False, 3, hidden=1024, scheduler=SD2V_SCHEDULER)
    total = 0
    for root, _, files in os.walk(args.out):
        for f in sorted(files):
            path = os.path.join(root, f)
            size = os.path.getsize(path)
            total += size
            line = f"{path}: {size} bytes"
            if f == "model.onnx":
                m = onnx.load(path, load_external_data=False)
                ios = [(i.name, TensorProto.DataType.Name(i.type.tensor_type.elem_type),
                        [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
                       for i in list(m.graph.input) + list(m.graph.output)]
                line += f" {ios}"
            print(line)
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
