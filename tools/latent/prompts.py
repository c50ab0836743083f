"""Prompts over the ten Fashion-MNIST classes."""

# Names per class (label order of Fashion-MNIST); the first is the canonical one.
NAMES = [
    ["t-shirt", "top", "tee"],
    ["pair of trousers", "trousers", "pants"],
    ["pullover", "sweater", "jumper"],
    ["dress"],
    ["coat", "jacket"],
    ["sandal"],
    ["shirt", "button-up shirt"],
    ["sneaker", "trainer", "running shoe"],
    ["bag", "handbag"],
    ["ankle boot", "boot"],
]

TEMPLATES = [
    "{a} {n}",
    "{n}",
    "a photo of {a} {n}",
    "{a} {n}, studio shot",
    "a black and white photo of {a} {n}",
    "a picture of the {n}",
    "product photo of {a} {n}",
    "{a} {n} on a black background",
    "a small {n}",
    "a grey {n}",
]


def article(name):
    return "an" if name[0] in "aeiou" else "a"


def all_prompts():
    """Returns [(label, prompt)] for every class, name and template."""
    out = []
    for label, names in enumerate(NAMES):
        for n in names:
            for t in TEMPLATES:
                out.append((label, t.format(a=article(n), n=n)))
    return out


def canonical(label):
    """The prompt the evaluation uses for a class: "a photo of a <name>"."""
    n = NAMES[label][0]
    return TEMPLATES[2].format(a=article(n), n=n)
