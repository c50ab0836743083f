#!/usr/bin/python3
"""CLIP's vocab.json and merges.txt, derived from openai/CLIP's BPE file.

Run from the repository root (any python3; standard library only):

    /usr/bin/python3 tools/clip/vocab.py ../shared/data/clip/bpe_simple_vocab_16e6.txt.gz testdata/clip

The input is openai/CLIP's clip/bpe_simple_vocab_16e6.txt.gz (MIT licence,
sha256 924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a,
checked). Its first line is a header; the next 48,894 lines are the merges
CLIP uses, in rank order (49152 - 256 - 2: the vocabulary is 49,408 tokens
minus the 256 byte symbols, their 256 "</w>" forms and the two special
tokens). The vocabulary is laid out as openai/CLIP's SimpleTokenizer builds
its encoder and as transformers' CLIP vocab.json files hold it:

    ids 0..255        the byte symbols of bytes_to_unicode (GPT-2's table),
                      in the table's order: the printable bytes, then the
                      others mapped from U+0100 on
    ids 256..511      the same symbols followed by "</w>"
    ids 512..49405    the concatenation of merge r at id 512 + r
    ids 49406, 49407  <|startoftext|>, <|endoftext|>

Writes DIR/vocab.json (one JSON object, keys in id order, UTF-8, no ASCII
escaping) and DIR/merges.txt ("#version: 0.2", then the 48,894 merges, one
per line, the two symbols separated by a space), and prints the sha256 of
both. The script checks that no two tokens collide (49,408 distinct tokens).
"""
import gzip
import hashlib
import json
import os
import sys

SOURCE_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
N_MERGES = 49152 - 256 - 2


def byte_symbols():
    """bytes_to_unicode's values in its own order."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    rest = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + n) for n in range(len(rest))]


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: vocab.py bpe_simple_vocab_16e6.txt.gz OUTDIR")
    src, out = sys.argv[1], sys.argv[2]
    raw = open(src, "rb").read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SOURCE_SHA256:
        sys.exit(f"{src}: sha256 {digest}, want {SOURCE_SHA256}")
    lines = gzip.decompress(raw).decode("utf-8").split("\n")[1:N_MERGES + 1]
    merges = []
    for i, line in enumerate(lines):
        pair = line.split()
        if len(pair) != 2:
            sys.exit(f"merge {i}: {line!r} is not two symbols")
        merges.append(pair)
    if len(merges) != N_MERGES:
        sys.exit(f"{len(merges)} merges, want {N_MERGES}")

    syms = byte_symbols()
    tokens = syms + [s + "</w>" for s in syms] + [a + b for a, b in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    if len(vocab) != 49408:
        sys.exit(f"{len(vocab)} distinct tokens, want 49408")

    os.makedirs(out, exist_ok=True)
    vocab_path, merges_path = os.path.join(out, "vocab.json"), os.path.join(out, "merges.txt")
    with open(vocab_path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(vocab, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    with open(merges_path, "w", encoding="utf-8", newline="\n") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    for p in (vocab_path, merges_path):
        print(hashlib.sha256(open(p, "rb").read()).hexdigest(), p)


if __name__ == "__main__":
    main()
