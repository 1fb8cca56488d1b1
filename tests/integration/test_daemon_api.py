"""test_daemon_api.py - tesserad's HTTP API against a real redis-server.

Starts redis-server on a temporary unix socket and build/tesserad on a free
loopback port (several daemons with different settings where a test needs
them), then drives the API with http.client. No worker is needed: state
changes a worker would make are applied by running the same Lua scripts
(proto/lua, with common.lua prepended as the build does) over a tiny RESP
client. Python stdlib only.

Binaries come from $TESSERA_BUILD (default: <repo>/build); the whole module is
skipped when build/tesserad is missing.
"""
import base64
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SSE, TESSERAD, Daemon, RedisServer, free_port, have_binaries, make_png  # noqa: E402

PNG_B64 = base64.b64encode(make_png(4, 4)).decode()


def job_body(**extra):
    b = {"type": "extras", "image": PNG_B64, "resize": 2}
    b.update(extra)
    return b


def daemon(redis, tmp, *flags, prefix="tessera:"):
    """tesserad with its own key prefix, webhooks off, debug logging, and flags."""
    return Daemon(redis.url, tmp, ["--key-prefix", prefix, "--webhooks", "false", "--log-level", "debug"]
                  + list(flags))


METRIC_LINE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})?'
    r' (-?[0-9.eE+-]+|\+Inf|-Inf|NaN)$')


@unittest.skipUnless(have_binaries("tesserad"), "tesserad not built (%s)" % TESSERAD)
class DaemonApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tessera-daemon-")
        cls.redis = RedisServer(cls.tmp)
        cls.redis.start()
        cls.d = daemon(cls.redis, cls.tmp, "--max-queue-depth", "0")

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        cls.redis.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if rc != 0:
            raise AssertionError("tesserad exited with %s" % rc)

    def client(self):
        """A Redis client, closed when the test ends."""
        r = self.redis.client()
        self.addCleanup(r.close)
        return r

    def submit(self, d=None, body=None, headers=None):
        d = d or self.d
        st, h, j = d.json("POST", "/v1/jobs", body or job_body(), headers)
        self.assertEqual(st, 202, j)
        return j, h

    def err(self, d, method, path, body=None, headers=None):
        st, h, j = d.json(method, path, body, headers)
        self.assertIn("error", j)
        self.assertEqual(h.get("content-type"), "application/json")
        return st, j["error"]

    # ------------------------------------------------------------ basics
    def test_submit_and_get(self):
        j, h = self.submit()
        self.assertEqual(j["status"], "queued")
        self.assertEqual(h["location"], "/v1/jobs/" + j["id"])
        self.assertIn("x-request-id", h)
        self.assertEqual(h["content-type"], "application/json")
        for k in ("self", "events", "cancel", "images"):
            self.assertIn(k, j["links"])
        st, h, g = self.d.json("GET", "/v1/jobs/" + j["id"])
        self.assertEqual(st, 200)
        self.assertEqual(g["state"], "queued")
        self.assertEqual(g["type"], "extras")
        self.assertEqual(g["pool"], "default")
        self.assertEqual(g["attempts"], 0)
        self.assertIsNone(g["error"])
        self.assertRegex(g["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertIsInstance(g["created_at_ms"], int)

    def test_idempotency(self):
        hdr = {"Idempotency-Key": "order-%d" % random.randrange(1 << 30)}
        a, _ = self.submit(headers=hdr)
        st, h, b = self.d.json("POST", "/v1/jobs", job_body(), hdr)
        self.assertEqual(st, 200)
        self.assertEqual(b["id"], a["id"])
        self.assertEqual(b["status"], "queued")
        c, _ = self.submit(headers={"Idempotency-Key": hdr["Idempotency-Key"] + "x"})
        self.assertNotEqual(c["id"], a["id"])
        st, e = self.err(self.d, "POST", "/v1/jobs", job_body(), {"Idempotency-Key": "x" * 256})
        self.assertEqual(st, 400)

    def test_validation_errors(self):
        st, e = self.err(self.d, "POST", "/v1/jobs", '{"type": "extras",')
        self.assertEqual((st, e["code"]), (400, "malformed_json"))
        self.assertIn("line", e["message"])
        st, e = self.err(self.d, "POST", "/v1/jobs", {"type": "nope"})
        self.assertEqual((st, e["field"]), (422, "type"))
        st, e = self.err(self.d, "POST", "/v1/jobs", job_body(image="!!!not base64!!!"))
        self.assertEqual((st, e["field"]), (422, "image"))
        st, e = self.err(self.d, "POST", "/v1/jobs", job_body(webhook={"url": "http://127.0.0.1/x",
                                                                       "events": ["succeeded"]}))
        self.assertEqual((st, e["field"]), (422, "webhook.url"))

    def test_not_found_and_method(self):
        st, e = self.err(self.d, "GET", "/nope")
        self.assertEqual((st, e["code"]), (404, "not_found"))
        st, e = self.err(self.d, "GET", "/v1/jobs/xyz")
        self.assertEqual(st, 404)
        st, e = self.err(self.d, "GET", "/v1/jobs/0123456789abcdef01234567")
        self.assertEqual(st, 404)
        st, h, _ = self.d.request("PUT", "/v1/jobs/0123456789abcdef01234567")
        self.assertEqual(st, 405)
        self.assertIn("DELETE", h["allow"])
        st, h, _ = self.d.request("DELETE", "/v1/jobs")
        self.assertEqual(st, 405)

    def test_malformed_bodies_do_not_hurt(self):
        rnd = random.Random(7)
        bodies = []
        for i in range(40):
            bodies.append(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300))))
        bodies += [b"[" * 5000 + b"]" * 5000, b"{\"a\":" * 3000, b"1e999999", b"-" + b"9" * 5000,
                   b'{"type":"extras","resize":1e400}', b"null", b"[]", b'"str"', b"{}", b"",
                   b'{"type":1}', b'{"type":"extras","image":5}', b'{"type":"extras","image":[]}',
                   b'{"type":"extras","image":"' + PNG_B64.encode() + b'","resize":"2"}',
                   b'{"type":"extras","image":"' + PNG_B64.encode() + b'","resize":-1}',
                   b'{"type":"extras","image":"' + PNG_B64.encode() + b'","width":99999999999999999999}',
                   b'{"type":"extras","priority":{},"image":"' + PNG_B64.encode() + b'"}',
                   b'{"type":"extras","pool":"../../etc","image":"' + PNG_B64.encode() + b'"}',
                   b'{"type":"extras","metadata":[1],"image":"' + PNG_B64.encode() + b'"}',
                   b'{"type":"extras","type":"extras"}', b'{"\xff\xfe":1}', b'{"type":"extras\x00"}',
                   b'{"type":"extras","image":"' + base64.b64encode(b"GIF89a" + b"\0" * 50) + b'"}']
        while len(bodies) < 100:
            bodies.append(json.dumps({"type": "extras", "image": rnd.choice([None, 1, "", "AAAA", [], {}]),
                                      rnd.choice(["resize", "width", "x"]): rnd.choice([0, -5, 1e300, "x", None])}).encode())
        for b in bodies:
            st, h, data = self.d.request("POST", "/v1/jobs", b, {"Content-Type": "application/json"})
            self.assertTrue(400 <= st < 500, (st, b[:80], data[:200]))
            json.loads(data)
        self.assertEqual(self.d.request("GET", "/healthz")[0], 200)

    def test_body_too_large(self):
        d = daemon(self.redis, self.tmp, "--max-body", "64K")
        try:
            st, e = self.err(d, "POST", "/v1/jobs", b"x" * (100 * 1024))
            self.assertEqual((st, e["code"]), (413, "body_too_large"))
            self.assertEqual(d.request("GET", "/healthz")[0], 200)
        finally:
            self.assertEqual(d.stop(), 0)

    # ------------------------------------------------------------ listing
    def test_list_with_cursor(self):
        prefix = "list%d:" % random.randrange(1 << 30)
        d = daemon(self.redis, self.tmp, prefix=prefix)
        try:
            ids = []
            for _ in range(7):
                j, _ = self.submit(d)
                ids.append(j["id"])
                time.sleep(0.002)
            seen, cursor = [], None
            while True:
                path = "/v1/jobs?limit=3" + ("&cursor=" + cursor if cursor else "")
                st, _, page = d.json("GET", path)
                self.assertEqual(st, 200, page)
                self.assertLessEqual(len(page["jobs"]), 3)
                seen += [x["id"] for x in page["jobs"]]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            self.assertEqual(seen, list(reversed(ids)))
            # expired hashes are skipped (and dropped from the index)
            r = self.client()
            r("DEL", prefix + "job:" + ids[3])
            st, _, page = d.json("GET", "/v1/jobs?limit=100")
            self.assertNotIn(ids[3], [x["id"] for x in page["jobs"]])
            self.assertIsNone(r("ZSCORE", prefix + "jobs", ids[3]))
            st, _, page = d.json("GET", "/v1/jobs?state=queued&limit=2")
            self.assertEqual([x["id"] for x in page["jobs"]], [ids[6], ids[5]])
            for q, field in (("state=bogus", "state"), ("limit=0", "limit"), ("limit=101", "limit"),
                             ("limit=x", "limit"), ("cursor=%%%", "cursor"), ("cursor=abc", "cursor")):
                st, e = self.err(d, "GET", "/v1/jobs?" + q)
                self.assertEqual((st, e["field"]), (422, field), q)
        finally:
            self.assertEqual(d.stop(), 0)

    # ------------------------------------------------------------ cancel
    def test_cancel_queued(self):
        j, _ = self.submit()
        r = self.client()
        stream, entry = r("HMGET", "tessera:job:" + j["id"], "stream", "entry")
        self.assertEqual(len(r("XRANGE", stream, entry, entry)), 1)
        st, _, c = self.d.json("DELETE", "/v1/jobs/" + j["id"])
        self.assertEqual((st, c["state"]), (200, "canceled"))
        self.assertEqual(r("XRANGE", stream, entry, entry), [])
        st, _, g = self.d.json("GET", "/v1/jobs/" + j["id"])
        self.assertEqual(g["state"], "canceled")
        st, e = self.err(self.d, "DELETE", "/v1/jobs/" + j["id"])
        self.assertEqual((st, e["code"], e["state"]), (409, "already_finished", "canceled"))
        st, e = self.err(self.d, "DELETE", "/v1/jobs/0123456789abcdef01234567")
        self.assertEqual(st, 404)

    def test_cancel_running(self):
        j, _ = self.submit()
        r = self.client()
        self.claim(r, j["id"], "w-cancel")
        st, _, c = self.d.json("DELETE", "/v1/jobs/" + j["id"])
        self.assertEqual((st, c["state"], c["cancel_requested"]), (202, "running", True))

    # ------------------------------------------------------------ worker-side helpers
    def claim(self, r, jid, worker, prefix="tessera:"):
        stream, entry = r("HMGET", prefix + "job:" + jid, "stream", "entry")
        res = r.script("claim", prefix, jid, stream, entry, worker, 3600)
        self.assertEqual(res[0], b"run", res)
        return int(res[1])

    def test_sse_lifecycle_and_images(self):
        j, _ = self.submit()
        jid = j["id"]
        s = SSE(self.d.port, "/v1/jobs/%s/events" % jid)
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200)
        self.assertEqual(s.headers["content-type"], "text/event-stream")
        it = s.events()
        first = next(it)
        self.assertEqual((first[1], first[2]["state"]), ("state", "queued"))
        r = self.client()
        attempt = self.claim(r, jid, "w1")
        self.assertEqual(r.script("progress", "tessera:", jid, "w1", "0.5", 5, 10, "half")[0], b"ok")
        png = make_png(8, 8)
        r("SET", "tessera:job:%s:image:%d:0" % (jid, attempt), png)
        self.assertEqual(r.script("finish", "tessera:", jid, "w1", "succeeded", "", "", 1, attempt, 3600)[0], b"ok")
        rest = list(it)  # ends after the final state event
        kinds = [(e[1], e[2].get("state")) for e in rest]
        self.assertEqual(kinds, [("state", "running"), ("progress", None), ("state", "succeeded")])
        ids = [first[0]] + [e[0] for e in rest]
        self.assertEqual(len(set(ids)), len(ids))
        s.close()
        # resume after the running event: only what followed
        s = SSE(self.d.port, "/v1/jobs/%s/events" % jid, {"Last-Event-ID": rest[0][0]})
        self.addCleanup(s.close)
        self.assertEqual([e[1] for e in s.events()], ["progress", "state"])
        s.close()
        st, _, g = self.d.json("GET", "/v1/jobs/" + jid)
        self.assertEqual((g["state"], g["worker"], g["attempts"]), ("succeeded", "w1", 1))
        self.assertEqual(g["images"], ["/v1/jobs/%s/images/0" % jid])
        self.assertIsNotNone(g["finished_at"])
        st, h, data = self.d.request("GET", "/v1/jobs/%s/images/0" % jid)
        self.assertEqual((st, h["content-type"], data), (200, "image/png", png))
        self.assertEqual(h["etag"], '"%s-0"' % jid)
        self.assertIn("immutable", h["cache-control"])
        st, _, _ = self.d.request("GET", "/v1/jobs/%s/images/0" % jid, headers={"If-None-Match": h["etag"]})
        self.assertEqual(st, 304)
        st, e = self.err(self.d, "GET", "/v1/jobs/%s/images/1" % jid)
        self.assertEqual(st, 404)
        j2, _ = self.submit()
        st, e = self.err(self.d, "GET", "/v1/jobs/%s/images/0" % j2["id"])
        self.assertEqual((st, e["code"]), (409, "not_ready"))

    def test_sse_client_disconnects(self):
        j, _ = self.submit()
        for _ in range(20):
            with SSE(self.d.port, "/v1/jobs/%s/events" % j["id"]) as s:
                next(s.events())
        time.sleep(0.3)
        st, _, text = self.d.request("GET", "/metrics")
        m = re.search(rb"^tessera_sse_streams (\d+)$", text, re.M)
        self.assertEqual(int(m.group(1)), 0)

    def test_workers(self):
        r = self.client()
        now = int(time.time() * 1000)
        r("HSET", "tessera:worker:gpu-a", "name", "gpu-a", "device", "cuda:0", "pools", "default,big",
          "budget", "24000", "job", "", "started_at", now - 5000, "heartbeat", now)
        r("EXPIRE", "tessera:worker:gpu-a", 60)
        r("ZADD", "tessera:workers", now, "gpu-a")
        r("ZADD", "tessera:workers", now - 100000, "gone")
        st, _, w = self.d.json("GET", "/v1/workers")
        self.assertEqual(st, 200)
        names = [x["name"] for x in w["workers"]]
        self.assertIn("gpu-a", names)
        self.assertNotIn("gone", names)
        a = [x for x in w["workers"] if x["name"] == "gpu-a"][0]
        self.assertEqual((a["device"], a["pools"], a["job"]), ("cuda:0", ["default", "big"], None))
        self.assertLess(a["heartbeat_age_seconds"], 60)
        r("DEL", "tessera:worker:gpu-a")
        r("ZREM", "tessera:workers", "gpu-a")

    # ------------------------------------------------------------ metrics
    def test_metrics(self):
        j, _ = self.submit()
        r = self.client()
        attempt = self.claim(r, j["id"], "wm")
        r.script("finish", "tessera:", j["id"], "wm", "failed", "boom", "it broke", 0, attempt, 3600)
        self.d.request("GET", "/v1/jobs/" + j["id"])
        st, h, text = self.d.request("GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/plain; version=0.0.4"))
        text = text.decode()
        for line in text.splitlines():
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                continue
            self.assertRegex(line, METRIC_LINE)
        for name in ("tessera_http_requests_total", "tessera_http_request_duration_seconds_bucket",
                     "tessera_jobs_submitted_total", "tessera_jobs_finished_total", "tessera_queue_depth",
                     "tessera_queue_oldest_age_seconds", "tessera_queue_wait_seconds_bucket",
                     "tessera_job_run_seconds_bucket", "tessera_workers_alive", "tessera_webhook_deliveries_total",
                     "tessera_redis_errors_total", "tessera_lease_expirations_total",
                     "process_resident_memory_bytes"):
            self.assertIn("# TYPE " + name.replace("_bucket", ""), text)
        self.assertIn('tessera_http_requests_total{route="/v1/jobs/{id}",code="200"}', text)
        self.assertIn('tessera_jobs_finished_total{type="extras",state="failed"}', text)
        self.assertIn('tessera_job_run_seconds_bucket{type="extras",le="+Inf"}', text)
        self.assertIn('tessera_queue_depth{pool="default"}', text)
        self.assertNotIn(j["id"], text)  # raw paths never become labels

    # ------------------------------------------------------------ auth
    def test_auth(self):
        d = daemon(self.redis, self.tmp, "--api-keys", "alice:s3cret-a,bob:s3cret-b")
        try:
            st, h, _ = d.request("GET", "/v1/jobs")
            self.assertEqual(st, 401)
            self.assertTrue(h["www-authenticate"].startswith("Bearer"))
            st, _, _ = d.request("GET", "/v1/jobs", headers={"Authorization": "Bearer wrong"})
            self.assertEqual(st, 401)
            st, _, _ = d.request("GET", "/v1/jobs", headers={"Authorization": "Bearer s3cret-b"})
            self.assertEqual(st, 200)
            st, _, _ = d.request("POST", "/v1/jobs", job_body(), {"Authorization": "Bearer s3cret-a"})
            self.assertEqual(st, 202)
            self.assertEqual(d.request("GET", "/metrics")[0], 200)
            self.assertEqual(d.request("GET", "/healthz")[0], 200)
        finally:
            self.assertEqual(d.stop(), 0)
        # no keys and a non-loopback address: refused at start
        p = subprocess.run([TESSERAD, "--listen", "0.0.0.0:%d" % free_port(), "--redis",
                            self.redis.url, "--webhooks", "false"],
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"API keys", p.stderr)

    def test_queue_full(self):
        prefix = "full%d:" % random.randrange(1 << 30)
        d = daemon(self.redis, self.tmp, "--max-queue-depth", "2", prefix=prefix)
        try:
            self.submit(d)
            self.submit(d)
            st, h, j = d.json("POST", "/v1/jobs", job_body())
            self.assertEqual((st, j["error"]["code"]), (429, "queue_full"))
            self.assertIn("retry-after", h)
        finally:
            self.assertEqual(d.stop(), 0)

    # ------------------------------------------------------------ Redis outage
    def test_redis_down_and_back(self):
        tmp = tempfile.mkdtemp(prefix="tessera-outage-")
        rs = RedisServer(tmp)
        rs.start()
        d = daemon(rs, tmp)
        try:
            self.assertEqual(d.request("GET", "/readyz")[0], 200)
            rs.kill()
            time.sleep(0.3)
            t0 = time.time()
            self.assertEqual(d.request("GET", "/readyz")[0], 503)
            st, e = self.err(d, "POST", "/v1/jobs", job_body())
            self.assertEqual((st, e["code"]), (503, "redis_unavailable"))
            st, e = self.err(d, "GET", "/v1/jobs/0123456789abcdef01234567")
            self.assertEqual(st, 503)
            self.assertLess(time.time() - t0, 2)
            self.assertEqual(d.request("GET", "/healthz")[0], 200)
            self.assertEqual(d.request("GET", "/metrics")[0], 200)
            rs.start()
            deadline = time.time() + 8
            while time.time() < deadline and d.request("GET", "/readyz")[0] != 200:
                time.sleep(0.1)
            self.assertEqual(d.request("GET", "/readyz")[0], 200)
            st, _, j = d.json("POST", "/v1/jobs", job_body())
            self.assertEqual(st, 202, j)
            st, _, text = d.request("GET", "/metrics")
            m = re.search(rb"^tessera_redis_errors_total (\d+)$", text, re.M)
            self.assertGreater(int(m.group(1)), 0)
        finally:
            self.assertEqual(d.stop(), 0)
            rs.kill()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
