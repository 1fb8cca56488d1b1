"""test_sd_upscale.py - the sd_upscale job (A1111's "SD upscale" script) end to end:
`tessera render` in one process, and the farm, where one worker splits the job,
its tiles are rendered by as many workers as are free, and one worker stitches
them (docs/redis.md, "sd_upscale jobs").

What is checked, on the tiny golden model (tests/golden/models/sd1-tiny):
- the farm's PNG has exactly the pixels `tessera render` makes, with 1 worker
  and with 3 (several workers really share the tiles), and the infotext of
  tile 0 with the SD upscale entries;
- progress counts tiles (SSE progress events "tiles k/n", GET /v1/jobs/{id});
  the tiles are not jobs of their own (listing) and leave no keys behind;
- a worker SIGKILLed while it renders a tile: that tile alone is retried
  (its second attempt finishes it), the job succeeds with the same pixels;
- cancel while tiles render: canceled at once, queued tiles dropped, the
  workers rendering tiles stop, nothing of the job is left in the queues;
- validation errors are 422 naming the field; an upscaler the workers do not
  have fails the job with the reason.
Every worker runs with --threads 1 (the engine's sums are only bit-identical
for the same thread count). Needs the CLIP vocabulary (scripts/fetch-clip-vocab.sh)."""
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MODELS = os.path.join(harness.REPO, "tests", "golden", "models")
PREFIX = "tessera:"


def models_dir(tmp):
    d = os.path.join(tmp, "models")
    os.makedirs(d, exist_ok=True)
    os.symlink(os.path.join(MODELS, "sd1-tiny"), os.path.join(d, "sd1-tiny"))
    return d


def b64png(w, h, seed):
    return base64.b64encode(harness.make_png(w, h, seed=seed)).decode()


# 64x64 -> Lanczos x2 -> 128x128, 32x32 tiles overlapping by 8: a 5 x 5 grid
FAST = {"type": "sd_upscale", "image": b64png(64, 64, 3), "prompt": "a house by a lake", "negative_prompt": "blurry",
        "steps": 3, "seed": 4242, "sampler_name": "Euler", "width": 32, "height": 32, "overlap": 8,
        "scale_factor": 2, "upscaler": "Lanczos", "denoising_strength": 0.6, "rng": "CPU", "model": "sd1-tiny"}
# tiles that take a few seconds: 96x96 (upscaler None: no upscale), 64x64 tiles -> 2 x 2
SLOW = {"type": "sd_upscale", "image": b64png(96, 96, 5), "prompt": "a castle", "steps": 24, "seed": 99,
        "sampler_name": "Euler", "width": 64, "height": 64, "overlap": 16, "upscaler": "None",
        "denoising_strength": 1.0, "rng": "CPU", "model": "sd1-tiny"}


def render(tmp, job, models):
    path = os.path.join(tmp, "job-%d.json" % time.monotonic_ns())
    with open(path, "w") as f:
        json.dump(job, f)
    out = os.path.join(tmp, "out-%d" % time.monotonic_ns())
    p = subprocess.run([harness.CLI, "render", path, "--models", models, "--out", out, "--threads", "1"],
                       capture_output=True, text=True, timeout=600)
    return p, out


def farm(md, workers, lease_ms=2000, daemon_args=()):
    return harness.Farm(workers=workers, worker_args=["--models", md, "--threads", "1"], lease_ms=lease_ms,
                        daemon_args=list(daemon_args))


def job_events(r, jid):
    out = []
    for _sid, fields in r("XRANGE", PREFIX + "job:%s:events" % jid, "-", "+") or []:
        f = {fields[i].decode(): fields[i + 1].decode() for i in range(0, len(fields), 2)}
        out.append((f["event"], json.loads(f["data"])))
    return out


def tile_keys(r, jid):
    return sorted(k.decode() for k in r("KEYS", PREFIX + "job:%s:tile:*" % jid) or [])


def pending(r):
    n = 0
    for k in r("KEYS", PREFIX + "queue:*") or []:
        n += int(r("XPENDING", k, "workers")[0])
    return n


@unittest.skipUnless(harness.have_binaries("tessera", "tesserad", "tessera-worker"), "binaries not built")
class SdUpscaleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tessera-upscale-")
        cls.md = models_dir(cls.tmp)
        cls.ref = {}

    def reference(self, name, job):
        """`tessera render` of job: (pixels, infotext, info)."""
        if name not in self.ref:
            p, out = render(self.tmp, job, self.md)
            self.assertEqual(p.returncode, 0, p.stderr)
            files = os.listdir(out)
            self.assertEqual(files, ["%d-0.png" % job["seed"]])
            with open(os.path.join(out, files[0]), "rb") as f:
                w, h, ch, px, texts = harness.read_png(f.read())
            self.ref[name] = (w, h, px, texts["parameters"], json.loads(p.stdout))
        return self.ref[name]

    def run_farm(self, workers, job):
        """Submit job to a farm of n workers: (pixels, infotext, final GET, events, seconds, progress seen)."""
        with farm(self.md, workers) as f:
            r = f.redis.client()
            t0 = time.time()
            j = f.submit(job)
            seen = set()
            while True:
                st, cur = f.json("GET", "/v1/jobs/" + j["id"])
                self.assertEqual(st, 200)
                if cur["state"] in ("succeeded", "failed", "canceled"):
                    break
                if cur.get("tiles"):
                    seen.add((cur["progress"]["step"], cur["progress"]["steps"], cur["progress"]["text"]))
                self.assertLess(time.time() - t0, 300, cur)
                time.sleep(0.02)
            secs = time.time() - t0
            self.assertEqual(cur["state"], "succeeded", cur)
            w, h, ch, px, texts = harness.read_png(f.image(j["id"]))
            ev = job_events(r, j["id"])
            # the tiles are no jobs of their own and leave nothing behind
            st, lst = f.json("GET", "/v1/jobs?limit=100")
            self.assertEqual([x["id"] for x in lst["jobs"]], [j["id"]])
            self.assertEqual(tile_keys(r, j["id"]), [])
            self.assertEqual(pending(r), 0)
            r.close()
            return (w, h, px), texts["parameters"], cur, ev, secs, seen

    def test_farm_equals_render_1_and_3_workers(self):
        w, h, px, infotext, info = self.reference("fast", FAST)
        self.assertEqual((w, h), (128, 128))
        self.assertEqual(info["sd_upscale"]["tiles"], 25)
        self.assertEqual(info["seeds"], [4242])
        self.assertIn("Seed: 4242, Size: 32x32,", infotext)
        self.assertIn("Denoising strength: 0.6, RNG: CPU, SD upscale overlap: 8, SD upscale upscaler: Lanczos, "
                      "Version: tessera", infotext)
        timings = {}
        for n in (1, 3):
            (fw, fh, fpx), ftext, cur, ev, secs, seen = self.run_farm(n, FAST)
            timings[n] = secs
            self.assertEqual((fw, fh), (128, 128))
            self.assertTrue(fpx == px, "%d worker(s): the farm's pixels differ from tessera render's" % n)
            self.assertEqual(ftext, infotext)
            self.assertEqual(cur["info"]["sd_upscale"]["cols"], 5)
            self.assertEqual(cur["tiles"], {"total": 25, "done": 25, "phase": "stitch"})
            self.assertEqual((cur["progress"]["step"], cur["progress"]["steps"]), (25, 25))
            # progress counts tiles: one progress event per finished tile, in order
            texts = [d["text"] for (e, d) in ev if e == "progress" and d.get("text", "").startswith("tiles ")]
            self.assertEqual(texts, ["tiles %d/25" % k for k in range(26)], texts)
            done = [d for (e, d) in ev if e == "tile" and d["state"] == "done"]
            self.assertEqual(sorted(d["tile"] for d in done), list(range(25)))
            self.assertTrue(all(d["attempt"] == 1 for d in done))
            workers = {d["worker"] for d in done}
            if n == 3:
                self.assertGreaterEqual(len(workers), 2, "the tiles were not shared: %r" % workers)
            phases = [d.get("phase") for (e, d) in ev if e == "phase"]
            self.assertEqual(phases, ["stitch"])
            # what GET showed while the tiles rendered
            for (step, steps, text) in seen:
                if text.startswith("tiles"):
                    self.assertEqual((text, steps), ("tiles %d/%d" % (step, steps), 25))
        sys.stderr.write("\nsd_upscale 25 tiles of 32x32, 3 steps: 1 worker %.2f s, 3 workers %.2f s\n"
                         % (timings[1], timings[3]))

    def test_sigkill_while_rendering_a_tile(self):
        w, h, px, infotext, info = self.reference("slow", SLOW)
        self.assertEqual(info["sd_upscale"]["tiles"], 4)
        with farm(self.md, 2, lease_ms=1500) as f:
            r = f.redis.client()
            j = f.submit(SLOW)
            jid = j["id"]
            victim = None
            deadline = time.time() + 240
            while victim is None and time.time() < deadline:
                for i in range(4):
                    t = r.hgetall(PREFIX + "job:%s:tile:%d" % (jid, i))
                    if t.get("state") == "running" and t.get("worker") == "w0" and int(t.get("step") or 0) >= 2:
                        victim = i
                        break
                time.sleep(0.02)
            self.assertIsNotNone(victim, "w0 never rendered a tile")
            f.workers[0].p.send_signal(signal.SIGKILL)
            f.workers[0].p.wait()
            done = f.wait(jid, timeout=300)
            self.assertEqual(done["state"], "succeeded", done)
            self.assertEqual(done["attempts"], 1)
            fw, fh, fch, fpx, texts = harness.read_png(f.image(jid))
            self.assertTrue(fpx == px, "the retried job's pixels differ")
            self.assertEqual(texts["parameters"], infotext)
            ev = job_events(r, jid)
            fin = {d["tile"]: d for (e, d) in ev if e == "tile" and d["state"] == "done"}
            self.assertEqual(sorted(fin), [0, 1, 2, 3])
            self.assertEqual(fin[victim]["attempt"], 2, ev)
            self.assertEqual(fin[victim]["worker"], "w1")
            self.assertTrue(all(fin[i]["attempt"] == 1 for i in fin if i != victim))
            requeued = [d for (e, d) in ev if e == "tile" and d["state"] == "queued"]
            self.assertEqual([d["tile"] for d in requeued], [victim])
            self.assertIn("lease expired on worker w0", requeued[0]["reason"])
            self.assertEqual(tile_keys(r, jid), [])
            r.close()

    def wait_tile_on(self, r, jid, worker, step=2, timeout=240):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for i in range(4):
                t = r.hgetall(PREFIX + "job:%s:tile:%d" % (jid, i))
                if t.get("state") == "running" and t.get("worker") == worker and int(t.get("step") or 0) >= step:
                    return i
            time.sleep(0.02)
        self.fail("%s never rendered a tile" % worker)

    def test_tile_out_of_attempts_fails_the_job(self):
        with farm(self.md, 2, lease_ms=1000, daemon_args=["--max-attempts", "1"]) as f:
            r = f.redis.client()
            jid = f.submit(SLOW)["id"]
            victim = self.wait_tile_on(r, jid, "w0")
            f.workers[0].p.send_signal(signal.SIGKILL)
            f.workers[0].p.wait()
            done = f.wait(jid, timeout=240)
            self.assertEqual(done["state"], "failed", done)
            self.assertEqual(done["error"]["code"], "worker_lost")
            self.assertIn("tile %d gave up after 1 attempts: worker w0" % victim, done["error"]["message"])
            self.assertEqual(tile_keys(r, jid), [])
            self.assertEqual(pending(r), 0)
            r.close()

    def test_sigterm_hands_the_tile_back(self):
        with farm(self.md, 0) as f:
            f.add_worker("w0", extra=["--drain-timeout-s", "0"])
            f.add_worker("w1")
            r = f.redis.client()
            jid = f.submit(SLOW)["id"]
            victim = self.wait_tile_on(r, jid, "w0", step=1)
            f.workers[0].p.send_signal(signal.SIGTERM)
            self.assertEqual(f.workers[0].p.wait(30), 0)
            done = f.wait(jid, timeout=240)
            self.assertEqual(done["state"], "succeeded", done)
            ev = job_events(r, jid)
            back = [d for (e, d) in ev if e == "tile" and d["state"] == "queued"]
            self.assertEqual([(d["tile"], d["reason"]) for d in back], [(victim, "released by worker w0")])
            fin = {d["tile"]: d for (e, d) in ev if e == "tile" and d["state"] == "done"}
            self.assertEqual((fin[victim]["attempt"], fin[victim]["worker"]), (1, "w1"))  # a release does not count
            fw, fh, fch, fpx, texts = harness.read_png(f.image(jid))
            self.assertTrue(fpx == self.reference("slow", SLOW)[2], "the job's pixels differ after the release")
            r.close()

    def test_cancel_while_tiles_render(self):
        with farm(self.md, 2) as f:
            r = f.redis.client()
            j = f.submit(SLOW)
            jid = j["id"]
            deadline = time.time() + 240
            busy = []
            while time.time() < deadline:
                busy = [r.hgetall(PREFIX + "job:%s:tile:%d" % (jid, i)) for i in range(4)]
                if sum(1 for t in busy if t.get("state") == "running" and int(t.get("step") or 0) >= 1) >= 2:
                    break
                time.sleep(0.02)
            st, body = f.json("GET", "/v1/jobs/" + jid)
            self.assertEqual(body["tiles"]["phase"], "tiles")
            self.assertTrue(body["progress"]["text"].startswith("tiles "), body["progress"])
            st, body = f.json("DELETE", "/v1/jobs/" + jid)
            self.assertEqual((st, body["state"]), (200, "canceled"))
            done = f.wait(jid, timeout=10)
            self.assertEqual(done["state"], "canceled")
            self.assertIn("tiles", done["error"]["message"])
            self.assertEqual(tile_keys(r, jid), [])
            self.assertEqual(pending(r), 0)
            # the workers stop the tiles they were rendering (their next check finds them gone)
            deadline = time.time() + 15
            while time.time() < deadline:
                idle = [r.hgetall(PREFIX + "worker:w%d" % i).get("job") for i in range(2)]
                if idle == ["", ""]:
                    break
                time.sleep(0.05)
            self.assertEqual(idle, ["", ""])
            for w in f.workers:
                self.assertRegex(w.output(), r"job %s tile \d+ (is no longer ours|: finished too late)" % jid)
            # nothing was stored for the canceled tiles afterwards, and the farm goes on
            time.sleep(0.5)
            self.assertEqual(tile_keys(r, jid), [])
            j2 = f.submit(dict(FAST, steps=2))
            self.assertEqual(f.wait(j2["id"], timeout=120)["state"], "succeeded")
            r.close()

    def test_validation_and_unavailable_upscaler(self):
        with farm(self.md, 1, daemon_args=["--max-tiles", "30"]) as f:
            bad = [({"overlap": 32}, "overlap"), ({"overlap": 300}, "overlap"), ({"width": 30}, "width"),
                   ({"scale_factor": 0}, "scale_factor"), ({"scale_factor": 8.5}, "scale_factor"),
                   ({"upscaler": "Latent"}, "upscaler"), ({"batch_size": 4}, "batch_size"),
                   ({"mask": FAST["image"]}, "mask"), ({"image": "not base64!"}, "image"),
                   ({"width": 256, "height": 256}, "width"),  # a tile larger than the upscaled image
                   ({"overlap": 0, "width": 16, "height": 16}, "width"),  # 64 tiles > max_tiles 30
                   ({"sampler_name": "UniPC"}, "sampler_name")]
            for extra, field in bad:
                st, body = f.json("POST", "/v1/jobs", dict(FAST, **extra))
                self.assertEqual(st, 422, (extra, body))
                self.assertEqual(body["error"]["field"], field, (extra, body))
            st, body = f.json("POST", "/v1/jobs", {k: v for k, v in FAST.items() if k != "image"})
            self.assertEqual((st, body["error"]["field"]), (422, "image"))
            j = f.submit(dict(FAST, upscaler="4x-UltraSharp"))
            done = f.wait(j["id"], timeout=60)
            self.assertEqual(done["state"], "failed")
            self.assertEqual(done["error"]["code"], "model_unavailable")
            self.assertIn("4x-UltraSharp", done["error"]["message"])


if __name__ == "__main__":
    unittest.main()
