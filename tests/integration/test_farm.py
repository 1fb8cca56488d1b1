"""test_farm.py - the whole farm end to end with real processes: redis-server on
a temp socket, tesserad on a loopback port, tessera-worker processes.

Covers the worker half of the foundation issue: submit -> run -> fetch PNG,
cancel of queued and running jobs, SIGKILL of a worker mid-job (the job
finishes on another), SIGTERM release, lease give-up after max attempts,
priorities, and the worker registry."""
import os
import signal
import time
import unittest

from harness import Farm, extras_job, have_binaries, make_png, read_png

# A job that runs for a few seconds on this machine: 1024x1024 -> 8192x8192,
# most of it in PNG encoding at the highest zlib level.
BIG = dict(resize=8, upscaler="Lanczos")
SLOW_WORKER = ["--png-compression", "9"]


@unittest.skipUnless(have_binaries("tesserad", "tessera-worker"), "binaries not built")
class FarmTest(unittest.TestCase):
    def wait_state(self, farm, jid, state, timeout=30):
        return farm.wait(jid, states=(state,), timeout=timeout)

    def test_extras_end_to_end(self):
        with Farm(workers=1) as farm:
            src = make_png(64, 48, text={"parameters": "a cat\nSteps: 20, Seed: 1"})
            job = farm.submit(extras_job(src, resize=2, upscaler="Lanczos", metadata={"order": 7}))
            self.assertEqual(job["status"], "queued")
            done = farm.wait(job["id"])
            self.assertEqual(done["state"], "succeeded", done)
            self.assertEqual(done["attempts"], 1)
            self.assertEqual(done["worker"], "w0")
            self.assertEqual(done["metadata"], {"order": 7})
            png = farm.image(job["id"], 0)
            w, h, ch, px, texts = read_png(png)
            self.assertEqual((w, h, ch), (128, 96, 3))
            self.assertEqual(texts["parameters"], "a cat\nSteps: 20, Seed: 1")
            self.assertIn("Postprocess upscaler: Lanczos", texts["postprocessing"])
            # size mode with crop, RGBA kept
            job = farm.submit(extras_job(make_png(40, 30, alpha=True), width=100, height=100, upscaler="Bicubic"))
            self.assertEqual(farm.wait(job["id"])["state"], "succeeded")
            w, h, ch, _, _ = read_png(farm.image(job["id"]))
            self.assertEqual((w, h, ch), (100, 100, 4))
            st, _, _ = farm.request("GET", "/v1/jobs/%s/images/1" % job["id"])
            self.assertEqual(st, 404)

    def test_cancel_queued_never_runs(self):
        with Farm(workers=0) as farm:
            job = farm.submit(extras_job(make_png(32, 32)))
            st, body = farm.json("DELETE", "/v1/jobs/" + job["id"])
            self.assertEqual(st, 200, body)
            self.assertEqual(body["state"], "canceled")
            farm.add_worker()
            time.sleep(1.5)
            final = farm.wait(job["id"])
            self.assertEqual(final["state"], "canceled")
            self.assertEqual(final["attempts"], 0)
            self.assertIsNone(final["worker"] or None)
            r = farm.redis.client()
            self.assertEqual(r("XLEN", "tessera:queue:default:1"), 0)
            r.close()
            st, body = farm.json("DELETE", "/v1/jobs/" + job["id"])
            self.assertEqual(st, 409, body)

    def test_cancel_running(self):
        with Farm(workers=1, worker_args=SLOW_WORKER) as farm:
            job = farm.submit(extras_job(make_png(1024, 1024), **BIG))
            self.wait_state(farm, job["id"], "running")
            time.sleep(0.3)
            st, body = farm.json("DELETE", "/v1/jobs/" + job["id"])
            self.assertEqual(st, 202, body)
            final = farm.wait(job["id"], timeout=60)
            self.assertEqual(final["state"], "canceled", final)
            self.assertEqual(final["images"], [])
            # the worker is free again
            job2 = farm.submit(extras_job(make_png(16, 16)))
            self.assertEqual(farm.wait(job2["id"])["state"], "succeeded")

    def test_sigkill_worker_job_finishes_elsewhere(self):
        with Farm(workers=1, worker_args=SLOW_WORKER, lease_ms=1500) as farm:
            job = farm.submit(extras_job(make_png(1024, 1024), **BIG))
            self.wait_state(farm, job["id"], "running")
            time.sleep(0.5)
            farm.workers[0].p.send_signal(signal.SIGKILL)
            farm.workers[0].p.wait()
            farm.add_worker(name="rescuer")
            final = farm.wait(job["id"], timeout=120)
            self.assertEqual(final["state"], "succeeded", final)
            self.assertEqual(final["worker"], "rescuer")
            self.assertEqual(final["attempts"], 2)
            w, h, _, _, _ = read_png(farm.image(job["id"]))
            self.assertEqual((w, h), (8192, 8192))

    def test_sigterm_releases_job(self):
        with Farm(workers=1, worker_args=SLOW_WORKER + ["--drain-timeout-s", "0"]) as farm:
            job = farm.submit(extras_job(make_png(1024, 1024), **BIG))
            self.wait_state(farm, job["id"], "running")
            time.sleep(0.3)
            farm.workers[0].signal(signal.SIGTERM)
            self.assertEqual(farm.workers[0].p.wait(30), 0)
            st, body = farm.json("GET", "/v1/jobs/" + job["id"])
            self.assertEqual(body["state"], "queued", body)
            self.assertEqual(body["attempts"], 0)
            farm.add_worker(name="second")
            final = farm.wait(job["id"], timeout=120)
            self.assertEqual(final["state"], "succeeded")
            self.assertEqual(final["worker"], "second")
            self.assertEqual(final["attempts"], 1)

    def test_sigterm_drains_short_job(self):
        with Farm(workers=1) as farm:
            job = farm.submit(extras_job(make_png(512, 512), resize=4))
            self.wait_state(farm, job["id"], "running", timeout=30)
            farm.workers[0].signal(signal.SIGTERM)
            self.assertEqual(farm.workers[0].p.wait(60), 0)
            self.assertEqual(farm.wait(job["id"])["state"], "succeeded")

    def test_gives_up_after_max_attempts(self):
        with Farm(workers=0, daemon_args=["--max-attempts", "2"], worker_args=SLOW_WORKER, lease_ms=1000) as farm:
            job = farm.submit(extras_job(make_png(1024, 1024), **BIG))
            for i in range(2):
                w = farm.add_worker(name="doomed%d" % i)
                self.wait_state(farm, job["id"], "running")
                time.sleep(0.3)
                w.p.send_signal(signal.SIGKILL)
                w.p.wait()
                time.sleep(1.2)  # let the lease lapse
            farm.add_worker(name="last")
            final = farm.wait(job["id"], timeout=60)
            self.assertEqual(final["state"], "failed", final)
            self.assertEqual(final["error"]["code"], "worker_lost")
            self.assertIn("2 attempts", final["error"]["message"])

    def test_priority_order(self):
        with Farm(workers=0) as farm:
            low = farm.submit(extras_job(make_png(16, 16), priority="low"))
            normal = farm.submit(extras_job(make_png(16, 16)))
            high = farm.submit(extras_job(make_png(16, 16), priority="high"))
            farm.add_worker()
            done = {j["id"]: farm.wait(j["id"]) for j in (low, normal, high)}
            order = sorted(done.values(), key=lambda j: j["started_at"])
            self.assertEqual([j["id"] for j in order], [high["id"], normal["id"], low["id"]])

    def test_workers_registry(self):
        with Farm(workers=2) as farm:
            deadline = time.time() + 10
            names = []
            while time.time() < deadline:
                st, body = farm.json("GET", "/v1/workers")
                self.assertEqual(st, 200)
                names = sorted(w["name"] for w in body["workers"])
                if names == ["w0", "w1"]:
                    break
                time.sleep(0.1)
            self.assertEqual(names, ["w0", "w1"])
            farm.workers[1].stop()
            deadline = time.time() + 10
            while time.time() < deadline:
                st, body = farm.json("GET", "/v1/workers")
                if [w["name"] for w in body["workers"]] == ["w0"]:
                    break
                time.sleep(0.1)
            self.assertEqual([w["name"] for w in body["workers"]], ["w0"])


if __name__ == "__main__":
    unittest.main()
