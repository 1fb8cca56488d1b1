"""test_sd_jobs.py - txt2img / img2img / inpaint end to end on the tiny golden
models (tests/golden/models/, diffusers folders): `tessera render` with no
Redis and no daemon, and the same jobs through tesserad + Redis + a worker.

What is checked: PNGs a viewer opens (harness.read_png decodes them), their
A1111 `parameters` infotext, the result info (seeds, infotexts), that the farm
renders exactly the pixels `tessera render` renders for the same job, per-step
progress, cancel between steps, seeds resolved at submission, clear errors.
Needs the CLIP vocabulary (scripts/fetch-clip-vocab.sh)."""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ROOT = harness.REPO
MODELS = os.path.join(ROOT, "tests", "golden", "models")
TESSERA = harness.CLI


def models_dir(tmp):
    d = os.path.join(tmp, "models")
    os.makedirs(d, exist_ok=True)
    for m in ("sd1-tiny", "sd2-tiny", "sd1-inpaint-tiny"):
        os.symlink(os.path.join(MODELS, m), os.path.join(d, m))
    return d


def render(tmp, job, a1111=False, models=None):
    path = os.path.join(tmp, "job-%d.json" % time.monotonic_ns())
    with open(path, "w") as f:
        json.dump(job, f)
    out = os.path.join(tmp, "out-%d" % time.monotonic_ns())
    args = [TESSERA, "render", path, "--models", models or models_dir_cached(tmp), "--out", out, "--threads", "2"]
    if a1111:
        args.append("--a1111")
    p = subprocess.run(args, capture_output=True, text=True, timeout=300)
    return p, out


_MODELS = {}


def models_dir_cached(tmp):
    if tmp not in _MODELS:
        _MODELS[tmp] = models_dir(tmp)
    return _MODELS[tmp]


def pngs(out):
    files = sorted(os.listdir(out), key=lambda n: int(n.split("-")[1].split(".")[0]))
    res = []
    for n in files:
        with open(os.path.join(out, n), "rb") as f:
            res.append((n, f.read()))
    return res


def b64png(w, h, **kw):
    return base64.b64encode(harness.make_png(w, h, **kw)).decode()


def mask_png(w, h, box):
    rows = []
    x0, y0, x1, y1 = box
    import struct
    import zlib
    for y in range(h):
        row = bytearray([0])
        for x in range(w):
            v = 255 if (x0 <= x < x1 and y0 <= y < y1) else 0
            row += bytes([v, v, v])
        rows.append(bytes(row))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")
    return base64.b64encode(data).decode()


TXT = {"type": "txt2img", "prompt": "a photo of a (cat:1.3)", "negative_prompt": "blurry", "seed": 1234,
       "sampler_name": "Euler a", "steps": 6, "cfg_scale": 7, "width": 64, "height": 64, "batch_size": 2,
       "rng": "CPU", "model": "sd1-tiny"}


@unittest.skipUnless(harness.have_binaries("tessera", "tesserad", "tessera-worker"), "binaries not built")
class RenderTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tessera-sd-")

    def test_txt2img_render(self):
        p, out = render(self.tmp, TXT)
        self.assertEqual(p.returncode, 0, p.stderr)
        info = json.loads(p.stdout)
        self.assertEqual(info["seeds"], [1234, 1235])
        files = pngs(out)
        self.assertEqual(len(files), 2)
        w, h, ch, px, texts = harness.read_png(files[0][1])
        self.assertEqual((w, h, ch), (64, 64, 3))
        params = texts["parameters"]
        self.assertTrue(params.startswith("a photo of a (cat:1.3)\nNegative prompt: blurry\nSteps: 6, Sampler: Euler a, "
                                          "Schedule type: Automatic, CFG scale: 7.0, Seed: 1234, Size: 64x64, "
                                          "Model: sd1-tiny, RNG: CPU"), params)
        self.assertEqual(info["infotexts"][0], params)
        self.assertNotEqual(px, harness.read_png(files[1][1])[3], "two seeds gave the same image")
        # deterministic: the same job renders the same pixels
        p2, out2 = render(self.tmp, TXT)
        self.assertEqual(p2.returncode, 0, p2.stderr)
        self.assertEqual(harness.read_png(pngs(out2)[0][1])[3], px)

    def test_a1111_request(self):
        req = {"prompt": "a red car", "steps": 4, "width": 64, "height": 48, "seed": 5, "sampler_name": "DPM++ 2M Karras",
               "override_settings": {"sd_model_checkpoint": "sd1-tiny", "randn_source": "NV"}}
        p, out = render(self.tmp, req, a1111=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        w, h, ch, px, texts = harness.read_png(pngs(out)[0][1])
        self.assertEqual((w, h), (64, 48))
        self.assertIn("Sampler: DPM++ 2M, Schedule type: Karras", texts["parameters"])
        self.assertIn("RNG: NV", texts["parameters"])

    def test_sd2_v_prediction_and_samplers(self):
        for sampler in ("Euler", "DPM++ 2M", "Heun", "DDIM", "PLMS", "DPM++ SDE", "LMS", "DPM2 a"):
            job = dict(TXT, model="sd2-tiny", sampler_name=sampler, batch_size=1, steps=5, prompt="[cat:dog:0.5] AND a tree :0.5")
            p, out = render(self.tmp, job)
            self.assertEqual(p.returncode, 0, "%s: %s" % (sampler, p.stderr))
            w, h, ch, px, texts = harness.read_png(pngs(out)[0][1])
            self.assertIn("Sampler: %s," % sampler, texts["parameters"])

    def test_img2img_and_inpaint(self):
        init = b64png(64, 64, seed=3)
        job = {"type": "img2img", "image": init, "prompt": "a house", "denoising_strength": 0.6, "steps": 10,
               "sampler_name": "DPM++ 2M", "seed": 777, "rng": "CPU", "model": "sd1-tiny"}
        p, out = render(self.tmp, job)
        self.assertEqual(p.returncode, 0, p.stderr)
        w, h, ch, px, texts = harness.read_png(pngs(out)[0][1])
        self.assertEqual((w, h), (64, 64))
        self.assertIn("Denoising strength: 0.6", texts["parameters"])
        for sampler in ("DDIM", "Euler a"):
            p, out = render(self.tmp, dict(job, sampler_name=sampler))
            self.assertEqual(p.returncode, 0, p.stderr)
        mask = mask_png(64, 64, (16, 16, 48, 40))
        orig = harness.read_png(base64.b64decode(init))[3]
        for model, fill, full_res in (("sd1-tiny", 1, False), ("sd1-tiny", 0, True), ("sd1-tiny", 2, False),
                                      ("sd1-tiny", 3, True), ("sd1-inpaint-tiny", 1, False)):
            job = {"type": "inpaint", "image": init, "mask": mask, "prompt": "a cat", "denoising_strength": 0.8,
                   "steps": 6, "sampler_name": "Euler a", "seed": 3, "rng": "CPU", "model": model,
                   "inpainting_fill": fill, "inpaint_full_res": full_res, "mask_blur": 2}
            p, out = render(self.tmp, job)
            self.assertEqual(p.returncode, 0, "%s fill %d: %s" % (model, fill, p.stderr))
            w, h, ch, px, texts = harness.read_png(pngs(out)[0][1])
            self.assertEqual((w, h, ch), (64, 64, 3))
            # far outside the mask the picture is the original
            for (x, y) in ((0, 0), (63, 63), (2, 60)):
                i = (y * 64 + x) * 3
                self.assertEqual(px[i:i + 3], orig[i:i + 3], (model, fill, x, y))
            if model == "sd1-inpaint-tiny":
                self.assertIn("Conditional mask weight: 1.0", texts["parameters"])

    def test_tiled_diffusion(self):
        base = dict(TXT, batch_size=1, width=64, height=48)
        p, out = render(self.tmp, base)
        self.assertEqual(p.returncode, 0, p.stderr)
        plain = harness.read_png(pngs(out)[0][1])[3]
        # one tile covering the canvas is plain sampling
        p, out = render(self.tmp, dict(base, tiled_diffusion={"tile_width": 96, "tile_height": 96}))
        self.assertEqual(p.returncode, 0, p.stderr)
        w, h, ch, px, texts = harness.read_png(pngs(out)[0][1])
        self.assertEqual(px, plain)
        self.assertIn('Tiled Diffusion: "{', texts["parameters"])
        # real grids: 2x2 and more tiles, both methods, txt2img and img2img
        for td in ({"tile_width": 16, "tile_height": 16, "overlap": 8},
                   {"method": "Mixture of Diffusers", "tile_width": 20, "tile_height": 16, "overlap": 4}):
            p, out = render(self.tmp, dict(base, tiled_diffusion=td))
            self.assertEqual(p.returncode, 0, p.stderr)
            w, h, ch, px, texts = harness.read_png(pngs(out)[0][1])
            self.assertEqual((w, h), (64, 48))
            self.assertNotEqual(px, plain)
        job = {"type": "img2img", "image": b64png(64, 64, seed=3), "prompt": "a house", "denoising_strength": 0.5,
               "steps": 6, "seed": 1, "model": "sd1-tiny", "sampler_name": "Euler",
               "tiled_diffusion": {"tile_width": 16, "tile_height": 16}}
        p, out = render(self.tmp, job)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('Mixture of Diffusers', harness.read_png(pngs(out)[0][1])[4]["parameters"])
        p, out = render(self.tmp, dict(base, tiled_diffusion={"tile_width": 4}))
        self.assertEqual(p.returncode, 2)
        self.assertIn("tiled_diffusion.tile_width", p.stderr)

    def test_hires_fix(self):
        for up in ("Latent", "Latent (bicubic antialiased)", "Lanczos", "None"):
            job = dict(TXT, batch_size=1, width=32, height=32, enable_hr=True, hr_upscaler=up, hr_second_pass_steps=3,
                       denoising_strength=0.6, prompt="[cat:dog:1.5] in a garden")
            p, out = render(self.tmp, job)
            self.assertEqual(p.returncode, 0, "%s: %s" % (up, p.stderr))
            w, h, ch, px, texts = harness.read_png(pngs(out)[0][1])
            self.assertEqual((w, h), (64, 64))
            self.assertIn("Denoising strength: 0.6, RNG: CPU, Hires upscale: 2.0, Hires steps: 3, Hires upscaler: %s" % up,
                          texts["parameters"])
        req = {"prompt": "a red car", "steps": 4, "width": 32, "height": 24, "seed": 5, "enable_hr": True,
               "hr_resize_x": 48, "hr_resize_y": 48, "override_settings": {"sd_model_checkpoint": "sd1-tiny"}}
        p, out = render(self.tmp, req, a1111=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        w, h, ch, px, texts = harness.read_png(pngs(out)[0][1])
        self.assertEqual((w, h), (48, 48))
        self.assertIn("Hires resize: 48x48", texts["parameters"])

    def test_errors(self):
        p, out = render(self.tmp, dict(TXT, width=65))
        self.assertEqual(p.returncode, 2)
        self.assertIn("width", p.stderr)
        p, out = render(self.tmp, dict(TXT, model="no-such-model"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("not found", p.stderr)


@unittest.skipUnless(harness.have_binaries("tessera", "tesserad", "tessera-worker"), "binaries not built")
class FarmTest(unittest.TestCase):
    def test_farm_equals_render_and_progress(self):
        tmp = tempfile.mkdtemp(prefix="tessera-sdfarm-")
        md = models_dir(tmp)
        with harness.Farm(workers=1, worker_args=["--models", md, "--threads", "2"], lease_ms=5000) as farm:
            job = farm.submit(dict(TXT, seed=-1, steps=8))
            with harness.SSE(farm.port, "/v1/jobs/%s/events" % job["id"], timeout=120) as sse:
                events = list(sse.events())
            done = farm.wait(job["id"], timeout=120)
            self.assertEqual(done["state"], "succeeded", done)
            seed = done["spec"]["seed"]
            self.assertGreaterEqual(seed, 0)
            self.assertEqual(done["info"]["seeds"], [seed, seed + 1])
            steps = [d.get("step") for (_id, ev, d) in events if ev == "progress"]
            self.assertTrue(any(s for s in steps if s), "no per-step progress: %r" % events[:10])
            img = farm.image(job["id"], 0)
            w, h, ch, px, texts = harness.read_png(img)
            self.assertIn("Seed: %d," % seed, texts["parameters"])
            # the same job rendered locally gives the same pixels
            p, out = render(tmp, dict(TXT, seed=seed, steps=8), models=md)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(harness.read_png(pngs(out)[0][1])[3], px)

            # img2img through the farm
            j2 = farm.submit({"type": "img2img", "image": b64png(64, 64, seed=9), "prompt": "x", "steps": 4,
                              "seed": 1, "model": "sd1-tiny", "sampler_name": "Euler"})
            d2 = farm.wait(j2["id"], timeout=120)
            self.assertEqual(d2["state"], "succeeded", d2)

            # cancel while sampling: a long job stops between steps
            j3 = farm.submit(dict(TXT, steps=150, width=256, height=256, batch_size=1, seed=1))
            deadline = time.time() + 60
            while time.time() < deadline:
                st, cur = farm.json("GET", "/v1/jobs/" + j3["id"])
                if cur["state"] == "running" and (cur["progress"]["step"] or 0) >= 2:
                    break
                time.sleep(0.05)
            st, _ = farm.json("DELETE", "/v1/jobs/" + j3["id"])
            self.assertIn(st, (200, 202))
            d3 = farm.wait(j3["id"], timeout=60)
            self.assertEqual(d3["state"], "canceled", d3)

            # a model the worker does not have fails the job with the reason
            j4 = farm.submit(dict(TXT, model="missing-model", batch_size=1))
            d4 = farm.wait(j4["id"], timeout=60)
            self.assertEqual(d4["state"], "failed")
            self.assertIn("not found", d4["error"]["message"])


if __name__ == "__main__":
    unittest.main()
