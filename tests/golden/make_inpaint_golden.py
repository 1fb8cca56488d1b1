#!/usr/bin/env python3
"""A tiny random-weight inpainting UNet (9 input channels) and its expected outputs.

Run by hand, never in CI (same venv as make_model_golden.py, whose helpers it
imports; it does not touch the sd1-tiny / sd2-tiny fixtures):

    /root/ref-venv/bin/python tests/golden/make_inpaint_golden.py

Writes
  models/sd1-inpaint-tiny/unet/            diffusers UNet (config.json + f16
                                           diffusion_pytorch_model.safetensors)
  models/sd1-inpaint-tiny/{vae,text_encoder,scheduler}
                                           relative symlinks to ../sd1-tiny/*:
                                           tck_open wants every component of a
                                           folder; the test only loads the UNet
  models/sd1-inpaint-tiny/model_index.json StableDiffusionInpaintPipeline
  models/sd1-inpaint-tiny.safetensors      the same UNet as a single-file LDM
                                           checkpoint (model.diffusion_model.*
                                           only, f16)
  models/expected/sd1-inpaint-tiny_unet.safetensors
        x [2,9,8,8] (latent 4 + mask 1 + masked-image latent 4, as the
        inpainting UNet takes them), context [2,77,32]; for K in 1, 500, 999,
        mix: t_K [2] and out_K [2,4,8,8] in float64 (exact f64 timestep
        embedding), out_K_torchf32 for information.

The UNet is sd1-tiny's configuration with in_channels 9 (new seed), weights
rounded to f16 so both layouts hold identical values. The single file is
checked against diffusers' own LDM -> diffusers converter.
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_model_golden as mg  # noqa: E402
import diffusers.models.embeddings as dembed  # noqa: E402
from diffusers import UNet2DConditionModel  # noqa: E402

NAME = "sd1-inpaint-tiny"
SEED = 4321
UNET = dict(mg.MODELS["sd1-tiny"]["unet"], in_channels=9)


def main():
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED + 1)
    folder = os.path.join(mg.OUTDIR, NAME)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)

    unet = UNet2DConditionModel(**UNET).eval()
    mg.perturb_and_round(unet, torch.float16, gen)

    # ---- diffusers folder: unet/ of its own, the rest shared with sd1-tiny ----
    unet_dir = os.path.join(folder, "unet")
    unet.save_pretrained(unet_dir, safe_serialization=True)
    for f in os.listdir(unet_dir):
        if f.endswith(".safetensors"):
            os.remove(os.path.join(unet_dir, f))
    uf = os.path.join(unet_dir, "diffusion_pytorch_model.safetensors")
    save_file(mg.cast_sd(unet.state_dict(), torch.float16), uf, metadata={"format": "pt"})
    for comp in ("vae", "text_encoder", "scheduler"):
        os.symlink(os.path.join("..", "sd1-tiny", comp), os.path.join(folder, comp))
    with open(os.path.join(folder, "model_index.json"), "w") as f:
        json.dump({"_class_name": "StableDiffusionInpaintPipeline", "_diffusers_version": "0.42.1",
                   "feature_extractor": [None, None], "requires_safety_checker": False,
                   "safety_checker": [None, None], "scheduler": ["diffusers", "DDIMScheduler"],
                   "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
                   "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}, f, indent=2)

    # ---- single file (UNet only) ----------------------------------------------
    km = mg.unet_keymap(unet)
    single = os.path.join(mg.OUTDIR, NAME + ".safetensors")
    save_file(mg.cast_sd(mg.to_ldm_unet(unet.state_dict(), km), torch.float16), single,
              metadata={"format": "pt", "tessera.prediction_type": "epsilon"})

    # cross-check the LDM names with diffusers' converter
    import diffusers.loaders.single_file_utils as sfu
    got = sfu.convert_ldm_unet_checkpoint(dict(load_file(single)), UNet2DConditionModel.load_config(unet_dir))
    ref = load_file(uf)
    assert set(ref) == set(got), sorted(set(ref) ^ set(got))[:10]
    for k in ref:
        assert torch.equal(ref[k].float(), got[k].float().reshape(ref[k].shape)), k
    assert ref["conv_in.weight"].shape[1] == 9
    print("%s: single file == folder through diffusers' converter (%d tensors)" % (NAME, len(ref)))

    # ---- expected outputs (float64) -------------------------------------------
    os.makedirs(mg.EXPDIR, exist_ok=True)
    g = torch.Generator().manual_seed(SEED + 2)
    x = torch.randn(2, 9, 8, 8, generator=g)
    x[:, 4] = (x[:, 4] > 0).float()  # the mask channel is 0/1 in real use
    ctx = torch.randn(2, 77, UNET["cross_attention_dim"], generator=g)
    u64 = UNet2DConditionModel(**UNET).eval()
    u64.load_state_dict(unet.state_dict())
    u64 = u64.double()
    out = {"x": x, "context": ctx}
    cases = {"1": [1.0, 1.0], "500": [500.0, 500.0], "999": [999.0, 999.0], "mix": [1.0, 999.0]}
    orig = dembed.get_timestep_embedding
    for k, tv in cases.items():
        t = torch.tensor(tv, dtype=torch.float32)
        with torch.no_grad():
            dembed.get_timestep_embedding = mg.exact_timestep_embedding
            try:
                y = u64(x.double(), t.double(), encoder_hidden_states=ctx.double()).sample
            finally:
                dembed.get_timestep_embedding = orig
            y32 = unet(x, t, encoder_hidden_states=ctx).sample
        assert y.shape == (2, 4, 8, 8)
        print("%s unet t=%s: torch-f32 vs f64 rel err %.2e" % (NAME, k, mg.rel_err(y32, y)))
        out["t_" + k] = t
        out["out_" + k] = y.float().contiguous()
        out["out_%s_torchf32" % k] = y32.contiguous()
    save_file(out, os.path.join(mg.EXPDIR, NAME + "_unet.safetensors"))

    sizes = [os.path.getsize(p) for p in (uf, single, os.path.join(mg.EXPDIR, NAME + "_unet.safetensors"))]
    print("%s: folder unet %.2f MB, single file %.2f MB, expected %.2f MB" % (NAME, *(s / 1e6 for s in sizes)))


if __name__ == "__main__":
    main()
