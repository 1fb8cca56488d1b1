"""harness.py - shared pieces of Tessera's integration tests (Python stdlib only).

Everything here is real: a redis-server on a temporary unix socket, the built
tesserad / tessera-worker binaries as processes, HTTP over loopback sockets.

    with Farm(workers=1) as farm:
        job = farm.submit({"type": "extras", ...})
        farm.wait(job["id"])

Binaries come from $TESSERA_BUILD (default: <repo>/build); redis-server from
$REDIS_SERVER (default: redis-server on PATH). $TESSERA_DAEMON_WRAPPER is put
before tesserad by Daemon, e.g. "valgrind --leak-check=full --error-exitcode=99".

Also here for the tests that need less than a Farm: Redis (a RESP client),
RedisServer, Daemon (one tesserad with its own flags), SSE (an event-stream
reader), Proc, free_port, make_png / read_png.
"""
import base64
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import zlib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("TESSERA_BUILD", os.path.join(REPO, "build"))
TESSERAD = os.path.join(BUILD, "tesserad")
LUA_DIR = os.path.join(REPO, "proto", "lua")
WORKER = os.path.join(BUILD, "tessera-worker")
CLI = os.path.join(BUILD, "tessera")


def have_binaries(*names):
    return all(os.access(os.path.join(BUILD, n), os.X_OK) for n in names)


# ---------------------------------------------------------------- images
def make_png(w, h, alpha=False, seed=0, text=None):
    """A real PNG (RGB or RGBA) with a deterministic pattern; optional tEXt chunks."""
    ch = 4 if alpha else 3
    rows = []
    for y in range(h):
        row = bytearray([0])
        for x in range(w):
            px = [(x * 7 + seed) % 256, (y * 5 + seed * 3) % 256, ((x ^ y) * 3) % 256]
            if alpha:
                px.append((x * 255 // max(1, w - 1)) % 256)
            row += bytes(px)
        rows.append(bytes(row))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6 if alpha else 2, 0, 0, 0))
    for k, v in (text or {}).items():
        out += chunk(b"tEXt", k.encode("latin-1") + b"\0" + v.encode("latin-1"))
    return out + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")


def read_png(data):
    """Decode an 8-bit RGB/RGBA non-interlaced PNG: (w, h, channels, pixels bytes, texts)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, texts = 8, b"", {}
    w = h = ct = None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        t = data[pos + 4:pos + 8]
        d = data[pos + 8:pos + 8 + n]
        assert zlib.crc32(t + d) & 0xFFFFFFFF == struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        if t == b"IHDR":
            w, h, bd, ct, _, _, il = struct.unpack(">IIBBBBB", d)
            assert bd == 8 and ct in (2, 6) and il == 0
        elif t == b"IDAT":
            idat += d
        elif t == b"tEXt":
            k, v = d.split(b"\0", 1)
            texts[k.decode("latin-1")] = v.decode("latin-1")
        elif t == b"iTXt":
            k, rest = d.split(b"\0", 1)
            comp, rest = rest[0], rest[2:]
            _lang, rest = rest.split(b"\0", 1)
            _tk, v = rest.split(b"\0", 1)
            texts[k.decode("latin-1")] = (zlib.decompress(v) if comp else v).decode("utf-8")
        pos += 12 + n
    ch = 3 if ct == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * ch
    out = bytearray()
    prev = bytearray(stride)
    p = 0
    for _ in range(h):
        f = raw[p]
        line = bytearray(raw[p + 1:p + 1 + stride])
        p += 1 + stride
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b = prev[i]
            c = prev[i - ch] if i >= ch else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        out += line
        prev = line
    return w, h, ch, bytes(out), texts


# ---------------------------------------------------------------- redis
class RedisError(RuntimeError):
    """An error reply from Redis (or a reply the client cannot parse)."""


class Redis:
    """A minimal binary-safe RESP2 client over a unix socket.

    r("HGET", key, field) sends one command and returns its reply: str for a
    status, int, bytes or None for a bulk string, a list for an array. An
    error reply raises RedisError. Arguments: bytes as they are, anything else
    as str(a) in UTF-8."""

    def __init__(self, path, timeout=10):
        self.path = path
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        try:
            self.s.connect(path)
        except OSError:
            self.s.close()
            raise
        self.f = self.s.makefile("rb")

    def close(self):
        try:
            self.f.close()
            self.s.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __call__(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RedisError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            d = self.f.read(n + 2)
            return d[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RedisError("bad RESP line %r" % line)

    def hgetall(self, key):
        r = self("HGETALL", key) or []
        return {r[i].decode(): r[i + 1].decode("utf-8", "replace") for i in range(0, len(r), 2)}

    def now_ms(self):
        """Redis's clock (TIME) in milliseconds."""
        t = self("TIME")
        return int(t[0]) * 1000 + int(t[1]) // 1000

    def script(self, name, *argv):
        """EVAL proto/lua/<name>.lua with what it uses of common.lua prepended, as the build does; no keys."""
        return self("EVAL", lua_source(name), 0, *argv)


def lua_source(name):
    """proto/lua/<name>.lua as the build embeds it (proto/embed_lua.cmake): the
    header of common.lua, then each "-- @part NAME" block whose NAME occurs as
    a word in the script or in a block already taken, in common.lua's order."""
    with open(os.path.join(LUA_DIR, "common.lua")) as f:
        common = f.read()
    with open(os.path.join(LUA_DIR, name + ".lua")) as f:
        body = f.read()
    chunks = common.split("\n-- @part ")
    header, parts = chunks[0], []
    for c in chunks[1:]:
        pname, _, text = c.partition("\n")
        parts.append((pname.strip(), text))
    take = [False] * len(parts)
    seen = body
    changed = True
    while changed:
        changed = False
        for i, (pname, text) in enumerate(parts):
            if not take[i] and re.search(r"(^|[^A-Za-z0-9_])" + re.escape(pname) + r"([^A-Za-z0-9_]|$)", seen):
                take[i] = True
                seen += "\n" + text
                changed = True
    out = header
    for i, (_, text) in enumerate(parts):
        if take[i]:
            out += "\n" + text
    return out + "\n" + body


class RedisServer:
    """redis-server on a unix socket (default <tmpdir>/redis.sock), no persistence.

    start() again after stop() or kill() restarts it on the same socket."""

    def __init__(self, tmpdir, sock=None, args=()):
        self.dir = tmpdir
        self.sock = sock or os.path.join(tmpdir, "redis.sock")
        self.args = list(args)
        self.proc = None

    @property
    def url(self):
        return "unix://" + self.sock

    def start(self):
        exe = os.environ.get("REDIS_SERVER") or "redis-server"
        self.proc = subprocess.Popen(
            [exe, "--port", "0", "--unixsocket", self.sock, "--save", "", "--appendonly", "no",
             "--dir", self.dir] + self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                r = Redis(self.sock)
                r("PING")
                r.close()
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self, graceful=False):
        """SIGKILL it, or SIGTERM and wait up to 10 s when graceful."""
        if self.proc and self.proc.poll() is None:
            if graceful:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self):
        """SIGKILL it and remove its socket file: clients find nothing there until start()."""
        self.stop()
        try:
            os.unlink(self.sock)
        except FileNotFoundError:
            pass

    def client(self):
        return Redis(self.sock)


# ---------------------------------------------------------------- processes
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Proc:
    def __init__(self, args, log_path, env=None):
        self.args = args
        self.log_path = log_path
        self.log = open(log_path, "ab")
        e = dict(os.environ)
        e.update(env or {})
        try:
            self.p = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=e)
        except BaseException:
            self.log.close()
            raise

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def stop(self, timeout=15):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode

    def kill(self):
        if self.alive():
            self.p.kill()
            self.p.wait()
        self.log.close()

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


# ---------------------------------------------------------------- HTTP
def http_request(port, method, path, body=None, headers=None, timeout=30):
    """One request to 127.0.0.1:port on its own connection: (status, headers
    with lower-case names, body bytes). A dict or list body is sent as JSON."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def json_body(status, data):
    """The parsed JSON body of a response (None when empty); AssertionError when it is not JSON."""
    try:
        return json.loads(data) if data else None
    except ValueError:
        raise AssertionError("not JSON (%d): %r" % (status, data[:200]))


def wait_http(port, proc=None, timeout=15):
    """Wait until tesserad on port answers GET /healthz with 200; RuntimeError
    (with its log) when proc, a Proc, exits first or the time runs out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError("tesserad exited:\n" + proc.output())
        try:
            if http_request(port, "GET", "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("tesserad did not answer /healthz" + (":\n" + proc.output() if proc else ""))


class Daemon(Proc):
    """One tesserad on a free loopback port against redis_url, with args after
    --listen and --redis; logs to <tmp>/tesserad-<port>.log. Put under
    $TESSERA_DAEMON_WRAPPER when set (e.g. valgrind). Unlike Farm.json,
    json() returns (status, headers, body)."""

    def __init__(self, redis_url, tmp, args=(), wait=True, timeout=30):
        self.port = free_port()
        wrapper = shlex.split(os.environ.get("TESSERA_DAEMON_WRAPPER", ""))
        argv = wrapper + [TESSERAD, "--listen", "127.0.0.1:%d" % self.port, "--redis", redis_url] + list(args)
        Proc.__init__(self, argv, os.path.join(tmp, "tesserad-%d.log" % self.port))
        if wait:
            try:
                self.wait_http(timeout)
            except BaseException:
                self.kill()
                raise

    def wait_http(self, timeout=30):
        wait_http(self.port, self, timeout)

    def request(self, method, path, body=None, headers=None, timeout=10):
        return http_request(self.port, method, path, body, headers, timeout)

    def json(self, method, path, body=None, headers=None):
        st, h, data = self.request(method, path, body, headers)
        return st, h, json_body(st, data)

    def stop(self, timeout=60):
        """SIGTERM, then SIGKILL after timeout (valgrind is slow to exit); the exit status."""
        return Proc.stop(self, timeout)


class SSE:
    """A GET of a Server-Sent Events stream from tesserad on port."""

    def __init__(self, port, path, headers=None, timeout=10):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.r = None
        try:
            self.c.request("GET", path, headers=headers or {})
            self.r = self.c.getresponse()
        except BaseException:
            self.c.close()
            raise
        self.status = self.r.status
        self.headers = {k.lower(): v for k, v in self.r.getheaders()}

    def events(self):
        """Yield (id, event, data parsed as JSON) until the stream ends."""
        ev = {}
        while True:
            line = self.r.readline()
            if not line:
                return
            line = line.decode().rstrip("\n")
            if line == "":
                if "event" in ev:
                    yield ev.get("id"), ev["event"], json.loads(ev.get("data", "null"))
                ev = {}
            elif line.startswith(":"):
                continue
            else:
                k, _, v = line.partition(": ")
                ev[k] = v

    def close(self):
        if self.r is not None:
            self.r.close()
        self.c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Farm:
    """redis-server + tesserad + N workers, all real processes, in a temp dir."""

    def __init__(self, workers=1, daemon_args=(), worker_args=(), lease_ms=2000):
        self.nworkers = workers
        self.daemon_args = list(daemon_args)
        self.worker_args = list(worker_args)
        self.lease_ms = lease_ms
        self.tmp = tempfile.mkdtemp(prefix="tessera-it-")
        self.redis = RedisServer(self.tmp)
        self.daemon = None
        self.workers = []
        self.port = None

    def __enter__(self):
        self.redis.start()
        self.start_daemon()
        for _ in range(self.nworkers):
            self.add_worker()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for w in self.workers:
            w.stop(timeout=10)
        if self.daemon:
            self.daemon.stop()
        self.redis.stop()
        if os.environ.get("TESSERA_KEEP_TMP") is None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def start_daemon(self, extra=()):
        self.port = self.port or free_port()
        args = [TESSERAD, "--listen", "127.0.0.1:%d" % self.port, "--redis", self.redis.url] + self.daemon_args + list(extra)
        self.daemon = Proc(args, os.path.join(self.tmp, "tesserad.log"))
        self.wait_http()

    def add_worker(self, name=None, extra=()):
        name = name or "w%d" % len(self.workers)
        args = [WORKER, "--redis", self.redis.url, "--name", name, "--lease-ms", str(self.lease_ms),
                "--heartbeat-ms", "200"] + self.worker_args + list(extra)
        w = Proc(args, os.path.join(self.tmp, "worker-%s.log" % name))
        self.workers.append(w)
        return w

    def wait_http(self, timeout=15):
        wait_http(self.port, self.daemon, timeout)

    def request(self, method, path, body=None, headers=None, timeout=30):
        return http_request(self.port, method, path, body, headers, timeout)

    def json(self, method, path, body=None, headers=None):
        st, h, data = self.request(method, path, body, headers)
        return st, json_body(st, data)

    def submit(self, job, headers=None, expect=202):
        st, body = self.json("POST", "/v1/jobs", job, headers)
        assert st == expect, "submit: HTTP %d %r" % (st, body)
        return body

    def wait(self, job_id, states=("succeeded", "failed", "canceled"), timeout=60):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            st, last = self.json("GET", "/v1/jobs/" + job_id)
            assert st == 200, (st, last)
            if last["state"] in states:
                return last
            time.sleep(0.05)
        raise AssertionError("job %s not in %s after %ss: %r" % (job_id, states, timeout, last))

    def image(self, job_id, n=0):
        st, h, data = self.request("GET", "/v1/jobs/%s/images/%d" % (job_id, n))
        assert st == 200, (st, data[:200])
        return data


def extras_job(png, **kw):
    j = {"type": "extras", "image": base64.b64encode(png).decode()}
    j.update(kw)
    return j
