"""CLIP's byte-level BPE tokenizer over testdata/clip/vocab.json and merges.txt.

Enough of CLIP's tokenizer for the ASCII prompts of tools/latent: lower case,
whitespace collapsed, words split as CLIP's pattern splits ASCII text (runs of
letters, single digits, runs of other non-space characters), each word BPE-
merged by rank with "</w>" on its last symbol, <|startoftext|> first,
<|endoftext|> last, padded with <|endoftext|> to 77 ids (SD 1.x's padding).
"""
import json
import os
import re

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata", "clip")
BOS, EOS, LENGTH = 49406, 49407, 77
_PATTERN = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+")


class Tokenizer:
    def __init__(self, root=ROOT):
        with open(os.path.join(root, "vocab.json"), encoding="utf-8") as f:
            self.vocab = json.load(f)
        with open(os.path.join(root, "merges.txt"), encoding="utf-8") as f:
            lines = f.read().split("\n")[1:]
        self.ranks = {tuple(l.split()): i for i, l in enumerate(lines) if l}
        assert self.vocab["<|startoftext|>"] == BOS and self.vocab["<|endoftext|>"] == EOS

    def _bpe(self, word):
        sym = list(word[:-1]) + [word[-1] + "</w>"]
        while len(sym) > 1:
            pairs = [(self.ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(sym, sym[1:]))]
            rank, _ = min(pairs)
            if rank == 1 << 30:
                break
            a, b = [p for p in zip(sym, sym[1:])][min(i for r, i in pairs if r == rank)]
            out, i = [], 0
            while i < len(sym):
                if i + 1 < len(sym) and sym[i] == a and sym[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(sym[i])
                    i += 1
            sym = out
        return sym

    def encode(self, text):
        """Returns the 77 ids SD 1.x feeds its text encoder for text (ASCII)."""
        text = " ".join(text.lower().split())
        assert text.isascii(), text
        ids = [BOS]
        for w in _PATTERN.findall(text):
            ids += [self.vocab[s] for s in self._bpe(w)]
        ids = ids[:LENGTH - 1] + [EOS]
        return ids + [EOS] * (LENGTH - len(ids))
