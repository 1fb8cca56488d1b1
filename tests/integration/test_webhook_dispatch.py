"""test_webhook_dispatch.py - the webhook dispatcher against a real Redis and a
local HTTP receiver (Python stdlib only).

Deliveries are put into Redis the way proto/lua/common.lua (webhook_enqueue)
does: HSET P webhook:<id> job event url secret body attempts created_at, ZADD
P webhooks:due <now> <id>. The dispatcher runs alone in tests/unit/webhook_driver.c
(`webhook-driver`), one process per test, with its own key prefix.

Environment:
  WEBHOOK_DRIVER          path of webhook-driver (default: <repo>/build*/tests/unit/webhook-driver)
  REDIS_SERVER            redis-server binary (default: redis-server on PATH)
  WEBHOOK_DRIVER_WRAPPER  command put before the driver, e.g.
                          "valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99"

Run: python3 -m unittest tests/integration/test_webhook_dispatch.py -v
"""
import glob
import hashlib
import hmac
import http.server
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import REPO, RedisServer  # noqa: E402

WRAPPER = shlex.split(os.environ.get("WEBHOOK_DRIVER_WRAPPER", ""))
SLOW = 8 if WRAPPER else 1  # valgrind runs the driver ~10x slower
REDIS_ARGS = ["--unixsocketperm", "700"]


def find_driver():
    p = os.environ.get("WEBHOOK_DRIVER")
    if p:
        return p
    found = sorted(glob.glob(os.path.join(REPO, "build*", "tests", "unit", "webhook-driver")),
                   key=os.path.getmtime)
    return found[-1] if found else None


# ---- the receiver -------------------------------------------------------------------

class Receiver:
    """Records every request. Paths: /ok, /status/<code>, /flaky/<n> (500 for the
    first n hits of each delivery, then 200), /sleep/<ms>, /redirect."""

    def __init__(self):
        self.lock = threading.Lock()
        self.hits = []
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with recv.lock:
                    recv.hits.append({"path": self.path, "headers": dict(self.headers),
                                      "body": body, "at": time.time()})
                    n = sum(1 for h in recv.hits if h["path"] == self.path and
                            h["headers"].get("Tessera-Delivery") == self.headers.get("Tessera-Delivery"))
                parts = self.path.strip("/").split("/")
                code, extra = 200, {}
                if parts[0] == "status":
                    code = int(parts[1])
                elif parts[0] == "flaky":
                    code = 500 if n <= int(parts[1]) else 200
                elif parts[0] == "sleep":
                    time.sleep(int(parts[1]) / 1000.0)
                elif parts[0] == "redirect":
                    code, extra = 302, {"Location": "/ok"}
                payload = b"fine" if code < 300 else b"no"
                try:
                    self.send_response(code)
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def for_delivery(self, did):
        with self.lock:
            return [h for h in self.hits if h["headers"].get("Tessera-Delivery") == did]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def verify(secret, header, body, tolerance=300):
    """The receiver-side check from docs/webhooks.md."""
    parts = dict(p.split("=", 1) for p in header.split(","))
    t = int(parts["t"])
    mac = hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts["v1"]) and abs(time.time() - t) <= tolerance


# ---- the tests ------------------------------------------------------------------------

DRIVER = find_driver()


@unittest.skipUnless(DRIVER and os.path.exists(DRIVER), "webhook-driver not built (set WEBHOOK_DRIVER)")
class WebhookDispatch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="twh-")
        cls.redis = RedisServer(cls.tmp, args=REDIS_ARGS).start()
        cls.sock = cls.redis.sock
        cls.recv = Receiver()

    @classmethod
    def tearDownClass(cls):
        cls.recv.stop()
        cls.redis.stop(graceful=True)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.r = self.redis.client()
        self.P = "t%s:" % uuid.uuid4().hex[:8]
        self.drivers = []

    def tearDown(self):
        for d in self.drivers:
            if d.poll() is None:
                d.kill()
                d.wait()
            d.stdout.close()
            d.stderr.close()
        self.r.close()

    # helpers

    def enqueue(self, url, event="succeeded", secret="whsec_x", job=None, did=None, created_at=None):
        job = job or "job" + uuid.uuid4().hex[:6]
        did = did or job + "-1"
        now = self.r.now_ms()
        body = json.dumps({"delivery": did, "event": event, "sent_at": None,
                           "job": {"id": job, "state": event}}, separators=(",", ":"))
        self.r("HSET", self.P + "webhook:" + did, "job", job, "event", event, "url", url,
               "secret", secret, "body", body, "attempts", 0,
               "created_at", created_at if created_at is not None else now)
        self.r("ZADD", self.P + "webhooks:due", now, did)
        return did, body

    def start(self, *args, redis_sock=None, allow_private=True):
        cmd = WRAPPER + [DRIVER, "--redis", "unix://" + (redis_sock or self.sock), "--prefix", self.P,
                         "--poll-ms", "50", "--base-backoff-ms", "100", "--max-backoff-ms", "400",
                         "--timeout-ms", str(2000 * SLOW)]
        if allow_private:
            cmd.append("--allow-private")
        cmd += [str(a) for a in args]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.drivers.append(p)
        self.assertEqual(p.stdout.readline().strip(), "started", p.stderr.read() if p.poll() else "")
        return p

    def stop(self, p):
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60 * SLOW)
        self.assertEqual(p.returncode, 0, "driver exit %s; stderr:\n%s" % (p.returncode, err))
        lines = [l for l in out.splitlines() if l.startswith("{")]
        self.assertTrue(lines, out)
        return json.loads(lines[-1]), err

    def wait_for(self, cond, timeout=10, what="condition"):
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            v = cond()
            if v:
                return v
            time.sleep(0.05)
        self.fail("timed out waiting for " + what)

    def stats(self):
        return {k: int(v) for k, v in self.r.hgetall(self.P + "stats").items()}

    def in_due(self, did):
        return self.r("ZSCORE", self.P + "webhooks:due", did) is not None

    def gone(self, did):
        return not self.r("EXISTS", self.P + "webhook:" + did) and not self.in_due(did)

    # tests

    def test_delivered_signed(self):
        d = self.start()
        did, body = self.enqueue(self.recv.url("/ok"), event="succeeded", secret="s3cret")
        self.wait_for(lambda: self.gone(did), what="delivery")
        st, _ = self.stop(d)
        hits = self.recv.for_delivery(did)
        self.assertEqual(len(hits), 1)
        h = hits[0]
        self.assertEqual(h["body"], body.encode())
        self.assertEqual(h["headers"]["Content-Type"], "application/json")
        self.assertEqual(h["headers"]["Tessera-Event"], "succeeded")
        self.assertTrue(verify("s3cret", h["headers"]["Tessera-Signature"], h["body"]))
        self.assertFalse(verify("other", h["headers"]["Tessera-Signature"], h["body"]))
        self.assertEqual(self.stats().get("webhook|delivered"), 1)
        self.assertEqual(st["delivered"], 1)

    def test_retry_then_delivered(self):
        d = self.start()
        did, body = self.enqueue(self.recv.url("/flaky/2"))
        self.wait_for(lambda: self.gone(did), what="delivery after retries")
        self.stop(d)
        hits = self.recv.for_delivery(did)
        self.assertEqual(len(hits), 3)
        for h in hits:
            self.assertEqual(h["body"], body.encode())
            self.assertTrue(verify("whsec_x", h["headers"]["Tessera-Signature"], h["body"]))
        # backoff: base 100 ms with jitter 0.5..1, doubling, capped at 400
        self.assertGreaterEqual(hits[1]["at"] - hits[0]["at"], 0.045)
        self.assertGreaterEqual(hits[2]["at"] - hits[1]["at"], 0.095)
        s = self.stats()
        self.assertEqual(s.get("webhook|retried"), 2)
        self.assertEqual(s.get("webhook|delivered"), 1)

    def test_retry_records_state(self):
        d = self.start("--base-backoff-ms", "60000", "--max-backoff-ms", "60000")
        did, _ = self.enqueue(self.recv.url("/status/503"))
        key = self.P + "webhook:" + did
        self.wait_for(lambda: self.r("HGET", key, "attempts") == b"1", what="first attempt")
        h = self.r.hgetall(key)
        self.assertEqual(h["last_status"], "503")
        self.assertIn("503", h["last_error"])
        self.assertNotIn("leased_until", h)
        due = int(float(self.r("ZSCORE", self.P + "webhooks:due", did)))
        delay = due - int(h["last_attempt_at"])
        self.assertTrue(30000 <= delay <= 60000, delay)  # 60 s * (0.5..1)
        self.stop(d)
        self.assertEqual(len(self.recv.for_delivery(did)), 1)

    def test_gives_up_after_window(self):
        d = self.start("--retry-window-s", "1")
        did, _ = self.enqueue(self.recv.url("/status/500"))
        key = self.P + "webhook:" + did
        self.wait_for(lambda: self.r("HEXISTS", key, "failed_at"), what="give up", timeout=15)
        self.stop(d)
        h = self.r.hgetall(key)
        self.assertGreaterEqual(int(h["attempts"]), 2)
        self.assertEqual(h["last_status"], "500")
        self.assertFalse(self.in_due(did))
        ttl = self.r("TTL", key)
        self.assertTrue(0 < ttl <= 86400, ttl)
        s = self.stats()
        self.assertEqual(s.get("webhook|failed"), 1)
        self.assertEqual(s.get("webhook|retried"), int(h["attempts"]) - 1)

    def test_private_target_refused(self):
        d = self.start(allow_private=False)
        did, _ = self.enqueue(self.recv.url("/ok"))
        did6, _ = self.enqueue("http://[::1]:%d/ok" % self.recv.port)
        key = self.P + "webhook:" + did
        self.wait_for(lambda: self.r("HEXISTS", key, "failed_at") and
                      self.r("HEXISTS", self.P + "webhook:" + did6, "failed_at"), what="refusal")
        st, _ = self.stop(d)
        self.assertEqual(self.recv.for_delivery(did), [])
        h = self.r.hgetall(key)
        self.assertIn("public", h["last_error"])
        self.assertEqual(h["attempts"], "1")
        self.assertFalse(self.in_due(did))
        self.assertGreater(self.r("TTL", key), 0)
        self.assertEqual(self.stats().get("webhook|refused"), 2)
        self.assertEqual(st["refused"], 2)

    def test_name_resolving_to_private_refused(self):
        name = socket.gethostname()
        try:
            addrs = {a[4][0] for a in socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)}
        except OSError:
            self.skipTest("host name does not resolve")
        import ipaddress
        if not all(ipaddress.ip_address(a.split("%")[0]).is_private for a in addrs):
            self.skipTest("host name resolves to a public address")
        d = self.start(allow_private=False)
        did, _ = self.enqueue("http://%s:%d/ok" % (name, self.recv.port))
        key = self.P + "webhook:" + did
        self.wait_for(lambda: self.r("HEXISTS", key, "failed_at"), what="refusal")
        self.stop(d)
        self.assertIn("not a public address", self.r.hgetall(key)["last_error"])
        self.assertEqual(self.recv.for_delivery(did), [])

    def test_bad_urls_refused(self):
        d = self.start()
        ids = [self.enqueue(u)[0] for u in ("ftp://127.0.0.1/x", "http://u:p@127.0.0.1/x", "not a url",
                                            "file:///etc/passwd")]
        self.wait_for(lambda: all(self.r("HEXISTS", self.P + "webhook:" + i, "failed_at") for i in ids),
                      what="refusals")
        self.stop(d)
        self.assertEqual(self.stats().get("webhook|refused"), len(ids))

    def test_redirect_not_followed(self):
        d = self.start("--base-backoff-ms", "60000", "--max-backoff-ms", "60000")
        did, _ = self.enqueue(self.recv.url("/redirect"))
        key = self.P + "webhook:" + did
        self.wait_for(lambda: self.r("HGET", key, "attempts") == b"1", what="attempt")
        self.stop(d)
        self.assertEqual(self.r("HGET", key, "last_status"), b"302")
        self.assertEqual([h["path"] for h in self.recv.for_delivery(did)], ["/redirect"])

    def test_timeout_retried(self):
        d = self.start("--timeout-ms", str(300 * SLOW), "--base-backoff-ms", "60000", "--max-backoff-ms", "60000")
        did, _ = self.enqueue(self.recv.url("/sleep/%d" % (1500 * SLOW)))
        key = self.P + "webhook:" + did
        self.wait_for(lambda: self.r("HGET", key, "attempts") == b"1", what="timed out attempt")
        self.stop(d)
        h = self.r.hgetall(key)
        self.assertEqual(h["last_status"], "0")
        self.assertIn("imeout", h["last_error"])
        self.assertTrue(self.in_due(did))

    def test_concurrent_deliveries(self):
        d = self.start("--concurrency", "8")
        t0 = time.time()
        ids = [self.enqueue(self.recv.url("/sleep/800"))[0] for _ in range(8)]
        self.wait_for(lambda: all(self.gone(i) for i in ids), what="deliveries")
        elapsed = time.time() - t0
        self.stop(d)
        if not WRAPPER:
            self.assertLess(elapsed, 4.0)  # 8 x 0.8 s one after another would be 6.4 s
        self.assertEqual(self.stats().get("webhook|delivered"), 8)

    def test_two_dispatchers_send_each_once(self):
        d1 = self.start("--concurrency", "4")
        d2 = self.start("--concurrency", "4")
        ids = [self.enqueue(self.recv.url("/sleep/20"))[0] for _ in range(40)]
        self.wait_for(lambda: all(self.gone(i) for i in ids), what="deliveries", timeout=30)
        s1, _ = self.stop(d1)
        s2, _ = self.stop(d2)
        for i in ids:
            self.assertEqual(len(self.recv.for_delivery(i)), 1, i)
        self.assertEqual(s1["delivered"] + s2["delivered"], 40)
        self.assertEqual(self.stats().get("webhook|delivered"), 40)

    def test_orphan_due_entry_dropped(self):
        d = self.start()
        self.r("ZADD", self.P + "webhooks:due", self.r.now_ms(), "nohash-1")
        self.wait_for(lambda: not self.in_due("nohash-1"), what="orphan removed")
        self.stop(d)

    def test_not_due_yet_waits(self):
        d = self.start()
        did, _ = self.enqueue(self.recv.url("/ok"))
        self.r("ZADD", self.P + "webhooks:due", self.r.now_ms() + 1500 * SLOW, did)
        time.sleep(0.5 * SLOW)
        self.assertEqual(self.recv.for_delivery(did), [])
        self.wait_for(lambda: self.gone(did), what="delivery once due")
        self.stop(d)

    def test_redis_down_then_up(self):
        sock2 = os.path.join(self.tmp, "late-%s.sock" % uuid.uuid4().hex[:6])
        d = self.start(redis_sock=sock2)
        time.sleep(1.0 * SLOW)
        self.assertIsNone(d.poll(), "driver died while redis was down")
        rs = RedisServer(self.tmp, sock=sock2, args=REDIS_ARGS).start()
        try:
            r2 = rs.client()
            self.addCleanup(r2.close)
            now = r2.now_ms()
            did = "late-1"
            r2("HSET", self.P + "webhook:" + did, "job", "late", "event", "succeeded",
               "url", self.recv.url("/ok"), "secret", "k", "body", "{}", "attempts", 0, "created_at", now)
            r2("ZADD", self.P + "webhooks:due", now, did)
            self.wait_for(lambda: not r2("EXISTS", self.P + "webhook:" + did), what="delivery after redis came up",
                          timeout=15)
            # and redis going away again does not kill it either
            r2.close()
            rs.stop(graceful=True)
            time.sleep(0.5 * SLOW)
            self.assertIsNone(d.poll(), "driver died when redis went away")
            st, err = self.stop(d)
            self.assertGreater(st["redis_errors"], 0)
            self.assertEqual(st["delivered"], 1)
        finally:
            rs.stop()

    def test_stop_while_sending_finishes_attempt(self):
        d = self.start()
        did, _ = self.enqueue(self.recv.url("/sleep/700"))
        self.wait_for(lambda: self.recv.for_delivery(did), what="attempt started")
        st, _ = self.stop(d)  # returns once the running attempt ended and was reported
        self.assertTrue(self.gone(did))
        self.assertEqual(self.stats().get("webhook|delivered"), 1)


if __name__ == "__main__":
    unittest.main()
