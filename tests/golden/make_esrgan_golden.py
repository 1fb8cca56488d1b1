#!/usr/bin/env python3
"""Tiny random-weight ESRGAN-family models (RRDBNet) and their expected outputs.

Run by hand, never in CI; the outputs under tests/golden/esrgan/ are committed
and read by tests/unit/test_esrgan.c:

    /root/ref-venv/bin/python tests/golden/make_esrgan_golden.py
    /root/ref-venv/bin/python tests/golden/make_esrgan_golden.py --full /tmp/esrgan-bench

(torch 2.15, numpy 2.4, Pillow 13, safetensors 0.8.) No weights are downloaded:
the network is written below in plain torch from the published architecture
(ESRGAN, Wang et al. 2018; Real-ESRGAN's RRDBNet in basicsr), with random
weights.

RRDBNet(in 3, out 3, nf, nb, gc, scale):
  scale 2 / 1 (Real-ESRGAN x2plus / x1): pixel_unshuffle(2 / 4) first, so
  conv_first takes 12 / 48 channels; the input is reflect-padded to a multiple
  of the unshuffle factor first and the output cropped back (spandrel, which
  A1111 1.8+ loads these models with).
  conv_first 3x3 -> nb x RRDB -> conv_body, + conv_first's output;
  n_up x (nearest 2x, conv 3x3, LeakyReLU 0.2); conv_hr + LeakyReLU; conv_last.
  RRDB = 3 ResidualDenseBlocks, out*0.2 + x; RDB = 5 convs with dense
  concatenation (growth gc), LeakyReLU 0.2 after conv1..4, conv5*0.2 + x.

Weight names, three schemes (the C loader detects which):
  basicsr:   conv_first, body.N.rdbK.convJ, conv_body, conv_up1.., conv_hr, conv_last
  ESRGAN repo "new arch": conv_first, RRDB_trunk.N.RDBK.convJ, trunk_conv,
             upconv1.., HRconv, conv_last
  old ESRGAN: model.0, model.1.sub.N.RDBK.convJ.0, model.1.sub.<nb>,
             upsampler convs model.3, model.6 (, model.9), then HR conv and
             last conv at model.(2+3n) and model.(4+3n)

Files written to tests/golden/esrgan/:
  x4.safetensors          basicsr names, scale 4, nf 8, gc 4, nb 2 (F32)
  x4_old.safetensors      the same weights, old ESRGAN names
  x4_trunk.safetensors    the same weights, ESRGAN-repo names with a
                          "params_ema." prefix (Real-ESRGAN .pth files nest
                          their weights under params_ema)
  x4_f16.safetensors      other weights, stored as F16
  x2.safetensors          Real-ESRGAN x2plus layout (unshuffle 2), basicsr names
  x2_old1up.safetensors   classic ESRGAN 2x (one upsampler), old names
  x1.safetensors          Real-ESRGAN scale 1 (unshuffle 4), nb 1
  expected.safetensors    float cases: input x [13,11,3] (H, W, C; f32 in
                          [0,1]) and out_<model> [13*s, 11*s, 3]: the network
                          in float64 on x (unclamped), stored as F32
  images.safetensors      U8 images [H, W, 3] named in cases.json
  cases.json              the A1111 image cases (see a1111_upscale below):
                          {"name", "model", "input", "tile", "overlap",
                           "scale" (null: one upscale_with_model pass),
                           "dest_w", "dest_h", "expected"}

The image cases reproduce A1111 1.10 exactly: modules/upscaler_utils.py
upscale_with_model (tiles from images.split_grid, each tile through the model
as BGR floats /255, output .clamp(0,1)*255 .round() (numpy: half to even) to
uint8, re-assembled by images.combine_grid with its linear 0..255 masks pasted
by PIL), and for "scale" cases modules/upscaler.py Upscaler.upscale (model
passes until the image reaches the destination size, at most 3, one pass
always when scale == 1, then a LANCZOS resize to dest; Tessera takes dest
from the job (int(w*scale)), where A1111 1.6+ rounds it down to a multiple
of 8). The model itself runs in float64 here.

--full DIR writes DIR/ESRGAN/full-x4.safetensors (nb 23, nf 64, gc 32, scale
4: the size of ESRGAN_4x / R-ESRGAN 4x+, basicsr's 0.1-scaled Kaiming init,
conv_last calibrated like the tiny models so the output is not near-black)
and DIR/bench-512.png for the docs/PERF.md benchmark. Never committed.
"""
import argparse
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "esrgan")


# ---- the network (published architecture, plain torch) ----------------------

class RDB(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)

    def forward(self, x):
        lr = lambda t: F.leaky_relu(t, 0.2)
        x1 = lr(self.conv1(x))
        x2 = lr(self.conv2(torch.cat((x, x1), 1)))
        x3 = lr(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = lr(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = RDB(nf, gc), RDB(nf, gc), RDB(nf, gc)

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """shuffle: pixel_unshuffle factor (1, 2 or 4); n_up: nearest-2x upsamplers."""

    def __init__(self, nf, nb, gc, shuffle, n_up):
        super().__init__()
        self.shuffle, self.n_up = shuffle, n_up
        self.scale = (2 ** n_up) // shuffle
        self.conv_first = nn.Conv2d(3 * shuffle * shuffle, nf, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
        self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
        self.ups = nn.ModuleList([nn.Conv2d(nf, nf, 3, 1, 1) for _ in range(n_up)])
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, 3, 3, 1, 1)

    def forward(self, x):
        h, w = x.shape[2], x.shape[3]
        s = self.shuffle
        if s > 1:
            ph, pw = (s - h % s) % s, (s - w % s) % s
            if ph or pw:
                x = F.pad(x, (0, pw, 0, ph), "reflect")
            x = F.pixel_unshuffle(x, s)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for conv in self.ups:
            feat = F.leaky_relu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        out = self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))
        return out[:, :, : h * self.scale, : w * self.scale]


def init_weights(net, gen, scale):
    """Kaiming-normal weights times `scale` (basicsr default_init_weights uses
    0.1), small random biases."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("weight"):
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * math.sqrt(2.0 / fan_in) * scale)
            else:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.05)


def calibrate(net, gen):
    """Scale conv_last so that the output on noise is about 0.5 +- 0.35: the
    tiny models' outputs then spread over [0, 1] with some clamping at both
    ends (the uint8 cases exercise the clamp)."""
    with torch.no_grad():
        net.conv_last.bias.zero_()
        x = torch.rand((1, 3, 16, 16), generator=gen, dtype=torch.float64)
        y = net(x)
        net.conv_last.weight.mul_(0.35 / float((y - y.mean()).std()))
        net.conv_last.bias.copy_(0.5 - 0.35 * float(y.mean() / (y - y.mean()).std())
                                 + 0.05 * torch.randn(3, generator=gen, dtype=torch.float64))


def state_basicsr(net):
    sd = {}
    for k, v in net.state_dict().items():
        if k.startswith("ups."):
            i, rest = k[4:].split(".", 1)
            k = "conv_up%d.%s" % (int(i) + 1, rest)
        sd[k] = v
    return sd


def state_trunk(net, prefix=""):
    ren = {"conv_body": "trunk_conv", "conv_hr": "HRconv"}
    sd = {}
    for k, v in state_basicsr(net).items():
        head, rest = k.split(".", 1)
        if head == "body":
            i, rdb, conv_wb = rest.split(".", 2)
            nk = "RRDB_trunk.%s.%s.%s" % (i, rdb.upper(), conv_wb)
        elif head.startswith("conv_up"):
            nk = "upconv%s.%s" % (head[7:], rest)
        else:
            nk = "%s.%s" % (ren.get(head, head), rest)
        sd[prefix + nk] = v
    return sd


def state_old(net):
    nb, n = len(net.body), net.n_up
    sd = {}
    for k, v in state_basicsr(net).items():
        head, rest = k.split(".", 1)
        if head == "conv_first":
            nk = "model.0." + rest
        elif head == "body":
            i, rdb, conv, wb = rest.split(".")
            nk = "model.1.sub.%s.%s.%s.0.%s" % (i, rdb.upper(), conv, wb)
        elif head == "conv_body":
            nk = "model.1.sub.%d.%s" % (nb, rest)
        elif head.startswith("conv_up"):
            nk = "model.%d.%s" % (3 + 3 * (int(head[7:]) - 1), rest)
        elif head == "conv_hr":
            nk = "model.%d.%s" % (2 + 3 * n, rest)
        elif head == "conv_last":
            nk = "model.%d.%s" % (4 + 3 * n, rest)
        else:
            raise KeyError(k)
        sd[nk] = v
    return sd


def save_state(path, sd, dtype=np.float32):
    save_file({k: v.detach().numpy().astype(dtype) for k, v in sd.items()}, path)


# ---- A1111 1.10 image path, re-implemented -----------------------------------

def split_grid(image, tile_w, tile_h, overlap):
    """modules/images.py split_grid: tiles of tile_w x tile_h, spread evenly
    with at least `overlap` pixels shared, the last one flush with the edge
    (negative offsets, i.e. black fill, when the image is smaller)."""
    w, h = image.size
    cols = math.ceil((w - overlap) / (tile_w - overlap))
    rows = math.ceil((h - overlap) / (tile_h - overlap))
    dx = (w - tile_w) / (cols - 1) if cols > 1 else 0
    dy = (h - tile_h) / (rows - 1) if rows > 1 else 0
    grid = []
    for row in range(rows):
        y = int(row * dy)
        if y + tile_h >= h:
            y = h - tile_h
        tiles = []
        for col in range(cols):
            x = int(col * dx)
            if x + tile_w >= w:
                x = w - tile_w
            tiles.append((x, tile_w, image.crop((x, y, x + tile_w, y + tile_h))))
        grid.append((y, tile_h, tiles))
    return grid


def combine_grid(grid, tile_w, tile_h, image_w, image_h, overlap):
    """modules/images.py combine_grid: each row's tiles pasted left to right,
    the first `overlap` columns through a mask of int(i*255/overlap); rows
    pasted top to bottom the same way with a row mask."""
    def mask(r):
        return Image.fromarray((r * 255 / overlap).astype(np.uint8), "L")
    mask_w = mask(np.arange(overlap, dtype=np.float32).reshape((1, overlap)).repeat(tile_h, axis=0))
    mask_h = mask(np.arange(overlap, dtype=np.float32).reshape((overlap, 1)).repeat(image_w, axis=1))
    out = Image.new("RGB", (image_w, image_h))
    for y, h, row in grid:
        comb = Image.new("RGB", (image_w, h))
        for x, w, tile in row:
            if x == 0:
                comb.paste(tile, (0, 0))
                continue
            comb.paste(tile.crop((0, 0, overlap, h)), (x, 0), mask=mask_w)
            comb.paste(tile.crop((overlap, 0, w, h)), (x + overlap, 0))
        if y == 0:
            out.paste(comb, (0, 0))
            continue
        out.paste(comb.crop((0, 0, comb.width, overlap)), (0, y), mask=mask_h)
        out.paste(comb.crop((0, overlap, comb.width, h)), (0, y + overlap))
    return out


def model_patch(net, img):
    """upscaler_utils.upscale_pil_patch: RGB -> BGR floats /255 -> model ->
    clamp(0,1) in f32, *255, round half to even -> uint8 -> RGB."""
    a = np.array(img.convert("RGB"))[:, :, ::-1]
    t = torch.from_numpy(np.ascontiguousarray(np.transpose(a, (2, 0, 1))) / 255).unsqueeze(0)
    with torch.no_grad():
        y = net(t.double())
    arr = y.squeeze(0).float().clamp_(0, 1).numpy()
    arr = (255.0 * np.moveaxis(arr, 0, 2)).round().astype(np.uint8)[:, :, ::-1]
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


def upscale_with_model(net, img, tile, overlap):
    if tile <= 0:
        return model_patch(net, img)
    grid = split_grid(img, tile, tile, overlap)
    rows = []
    s = None
    for y, h, row in grid:
        nrow = []
        for x, w, t in row:
            o = model_patch(net, t)
            s = o.width // t.width
            nrow.append((x * s, w * s, o))
        rows.append((y * s, h * s, nrow))
    return combine_grid(rows, tile * s, tile * s, img.width * s, img.height * s, overlap * s)


def a1111_upscale(net, img, scale, dest_w, dest_h, tile, overlap):
    """modules/upscaler.py Upscaler.upscale with Tessera's destination size."""
    for i in range(3):
        if img.width >= dest_w and img.height >= dest_h and (i > 0 or scale != 1):
            break
        shape = (img.width, img.height)
        img = upscale_with_model(net, img, tile, overlap)
        if shape == (img.width, img.height):
            break
    if img.width != dest_w or img.height != dest_h:
        img = img.resize((dest_w, dest_h), resample=Image.Resampling.LANCZOS)
    return img


# ---- fixtures -----------------------------------------------------------------

def make_net(gen, nf, nb, gc, shuffle, n_up, wscale=0.8):
    net = RRDBNet(nf, nb, gc, shuffle, n_up).double()
    init_weights(net, gen, wscale)
    calibrate(net, gen)
    return net.eval()


def round_to(net, dtype):
    """Round every parameter to what the file stores (f32 / f16), so the f64
    reference is the exact function of the stored weights."""
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(p.to(dtype).double())


def smooth_image(rng, w, h):
    """Random but image-like: a coarse noise upsampled bilinearly, plus fine noise."""
    coarse = Image.fromarray(rng.integers(0, 256, (max(2, h // 4), max(2, w // 4), 3), dtype=np.uint8), "RGB")
    base = np.asarray(coarse.resize((w, h), Image.Resampling.BILINEAR)).astype(np.int32)
    base += rng.integers(-20, 21, base.shape)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


def golden():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(20240611)
    rng = np.random.default_rng(7)
    nets = {}
    nets["x4"] = make_net(gen, 8, 2, 4, 1, 2)
    nets["x4_f16"] = make_net(gen, 8, 2, 4, 1, 2)
    nets["x2"] = make_net(gen, 8, 2, 4, 2, 2)
    nets["x2_old1up"] = make_net(gen, 8, 2, 4, 1, 1)
    nets["x1"] = make_net(gen, 8, 1, 4, 4, 2)
    for k, n in nets.items():
        round_to(n, torch.float16 if k.endswith("f16") else torch.float32)
    save_state(os.path.join(OUT, "x4.safetensors"), state_basicsr(nets["x4"]))
    save_state(os.path.join(OUT, "x4_old.safetensors"), state_old(nets["x4"]))
    save_state(os.path.join(OUT, "x4_trunk.safetensors"), state_trunk(nets["x4"], "params_ema."))
    save_state(os.path.join(OUT, "x4_f16.safetensors"), state_basicsr(nets["x4_f16"]), np.float16)
    save_state(os.path.join(OUT, "x2.safetensors"), state_basicsr(nets["x2"]))
    save_state(os.path.join(OUT, "x2_old1up.safetensors"), state_old(nets["x2_old1up"]))
    save_state(os.path.join(OUT, "x1.safetensors"), state_basicsr(nets["x1"]))

    # float cases: odd sizes, so the unshuffle models reflect-pad
    x = rng.random((13, 11, 3)).astype(np.float32)
    exp = {"x": x}
    xt = torch.from_numpy(x.astype(np.float64)).permute(2, 0, 1).unsqueeze(0)
    with torch.no_grad():
        for k, n in nets.items():
            y = n(xt).squeeze(0).permute(1, 2, 0).numpy()
            exp["out_" + k] = np.ascontiguousarray(y).astype(np.float32)
            print("float %-10s out %s  range [%.3f, %.3f]" % (k, y.shape, y.min(), y.max()))
    save_file(exp, os.path.join(OUT, "expected.safetensors"))

    # A1111 image cases
    imgs, cases = {}, []

    def case(name, model, img, tile, overlap, scale=None, dest=None):
        key = "in_" + name
        imgs[key] = np.asarray(img)
        if scale is None:
            out = upscale_with_model(nets[model], img, tile, overlap)
        else:
            out = a1111_upscale(nets[model], img, scale, dest[0], dest[1], tile, overlap)
        imgs["out_" + name] = np.asarray(out)
        a = np.asarray(out)
        print("case %-14s %-9s %dx%d -> %dx%d (tile %d, overlap %d)  clipped %.1f%%" % (
            name, model, img.width, img.height, out.width, out.height, tile, overlap,
            100.0 * np.mean((a == 0) | (a == 255))))
        cases.append({"name": name, "model": model, "input": key, "tile": tile, "overlap": overlap,
                      "scale": scale, "dest_w": out.width, "dest_h": out.height, "expected": "out_" + name})

    big = smooth_image(rng, 45, 38)
    case("x4_tiled", "x4", big, 16, 4)
    case("x2_tiled", "x2", big, 16, 4)
    case("x4_small", "x4", smooth_image(rng, 10, 7), 16, 4)      # smaller than a tile
    case("x4_wide", "x4", smooth_image(rng, 40, 12), 16, 4)      # one row, tile taller than the image
    case("x4_untiled", "x4", smooth_image(rng, 19, 14), 0, 0)
    case("x1_tiled", "x1", smooth_image(rng, 30, 25), 18, 4)     # tile not a multiple of 4: reflect pad
    case("x2old_tiled", "x2_old1up", smooth_image(rng, 33, 20), 16, 6)
    case("x4f16_ov0", "x4_f16", smooth_image(rng, 36, 20), 16, 0)
    src = smooth_image(rng, 21, 17)
    case("to_2_5", "x4", src, 16, 4, 2.5, (int(21 * 2.5), int(17 * 2.5)))
    case("to_1", "x4", src, 16, 4, 1.0, (21, 17))
    case("to_8_x2", "x2", smooth_image(rng, 9, 7), 16, 4, 8.0, (72, 56))
    # A1111's default tiles (192 / 8) on an image smaller than a tile: what the
    # worker runs; tests/integration/test_esrgan_extras.py submits this input
    case("farm_x4", "x4", smooth_image(rng, 50, 40), 192, 8, 4.0, (200, 160))
    save_file(imgs, os.path.join(OUT, "images.safetensors"))
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote %s (%d bytes)" % (OUT, total))


def full(d):
    gen = torch.Generator().manual_seed(1)
    net = RRDBNet(64, 23, 32, 1, 2).double()
    init_weights(net, gen, 0.1)
    calibrate(net, gen)
    os.makedirs(os.path.join(d, "ESRGAN"), exist_ok=True)
    save_state(os.path.join(d, "ESRGAN", "full-x4.safetensors"), state_basicsr(net))
    smooth_image(np.random.default_rng(3), 512, 512).save(os.path.join(d, "bench-512.png"))
    print("wrote %s/ESRGAN/full-x4.safetensors and %s/bench-512.png" % (d, d))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", metavar="DIR", help="write the full-size bench model and image to DIR (not committed)")
    a = ap.parse_args()
    if a.full:
        full(a.full)
    else:
        golden()
