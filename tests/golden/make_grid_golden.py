#!/usr/bin/env python3
"""Generate tests/golden/grid/cases.bin: A1111's "SD upscale" grid (images.split_grid
positions and images.combine_grid pixels) made with the libraries A1111 uses.

Run by hand, never in CI; the output is committed and read by
tests/unit/test_grid.c (proto/tile_grid.c and worker/pipeline/grid.c must
match it exactly).

    /root/ref-venv/bin/pip install --no-deps --target /tmp/pgold pillow==9.5.0   # if /tmp/pgold lacks it
    PYTHONPATH=/tmp/pgold /root/ref-venv/bin/python tests/golden/make_grid_golden.py

Pillow 9.5.0 is A1111's pin; numpy makes the ramp masks as A1111 does (float32).
The two operations are re-stated from shared/reference/tiling.md section 4.1 in
terms of Pillow / numpy calls (not copied from A1111):
  split     cols = ceil((w - ov) / (tw - ov)), dx = (w - tw) / (cols - 1) (0 for
            one column), x = int(col * dx), clamped to w - tw when x + tw >= w;
            rows alike; tiles row-major
  combine   ramp = (arange(ov, float32) * 255 / ov).astype(uint8) as an "L"
            mask (tile_h tall for columns, image_w wide for rows); per row a
            black RGB strip, the tile at x == 0 pasted, every other tile's
            first ov columns pasted through the ramp and the rest copied; the
            rows go into a black canvas the same way (y == 0 as is).

File layout (little endian), as tests/golden/img_ops: "TIO1", u32 count, then
records: u16 name length, name (ASCII), u8 dtype (0 u8, 2 i32), u8 ndim,
u32 dims[ndim], data (C order).
Per case k: "k/meta" i32 [image_w, image_h, tile_w, tile_h, overlap, cols, rows],
"k/xs" i32 [cols], "k/ys" i32 [rows], "k/combined" u8 [image_h, image_w, 3].
Upscalers: "up/src" u8 [37, 50, 3] and "up/k/<name>/<scale>" u8 [h, w, 3], the
output of A1111's Upscaler.upscale with the built-in Lanczos / Nearest.
The tiles standing for the rendered ones are not stored: tile i of case k is
tile_h x tile_w x 3 bytes of the stream x = x * 1103515245 + 12345 (mod 2^32),
byte = (x >> 16) & 255, started at x = 1000 * k + i (test_grid.c makes the same).
"""
import math
import os
import struct

import numpy as np
import PIL
from PIL import Image

assert PIL.__version__ == "9.5.0", "A1111 pins Pillow 9.5.0; got " + PIL.__version__

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "grid", "cases.bin")

records = []


def put(name, arr):
    arr = np.ascontiguousarray(arr)
    code = {np.dtype(np.uint8): 0, np.dtype(np.int32): 2}[arr.dtype]
    nb = name.encode("ascii")
    head = struct.pack("<H", len(nb)) + nb + struct.pack("<BB", code, arr.ndim)
    head += b"".join(struct.pack("<I", d) for d in arr.shape)
    records.append(head + arr.tobytes())


def positions(size, tile, n):
    step = (size - tile) / (n - 1) if n > 1 else 0
    out = []
    for i in range(n):
        v = int(i * step)
        if v + tile >= size:
            v = size - tile
        out.append(v)
    return out


def grid(w, h, tw, th, ov):
    cols = math.ceil((w - ov) / (tw - ov))
    rows = math.ceil((h - ov) / (th - ov))
    return positions(w, tw, cols), positions(h, th, rows)


def ramp(ov, rows, cols, along_x):
    """the "L" mask: 0..ov-1 scaled to 0..255 in float32, along x (rows tall) or along y (cols wide)"""
    r = np.arange(ov, dtype=np.float32)
    r = r.reshape((1, ov)).repeat(rows, axis=0) if along_x else r.reshape((ov, 1)).repeat(cols, axis=1)
    r = r * 255 / ov
    return Image.fromarray(r.astype(np.uint8), "L")


def combine(w, h, tw, th, ov, xs, ys, tiles):
    """tiles: list of rows, each a list of PIL RGB tiles"""
    mask_w = ramp(ov, th, 0, True)
    mask_h = ramp(ov, 0, w, False)
    canvas = Image.new("RGB", (w, h))
    for y, row_tiles in zip(ys, tiles):
        strip = Image.new("RGB", (w, th))
        for x, tile in zip(xs, row_tiles):
            if x == 0:
                strip.paste(tile, (0, 0))
                continue
            strip.paste(tile.crop((0, 0, ov, th)), (x, 0), mask=mask_w)
            strip.paste(tile.crop((ov, 0, tw, th)), (x + ov, 0))
        if y == 0:
            canvas.paste(strip, (0, 0))
            continue
        canvas.paste(strip.crop((0, 0, w, ov)), (0, y), mask=mask_h)
        canvas.paste(strip.crop((0, ov, w, th)), (0, y + ov))
    return canvas


CASES = [
    # image w, h, tile w, h, overlap
    (128, 128, 32, 32, 8),     # the integration tests' grid: 5 x 5
    (100, 77, 40, 32, 12),     # odd sizes, real overlap above the requested one
    (96, 64, 32, 24, 0),       # no overlap: plain concatenation
    (120, 100, 64, 48, 47),    # overlap one below the tile height
    (64, 48, 64, 48, 16),      # one tile
    (130, 40, 64, 40, 31),     # one row
    (161, 143, 64, 56, 21),    # uneven strides
]

def tile_bytes(seed, n):
    x = seed & 0xFFFFFFFF
    out = bytearray(n)
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out[i] = (x >> 16) & 255
    return bytes(out)


for k, (w, h, tw, th, ov) in enumerate(CASES):
    xs, ys = grid(w, h, tw, th, ov)
    tiles = [[Image.frombytes("RGB", (tw, th), tile_bytes(1000 * k + r * len(xs) + c, tw * th * 3))
              for c in range(len(xs))] for r in range(len(ys))]
    out = combine(w, h, tw, th, ov, xs, ys, tiles)
    put("%d/meta" % k, np.array([w, h, tw, th, ov, len(xs), len(ys)], dtype=np.int32))
    put("%d/xs" % k, np.array(xs, dtype=np.int32))
    put("%d/ys" % k, np.array(ys, dtype=np.int32))
    put("%d/combined" % k, np.array(out))



# The built-in upscalers as A1111 1.10's Upscaler.upscale runs them (dest =
# int((w * scale) // 8 * 8); while smaller, up to 3 passes of do_upscale =
# resize to int(w * scale) with the upscaler's filter, a pass even at scale 1;
# a same-size pass ends the loop; then LANCZOS to dest when it differs).
def a1111_upscale(img, scale, resample):
    dest_w = int((img.width * scale) // 8 * 8)
    dest_h = int((img.height * scale) // 8 * 8)
    for i in range(3):
        if img.width >= dest_w and img.height >= dest_h and (i > 0 or scale != 1):
            break
        shape = (img.width, img.height)
        img = img.resize((int(img.width * scale), int(img.height * scale)), resample=resample)
        if shape == (img.width, img.height):
            break
    if img.width != dest_w or img.height != dest_h:
        img = img.resize((int(dest_w), int(dest_h)), resample=Image.LANCZOS)
    return img


UPSCALES = [("Lanczos", 2.0), ("Lanczos", 1.5), ("Nearest", 2.5), ("Lanczos", 1.0), ("Nearest", 0.5),
            ("Nearest", 3.3)]
src = Image.frombytes("RGB", (50, 37), tile_bytes(77, 50 * 37 * 3))
put("up/src", np.array(src))
for k, (name, scale) in enumerate(UPSCALES):
    out = a1111_upscale(src, scale, Image.LANCZOS if name == "Lanczos" else Image.NEAREST)
    put("up/%d/%s/%g" % (k, name, scale), np.array(out))

os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "wb") as f:
    f.write(b"TIO1" + struct.pack("<I", len(records)) + b"".join(records))
print("wrote %s: %d cases, %d records, %d bytes" % (OUT, len(CASES), len(records), os.path.getsize(OUT)))
