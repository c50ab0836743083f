"""Goldens for SDXL's conditioning from diffusers' own code, on testdata/sdtiny/xl.

Usage (from the repository root, with Debian's torch):

    nice -n 19 /usr/bin/python3 tools/sdtiny/xl_golden.py [--out pipeline/testdata/sdxl_golden.json]

It rebuilds the xl variant's two text encoders exactly as gen_sdxl.py does
(same seed, same construction order: the torch modules whose ONNX exports
are testdata/sdtiny/xl/text_encoder*/model.onnx) and runs
StableDiffusionXLPipeline.encode_prompt and _get_add_time_ids, the methods'
source taken unmodified from a diffusers git checkout (default: the mirror
the fetch tool writes, /work/.mirror/huggingface+diffusers/repo, at HEAD;
override with DIFFUSERS_GIT and DIFFUSERS_REV), on a stand-in pipeline
object: the two torch encoders behind a transformers-like call
(output_hidden_states=True -> outputs[0] and .hidden_states), tokenizers
that encode with the folder's vocab.json and merges.txt (a byte-level BPE
written here that splits out the special tokens' strings first, as
transformers does; the Go test checks that the ids equal pipeline/clip's), and
config values from the folder's model_index.json and unet/config.json.
diffusers itself cannot be installed here; the few names the two methods
use from it (the LoRA mixin classes, USE_PEFT_BACKEND, logger) are stubs
that take the no-LoRA path.

The JSON holds, per case, the prompt and negative prompt (null = None),
both tokenizers' ids, and of prompt_embeds / negative_prompt_embeds the
rows at a few sequence positions plus their sums, and pooled_prompt_embeds
/ negative_pooled_prompt_embeds whole; and add_time_ids for a few sizes.
"""
import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import types

import regex
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402
import gen_sdxl  # noqa: E402

GIT = os.environ.get("DIFFUSERS_GIT", "/work/.mirror/huggingface+diffusers/repo")
REV = os.environ.get("DIFFUSERS_REV", "HEAD")
PIPE = "src/diffusers/pipelines/stable_diffusion_xl/pipeline_stable_diffusion_xl.py"
FOLDER = "testdata/sdtiny/xl"
ROWS = [0, 1, 5, 76]

CASES = [
    {"prompt": "a photo of a cat", "negative": None},
    {"prompt": "a watercolor landscape with mountains, highly detailed!", "negative": "blurry, low quality"},
    {"prompt": "a photo of a cat", "negative": ""},
]
TIME_IDS = [
    [(1024, 1024), (0, 0), (1024, 1024)],
    [(256, 128), (16, 32), (256, 128)],
]


def methods():
    """Returns encode_prompt and _get_add_time_ids from diffusers' file, unmodified."""
    src = subprocess.run(["git", "-C", GIT, "show", f"{REV}:{PIPE}"], check=True, capture_output=True,
                         text=True).stdout
    rev = subprocess.run(["git", "-C", GIT, "rev-parse", REV], check=True, capture_output=True,
                         text=True).stdout.strip()
    tree = ast.parse(src)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "StableDiffusionXLPipeline")
    code = {}
    for n in cls.body:
        if isinstance(n, ast.FunctionDef) and n.name in ("encode_prompt", "_get_add_time_ids"):
            code[n.name] = ast.get_source_segment(src, n)
    ns = {
        "torch": torch,
        "logger": types.SimpleNamespace(warning=lambda *a, **k: None),
        "StableDiffusionXLLoraLoaderMixin": type("StableDiffusionXLLoraLoaderMixin", (), {}),
        "TextualInversionLoaderMixin": type("TextualInversionLoaderMixin", (), {}),
        "USE_PEFT_BACKEND": False,
    }
    out = {}
    for name, text in code.items():
        lines = text.split("\n")
        body = "\n".join([lines[0]] + [l[4:] if l.startswith("    ") else l for l in lines[1:]])
        exec(compile(body, PIPE, "exec"), ns)
        out[name] = ns[name]
    return out, rev


class BPE:
    """CLIP's byte-level BPE over a vocab.json / merges.txt folder."""

    PAT = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                        regex.IGNORECASE)

    def __init__(self, d):
        with open(os.path.join(d, "vocab.json"), encoding="utf-8") as f:
            self.vocab = json.load(f)
        with open(os.path.join(d, "merges.txt"), encoding="utf-8") as f:
            lines = f.read().split("\n")[1:]
        self.ranks = {tuple(l.split()): i for i, l in enumerate(x for x in lines if x)}
        with open(os.path.join(d, "special_tokens_map.json")) as f:
            sp = json.load(f)
        self.bos, self.eos = self.vocab[sp["bos_token"]], self.vocab[sp["eos_token"]]
        self.pad = self.vocab[sp["pad_token"]]
        self.inv = {i: t for t, i in self.vocab.items()}
        self.b2u = gen.bytes_to_unicode()
        self.model_max_length = 77

    def word(self, w):
        syms = list(w[:-1]) + [w[-1] + "</w>"]
        while len(syms) > 1:
            pairs = [(self.ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(syms, syms[1:]))]
            r, i = min(pairs)
            if r == 1 << 30:
                break
            syms = syms[:i] + [syms[i] + syms[i + 1]] + syms[i + 2:]
        return [self.vocab[s] for s in syms]

    def encode(self, text):
        # As transformers' tokenizers do, the special tokens' strings (here
        # tokenizer_2's pad token "!") are split out of the text first.
        text = " ".join(text.split()).lower()
        specials = sorted({self.inv[i] for i in (self.bos, self.eos, self.pad)}, key=len, reverse=True)
        ids = []
        for part in regex.split("(" + "|".join(regex.escape(t) for t in specials) + ")", text):
            if part in specials:
                ids.append(self.vocab[part])
                continue
            for tok in self.PAT.findall(part):
                ids += self.word("".join(self.b2u[b] for b in tok.encode("utf-8")))
        return ids

    def __call__(self, prompts, padding="max_length", max_length=None, truncation=False, return_tensors="pt"):
        rows = [[self.bos] + self.encode(p) + [self.eos] for p in prompts]
        if padding == "max_length":
            n = max_length
            rows = [r[:n - 1] + [self.eos] if truncation and len(r) > n else r for r in rows]
            rows = [r + [self.pad] * (n - len(r)) for r in rows]
        else:
            n = max(len(r) for r in rows)
            rows = [r + [self.pad] * (n - len(r)) for r in rows]
        return types.SimpleNamespace(input_ids=torch.tensor(rows, dtype=torch.int64))

    def batch_decode(self, ids):
        return [""] * len(ids)


class Output(tuple):
    """A tuple of the first outputs with a hidden_states attribute (transformers' ModelOutput)."""


def wrap(enc):
    def call(input_ids, output_hidden_states=False):
        with torch.no_grad():
            outs = enc(input_ids)
        o = Output(outs[:2])
        o.hidden_states = tuple(outs[2:])
        return o
    call.dtype = torch.float32
    return call


def encoders():
    """The xl variant's text encoders, rebuilt as gen_sdxl.build makes them."""
    mods = {}
    orig = gen_sdxl.TextEncoder

    def record(*a, **k):
        m = orig(*a, **k)
        mods[len(mods)] = m
        return m
    gen_sdxl.TextEncoder = record
    try:
        with tempfile.TemporaryDirectory() as d:
            gen_sdxl.build(os.path.join(d, "xl"), "xl", 11)
            for name in ("text_encoder", "text_encoder_2"):
                with open(os.path.join(d, "xl", name, "model.onnx"), "rb") as a, \
                        open(os.path.join(FOLDER, name, "model.onnx"), "rb") as b:
                    if a.read() != b.read():
                        sys.exit(f"{FOLDER}/{name}/model.onnx is not what gen_sdxl.py builds: regenerate it first")
    finally:
        gen_sdxl.TextEncoder = orig
    return mods[0].eval(), mods[1].eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="pipeline/testdata/sdxl_golden.json")
    args = ap.parse_args()
    fns, rev = methods()
    te1, te2 = encoders()
    with open(os.path.join(FOLDER, "model_index.json")) as f:
        idx = json.load(f)
    with open(os.path.join(FOLDER, "unet", "config.json")) as f:
        ucfg = json.load(f)
    pipe = types.SimpleNamespace(
        tokenizer=BPE(os.path.join(FOLDER, "tokenizer")), tokenizer_2=BPE(os.path.join(FOLDER, "tokenizer_2")),
        text_encoder=wrap(te1), text_encoder_2=wrap(te2),
        config=types.SimpleNamespace(force_zeros_for_empty_prompt=idx["force_zeros_for_empty_prompt"]),
        unet=types.SimpleNamespace(
            dtype=torch.float32,
            config=types.SimpleNamespace(addition_time_embed_dim=ucfg["addition_time_embed_dim"]),
            add_embedding=types.SimpleNamespace(
                linear_1=types.SimpleNamespace(in_features=ucfg["projection_class_embeddings_input_dim"]))),
    )
    cases = []
    for c in CASES:
        pe, npe, pp, npp = fns["encode_prompt"](pipe, c["prompt"], device="cpu", num_images_per_prompt=1,
                                                do_classifier_free_guidance=True,
                                                negative_prompt=c["negative"])

        def rows(t):
            return {"rows": {str(r): t[0, r].tolist() for r in ROWS}, "sum": float(t.double().sum()),
                    "abs_sum": float(t.double().abs().sum()), "shape": list(t.shape)}
        cases.append({
            "prompt": c["prompt"], "negative": c["negative"],
            "ids": pipe.tokenizer([c["prompt"]], max_length=77, truncation=True).input_ids[0].tolist(),
            "ids_2": pipe.tokenizer_2([c["prompt"]], max_length=77, truncation=True).input_ids[0].tolist(),
            "prompt_embeds": rows(pe), "negative_prompt_embeds": rows(npe),
            "pooled_prompt_embeds": pp[0].tolist(), "negative_pooled_prompt_embeds": npp[0].tolist(),
        })
    tids = []
    for o, cr, tg in TIME_IDS:
        t = fns["_get_add_time_ids"](pipe, o, cr, tg, dtype=torch.float32,
                                     text_encoder_projection_dim=te2.proj.out_features)
        tids.append({"original_size": o, "crops_coords_top_left": cr, "target_size": tg,
                     "add_time_ids": t[0].tolist()})
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"source": f"diffusers {rev} {PIPE}: StableDiffusionXLPipeline.encode_prompt, _get_add_time_ids",
                   "folder": FOLDER, "rows": ROWS, "cases": cases, "time_ids": tids}, f, indent=1)
        f.write("\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
