"""Exports a trained latent model as a diffusers/optimum ONNX folder (SD 1.5's signatures).

Usage (from the repository root):

    /usr/bin/python3 tools/latent/export.py --out out/latent --prediction epsilon \
        --dest testdata/models/fashion_ldm_eps

Writes, as diffusers' OnnxStableDiffusionPipeline and optimum lay it out:

    model_index.json
    scheduler/scheduler_config.json    scaled_linear 0.00085..0.012, T = 1000, prediction_type
    tokenizer/                         CLIP's vocab.json and merges.txt (testdata/clip), configs
    text_encoder/model.onnx            input_ids int32 [batch, sequence]
                                       -> last_hidden_state [batch, sequence, 64], pooler_output [batch, 64]
    unet/model.onnx                    sample float32 [batch, channels, height, width], timestep int64 [batch],
                                       encoder_hidden_states [batch, sequence, 64] -> out_sample
    vae_encoder/model.onnx             sample [batch, 3, H, W] -> latent_sample [batch, 4, H/4, W/4]
    vae_decoder/model.onnx             latent_sample [batch, 4, h, w] -> sample [batch, 3, 4h, 4w]
    */config.json                      diffusers-style configs (unet sample_size 8, vae
                                       block_out_channels of length 3: factor 4, latent_channels 4,
                                       scaling_factor from training)
    reference.json                     torch outputs of the exported (EMA) networks on fixed
                                       inputs, for the Go tests to compare ONNX Runtime against

The EMA weights of the checkpoint are exported.
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import sys

import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import models  # noqa: E402
import train  # noqa: E402
from clip_bpe import Tokenizer  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def export(model, args, path, inputs, outputs, axes):
    model.eval()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(model, args, path, opset_version=17, input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))


def signature(path):
    m = onnx.load(path, load_external_data=False)
    return [(v.name, onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type), len(v.type.tensor_type.shape.dim))
            for v in list(m.graph.input) + list(m.graph.output)]


def compare_with_sdtiny(d):
    """Checks names, element types and ranks against testdata/sdtiny/fp32 (SD 1.5's ONNX export)."""
    ref = os.path.join(REPO, "testdata", "sdtiny", "fp32")
    for part in ("text_encoder", "unet", "vae_encoder", "vae_decoder"):
        got, want = signature(os.path.join(d, part, "model.onnx")), signature(os.path.join(ref, part, "model.onnx"))
        assert got == want, f"{part}: {got} != SD 1.5's {want}"
        print(f"{part}: {got} (as testdata/sdtiny/fp32)")


def fixed(shape, phase):
    """Deterministic inputs: sin over the flat index (the Go test builds the same)."""
    n = math.prod(shape)
    return torch.sin(torch.arange(n, dtype=torch.float64) * 0.37 + phase).float().reshape(shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="out/latent")
    ap.add_argument("--prediction", default="epsilon", choices=["epsilon", "v_prediction"])
    ap.add_argument("--dest", required=True)
    args = ap.parse_args()

    ck = torch.load(os.path.join(args.out, f"unet_{args.prediction}.pt"))
    vae = models.VAE()
    vae.load_state_dict(torch.load(os.path.join(args.out, "vae.pt"))["vae"])
    te, unet = train.make_unet_models(ck["used"])
    te.load_state_dict(ck["ema_te"])
    unet.load_state_dict(ck["ema_unet"])
    scaling = ck["scaling_factor"]
    for m in (vae, te, unet):
        m.eval()

    d = args.dest
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    write_json(os.path.join(d, "model_index.json"), {
        "_class_name": "OnnxStableDiffusionPipeline", "_diffusers_version": "0.14.0",
        "feature_extractor": [None, None], "requires_safety_checker": False, "safety_checker": [None, None],
        "scheduler": ["diffusers", "PNDMScheduler" if args.prediction == "epsilon" else "DDIMScheduler"],
        "text_encoder": ["diffusers", "OnnxRuntimeModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "OnnxRuntimeModel"], "vae_decoder": ["diffusers", "OnnxRuntimeModel"],
        "vae_encoder": ["diffusers", "OnnxRuntimeModel"]})
    sched = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.14.0", "beta_end": 0.012,
             "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
             "num_train_timesteps": 1000, "prediction_type": args.prediction, "set_alpha_to_one": False,
             "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None}
    if args.prediction == "v_prediction":  # as SD 2.x ships it
        sched["_class_name"] = "DDIMScheduler"
    write_json(os.path.join(d, "scheduler", "scheduler_config.json"), sched)

    tokdir = os.path.join(d, "tokenizer")
    os.makedirs(tokdir)
    for f in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(REPO, "testdata", "clip", f), os.path.join(tokdir, f))
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
               "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    write_json(os.path.join(tokdir, "special_tokens_map.json"), special)
    write_json(os.path.join(tokdir, "tokenizer_config.json"),
               dict(tokenizer_class="CLIPTokenizer", model_max_length=77, do_lower_case=True, **special))

    tok = Tokenizer()
    ref_prompts = ["a photo of a sneaker", "an ankle boot, studio shot", ""]
    ids = torch.tensor([tok.encode(p) for p in ref_prompts], dtype=torch.int32)
    export(te, (ids,), os.path.join(d, "text_encoder", "model.onnx"), ["input_ids"],
           ["last_hidden_state", "pooler_output"],
           {"input_ids": {0: "batch", 1: "sequence"}, "last_hidden_state": {0: "batch", 1: "sequence"},
            "pooler_output": {0: "batch"}})
    write_json(os.path.join(d, "text_encoder", "config.json"), {
        "_name_or_path": "ugo tools/latent", "architectures": ["CLIPTextModel"], "model_type": "clip_text_model",
        "hidden_size": train.TEXT_DIM, "intermediate_size": 2 * train.TEXT_DIM,
        "num_hidden_layers": len(te.blocks), "num_attention_heads": te.heads,
        "max_position_embeddings": 77, "vocab_size": models.VOCAB_SIZE, "hidden_act": "gelu",
        "bos_token_id": 49406, "eos_token_id": 49407, "torch_dtype": "float32"})

    sample = torch.randn(2, models.LATENT, 8, 8)
    export(unet, (sample, torch.tensor([1, 999], dtype=torch.int64), torch.randn(2, 77, train.TEXT_DIM)),
           os.path.join(d, "unet", "model.onnx"), ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
           {"sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}, "timestep": {0: "batch"},
            "encoder_hidden_states": {0: "batch", 1: "sequence"},
            "out_sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}})
    write_json(os.path.join(d, "unet", "config.json"), {
        "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.14.0", "sample_size": 8,
        "in_channels": models.LATENT, "out_channels": models.LATENT, "block_out_channels": list(train.UNET_CH),
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "layers_per_block": 1, "attention_head_dim": 4, "cross_attention_dim": train.TEXT_DIM,
        "norm_num_groups": 8, "flip_sin_to_cos": True, "freq_shift": 0})

    vae_cfg = {"_class_name": "AutoencoderKL", "_diffusers_version": "0.14.0", "sample_size": 32,
               "in_channels": 3, "out_channels": 3, "latent_channels": models.LATENT,
               "block_out_channels": list(models.VAE.block_out_channels),
               "down_block_types": ["DownEncoderBlock2D"] * 3, "up_block_types": ["UpDecoderBlock2D"] * 3,
               "layers_per_block": 1, "norm_num_groups": 8, "scaling_factor": scaling}
    export(models.VAEEncoderExport(vae), (torch.randn(1, 3, 32, 32),), os.path.join(d, "vae_encoder", "model.onnx"),
           ["sample"], ["latent_sample"],
           {"sample": {0: "batch", 1: "channels", 2: "height", 3: "width"},
            "latent_sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}})
    write_json(os.path.join(d, "vae_encoder", "config.json"), vae_cfg)
    export(models.VAEDecoderExport(vae), (torch.randn(1, models.LATENT, 8, 8),),
           os.path.join(d, "vae_decoder", "model.onnx"), ["latent_sample"], ["sample"],
           {"latent_sample": {0: "batch", 1: "channels", 2: "height", 3: "width"},
            "sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}})
    write_json(os.path.join(d, "vae_decoder", "config.json"), vae_cfg)

    # Reference outputs on fixed inputs (first values and sums), for the Go tests.
    with torch.no_grad():
        hs, pooled = te(ids)
        x = fixed((2, models.LATENT, 16, 8), 0.0)
        ehs = hs[:2]
        out = unet(x, torch.tensor([10, 700], dtype=torch.int64), ehs)
        img = fixed((1, 3, 32, 32), 1.0)
        lat = vae.encode(img)[0]
        dec = vae.decoder(fixed((1, models.LATENT, 8, 12), 2.0))

    def summary(t):
        return {"shape": list(t.shape), "first": [round(v, 6) for v in t.flatten()[:8].tolist()],
                "sum": float(t.double().sum()), "abs_sum": float(t.double().abs().sum())}

    files = {}
    for root, _, fs in os.walk(d):
        for f in sorted(fs):
            p = os.path.join(root, f)
            files[os.path.relpath(p, d)] = {"bytes": os.path.getsize(p),
                                            "sha256": hashlib.sha256(open(p, "rb").read()).hexdigest()}
    write_json(os.path.join(d, "reference.json"), {
        "about": "torch outputs of the exported networks; inputs: prompts tokenized with CLIP's BPE to 77 ids; "
                 "fixed(shape, phase)[i] = float32(sin(0.37*i + phase)) over the flat index",
        "prompts": ref_prompts, "input_ids": ids.tolist(),
        "text_encoder": {"last_hidden_state": summary(hs), "pooler_output": summary(pooled)},
        "unet": {"sample": "fixed([2,4,16,8], 0)", "timestep": [10, 700],
                 "encoder_hidden_states": "text_encoder last_hidden_state of prompts 0 and 1",
                 "out_sample": summary(out)},
        "vae_encoder": {"sample": "fixed([1,3,32,32], 1)", "latent_sample": summary(lat)},
        "vae_decoder": {"latent_sample": "fixed([1,4,8,12], 2)", "sample": summary(dec)},
        "training": {"prediction_type": ck["prediction"], "steps": ck["step"], "cpu_minutes": ck["elapsed"] / 60,
                     "loss_last_200": ck["loss"], "scaling_factor": scaling},
        "files": files,
    })
    compare_with_sdtiny(d)
    total = sum(v["bytes"] for v in files.values())
    for k, v in sorted(files.items()):
        print(f"{k}: {v['bytes']} bytes sha256 {v['sha256']}")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
