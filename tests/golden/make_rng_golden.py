#!/usr/bin/env python3
"""Golden data for tests/unit/test_rng.c (worker/sample/rng*.c).

Run by hand with the reference venv (torch 2.x CPU from PyPI, numpy):
    /root/ref-venv/bin/python tests/golden/make_rng_golden.py
It rewrites tests/golden/rng/cases.txt and the small tests/golden/rng/*.f32.

What comes from where:
  * "draw" lines: real torch.manual_seed-style generators + torch.randn on the
    CPU (the AVX2/AVX512 kernel torch picks on this x86-64 machine, and the
    ATEN_CPU_CAPABILITY=default kernel for the CPU-scalar lines, produced in a
    child process), and A1111's NV Philox generator ported to numpy from the
    description in ../shared/reference/a1111-compat.md 4.5 (float64 math as
    A1111 does it).  The NV port is checked here against philox_reference.py
    and A1111's documented seed-0 vector.  Long draws are stored as an FNV-1a
    64 hash of the float32 bytes plus the first 8 values (as bit patterns).
  * "noise" lines: A1111 image noise (seed/subseed/slerp/seed resize/ENSD)
    from a small Python implementation written from the spec
    (a1111-compat.md 4.3), NOT from A1111's code; tensors in torch float32.
    Each .f32 file holds the first noise followed by the next draw of the
    sampler generator (both C*H*W little-endian float32).
"""

import math
import os
import struct
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "rng")
REF = os.path.abspath(os.path.join(HERE, "..", "..", "..", "shared", "reference"))

# ---------------------------------------------------------------- helpers --

def fnv1a64(arr):
    h = 0xCBF29CE484222325
    for b in np.asarray(arr, dtype="<f4").tobytes():
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def bits(arr, k=8):
    a = np.asarray(arr, dtype="<f4")[:k]
    return ",".join("%08x" % v for v in a.view("<u4"))


# ------------------------------------------------------- NV (numpy port) --

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)
C = np.array([2.3283064e-10], dtype=np.float32)
C2PI = np.array([2.3283064e-10 * 6.2831855], dtype=np.float32)


def philox(c, k):
    c = [x.copy() for x in c]
    k0, k1 = k
    lo = np.uint64(0xFFFFFFFF)
    for rnd in range(10):
        pa = c[0].astype(np.uint64) * M0
        pb = c[2].astype(np.uint64) * M1
        c = [((pb >> np.uint64(32)).astype(np.uint32) ^ c[1] ^ k0),
             (pb & lo).astype(np.uint32),
             ((pa >> np.uint64(32)).astype(np.uint32) ^ c[3] ^ k1),
             (pa & lo).astype(np.uint32)]
        if rnd < 9:
            k0 = (k0 + W0).astype(np.uint32)
            k1 = (k1 + W1).astype(np.uint32)
    return c


class NV:
    """A1111-style NV generator: offset +1 per call."""

    def __init__(self, seed):
        self.seed, self.offset = seed, 0

    def randn(self, n):
        idx = np.arange(n, dtype=np.uint32)
        zero = np.zeros(n, dtype=np.uint32)
        ctr = [zero + np.uint32(self.offset), zero.copy(), idx, zero.copy()]
        key = (np.full(n, self.seed & 0xFFFFFFFF, dtype=np.uint32),
               np.full(n, (self.seed >> 32) & 0xFFFFFFFF, dtype=np.uint32))
        self.offset += 1
        x, y, _, _ = philox(ctr, key)
        u = x * C + C / 2          # uint32 * float32 array -> float64
        v = y * C2PI + C2PI / 2
        return (np.sqrt(-2.0 * np.log(u)) * np.sin(v)).astype(np.float32)


class CPU:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def randn(self, n):
        return torch.randn(n, generator=self.g).numpy().astype(np.float32)


def make(kind, seed):
    return NV(seed) if kind in ("NV", "GPU") else CPU(seed)


# --------------------------------------------- A1111 noise, from the spec --

def slerp(val, low, high):
    low_n = low / torch.norm(low, dim=1, keepdim=True)
    high_n = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_n * high_n).sum(1)
    if dot.mean() > 0.9995:
        return low * val + high * (1 - val)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + \
           (torch.sin(val * omega) / so).unsqueeze(1) * high


def image_noise(kind, seed, subseed, strength, w, h, rw, rh, ensd, index):
    seed_i = seed + (index if strength == 0 else 0)
    subseed_i = subseed + index
    shape = (4, h // 8, w // 8)
    nshape = shape if rw <= 0 or rh <= 0 else (4, rh // 8, rw // 8)
    cnt = lambda s: s[0] * s[1] * s[2]
    t = lambda a, s: torch.from_numpy(np.asarray(a, dtype=np.float32)).reshape(s)
    gen = make(kind, seed_i)
    sub = None
    if strength != 0:
        sub = t(make(kind, subseed_i).randn(cnt(nshape)), nshape)
    if nshape != shape:
        noise = t(make(kind, seed_i).randn(cnt(nshape)), nshape)
    else:
        noise = t(gen.randn(cnt(shape)), shape)
    if sub is not None:
        noise = slerp(strength, noise, sub)
    if nshape != shape:
        x = t(gen.randn(cnt(shape)), shape)
        dx = (shape[2] - nshape[2]) // 2
        dy = (shape[1] - nshape[1]) // 2
        ww = nshape[2] if dx >= 0 else nshape[2] + 2 * dx
        hh = nshape[1] if dy >= 0 else nshape[1] + 2 * dy
        tx, ty = max(dx, 0), max(dy, 0)
        sx, sy = max(-dx, 0), max(-dy, 0)
        x[:, ty:ty + hh, tx:tx + ww] = noise[:, sy:sy + hh, sx:sx + ww]
        noise = x
    if ensd:
        gen = make(kind, seed_i + ensd)
    later = gen.randn(cnt(shape))
    return noise.numpy().ravel().astype(np.float32), later


# ------------------------------------------------------------------ main --

DRAWS = [  # (kind, seed, consecutive draw sizes)
    ("CPU", 0, [1]), ("CPU", 0, [7]), ("CPU", 0, [15]), ("CPU", 0, [16]), ("CPU", 0, [17]),
    ("CPU", 1234, [4 * 64 * 64]), ("CPU", 1234, [2 * 4 * 64 * 64]),
    ("CPU", 42, [3, 5, 1, 20, 15, 4 * 64 * 64, 2, 33, 4 * 64 * 64]),
    ("CPU", 4294967295, [4 * 96 * 64, 7]), ("CPU", 2 ** 32 + 5, [17, 1]),
    ("CPU", 987654321, [4 * 64 * 64, 4 * 64 * 64, 4 * 64 * 64]),
    ("CPU", 3, [4 * 128 * 128]),
    ("CPU-scalar", 0, [16, 17]), ("CPU-scalar", 1234, [4 * 64 * 64, 33]),
    ("NV", 0, [12]), ("NV", 1234, [4 * 64 * 64, 4 * 64 * 64]),
    ("NV", 2 ** 32 + 5, [17, 1]), ("NV", 987654321, [1, 7, 4 * 96 * 64]),
]

NOISE = [  # kind, seed, subseed, strength, w, h, rw, rh, ensd, index
    ("CPU", 1234, 0, 0.0, 64, 64, 0, 0, 0, 0),
    ("CPU", 1234, 0, 0.0, 64, 96, 0, 0, 31337, 2),
    ("NV", 1234, 0, 0.0, 64, 64, 0, 0, 0, 1),
    ("GPU", 777, 0, 0.0, 96, 64, 0, 0, 31337, 0),
    ("CPU", 1234, 99, 0.3, 64, 64, 0, 0, 0, 0),
    ("NV", 1234, 99, 0.7, 64, 96, 0, 0, 31337, 3),
    ("CPU", 5, 5, 0.25, 64, 64, 0, 0, 0, 0),        # subseed == seed: lerp fallback
    ("CPU", 1234, 0, 0.0, 64, 64, 128, 96, 0, 0),    # resize from larger
    ("NV", 1234, 0, 0.0, 128, 96, 64, 72, 0, 1),     # resize from smaller, odd pad
    ("CPU", 1234, 0, 0.0, 64, 64, 64, 64, 0, 0),     # resize to same size = off
    ("CPU", 1234, 77, 0.5, 96, 64, 56, 104, 31337, 1),  # variation + resize + ENSD
]


def scalar_child():
    """Runs under ATEN_CPU_CAPABILITY=default: prints CPU-scalar draws."""
    out = []
    for kind, seed, sizes in DRAWS:
        if kind != "CPU-scalar":
            continue
        g = CPU(seed)
        out.append([g.randn(n).tolist() for n in sizes])
    print(repr(out))


def check_nv():
    sys.path.insert(0, REF)
    import philox_reference as pr
    ours = NV(0).randn(12)
    ref = np.array(pr.nv_randn(0, (3, 4)), dtype=np.float32).ravel()
    doc = np.array(pr.DOCUMENTED, dtype=np.float32).ravel()
    assert np.array_equal(ours, ref), (ours, ref)
    assert np.max(np.abs(ours - doc)) < 3e-7
    print("NV port matches philox_reference.py; max diff from documented %.2e"
          % np.max(np.abs(ours - doc)))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--scalar-child":
        scalar_child()
        return
    torch.set_num_threads(1)
    print("torch", torch.__version__, "capability", torch.backends.cpu.get_cpu_capability())
    check_nv()
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    scalar = iter(eval(subprocess.run([sys.executable, __file__, "--scalar-child"], env=env,
                                      check=True, capture_output=True, text=True).stdout))
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".f32"):
            os.remove(os.path.join(OUT, f))
    lines = ["# Generated by tests/golden/make_rng_golden.py (torch %s, %s kernel) - do not edit."
             % (torch.__version__, torch.backends.cpu.get_cpu_capability()),
             "# gen KIND SEED / draw N FNV1A64(float32 bytes) FIRST8(hex bits)",
             "# noise KIND SEED SUBSEED STRENGTH W H RW RH ENSD INDEX TOL FILE"]
    for kind, seed, sizes in DRAWS:
        lines.append("gen %s %d" % (kind, seed))
        if kind == "CPU-scalar":
            draws = [np.array(d, dtype=np.float32) for d in next(scalar)]
        else:
            g = make(kind, seed)
            draws = [g.randn(n) for n in sizes]
        for d in draws:
            lines.append("draw %d %016x %s" % (d.size, fnv1a64(d), bits(d)))
    for i, (kind, seed, sub, st, w, h, rw, rh, ensd, idx) in enumerate(NOISE):
        first, later = image_noise(kind, seed, sub, st, w, h, rw, rh, ensd, idx)
        name = "noise%02d.f32" % i
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(np.concatenate([first, later]).astype("<f4").tobytes())
        tol = 0.0 if st == 0 else 4e-6  # slerp: float32 reductions in torch's order
        lines.append("noise %s %d %d %.17g %d %d %d %d %d %d %g %s"
                     % (kind, seed, sub, st, w, h, rw, rh, ensd, idx, tol, name))
    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("wrote %s (%d bytes in all)" % (OUT, total))


if __name__ == "__main__":
    main()
