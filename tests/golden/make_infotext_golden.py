#!/usr/bin/env python3
"""Generate tests/golden/infotext/*.json: expected outputs for proto/infotext.c.

Run by hand, never in CI; the outputs are committed and read by
tests/unit/test_infotext.c.  The C parser implements the A1111 infotext
regex by hand; this script runs the same regexes through Python's own `re`
(Unicode str semantics), so the golden cases check the hand-written matcher
against the real thing.  Everything here is written from the description in
shared/reference/a1111-compat.md sections 2.1 and 2.2 (regexes verbatim from
there), with A1111's default options (no styles, no skipped fields, no
old-hires-fix width/height option, auto back-compat on).

Needs `packaging` (version comparison of the "Version" field):
    pip install --target /tmp/pylib packaging
    PYTHONPATH=/tmp/pylib python3 tests/golden/make_infotext_golden.py

Also: `make_infotext_golden.py --tables` prints the Unicode \\w and \\d range
tables that proto/infotext.c embeds (from this Python's unicodedata).

Divergences that Tessera documents and this script mirrors, so that the
expected values are what the C code must produce:
  - lone UTF-16 surrogates from JSON "\\udXXX" escapes become U+FFFD (C keeps
    UTF-8 only);
  - a "First pass size" whose numbers do not convert (Python would raise
    from int() or divide by zero) is left as parsed instead of failing.

Files:
  parse_cases.json  [{"text": str, "expected": [[key, value], ...]}]   (order matters)
  quote_cases.json  [[in, out], ...]
  build_cases.json  [{"prompt", "negative", "params": [[k, v|null]...], "out"}]
  float_cases.json  [[hex of the IEEE-754 bits, repr], ...]
"""
import json
import math
import os
import random
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUTDIR = os.path.join(HERE, "infotext")

PARAM_RE = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
SIZE_RE = re.compile(r"^(\d+)x(\d+)$")
NEG = "Negative prompt:"


def quote(value):
    s = str(value)
    if "," in s or "\n" in s or ":" in s:
        return json.dumps(s, ensure_ascii=False)
    return s


def build(prompt, negative, params):
    entries = []
    order, vals = [], {}  # dict semantics: a repeated key keeps its first place
    for k, v in params:
        if k not in vals:
            order.append(k)
        vals[k] = v
    for k in order:
        v = vals[k]
        if v is None:
            continue
        entries.append(k if k == v else "%s: %s" % (k, quote(v)))
    neg = ("\n" + NEG + " " + negative) if negative else ""
    return (prompt + neg + "\n" + ", ".join(entries)).strip()


def json_unquote(v):
    try:
        return json.loads(v)
    except Exception:
        return v


def py_int(v):
    return int(v)


def first_pass_fix(res):
    fw, fh = res.get("First pass size-1"), res.get("First pass size-2")
    if fw is None or fh is None:
        return
    try:
        fw, fh = py_int(fw), py_int(fh)
        w = py_int(res.get("Size-1", 512))
        h = py_int(res.get("Size-2", 512))
        if fw == 0 or fh == 0:
            scale = math.sqrt(512 * 512 / (w * h))
            fw = math.ceil(scale * w / 64) * 64
            fh = math.ceil(scale * h / 64) * 64
    except Exception:
        return  # Tessera: leave as parsed (A1111 raises)
    res["Size-1"], res["Size-2"] = fw, fh
    res["Hires resize-1"], res["Hires resize-2"] = w, h


def parse_version(text):
    from packaging import version
    if text is None:
        return None
    m = re.match(r'([^-]+-[^-]+)-.*', text)
    if m:
        text = m.group(1)
    try:
        return version.parse(text)
    except Exception:
        return None


def backcompat(res):
    from packaging import version
    ver = parse_version(res.get("Version"))
    if ver is None:
        return
    v160, v170, v180 = version.parse("1.6.0"), version.parse("v1.7.0-225"), version.parse("1.8.0")
    if ver < v160 and "[" in res.get("Prompt", ""):
        res["Old prompt editing timelines"] = True
    if ver < v160 and res.get("Sampler", "") in ("DDIM", "PLMS"):
        res["Pad conds v0"] = True
    if ver < v170:
        res["Downcast alphas_cumprod"] = True
    if ver < v180 and res.get("Refiner"):
        res["Refiner switch by sampling steps"] = True


DEFAULTS_A = [("Hires sampler", "Use same sampler"), ("Hires checkpoint", "Use same checkpoint"),
              ("Hires prompt", ""), ("Hires negative prompt", ""), ("Mask mode", "Inpaint masked"),
              ("Masked content", "original"), ("Inpaint area", "Whole picture"),
              ("Masked area padding", 32)]
DEFAULTS_B = [("RNG", "GPU"), ("Schedule type", "Automatic"), ("Schedule max sigma", 0),
              ("Schedule min sigma", 0), ("Schedule rho", 0), ("VAE Encoder", "Full"),
              ("VAE Decoder", "Full"), ("FP8 weight", "Disable")]


def parse(text):
    lines = text.strip().split("\n")
    params_line = lines.pop()
    if len(PARAM_RE.findall(params_line)) < 3:
        lines.append(params_line)
        params_line = ""
    prompt, negative, in_neg = "", "", False
    for line in lines:
        line = line.strip()
        if line.startswith(NEG):
            in_neg = True
            line = line[len(NEG):].strip()
        if in_neg:
            negative = line if negative == "" else negative + "\n" + line
        else:
            prompt = line if prompt == "" else prompt + "\n" + line
    res = {"Prompt": prompt, "Negative prompt": negative}
    for k, v in PARAM_RE.findall(params_line):
        if v == "":
            continue  # A1111: v[0] raises, the pair is dropped
        if v[0] == '"' and v[-1] == '"':
            v = json_unquote(v)
        m = SIZE_RE.match(v)
        if m:
            res[k + "-1"], res[k + "-2"] = m.group(1), m.group(2)
        else:
            res[k] = v
    res.setdefault("Clip skip", "1")
    if "Hypernet" in res:
        res["Prompt"] += "<hypernet:%s:%s>" % (res["Hypernet"], res.get("Hypernet strength", "1.0"))
    if "Hires resize-1" not in res:
        res["Hires resize-1"] = 0
        res["Hires resize-2"] = 0
    for k, v in DEFAULTS_A:
        res.setdefault(k, v)
    first_pass_fix(res)
    for k, v in DEFAULTS_B:
        res.setdefault(k, v)
    if "Cache FP16 weight for LoRA" not in res and res["FP8 weight"] != "Disable":
        res["Cache FP16 weight for LoRA"] = False
    backcompat(res)
    return res


def no_surrogates(v):
    if isinstance(v, str):
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in v)
    return v


def expected(res):
    return [[no_surrogates(k), no_surrogates(v)] for k, v in res.items()]


# ---- case generation --------------------------------------------------------------

KEYS = ["Steps", "Sampler", "CFG scale", "Seed", "Size", "Model hash", "Model", "Hires resize",
        "Hires upscale", "Lora hashes", "Version", "a", "ab", "b-c", "x/y", "_k", "1x", "日本語",
        "Négatif", "Sp ace", "k\tt", "Clip skip", "RNG", "First pass size", "Hypernet",
        "Hypernet strength", "FP8 weight", "Refiner", "Prompt", "Schedule type", "é", "ñ-/ ",
        "Denoising strength", "٣key", "k·m", "a\u0301b", "Ⅻ", "x²"]
VALUES = ["20", "Euler a", "512x768", '"quoted, value"', '"esc \\" q"', '"bad', "", "7.0",
          "１２x３４", "٥١٢x٥١٢", '"a\\u00e9"', '"\\ud800"', '"\\ud83d\\ude00"', '"\\ud83d\\u0041"',
          '"a\\nb"', '"tab\\there"', '"x"', '""', '"', '"a"b"', 'v"', "\\", '"\\\\"', "0x0",
          "1024x0", "0x512", "v1.5.2", "v1.6.0-2-gabc", "v1.7.0-RC-5-gf92", "1.7.0", "v1.10.1",
          "bogus", "v1.8.0-RC", "DDIM", "PLMS", "e4m3fn", "Disable", "[a:b:5]", "  spaced  ",
          "ａ：ｂ", "512x512\n", '"512x512\\n"', '"\\u0000x"', "a;b", "x\u3000y", "-5"]
SEPS = [": ", ":", ":  ", " : ", ":\u3000", ":\t"]
JOINS = [", ", ",", " ,", ",,", ",  ", "\t,", ", \u00a0"]
CHARS = list("abcXYZ019 _-/:,\"\\\t\r\x0b\x0c\x1c") + ["\u00a0", "\u3000", "\u2028", "é", "日",
                                                      "١", "\u0301", "😀", "\u0085", "x", "，"]


def rand_text(rng, n):
    return "".join(rng.choice(CHARS) for _ in range(n))


def rand_params_line(rng):
    parts = []
    for _ in range(rng.randint(0, 7)):
        r = rng.random()
        if r < 0.08:
            parts.append(rand_text(rng, rng.randint(1, 12)))
        elif r < 0.12:
            parts.append(rng.choice(KEYS))  # bare key
        else:
            parts.append(rng.choice(KEYS) + rng.choice(SEPS) + rng.choice(VALUES))
    line = ""
    for i, p in enumerate(parts):
        line += (rng.choice(JOINS) if i else "") + p
    if rng.random() < 0.2:
        line = rng.choice([" ", "\t", "\u3000"]) + line
    return line


def rand_prompt_line(rng):
    r = rng.random()
    if r < 0.15:
        return NEG + rng.choice(["", " ", "  "]) + rand_text(rng, rng.randint(0, 10))
    if r < 0.25:
        return rand_params_line(rng)
    if r < 0.3:
        return ""
    return rand_text(rng, rng.randint(0, 20))


def rand_infotext(rng):
    lines = [rand_prompt_line(rng) for _ in range(rng.randint(0, 4))]
    lines.append(rand_params_line(rng))
    sep = rng.choice(["\n", "\n", "\r\n"])
    text = sep.join(lines)
    if rng.random() < 0.2:
        text = rng.choice([" \n", "\t", "\u3000", "\n\n"]) + text + rng.choice(["", " \n", "\u2029"])
    return text


def rand_value(rng):
    r = rng.random()
    if r < 0.3:
        return rng.choice(VALUES)
    if r < 0.4:
        return None
    return rand_text(rng, rng.randint(0, 12))


def hand_cases():
    doc = ("masterpiece, 1girl, <lora:add_detail:0.6>\n"
           "Negative prompt: lowres, bad anatomy\n"
           "Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567, "
           "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.5, "
           "Hires upscale: 2, Hires upscaler: Latent, Lora hashes: \"add_detail: 7c6bad76eb54\", Version: v1.10.1")
    return [
        doc,
        "",
        "just a prompt",
        "a\nb\nSteps: 20, Sampler: Euler a, CFG scale: 7.0",
        "a, b: c\nSteps: 20, Sampler: Euler",
        "Steps: 20, Sampler: Euler, Size: 512x512",
        "p\nNegative prompt: n1\nn2\nNegative prompt: n3\nSteps: 1, Seed: 2, Size: 3x4",
        "p\nSteps: 1, Seed: 2, First pass size: 0x0, Size: 1024x768",
        "p\nSteps: 1, Seed: 2, First pass size: 256x320, Size: 1024x768",
        "p\nSteps: 1, Seed: 2, First pass size: 0x0",
        "p [a:b:3]\nSteps: 1, Sampler: DDIM, Seed: 2, Version: v1.5.2",
        "p\nSteps: 1, Refiner: sdxl, Seed: 2, Version: v1.7.0-RC-5-gf92d6149",
        "p\nSteps: 1, Seed: 2, Version: v1.7.0-225-gabcdef",
        "p\nSteps: 1, Seed: 2, Version: v1.7.0-226-gabcdef",
        "p\nSteps: 1, Seed: 2, Hypernet: hn, Hypernet strength: 0.5",
        "p\nSteps: 1, Seed: 2, Hypernet: hn",
        "p\nSteps: 1, Seed: 2, FP8 weight: Enable for SDXL",
        "p\nSteps: 1, A: \"x, y\", B: \"say \\\"hi\\\", ok\", C: \"back\\\\slash\"",
        "p\nSteps: 1, Empty: , Seed: 2, Size: 5x6",
        "p\nSteps: 1, Seed: 2, Hires resize-2: 7",
        "p\nPrompt: other, Negative prompt: neg, Steps: 3",
        # the hand-written expectations of test_infotext.c, confirmed here
        "p\nSteps: 1, KA: \"x, y\", KB: \"say \\\"hi\\\", ok\", KC: \"back\\\\slash\", "
        "KD: \"caf\\u00e9 \\ud83d\\ude00\", A: 1",
        "Steps: 1, KA: \"open, KB: 2, KC: x\"y, KD: \"\"",
        "  p1  \n\np2\nNegative prompt:   n1\n n2 \nNegative prompt: n3\nSteps: 1, Seed: 2, Size: 3x4",
        "p\nSteps: 1, Empty: , Seed: 2, x/y-z w: 5, a:b, K :v",
        "p\n\u65e5\u672c: \u4e00, Steps:\u300020, Size: \u0665\u0661\u0662x\u0665\u0661\u0662",
        "p\nSteps: 1, Seed: 2, Hires resize: \"1024x1536\\n\"",
        "p\nSteps: 1, Seed: 2, First pass size: 0x0, Size: 1024x768",
        "p\nSteps: 1, Seed: 2, Hypernet: hn, Hypernet strength: 0.5, FP8 weight: Enable",
        "p [a:b:3]\nSteps: 1, Sampler: DDIM, Refiner: x, Version: v1.5.2",
        "p [a:b:3]\nSteps: 1, Sampler: DDIM, Refiner: x, Version: v1.7.0-225-gabcdef",
        "p\nPrompt: other, Steps: 3, Seed: 4",
        "p\nSteps: 1, Seed: 2, Version: 1!0.5",
        "p\nSteps: 1, Seed: 2, Version: v1.6.0.dev3",
        "p\nSteps: 1, Seed: 2, Version: 1.5.0.post1.dev2+local.7",
        "p\nSteps: 1, Seed: 2, Version: V1.6-a1",
        "p\nSteps: 1, Seed: 2, Version: 1.6rc",
        "p\nSteps: 1, Seed: 2, Version: 1.7.0.post225+x",
        "p\nSteps: 1, Seed: 2, Version: 1.7.0.r224",
        "p\nSteps: 1, Seed: 2, Version: 1.7.0-224",
        "p\nSteps: 1, Seed: 2, Version: 1.7.0rev",
        "p\nSteps: 1, Seed: 2, Version:  1.5 ",
        "p\nSteps: 1, Seed: 2, Version: 1.5.",
        "p\nSteps: 1, Seed: 2, Version: 1.5+",
        "p\nSteps: 1, Seed: 2, Version: 1.5-preview.3_post_4-dev",
        "p\nSteps: 1, Seed: 2, Version: 1.0.0.0.0.0.0.0.0.0.1",
        "p\nSteps: 1, Seed: 2, Version: 1.6.0.0.0.0.0.0.0.0",
        "p\nSteps: 1, Seed: 2, First pass size: 5_12x3, Size: -2x4",
        "p\nSteps: 1, Seed: 2, First pass size: 0x0, Size: 0x4",
        "p\nSteps: 1, Seed: 2, First pass size: 0x7, Size: \u0665\u0661\u0662x\u0665\u0661\u0662",
        "p\nSteps: 1, Seed: 2, First pass size: 0x7, Size-1: \" 5_1_2 \", Size-2: \"+6\"",
    ]


def roundtrip_cases(rng, n):
    out = []
    for _ in range(n):
        prompt = "\n".join(rand_text(rng, rng.randint(0, 15)) for _ in range(rng.randint(1, 3)))
        negative = "" if rng.random() < 0.3 else rand_text(rng, rng.randint(0, 15))
        params = [(rng.choice(KEYS), rand_value(rng)) for _ in range(rng.randint(0, 8))]
        out.append((prompt, negative, params))
    return out


def float_cases(rng):
    vals = [0.0, -0.0, 1.0, 7.0, 7.5, 0.75, 0.1, 0.2, 0.3, 1e-05, 0.0001, 1e16, 1e15, 123456789012345678.0,
            1.5e16, 9007199254740992.0, 1e22, 1e23, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
            float("inf"), float("-inf"), 0.1 + 0.2, 2 / 3, -1.25, 100.0, 1e100, 12345.678, 0.5, 2.0 ** 0.5]
    vals += [2.0 ** e for e in range(-1074, 1024, 3)]
    vals += [3 * 2.0 ** e for e in range(-1000, 1000, 17)]
    for _ in range(1500):
        vals.append(struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0])
    for _ in range(500):
        vals.append(round(rng.uniform(-100, 100), rng.randint(0, 6)))
    out = []
    for v in vals:
        bits = struct.unpack("<Q", struct.pack("<d", v))[0]
        out.append(["%016x" % bits, repr(v)])
    out.append(["7ff8000000000000", "nan"])
    return out


def tables():
    def ranges(pred):
        out, start = [], None
        for c in range(0x110000):
            if pred(c):
                if start is None:
                    start = c
            elif start is not None:
                out.append((start, c - 1))
                start = None
        if start is not None:
            out.append((start, 0x10FFFF))
        return out

    w = ranges(lambda c: c >= 0x80 and re.match(r"\w", chr(c)) is not None)
    d = ranges(lambda c: c >= 0x80 and re.match(r"\d", chr(c)) is not None)
    import unicodedata
    print("/* generated by tests/golden/make_infotext_golden.py --tables, Python %s, Unicode %s */"
          % (sys.version.split()[0], unicodedata.unidata_version))
    for name, rs in (("WORD_RANGES", w), ("DIGIT_RANGES", d)):
        print("static const uint32_t %s[][2] = {" % name)
        line = "   "
        for a, b in rs:
            item = " {0x%x, 0x%x}," % (a, b)
            if len(line) + len(item) > 100:
                print(line)
                line = "   "
            line += item
        print(line)
        print("};")


def main():
    if "--tables" in sys.argv:
        tables()
        return
    rng = random.Random(20240611)
    os.makedirs(OUTDIR, exist_ok=True)

    texts = hand_cases() + [rand_infotext(rng) for _ in range(500)]
    builds = []
    for prompt, negative, params in roundtrip_cases(rng, 200):
        out = build(prompt, negative, params)
        builds.append({"prompt": prompt, "negative": negative,
                       "params": [[k, v] for k, v in params], "out": out})
        texts.append(out)
    parse_cases = [{"text": t, "expected": expected(parse(t))} for t in texts]

    quotes = ["plain", "a,b", "a:b", "a\nb", 'say "hi", ok', "back\\slash, x", "é, ü 日本",
              "\x01\x1f\x7f, \b\f\r\t", "\u2028:", ""]
    quotes += [rand_text(rng, rng.randint(0, 12)) for _ in range(300)]
    quote_cases = [[q, quote(q)] for q in quotes]

    def dump(name, obj):  # one case per line
        with open(os.path.join(OUTDIR, name), "w", encoding="utf-8") as f:
            f.write("[\n")
            for i, case in enumerate(obj):
                f.write(json.dumps(case, ensure_ascii=False, separators=(",", ":")))
                f.write(",\n" if i + 1 < len(obj) else "\n")
            f.write("]\n")

    dump("parse_cases.json", parse_cases)
    dump("quote_cases.json", quote_cases)
    dump("build_cases.json", builds)
    dump("float_cases.json", float_cases(rng))
    print("wrote %d parse, %d quote, %d build cases to %s" % (len(parse_cases), len(quote_cases),
                                                             len(builds), OUTDIR))


if __name__ == "__main__":
    main()
