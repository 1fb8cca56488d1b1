#!/usr/bin/env python3
"""Generate tests/golden/img_ops/cases.bin: expected outputs of the pixel-side
A1111 img2img / inpainting operations, made with the libraries A1111 uses.

Run by hand, never in CI; the output is committed and read by
tests/unit/test_img_ops.c (worker/pipeline/img_ops.c must match it exactly).

    python3 -m venv /tmp/imgops-venv
    /tmp/imgops-venv/bin/pip install pillow==9.5.0 opencv-python-headless numpy
    /tmp/imgops-venv/bin/python tests/golden/make_img_ops_golden.py

Pillow 9.5.0 is A1111's pin.  OpenCV's 8-bit GaussianBlur is its bit-exact
fixed-point path (4.x and 5.x agree; checked with 4.14 and 5.0).

The A1111 1.10 operations are re-stated below from their documented
behaviour (shared/reference/tiling.md section 6, a1111-compat.md 1.4), in
terms of Pillow / OpenCV / numpy calls:
  resize_image(mode)   images.resize_image with upscaler None (LANCZOS);
                       mode 3 takes the "resize and fill" branch like mode 2
  binary_mask          processing.create_binary_mask
  blur                 two cv2.GaussianBlur calls, (k,1) then (1,k)
  crop_region          masking.get_crop_region_v2 + expand_crop_region
  fill                 masking.fill
  overlay / apply      the overlay image built in img2img init, apply_overlay
  latent mask          init_mask.convert('RGB').resize(latent size) -> /255
                       -> around (mask_round)

File layout (little endian): "TIO1", u32 count, then records:
  u16 name length, name (ASCII), u8 dtype (0 u8, 1 f32, 2 i32), u8 ndim,
  u32 dims[ndim], data (C order).
"""
import math
import os
import struct
import sys

import cv2
import numpy as np
from PIL import Image, ImageFilter, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "img_ops", "cases.bin")

records = []


def put(name, arr):
    arr = np.ascontiguousarray(arr)
    if arr.dtype == np.uint8:
        code = 0
    elif arr.dtype == np.float32:
        code = 1
    elif arr.dtype == np.int32:
        code = 2
    else:
        raise TypeError(arr.dtype)
    nb = name.encode("ascii")
    head = struct.pack("<H", len(nb)) + nb + struct.pack("<BB", code, arr.ndim)
    head += b"".join(struct.pack("<I", d) for d in arr.shape)
    records.append(head + arr.tobytes())


def put_img(name, im):
    put(name, np.array(im))


# ---- the A1111 operations ----------------------------------------------------------


def resize_image(mode, im, width, height):
    def resize(im, w, h):
        return im.resize((w, h), resample=Image.LANCZOS)

    if mode == 0:
        return resize(im, width, height)
    # Modes 1 and 2; anything else (3, "latent upscale") takes the mode 2 path.
    ratio = width / height
    src_ratio = im.width / im.height
    if mode == 1:
        src_w = width if ratio > src_ratio else im.width * height // im.height
        src_h = height if ratio <= src_ratio else im.height * width // im.width
        resized = resize(im, src_w, src_h)
        res = Image.new("RGB", (width, height))
        res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
        return res
    src_w = width if ratio < src_ratio else im.width * height // im.height
    src_h = height if ratio >= src_ratio else im.height * width // im.width
    resized = resize(im, src_w, src_h)
    res = Image.new("RGB", (width, height))
    res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
    # The edge strips: resize with a zero-size box and no resample argument,
    # i.e. Pillow's default BICUBIC -- exactly as A1111 calls it.
    if ratio < src_ratio:
        fh = height // 2 - src_h // 2
        if fh > 0:
            res.paste(resized.resize((width, fh), box=(0, 0, width, 0)), box=(0, 0))
            res.paste(resized.resize((width, fh), box=(0, resized.height, width, resized.height)),
                      box=(0, fh + src_h))
    elif ratio > src_ratio:
        fw = width // 2 - src_w // 2
        if fw > 0:
            res.paste(resized.resize((fw, height), box=(0, 0, 0, height)), box=(0, 0))
            res.paste(resized.resize((fw, height), box=(resized.width, 0, resized.width, height)),
                      box=(fw + src_w, 0))
    return res


def binary_mask(image, round=True):
    if image.mode == "RGBA" and image.getextrema()[-1] != (255, 255):
        a = image.split()[-1].convert("L")
        return a.point(lambda x: 255 if x > 128 else 0) if round else a
    return image.convert("L")


def blur(mask, bx, by):
    if bx > 0:
        k = 2 * int(2.5 * bx + 0.5) + 1
        mask = Image.fromarray(cv2.GaussianBlur(np.array(mask), (k, 1), bx))
    if by > 0:
        k = 2 * int(2.5 * by + 0.5) + 1
        mask = Image.fromarray(cv2.GaussianBlur(np.array(mask), (1, k), by))
    return mask


def crop_region(mask, pad):
    box = mask.getbbox()
    if not box:
        return None
    x1, y1, x2, y2 = box
    if pad:
        return (max(x1 - pad, 0), max(y1 - pad, 0), min(x2 + pad, mask.width), min(y2 + pad, mask.height))
    return box


def expand_region(region, pw, ph, iw, ih):
    x1, y1, x2, y2 = region
    rc = (x2 - x1) / (y2 - y1)
    rp = pw / ph
    if rc > rp:
        d = int((x2 - x1) / rp - (y2 - y1))
        y1 -= d // 2
        y2 += d - d // 2
        if y2 >= ih:
            y1 -= y2 - ih
            y2 = ih
        if y1 < 0:
            y2 -= y1
            y1 = 0
        if y2 >= ih:
            y2 = ih
    else:
        d = int((y2 - y1) * rp - (x2 - x1))
        x1 -= d // 2
        x2 += d - d // 2
        if x2 >= iw:
            x1 -= x2 - iw
            x2 = iw
        if x1 < 0:
            x2 -= x1
            x1 = 0
        if x2 >= iw:
            x2 = iw
    return x1, y1, x2, y2


def fill(image, mask):
    canvas = Image.new("RGBA", image.size)
    masked = Image.new("RGBa", image.size)
    masked.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask.convert("L")))
    for radius, repeats in [(256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)]:
        b = masked.filter(ImageFilter.GaussianBlur(radius)).convert("RGBA")
        for _ in range(repeats):
            canvas.alpha_composite(b)
    return canvas.convert("RGB")


def make_overlay(image, mask_for_overlay):
    m = Image.new("RGBa", image.size)
    m.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask_for_overlay.convert("L")))
    return m.convert("RGBA")


def apply_overlay(image, paste_loc, overlay):
    if paste_loc is not None:
        x, y, w, h = paste_loc
        base = Image.new("RGBA", (overlay.width, overlay.height))
        base.paste(resize_image(1, image, w, h), (x, y))
        image = base
    image = image.convert("RGBA")
    image.alpha_composite(overlay)
    return image.convert("RGB")


def latent_mask(mask, lw, lh, rnd):
    lm = np.array(mask.convert("RGB").resize((lw, lh)), dtype=np.float32)[:, :, 0] / 255
    if rnd:
        lm = np.around(lm)
    return lm.astype(np.float32)


# ---- inputs ----------------------------------------------------------------------


def make_rgb(rng, w, h):
    """Smooth colour field plus noise and a few hard-edged rectangles."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([128 + 100 * np.sin(x / 7 + c) * np.cos(y / 9 - c) for c in (0.0, 1.3, 2.6)], axis=2)
    base += rng.normal(0, 25, size=base.shape)
    for _ in range(4):
        x0, y0 = rng.integers(0, w - 4), rng.integers(0, h - 4)
        base[y0:y0 + rng.integers(3, 15), x0:x0 + rng.integers(3, 15)] = rng.integers(0, 256, 3)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


def blobs(rng, w, h, n, rmin, rmax):
    y, x = np.mgrid[0:h, 0:w]
    m = np.zeros((h, w), bool)
    for _ in range(n):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(rmin, rmax), rng.uniform(rmin, rmax)
        m |= ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1
    return m


def main():
    if Image.__version__ != "9.5.0":
        print("warning: Pillow %s, not 9.5.0" % Image.__version__, file=sys.stderr)
    rng = np.random.default_rng(20250611)

    img_a = make_rgb(rng, 64, 48)
    img_b = make_rgb(rng, 40, 72)
    put_img("in/img_a", img_a)
    put_img("in/img_b", img_b)

    # RGBA mask: alpha blobs with soft (partial) alpha; colour channels noise.
    m = blobs(rng, 64, 48, 3, 4, 12)
    alpha = np.where(m, 255, 0).astype(np.int32)
    alpha -= rng.integers(0, 200, size=(48, 64)) * (m & (rng.random((48, 64)) < 0.3))
    speck = ~m & (rng.random((48, 64)) < 0.05)
    alpha[speck] = rng.integers(1, 255, size=int(speck.sum()))
    alpha = alpha.astype(np.uint8)
    rgb = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    mask_rgba = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    put_img("in/mask_rgba", mask_rgba)
    # RGB mask: coloured blobs on black plus grey noise (exercises the L formula).
    m = blobs(rng, 64, 48, 2, 5, 14)
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[m] = rng.integers(0, 256, size=(int(m.sum()), 3), dtype=np.uint8) | 0x80
    noise = rng.random((48, 64)) < 0.05
    rgb[noise] = rng.integers(0, 256, size=(int(noise.sum()), 3), dtype=np.uint8)
    mask_rgb = Image.fromarray(rgb, "RGB")
    put_img("in/mask_rgb", mask_rgb)
    # RGBA whose alpha is all 255: goes through convert('L').
    mask_opaque = Image.fromarray(np.dstack([rgb, np.full((48, 64), 255, np.uint8)]), "RGBA")
    put_img("in/mask_opaque", mask_opaque)
    # Small corner blob mask for img_b (40x72).
    mb = np.where(blobs(rng, 40, 72, 1, 3, 6) & (np.mgrid[0:72, 0:40][1] > 20), 255, 0).astype(np.uint8)
    mb[60:66, 30:34] = 255
    mask_b = Image.fromarray(mb, "L")
    put_img("in/mask_b", mask_b)

    # ---- 1. resize_image ----
    for nm, im, targets in (
        ("img_a", img_a, [(0, 56, 56), (0, 96, 30), (1, 56, 40), (1, 40, 64), (1, 96, 64),
                          (2, 56, 40), (2, 48, 64), (2, 40, 41), (2, 64, 48), (3, 48, 64)]),
        ("img_b", img_b, [(1, 64, 48), (2, 64, 48), (2, 57, 40), (2, 41, 57), (3, 40, 40)]),
    ):
        for mode, w, h in targets:
            put_img("resize/%s/%d_%dx%d" % (nm, mode, w, h), resize_image(mode, im, w, h))
    ml = mask_rgb.convert("L")
    for mode, w, h in ((0, 50, 30), (1, 40, 56), (2, 40, 56), (2, 72, 40)):
        r = resize_image(mode, ml, w, h)
        a = np.array(r)
        if a.ndim == 3:
            assert (a[:, :, 0] == a[:, :, 1]).all() and (a[:, :, 0] == a[:, :, 2]).all()
            a = a[:, :, 0]
        put("resize/mask/%d_%dx%d" % (mode, w, h), a)

    # ---- 2. mask preparation ----
    put_img("bin/rgba_round", binary_mask(mask_rgba, True))
    put_img("bin/rgba_noround", binary_mask(mask_rgba, False))
    put_img("bin/rgb", binary_mask(mask_rgb))
    put_img("bin/opaque", binary_mask(mask_opaque))
    base = binary_mask(mask_rgba, True)
    blur_sets = [(4, 4), (0, 3), (2, 0), (1, 7), (13, 13), (64, 64), (1.5, 3.3), (0.3, 0.6)]
    for bx, by in blur_sets:
        put_img("blur/%g_%g" % (bx, by), blur(base, bx, by))
    grey = Image.fromarray(rng.integers(0, 256, size=(48, 64), dtype=np.uint8), "L")
    put_img("in/grey", grey)
    put_img("blur/grey_4_4", blur(grey, 4, 4))
    put_img("blur/grey_2_9", blur(grey, 2, 9))
    for w, h in ((1, 1), (1, 40), (40, 1), (3, 2), (2, 5)):
        t = Image.fromarray(rng.integers(0, 256, size=(h, w), dtype=np.uint8), "L")
        put_img("in/tiny_%dx%d" % (w, h), t)
        put_img("blur/tiny_%dx%d" % (w, h), blur(t, 4, 4))

    # Kernel check over many sigmas: an impulse of 255 (row 0) and of 254
    # (row 1) in a row of 2k+1 pixels shows every quantised tap (the two
    # amplitudes tell taps 128 and 129 apart).  sigma = milli / 1000.
    millis = list(range(50, 10000, 97)) + list(range(10000, 100001, 5000)) + [2499, 2500, 2501, 333, 1234567 // 100]
    put("kern/millis", np.array(millis, np.int32))
    for mi in millis:
        sg = mi / 1000
        k = 2 * int(2.5 * sg + 0.5) + 1
        row = np.zeros((2, 2 * k + 1), np.uint8)
        row[0, k] = 255
        row[1, k] = 254
        put("kern/%d" % mi, cv2.GaussianBlur(row, (k, 1), sg))

    # ---- 3. crop regions ----
    crops = []
    masks_for_crop = {
        "a": blur(base, 4, 4),
        "b": blur(mask_b, 4, 4),
        "z": Image.new("L", (64, 48)),
    }
    for nm, mk in masks_for_crop.items():
        put_img("crop/mask_%s" % nm, mk)
    for mi, (nm, mk) in enumerate(masks_for_crop.items()):
        for pad in (0, 4, 32, 200):
            r = crop_region(mk, pad)
            for pw, ph in ((64, 48), (48, 64), (56, 56), (96, 40)):
                e = expand_region(r, pw, ph, mk.width, mk.height) if r else (-1, -1, -1, -1)
                crops.append([mi, pad, pw, ph] + list(r if r else (-1, -1, -1, -1)) + list(e))
    put("crop/cases", np.array(crops, np.int32))
    # expand_crop_region on random regions.
    ex = []
    for _ in range(600):
        iw, ih = int(rng.integers(1, 300)), int(rng.integers(1, 300))
        x1 = int(rng.integers(0, iw)); x2 = int(rng.integers(x1 + 1, iw + 1))
        y1 = int(rng.integers(0, ih)); y2 = int(rng.integers(y1 + 1, ih + 1))
        pw, ph = int(rng.integers(1, 40)) * 8, int(rng.integers(1, 40)) * 8
        if rng.random() < 0.2:
            pw, ph = int(rng.integers(1, 2000)), int(rng.integers(1, 2000))
        ex.append([x1, y1, x2, y2, pw, ph, iw, ih] + list(expand_region((x1, y1, x2, y2), pw, ph, iw, ih)))
    put("crop/expand", np.array(ex, np.int32))

    # ---- 4. Pillow GaussianBlur, alpha_composite, fill ----
    src = np.array(make_rgb(rng, 40, 40).convert("RGBA"))
    src[:, :, 3] = rng.integers(0, 256, size=(40, 40), dtype=np.uint8)
    src[blobs(rng, 40, 40, 3, 3, 9), 3] = 0
    rgba_in = Image.fromarray(src, "RGBA").convert("RGBa")
    put("in/rgba_pre", np.array(Image.frombytes("RGBA", rgba_in.size, rgba_in.tobytes())))
    for r in (0, 0.5, 1, 1.7, 2, 4, 16, 64, 256):
        o = rgba_in.filter(ImageFilter.GaussianBlur(r))
        put("pilblur/%g" % r, np.frombuffer(o.tobytes(), np.uint8).reshape(40, 40, 4))
    for w, h in ((1, 1), (1, 30), (30, 1), (3, 2)):
        t = Image.frombytes("RGBa", (w, h), rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8).tobytes())
        put("in/pil_tiny_%dx%d" % (w, h), np.frombuffer(t.tobytes(), np.uint8).reshape(h, w, 4))
        for r in (2, 16):
            put("pilblur/tiny_%dx%d_%g" % (w, h, r),
                np.frombuffer(t.filter(ImageFilter.GaussianBlur(r)).tobytes(), np.uint8).reshape(h, w, 4))
    d = rng.integers(0, 256, size=(40, 40, 4), dtype=np.uint8)
    s = rng.integers(0, 256, size=(40, 40, 4), dtype=np.uint8)
    d[:5, :, 3] = 0; s[5:10, :, 3] = 0; s[10:15, :, 3] = 255; d[15:20, :, 3] = 255
    put("in/ac_dst", d)
    put("in/ac_src", s)
    put("ac/out", np.array(Image.alpha_composite(Image.fromarray(d, "RGBA"), Image.fromarray(s, "RGBA"))))

    fill_masks = {
        "blur": blur(base, 4, 4),
        "zero": Image.new("L", (64, 48), 0),
        "white": Image.new("L", (64, 48), 255),
        "hole": Image.fromarray(np.pad(np.full((28, 40), 255, np.uint8), ((10, 10), (12, 12))), "L"),
    }
    for nm, mk in fill_masks.items():
        put_img("fill/mask_%s" % nm, mk)
        put_img("fill/%s" % nm, fill(img_a, mk))
    put_img("fill/b", fill(img_b, blur(mask_b, 4, 4)))

    # ---- 5. overlay ----
    mo = blur(base, 4, 4)
    ov = make_overlay(img_a, mo)
    put_img("ov/overlay_a", ov)
    gen = make_rgb(rng, 56, 40)
    put_img("in/ov_gen_56x40", gen)
    put_img("ov/apply_paste", apply_overlay(gen, (6, 4, 44, 31), ov))
    gen64 = make_rgb(rng, 64, 48)
    put_img("in/ov_gen_64x48", gen64)
    put_img("ov/apply_whole", apply_overlay(gen64, None, ov))
    whole = np.clip(np.array(mo).astype(np.float32) * 2, 0, 255).astype(np.uint8)
    put("ov/whole_mask", whole)

    # ---- 6. latent mask ----
    for nm, mk in (("blur", mo), ("b", blur(mask_b, 4, 4))):
        for lw, lh in ((8, 6), (7, 5), (12, 9)):
            for rnd in (0, 1):
                put("lat/%s_%dx%d_%d" % (nm, lw, lh, rnd), latent_mask(mk, lw, lh, rnd))

    # ---- 7. tensors ----
    v = np.arange(256, dtype=np.uint8).reshape(16, 16)
    timg = np.dstack([v, 255 - v, (v.astype(np.int32) * 7 % 256).astype(np.uint8)])
    put("in/tensor_img", timg)
    t = timg.astype(np.float32) / 255.0
    t = t * 2 - 1
    put("tensor/from_img", np.moveaxis(t, 2, 0).astype(np.float32))
    xs = rng.uniform(-1.3, 1.3, size=(3, 32, 32)).astype(np.float32)
    flat = xs.reshape(-1)
    k = np.arange(256, dtype=np.float32)
    flat[:256] = (k / np.float32(255)) * np.float32(2) - np.float32(1)   # exact level points
    flat[256:512] = np.nextafter(flat[:256], np.float32(-2))              # just below them
    flat[512:768] = np.nextafter(flat[:256], np.float32(2))               # just above them
    flat[768:772] = [-1.0, 1.0, 0.0, -0.0]
    put("in/tensor_f", xs)
    ts = np.clip((xs + 1.0) / 2.0, 0.0, 1.0)
    assert ts.dtype == np.float32
    ts = 255. * np.moveaxis(ts, 0, 2)
    assert ts.dtype == np.float32
    put("tensor/to_img", ts.astype(np.uint8))

    # ---- 8. the A1111 img2img init + overlay flow, composed ----
    # The generated images the overlay is applied to, one per processing size.
    gens = {}
    for pw, ph in ((56, 40), (48, 64), (56, 56)):
        gens[(pw, ph)] = make_rgb(rng, pw, ph)
        put_img("in/gen_%dx%d" % (pw, ph), gens[(pw, ph)])
    put_img("in/mask_blank", Image.new("L", (64, 48), 0))
    flows = [
        # name, mask, p_w, p_h, resize_mode, blur, round, invert, full_res, pad, fill
        ("om_pad32", "mask_rgba", 56, 40, 0, 4, True, False, True, 32, 0),
        ("om_pad0_orig", "mask_rgba", 48, 64, 0, 4, True, False, True, 0, 1),
        ("om_inv", "mask_rgb", 56, 56, 0, 2, True, True, True, 8, 0),
        ("whole_m0", "mask_rgba", 56, 40, 0, 4, False, False, False, 0, 0),
        ("whole_m1", "mask_rgb", 56, 40, 1, 3, True, False, False, 0, 0),
        ("whole_m2", "mask_rgba", 48, 64, 2, 4, True, False, False, 0, 2),
        ("om_blank", "mask_blank", 56, 40, 0, 4, True, False, True, 32, 0),
    ]
    masks = {"mask_rgba": mask_rgba, "mask_rgb": mask_rgb, "mask_blank": Image.new("L", (64, 48), 0)}
    for name, mask_name, pw, ph, rmode, bl, rnd, inv, full_res, pad, fillmode in flows:
        mask = masks[mask_name]
        im = binary_mask(mask, rnd)
        if inv:
            im = ImageOps.invert(im)
        im = blur(im, bl, bl)
        paste_to = None
        crop = None
        if full_res:
            mfo = im
            mm = im.convert("L")
            crop = crop_region(mm, pad)
            if crop:
                crop = expand_region(crop, pw, ph, mm.width, mm.height)
                x1, y1, x2, y2 = crop
                image_mask = resize_image(2, mm.crop(crop), pw, ph)
                paste_to = (x1, y1, x2 - x1, y2 - y1)
            else:
                image_mask = None
                mfo = None
        else:
            image_mask = resize_image(rmode, im, pw, ph)
            mfo = Image.fromarray(np.clip(np.array(image_mask).astype(np.float32) * 2, 0, 255).astype(np.uint8))
        image = img_a
        if crop is None and rmode != 3:
            image = resize_image(rmode, image, pw, ph)
        overlay = None
        if image_mask is not None:
            if mfo.size != image.size:
                mfo = resize_image(rmode, mfo, image.width, image.height)
            overlay = make_overlay(image, mfo)
        if crop is not None:
            image = resize_image(2, image.crop(crop), pw, ph)
        if image_mask is not None and fillmode != 1:
            image = fill(image, image_mask)
        put_img("flow/%s/image" % name, image)
        put("flow/%s/paste_to" % name, np.array(paste_to if paste_to else (-1, -1, -1, -1), np.int32))
        if image_mask is not None:
            put_img("flow/%s/overlay" % name, overlay)
            put("flow/%s/latmask" % name, latent_mask(image_mask, pw // 8, ph // 8, rnd))
            put_img("flow/%s/final" % name, apply_overlay(gens[(pw, ph)], paste_to, overlay))

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as f:
        f.write(b"TIO1" + struct.pack("<I", len(records)))
        for r in records:
            f.write(r)
    print("wrote %s (%d records, %d bytes; Pillow %s, OpenCV %s, numpy %s)" % (
        OUT, len(records), os.path.getsize(OUT), Image.__version__, cv2.__version__, np.__version__),
        file=sys.stderr)


if __name__ == "__main__":
    main()
