#!/usr/bin/env python3
"""Generate tests/golden/latent_resize/cases.safetensors: torch
F.interpolate outputs of the six A1111 latent upscale modes, for
tests/unit/test_latent_resize.c.

Run by hand with the reference venv (torch 2.x):
    /root/ref-venv/bin/python tests/golden/make_latent_resize_golden.py

Tensors: in_<k> [4,h,w] float32 (seeded normal), out_<k>_<mode> for each
mode; the case sizes are in the metadata ("cases": JSON list of
[k, h, w, oh, ow])."""
import json
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = {
    "bilinear": dict(mode="bilinear", antialias=False),
    "bilinear_aa": dict(mode="bilinear", antialias=True),
    "bicubic": dict(mode="bicubic", antialias=False),
    "bicubic_aa": dict(mode="bicubic", antialias=True),
    "nearest": dict(mode="nearest"),
    "nearest_exact": dict(mode="nearest-exact"),
}
SIZES = [(8, 8, 16, 16), (8, 12, 16, 24), (6, 10, 15, 23), (16, 16, 8, 8), (9, 7, 20, 13), (5, 5, 5, 5),
         (12, 8, 30, 20), (7, 11, 3, 4)]


def main():
    g = torch.Generator().manual_seed(7)
    tensors, cases = {}, []
    for k, (h, w, oh, ow) in enumerate(SIZES):
        x = torch.randn((1, 4, h, w), generator=g, dtype=torch.float32)
        tensors["in_%d" % k] = x[0].contiguous()
        for name, kw in MODES.items():
            extra = {} if name.startswith("nearest") else {"align_corners": False}
            y = F.interpolate(x, size=(oh, ow), **kw, **extra)
            tensors["out_%d_%s" % (k, name)] = y[0].contiguous()
        cases.append([k, h, w, oh, ow])
    os.makedirs(os.path.join(HERE, "latent_resize"), exist_ok=True)
    save_file(tensors, os.path.join(HERE, "latent_resize", "cases.safetensors"),
              metadata={"cases": json.dumps(cases), "torch": torch.__version__})


if __name__ == "__main__":
    main()
