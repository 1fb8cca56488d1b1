"""test_cli_eval.py - `tessera eval` and `tessera model info` (worker/eval_cmd.c)
on the tiny golden models (tests/golden/models/, make_model_golden.py) and the
conditioning fixtures (tests/golden/cond/, make_cond_golden.py).

Stdlib only: a small safetensors reader/writer below. Outputs must match the
expected tensors within a relative error of 1e-4 (max|a-b| / max|ref|).
Needs $TESSERA_BUILD (set by ctest) and, for `eval text`, the CLIP vocabulary
(scripts/fetch-clip-vocab.sh)."""
import hashlib
import json
import os
import struct
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLD = os.path.join(ROOT, "tests", "golden")
MODELS = os.path.join(GOLD, "models")
BUILD = os.environ.get("TESSERA_BUILD", os.path.join(ROOT, "build"))
TESSERA = os.path.join(BUILD, "tessera")

# single files do not carry what the tiny models need (real SD files follow the conventions)
SINGLE_FLAGS = {"sd1-tiny": ["--groups", "8", "--text-heads", "4"],
                "sd2-tiny": ["--groups", "8", "--unet-head-dim", "8", "--text-heads", "2"]}

FMT = {"F32": ("f", 4), "F64": ("d", 8), "I64": ("q", 8), "I32": ("i", 4)}


def st_read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, d in header.items():
        if name == "__metadata__":
            continue
        c, size = FMT[d["dtype"]]
        b, e = d["data_offsets"]
        count = (e - b) // size
        out[name] = (d["dtype"], d["shape"], list(struct.unpack("<%d%s" % (count, c), data[base + b:base + e])))
    return out


def st_write(path, tensors):
    """tensors: name -> (shape, list of floats), written as F32."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        shape, vals = tensors[name]
        blob = struct.pack("<%df" % len(vals), *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def rel_err(got, ref):
    assert len(got) == len(ref), (len(got), len(ref))
    md = max(abs(a - b) for a, b in zip(got, ref))
    mr = max(abs(b) for b in ref)
    return md / mr


def vocab_available():
    for p in (os.environ.get("TESSERA_CLIP_VOCAB"),
              os.environ.get("TESSERA_DATA") and os.path.join(os.environ["TESSERA_DATA"], "bpe_simple_vocab_16e6.txt.gz"),
              os.path.expanduser("~/.cache/tessera/bpe_simple_vocab_16e6.txt.gz")):
        if p and os.path.exists(p):
            return True
    return False


class CliEval(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(TESSERA):
            raise unittest.SkipTest("no %s (build first)" % TESSERA)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.env = dict(os.environ, TE_THREADS="2")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_cli(self, *args, rc=0):
        p = subprocess.run([TESSERA] + [str(a) for a in args], capture_output=True, text=True, env=self.env,
                           timeout=120)
        self.assertEqual(p.returncode, rc, "tessera %s\nstdout: %s\nstderr: %s" % (" ".join(map(str, args)),
                                                                                p.stdout, p.stderr))
        return p

    def model(self, name, single):
        if single:
            return [os.path.join(MODELS, name + ".safetensors")] + SINGLE_FLAGS[name]
        return [os.path.join(MODELS, name)]

    def out(self, tag):
        return os.path.join(self.tmp.name, tag + ".safetensors")

    def test_unet(self):
        for name in ("sd1-tiny", "sd2-tiny"):
            exp = st_read(os.path.join(MODELS, "expected", name + "_unet.safetensors"))
            for single in (False, True):
                for case in ("1", "mix"):
                    inp = self.out("unet_in_%s_%s" % (name, case))
                    st_write(inp, {"x": (exp["x"][1], exp["x"][2]), "t": (exp["t_" + case][1], exp["t_" + case][2]),
                                   "context": (exp["context"][1], exp["context"][2])})
                    o = self.out("unet_out")
                    m = self.model(name, single)
                    self.run_cli("eval", "unet", "--model", *m, "--in", inp, "--out", o, "--threads", "2")
                    got = st_read(o)["out"]
                    self.assertEqual(got[1], exp["out_" + case][1])
                    r = rel_err(got[2], exp["out_" + case][2])
                    self.assertLessEqual(r, 1e-4, "%s single=%s t=%s" % (name, single, case))

    def test_vae(self):
        for name in ("sd1-tiny", "sd2-tiny"):
            exp = st_read(os.path.join(MODELS, "expected", name + "_vae.safetensors"))
            for single in (False, True):
                m = self.model(name, single)
                inp, o = self.out("vae_in"), self.out("vae_out")
                st_write(inp, {"latent": (exp["latent"][1], exp["latent"][2])})
                self.run_cli("eval", "vae-decode", "--model", *m, "--in", inp, "--out", o)
                got = st_read(o)["image"]
                self.assertEqual(got[1], exp["decoded"][1])
                self.assertLessEqual(rel_err(got[2], exp["decoded"][2]), 1e-4)
                st_write(inp, {"image": (exp["image"][1], exp["image"][2])})
                self.run_cli("eval", "vae-encode", "--model", *m, "--in", inp, "--out", o)
                got = st_read(o)
                for k in ("mean", "std"):
                    self.assertEqual(got[k][1], exp[k][1])
                    self.assertLessEqual(rel_err(got[k][2], exp[k][2]), 1e-4, "%s %s" % (name, k))

    def test_text(self):
        if not vocab_available():
            self.skipTest("CLIP vocabulary missing (scripts/fetch-clip-vocab.sh)")
        with open(os.path.join(GOLD, "cond", "cases.json")) as f:
            cases = json.load(f)["cases"]
        gold = {n: st_read(os.path.join(GOLD, "cond", n + ".safetensors")) for n in ("sd1-tiny", "sd2-tiny")}
        for c in cases:
            if c["name"] not in ("weighted", "weighted_skip2", "break", "long3"):
                continue
            for single in (False, True):
                o = self.out("text_out")
                self.run_cli("eval", "text", "--model", *self.model(c["model"], single), "--prompt", c["prompt"],
                             "--clip-skip", c["clip_skip"], "--out", o)
                got, g = st_read(o), gold[c["model"]]
                self.assertEqual(got["ids"][0], "I32")
                self.assertEqual(got["ids"][1], [c["chunks"], 77])
                self.assertEqual(got["ids"][2], g[c["name"] + "_ids"][2])
                self.assertEqual(got["hidden"][1], g[c["name"] + "_hidden"][1])
                self.assertLessEqual(rel_err(got["hidden"][2], g[c["name"] + "_hidden"][2]), 1e-4,
                                     "%s %s single=%s" % (c["model"], c["name"], single))

    def test_model_info(self):
        cache = os.path.join(self.tmp.name, "hashes.json")
        for name, arch, pred in (("sd1-tiny", "SD1", "epsilon"), ("sd2-tiny", "SD2", "v_prediction")):
            path = os.path.join(MODELS, name + ".safetensors")
            with open(path, "rb") as f:
                short = hashlib.sha256(f.read()).hexdigest()[:10]
            for _ in range(2):  # second run: from the cache
                p = self.run_cli("model", "info", path, "--hash-cache", cache)
                self.assertIn(arch, p.stdout)
                self.assertIn(pred, p.stdout)
                self.assertIn(short, p.stdout)
                self.assertIn("tensors:", p.stdout)
            self.assertIn(os.path.abspath(path), open(cache).read())
            j = json.loads(self.run_cli("model", "info", path, "--json", "--hash-cache", cache).stdout)
            self.assertEqual(j["architecture"], arch)
            self.assertEqual(j["hash"], short)
            self.assertEqual(j["prediction_type"], pred)
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(n))
            self.assertEqual(j["tensor_count"], len([k for k in header if k != "__metadata__"]))
            self.assertEqual(j["unet"]["in_channels"], 4)
            self.assertEqual(j["text_encoder"]["family"], "clip" if arch == "SD1" else "openclip")
            jf = json.loads(self.run_cli("model", "info", os.path.join(MODELS, name), "--json").stdout)
            self.assertEqual(jf["architecture"], arch)
            self.assertEqual(jf["prediction_type"], pred)
            self.assertEqual(jf["unet"], j["unet"])
            self.assertIsNone(jf["hash"])

    def test_usage(self):
        self.run_cli("eval", "unet", "--model", "x", "--bogus", "1", rc=2)
        self.run_cli("eval", "nonsense", "--model", "x", "--out", "y", rc=2)
        self.run_cli("model", "info", rc=2)
        self.assertIn("eval text", self.run_cli("eval", "--help").stdout)
        self.assertIn("model info", self.run_cli("--help").stdout + self.run_cli("--help").stderr)
        p = self.run_cli("eval", "unet", "--model", os.path.join(self.tmp.name, "missing.safetensors"),
                         "--in", os.path.join(self.tmp.name, "none"), "--out", self.out("x"), rc=1)
        self.assertIn("tessera:", p.stderr)


if __name__ == "__main__":
    unittest.main()
