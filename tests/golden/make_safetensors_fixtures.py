#!/usr/bin/env python3
"""Generate tests/golden/safetensors/*.safetensors with the reference library.

Run by hand, never in CI; the outputs are committed and read by
tests/unit/test_safetensors.c (and seed the fuzzer, tests/fuzz/).

    python3 -m venv /tmp/st && /tmp/st/bin/pip install safetensors numpy ml_dtypes
    /tmp/st/bin/python tests/golden/make_safetensors_fixtures.py

Made with safetensors 0.8.0, numpy 2.4, ml_dtypes (for bfloat16).

basic.safetensors - what Tessera's reader must accept, self-checking: every
  F16/BF16 tensor NAME has a companion NAME.f32 holding numpy's exact float32
  conversion of it, and f32_src has f32_src.f16 = f32_src.astype(float16)
  (round to nearest even) to check tst_f32_to_f16 bit for bit. Also a 0-dim
  scalar, empty tensors ([0] and [2,0,3]), a 4-d tensor, an I64 and a U8 tensor
  (listed but unusable), and __metadata__ (including non-ASCII text).
writer_ref.safetensors - the reference writer's bytes for tensors that
  test_safetensors.c rebuilds from the same formulas and writes with tst_write:
  the two files must be identical (one metadata key only, since the reference
  writer keeps metadata in a hash map of unspecified order).
"""
import os

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "safetensors")

SPECIAL = [0.0, -0.0, 1.0, -2.5, 65504.0, -65504.0, 6.1035156e-05, 5.9604645e-08,
           3.0e-07, np.inf, -np.inf, np.nan, 0.1, 1.0 / 3.0, 1234.5678, -1e-6]


def ramp(n, scale=0.25, offset=-3.0):
    return (np.arange(n, dtype=np.float32) * np.float32(scale) + np.float32(offset)).astype(np.float32)


def basic():
    rng = np.random.default_rng(1234)
    t = {}
    t["w.f32"] = ramp(6).reshape(2, 3)
    t["conv.weight"] = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    h16 = np.concatenate([np.array(SPECIAL, np.float32),
                          rng.standard_normal(24).astype(np.float32) * 100]).astype(np.float16)
    t["h16"] = h16.reshape(5, 8)
    t["h16.f32"] = h16.astype(np.float32).reshape(5, 8)
    b16 = np.concatenate([np.array(SPECIAL, np.float32),
                          rng.standard_normal(8).astype(np.float32) * 1e30]).astype(ml_dtypes.bfloat16)
    t["b16"] = b16.reshape(3, 8)
    t["b16.f32"] = b16.astype(np.float32).reshape(3, 8)
    # every interesting rounding case for f32 -> f16
    src = np.concatenate([
        np.array(SPECIAL, np.float32),
        np.array([65519.0, 65520.0, 65536.0, 1e10, 2.0 ** -25, 2.0 ** -25 * 1.0000001, 2.0 ** -24 * 1.5,
                  2.0 ** -24 * 2.5, 2.0 ** -14 * (1 - 2.0 ** -11), 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11,
                  1e-10], np.float32),
        rng.standard_normal(64).astype(np.float32) * np.float32(10.0) ** rng.integers(-9, 5, 64).astype(np.float32),
    ]).astype(np.float32)
    t["f32_src"] = src
    with np.errstate(over="ignore"):
        t["f32_src.f16"] = src.astype(np.float16)
    t["scalar"] = np.array(1.5, np.float32)
    t["empty"] = np.zeros((0,), np.float32)
    t["empty3"] = np.zeros((2, 0, 3), np.float16)
    t["steps"] = np.arange(5, dtype=np.int64)
    t["mask"] = np.array([1, 0, 255], np.uint8)
    meta = {"format": "pt", "modelspec.title": "tiny \u00e9\u00e8 \u2603", "ss_note": "a=\"b\"\\n"}
    save_file(t, os.path.join(OUT, "basic.safetensors"), metadata=meta)


def writer_ref():
    # Keep in sync with test_writer_matches_reference in tests/unit/test_safetensors.c.
    t = {
        "alpha": ramp(12).reshape(3, 4),
        "beta": ramp(6, 0.5, 1.0).astype(np.float16).reshape(6),
        "gamma": ramp(4, -1.5, 2.0).astype(ml_dtypes.bfloat16).reshape(2, 2),
        "s": np.array(7.0, np.float32),
        "nothing": np.zeros((0, 5), np.float32),
    }
    save_file(t, os.path.join(OUT, "writer_ref.safetensors"), metadata={"format": "pt"})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    basic()
    writer_ref()
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))
