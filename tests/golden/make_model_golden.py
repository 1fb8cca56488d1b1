#!/usr/bin/env python3
"""Tiny random-weight Stable Diffusion models and their expected outputs.

Run by hand, never in CI; the outputs under tests/golden/models/ are committed
and read by tests/unit/test_model_{text,vae,unet}.c:

    /root/ref-venv/bin/python tests/golden/make_model_golden.py

(torch 2.15, diffusers 0.42, transformers 5.23, safetensors from PyPI.)

For each model NAME in {sd1-tiny, sd2-tiny} it writes
  models/NAME/                 diffusers folder: model_index.json, unet/, vae/,
                               text_encoder/, scheduler/ (tokenizer/ is NOT
                               written: the tokenizer is tested elsewhere)
  models/NAME.safetensors      the same weights as a single-file A1111/CompVis
                               checkpoint with LDM names (conversion below:
                               ldm_unet_name, ldm_vae_name, ldm_text_name)
  models/NAME.keymap.json      {"prefix": {comp: ldm prefix},
                                comp: {diffusers_name: ldm_name_within_comp}}
                               for comp in unet, vae, text. SD2 q/k/v of the text
                               encoder all map to ...attn.in_proj_{weight,bias}
                               (rows [0:C], [C:2C], [2C:3C], see "slices").
  models/expected/NAME_text.safetensors
        ids [3,77] I64; hidden [3,77,C] = last_hidden_state (final LN applied);
        hidden_skip2 [3,77,C] = hidden_states[-2] -> final_layer_norm (A1111
        CLIP_stop_at_last_layers=2 for SD1).
  models/expected/NAME_vae.safetensors
        image [1,3,16,24] NCHW in [-1,1]; mean, std [1,4,8,12]: the posterior
        of vae.encode(image) (unscaled); latent [1,4,8,12] as a sampler makes it
        (already multiplied by scaling_factor); decoded [1,3,16,24] =
        vae.decode(latent / scaling_factor).sample (unclamped).
  models/expected/NAME_unet.safetensors
        x [2,4,8,8], context [2,77,Cctx]; for each case K in 1, 500, 999, mix:
        t_K [2] (f32 timesteps; mix = [1, 999]) and out_K [2,4,8,8] (the UNet's
        prediction: eps for sd1, v for sd2). out_K_torchf32 is diffusers run
        plainly in f32 (timestep embedding in f32 as diffusers computes it),
        for information.

All expected tensors are computed in float64 (the models converted with
.double()) from the stored weights, so the tests compare against the exact
function of the committed weights, not against torch's own f32 rounding. The
sinusoidal timestep embedding is likewise computed in f64 (diffusers does it
in f32 even for f64 models; the engine does it in f64, docs/engine.md).

Weights: every parameter is first rounded to the narrowest dtype it is stored
in anywhere (f16, or bf16 for the sd2 text encoder), so all stored copies hold
identical values and f16/bf16 -> f32 loading must be exact.

Architecture of the tiny models:
  sd1-tiny: UNet blocks (32, 64), layers_per_block 1, CrossAttnDown + Down /
    Up + CrossAttnUp, cross_attention_dim 32, 8 heads, norm groups 8, conv
    proj_in/out; VAE (16, 32), 1 layer per block, latent 4, groups 8;
    CLIP text hidden 32, 3 layers, 4 heads, intermediate 64, quick_gelu, vocab
    49408, 77 positions. Pads with EOS (49407).
  sd2-tiny: UNet blocks (16, 32), heads per block [2, 4] (attention_head_dim
    as a list), linear proj_in/out, cross_attention_dim 16; VAE as sd1; text
    encoder OpenCLIP-style: hidden 16, 2 heads, intermediate 32, gelu. The
    single file holds the FULL OpenCLIP stack of 3 resblocks
    (cond_stage_model.model.transformer.resblocks.0..2 plus text_projection and
    logit_scale, as real SD2 files do); the diffusers folder holds the first 2
    layers, exactly like diffusers' own SD2 conversion, which drops the last
    layer so that last_hidden_state IS "the penultimate layer + ln_final" SD2
    uses. So for SD2, hidden == what SD2/A1111 feed the UNet. (A1111 ignores
    CLIP_stop_at_last_layers for SD2; hidden_skip2 of sd2 is diffusers-style
    clip skip on top: hidden_states[-2] of the 2-layer folder model + final
    LN.) prediction_type v_prediction in scheduler/scheduler_config.json.
    Pads with 0 like OpenCLIP.

Size: the 49408-entry token embedding is stored 4 times (2 models x 2 layouts)
and dominates the bytes on disk (~16 MB in all). It is built to compress
(compressible_embedding: rows repeat with period 256 except a distinct
first element), so git's zlib storage of the fixtures is far smaller; the
script prints both sizes at the end.
"""
import json
import math
import os
import shutil

import numpy as np
import torch
from safetensors.torch import save_file

import diffusers.models.embeddings as dembed
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

HERE = os.path.dirname(os.path.abspath(__file__))
OUTDIR = os.path.join(HERE, "models")
EXPDIR = os.path.join(OUTDIR, "expected")

BOS, EOS = 49406, 49407

MODELS = {
    "sd1-tiny": dict(
        seed=1234,
        unet=dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
                  down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                  up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32, attention_head_dim=8,
                  norm_num_groups=8),
        vae=dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                 up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(16, 32), layers_per_block=1,
                 latent_channels=4, norm_num_groups=8, sample_size=32, scaling_factor=0.18215),
        text=dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64, vocab_size=49408,
                  max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=32, pad_token_id=1,
                  bos_token_id=BOS, eos_token_id=EOS),
        openclip=False, pad=EOS, prediction_type="epsilon",
        # storage dtype per (layout, component); weights are rounded to `round`
        round=dict(unet=torch.float16, vae=torch.float16, text=torch.float16),
        folder=dict(unet=torch.float16, vae=torch.float32, text=torch.float16),
        single=dict(unet=torch.float16, vae=torch.float16, text=torch.float16),
        unet_variant=None,
    ),
    "sd2-tiny": dict(
        seed=5678,
        unet=dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32), layers_per_block=1,
                  down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                  up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                  attention_head_dim=[2, 4], norm_num_groups=8, use_linear_projection=True),
        vae=dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                 up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(16, 32), layers_per_block=1,
                 latent_channels=4, norm_num_groups=8, sample_size=32, scaling_factor=0.18215),
        # num_hidden_layers of the FULL OpenCLIP stack; the folder gets one fewer
        text=dict(hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32, vocab_size=49408,
                  max_position_embeddings=77, hidden_act="gelu", projection_dim=16, pad_token_id=0,
                  bos_token_id=BOS, eos_token_id=EOS),
        openclip=True, pad=0, prediction_type="v_prediction",
        round=dict(unet=torch.float16, vae=torch.float16, text=torch.bfloat16),
        folder=dict(unet=torch.float16, vae=torch.float16, text=torch.bfloat16),
        single=dict(unet=torch.float16, vae=torch.float32, text=torch.bfloat16),
        unet_variant="fp16",
    ),
}


# ----------------------------------------------------------------------------
# diffusers -> LDM (A1111/CompVis single-file) names.
# Each function maps a diffusers name within its component to the LDM name
# within the component (without model.diffusion_model. / first_stage_model. /
# cond_stage_model.transformer. / cond_stage_model.model.). It is the
# correspondence diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py
# implements, written out for any number of levels and layers per block.
# ----------------------------------------------------------------------------
LDM_PREFIX_UNET = "model.diffusion_model."
LDM_PREFIX_VAE = "first_stage_model."
LDM_PREFIX_TEXT_SD1 = "cond_stage_model.transformer."
LDM_PREFIX_TEXT_SD2 = "cond_stage_model.model."


def _resnet_unet(rest):
    m = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0",
         "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
    head, _, tail = rest.partition(".")
    return m[head] + "." + tail


def ldm_unet_name(name, layers_per_block, n_levels):
    L = layers_per_block
    p = name.split(".")
    simple = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
              "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
              "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}
    for d, l in simple.items():
        if name.startswith(d + "."):
            return l + name[len(d):]
    if p[0] == "down_blocks":
        i, kind, j, rest = int(p[1]), p[2], int(p[3]), ".".join(p[4:])
        if kind == "resnets":
            return "input_blocks.%d.0.%s" % (1 + i * (L + 1) + j, _resnet_unet(rest))
        if kind == "attentions":
            return "input_blocks.%d.1.%s" % (1 + i * (L + 1) + j, rest)
        if kind == "downsamplers":  # downsamplers.0.conv.* -> .0.op.*
            return "input_blocks.%d.0.op.%s" % (1 + i * (L + 1) + L, rest.partition(".")[2])
    if p[0] == "mid_block":
        kind, j, rest = p[1], int(p[2]), ".".join(p[3:])
        if kind == "resnets":
            return "middle_block.%d.%s" % (2 * j, _resnet_unet(rest))
        if kind == "attentions":
            return "middle_block.1.%s" % rest
    if p[0] == "up_blocks":
        i, kind, j, rest = int(p[1]), p[2], int(p[3]), ".".join(p[4:])
        Lu = L + 1
        if kind == "resnets":
            return "output_blocks.%d.0.%s" % (i * Lu + j, _resnet_unet(rest))
        if kind == "attentions":
            return "output_blocks.%d.1.%s" % (i * Lu + j, rest)
        if kind == "upsamplers":  # index 1 without attention in the block, 2 with
            return ("output_blocks.%d.%%d.%s" % (i * Lu + Lu - 1, rest))
    raise KeyError(name)


def ldm_vae_name(name, n_levels):
    p = name.split(".")
    res = {"conv_shortcut": "nin_shortcut"}

    def resnet(rest):
        h, _, t = rest.partition(".")
        return res.get(h, h) + "." + t

    def midattn(rest):
        m = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
        for d, l in m.items():
            if rest.startswith(d + "."):
                return l + rest[len(d):]
        raise KeyError(name)

    if p[0] in ("quant_conv", "post_quant_conv"):
        return name
    side = p[0]  # encoder | decoder
    if p[1] in ("conv_in", "conv_out"):
        return name
    if p[1] == "conv_norm_out":
        return side + ".norm_out." + ".".join(p[2:])
    if p[1] == "mid_block":
        kind, j, rest = p[2], int(p[3]), ".".join(p[4:])
        if kind == "resnets":
            return "%s.mid.block_%d.%s" % (side, j + 1, resnet(rest))
        return "%s.mid.attn_1.%s" % (side, midattn(rest))
    if p[1] == "down_blocks":
        i, kind, j, rest = int(p[2]), p[3], int(p[4]), ".".join(p[5:])
        if kind == "resnets":
            return "encoder.down.%d.block.%d.%s" % (i, j, resnet(rest))
        return "encoder.down.%d.downsample.%s" % (i, rest)  # downsamplers.0.conv.* -> downsample.conv.*
    if p[1] == "up_blocks":
        i, kind, j, rest = int(p[2]), p[3], int(p[4]), ".".join(p[5:])
        li = n_levels - 1 - i
        if kind == "resnets":
            return "decoder.up.%d.block.%d.%s" % (li, j, resnet(rest))
        return "decoder.up.%d.upsample.%s" % (li, rest)
    raise KeyError(name)


def ldm_text_name(name, openclip):
    """SD1: identity (text_model.* under cond_stage_model.transformer.).
    SD2 (OpenCLIP): returns the OpenCLIP name; q/k/v map to in_proj_*."""
    if not openclip:
        return name
    m = {"text_model.embeddings.token_embedding.weight": "token_embedding.weight",
         "text_model.embeddings.position_embedding.weight": "positional_embedding",
         "text_model.final_layer_norm.weight": "ln_final.weight",
         "text_model.final_layer_norm.bias": "ln_final.bias"}
    if name in m:
        return m[name]
    p = name.split(".")
    if p[:3] == ["text_model", "encoder", "layers"]:
        i, rest = int(p[3]), ".".join(p[4:])
        sub = {"self_attn.q_proj": "attn.in_proj", "self_attn.k_proj": "attn.in_proj",
               "self_attn.v_proj": "attn.in_proj", "self_attn.out_proj": "attn.out_proj",
               "layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
        for d, l in sub.items():
            if rest.startswith(d + "."):
                tail = rest[len(d) + 1:]
                if l == "attn.in_proj":
                    return "transformer.resblocks.%d.attn.in_proj_%s" % (i, tail)
                return "transformer.resblocks.%d.%s.%s" % (i, l, tail)
    raise KeyError(name)


def unet_keymap(unet):
    cfg = unet.config
    L, n = cfg.layers_per_block, len(cfg.block_out_channels)
    km = {}
    for k in unet.state_dict():
        v = ldm_unet_name(k, L, n)
        if "%d" in v:
            i = int(k.split(".")[1])
            v = v % (2 if hasattr(unet.up_blocks[i], "attentions") and unet.up_blocks[i].attentions else 1)
        km[k] = v
    return km


def to_ldm_unet(sd, km):
    return {LDM_PREFIX_UNET + km[k]: t for k, t in sd.items()}


def to_ldm_vae(sd, km):
    out = {}
    for k, t in sd.items():
        if ".mid_block.attentions." in k and t.ndim == 2:  # linear [C,C] -> 1x1 conv [C,C,1,1]
            t = t.reshape(t.shape[0], t.shape[1], 1, 1)
        out[LDM_PREFIX_VAE + km[k]] = t
    return out


def to_ldm_text(full_sd, km, openclip, n_full_layers, C):
    """full_sd: the state dict of the FULL text model (SD2: one more layer than the folder)."""
    if not openclip:
        return {LDM_PREFIX_TEXT_SD1 + km.get(k, k): t for k, t in full_sd.items()}
    out = {}
    for k, t in full_sd.items():
        if ".self_attn.q_proj." in k or ".self_attn.k_proj." in k or ".self_attn.v_proj." in k:
            if ".q_proj." not in k:
                continue
            kk, kv = k.replace("q_proj", "k_proj"), k.replace("q_proj", "v_proj")
            out[LDM_PREFIX_TEXT_SD2 + ldm_text_name(k, True)] = torch.cat([t, full_sd[kk], full_sd[kv]], 0)
            continue
        out[LDM_PREFIX_TEXT_SD2 + ldm_text_name(k, True)] = t
    g = torch.Generator().manual_seed(99)
    out[LDM_PREFIX_TEXT_SD2 + "text_projection"] = (torch.randn(C, C, generator=g) * 0.05).to(t.dtype)
    out[LDM_PREFIX_TEXT_SD2 + "logit_scale"] = torch.tensor(math.log(1 / 0.07)).to(t.dtype)
    return out


# ----------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------
def perturb_and_round(model, dtype, gen):
    """Randomise biases and norm weights (default inits are 0/1, which would let
    bias or affine bugs pass), then round every parameter to `dtype`."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith(".bias"):
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
            elif "norm" in n and p.ndim == 1:
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
            p.copy_(p.to(dtype).to(torch.float32))


def exact_timestep_embedding(timesteps, embedding_dim, flip_sin_to_cos=False, downscale_freq_shift=1, scale=1,
                             max_period=10000):
    half = embedding_dim // 2
    exponent = -math.log(max_period) * torch.arange(0, half, dtype=torch.float64) / (half - downscale_freq_shift)
    emb = timesteps[:, None].double() * torch.exp(exponent)[None, :]
    emb = scale * emb
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if embedding_dim % 2 == 1:
        emb = torch.nn.functional.pad(emb, (0, 1, 0, 0))
    return emb


def text_sd(model):
    """The text encoder's tensors under the names every SD diffusers folder uses
    (text_model.*). transformers 5 saves them without the prefix and loads
    both; the C loader accepts both too."""
    return {"text_model." + k: v for k, v in model.state_dict().items() if "position_ids" not in k}


def compressible_embedding(tcfg, gen, period=256):
    """A [vocab, C] token embedding that zlib (git) compresses ~10x: row i is
    row i % period of a random table, except element 0, which encodes
    i // period. Every row is still distinct, so a wrong row index is caught."""
    V, C = tcfg["vocab_size"], tcfg["hidden_size"]
    base = torch.randn(period, C, generator=gen) * 0.5
    i = torch.arange(V)
    emb = base[i % period].clone()
    nblk = (V + period - 1) // period
    emb[:, 0] = (i // period).float() / (nblk - 1) * 2 - 1
    return emb


def cast_sd(sd, dtype):
    return {k: v.detach().to(dtype).contiguous() for k, v in sd.items()}


def rel_err(a, b):
    return (a.double() - b.double()).abs().max().item() / max(b.double().abs().max().item(), 1e-30)


def make_ids(pad):
    rng = np.random.RandomState(7)
    rows = []
    short = [BOS, 320, 1125, 539, 320, 2368, EOS]
    rows.append(short + [pad] * (77 - len(short)))
    mid = [BOS] + list(rng.randint(1, 49406, size=20)) + [EOS]
    rows.append(mid + [pad] * (77 - len(mid)))
    full = [BOS] + list(rng.randint(1, 49406, size=75)) + [EOS]
    rows.append(full)
    return torch.tensor(rows, dtype=torch.int64)


def build(name, spec):
    torch.manual_seed(spec["seed"])
    gen = torch.Generator().manual_seed(spec["seed"] + 1)
    folder = os.path.join(OUTDIR, name)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)

    unet = UNet2DConditionModel(**spec["unet"]).eval()
    vae = AutoencoderKL(**spec["vae"]).eval()
    tcfg = dict(spec["text"])
    text_full = CLIPTextModel(CLIPTextConfig(**tcfg)).eval()
    # CLIP's embeddings are initialised with std 0.02: widen so the signal is not
    # dominated by the biases we add
    with torch.no_grad():
        text_full.embeddings.token_embedding.weight.copy_(compressible_embedding(tcfg, gen))
        text_full.embeddings.position_embedding.weight.normal_(0, 0.2, generator=gen)
    perturb_and_round(unet, spec["round"]["unet"], gen)
    perturb_and_round(vae, spec["round"]["vae"], gen)
    perturb_and_round(text_full, spec["round"]["text"], gen)

    # the folder's text encoder: SD2 drops the last OpenCLIP layer (penultimate)
    if spec["openclip"]:
        tcfg2 = dict(tcfg, num_hidden_layers=tcfg["num_hidden_layers"] - 1)
        text = CLIPTextModel(CLIPTextConfig(**tcfg2)).eval()
        sd_full = text_full.state_dict()  # transformers 5 names: no text_model. prefix
        missing, unexpected = text.load_state_dict(
            {k: v for k, v in sd_full.items()
             if (".layers.%d." % (tcfg["num_hidden_layers"] - 1)) not in k}, strict=False)
        assert not unexpected and all("position_ids" in m for m in missing), (missing, unexpected)
    else:
        text = text_full

    # ---- diffusers folder --------------------------------------------------
    fd = spec["folder"]
    unet_dir, vae_dir, te_dir = (os.path.join(folder, s) for s in ("unet", "vae", "text_encoder"))
    unet.save_pretrained(unet_dir, safe_serialization=True)  # config (and weights, replaced below)
    vae.save_pretrained(vae_dir, safe_serialization=True)
    text.save_pretrained(te_dir, safe_serialization=True)
    for d in (unet_dir, vae_dir, te_dir):
        for f in os.listdir(d):
            if f.endswith(".safetensors"):
                os.remove(os.path.join(d, f))
    uname = "diffusion_pytorch_model.%ssafetensors" % (spec["unet_variant"] + "." if spec["unet_variant"] else "")
    save_file(cast_sd(unet.state_dict(), fd["unet"]), os.path.join(unet_dir, uname), metadata={"format": "pt"})
    save_file(cast_sd(vae.state_dict(), fd["vae"]), os.path.join(vae_dir, "diffusion_pytorch_model.safetensors"),
              metadata={"format": "pt"})
    te_sd = text_sd(text)
    save_file(cast_sd(te_sd, fd["text"]), os.path.join(te_dir, "model.safetensors"), metadata={"format": "pt"})
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1, prediction_type=spec["prediction_type"])
    sched.save_pretrained(os.path.join(folder, "scheduler"))
    with open(os.path.join(folder, "model_index.json"), "w") as f:
        json.dump({"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1",
                   "feature_extractor": [None, None], "requires_safety_checker": False,
                   "safety_checker": [None, None], "scheduler": ["diffusers", "DDIMScheduler"],
                   "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
                   "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}, f, indent=2)

    # ---- single file -------------------------------------------------------
    sf = spec["single"]
    ukm = unet_keymap(unet)
    nv = len(spec["vae"]["block_out_channels"])
    vkm = {k: ldm_vae_name(k, nv) for k in vae.state_dict()}
    tkm = {k: ldm_text_name(k, spec["openclip"]) for k in text_sd(text_full)}
    C = tcfg["hidden_size"]
    single = {}
    single.update(cast_sd(to_ldm_unet(unet.state_dict(), ukm), sf["unet"]))
    single.update(cast_sd(to_ldm_vae(vae.state_dict(), vkm), sf["vae"]))
    full_sd = text_sd(text_full)
    single.update(cast_sd(to_ldm_text(full_sd, tkm, spec["openclip"], tcfg["num_hidden_layers"], C), sf["text"]))
    # v-prediction is not stored in safetensors checkpoints themselves; A1111 reads
    # it from a side .yaml. We record it as metadata for the detection code.
    save_file(single, os.path.join(OUTDIR, name + ".safetensors"),
              metadata={"format": "pt", "tessera.prediction_type": spec["prediction_type"]})
    text_prefix = LDM_PREFIX_TEXT_SD2 if spec["openclip"] else LDM_PREFIX_TEXT_SD1
    keymap = {"prefix": {"unet": LDM_PREFIX_UNET, "vae": LDM_PREFIX_VAE, "text": text_prefix},
              "unet": ukm, "vae": vkm, "text": tkm}
    if spec["openclip"]:
        keymap["slices"] = {"note": "text q/k/v_proj.{weight,bias} are rows [0:C], [C:2C], [2C:3C] of in_proj_*",
                            "C": C}
    with open(os.path.join(OUTDIR, name + ".keymap.json"), "w") as f:
        json.dump(keymap, f, indent=1, sort_keys=True)

    # ---- expected tensors (float64) -----------------------------------------
    os.makedirs(EXPDIR, exist_ok=True)
    ids = make_ids(spec["pad"])
    t64 = CLIPTextModel(CLIPTextConfig(**text.config.to_dict())).eval()
    t64.load_state_dict(text.state_dict())
    t64 = t64.double()
    with torch.no_grad():
        o = t64(input_ids=ids, output_hidden_states=True)
        hidden = o.last_hidden_state
        skip2 = t64.final_layer_norm(o.hidden_states[-2])
        o32 = text(input_ids=ids, output_hidden_states=True)
    print("%s text: hidden f32-vs-f64 rel err %.2e, max|hidden| %.3f" %
          (name, rel_err(o32.last_hidden_state, hidden), hidden.abs().max().item()))
    save_file({"ids": ids, "hidden": hidden.float().contiguous(), "hidden_skip2": skip2.float().contiguous()},
              os.path.join(EXPDIR, name + "_text.safetensors"))

    g = torch.Generator().manual_seed(spec["seed"] + 2)
    image = torch.rand(1, 3, 16, 24, generator=g) * 2 - 1
    latent = torch.randn(1, 4, 8, 12, generator=g)
    sfac = spec["vae"]["scaling_factor"]
    v64 = AutoencoderKL(**spec["vae"]).eval()
    v64.load_state_dict(vae.state_dict())
    v64 = v64.double()
    with torch.no_grad():
        post = v64.encode(image.double()).latent_dist
        dec = v64.decode(latent.double() / sfac).sample
        dec32 = vae.decode(latent / sfac).sample
    print("%s vae: decode f32-vs-f64 rel err %.2e" % (name, rel_err(dec32, dec)))
    save_file({"image": image, "mean": post.mean.float().contiguous(), "std": post.std.float().contiguous(),
               "latent": latent, "decoded": dec.float().contiguous()}, os.path.join(EXPDIR, name + "_vae.safetensors"))

    x = torch.randn(2, 4, 8, 8, generator=g)
    ctx = torch.randn(2, 77, spec["unet"]["cross_attention_dim"], generator=g)
    u64 = UNet2DConditionModel(**spec["unet"]).eval()
    u64.load_state_dict(unet.state_dict())
    u64 = u64.double()
    out = {"x": x, "context": ctx}
    cases = {"1": [1.0, 1.0], "500": [500.0, 500.0], "999": [999.0, 999.0], "mix": [1.0, 999.0]}
    orig = dembed.get_timestep_embedding
    for k, tv in cases.items():
        t = torch.tensor(tv, dtype=torch.float32)
        with torch.no_grad():
            dembed.get_timestep_embedding = exact_timestep_embedding
            try:
                y = u64(x.double(), t.double(), encoder_hidden_states=ctx.double()).sample
            finally:
                dembed.get_timestep_embedding = orig
            y32 = unet(x, t, encoder_hidden_states=ctx).sample
        print("%s unet t=%s: torch-f32 vs f64 rel err %.2e" % (name, k, rel_err(y32, y)))
        out["t_" + k] = t
        out["out_" + k] = y.float().contiguous()
        out["out_%s_torchf32" % k] = y32.contiguous()
    save_file(out, os.path.join(EXPDIR, name + "_unet.safetensors"))


def verify_with_diffusers(name, spec):
    """Cross-check our LDM names with diffusers' own single-file converters:
    the single file converted back must equal the folder's tensors."""
    from safetensors.torch import load_file
    import diffusers.loaders.single_file_utils as sfu
    ck = load_file(os.path.join(OUTDIR, name + ".safetensors"))
    folder = os.path.join(OUTDIR, name)
    uname = "diffusion_pytorch_model.%ssafetensors" % (spec["unet_variant"] + "." if spec["unet_variant"] else "")
    ref_u = load_file(os.path.join(folder, "unet", uname))
    ref_v = load_file(os.path.join(folder, "vae", "diffusion_pytorch_model.safetensors"))
    ref_t = load_file(os.path.join(folder, "text_encoder", "model.safetensors"))
    ucfg = UNet2DConditionModel.load_config(os.path.join(folder, "unet"))
    vcfg = AutoencoderKL.load_config(os.path.join(folder, "vae"))
    got_u = sfu.convert_ldm_unet_checkpoint(dict(ck), ucfg)
    got_v = sfu.convert_ldm_vae_checkpoint(dict(ck), vcfg)
    if spec["openclip"]:
        te = CLIPTextModel(CLIPTextConfig(**spec["text"]))
        got_t = sfu.convert_open_clip_checkpoint(te, dict(ck))
        nl = spec["text"]["num_hidden_layers"] - 1   # the folder drops the last layer
        got_t = {k: v for k, v in got_t.items() if ".layers.%d." % nl not in k}
    else:
        got_t = sfu.convert_ldm_clip_checkpoint(dict(ck))
    got_t = {(k if k.startswith("text_model.") else "text_model." + k): v for k, v in got_t.items()
             if "position_ids" not in k}
    for comp, ref, got in (("unet", ref_u, got_u), ("vae", ref_v, got_v), ("text", ref_t, got_t)):
        assert set(ref) == set(got), (name, comp, sorted(set(ref) ^ set(got))[:10])
        for k in ref:
            a, b = ref[k].float(), got[k].float().reshape(ref[k].shape)
            assert torch.equal(a, b), (name, comp, k)
    print("%s: single file == folder through diffusers' converters (%d/%d/%d tensors)" %
          (name, len(ref_u), len(ref_v), len(ref_t)))


def main():
    for name, spec in MODELS.items():
        build(name, spec)
        verify_with_diffusers(name, spec)
    total = 0
    for root, _, files in os.walk(OUTDIR):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    import zlib
    packed = 0
    for root, _, files in os.walk(OUTDIR):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                packed += len(zlib.compress(fh.read(), 6))
    print("fixtures under %s: %.2f MB on disk, %.2f MB zlib-compressed (as git stores them)" %
          (OUTDIR, total / 1e6, packed / 1e6))


if __name__ == "__main__":
    main()
