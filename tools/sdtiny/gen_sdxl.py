"""Generates testdata/sdtiny/xl*: tiny random-weight SDXL-shaped ONNX pipelines.

Usage (from the repository root, with Debian's torch and onnx):

    nice -n 19 /usr/bin/python3 tools/sdtiny/gen_sdxl.py [--out testdata/sdtiny]

The folders have the layout optimum writes for Stable Diffusion XL
(ORTStableDiffusionXLPipeline.save_pretrained: model_index.json, scheduler/,
tokenizer/, tokenizer_2/, text_encoder/, text_encoder_2/, unet/,
vae_decoder/, vae_encoder/, a config.json beside each model) and every model
has the input and output names, ranks, element types and dynamic axes of
optimum's ONNX configs (exporters/onnx/model_configs.py: CLIPTextOnnxConfig,
CLIPTextWithProjectionOnnxConfig, UNetOnnxConfig with addition_embed_type
"text_time", VaeEncoderOnnxConfig, VaeDecoderOnnxConfig). Widths are tiny
(the real ones in brackets); layer counts, and so the number of
hidden_states outputs, are the real ones:

    text_encoder    input_ids int64 [batch_size, sequence_length]
                    -> last_hidden_state [batch_size, sequence_length, 32 (768)],
                       pooler_output [batch_size, 32],
                       hidden_states.0 .. hidden_states.12 [batch_size, sequence_length, 32]
    text_encoder_2  input_ids int64 [batch_size, sequence_length]
                    -> text_embeds [batch_size, 64 (1280)] (optimum names its axis 1
                       sequence_length too), last_hidden_state [.., 64],
                       hidden_states.0 .. hidden_states.32 [.., 64]
    unet            sample [batch_size, 4, height, width], timestep,
                    encoder_hidden_states [batch_size, sequence_length, 96 (2048)],
                    text_embeds [batch_size, 64 (1280)], time_ids [batch_size, 6]
                    -> out_sample [batch_size, 4, height, width]
    vae_decoder     latent_sample [batch_size, 4, latent_height, latent_width]
                    -> sample [batch_size, 3, latent_height * 8, latent_width * 8]
    vae_encoder     sample [batch_size, 3, sample_height, sample_width]
                    -> latent_sample or latent_parameters

Variants:

    xl/         float32; UNet timestep int64 [steps] and VAE encoder output
                latent_sample (optimum 1.11 to 1.23); model_index.json class
                StableDiffusionXLPipeline.
    xl16/       text encoders and UNet float16 (inputs, outputs, weights), the
                VAE float32 (SDXL's VAE overflows in half precision: its config
                says force_upcast); UNet timestep a float16 scalar and VAE
                encoder output latent_parameters (optimum >= 1.24);
                model_index.json class ORTStableDiffusionXLPipeline.
    xlrefiner/  the refiner's signature, float32: text_encoder_2 and
                tokenizer_2 only, encoder_hidden_states 64 wide (1280),
                time_ids [batch_size, 5] (original size, crop, aesthetic
                score), requires_aesthetics_score in model_index.json
                (StableDiffusionXLImg2ImgPipeline).

The training size is 128 pixels (unet sample_size 16; SDXL's is 128, 1024
pixels) so that 1x and 2x tests stay small. The scheduler is SDXL 1.0's
scheduler_config.json, the VAE config has SDXL's scaling_factor 0.13025.

The networks (random weights, a few thousand each):

    text encoders  token embedding of (id mod 997) + position embedding, a
                   causal running mean, a linear map to the width, then one
                   cheap residual layer per real CLIP layer,
                   h <- h + 0.3 tanh(g_i h + b_i) (elementwise), each layer's
                   input and the last output being hidden_states.i; then
                   LayerNorm (last_hidden_state, as CLIP's final_layer_norm),
                   pooled at the end token (argmax id, as CLIP); encoder 2
                   projects the pooled state without bias (text_embeds).
    unet           sinusoidal embeddings of the timestep and of each time_ids
                   value (SDXL's add_time_proj), concatenated with text_embeds
                   through a two-layer add embedding (SDXL's add_embedding),
                   plus the sequence mean of the text states, as a
                   per-channel bias after conv_in; two average-pool
                   downsamplings (height and width multiples of 4, as SDXL's
                   three-level UNet); out = 0.9 sample + 0.5 tanh(conv_out(...)).
    vae            as tools/sdtiny/gen.py's (a decoder with a receptive field
                   of under two latent pixels, an 8x8 stride-8 encoder).

Tokenizers are gen.py's BPE; tokenizer_2 pads with "!" (id 0) as SDXL's
OpenCLIP tokenizer does.
"""
import argparse
import json
import math
import os
import shutil
import sys

import onnx
import torch
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402  tools/sdtiny/gen.py

LATENT = 4
CH = 16
TDIM = 8  # addition_time_embed_dim (256 in SDXL)
H1, H2, PROJ = 32, 64, 64
L1, L2 = 12, 32  # CLIP ViT-L/14 and OpenCLIP bigG text layers
SAMPLE_SIZE = 16  # latent pixels


def sinusoid(v, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    a = v.float().reshape(-1, 1) * freqs.view(1, -1)
    return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


class TextEncoder(torch.nn.Module):
    def __init__(self, hidden, layers, proj=0):
        super().__init__()
        self.tok = torch.nn.Embedding(997, 8)
        self.pos = torch.nn.Parameter(torch.randn(77, 8))
        self.inp = torch.nn.Linear(8, hidden)
        self.g = torch.nn.Parameter(torch.randn(layers, hidden) * 0.5)
        self.b = torch.nn.Parameter(torch.randn(layers, hidden) * 0.3)
        self.norm = torch.nn.LayerNorm(hidden)
        self.proj = torch.nn.Linear(hidden, proj, bias=False) if proj else None

    def forward(self, input_ids):
        ids = input_ids.long()
        n, l = ids.shape
        h = self.tok(ids % 997) + self.pos[:l]
        h = torch.cumsum(h, dim=1) / torch.arange(1, l + 1, dtype=torch.float32).view(1, l, 1)
        h = self.inp(h)
        states = [h]
        for i in range(self.g.shape[0]):
            h = h + 0.3 * torch.tanh(h * self.g[i] + self.b[i])
            states.append(h)
        last = self.norm(h)
        end = input_ids.float().argmax(dim=-1)
        pooled = last[torch.arange(n), end]
        if self.proj is not None:
            return (self.proj(pooled), last, *states)
        return (last, pooled, *states)


class UNet(torch.nn.Module):
    def __init__(self, ctx_dim, pooled_dim, n_time_ids):
        super().__init__()
        self.conv_in = torch.nn.Conv2d(LATENT, CH, 3, padding=1)
        self.t1 = torch.nn.Linear(16, CH)
        self.t2 = torch.nn.Linear(CH, CH)
        self.a1 = torch.nn.Linear(pooled_dim + n_time_ids * TDIM, CH)
        self.a2 = torch.nn.Linear(CH, CH)
        self.ctx = torch.nn.Linear(ctx_dim, CH)
        self.down = torch.nn.ModuleList([torch.nn.Conv2d(CH, CH, 3, padding=1) for _ in range(2)])
        self.up = torch.nn.ModuleList([torch.nn.Conv2d(CH, CH, 3, padding=1) for _ in range(1)])
        self.conv_out = torch.nn.Conv2d(CH, LATENT, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids):
        n = sample.shape[0]
        temb = self.t2(torch.nn.functional.silu(self.t1(sinusoid(timestep, 16))))
        tid = sinusoid(time_ids.flatten(), TDIM).reshape(n, -1)
        aemb = self.a2(torch.nn.functional.silu(self.a1(torch.cat([text_embeds.float(), tid], dim=1))))
        c = self.ctx(encoder_hidden_states.mean(dim=1))
        h = self.conv_in(sample) + (temb + aemb + c).view(-1, CH, 1, 1)
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


class VAEEncoderParams(torch.nn.Module):
    """optimum >= 1.24's encoder output: the posterior's mean and log-variance."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2 * LATENT, 8, stride=8)

    def forward(self, sample):
        return self.conv(sample)


SCHEDULER = {
    "_class_name": "EulerDiscreteScheduler",
    "_diffusers_version": "0.19.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}


def model_index(cls, refiner):
    ort = ["optimum", "ORTModel"]
    idx = {
        "_class_name": cls,
        "_diffusers_version": "0.29.2",
        "feature_extractor": [None, None],
        "force_zeros_for_empty_prompt": not refiner,
        "image_encoder": [None, None],
        "requires_aesthetics_score": refiner,
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": [None, None] if refiner else ort,
        "text_encoder_2": ort,
        "tokenizer": [None, None] if refiner else ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ort,
        "vae_decoder": ort,
        "vae_encoder": ort,
    }
    if refiner:
        idx["add_watermarker"] = None
    return idx


def export(model, args, path, inputs, outputs, axes):
    gen.export(model, args, path, inputs, outputs, axes)


def text_encoder(out, name, hidden, layers, proj, fp16):
    p = os.path.join(out, name, "model.onnx")
    ids = torch.full((1, 77), 49407, dtype=torch.int64)
    ids[0, 0] = 49406
    states = [f"hidden_states.{i}" for i in range(layers + 1)]
    seq = {0: "batch_size", 1: "sequence_length"}
    if proj:
        outs = ["text_embeds", "last_hidden_state"] + states
        axes = {"text_embeds": seq}
    else:
        outs = ["last_hidden_state", "pooler_output"] + states
        axes = {"pooler_output": {0: "batch_size"}}
    axes.update({"input_ids": seq, "last_hidden_state": seq})
    axes.update({s: seq for s in states})
    export(TextEncoder(hidden, layers, proj), (ids,), p, ["input_ids"], outs, axes)
    if fp16:
        gen.to_fp16(p)
    cfg = {"_name_or_path": name, "architectures": ["CLIPTextModelWithProjection" if proj else "CLIPTextModel"],
           "hidden_act": "gelu" if proj else "quick_gelu", "hidden_size": hidden,
           "max_position_embeddings": 77, "model_type": "clip_text_model",
           "num_hidden_layers": layers, "pad_token_id": 1, "projection_dim": proj or 768,
           "torch_dtype": "float16" if fp16 else "float32", "vocab_size": 49408}
    gen.write_json(os.path.join(out, name, "config.json"), cfg)


def build(out, variant, seed):
    fp16 = variant == "xl16"
    refiner = variant == "xlrefiner"
    torch.manual_seed(seed)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    cls = {"xl": "StableDiffusionXLPipeline", "xl16": "ORTStableDiffusionXLPipeline",
           "xlrefiner": "StableDiffusionXLImg2ImgPipeline"}[variant]
    gen.write_json(os.path.join(out, "model_index.json"), model_index(cls, refiner))
    gen.write_json(os.path.join(out, "scheduler", "scheduler_config.json"), SCHEDULER)

    if not refiner:
        gen.write_tokenizer(os.path.join(out, "tokenizer"))
        text_encoder(out, "text_encoder", H1, L1, 0, fp16)
    tok2 = os.path.join(out, "tokenizer_2")
    gen.write_tokenizer(tok2)
    for f in ["special_tokens_map.json", "tokenizer_config.json"]:
        path = os.path.join(tok2, f)
        with open(path) as fh:
            cfg = json.load(fh)
        cfg["pad_token"] = "!"
        with open(path, "w") as fh:
            json.dump(cfg, fh, indent=2)
    text_encoder(out, "text_encoder_2", H2, L2, PROJ, fp16)

    ctx_dim = H2 if refiner else H1 + H2
    n_ids = 5 if refiner else 6
    p = os.path.join(out, "unet", "model.onnx")
    if fp16:
        t, t_axes = torch.tensor(1.0), {}
    else:
        t, t_axes = torch.tensor([0, 1], dtype=torch.int64), {0: "steps"}
    args = (torch.randn(2, LATENT, 16, 16), t, torch.randn(2, 77, ctx_dim), torch.randn(2, PROJ),
            torch.rand(2, n_ids) * 128)
    export(UNet(ctx_dim, PROJ, n_ids), args, p,
           ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"], ["out_sample"],
           {"sample": {0: "batch_size", 2: "height", 3: "width"},
            "timestep": t_axes,
            "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
            "text_embeds": {0: "batch_size"},
            "time_ids": {0: "batch_size"},
            "out_sample": {0: "batch_size", 2: "height", 3: "width"}})
    if fp16:
        gen.to_fp16(p)
    unet_cfg = {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.19.0.dev0",
                "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64,
                "addition_time_embed_dim": TDIM, "block_out_channels": [CH, CH, CH],
                "cross_attention_dim": ctx_dim, "in_channels": LATENT, "out_channels": LATENT,
                "projection_class_embeddings_input_dim": PROJ + n_ids * TDIM,
                "sample_size": SAMPLE_SIZE}
    gen.write_json(os.path.join(out, "unet", "config.json"), unet_cfg)

    p = os.path.join(out, "vae_decoder", "model.onnx")
    export(gen.VAEDecoder(), (torch.randn(1, LATENT, 8, 8),), p, ["latent_sample"], ["sample"],
           {"latent_sample": {0: "batch_size", 2: "latent_height", 3: "latent_width"},
            "sample": {0: "batch_size", 2: "latent_height * 8", 3: "latent_width * 8"}})
    p = os.path.join(out, "vae_encoder", "model.onnx")
    enc, enc_out = (VAEEncoderParams(), "latent_parameters") if fp16 else (gen.VAEEncoder(), "latent_sample")
    export(enc, (torch.randn(1, 3, 64, 64),), p, ["sample"], [enc_out],
           {"sample": {0: "batch_size", 2: "sample_height", 3: "sample_width"},
            enc_out: {0: "batch_size", 2: "sample_height / 8", 3: "sample_width / 8"}})
    vae = {"_class_name": "AutoencoderKL", "_diffusers_version": "0.19.0.dev0", "act_fn": "silu",
           "block_out_channels": [128, 256, 512, 512], "force_upcast": True, "in_channels": 3,
           "latent_channels": LATENT, "out_channels": 3, "sample_size": SAMPLE_SIZE * 8,
           "scaling_factor": 0.13025}
    gen.write_json(os.path.join(out, "vae_decoder", "config.json"), vae)
    gen.write_json(os.path.join(out, "vae_encoder", "config.json"), vae)


def describe(root):
    total = 0
    for d, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            path = os.path.join(d, f)
            size = os.path.getsize(path)
            total += size
            line = f"{path}: {size} bytes"
            if f == "model.onnx":
                m = onnx.load(path, load_external_data=False)
                ios = [(i.name, TensorProto.DataType.Name(i.type.tensor_type.elem_type),
                        [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
                       for i in list(m.graph.input) + list(m.graph.output)]
                line += f" {ios[:4]}{' ...' if len(ios) > 4 else ''}"
            print(line)
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata/sdtiny")
    args = ap.parse_args()
    total = 0
    for variant, seed in [("xl", 11), ("xl16", 12), ("xlrefiner", 13)]:
        d = os.path.join(args.out, variant)
        build(d, variant, seed)
        total += describe(d)
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
