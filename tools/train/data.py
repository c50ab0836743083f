"""Fashion-MNIST from Debian's dataset-fashion-mnist package (idx files)."""
import gzip
import os

import numpy as np

ROOT = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def _read(name):
    with gzip.open(os.path.join(ROOT, name), "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split):
    """Returns (images uint8 [N,28,28], labels uint8 [N]) for 'train' or 't10k'."""
    return _read(f"{split}-images-idx3-ubyte.gz"), _read(f"{split}-labels-idx1-ubyte.gz")
