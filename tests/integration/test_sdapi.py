"""test_sdapi.py - the AUTOMATIC1111-compatible API (/sdapi/v1/*) of tesserad.

Real redis-server and tesserad processes. SdapiDaemonTest needs no worker: the
worker's side of a job (claim, progress, images, finish) is played by running
the same Lua scripts a worker runs, so the held render requests, interrupt,
client disconnects, timeouts and shutdown can be driven step by step.
SdapiFarmTest adds real tessera-worker processes: extra-single-image,
txt2img and img2img end to end on the tiny SD1 model (tests/golden/models).

Binaries come from $TESSERA_BUILD (default: <repo>/build).
"""
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (REPO, Daemon, Farm, RedisServer, have_binaries, http_request, json_body,  # noqa: E402
                     make_png, read_png)

PREFIX = "tessera:"
TINY_MODEL = os.path.join(REPO, "tests", "golden", "models", "sd1-tiny")
ERROR_KEYS = {"error", "detail", "body", "errors"}


def b64(data):
    return base64.b64encode(data).decode()


def make_models_dir(root):
    """A models directory in the A1111 layout with small fake files; the hash
    cache the workers write knows a.safetensors only."""
    os.makedirs(root)
    for sub in ("Stable-diffusion/sub", "VAE", "Lora", "embeddings"):
        os.makedirs(os.path.join(root, sub))
    files = {"a.safetensors": b"fake checkpoint a", "c.vae.safetensors": b"a vae beside",
             "notes.txt": b"not a model", "Stable-diffusion/sub/b.safetensors": b"fake b",
             "VAE/v1.safetensors": b"vae", "Lora/style.safetensors": b"lora", "Lora/readme.md": b"",
             "embeddings/bad-hands.pt": b"emb", "embeddings/good.safetensors": b"emb2"}
    for rel, data in files.items():
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)
    os.symlink(TINY_MODEL, os.path.join(root, "sd1-tiny"))
    a = os.path.realpath(os.path.join(root, "a.safetensors"))
    st = os.stat(a)
    sha = hashlib.sha256(files["a.safetensors"]).hexdigest()
    cache = {"version": 1, "files": {a: {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha}}}
    with open(os.path.join(root, ".tessera-hashes.json"), "w") as f:
        json.dump(cache, f)
    return sha


class Held(threading.Thread):
    """One HTTP request in the background (a render call that blocks)."""

    def __init__(self, port, method, path, body=None, headers=None, timeout=60):
        threading.Thread.__init__(self, daemon=True)
        self.args = (port, method, path, body, headers, timeout)
        self.result = None
        self.error = None
        self.start()

    def run(self):
        try:
            self.result = http_request(*self.args)
        except Exception as e:  # noqa: BLE001 - reported by get()
            self.error = e

    def get(self, timeout=30):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("the request did not return within %ss" % timeout)
        if self.error:
            raise self.error
        st, h, data = self.result
        return st, h, json_body(st, data)


@unittest.skipUnless(have_binaries("tesserad"), "tesserad not built")
class SdapiDaemonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tessera-sdapi-")
        cls.models = os.path.join(cls.tmp, "models")
        cls.sha_a = make_models_dir(cls.models)
        cls.redis = RedisServer(cls.tmp)
        cls.redis.start()
        cls.d = cls.daemon()

    @classmethod
    def daemon(cls, *flags):
        return Daemon(cls.redis.url, cls.tmp, ["--webhooks", "false", "--log-level", "debug", "--models",
                                               cls.models] + list(flags))

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        cls.redis.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if rc != 0:
            raise AssertionError("tesserad exited with %s" % rc)

    def setUp(self):
        self.client()("FLUSHDB")  # every test starts with an empty farm

    def client(self):
        r = self.redis.client()
        self.addCleanup(r.close)
        return r

    def get(self, path, d=None):
        st, h, body = (d or self.d).json("GET", path)
        self.assertEqual(st, 200, body)
        self.assertEqual(h["content-type"], "application/json")
        return body

    def a1111_error(self, st, h, body, status, error=None):
        self.assertEqual(st, status, body)
        self.assertEqual(set(body), ERROR_KEYS, body)
        self.assertEqual(h["content-type"], "application/json")
        if error:
            self.assertEqual(body["error"], error, body)
        return body

    # ---- worker side (the Lua scripts a worker runs) ----
    def wait_job(self, r, known=(), timeout=10):
        """The id of a job submitted through /sdapi/v1 that is not in known."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for m in r("SMEMBERS", PREFIX + "sdapi:jobs") or []:
                if m.decode() not in known:
                    return m.decode()
            time.sleep(0.02)
        raise AssertionError("no sdapi job appeared")

    def claim(self, r, jid, worker="fake"):
        stream, entry = r("HMGET", PREFIX + "job:" + jid, "stream", "entry")
        res = r.script("claim", PREFIX, jid, stream, entry, worker, 3600)
        self.assertEqual(res[0], b"run", res)
        return int(res[1])

    def finish(self, r, jid, attempt, state="succeeded", images=(), info=None, code="", msg="", worker="fake"):
        for n, png in enumerate(images):
            r("SET", "%sjob:%s:image:%d:%d" % (PREFIX, jid, attempt, n), png)
        res = r.script("finish", PREFIX, jid, worker, state, code, msg, len(images), attempt, 3600,
                       json.dumps(info) if info else "")
        self.assertEqual(res[0], b"ok", res)

    # ------------------------------------------------------------ listings
    def test_listings(self):
        samplers = self.get("/sdapi/v1/samplers")
        self.assertIsInstance(samplers, list)
        self.assertEqual(samplers[0]["name"], "DPM++ 2M")
        for s in samplers:
            self.assertEqual(set(s), {"name", "aliases", "options"})
        self.assertIn("Euler a", [s["name"] for s in samplers])
        schedulers = self.get("/sdapi/v1/schedulers")
        for s in schedulers:
            self.assertEqual(set(s), {"name", "label", "aliases", "default_rho", "need_inner_model"})
        self.assertIn("Karras", [s["label"] for s in schedulers])
        ups = self.get("/sdapi/v1/upscalers")
        self.assertEqual([u["name"] for u in ups], ["None", "Lanczos", "Nearest"])
        for u in ups:
            self.assertEqual(u, {"name": u["name"], "model_name": None, "model_path": None, "model_url": None,
                                 "scale": 4.0})
        self.assertEqual([m["name"] for m in self.get("/sdapi/v1/latent-upscale-modes")],
                         ["Latent", "Latent (antialiased)", "Latent (bicubic)", "Latent (bicubic antialiased)",
                          "Latent (nearest)", "Latent (nearest-exact)"])
        self.assertEqual(self.get("/sdapi/v1/sd-vae"),
                         [{"model_name": "v1.safetensors",
                           "filename": os.path.join(os.path.realpath(self.models), "VAE", "v1.safetensors")}])
        loras = self.get("/sdapi/v1/loras")
        self.assertEqual(loras, [{"name": "style", "alias": "style", "metadata": {},
                                  "path": os.path.join(os.path.realpath(self.models), "Lora", "style.safetensors")}])
        emb = self.get("/sdapi/v1/embeddings")
        self.assertEqual(emb["loaded"], {})
        self.assertEqual(sorted(emb["skipped"]), ["bad-hands", "good"])
        self.assertEqual(set(emb["skipped"]["good"]), {"step", "sd_checkpoint", "sd_checkpoint_name", "shape",
                                                       "vectors"})
        mem = self.get("/sdapi/v1/memory")
        self.assertEqual(set(mem["ram"]), {"free", "used", "total"})
        self.assertGreater(mem["ram"]["total"], mem["ram"]["free"])
        self.assertIn("error", mem["cuda"])
        self.assertEqual(self.get("/sdapi/v1/cmd-flags"), {})
        for p in ("prompt-styles", "face-restorers", "hypernetworks", "realesrgan-models"):
            self.assertEqual(self.get("/sdapi/v1/" + p), [])
        self.assertEqual(self.get("/sdapi/v1/scripts"), {"txt2img": [], "img2img": []})
        for p in ("refresh-checkpoints", "refresh-vae", "refresh-loras", "refresh-embeddings"):
            st, _, data = self.d.request("POST", "/sdapi/v1/" + p)
            self.assertEqual((st, data.strip()), (200, b"null"))
        opts = self.get("/sdapi/v1/options")
        for k in ("sd_model_checkpoint", "sd_vae", "CLIP_stop_at_last_layers", "eta_noise_seed_delta",
                  "randn_source", "samples_format"):
            self.assertIn(k, opts)
        self.assertEqual(opts["sd_model_checkpoint"], "a.safetensors [%s]" % self.sha_a[:10])  # the first one

    def test_progress_idle(self):
        p = self.get("/sdapi/v1/progress")
        self.assertEqual(set(p), {"progress", "eta_relative", "state", "current_image", "textinfo", "current_task"})
        self.assertEqual((p["progress"], p["eta_relative"], p["current_image"], p["current_task"]), (0, 0, None, None))
        self.assertEqual(set(p["state"]), {"skipped", "interrupted", "stopping_generation", "job", "job_count",
                                           "job_timestamp", "job_no", "sampling_step", "sampling_steps"})
        self.assertEqual(p["state"]["job_count"], 0)

    def test_sd_models_and_hash_cache(self):
        models = self.get("/sdapi/v1/sd-models")
        root = os.path.realpath(self.models)
        by = {m["model_name"]: m for m in models}
        self.assertEqual(sorted(by), ["a", "sd1-tiny", "sub_b"])
        for m in models:
            self.assertEqual(set(m), {"title", "model_name", "hash", "sha256", "filename", "config"})
            self.assertIsNone(m["config"])
        self.assertEqual(by["a"], {"title": "a.safetensors [%s]" % self.sha_a[:10], "model_name": "a",
                                   "hash": self.sha_a[:10], "sha256": self.sha_a,
                                   "filename": os.path.join(root, "a.safetensors"), "config": None})
        self.assertEqual((by["sub_b"]["title"], by["sub_b"]["hash"], by["sub_b"]["sha256"]),
                         ("sub/b.safetensors", None, None))
        self.assertEqual(by["sub_b"]["filename"], os.path.join(root, "Stable-diffusion", "sub", "b.safetensors"))
        self.assertEqual((by["sd1-tiny"]["title"], by["sd1-tiny"]["hash"]), ("sd1-tiny", None))
        # a changed file is not trusted to the cache any more
        path = os.path.join(self.models, "a.safetensors")
        st = os.stat(path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
        try:
            by = {m["model_name"]: m for m in self.get("/sdapi/v1/sd-models")}
            self.assertEqual((by["a"]["title"], by["a"]["hash"]), ("a.safetensors", None))
        finally:
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

    def test_options(self):
        st, h, e = self.d.json("POST", "/sdapi/v1/options", {"sd_model_checkpoint": "nope.safetensors"})
        e = self.a1111_error(st, h, e, 500, "RuntimeError")
        self.assertIn("nope.safetensors", e["errors"])
        for name in ("a", "a.safetensors", "a.safetensors [%s]" % self.sha_a[:10], self.sha_a[:10], "sub_b",
                     "sub/b.safetensors", "sd1-tiny"):
            st, _, data = self.d.request("POST", "/sdapi/v1/options", {"sd_model_checkpoint": name})
            self.assertEqual((st, data.strip()), (200, b"null"), name)
        st, _, data = self.d.request("POST", "/sdapi/v1/options",
                                     {"sd_model_checkpoint": "sub_b", "CLIP_stop_at_last_layers": 2,
                                      "my_extension_option": {"x": [1, 2]}})
        self.assertEqual(st, 200, data)
        o = self.get("/sdapi/v1/options")
        self.assertEqual((o["sd_model_checkpoint"], o["CLIP_stop_at_last_layers"], o["my_extension_option"]),
                         ("sub_b", 2, {"x": [1, 2]}))
        # shared by every daemon of the farm
        d2 = self.daemon()
        try:
            self.assertEqual(self.get("/sdapi/v1/options", d2)["CLIP_stop_at_last_layers"], 2)
        finally:
            self.assertEqual(d2.stop(), 0)
        # the stored options reach the job: clip_skip and the model
        r = self.client()
        known = set()
        held = Held(self.d.port, "POST", "/sdapi/v1/txt2img", {"prompt": "x", "steps": 3, "width": 64,
                                                               "height": 64})
        jid = self.wait_job(r, known)
        spec = json.loads(r("HGET", PREFIX + "job:" + jid, "spec"))
        self.assertEqual((spec["clip_skip"], spec["model"]), (2, "sub_b"))
        self.assertEqual(self.d.json("DELETE", "/v1/jobs/" + jid)[0], 200)
        st, _, body = held.get()
        self.assertEqual((st, body["images"]), (200, []))

    # ------------------------------------------------------------ errors
    def test_errors(self):
        st, h, e = self.d.json("GET", "/sdapi/v1/nothing-here")
        self.assertEqual(self.a1111_error(st, h, e, 404)["detail"], "Not Found")
        st, h, e = self.d.json("GET", "/sdapi/v1/txt2img")
        self.a1111_error(st, h, e, 405)
        self.assertIn("POST", h["allow"])
        st, h, e = self.d.json("POST", "/sdapi/v1/txt2img", b"{not json")
        self.a1111_error(st, h, e, 422)
        st, h, e = self.d.json("POST", "/sdapi/v1/txt2img", [1, 2])
        self.a1111_error(st, h, e, 422)
        st, h, e = self.d.json("POST", "/sdapi/v1/txt2img", {"sampler_name": "No Such Sampler"})
        self.assertIn("Sampler not found", self.a1111_error(st, h, e, 400, "HTTPException")["detail"])
        st, h, e = self.d.json("POST", "/sdapi/v1/txt2img", {"steps": "many"})
        self.a1111_error(st, h, e, 422, "RequestValidationError")
        st, h, e = self.d.json("POST", "/sdapi/v1/txt2img", {"width": 100000})  # native limits apply
        self.a1111_error(st, h, e, 422)
        st, h, e = self.d.json("POST", "/sdapi/v1/img2img", {"prompt": "x"})
        self.assertEqual(self.a1111_error(st, h, e, 404, "HTTPException")["detail"], "Init image not found")
        st, h, e = self.d.json("POST", "/sdapi/v1/img2img", {"init_images": ["@@not base64@@"]})
        self.assertIn(st, (400, 422, 500))
        self.a1111_error(st, h, e, st)
        st, h, e = self.d.json("POST", "/sdapi/v1/extra-single-image", {"image": "@@"})
        self.assertIn(st, (400, 422, 500))
        self.a1111_error(st, h, e, st)
        st, h, e = self.d.json("POST", "/sdapi/v1/png-info", {"image": "@@not base64@@"})
        self.assertEqual(self.a1111_error(st, h, e, 500)["detail"], "Invalid encoded image")
        st, h, e = self.d.json("POST", "/sdapi/v1/png-info", {"image": b64(b"not an image at all")})
        self.a1111_error(st, h, e, 500)
        # nothing was queued by any of these
        self.assertEqual(self.client()("ZCARD", PREFIX + "jobs:state:queued"), 0)

    def test_auth_basic_and_bearer(self):
        d = self.daemon("--api-keys", "alice:k-alice,bob:k-bob")
        try:
            st, h, e = d.json("GET", "/sdapi/v1/samplers")
            self.a1111_error(st, h, e, 401, "HTTPException")
            self.assertEqual(h["www-authenticate"], "Basic")
            good = "Basic " + b64(b"anyone:k-bob")
            self.assertEqual(d.request("GET", "/sdapi/v1/samplers", headers={"Authorization": good})[0], 200)
            self.assertEqual(d.request("GET", "/sdapi/v1/samplers",
                                       headers={"Authorization": "Bearer k-alice"})[0], 200)
            for bad in ("Basic " + b64(b"alice:wrong"), "Basic " + b64(b"no-colon"), "Basic !!!", "Bearer nope"):
                st, h, e = d.json("GET", "/sdapi/v1/samplers", headers={"Authorization": bad})
                self.a1111_error(st, h, e, 401)
            # Basic is for /sdapi only; the native API keeps Bearer
            self.assertEqual(d.request("GET", "/v1/jobs", headers={"Authorization": good})[0], 401)
        finally:
            self.assertEqual(d.stop(), 0)

    # ------------------------------------------------------------ png-info
    def test_png_info(self):
        text = ("a cat, best quality\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7.0, "
                "Seed: 1234, Size: 512x768, Model hash: %s, Model: a" % self.sha_a[:10])
        png = make_png(8, 8, text={"parameters": text, "Software": "tessera"})
        st, _, body = self.d.json("POST", "/sdapi/v1/png-info", {"image": b64(png)})
        self.assertEqual(st, 200, body)
        self.assertEqual(body["info"], text)
        self.assertEqual(body["items"], {"Software": "tessera"})
        p = body["parameters"]
        self.assertEqual((p["Prompt"], p["Negative prompt"], p["Steps"], p["Sampler"], p["Seed"]),
                         ("a cat, best quality", "dog", "20", "Euler a", "1234"))
        self.assertEqual((p["Size-1"], p["Size-2"]), ("512", "768"))
        # data: URL prefix, and an image without parameters
        st, _, body = self.d.json("POST", "/sdapi/v1/png-info", {"image": "data:image/png;base64," + b64(make_png(4, 4))})
        self.assertEqual((st, body["info"], body["items"]), (200, "", {}))
        st, _, body = self.d.json("POST", "/sdapi/v1/png-info", {"image": ""})
        self.assertEqual((st, body["info"]), (200, ""))

    # ------------------------------------------------------------ render, worker played by Lua
    def test_txt2img_held_until_done(self):
        r = self.client()
        req = {"prompt": "a red fox", "negative_prompt": "blurry", "seed": 42, "steps": 7, "width": 64,
               "height": 64, "batch_size": 2, "cfg_scale": 5, "force_task_id": "task(abc)"}
        held = Held(self.d.port, "POST", "/sdapi/v1/txt2img", req)
        jid = self.wait_job(r)
        g = self.d.json("GET", "/v1/jobs/" + jid)[2]
        self.assertEqual((g["type"], g["state"], g["spec"]["steps"], g["spec"]["sampler_name"]),
                         ("txt2img", "queued", 7, "Euler"))
        attempt = self.claim(r, jid)
        self.assertEqual(r.script("progress", PREFIX, jid, "fake", "0.5", 3, 7, "sampling")[0], b"ok")
        r("SET", PREFIX + "job:%s:preview" % jid, make_png(4, 4))
        p = self.get("/sdapi/v1/progress")
        self.assertEqual((p["current_task"], p["progress"], p["textinfo"]), (jid, 0.5, "sampling"))
        self.assertEqual((p["state"]["sampling_step"], p["state"]["sampling_steps"], p["state"]["job_count"]),
                         (3, 7, 1))
        self.assertRegex(p["state"]["job_timestamp"], r"^\d{14}$")
        self.assertEqual(base64.b64decode(p["current_image"]), make_png(4, 4))
        self.assertGreaterEqual(p["eta_relative"], 0)
        time.sleep(0.3)
        self.assertTrue(held.is_alive())  # still waiting
        pngs = [make_png(64, 64, seed=1), make_png(64, 64, seed=2)]
        info = {"seeds": [42, 43], "subseeds": [7, 8], "infotexts": ["t1", "t2"], "model": "sd1-tiny",
                "model_hash": None, "width": 64, "height": 64, "sampler_name": "Euler", "steps": 7,
                "job_timestamp": "20250101120000"}
        self.finish(r, jid, attempt, images=pngs, info=info)
        st, h, body = held.get()
        self.assertEqual(st, 200, body)
        self.assertEqual(set(body), {"images", "parameters", "info"})
        self.assertEqual([base64.b64decode(i) for i in body["images"]], pngs)
        self.assertEqual((body["parameters"]["prompt"], body["parameters"]["seed"]), ("a red fox", 42))
        inf = json.loads(body["info"])
        self.assertEqual((inf["all_seeds"], inf["infotexts"], inf["sd_model_name"]), ([42, 43], ["t1", "t2"],
                                                                                       "sd1-tiny"))
        self.assertEqual(r("SISMEMBER", PREFIX + "sdapi:jobs", jid), 0)
        # send_images false: no images, same shape
        held = Held(self.d.port, "POST", "/sdapi/v1/txt2img", {"steps": 2, "width": 64, "height": 64,
                                                               "send_images": False})
        jid = self.wait_job(r)
        attempt = self.claim(r, jid)
        self.finish(r, jid, attempt, images=[make_png(8, 8)])
        st, _, body = held.get()
        self.assertEqual((st, body["images"]), (200, []))
        # the route is a metrics label
        text = self.d.request("GET", "/metrics")[2].decode()
        self.assertIn('tessera_http_requests_total{route="/sdapi/v1/txt2img",code="200"}', text)

    def test_img2img_failed_job(self):
        r = self.client()
        held = Held(self.d.port, "POST", "/sdapi/v1/img2img",
                    {"init_images": [b64(make_png(64, 64))], "steps": 4, "denoising_strength": 0.5})
        jid = self.wait_job(r)
        self.assertEqual(json.loads(r("HGET", PREFIX + "job:" + jid, "spec"))["denoising_strength"], 0.5)
        attempt = self.claim(r, jid)
        self.finish(r, jid, attempt, state="failed", code="model_not_found", msg="no checkpoint named x")
        st, h, e = held.get()
        e = self.a1111_error(st, h, e, 500)
        self.assertIn("model_not_found", e["detail"])
        self.assertIn("no checkpoint named x", e["detail"])

    def test_extra_single_image_held(self):
        r = self.client()
        held = Held(self.d.port, "POST", "/sdapi/v1/extra-single-image",
                    {"image": b64(make_png(16, 16)), "upscaling_resize": 2, "upscaler_1": "Lanczos"})
        jid = self.wait_job(r)
        spec = json.loads(r("HGET", PREFIX + "job:" + jid, "spec"))
        self.assertEqual((spec["upscaler"], spec["resize"]), ("Lanczos", 2))
        attempt = self.claim(r, jid)
        out = make_png(32, 32)
        self.finish(r, jid, attempt, images=[out])
        st, _, body = held.get()
        self.assertEqual(st, 200, body)
        self.assertEqual(body["html_info"], "")
        self.assertEqual(base64.b64decode(body["image"]), out)

    def test_interrupt_running_returns_images_so_far(self):
        r = self.client()
        # a job of the native API is not touched by /interrupt
        st, _, native = self.d.json("POST", "/v1/jobs", {"type": "extras", "image": b64(make_png(4, 4))})
        self.assertEqual(st, 202)
        self.claim(r, native["id"], "other")
        held = Held(self.d.port, "POST", "/sdapi/v1/txt2img", {"steps": 20, "width": 64, "height": 64,
                                                               "n_iter": 2})
        jid = self.wait_job(r)
        attempt = self.claim(r, jid)
        st, _, body = self.d.json("POST", "/sdapi/v1/interrupt")
        self.assertEqual((st, body), (200, {}))
        self.assertEqual(r("HGET", PREFIX + "job:" + jid, "cancel"), b"1")
        self.assertNotEqual(r("HGET", PREFIX + "job:" + native["id"], "cancel"), b"1")
        # the worker notices and stops after the first image
        first = make_png(64, 64, seed=9)
        self.finish(r, jid, attempt, state="canceled", images=[first], code="canceled", msg="canceled")
        st, _, body = held.get()
        self.assertEqual(st, 200, body)
        self.assertEqual([base64.b64decode(i) for i in body["images"]], [first])
        # skip does the same; with nothing running it is a no-op
        self.assertEqual(self.d.json("POST", "/sdapi/v1/skip")[:3:2], (200, {}))
        self.assertEqual(r("SMEMBERS", PREFIX + "sdapi:jobs"), [])
        self.assertEqual(self.d.json("DELETE", "/v1/jobs/" + native["id"])[0], 202)

    def raw_post(self, path, body):
        """Send a request on a raw socket and return the socket without reading."""
        data = json.dumps(body).encode()
        s = socket.create_connection(("127.0.0.1", self.d.port))
        s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                  % (path.encode(), len(data)) + data)
        return s

    def test_client_disconnect_cancels(self):
        r = self.client()
        # queued: canceled at once
        s = self.raw_post("/sdapi/v1/txt2img", {"steps": 3, "width": 64, "height": 64})
        jid = self.wait_job(r)
        s.close()
        deadline = time.time() + 10
        while time.time() < deadline and r("HGET", PREFIX + "job:" + jid, "state") != b"canceled":
            time.sleep(0.05)
        self.assertEqual(r("HGET", PREFIX + "job:" + jid, "state"), b"canceled")
        # running: the worker is asked to stop
        s = self.raw_post("/sdapi/v1/txt2img", {"steps": 3, "width": 64, "height": 64})
        jid2 = self.wait_job(r, known={jid})
        attempt = self.claim(r, jid2)
        s.shutdown(socket.SHUT_RDWR)
        s.close()
        deadline = time.time() + 10
        while time.time() < deadline and r("HGET", PREFIX + "job:" + jid2, "cancel") != b"1":
            time.sleep(0.05)
        self.assertEqual(r("HGET", PREFIX + "job:" + jid2, "cancel"), b"1")
        self.finish(r, jid2, attempt, state="canceled", code="canceled", msg="canceled")
        time.sleep(0.2)
        # the daemon holds nothing and still answers
        self.assertEqual(self.d.request("GET", "/sdapi/v1/progress")[0], 200)
        text = self.d.request("GET", "/metrics")[2].decode()
        self.assertIn('tessera_http_requests_total{route="/sdapi/v1/txt2img",code="499"} 2', text)

    def test_timeout_and_shutdown(self):
        d = self.daemon("--sdapi-timeout-s", "1", "--key-prefix", "tmo:")
        try:
            r = self.client()
            t0 = time.time()
            st, h, e = d.json("POST", "/sdapi/v1/txt2img", {"steps": 3, "width": 64, "height": 64})
            self.a1111_error(st, h, e, 504)
            self.assertLess(time.time() - t0, 10)
            ids = r("ZRANGE", "tmo:jobs", 0, -1)
            self.assertEqual(len(ids), 1)
            self.assertEqual(r("HGET", b"tmo:job:" + ids[0], "state"), b"canceled")
        finally:
            self.assertEqual(d.stop(), 0)
        # a held request when the daemon stops: 503, the job canceled, exit 0
        d = self.daemon("--key-prefix", "shut:")
        try:
            held = Held(d.port, "POST", "/sdapi/v1/txt2img", {"steps": 3, "width": 64, "height": 64})
            deadline = time.time() + 10
            while time.time() < deadline and not r("ZRANGE", "shut:jobs", 0, -1):
                time.sleep(0.02)
            time.sleep(0.1)
            d.signal(signal.SIGTERM)
            st, h, e = held.get()
            self.a1111_error(st, h, e, 503)
            ids = r("ZRANGE", "shut:jobs", 0, -1)
            self.assertEqual(r("HGET", b"shut:job:" + ids[0], "state"), b"canceled")
        finally:
            self.assertEqual(d.stop(), 0)

    def test_finished_while_not_subscribed(self):
        """A job that finishes while the daemon cannot see its event is still answered (state poll)."""
        r = self.client()
        held = Held(self.d.port, "POST", "/sdapi/v1/txt2img", {"steps": 3, "width": 64, "height": 64})
        jid = self.wait_job(r)
        attempt = self.claim(r, jid)
        # finish without the event: write what finish.lua writes, minus PUBLISH
        r("SET", "%sjob:%s:image:%d:0" % (PREFIX, jid, attempt), make_png(8, 8))
        r("HSET", PREFIX + "job:" + jid, "images", 1, "result_attempt", attempt, "state", "succeeded")
        st, _, body = held.get(timeout=15)
        self.assertEqual((st, len(body["images"])), (200, 1))


# ---------------------------------------------------------------- real workers
def worker_models_dir(tmp):
    d = os.path.join(tmp, "models")
    os.makedirs(d)
    os.symlink(TINY_MODEL, os.path.join(d, "sd1-tiny"))
    return d


@unittest.skipUnless(have_binaries("tesserad", "tessera-worker"), "binaries not built")
class SdapiFarmTest(unittest.TestCase):
    def farm(self):
        tmp = tempfile.mkdtemp(prefix="tessera-sdapi-farm-")
        self.addCleanup(shutil.rmtree, tmp, True)
        models = worker_models_dir(tmp)
        f = Farm(workers=1, daemon_args=["--models", models, "--webhooks", "false"],
                 worker_args=["--models", models])
        f.__enter__()
        self.addCleanup(f.close)
        return f

    def test_extra_single_image(self):
        farm = self.farm()
        src = make_png(20, 10, text={"parameters": "a cat\nSteps: 20, Seed: 1, Sampler: Euler"})
        st, body = farm.json("POST", "/sdapi/v1/extra-single-image",
                             {"image": b64(src), "upscaling_resize": 3, "upscaler_1": "Lanczos"})
        self.assertEqual(st, 200, body)
        w, h, ch, _, texts = read_png(base64.b64decode(body["image"]))
        self.assertEqual((w, h), (60, 30))
        self.assertEqual(texts["parameters"], "a cat\nSteps: 20, Seed: 1, Sampler: Euler")
        st, body = farm.json("POST", "/sdapi/v1/extra-single-image",
                             {"image": b64(src), "resize_mode": 1, "upscaling_resize_w": 32,
                              "upscaling_resize_h": 32, "upscaler_1": "Nearest"})
        self.assertEqual(st, 200, body)
        self.assertEqual(read_png(base64.b64decode(body["image"]))[:2], (32, 32))

    def render_or_skip(self, farm, path, req):
        st, body = farm.json("POST", path, req)
        if st == 500 and "unsupported_type" in body.get("detail", ""):
            self.skipTest("the worker cannot render %s yet (job failed with unsupported_type)" % path)
        self.assertEqual(st, 200, body)
        return body

    def test_txt2img_and_img2img(self):
        farm = self.farm()
        self.assertEqual([m["model_name"] for m in farm.json("GET", "/sdapi/v1/sd-models")[1]], ["sd1-tiny"])
        req = {"prompt": "a photo of a cat", "seed": 1234, "steps": 2, "width": 64, "height": 64,
               "sampler_name": "Euler a", "batch_size": 2}
        body = self.render_or_skip(farm, "/sdapi/v1/txt2img", req)
        self.assertEqual(len(body["images"]), 2)
        info = json.loads(body["info"])
        self.assertEqual(info["all_seeds"], [1234, 1235])
        self.assertEqual(len(info["infotexts"]), 2)
        w, h, _, _, texts = read_png(base64.b64decode(body["images"][0]))
        self.assertEqual((w, h), (64, 64))
        self.assertIn("Seed: 1234", texts.get("parameters", ""))
        # png-info reads back what the worker wrote
        st, pi = farm.json("POST", "/sdapi/v1/png-info", {"image": body["images"][0]})
        self.assertEqual((st, pi["parameters"]["Seed"], pi["parameters"]["Steps"]), (200, "1234", "2"))
        # the same request renders the same pixels
        again = self.render_or_skip(farm, "/sdapi/v1/txt2img", req)
        self.assertEqual(again["images"], body["images"])
        body = self.render_or_skip(farm, "/sdapi/v1/img2img",
                                   {"init_images": [body["images"][0]], "prompt": "a cat", "steps": 2,
                                    "denoising_strength": 0.5, "seed": 5, "width": 64, "height": 64})
        self.assertEqual(len(body["images"]), 1)
        self.assertEqual(read_png(base64.b64decode(body["images"][0]))[:2], (64, 64))
        self.assertIsNone(body["parameters"]["init_images"])

    def test_interrupt_and_progress_with_worker(self):
        farm = self.farm()
        req = {"prompt": "a cat", "steps": 8, "width": 128, "height": 128, "n_iter": 2, "seed": 9}
        self.render_or_skip(farm, "/sdapi/v1/txt2img", dict(req, steps=1, n_iter=1, width=64, height=64))
        held = Held(farm.port, "POST", "/sdapi/v1/txt2img", req, timeout=300)
        deadline = time.time() + 120
        p = None
        while time.time() < deadline:
            p = farm.json("GET", "/sdapi/v1/progress")[1]
            if p["current_task"] and p["state"]["sampling_step"] > 0:
                break
            time.sleep(0.05)
        self.assertTrue(p["current_task"], p)
        self.assertGreater(p["progress"], 0)
        self.assertEqual(p["state"]["job_count"], 1)
        st, body = farm.json("POST", "/sdapi/v1/interrupt")
        self.assertEqual((st, body), (200, {}))
        st, _, body = held.get(timeout=300)
        self.assertEqual(st, 200, body)
        self.assertLess(len(body["images"]), 2)  # the images finished before the interrupt, if any
        st, job = farm.json("GET", "/v1/jobs/" + p["current_task"])
        self.assertEqual(job["state"], "canceled", job)
        self.assertEqual(farm.json("GET", "/sdapi/v1/progress")[1]["state"]["job_count"], 0)


if __name__ == "__main__":
    unittest.main()
