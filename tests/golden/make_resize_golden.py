#!/usr/bin/env python3
"""Generate tests/golden/resize/pillow_cases.bin: Pillow Image.resize outputs.

Run by hand, never in CI; the output is committed and read by
tests/unit/test_resize.c, which checks that tr_resize agrees with Pillow to
within one level.

Use Pillow 9.5.0, the version A1111 pins (requirements_versions.txt), e.g.
    python3 -m venv /tmp/pil95 && /tmp/pil95/bin/pip install pillow==9.5.0
    /tmp/pil95/bin/python tests/golden/make_resize_golden.py
Newer Pillow (seen with 13.0) runs the vertical pass first when the width
grows and the height shrinks, which changes the rounding of the 8-bit
intermediate image by a few levels on noise; tr_resize follows 9.5.0
(horizontal pass first, always).

File layout (little endian):
  "TRG1"  u32 ncases
  per case: u8 filter (0 nearest, 1 bilinear, 2 bicubic, 3 lanczos),
            u8 channels (3 or 4), u16 src_w, u16 src_h, u16 dst_w, u16 dst_h,
            src pixels (src_w*src_h*channels), dst pixels (dst_w*dst_h*channels)
"""
import os
import random
import struct
import sys

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "resize", "pillow_cases.bin")

FILTERS = [
    (0, Image.Resampling.NEAREST),
    (1, Image.Resampling.BILINEAR),
    (2, Image.Resampling.BICUBIC),
    (3, Image.Resampling.LANCZOS),
]
SRC_W, SRC_H = 12, 10
TARGETS = [(25, 17), (5, 4), (17, 6)]  # up, down, up-x/down-y
# NEAREST only: sizes where the source coordinate (i + 0.5) * scale hits an
# integer exactly and Pillow's accumulated float lands just below it.
NEAREST_TIES = [(9, 15)]


def source(rng, channels):
    """Random noise, with some fully transparent and fully opaque pixels."""
    px = bytearray(rng.getrandbits(8) for _ in range(SRC_W * SRC_H * channels))
    if channels == 4:
        for i in range(3, len(px), 4):
            r = rng.random()
            if r < 0.15:
                px[i] = 0
            elif r < 0.4:
                px[i] = 255
    return bytes(px)


def main():
    if Image.__version__ != "9.5.0":
        print("warning: Pillow %s, not 9.5.0 (see the docstring)" % Image.__version__, file=sys.stderr)
    rng = random.Random(20240611)
    cases = []
    for channels, mode in ((3, "RGB"), (4, "RGBA")):
        src = source(rng, channels)
        im = Image.frombytes(mode, (SRC_W, SRC_H), src)
        for fid, flt in FILTERS:
            for w, h in TARGETS + (NEAREST_TIES if fid == 0 else []):
                dst = im.resize((w, h), resample=flt).tobytes()
                cases.append(struct.pack("<BBHHHH", fid, channels, SRC_W, SRC_H, w, h) + src + dst)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as f:
        f.write(b"TRG1" + struct.pack("<I", len(cases)))
        for c in cases:
            f.write(c)
    print("wrote %s (%d cases, Pillow %s)" % (OUT, len(cases), Image.__version__), file=sys.stderr)


if __name__ == "__main__":
    main()
