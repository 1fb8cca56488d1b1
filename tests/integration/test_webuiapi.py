"""test_webuiapi.py - a real AUTOMATIC1111 client library against the farm.

`webuiapi` (PyPI, mix1009/sdwebuiapi) is what many bots and scripts use to
drive an A1111 server. It lives in its own virtual environment,
${TESSERA_DATA:-~/.cache/tessera}/pyenv (scripts/install-deps.sh
--with-webuiapi makes it); the test runs a client script with that
environment's python against a real farm (redis-server, tesserad with an API
key used as the HTTP Basic password, as A1111's --api-auth, one worker on the
tiny SD1 model) and checks what the library got back. Skipped when the
environment or the binaries are missing; the txt2img part is skipped while
the worker cannot render txt2img (the job fails with unsupported_type).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import REPO, Farm, have_binaries  # noqa: E402

PYENV = os.path.join(os.environ.get("TESSERA_DATA") or os.path.expanduser("~/.cache/tessera"), "pyenv")
PYTHON = os.path.join(PYENV, "bin", "python")
TINY_MODEL = os.path.join(REPO, "tests", "golden", "models", "sd1-tiny")
KEY = "webuiapi-secret"


def have_webuiapi():
    if not os.access(PYTHON, os.X_OK):
        return False
    return subprocess.run([PYTHON, "-c", "import webuiapi"], capture_output=True, timeout=60).returncode == 0


# Runs in the pyenv: one JSON object per check on stdout.
CLIENT = r'''
import io, json, sys
import webuiapi
from PIL import Image, PngImagePlugin

port = int(sys.argv[1])
out = {}
api = webuiapi.WebUIApi(host="127.0.0.1", port=port, sampler="Euler a", steps=2,
                        username="client", password=sys.argv[2])
out["samplers"] = api.util_get_sampler_names()
out["schedulers"] = api.util_get_scheduler_names()
out["models"] = api.util_get_model_names()
out["upscalers"] = [u["name"] for u in api.get_upscalers()]
out["latent"] = [m["name"] for m in api.get_latent_upscale_modes()]
out["vae"] = api.get_sd_vae()
out["loras"] = api.get_loras()
out["embeddings"] = api.get_embeddings()
out["memory"] = sorted(api.get_memory())
out["scripts"] = api.get_scripts()
out["cmd_flags"] = api.get_cmd_flags()
out["styles"] = api.get_prompt_styles()
api.refresh_checkpoints()
api.util_set_model("sd1-tiny")
out["current_model"] = api.util_get_current_model()
out["progress"] = api.get_progress()
api.util_wait_for_ready(check_interval=0.2)

# extras
src = Image.new("RGB", (24, 16), (200, 30, 40))
r = api.extra_single_image(image=src, upscaler_1="Lanczos", upscaling_resize=2)
out["extras_size"] = list(r.image.size)

# png-info on a picture with A1111 parameters
meta = PngImagePlugin.PngInfo()
meta.add_text("parameters", "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7.0, Seed: 5, Size: 64x64")
buf = io.BytesIO()
src.save(buf, format="PNG", pnginfo=meta)
r = api.png_info(Image.open(io.BytesIO(buf.getvalue())))
out["png_info"] = r.json

# txt2img
try:
    r = api.txt2img(prompt="a photo of a cat", seed=77, width=64, height=64, steps=2, batch_size=1)
    out["txt2img"] = {"n": len(r.images), "size": list(r.image.size), "seeds": r.info.get("all_seeds"),
                      "infotexts": r.info.get("infotexts"), "parameters_prompt": r.parameters.get("prompt")}
    r = api.img2img(images=[r.image], prompt="a cat", seed=3, steps=2, denoising_strength=0.5, width=64, height=64)
    out["img2img"] = {"n": len(r.images), "size": list(r.image.size)}
except RuntimeError as e:
    out["txt2img_error"] = str(e)
api.interrupt()
api.skip()
print(json.dumps(out))
'''


@unittest.skipUnless(have_binaries("tesserad", "tessera-worker"), "binaries not built")
@unittest.skipUnless(have_webuiapi(), "webuiapi not installed in %s (scripts/install-deps.sh --with-webuiapi)" % PYENV)
class WebuiapiTest(unittest.TestCase):
    def test_webuiapi_client(self):
        tmp = tempfile.mkdtemp(prefix="tessera-webuiapi-")
        self.addCleanup(shutil.rmtree, tmp, True)
        models = os.path.join(tmp, "models")
        os.makedirs(os.path.join(models, "VAE"))
        os.symlink(TINY_MODEL, os.path.join(models, "sd1-tiny"))
        farm = Farm(workers=1, daemon_args=["--models", models, "--webhooks", "false", "--api-keys", "bot:" + KEY],
                    worker_args=["--models", models])
        farm.__enter__()
        self.addCleanup(farm.close)
        p = subprocess.run([PYTHON, "-c", CLIENT, str(farm.port), KEY], capture_output=True, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        out = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertIn("Euler a", out["samplers"])
        self.assertIn("karras", out["schedulers"])
        self.assertEqual(out["models"], ["sd1-tiny"])
        self.assertEqual(out["current_model"], "sd1-tiny")
        self.assertEqual(out["upscalers"], ["None", "Lanczos", "Nearest"])
        self.assertEqual(len(out["latent"]), 6)
        self.assertEqual((out["vae"], out["loras"]), ([], []))
        self.assertEqual(out["embeddings"], {"loaded": {}, "skipped": {}})
        self.assertEqual(out["memory"], ["cuda", "ram"])
        self.assertEqual(out["scripts"], {"txt2img": [], "img2img": []})
        self.assertEqual((out["cmd_flags"], out["styles"]), ({}, []))
        self.assertEqual(out["progress"]["state"]["job_count"], 0)
        self.assertEqual(out["extras_size"], [48, 32])
        pi = out["png_info"]
        self.assertTrue(pi["info"].startswith("a cat\nNegative prompt: dog"), pi)
        self.assertEqual((pi["parameters"]["Seed"], pi["parameters"]["Negative prompt"]), ("5", "dog"))
        if "txt2img_error" in out:
            if "unsupported_type" in out["txt2img_error"]:
                self.skipTest("the worker cannot render txt2img yet (unsupported_type); the rest passed")
            self.fail(out["txt2img_error"])
        t = out["txt2img"]
        self.assertEqual((t["n"], t["size"], t["seeds"], t["parameters_prompt"]), (1, [64, 64], [77], "a photo of a cat"))
        self.assertEqual(len(t["infotexts"]), 1)
        self.assertEqual(out["img2img"], {"n": 1, "size": [64, 64]})


if __name__ == "__main__":
    unittest.main()
