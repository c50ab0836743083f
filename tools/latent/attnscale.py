"""An experiment on the latent models: their UNet with attention-entropy scaling (Jin et al. 2023,
"Training-free diffusion model adaptation for variable-sized text-to-image synthesis", arXiv
2306.08645): each self-attention's logits multiplied by sqrt(log n / log n_train), n the token count of
the call and n_train that of the same block at the training size (8x8 latents), so the attention keeps
its entropy at larger sizes; cross-attention (16 text tokens at every size) unchanged. At the training
size the factor is 1 and the outputs are the plain model's. Writes a copy of a model folder whose
unet/model.onnx is the scaled export (the token count is read from the input's shape inside the graph).

Usage (from the repository root):

    /usr/bin/python3 tools/latent/attnscale.py testdata/models/fashion_ldm_eps out/attn/fashion_ldm_eps \
        out/latent/unet_epsilon.pt
    go run ./examples/latenteval -models out/attn/fashion_ldm_eps -pooled -only "64 UG θ=1.2 η=1 cfg 7.5"
"""
import math
import os
import shutil
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "train"))
import export as ex  # noqa: E402
import models  # noqa: E402
import train  # noqa: E402

src, dst, ck_path = sys.argv[1], sys.argv[2], sys.argv[3]
ck = torch.load(ck_path)
te, unet = train.make_unet_models(ck["used"])
unet.load_state_dict(ck["ema_unet"]); unet.eval()

blocks = [m for m in unet.modules() if isinstance(m, models.Transformer2D)]

def tf_forward(self, x, ctx):
    b, c, h, w = x.shape
    y = self.proj_in(self.norm(x)).reshape(b, c, h * w).transpose(1, 2)
    if self.n_train is None:
        self.n_train = h * w
    ntok = torch._shape_as_tensor(y)[1].float()
    f = torch.sqrt(torch.log(ntok) / math.log(self.n_train))
    q_in = self.n1(y)
    a = self.attn1
    o = models.attention(a.q(q_in) * f, a.k(q_in), a.v(q_in), a.heads)
    y = y + a.o(o)
    y = y + self.attn2(self.n2(y), ctx)
    y = y + self.ff(self.n3(y))
    return x + self.proj_out(y.transpose(1, 2).reshape(b, c, h, w))

for m in blocks:
    m.n_train = None
models.Transformer2D.forward = tf_forward  # the blocks' own forward with q scaled (n_train recorded below)
with torch.no_grad():
    unet(torch.randn(1, 4, 8, 8), torch.tensor([500]), torch.randn(1, 77, train.TEXT_DIM))  # record n_train
print("n_train per block:", [m.n_train for m in blocks])
if os.path.exists(dst):
    shutil.rmtree(dst)
shutil.copytree(src, dst)
sample = torch.randn(2, 4, 8, 8)
ex.export(unet, (sample, torch.tensor([1, 999], dtype=torch.int64), torch.randn(2, 77, train.TEXT_DIM)),
          os.path.join(dst, "unet", "model.onnx"), ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
          {"sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}, "timestep": {0: "batch"},
           "encoder_hidden_states": {0: "batch", 1: "sequence"}, "out_sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}})
