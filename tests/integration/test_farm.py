"""test_farm.py - the whole farm end to end with real processes: redis-server on
a temp socket, tesserad on a loopback port, tessera-worker processes.

Covers the worker half of the foundation issue: submit -> run -> fetch PNG,
cancel of queued and running jobs, SIGKILL of a worker mid-job (the job
finishes on another), SIGTERM release, lease give-up after max attempts,
priorities, and the worker registry."""
import hashlib
import hmac
import http.client
import http.server
import json
import os
import signal
import threading
import time
import unittest

from harness import SSE, TESSERAD, Farm, Proc, extras_job, free_port, have_binaries, make_png, read_png

def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


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
            # big enough that each job takes some milliseconds: one worker runs them one after
            # another, and start times (ms) of back-to-back tiny jobs can tie
            low = farm.submit(extras_job(make_png(256, 256), priority="low"))
            normal = farm.submit(extras_job(make_png(256, 256)))
            high = farm.submit(extras_job(make_png(256, 256), priority="high"))
            farm.add_worker()
            done = {j["id"]: farm.wait(j["id"]) for j in (low, normal, high)}
            order = sorted(done.values(), key=lambda j: (j["started_at"], j["finished_at"]))
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

    def test_webhook_signed_and_retried(self):
        received = []
        answers = [500, 200]

        class Receiver(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(answers[min(len(received), len(answers)) - 1])
                self.end_headers()

            def log_message(self, *a):
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        url = "http://127.0.0.1:%d/hook" % srv.server_address[1]
        try:
            with Farm(workers=1, daemon_args=["--allow-private-webhooks", "true", "--webhook-base-backoff-ms", "200",
                                              "--webhook-poll-ms", "50"]) as farm:
                job = farm.submit(extras_job(make_png(16, 16), metadata={"user": "ann"},
                                             webhook={"url": url, "secret": "topsecret", "events": ["succeeded"]}))
                farm.wait(job["id"])
                deadline = time.time() + 20
                while len(received) < 2 and time.time() < deadline:
                    time.sleep(0.05)
                self.assertEqual(len(received), 2, received)
                (h1, b1), (h2, b2) = received
                self.assertEqual(b1, b2)  # the same body on the retry
                self.assertEqual(h1["Tessera-Delivery"], h2["Tessera-Delivery"])
                for h, b in received:
                    t, v1 = [kv.split("=", 1)[1] for kv in h["Tessera-Signature"].split(",")]
                    want = hmac.new(b"topsecret", t.encode() + b"." + b, hashlib.sha256).hexdigest()
                    self.assertEqual(v1, want)
                    self.assertLess(abs(int(t) - time.time()), 60)
                doc = json.loads(b1)
                self.assertEqual(doc["event"], "succeeded")
                self.assertEqual(doc["job"]["id"], job["id"])
                self.assertEqual(doc["job"]["state"], "succeeded")
                self.assertEqual(doc["job"]["metadata"], {"user": "ann"})
                self.assertEqual(doc["job"]["images"], ["/v1/jobs/%s/images/0" % job["id"]])
                time.sleep(0.5)
                self.assertEqual(len(received), 2)  # delivered once it got a 2xx
                st, _, metrics = farm.request("GET", "/metrics")
                self.assertIn('tessera_webhook_deliveries_total{outcome="delivered"} 1', metrics.decode())
        finally:
            srv.shutdown()
            srv.server_close()

    def test_two_daemons_share_the_farm(self):
        with Farm(workers=0) as farm:
            port_b = free_port()
            b = Proc([TESSERAD, "--listen", "127.0.0.1:%d" % port_b, "--redis", farm.redis.url],
                     os.path.join(farm.tmp, "tesserad-b.log"))
            try:
                deadline = time.time() + 10
                while time.time() < deadline:
                    try:
                        if get(port_b, "/healthz")[0] == 200:
                            break
                    except OSError:
                        time.sleep(0.05)
                job = farm.submit(extras_job(make_png(300, 200), resize=3))
                events = SSE(port_b, "/v1/jobs/%s/events" % job["id"], timeout=60)
                self.assertEqual(events.status, 200)
                farm.add_worker()
                seen = [(e[1], (e[2] or {}).get("state")) for e in events.events()]
                events.close()
                self.assertEqual(seen[0], ("state", "queued"))
                self.assertEqual(seen[1], ("state", "running"))
                self.assertEqual(seen[-1], ("state", "succeeded"))
                self.assertIn(("progress", None), seen)
                # the other daemon serves the result and the listing
                st, png = get(port_b, "/v1/jobs/%s/images/0" % job["id"])
                self.assertEqual(st, 200)
                w, h, _, _, _ = read_png(png)
                self.assertEqual((w, h), (900, 600))
                st, listing = get(port_b, "/v1/jobs?state=succeeded")
                self.assertEqual([j["id"] for j in json.loads(listing)["jobs"]], [job["id"]])
            finally:
                b.stop()


if __name__ == "__main__":
    unittest.main()
