#!/usr/bin/env python3
"""make_cond_golden.py - expected A1111 conditioning tensors for
tests/unit/test_conditioning.c and tests/integration/test_cli_eval.py.

Run by hand (never in CI) with the reference venv:
    /root/ref-venv/bin/python tests/golden/make_cond_golden.py

An independent re-implementation, written from shared/reference/a1111-compat.md
sections 3.1 / 3.4 / 3.5 (no A1111 code), of what A1111 feeds the UNet:
extra-network tags removed, parse_prompt_attention, BREAK, 75-token chunks
wrapped to 77 with the comma backtrack (20), SD1 pads with EOS, SD2 puts 0
after the first EOS, clip skip (ignored for SD2 / OpenCLIP, as A1111 does),
"Original" emphasis (z *= w; z *= mean0 / mean1 per chunk), chunks
concatenated along the token axis.

Text encoder: transformers' CLIPTextModel loaded from the tiny diffusers
folders of tests/golden/models/ (make_model_golden.py), run in float64.
Tokenizer: a minimal CLIP BPE on bpe_simple_vocab_16e6.txt.gz
($TESSERA_CLIP_VOCAB or ~/.cache/tessera/), for plain lower-case ASCII prompts
only - the ground where every CLIP tokenizer variant (ftfy or not) agrees.

Writes tests/golden/cond/cases.json (name, model, prompt, clip_skip, chunks,
token_count, extra) and tests/golden/cond/<model>.safetensors holding per
case NAME_ids [k,77] I32, NAME_mult [k,77] F32, NAME_hidden [1,77k,C] F32.
"""
import gzip
import json
import os
import re

import numpy as np
import torch
from safetensors.numpy import save_file
from transformers import CLIPTextModel

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "models")
OUT = os.path.join(HERE, "cond")
BOS, EOS = 49406, 49407

# ---- minimal CLIP BPE (ASCII prompts) ------------------------------------------


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


class Bpe:
    def __init__(self, path):
        merges = gzip.open(path).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in merges]
        b2u = bytes_to_unicode()
        vocab = list(b2u.values())
        vocab += [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.enc = {v: i for i, v in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.b2u = b2u
        self.pat = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+")

    def bpe(self, token):
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            pairs = [(word[i], word[i + 1]) for i in range(len(word) - 1)]
            best = min(pairs, key=lambda p: self.ranks.get(p, 1e18))
            if best not in self.ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        return word

    def encode(self, text):
        assert all(ord(c) < 128 for c in text), "ASCII prompts only"
        text = " ".join(text.split()).lower()
        ids = []
        for t in self.pat.findall(text):
            t = "".join(self.b2u[b] for b in t.encode("utf-8"))
            ids += [self.enc[s] for s in self.bpe(t)]
        return ids

# ---- A1111 prompt handling, from the spec --------------------------------------


RE_ATTENTION = re.compile(r"""
\\\(|
\\\)|
\\\[|
\\]|
\\\\|
\\|
\(|
\[|
:\s*([+-]?[.\d]+)\s*\)|
\)|
]|
[^\\()\[\]:]+|
:
""", re.X)
RE_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)
RE_EXTRA = re.compile(r"<(\w+):([^>]+)>")


def parse_attention(text):
    res, rb, sb = [], [], []

    def mul(start, m):
        for p in range(start, len(res)):
            res[p][1] *= m

    for m in RE_ATTENTION.finditer(text):
        t, w = m.group(0), m.group(1)
        if t.startswith("\\"):
            res.append([t[1:], 1.0])
        elif t == "(":
            rb.append(len(res))
        elif t == "[":
            sb.append(len(res))
        elif w is not None and rb:
            mul(rb.pop(), float(w))
        elif t == ")" and rb:
            mul(rb.pop(), 1.1)
        elif t == "]" and sb:
            mul(sb.pop(), 1 / 1.1)
        else:
            parts = RE_BREAK.split(t)
            for i, part in enumerate(parts):
                if i > 0:
                    res.append(["BREAK", -1])
                res.append([part, 1.0])
    for p in rb:
        mul(p, 1.1)
    for p in sb:
        mul(p, 1 / 1.1)
    if not res:
        res = [["", 1.0]]
    i = 0
    while i + 1 < len(res):
        if res[i][1] == res[i + 1][1]:
            res[i][0] += res[i + 1][0]
            res.pop(i + 1)
        else:
            i += 1
    return res


def chunk(bpe, frags, pad, backtrack=20):
    comma = bpe.enc[",</w>"]
    chunks, toks, mults = [], [], []
    last_comma = -1
    count = 0

    def nxt(is_last=False):
        nonlocal toks, mults, last_comma, count
        count += len(toks) if is_last else 75
        ids = [BOS] + toks + [EOS] * (75 - len(toks)) + [EOS]
        mm = [1.0] + mults + [1.0] * (75 - len(mults)) + [1.0]
        if pad != EOS:
            k = ids.index(EOS)
            ids = ids[:k + 1] + [pad] * (77 - k - 1)
        chunks.append((ids, mm))
        toks, mults, last_comma = [], [], -1

    for text, w in frags:
        if w == -1 and text == "BREAK":
            nxt()
            continue
        for tk in bpe.encode(text):
            if tk == comma:
                last_comma = len(toks)
            elif backtrack and len(toks) == 75 and last_comma != -1 and len(toks) - last_comma <= backtrack:
                brk = last_comma + 1
                rt, rm = toks[brk:], mults[brk:]
                toks, mults = toks[:brk], mults[:brk]
                nxt()
                toks, mults = rt, rm
            if len(toks) == 75:
                nxt()
            toks.append(tk)
            mults.append(w)
    if toks or not chunks:
        nxt(True)
    return chunks, count


def encode(model, ids, clip_skip):
    with torch.no_grad():
        o = model(input_ids=torch.tensor(ids, dtype=torch.long), output_hidden_states=True)
        if clip_skip > 1:
            ln = model.final_layer_norm if hasattr(model, "final_layer_norm") else model.text_model.final_layer_norm
            return ln(o.hidden_states[-clip_skip])
        return o.last_hidden_state


def conditioning(bpe, model, prompt, clip_skip, sd2):
    extra = [[m.group(1)] + m.group(2).split(":") for m in RE_EXTRA.finditer(prompt)]
    prompt = RE_EXTRA.sub("", prompt)
    chunks, count = chunk(bpe, parse_attention(prompt), 0 if sd2 else EOS)
    if sd2:
        clip_skip = 1  # A1111 ignores CLIP_stop_at_last_layers for OpenCLIP
    ids = [c[0] for c in chunks]
    z = encode(model, ids, clip_skip)  # [k, 77, C] float64
    m = torch.tensor([c[1] for c in chunks], dtype=torch.float64)
    out = []
    for i in range(len(chunks)):
        zi = z[i:i + 1]
        m0 = zi.mean()
        zi = zi * m[i].reshape(1, 77, 1)
        zi = zi * (m0 / zi.mean())
        out.append(zi)
    hidden = torch.cat(out, 1)  # [1, 77k, C]
    return ids, [c[1] for c in chunks], hidden.numpy().astype(np.float32), count, extra


LONG = ("a beautiful landscape painting of a quiet mountain village at dawn, soft golden light, mist over the "
        "river, tall pine trees, wooden houses with red roofs, a stone bridge, children playing near the water, "
        "(highly detailed:1.2), sharp focus, trending on artstation, masterpiece, best quality, "
        "[blurry], warm colors, dramatic clouds, birds in the sky, a small boat on the lake, reflections, "
        "autumn leaves, smoke rising from chimneys, distant snowy peaks, ((cinematic lighting)), volumetric fog, "
        "an old mill with a water wheel, flowers along the path, a dog running, lanterns, evening glow, "
        "intricate details, 8k, ultra realistic, octane render, depth of field, bokeh")

CASES = [
    ("plain", "a photo of a cat", 1),
    ("weighted", "a (photo:1.3) of a [cat], ((masterpiece)), (blue sky:0.7)", 1),
    ("weighted_skip2", "a (photo:1.3) of a [cat], ((masterpiece)), (blue sky:0.7)", 2),
    ("break", "a red house BREAK a (blue:0.8) sky with clouds", 1),
    ("lora", "<lora:foo:0.7> a dog (running:1.2) <hypernet:bar:1>", 1),
    ("empty", "", 1),
    ("long", LONG, 1),
    ("long_skip2", LONG, 2),
    ("long3", LONG + ", " + LONG[:300], 1),
]


def vocab_path():
    p = os.environ.get("TESSERA_CLIP_VOCAB")
    if p:
        return p
    d = os.environ.get("TESSERA_DATA")
    if d:
        return os.path.join(d, "bpe_simple_vocab_16e6.txt.gz")
    return os.path.expanduser("~/.cache/tessera/bpe_simple_vocab_16e6.txt.gz")


def main():
    torch.manual_seed(0)
    bpe = Bpe(vocab_path())
    os.makedirs(OUT, exist_ok=True)
    meta = {"generator": "tests/golden/make_cond_golden.py", "cases": []}
    for name in ("sd1-tiny", "sd2-tiny"):
        sd2 = name == "sd2-tiny"
        model = CLIPTextModel.from_pretrained(os.path.join(MODELS, name, "text_encoder")).double().eval()
        tensors = {}
        for cname, prompt, cs in CASES:
            ids, mult, hidden, count, extra = conditioning(bpe, model, prompt, cs, sd2)
            tensors[cname + "_ids"] = np.array(ids, dtype=np.int32)
            tensors[cname + "_mult"] = np.array(mult, dtype=np.float32)
            tensors[cname + "_hidden"] = hidden
            meta["cases"].append(dict(model=name, name=cname, prompt=prompt, clip_skip=cs, chunks=len(ids),
                                      token_count=count, extra=extra))
            print(name, cname, "chunks", len(ids), "tokens", count, "extra", extra)
        save_file(tensors, os.path.join(OUT, name + ".safetensors"))
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
