#!/usr/bin/env python3
"""make_pipeline_golden.py - golden outputs of whole A1111 1.10 txt2img /
img2img / inpaint runs (txt2img also with the hires fix) on the tiny
random-weight models, for the C pipeline tests (worker/pipeline/generate.h).

Run by hand, never in CI, with the reference venv plus three small packages
kept OUTSIDE it (so its pillow 13 / torch stay untouched):

    /root/ref-venv/bin/pip install --no-deps --target /tmp/pgold \\
        pillow==9.5.0 lark opencv-python-headless==4.10.0.84
    PYTHONPATH=/tmp/pgold /root/ref-venv/bin/python tests/golden/make_pipeline_golden.py

The CLIP BPE vocabulary is found as make_cond_golden.py finds it
($TESSERA_CLIP_VOCAB, $TESSERA_DATA or ~/.cache/tessera/bpe_simple_vocab_16e6.txt.gz).
The script re-runs itself with --torch-f32 (the same pipeline in torch
float32) and records the float32-vs-float64 differences in each case's JSON,
as a guide for the C test's tolerances. Output is byte-identical across runs.

pillow 9.5.0 is the version A1111 pins (bicubic latent-mask resize, paste,
alpha_composite); lark runs the verbatim prompt-schedule grammar as A1111
does (a small fallback parser is used without it); OpenCV is A1111's mask
blur (case 08 is skipped without it). The versions used are recorded in
tests/golden/pipeline/cases.json.

Writes tests/golden/pipeline/: README.md (the conventions; read it before
writing the C test), cases.json (index), per case NN_name.json (the native
job body, infotexts, schedules, tensor list) and NN_name.safetensors
(numpy safetensors), plus init.png / mask.png / mask_wide.png (inputs).

Everything is an independent re-implementation from
shared/reference/a1111-compat.md (sections 2.1, 3, 4.3-4.5) and
shared/reference/tiling.md (5, 6), using:
  * k-diffusion 0.1.1.post1's own sampling.py / external.py (loaded without
    k_diffusion/__init__.py, as make_sampler_golden.py does), with A1111's
    TorchHijack (randn_like -> the per-image generators);
  * diffusers UNet2DConditionModel / AutoencoderKL and transformers
    CLIPTextModel from the diffusers folders of tests/golden/models/, all in
    float64 (torch default dtype float64, models .double()), with the exact
    float64 sinusoidal timestep embedding of make_model_golden.py;
  * the A1111 conditioning of make_cond_golden.py (emphasis, chunks, BPE),
    extended to A1111's batching (each prompt's schedule texts encoded as one
    batch, the emphasis mean over that batch);
  * the RNG of make_rng_golden.py (NV Philox) and torch's CPU generator.
Deliberate deviation from A1111: VAE encodes use the posterior MEAN (A1111
samples it with torch's global RNG, which no other program can reproduce).
"""
import hashlib
import importlib.util
import json
import os
import re
import sys
import types

import numpy as np
import torch

# --torch-f32 DIR: the same pipeline with torch float32 math (models, latents),
# tensors only, written to DIR; the main run uses it to record how far plain
# float32 arithmetic lands from the float64 fixtures ("torch_f32_vs_f64").
F32_DIR = sys.argv[sys.argv.index("--torch-f32") + 1] if "--torch-f32" in sys.argv else None
DT = torch.float32 if F32_DIR else torch.float64
torch.set_default_dtype(DT)
torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
MODELS = os.path.join(HERE, "models")
OUT = os.path.join(HERE, "pipeline")

import make_cond_golden as mc  # noqa: E402  (Bpe, parse_attention, chunk, encode)
import make_model_golden as mg  # noqa: E402  (exact_timestep_embedding)
import make_rng_golden as mr  # noqa: E402  (NV Philox port, slerp)
import diffusers.models.embeddings as dembed  # noqa: E402
from diffusers import AutoencoderKL, UNet2DConditionModel  # noqa: E402
from diffusers.utils import logging as dlog  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from safetensors.torch import load_file as load_torch  # noqa: E402
from transformers import CLIPTextModel  # noqa: E402
import PIL  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

dlog.set_verbosity_error()
try:
    import lark
except ImportError:  # fallback parser below
    lark = None
try:
    import cv2
except ImportError:
    cv2 = None

# ---- k_diffusion.sampling / external without k_diffusion/__init__ -------------
_spec = importlib.util.find_spec("k_diffusion")
_KD = os.path.dirname(_spec.origin)
_pkg = types.ModuleType("k_diffusion")
_pkg.__path__ = [_KD]
sys.modules["k_diffusion"] = _pkg
_utils = types.ModuleType("k_diffusion.utils")
_utils.append_dims = lambda x, n: x[(...,) + (None,) * (n - x.ndim)]
sys.modules["k_diffusion.utils"] = _utils
_pkg.utils = _utils


def _load(name):
    s = importlib.util.spec_from_file_location("k_diffusion." + name, os.path.join(_KD, name + ".py"))
    m = importlib.util.module_from_spec(s)
    sys.modules["k_diffusion." + name] = m
    s.loader.exec_module(m)
    setattr(_pkg, name, m)
    return m


K = _load("sampling")
EXT = _load("external")

# ---- the SD noise schedule (float64; LDM "linear" betas) ----------------------
BETAS = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
ALPHAS_CUMPROD = torch.cumprod(1.0 - BETAS, dim=0)


def _t_to_sigma64(self, t):  # k-diffusion casts t to float32 here; keep float64
    t = torch.as_tensor(t, dtype=torch.float64)
    low, high, w = t.floor().long(), t.ceil().long(), t.frac()
    return ((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]).exp()


class EpsDenoiser(EXT.CompVisDenoiser):
    t_to_sigma = _t_to_sigma64


class VDenoiser(EXT.CompVisVDenoiser):
    t_to_sigma = _t_to_sigma64


# ---- A1111 sampler table (the rows used here) ---------------------------------
SAMPLERS = {  # name: (k-diffusion function, default scheduler, uses_ensd)
    "Euler a": ("sample_euler_ancestral", None, True),
    "Euler": ("sample_euler", None, False),
    "DPM++ 2M": ("sample_dpmpp_2m", "karras", False),
}
SCHED_LABEL = {"automatic": "Automatic", "uniform": "Uniform", "karras": "Karras"}


def resolve_scheduler(sampler, scheduler):
    """-> (canonical scheduler label as get_sampler_and_scheduler returns it,
    the scheduler actually used (name), the 'Schedule type' infotext value)."""
    name = {"automatic": "automatic", "karras": "karras", "uniform": "uniform"}[scheduler.lower()]
    default = SAMPLERS[sampler][1]
    if default is not None and default == name:  # get_sampler_and_scheduler: back to Automatic
        name = "automatic"
    canonical = SCHED_LABEL[name]
    used = default if name == "automatic" else name
    # get_sigmas writes extra_generation_params["Schedule type"] = label when the
    # scheduler it resolved is not Automatic; that value replaces p.scheduler in place
    info = SCHED_LABEL[used] if used is not None else canonical
    return canonical, used, info


# ---- prompt schedules (a1111-compat.md 3.2) -----------------------------------
GRAMMAR = r"""
!start: (prompt | /[][():]/+)*
prompt: (emphasized | scheduled | alternate | plain | WHITESPACE)*
!emphasized: "(" prompt ")"
        | "(" prompt ":" prompt ")"
        | "[" prompt "]"
scheduled: "[" [prompt ":"] prompt ":" [WHITESPACE] NUMBER [WHITESPACE] "]"
alternate: "[" prompt ("|" [prompt])+ "]"
WHITESPACE: /\s+/
plain: /([^\\\[\]():|]|\\.)+/
%import common.SIGNED_NUMBER -> NUMBER
"""
_parser = lark.Lark(GRAMMAR) if lark else None
_NUM = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


def _when(s, steps, offsets=None):
    """One schedule point: new scheduling; offsets None = the base pass (integer
    and float offsets 0), else (int_offset, flt_offset) of the hires pass, where
    steps is then the hires step count (get_learned_conditioning_prompt_schedules)."""
    v = float(s)
    if offsets is None:
        v = v * steps if "." in s else v
    else:
        v = (v - offsets[1]) * steps if "." in s else v - offsets[0]
    return min(steps, int(v))


def _hires_args(steps, hires_steps):
    """-> (step count used, offsets): A1111's base pass or hires pass (base_steps, 1.0)."""
    if hires_steps is None:
        return steps, None
    return hires_steps, (steps, 1.0)


def _schedules_lark(prompt, steps, hires_steps=None):
    steps, offs = _hires_args(steps, hires_steps)
    try:
        tree = _parser.parse(prompt)
    except lark.exceptions.LarkError:
        return [[steps, prompt]]
    points, whens = {steps}, {}

    def visit(t):
        if isinstance(t, lark.Tree):
            for ch in t.children:
                visit(ch)
            if t.data == "scheduled":
                w = _when(str(t.children[-2]).strip(), steps, offs)
                whens[id(t)] = w
                if w >= 1:
                    points.add(w)
            elif t.data == "alternate":
                points.update(range(1, steps + 1))
    visit(tree)

    def render(t, step):
        if t is None:
            return ""
        if isinstance(t, lark.Token):
            return str(t)
        if t.data == "scheduled":
            return render(t.children[0], step) if step <= whens[id(t)] else render(t.children[1], step)
        if t.data == "alternate":
            return render(t.children[(step - 1) % len(t.children)], step)
        return "".join(render(c, step) for c in t.children)
    return [[s, render(tree, s)] for s in sorted(points)]


def _schedules_simple(prompt, steps, hires_steps=None):
    """Fallback without lark: [from:to:when], [to:when], [a|b], nesting, plain
    text and ( ) passed through. Enough for the prompts of this file."""
    steps, offs = _hires_args(steps, hires_steps)

    def parse(s, i, stops):
        nodes = []
        buf = ""
        while i < len(s):
            c = s[i]
            if c in stops:
                break
            if c == "\\" and i + 1 < len(s):
                buf += s[i:i + 2]
                i += 2
                continue
            if c == "[":
                if buf:
                    nodes.append(buf)
                    buf = ""
                parts, seps = [], []
                i += 1
                while True:
                    p, i = parse(s, i, ":|]")
                    parts.append(p)
                    if i >= len(s):
                        raise ValueError("unclosed [")
                    if s[i] == "]":
                        i += 1
                        break
                    seps.append(s[i])
                    i += 1
                if seps and all(x == "|" for x in seps):
                    nodes.append(("alt", parts))
                elif seps and all(x == ":" for x in seps) and len(parts) in (2, 3) and \
                        len(parts[-1]) == 1 and isinstance(parts[-1][0], str) and _NUM.match(parts[-1][0]):
                    nodes.append(("sched", parts[0] if len(parts) == 3 else None, parts[-2],
                                  parts[-1][0].strip()))
                elif not seps:
                    nodes.append(("lit", ["["] + parts[0] + ["]"]))
                else:
                    raise ValueError("unsupported [ ] form")
                continue
            buf += c
            i += 1
        if buf:
            nodes.append(buf)
        return nodes, i

    try:
        tree, _ = parse(prompt, 0, "")
    except ValueError:
        return [[steps, prompt]]
    points = {steps}

    def visit(nodes):
        for n in nodes or []:
            if isinstance(n, tuple):
                if n[0] == "sched":
                    w = _when(n[3], steps, offs)
                    if w >= 1:
                        points.add(w)
                    visit(n[1])
                    visit(n[2])
                elif n[0] == "alt":
                    points.update(range(1, steps + 1))
                    for p in n[1]:
                        visit(p)
                else:
                    visit(n[1])
    visit(tree)

    def render(nodes, step):
        out = ""
        for n in nodes or []:
            if isinstance(n, str):
                out += n
            elif n[0] == "sched":
                out += render(n[1], step) if step <= _when(n[3], steps, offs) else render(n[2], step)
            elif n[0] == "alt":
                out += render(n[1][(step - 1) % len(n[1])], step)
            else:
                out += render(n[1], step)
        return out
    return [[s, render(tree, s)] for s in sorted(points)]


def prompt_schedule(prompt, steps, hires_steps=None):
    """hires_steps: the hires pass's schedule (A1111 get_learned_conditioning(..., steps, hires_steps)),
    steps being the first pass's total steps."""
    if _parser:
        return _schedules_lark(prompt, steps, hires_steps)
    return _schedules_simple(prompt, steps, hires_steps)


for _f in (_schedules_simple,) + ((_schedules_lark,) if _parser else ()):  # the spec's doctests
    assert _f("a [b:3]", 10) == [[3, "a "], [10, "a b"]]
    assert _f("a[b:[c:d:2]:1]e", 10) == [[1, "abe"], [2, "ace"], [10, "ade"]]
    assert _f("a [b:.5] c", 10) == [[5, "a  c"], [10, "a b c"]]
    assert _f("[cat:dog:0.5] in a garden", 8) == [[4, "cat in a garden"], [8, "dog in a garden"]]
    # hires pass (A1111's doctests with hires_steps): a float when in [1, 2) is a fraction of
    # the hires steps, one below 1 has passed already; an integer counts on from the base steps
    assert _f("a [b:.5] c", 10, 10) == [[10, "a b c"]]
    assert _f("a [b:1.5] c", 10, 10) == [[5, "a  c"], [10, "a b c"]]
    assert _f("[cat:dog:1.5] in a garden", 6, 4) == [[2, "cat in a garden"], [4, "dog in a garden"]]
    assert _f("[cat:dog:1.5] in a garden", 6) == [[6, "cat in a garden"]]
    assert _f("a [b:13] c", 10, 5) == [[3, "a  c"], [5, "a b c"]]

RE_AND = re.compile(r"\bAND\b")
RE_WEIGHT = re.compile(r"^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$")


def and_split(prompt):
    out = []
    for sub in RE_AND.split(prompt):
        m = RE_WEIGHT.search(sub)
        text, w = m.groups() if m is not None else (sub, 1.0)
        out.append((text, float(w) if w is not None else 1.0))
    return out


# ---- models --------------------------------------------------------------------
class Model:
    def __init__(self, name, bpe):
        d = os.path.join(MODELS, name)
        self.name, self.dir, self.bpe = name, d, bpe

        def weights(sub):
            fs = sorted(f for f in os.listdir(os.path.join(d, sub)) if f.endswith(".safetensors"))
            assert len(fs) == 1, fs
            return {k: v.to(DT) for k, v in load_torch(os.path.join(d, sub, fs[0])).items()}

        self.unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(os.path.join(d, "unet")))
        self.unet.load_state_dict(weights("unet"))
        self.unet = self.unet.to(DT).eval()
        self.vae = AutoencoderKL.from_config(AutoencoderKL.load_config(os.path.join(d, "vae")))
        self.vae.load_state_dict(weights("vae"))
        self.vae = self.vae.to(DT).eval()
        self.text = CLIPTextModel.from_pretrained(os.path.join(d, "text_encoder")).to(DT).eval()
        with open(os.path.join(d, "scheduler", "scheduler_config.json")) as f:
            self.v = json.load(f)["prediction_type"] == "v_prediction"
        self.sd2 = self.text.config.pad_token_id == 0  # OpenCLIP-style: pads with 0
        self.pad = 0 if self.sd2 else mc.EOS
        self.in_channels = self.unet.config.in_channels
        self.scale = self.vae.config.scaling_factor
        self.factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.alphas_cumprod = ALPHAS_CUMPROD
        single = os.path.join(MODELS, name + ".safetensors")
        self.single_hash = None
        if os.path.exists(single):
            with open(single, "rb") as f:
                self.single_hash = hashlib.sha256(f.read()).hexdigest()[:10]
        # the single file is a complete checkpoint only when it holds every component
        self.single_complete = False
        if self.single_hash:
            from safetensors import safe_open
            with safe_open(single, "np") as f:
                keys = list(f.keys())
            self.single_complete = any(k.startswith("first_stage_model.") for k in keys) and \
                any(k.startswith("cond_stage_model.") for k in keys)

    # LDM DiffusionWrapper.apply_model: 'crossattn' or 'hybrid' (9-channel: x ++ c_concat)
    def apply_model(self, x, t, cond):
        ctx = cond["c_crossattn"][0]
        if self.in_channels == 9:
            x = torch.cat([x, cond["c_concat"][0]], dim=1)
        orig = dembed.get_timestep_embedding
        dembed.get_timestep_embedding = lambda *a, **k: mg.exact_timestep_embedding(*a, **k).to(DT)
        try:
            with torch.no_grad():
                return self.unet(x, t, encoder_hidden_states=ctx).sample
        finally:
            dembed.get_timestep_embedding = orig

    def encode_first_stage_mean(self, img):  # img [B,3,H,W] in [-1,1] -> 0.18215 * posterior mean
        with torch.no_grad():
            return self.scale * self.vae.encode(img).latent_dist.mean

    def decode_first_stage(self, z):  # LDM: z = 1/scale_factor * z; decode
        with torch.no_grad():
            return self.vae.decode(1.0 / self.scale * z).sample

    # -- A1111 FrozenCLIPEmbedderWithCustomWords on a batch of texts ------------
    def learned_conditioning(self, texts):
        batch = []
        for t in texts:
            t = mc.RE_EXTRA.sub("", t)
            chunks, _ = mc.chunk(self.bpe, mc.parse_attention(t), self.pad)
            batch.append(chunks)
        n = max(len(c) for c in batch)
        empty = [mc.BOS] + [mc.EOS] * 76
        if self.pad != mc.EOS:
            empty = [mc.BOS, mc.EOS] + [self.pad] * 75
        zs = []
        for i in range(n):
            ids = [c[i][0] if i < len(c) else empty for c in batch]
            mult = [c[i][1] if i < len(c) else [1.0] * 77 for c in batch]
            z = mc.encode(self.text, ids, 1)  # [B,77,C]; SD2 folder = penultimate + ln_final
            m = torch.tensor(mult, dtype=DT)
            mean0 = z.mean()  # "Original" emphasis, over the whole batch chunk tensor
            z = z * m.reshape(m.shape + (1,)).expand(z.shape)
            z = z * (mean0 / z.mean())
            zs.append(z)
        return torch.hstack(zs)  # [B, 77n, C]


# ---- conditioning schedules (prompt_parser.get_learned_conditioning) ------------
class CondCache:
    def __init__(self, model, steps, hires_steps=None):
        self.model, self.steps, self.hires_steps, self.cache, self.texts = model, steps, hires_steps, {}, []

    def get(self, prompt):
        """prompt -> [(end_at_step, tensor [77n, C], text)]"""
        if prompt not in self.cache:
            sched = prompt_schedule(prompt, self.steps, self.hires_steps)
            conds = self.model.learned_conditioning([s[1] for s in sched])
            self.cache[prompt] = [(s[0], conds[i], s[1]) for i, s in enumerate(sched)]
        return self.cache[prompt]


def at_step(schedule, step):
    for e in schedule:
        if step <= e[0]:
            return e
    return schedule[0]


def pad_stack(tensors):  # A1111's batch rule: pad by repeating the last token vector
    n = max(t.shape[0] for t in tensors)
    return torch.stack([t if t.shape[0] == n else torch.vstack([t, t[-1:].repeat(n - t.shape[0], 1)])
                        for t in tensors])


class CFGDenoiser:
    """A1111 sd_samplers_cfg_denoiser.CFGDenoiser (k-diffusion path, batch_cond_uncond)."""

    def __init__(self, model, multiconds, unconds, cfg, image_cond=None, init_latent=None, mask=None, nmask=None):
        self.model = model
        self.inner = VDenoiser(model) if model.v else EpsDenoiser(model)
        self.multiconds, self.unconds, self.cfg = multiconds, unconds, cfg
        self.image_cond, self.init_latent, self.mask, self.nmask = image_cond, init_latent, mask, nmask
        self.step = 0
        self.first_denoised = None
        self.used_texts = []

    def __call__(self, x, sigma):
        conds_list, tensors, texts = [], [], []
        for subs in self.multiconds:  # one list of (schedule, weight) per image
            lst = []
            for sched, w in subs:
                e = at_step(sched, self.step)
                lst.append((len(tensors), w))
                tensors.append(e[1])
                texts.append(e[2])
            conds_list.append(lst)
        ue = [at_step(s, self.step) for s in self.unconds]
        tensor, uncond = pad_stack(tensors), pad_stack([e[1] for e in ue])
        self.used_texts.append({"cond": texts, "uncond": [e[2] for e in ue]})
        B = len(conds_list)
        reps = [len(c) for c in conds_list]
        x_in = torch.cat([torch.stack([x[i]] * n) for i, n in enumerate(reps)] + [x])
        s_in = torch.cat([torch.stack([sigma[i]] * n) for i, n in enumerate(reps)] + [sigma])
        ic = self.image_cond
        ic_in = torch.cat([torch.stack([ic[i]] * n) for i, n in enumerate(reps)] + [ic]) if ic is not None else None

        def cond(c, icc):
            d = {"c_crossattn": [c]}
            if icc is not None:
                d["c_concat"] = [icc]
            return d

        if tensor.shape[1] == uncond.shape[1]:
            x_out = self.inner(x_in, s_in, cond=cond(torch.cat([tensor, uncond]), ic_in))
        else:  # different token lengths: cond and uncond run separately
            nc = tensor.shape[0]
            x_out = torch.cat([
                self.inner(x_in[:nc], s_in[:nc], cond=cond(tensor, None if ic_in is None else ic_in[:nc])),
                self.inner(x_in[nc:], s_in[nc:], cond=cond(uncond, None if ic_in is None else ic_in[nc:]))])
        du = x_out[-B:]
        den = torch.clone(du)
        for i, conds in enumerate(conds_list):
            for ci, w in conds:
                den[i] += (x_out[ci] - du[i]) * (w * self.cfg)
        if self.mask is not None:  # k-diffusion: blend after denoising
            den = den * self.nmask + self.init_latent * self.mask
        if self.step == 0:
            self.first_denoised = den.clone()
        self.step += 1
        return den


# ---- RNG (a1111-compat.md 4.3-4.5) -----------------------------------------------
class CpuGen:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(int(seed))

    def randn(self, shape):
        return torch.randn(shape, generator=self.g, dtype=torch.float32)


class NvGen:
    def __init__(self, seed):
        self.g = mr.NV(int(seed))

    def randn(self, shape):
        return torch.from_numpy(self.g.randn(int(np.prod(shape))).reshape(shape))


def create_generator(kind, seed):
    return NvGen(seed) if kind in ("NV", "GPU") else CpuGen(seed)


class ImageRNG:
    """rng.ImageRNG: one generator per image; first() = initial noise (with
    variation seed and ENSD reseed), next() = one draw per image, stacked."""

    def __init__(self, kind, shape, seeds, subseeds, strength, ensd):
        self.kind, self.shape, self.seeds, self.subseeds = kind, tuple(shape), seeds, subseeds
        self.strength, self.ensd = strength, ensd
        self.gens = [create_generator(kind, s) for s in seeds]
        self.is_first = True
        self.draws = []

    def first(self):
        xs = []
        for i, (seed, g) in enumerate(zip(self.seeds, self.gens)):
            sub = None
            if self.subseeds is not None and self.strength != 0:
                sub = create_generator(self.kind, self.subseeds[i]).randn(self.shape)  # randn(subseed, shape)
            noise = g.randn(self.shape)
            if sub is not None:
                noise = mr.slerp(self.strength, noise, sub)  # float32, row-wise over dim 1
            xs.append(noise)
        if self.ensd:
            self.gens = [create_generator(self.kind, s + self.ensd) for s in self.seeds]
        return torch.stack(xs)

    def next(self):
        if self.is_first:
            self.is_first = False
            self.initial = self.first()
            return self.initial.to(DT)
        x = torch.stack([g.randn(self.shape) for g in self.gens])
        self.draws.append(x)
        return x.to(DT)


class TorchHijack:  # A1111 sd_samplers_common.TorchHijack
    """unused=True: k-diffusion 0.1.1.post1's sample_euler draws eps = randn_like(x)
    every step and discards it when s_churn is 0; those draws cannot change the
    result, so they are answered with zeros and not recorded."""

    def __init__(self, rng, unused=False):
        self.rng, self.unused = rng, unused

    def __getattr__(self, item):
        if item == "randn_like":
            return (lambda x: torch.zeros_like(x)) if self.unused else (lambda x: self.rng.next())
        return getattr(torch, item)


# ---- sigmas (KDiffusionSampler.get_sigmas) --------------------------------------
def get_sigmas(model, sched_used, steps):
    wrap = VDenoiser(model) if model.v else EpsDenoiser(model)
    if sched_used is None or sched_used == "uniform":
        return wrap.get_sigmas(steps)
    if sched_used == "karras":
        return K.get_sigmas_karras(steps, wrap.sigmas[0].item(), wrap.sigmas[-1].item(), rho=7.0)
    raise ValueError(sched_used)


# ---- images ---------------------------------------------------------------------
def make_init_image():
    """64x64 RGB: smooth gradients, a filled circle and a thin diagonal band."""
    y, x = np.mgrid[0:64, 0:64]
    r = (x * 255) // 63
    g = (y * 255) // 63
    b = 255 - ((x + y) * 255) // 126
    img = np.stack([r, g, b], -1).astype(np.uint8)
    circ = (x - 40) ** 2 + (y - 24) ** 2 <= 13 ** 2
    img[circ] = (230, 60, 40)
    band = np.abs(x - y - 10) <= 1
    img[band] = (20, 20, 20)
    return Image.fromarray(img, "RGB")


def make_mask(rect, disc=None):
    """L mode, white (255) = inpaint: rectangle [x0,x1) x [y0,y1) plus an optional
    disc (cx, cy, r: (x-cx)^2 + (y-cy)^2 <= r^2) on black."""
    y, x = np.mgrid[0:64, 0:64]
    m = np.zeros((64, 64), np.uint8)
    x0, y0, x1, y1 = rect
    m[y0:y1, x0:x1] = 255
    if disc:
        cx, cy, r = disc
        m[(x - cx) ** 2 + (y - cy) ** 2 <= r * r] = 255
    return Image.fromarray(m, "L")


def create_binary_mask(image, round_=True):
    if image.mode == "RGBA" and image.getextrema()[-1] != (255, 255):
        image = image.split()[-1].convert("L")
        if round_:
            image = image.point(lambda v: 255 if v > 128 else 0)
        return image
    return image.convert("L")


def prepare_mask(p, mask_img):
    """StableDiffusionProcessingImg2Img.init, whole picture: -> (image_mask, mask_for_overlay)."""
    image_mask = create_binary_mask(mask_img, p.get("mask_round", True))
    if p.get("inpainting_mask_invert"):
        image_mask = ImageOps.invert(image_mask)
    bx, by = p["mask_blur_x"], p["mask_blur_y"]
    if bx > 0:
        a = np.array(image_mask)
        k = 2 * int(2.5 * bx + 0.5) + 1
        image_mask = Image.fromarray(cv2.GaussianBlur(a, (k, 1), bx))
    if by > 0:
        a = np.array(image_mask)
        k = 2 * int(2.5 * by + 0.5) + 1
        image_mask = Image.fromarray(cv2.GaussianBlur(a, (1, k), by))
    assert not p["inpaint_full_res"]
    assert image_mask.size == (p["width"], p["height"])  # resize_image to the same size = copy
    np_mask = np.clip(np.array(image_mask).astype(np.float32) * 2, 0, 255).astype(np.uint8)
    return image_mask, Image.fromarray(np_mask)


def overlay_image(image, mask_for_overlay):
    """The overlay A1111 builds per init image: RGBa paste with the inverted mask, back to RGBA."""
    image_masked = Image.new("RGBa", (image.width, image.height))
    image_masked.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask_for_overlay.convert("L")))
    return image_masked.convert("RGBA")


def apply_overlay(image, overlay):
    image = image.convert("RGBA")
    image.alpha_composite(overlay)
    return image.convert("RGB")


def to_uint8(decoded):
    """A1111: x.float(); clamp((x+1)/2, 0, 1); 255. * x (float32); astype(uint8) (truncation)."""
    x = decoded.float()
    x = torch.clamp((x + 1.0) / 2.0, min=0.0, max=1.0)
    x = np.moveaxis(x.numpy(), 1, 3)  # NHWC
    return (np.float32(255.0) * x).astype(np.uint8)


# ---- hires fix (tiling.md 5; A1111 1.10 StableDiffusionProcessingTxt2Img) ----------
# shared.latent_upscale_modes: name -> (F.interpolate mode, antialias)
LATENT_MODES = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}


def hires_target(j, f):
    """calculate_target_resolution -> (hr_upscale_to_x, hr_upscale_to_y, truncate_x, truncate_y).
    A1111 divides the truncation by opt_f = 8, its latent factor; here the tiny VAE's f."""
    W, H, rx, ry = j["width"], j["height"], j["hr_resize_x"], j["hr_resize_y"]
    if rx == 0 and ry == 0:
        return int(W * j["hr_scale"]), int(H * j["hr_scale"]), 0, 0
    if ry == 0:
        return rx, rx * H // W, 0, 0
    if rx == 0:
        return ry * W // H, ry, 0, 0
    if W / H < rx / ry:
        tw, th = rx, rx * H // W
    else:
        tw, th = ry * W // H, ry
    return tw, th, (tw - rx) // f, (th - ry) // f


def lanczos_upscaler(im, scale):
    """modules/upscaler.py Upscaler.upscale with UpscalerLanczos.do_upscale (1.10)."""
    dest_w = int((im.width * scale) // 8 * 8)
    dest_h = int((im.height * scale) // 8 * 8)
    for i in range(3):
        if im.width >= dest_w and im.height >= dest_h and (i > 0 or scale != 1):
            break
        shape = (im.width, im.height)
        im = im.resize((int(im.width * scale), int(im.height * scale)), resample=Image.LANCZOS)
        if shape == (im.width, im.height):
            break
    if im.width != dest_w or im.height != dest_h:
        im = im.resize((int(dest_w), int(dest_h)), resample=Image.LANCZOS)
    return im


def resize_image_upscaler(im, w, h, upscaler):
    """images.resize_image(0, im, w, h, upscaler_name=upscaler) for the Lanczos upscaler."""
    assert upscaler == "Lanczos" and im.mode == "RGB"
    scale = max(w / im.width, h / im.height)
    if scale > 1.0:
        im = lanczos_upscaler(im, scale)
    if im.width != w or im.height != h:
        im = im.resize((w, h), resample=Image.LANCZOS)
    return im


def hires_scheduler_used(j):
    """KDiffusionSampler.get_sigmas in the hires pass: p.hr_scheduler (None -> p.scheduler) or
    'Automatic' -> the hires sampler's default; None = the model's own schedule (uniform)."""
    name = (j["hr_scheduler"] or j["scheduler"] or "Automatic").lower()
    sampler = j["hr_sampler_name"] or j["sampler_name"]
    return SAMPLERS[sampler][1] if name == "automatic" else name


def hires_pass(c, model, samples, first_u8, seeds, subseeds, tensors):
    """StableDiffusionProcessingTxt2Img.sample_hr_pass on the first-pass latents."""
    j = c["job"]
    f = model.factor
    B = samples.shape[0]
    to_w, to_h, tx, ty = hires_target(j, f)
    up = j["hr_upscaler"]
    if up in LATENT_MODES:
        mode, aa = LATENT_MODES[up]
        x = torch.nn.functional.interpolate(samples, size=(to_h // f, to_w // f), mode=mode, antialias=aa)
    else:  # pixel upscaler: uint8 first-pass image -> resize_image(0, ...) -> /255 -> encode (mean)
        ims = [resize_image_upscaler(Image.fromarray(first_u8[i]), to_w, to_h, up) for i in range(B)]
        tensors["hires_upscaled_image"] = np.stack([np.array(im) for im in ims])
        arr = np.stack([np.moveaxis(np.array(im).astype(np.float64) / 255.0, 2, 0) for im in ims])
        x = model.encode_first_stage_mean(torch.from_numpy(arr).to(DT) * 2 - 1)
    x = x[:, :, ty // 2:x.shape[2] - (ty + 1) // 2, tx // 2:x.shape[3] - (tx + 1) // 2]
    rng = ImageRNG(j["rng"], x.shape[1:], seeds, subseeds, j["subseed_strength"], j["ensd"])
    sampler = j["hr_sampler_name"] or j["sampler_name"]
    fn = SAMPLERS[sampler][0]
    used = hires_scheduler_used(j)
    # calculate_hr_conds: get_learned_conditioning(..., firstpass_steps, hires_steps = the hires
    # sampler's total_steps); first-order samplers here, so both are plain step counts
    steps = j["hr_second_pass_steps"] or j["steps"]
    cc = CondCache(model, j["steps"], steps)
    hr_prompt = j["hr_prompt"] or j["prompt"]
    hr_negative = j["hr_negative_prompt"] or j["negative_prompt"]
    multiconds = [[(cc.get(t), w) for t, w in and_split(hr_prompt)] for _ in range(B)]
    unconds = [cc.get(hr_negative) for _ in range(B)]
    # sample_img2img with steps given: setup_img2img_steps' explicit branch
    d = j["denoising_strength"]
    total = int(steps / min(d, 0.999)) if d > 0 else 0
    t_enc = steps - 1
    sigmas = get_sigmas(model, used, total)
    sched = sigmas[total - t_enc - 1:]
    den = CFGDenoiser(model, multiconds, unconds, j["cfg_scale"])  # step counter from 0
    K.torch = TorchHijack(rng, unused=(fn == "sample_euler"))
    noise = rng.next()
    xi = x + noise * sched[0]
    xs = []

    def cb(dd):
        xs.append(dd["x"].float().numpy())

    out = getattr(K, fn)(den, xi, sched.to(DT), extra_args={}, callback=cb, disable=True)
    K.torch = torch
    tensors.update({
        "hires_init_latent": x.float().numpy(),
        "hires_noise": rng.initial.numpy(),
        "hires_sigmas": sigmas.numpy(),
        "hires_sigma_sched": sched.numpy(),
        "hires_x_steps": np.stack(xs),
        "hires_denoised_step0": den.first_denoised.float().numpy(),
        "hires_latent": out.float().numpy(),
    })
    if rng.draws:
        tensors["hires_step_noise"] = torch.stack(rng.draws).numpy()
    texts = {}
    for pr, sch in cc.cache.items():
        for end, z, t in sch:
            key = "hires_cond_%d" % len(texts)
            texts[key] = {"prompt": pr, "end_at_step": end, "text": t}
            tensors[key] = z.float().numpy()
    info = {"upscale_to": [to_w, to_h], "truncate": [tx, ty], "latent_shape": list(x.shape[1:]),
            "upscaler": up, "latent_mode": list(LATENT_MODES[up]) if up in LATENT_MODES else None,
            "sampler": sampler, "sampler_function": fn, "scheduler_used": used or "uniform",
            "steps": steps, "total": total, "t_enc": t_enc, "executed_steps": len(sched) - 1,
            "prompt": hr_prompt, "negative_prompt": hr_negative, "schedule_steps": [j["steps"], steps],
            "prompt_per_step": den.used_texts, "conds": texts, "ancestral_draws": len(rng.draws)}
    return out, info


# ---- infotext (a1111-compat.md 2.1) ----------------------------------------------
def quote(v):
    s = str(v)
    if "," not in s and "\n" not in s and ":" not in s:
        return s
    return json.dumps(s, ensure_ascii=False)


def infotext(c, model, seed, subseed, sched_info, with_hash, sched_used=None):
    job = c["job"]
    img2img = job["type"] in ("img2img", "inpaint")
    hires = bool(job.get("enable_hr"))
    uses_ensd = job["ensd"] != 0 and SAMPLERS[job["sampler_name"]][2]  # eta is the default 1 here
    params = [
        ("Steps", job["steps"]), ("Sampler", job["sampler_name"]), ("Schedule type", sched_info),
        ("CFG scale", float(job["cfg_scale"])), ("Seed", seed), ("Size", "%dx%d" % (job["width"], job["height"])),
        ("Model hash", model.single_hash if with_hash else None), ("Model", model.name),
        ("Variation seed", subseed if job["subseed_strength"] != 0 else None),
        ("Variation seed strength", job["subseed_strength"] if job["subseed_strength"] != 0 else None),
        ("Denoising strength", float(job["denoising_strength"]) if img2img or hires else None),
        ("Conditional mask weight", 1.0 if model.in_channels == 9 else None),
        ("ENSD", job["ensd"] if uses_ensd else None),
        ("RNG", job["rng"] if job["rng"] != "GPU" else None),
    ]
    if hires:  # extra_generation_params in StableDiffusionProcessingTxt2Img.init's insertion order
        hs = job["hr_sampler_name"]
        params.append(("Hires sampler", hs if hs is not None and hs != job["sampler_name"] else None))
        hp = job["hr_prompt"] or job["prompt"]  # setup_prompts: "" -> the main prompt
        hn = job["hr_negative_prompt"] or job["negative_prompt"]
        params.append(("Hires prompt", hp if hp != job["prompt"] else None))
        params.append(("Hires negative prompt", hn if hn != job["negative_prompt"] else None))
        # "Hires schedule type" (placeholder None here) is set by get_sigmas in the hires pass when
        # its scheduler has a function and a label other than the first pass's "Schedule type"
        hu = hires_scheduler_used(job)
        first = SCHED_LABEL[sched_used] if sched_used is not None else None
        params.append(("Hires schedule type", SCHED_LABEL[hu] if hu is not None and SCHED_LABEL[hu] != first
                       else None))
        if job["hr_resize_x"] == 0 and job["hr_resize_y"] == 0:  # calculate_target_resolution
            params.append(("Hires upscale", job["hr_scale"]))
        else:
            params.append(("Hires resize", "%dx%d" % (job["hr_resize_x"], job["hr_resize_y"])))
        if job["hr_second_pass_steps"]:
            params.append(("Hires steps", job["hr_second_pass_steps"]))
        if job["hr_upscaler"] is not None:
            params.append(("Hires upscaler", job["hr_upscaler"]))
    if job["type"] == "inpaint":  # extra_generation_params, in A1111's insertion order
        bx, by = job["mask_blur_x"], job["mask_blur_y"]
        if bx > 0 or by > 0:
            params.append(("Mask blur", bx if bx == by else None))
        if job["inpainting_mask_invert"]:
            params.append(("Mask mode", "Inpaint not masked"))
        if job["inpaint_full_res"]:
            params += [("Inpaint area", "Only masked"), ("Masked area padding", job["inpaint_full_res_padding"])]
        if job["inpainting_fill"] != 1:
            params.append(("Masked content", ["fill", None, "latent noise", "latent nothing"][job["inpainting_fill"]]))
    params.append(("Version", "tessera"))
    line = ", ".join(k if k == v else "%s: %s" % (k, quote(v)) for k, v in params if v is not None)
    neg = "\nNegative prompt: " + job["negative_prompt"] if job["negative_prompt"] else ""
    return (job["prompt"] + neg + "\n" + line).strip()


# ---- cases -------------------------------------------------------------------------
COMMON = dict(negative_prompt="", subseed=0, subseed_strength=0.0, seed_resize_from_w=0, seed_resize_from_h=0,
              scheduler="Automatic", cfg_scale=7.0, width=64, height=64, batch_size=1, n_iter=1, eta=None,
              s_churn=0.0, s_tmin=0.0, s_tmax=0.0, s_noise=1.0, clip_skip=1, vae=None, rng="CPU", ensd=0,
              emphasis="Original", preview_every=0)
IMG2IMG = dict(denoising_strength=0.75, resize_mode=0, initial_noise_multiplier=1.0)
INPAINT = dict(mask_blur_x=4, mask_blur_y=4, mask_round=True, inpainting_fill=1, inpaint_full_res=False,
               inpaint_full_res_padding=32, inpainting_mask_invert=0)
HIRES = dict(enable_hr=True, denoising_strength=0.75, hr_scale=2.0, hr_resize_x=0, hr_resize_y=0, hr_upscaler="Latent",
             hr_second_pass_steps=0, hr_sampler_name=None, hr_scheduler=None, hr_prompt="", hr_negative_prompt="")


def job(type_, **kw):
    j = dict(type=type_, **COMMON)
    if type_ != "txt2img":
        j.update(IMG2IMG)
    if type_ == "inpaint":
        j.update(INPAINT)
    if type_ == "txt2img" and kw.get("enable_hr"):
        j.update(HIRES)
    for k in kw:
        assert k in j or k in ("prompt", "seed", "sampler_name", "steps", "model"), k
    j.update(kw)
    first = ["type", "model", "prompt", "negative_prompt", "seed", "subseed", "subseed_strength", "sampler_name",
             "scheduler", "steps", "cfg_scale", "width", "height", "batch_size", "n_iter", "rng", "ensd"]
    return {k: j[k] for k in first + [k for k in j if k not in first]}


# Chosen so that no bicubic latent-mask value lies within 5 levels of the 127.5
# rounding threshold (a one-level resize difference cannot flip the binary latent
# mask; a rectangle edge at an odd pixel would give exactly 127.5), and so that the
# 9-channel model's nearest-resized mask differs from the bicubic latent mask at a
# few latent pixels (A1111 uses both). See MASK_MARGIN below.
MASK_RECT, MASK_DISC = (18, 12, 40, 44), (41, 45, 9)
MASK_WIDE_RECT = (12, 22, 56, 46)   # for the blurred-mask case 08
MASK_MARGIN = 4.0

CASES = [
    dict(name="01_txt2img_euler_a_cpu_batch2",
         note="Euler a, CPU RNG, batch of 2 (seeds 1234, 1235): per-image generators, per-step noise",
         job=job("txt2img", model="sd1-tiny", prompt="a photo of a (cat:1.3)", negative_prompt="blurry",
                 seed=1234, sampler_name="Euler a", steps=6, cfg_scale=7.0, batch_size=2, rng="CPU")),
    dict(name="02_txt2img_dpmpp_2m_karras_nv_variation",
         note="DPM++ 2M + Karras (canonical scheduler Automatic), NV RNG, variation seed 7 at 0.3, "
              "48x64 (latent 4x32x24), prompt schedule cat->dog after step 4",
         job=job("txt2img", model="sd1-tiny", prompt="[cat:dog:0.5] in a garden", negative_prompt="",
                 seed=42, subseed=7, subseed_strength=0.3, sampler_name="DPM++ 2M", scheduler="Karras",
                 steps=8, width=48, height=64, rng="NV")),
    dict(name="03_txt2img_euler_and_cpu",
         note="Euler, AND with weights 1 and 0.6, cfg 5",
         job=job("txt2img", model="sd1-tiny", prompt="a red car AND a blue sky :0.6", seed=5,
                 sampler_name="Euler", steps=5, cfg_scale=5.0, rng="CPU")),
    dict(name="04_txt2img_sd2_v_euler_a_nv_ensd",
         note="sd2-tiny (v-prediction, OpenCLIP-style text encoder), Euler a, NV RNG, ENSD 31337: "
              "per-step noise from Philox(seed+ENSD) starting at offset 0",
         job=job("txt2img", model="sd2-tiny", prompt="a watercolor painting of a lighthouse",
                 negative_prompt="low quality", seed=99, sampler_name="Euler a", steps=6, rng="NV", ensd=31337)),
    dict(name="05_img2img_dpmpp_2m_cpu",
         note="img2img, denoise 0.6: t_enc = 6, sigma_sched = sigmas[3:] of a 10-step Karras schedule "
              "(DPM++ 2M's Automatic = Karras), 7 steps",
         image="init.png",
         job=job("img2img", model="sd1-tiny", prompt="a painting of a red circle", negative_prompt="ugly",
                 seed=777, sampler_name="DPM++ 2M", steps=10, denoising_strength=0.6, rng="CPU")),
    dict(name="06_inpaint_euler_a_cpu",
         note="inpaint with a 4-channel model, whole picture, fill original, mask blur 0, denoise 0.8: "
              "t_enc 4, 5 steps from sigmas[1]; per-step blend of denoised, final latent paste, overlay",
         image="init.png", mask="mask.png",
         job=job("inpaint", model="sd1-tiny", prompt="a yellow flower", negative_prompt="", seed=3,
                 sampler_name="Euler a", steps=6, denoising_strength=0.8, mask_blur_x=0, mask_blur_y=0,
                 inpainting_fill=1, inpaint_full_res=False, rng="CPU")),
    dict(name="07_inpaint_9ch_euler_cpu",
         note="inpaint with the 9-channel model: c_concat = [nearest-resized pixel mask, 0.18215*mean(encode("
              "image*(1-mask)))], same image/mask as 06, denoise 1.0 (t_enc 5, 6 steps from sigmas[0])",
         image="init.png", mask="mask.png",
         job=job("inpaint", model="sd1-inpaint-tiny", prompt="a stone wall", seed=11, sampler_name="Euler",
                 steps=6, denoising_strength=1.0, mask_blur_x=0, mask_blur_y=0, inpainting_fill=1,
                 inpaint_full_res=False, rng="CPU")),
    dict(name="08_inpaint_blur4_euler_cpu",
         note="OPTIONAL (needs OpenCV): whole picture, mask blur 4 (OpenCV GaussianBlur, k=21, sigma 4, x then y), "
              "soft overlay (mask_for_overlay = clip(2*blurred)); 4-channel model, denoise 0.75",
         image="init.png", mask="mask_wide.png", needs_cv2=True,
         job=job("inpaint", model="sd1-tiny", prompt="a blue lake", negative_prompt="dark", seed=21,
                 sampler_name="Euler", steps=5, denoising_strength=0.75, mask_blur_x=4, mask_blur_y=4,
                 inpainting_fill=1, inpaint_full_res=False, rng="CPU")),
    dict(name="09_hires_latent_euler_a_cpu",
         note="hires fix, Latent (bilinear) x2: 32x32 first pass (6 steps) -> latent 4x32x32; hires Euler a, "
              "4 steps at denoise 0.6 (total int(4/0.6) = 6, sigma_sched = sigmas[2:]); per-step noise from "
              "the hires generators; [cat:dog:1.5] is cat for the whole first pass and switches after "
              "hires step 2",
         job=job("txt2img", model="sd1-tiny", prompt="[cat:dog:1.5] in a garden", seed=11, sampler_name="Euler a",
                 steps=6, width=32, height=32, rng="CPU", enable_hr=True, hr_scale=2.0, hr_upscaler="Latent",
                 hr_second_pass_steps=4, denoising_strength=0.6)),
    dict(name="10_hires_bicubic_aa_dpmpp_2m_nv_resize_x",
         note="hires fix, hr_resize_x 48 only (48x36 from 32x24: aspect kept), Latent (bicubic antialiased) "
              "(torch's AA bicubic, a = -0.5); DPM++ 2M + Karras first pass (NV RNG), hires sampler Euler "
              "on its own Automatic = uniform schedule, hires steps 0 = 5, denoise 0.5 (total 10, "
              "sigma_sched = sigmas[5:])",
         job=job("txt2img", model="sd1-tiny", prompt="a lighthouse on a cliff", negative_prompt="fog", seed=5,
                 sampler_name="DPM++ 2M", steps=5, width=32, height=24, rng="NV", enable_hr=True,
                 hr_resize_x=48, hr_upscaler="Latent (bicubic antialiased)", hr_second_pass_steps=0,
                 denoising_strength=0.5, hr_sampler_name="Euler")),
    dict(name="11_hires_lanczos_euler_cpu",
         note="hires fix with the Lanczos pixel upscaler: first pass decoded to uint8, Pillow LANCZOS 32x32 "
              "-> 64x64 (resize_image(0, ...) with UpscalerLanczos), /255*2-1, VAE encode (posterior mean); "
              "Euler, 3 hires steps at denoise 0.7 (total 4, sigma_sched = sigmas[1:])",
         job=job("txt2img", model="sd1-tiny", prompt="a red apple on a table", seed=2, sampler_name="Euler",
                 steps=5, width=32, height=32, rng="CPU", enable_hr=True, hr_scale=2.0, hr_upscaler="Lanczos",
                 hr_second_pass_steps=3, denoising_strength=0.7)),
]


def run_case(c, model, images):
    j = c["job"]
    B, steps, W, H = j["batch_size"], j["steps"], j["width"], j["height"]
    f = model.factor
    shape = (4, H // f, W // f)
    seeds = [j["seed"] + (i if j["subseed_strength"] == 0 else 0) for i in range(B)]
    subseeds = [j["subseed"] + i for i in range(B)]
    fn, _, _ = SAMPLERS[j["sampler_name"]]
    canonical, sched_used, sched_info = resolve_scheduler(j["sampler_name"], j["scheduler"])

    # conditioning (setup_conds: total_steps = steps; none of these samplers is second-order)
    cc = CondCache(model, steps)
    multiconds = []
    for _ in range(B):
        multiconds.append([(cc.get(t), w) for t, w in and_split(j["prompt"])])
    unconds = [cc.get(j["negative_prompt"]) for _ in range(B)]

    rng = ImageRNG(j["rng"], shape, seeds, subseeds, j["subseed_strength"], j["ensd"])
    assert j["s_churn"] == 0
    K.torch = TorchHijack(rng, unused=(fn == "sample_euler"))
    tensors = {}
    info = {}
    mask = nmask = init_latent = image_cond = None
    overlay = None
    img2img = j["type"] in ("img2img", "inpaint")

    if img2img:
        init = images[c["image"]]
        assert init.size == (W, H)
        image = init.convert("RGB")  # images.flatten; resize_image to the same size is a copy
        if j["type"] == "inpaint":
            image_mask, mask_for_overlay = prepare_mask(j, images[c["mask"]])
            overlay = overlay_image(image, mask_for_overlay)
            tensors["image_mask"] = np.array(image_mask, dtype=np.uint8)
            tensors["mask_for_overlay"] = np.array(mask_for_overlay, dtype=np.uint8)
        arr = np.moveaxis(np.array(image).astype(np.float64) / 255.0, 2, 0)
        src = torch.from_numpy(np.repeat(arr[None], B, 0)).to(DT)  # [B,3,H,W] in [0,1]
        init_latent = model.encode_first_stage_mean(src * 2 - 1)
        tensors["init_latent"] = init_latent.float().numpy()
        if j["type"] == "inpaint":
            latmask = image_mask.convert("RGB").resize((shape[2], shape[1]))  # PIL default: bicubic
            tensors["latent_mask_u8"] = np.array(latmask)[:, :, 0].copy()
            margin = np.abs(tensors["latent_mask_u8"].astype(np.float64) - 127.5).min()
            assert margin >= MASK_MARGIN, "latent mask value %.1f levels from the rounding threshold" % margin
            latmask = np.moveaxis(np.array(latmask, dtype=np.float64), 2, 0) / 255
            latmask = latmask[0]
            if j["mask_round"]:
                latmask = np.around(latmask)
            latmask = np.tile(latmask[None], (4, 1, 1))
            mask = torch.from_numpy(1.0 - latmask).to(DT)
            nmask = torch.from_numpy(latmask).to(DT)
            tensors["latent_mask"] = latmask[0].astype(np.float32)  # nmask: 1 = repaint
            assert j["inpainting_fill"] == 1
            if model.in_channels == 9:  # inpainting_image_conditioning
                cm = np.array(image_mask.convert("L")).astype(np.float64) / 255.0
                cm = torch.from_numpy(cm[None, None]).to(DT)
                if j["mask_round"]:
                    cm = torch.round(cm)
                s = src * 2 - 1
                cimg = torch.lerp(s, s * (1.0 - cm), 1.0)  # inpainting_mask_weight 1.0
                cimg = model.encode_first_stage_mean(cimg)
                cm = torch.nn.functional.interpolate(cm, size=shape[1:])  # nearest
                cm = cm.expand(cimg.shape[0], -1, -1, -1)
                image_cond = torch.cat([cm, cimg], dim=1)
                tensors["image_conditioning"] = image_cond.float().numpy()
        elif model.in_channels == 9:
            raise NotImplementedError
    elif model.in_channels == 9:
        raise NotImplementedError("txt2img with an inpainting model")

    sigmas = get_sigmas(model, sched_used, steps)
    den = CFGDenoiser(model, multiconds, unconds, j["cfg_scale"], image_cond, init_latent, mask, nmask)
    noise = rng.next()  # first(): the initial noise of every image
    if img2img:
        t_enc = int(min(j["denoising_strength"], 0.999) * steps)
        sched = sigmas[steps - t_enc - 1:]
        x = init_latent + noise * j["initial_noise_multiplier"] * sched[0]
    else:
        t_enc = steps - 1
        sched = sigmas
        x = noise * sched[0]
    xs = []

    def cb(d):
        xs.append(d["x"].float().numpy())

    samples = getattr(K, fn)(den, x, sched.to(DT), extra_args={}, callback=cb, disable=True)
    K.torch = torch
    if mask is not None:
        samples = samples * nmask + init_latent * mask
    decoded = model.decode_first_stage(samples)
    u8 = to_uint8(decoded)
    hires_info = None
    if j.get("enable_hr"):  # stored latent stays the first pass's; decoded/image are the hires pass's
        tensors["first_pass_image"] = u8
        hires_latent, hires_info = hires_pass(c, model, samples, u8, seeds, subseeds, tensors)
        decoded = model.decode_first_stage(hires_latent)
        u8 = to_uint8(decoded)
    if overlay is not None:
        tensors["image_before_overlay"] = u8.copy()
        u8 = np.stack([np.array(apply_overlay(Image.fromarray(u8[i]), overlay)) for i in range(B)])

    tensors.update({
        "noise": rng.initial.numpy(),
        "sigmas": sigmas.numpy(),
        "sigma_sched": sched.numpy(),
        "x_steps": np.stack(xs),
        "denoised_step0": den.first_denoised.float().numpy(),
        "latent": samples.float().numpy(),
        "decoded": decoded.float().numpy(),
        "image": u8,
    })
    if rng.draws:
        tensors["step_noise"] = torch.stack(rng.draws).numpy()
    texts = {}
    for p, sch in cc.cache.items():
        for k, (end, z, t) in enumerate(sch):
            key = "cond_%d" % len(texts)
            texts[key] = {"prompt": p, "end_at_step": end, "text": t}
            tensors[key] = z.float().numpy()
    info.update(seeds=seeds, subseeds=subseeds, scheduler_canonical=canonical, scheduler_used=sched_used or "uniform",
                t_enc=t_enc if img2img else None, executed_steps=len(sched) - 1, prompt_per_step=den.used_texts,
                conds=texts, ancestral_draws=len(rng.draws))
    if hires_info is not None:
        info["hires"] = hires_info
    info["infotexts"] = [infotext(c, model, seeds[i], subseeds[i], sched_info, False, sched_used) for i in range(B)]
    if model.single_complete:
        info["model_hash_single_file"] = model.single_hash
        info["infotexts_single_file"] = [infotext(c, model, seeds[i], subseeds[i], sched_info, True, sched_used)
                                         for i in range(B)]
    return tensors, info


def check_conditioning(model):
    """Single prompts: learned_conditioning must equal make_cond_golden's conditioning."""
    for t in ("a photo of a (cat:1.3)", "a [red:0.5] car, ((blue)) sky", ""):
        ref = mc.conditioning(model.bpe, model.text, t, 1, model.sd2)[2]
        got = model.learned_conditioning([t])[0].float().numpy()
        assert np.array_equal(ref[0], got), (model.name, t, np.abs(ref[0] - got).max())


def f32_errors(ref, got):
    """How far torch float32 math lands from the float64 fixture (for C tolerances)."""
    def rel(k):
        a, b = ref[k].astype(np.float64), got[k].astype(np.float64)
        return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))
    di = np.abs(ref["image"].astype(int) - got["image"].astype(int))
    out = {"noise_max_abs": float(np.abs(ref["noise"].astype(np.float64) - got["noise"]).max()),
           "denoised_step0_rel": rel("denoised_step0"), "latent_rel": rel("latent"),
           "decoded_max_abs": float(np.abs(ref["decoded"].astype(np.float64) - got["decoded"]).max()),
           "image_max_abs": int(di.max()), "image_frac_differing": float((di > 0).mean())}
    if "init_latent" in ref:
        out["init_latent_rel"] = rel("init_latent")
    if "hires_latent" in ref:
        out["hires_init_latent_rel"] = rel("hires_init_latent")
        out["hires_latent_rel"] = rel("hires_latent")
    return out


def generate(out_dir, meta_too):
    bpe = mc.Bpe(mc.vocab_path())
    os.makedirs(out_dir, exist_ok=True)
    for fn in os.listdir(out_dir):
        if fn.endswith((".json", ".safetensors", ".png")):
            os.remove(os.path.join(out_dir, fn))
    images = {"init.png": make_init_image(), "mask.png": make_mask(MASK_RECT, MASK_DISC),
              "mask_wide.png": make_mask(MASK_WIDE_RECT)}
    for k, im in images.items():
        im.save(os.path.join(out_dir, k))
    # the C side reads the PNGs: use what was written
    images = {k: Image.open(os.path.join(out_dir, k)).copy() for k in images}
    models, metas = {}, []
    for c in CASES:
        if c.get("needs_cv2") and cv2 is None:
            print("skip", c["name"], "(no OpenCV)")
            continue
        name = c["job"]["model"]
        if name not in models:
            models[name] = Model(name, bpe)
            if meta_too:
                check_conditioning(models[name])
        tensors, info = run_case(c, models[name], images)
        tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
        save_file(tensors, os.path.join(out_dir, c["name"] + ".safetensors"))  # no metadata: byte-stable
        if not meta_too:
            continue
        meta = {"name": c["name"], "note": c["note"], "job": c["job"], "image_file": c.get("image"),
                "mask_file": c.get("mask"), "latent_shape": list(tensors["noise"].shape[1:]),
                "vae_downscale": models[name].factor, "prediction": "v" if models[name].v else "eps",
                "sampler_function": SAMPLERS[c["job"]["sampler_name"]][0], **info,
                "tensors": {k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in tensors.items()}}
        metas.append(meta)
        lat = tensors["latent"]
        print("%-42s steps %d/%d draws %d |latent| %.4f image mean %.1f" %
              (c["name"], info["executed_steps"], c["job"]["steps"], info["ancestral_draws"],
               float(np.abs(lat).mean()), float(tensors["image"].mean())))
        for t in info["infotexts"]:
            print("   " + t.replace("\n", "\n   "))
    return metas


def main():
    if F32_DIR:
        generate(F32_DIR, False)
        return
    mr.check_nv()
    metas = generate(OUT, True)
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-f32", tmp], check=True,
                       stdout=subprocess.DEVNULL)
        from safetensors.numpy import load_file
        for m in metas:
            e = f32_errors(load_file(os.path.join(OUT, m["name"] + ".safetensors")),
                           load_file(os.path.join(tmp, m["name"] + ".safetensors")))
            m["torch_f32_vs_f64"] = e
            print("%-42s torch f32 vs f64: %s" % (m["name"], ", ".join("%s %.3g" % kv for kv in e.items())))
    for m in metas:
        with open(os.path.join(OUT, m["name"] + ".json"), "w") as f:
            json.dump(m, f, indent=1)
            f.write("\n")
    index = {"generator": "tests/golden/make_pipeline_golden.py",
             "versions": {"torch": torch.__version__, "pillow": PIL.__version__,
                          "opencv": cv2.__version__ if cv2 else None, "lark": lark.__version__ if lark else None,
                          "numpy": np.__version__, "k_diffusion": "0.1.1.post1 (sampling.py, external.py)"},
             "dtype": "float64 reference math; tensors stored float32 (sigmas float64, images/masks uint8)",
             "cases": [m["name"] for m in metas]}
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("wrote %s: %.2f MB" % (OUT, total / 1e6))


if __name__ == "__main__":
    main()
