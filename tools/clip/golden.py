#!/usr/bin/python3
"""Token ids of real prompts from transformers' own CLIPTokenizer.

Run from the repository root, with the python3-regex package installed
(apt-get install python3-regex) and a transformers source tree in SRC:

    /usr/bin/python3 tools/clip/golden.py SRC LABEL [FTFY] > testdata/clip/golden.json

SRC is a directory holding transformers' src/transformers/ (a checkout or an
extracted archive); LABEL says which source it is (repository, commit,
version) and is written into the output. The goldens in
testdata/clip/golden.json were written from transformers
4.51.0.dev0 (see the "source" field).

What runs: transformers' src/transformers/models/clip/tokenization_clip.py,
unmodified, over testdata/clip/vocab.json and merges.txt. No transformers
install exists here, so the module is imported inside a stand-in package
whose tokenization_utils module holds transformers' own code for what the
CLIP tokenizer calls, taken from the source tree by name with Python's ast
module: the functions _is_whitespace, _is_control, _is_punctuation, the Trie
class, the AddedToken class of tokenization_utils_base.py (the one
transformers uses when the tokenizers package is absent), and the
PreTrainedTokenizer methods tokenize, prepare_for_tokenization,
convert_tokens_to_ids and _convert_token_to_id_with_added_voc. Only the
constructor of PreTrainedTokenizer is a stand-in: it registers bos, eos, unk
and pad as special added tokens at their vocabulary ids, which is what
transformers' constructor does for a vocabulary that already holds them.
ftfy is made unimportable, so CLIPTokenizer takes its BasicTokenizer path
(the one every install without ftfy takes).

FTFY, optional, is a directory holding the ftfy package (and its
dependency wcwidth), e.g. extracted from rspeer/python-ftfy and
jquast/wcwidth; with it a third configuration, "ftfy", runs CLIPTokenizer
with ftfy importable (its ftfy.fix_text path), to measure where the two
paths differ.

For each prompt and each configuration (sd1: pad <|endoftext|>, as
Stable Diffusion 1.x; sd2: pad "!", as Stable Diffusion 2.x) it writes the
tokens of tokenizer.tokenize(text), the ids of tokenizer(text).input_ids
(start token, ids, end token) and the 77 ids of tokenizer(text,
padding="max_length", max_length=77, truncation=True).input_ids. The last
are computed here as transformers' truncation and padding do for one
sequence (truncation_side and padding_side "right"): keep the first 75 ids,
add the start and end tokens, pad with pad_token_id.

It also writes "random": the text ids (tokenizer.tokenize, then
convert_tokens_to_ids) of 2,000 random strings (random_texts, seeded), in
the sd1 configuration.
"""
import ast
import json
import os
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

PROMPTS = [
    # Ordinary prompts.
    "a photo of a cat",
    "A photograph of an astronaut riding a horse",
    "masterpiece, best quality, (ultra-detailed:1.2), 8k uhd, dslr, soft lighting, film grain, Fujifilm XT3",
    "portrait of a woman, by Greg Rutkowski and Alphonse Mucha, trending on ArtStation",
    "(((masterpiece))), [[[bad hands]]], {red|blue} hair, <lora:foo_v2:0.8>, --no text",
    "snake_case_name and camelCaseName and kebab-case-name",
    # Contractions, in any case, and apostrophes that are not contractions.
    "It's a dog's life; we'll see what they're doing, I'm sure you've heard, he'd go",
    "DON'T STOP: IT'S 3.14159!!! WE'LL, THEY'RE, I'M, YOU'VE, HE'D",
    "'s 'S 'tis rock'n'roll o'clock '' ''' q'd x'll",
    # Numbers and symbols.
    "1024x768 pixels, 16:9 aspect ratio, f/1.8, ISO 100, 1/250s, 35mm, 4k, 8K",
    "year 2024, $19.99, 50% off, #1 best-seller, e-mail: someone@example.com, https://example.com/a?b=c&d=e",
    "!!!???...---***~~~^^^```@@@###",
    "E=mc², ½ cup, ⅓, Ⅻ o'clock, ① ② ③, ∞, √2, 10⁻³, ٣ ३",
    "v2.1 sd-xl sdxl1.0 gpt4o h264 x264 3d 2.5d",
    # Unicode letters, accents, scripts.
    "café naïve résumé über straße façade",
    "ÜNÏCÖDÉ ÀÉÎÕÜ ÇÑ ŒUVRE",
    "cafe\u0301 and re\u0301sume\u0301 (decomposed accents)",
    "一只猫坐在桌子上",
    "東京の夜景、ネオンサイン",
    "서울의 밤 풍경",
    "Кот в сапогах, ЗИМНИЙ ЛЕС",
    "قطة على الطاولة",
    "बिल्ली और कुत्ता",
    "ΟΔΥΣΣΕΥΣ sails, ΣΑΣ, Σ, ΑΣ1, Α'Σ",
    "İSTANBUL at night, Iı İi",
    "STRASSE ẞ ǅemal ǈ Ⅰ Ⅱ Ⓐ",
    "𝐁𝐨𝐥𝐝 math letters and 𝟙𝟚𝟛",
    "a cat 🐱 with a 🎩, ❤️ and 👍🏽 👨‍👩‍👧",
    "ſtar 'ſ K Kelvin",
    "a \u0345 b ᾳ",
    # What ftfy would change (curly quotes, HTML entities, full-width
    # forms, ligatures, mojibake); the BasicTokenizer path keeps them.
    "“a ‘quoted’ phrase” — it’s „here“ «there»",
    "Tom &amp; Jerry &lt;3 &quot;cartoon&quot; &#39;x&#39;",
    "ＡＢＣ　ｆｕｌｌ－ｗｉｄｔｈ　１２３！",
    "ﬁne ﬂower ﬀ",
    "cafÃ© mojibake",
    # Whitespace and control characters.
    "  lots   of\t\tspace\n\nand\r\nnewlines  ",
    "zero\u200bwidth soft\u00adhyphen nul\x00l repl\ufffdacement bell\x07 rtl\u200f",
    "vt\x0bff\x0cnel\x85ls\u2028ps\u2029nbsp\u00a0ideo\u3000end",
    "",
    "   \t\n  ",
    # Special tokens: exact, in other cases, glued to text.
    "<|startoftext|>a cat<|endoftext|>",
    "<|STARTOFTEXT|> a dog <|EndOfText|>",
    "x<|ENDOFTEXT|>y 1<|Endoftext|>2",
    "!<|endoftext|> !<|ENDOFTEXT|> <|endoftext|>!",
    "<|endoftext|><|endoftext|><|startoftext|>",
    "<|endof\u200btext|> <|endoftext |> <| endoftext|>",
    "<|ſtartoftext|>",
    "hello! world!! wow!",
    # Long prompts (truncated at 77).
    "a " * 75,
    "a " * 76,
    "An epic, highly detailed digital painting of a vast futuristic city at sunset, towering glass skyscrapers "
    "reflecting orange and purple clouds, flying cars weaving between neon-lit bridges, bustling markets below, "
    "people in colorful clothing, steam rising from street food stalls, cinematic lighting, volumetric fog, "
    "8k resolution, trending on artstation, by Syd Mead and Moebius, ultra sharp focus, intricate details",
]


def random_texts(n, seed=17):
    """n random strings mixing the characters a tokenizer gets wrong first.

    Characters are drawn from pools: ASCII, white space and control
    characters, Latin-1 and other cased letters with special lower-casing,
    combining marks, CJK, kana, Hangul, emoji with joiners, format
    characters, digits of other scripts, full-width forms, pieces of special
    tokens and contractions, and any code point that Unicode 14 assigns in
    the BMP and SMP (Python's tables; Go's are Unicode 15, whose additions
    are left out) or that no version assigns (planes 4 to 13).
    """
    import random
    import unicodedata
    rng = random.Random(seed)
    pools = [
        [chr(c) for c in range(0x20, 0x7F)] * 4,
        list(" \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2028\u2029\u202f\u3000\x00\x07\x1b\x7f\x9f\ufffd"),
        [chr(c) for c in range(0xC0, 0x250)],
        list("ΣσςΑΒΓΔΕαβγİıIiẞßǅǄǆǈǋſKÅΩ\u0130\u0345\u0307\u0301\u0300\u0308\u0327'.:·’"),
        [chr(c) for c in range(0x300, 0x370)],
        [chr(c) for c in range(0x4E00, 0x4E40)] + [chr(c) for c in range(0x3040, 0x30A0)] + [chr(c) for c in range(0xAC00, 0xAC40)],
        list("😀🐱🎩❤️👍🏽👨‍👩‍👧\u200d\ufe0f\U0001F3FB"),
        list("\u200b\u200c\u200e\u200f\u00ad\u2060\ufeff\u180e\U000E0001\ue000"),
        list("٠١٢۳४५໖༧߈①²½ⅫⅰⓐⒶ") + [chr(c) for c in range(0xFF01, 0xFF5F)],
        ["<|startoftext|>", "<|endoftext|>", "<|ENDOFTEXT|>", "<|StartOfText|>", "<|", "|>", "'s", "'S", "'ll", "'LL",
         "'ſ", "'re", "'d", "'t", "'m", "'ve", "!", "!!", "...", "(((", "_", "-", "1.5", "  "],
    ]
    assigned = [c for c in range(0x20000) if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) != "Cn"]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(0, 16)):
            k = rng.random()
            if k < 0.15:
                parts.append(chr(rng.choice(assigned)))
            elif k < 0.17:
                parts.append(chr(rng.randint(0x40000, 0xDFFFF)))
            else:
                parts.append(rng.choice(rng.choice(pools)))
        out.append("".join(parts))
    return out


def extract(path, names, within=None):
    """Source of the top-level (or within class `within`) definitions named."""
    src = open(path, encoding="utf-8").read()
    tree = ast.parse(src)
    found = {}
    nodes = ast.walk(tree) if within is None else next(
        n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == within).body
    for node in nodes:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names and node.name not in found:
            found[node.name] = textwrap.dedent(ast.get_source_segment(src, node))
    missing = set(names) - set(found)
    if missing:
        sys.exit(f"{path}: {sorted(missing)} not found")
    return [found[n] for n in names]


STAND_IN = '''
import bisect, itertools, re, unicodedata, logging
from collections import OrderedDict
from typing import Any, Optional, Union, List, Dict
TextInput = str
logger = logging.getLogger("transformers")

{defs}

class PreTrainedTokenizer:
    split_special_tokens = False

    def __init__(self, bos_token, eos_token, unk_token, pad_token, **kwargs):
        self.tokens_trie = Trie()
        self._added_tokens_decoder = {{}}
        self._added_tokens_encoder = {{}}
        self._tokens = {{}}
        for key, tok in (("bos_token", bos_token), ("eos_token", eos_token),
                         ("unk_token", unk_token), ("pad_token", pad_token)):
            if isinstance(tok, str):
                tok = AddedToken(tok, special=True)
            self._tokens[key] = tok.content
            if tok.content in self._added_tokens_encoder:
                continue
            tok.special = True
            index = self.encoder[tok.content]
            self._added_tokens_decoder[index] = tok
            self._added_tokens_encoder[tok.content] = index
            self.tokens_trie.add(tok.content)
        self.all_special_tokens = list(self._added_tokens_encoder)

    def __getattr__(self, name):
        tokens = self.__dict__.get("_tokens", {{}})
        if name in tokens:
            return tokens[name]
        if name.endswith("_id") and name[:-3] in tokens:
            return self._convert_token_to_id_with_added_voc(tokens[name[:-3]])
        raise AttributeError(name)

{methods}
'''


def build_package(src):
    tu = os.path.join(src, "src/transformers/tokenization_utils.py")
    tub = os.path.join(src, "src/transformers/tokenization_utils_base.py")
    tc = os.path.join(src, "src/transformers/models/clip/tokenization_clip.py")
    defs = extract(tu, ["Trie", "_is_whitespace", "_is_control", "_is_punctuation"]) + extract(tub, ["AddedToken"])
    methods = extract(tu, ["tokenize", "prepare_for_tokenization", "convert_tokens_to_ids",
                           "_convert_token_to_id_with_added_voc"], within="PreTrainedTokenizer")
    # The methods are module-level functions here, attached to the class below.
    module = STAND_IN.format(defs="\n\n".join(defs), methods="")
    module += "\n" + "\n\n".join(methods)
    module += "\n" + "".join(
        f"PreTrainedTokenizer.{n} = {n}\n" for n in
        ["tokenize", "prepare_for_tokenization", "convert_tokens_to_ids", "_convert_token_to_id_with_added_voc"])

    pkg = tempfile.mkdtemp(prefix="clipgolden")
    tf = os.path.join(pkg, "transformers")
    os.makedirs(os.path.join(tf, "models", "clip"))
    for d in (tf, os.path.join(tf, "models"), os.path.join(tf, "models", "clip")):
        open(os.path.join(d, "__init__.py"), "w").close()
    with open(os.path.join(tf, "utils.py"), "w") as f:
        f.write("import logging as _logging\nimport types\n"
                "logging = types.SimpleNamespace(get_logger=_logging.getLogger)\n")
    with open(os.path.join(tf, "tokenization_utils.py"), "w", encoding="utf-8") as f:
        f.write(module)
    with open(tc, encoding="utf-8") as f, open(os.path.join(tf, "models", "clip", "tokenization_clip.py"), "w",
                                               encoding="utf-8") as g:
        g.write(f.read())
    return pkg


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: golden.py TRANSFORMERS_SRC LABEL [FTFY_DIR]")
    src, label = sys.argv[1], sys.argv[2]
    sys.modules["ftfy"] = None  # import ftfy raises ImportError
    sys.path.insert(0, build_package(src))
    import regex

    from transformers.models.clip.tokenization_clip import CLIPTokenizer

    vocab = os.path.join(ROOT, "testdata/clip/vocab.json")
    merges = os.path.join(ROOT, "testdata/clip/merges.txt")
    configs = {"sd1": CLIPTokenizer(vocab, merges), "sd2": CLIPTokenizer(vocab, merges, pad_token="!")}
    if configs["sd1"].fix_text is not None:
        sys.exit("ftfy was imported")
    ftfy_version = None
    if len(sys.argv) == 4:
        del sys.modules["ftfy"]
        sys.path.insert(0, sys.argv[3])
        import ftfy
        ftfy_version = ftfy.__version__
        configs["ftfy"] = CLIPTokenizer(vocab, merges)
        if configs["ftfy"].fix_text is None:
            sys.exit("ftfy was not imported")
    cases = []
    for name, tok in configs.items():
        for text in PROMPTS:
            tokens = tok.tokenize(text)
            ids = tok.convert_tokens_to_ids(tokens)
            full = tok.build_inputs_with_special_tokens(ids)
            padded = tok.build_inputs_with_special_tokens(ids[:75])
            padded += [tok.pad_token_id] * (77 - len(padded))
            cases.append({"config": name, "text": text, "tokens": tokens, "ids": full, "padded": padded})
    randoms = []
    for text in random_texts(2000):
        tokens = configs["sd1"].tokenize(text)
        randoms.append({"text": text, "ids": configs["sd1"].convert_tokens_to_ids(tokens)})
    out = {
        "source": {
            "transformers": label,
            "file": "src/transformers/models/clip/tokenization_clip.py (CLIPTokenizer; configs sd1, sd2 without ftfy, ftfy with ftfy.fix_text)",
            "python": sys.version.split()[0],
            "regex": regex.__version__,
            "ftfy": ftfy_version,
            "command": "tools/clip/golden.py",
        },
        "cases": cases,
    }
    # One case per line.
    sys.stdout.write('{"source": ' + json.dumps(out["source"], ensure_ascii=False) + ',\n"cases": [\n')
    sys.stdout.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
    sys.stdout.write('\n],\n"random": [\n')
    sys.stdout.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in randoms))
    sys.stdout.write("\n]}\n")


if __name__ == "__main__":
    main()
