"""test_esrgan_extras.py - extras jobs with ESRGAN-family AI upscalers through
the whole farm (redis-server, tesserad, tessera-worker with --models).

The worker's models dir holds the tiny RRDBNet of tests/golden/esrgan/x4.safetensors
as ESRGAN/tiny.safetensors and as RealESRGAN/RealESRGAN_x4plus.safetensors
("R-ESRGAN 4x+"). The upscaled image must match the golden case farm_x4 of
tests/golden/make_esrgan_golden.py (A1111's 192/8 tiles, torch float64
reference) within one level; a missing model and a pickle fail the job with
model_unavailable and a message naming the file; a malformed name is refused
at submission (422)."""
import json
import os
import shutil
import struct
import tempfile
import unittest
import zlib

from harness import REPO, Farm, extras_job, have_binaries, make_png, read_png

GOLDEN = os.path.join(REPO, "tests", "golden", "esrgan")


def safetensors_u8(path, name):
    """(shape, bytes) of a U8 tensor of a .safetensors file (stdlib only)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    hdr = json.loads(data[8:8 + n])
    t = hdr[name]
    assert t["dtype"] == "U8", t
    b, e = t["data_offsets"]
    return t["shape"], data[8 + n + b:8 + n + e]


def png_rgb(w, h, pixels):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    raw = b"".join(b"\0" + pixels[y * w * 3:(y + 1) * w * 3] for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@unittest.skipUnless(have_binaries("tesserad", "tessera-worker"), "binaries not built")
class EsrganExtrasTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tessera-esrgan-it-")
        md = cls.models = os.path.join(cls.tmp, "models")
        for d in ("ESRGAN", "RealESRGAN"):
            os.makedirs(os.path.join(md, d))
        shutil.copy(os.path.join(GOLDEN, "x4.safetensors"), os.path.join(md, "ESRGAN", "tiny.safetensors"))
        shutil.copy(os.path.join(GOLDEN, "x4.safetensors"),
                    os.path.join(md, "RealESRGAN", "RealESRGAN_x4plus.safetensors"))
        with open(os.path.join(md, "ESRGAN", "pickled.pth"), "wb") as f:
            f.write(b"PK\x03\x04" + b"\0" * 60)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def farm(self):
        return Farm(workers=1, worker_args=["--models", self.models, "--threads", "2"], lease_ms=5000)

    def test_upscale_matches_golden(self):
        images = os.path.join(GOLDEN, "images.safetensors")
        (h, w, _), src = safetensors_u8(images, "in_farm_x4")
        (eh, ew, _), want = safetensors_u8(images, "out_farm_x4")
        with self.farm() as farm:
            for name, shown in (("ESRGAN/tiny", "tiny"), ("r-esrgan 4x+", "R-ESRGAN 4x+")):
                job = farm.submit(extras_job(png_rgb(w, h, src), resize=4, upscaler=name))
                final = farm.wait(job["id"], timeout=120)
                self.assertEqual(final["state"], "succeeded", final)
                gw, gh, ch, px, texts = read_png(farm.image(job["id"]))
                self.assertEqual((gw, gh, ch), (ew, eh, 3))
                diff = [abs(a - b) for a, b in zip(px, want)]
                self.assertLessEqual(max(diff), 1)
                self.assertLessEqual(sum(1 for d in diff if d), len(diff) // 200)
                self.assertEqual(texts["postprocessing"],
                                 "Postprocess upscale by: 4, Postprocess upscaler: %s" % shown)
            # RGBA keeps its alpha; size mode with crop: Lanczos after the model pass
            job = farm.submit(extras_job(make_png(30, 20, alpha=True), width=100, height=100, upscaler="ESRGAN/tiny"))
            final = farm.wait(job["id"], timeout=120)
            self.assertEqual(final["state"], "succeeded", final)
            gw, gh, ch, px, texts = read_png(farm.image(job["id"]))
            self.assertEqual((gw, gh, ch), (100, 100, 4))
            self.assertIn("Postprocess upscaler: tiny", texts["postprocessing"])

    def test_failures(self):
        with self.farm() as farm:
            job = farm.submit(extras_job(make_png(16, 16), resize=2, upscaler="ESRGAN/nothere"))
            final = farm.wait(job["id"], timeout=60)
            self.assertEqual(final["state"], "failed", final)
            self.assertEqual(final["error"]["code"], "model_unavailable")
            self.assertIn("ESRGAN/nothere.safetensors not found", final["error"]["message"])
            job = farm.submit(extras_job(make_png(16, 16), resize=2, upscaler="ESRGAN/pickled"))
            final = farm.wait(job["id"], timeout=60)
            self.assertEqual(final["state"], "failed", final)
            self.assertEqual(final["error"]["code"], "model_unavailable")
            self.assertIn("pickle", final["error"]["message"])
            self.assertIn("pickled.safetensors", final["error"]["message"])
            for bad in ("ESRGAN/../secret", "ESRGAN_9x", "SwinIR/x"):
                st, body = farm.json("POST", "/v1/jobs", extras_job(make_png(16, 16), upscaler=bad))
                self.assertEqual(st, 422, body)
                self.assertIn("upscaler", json.dumps(body))


if __name__ == "__main__":
    unittest.main()
