#!/usr/bin/env python3
"""make_text_golden.py - expected data for the tokenizer and prompt-language tests.

Run by hand, never in CI. Writes tests/golden/text/tokenizer_cases.json and
tests/golden/text/prompt_cases.json.

Tokenizer reference: transformers' slow CLIPTokenizer as A1111 uses it
(A1111 pins transformers 4.30.2; transformers 5 no longer has the slow class),
in both of its cleaning paths. With ftfy 6.1.1 (A1111's era; open_clip pulls it
in, so this is what A1111 users get): tokenizer_cases_ftfy.json (corpus in
make_text_golden_ftfy.py) and the chunks of prompt_cases.json. With ftfy made
unimportable (BasicTokenizer path): tokenizer_cases.json -- written only when
the `tokenizers` package is NOT installed (the venv it was made with, /tmp/tt-venv4,
lacked it; with `tokenizers` installed, as in real installs, transformers 4.30.2
also splits a literal "<|startoftext|>" off as 49406, which that file and
TTOK_MODE_BASIC do not do). It needs only
vocab.json/merges.txt, which this script builds from bpe_simple_vocab_16e6.txt.gz
exactly as CLIPTokenizer's files relate to it (the vocabulary order of
open_clip's SimpleTokenizer). A venv for it:

    python3 -m venv /tmp/tt-venv4
    /tmp/tt-venv4/bin/pip install --no-deps transformers==4.30.2
    /tmp/tt-venv4/bin/pip install regex numpy "huggingface_hub<0.20" pyyaml requests tqdm \
        packaging filelock safetensors lark
    /tmp/tt-venv4/bin/pip install ftfy==6.1.1 --no-deps; pip install wcwidth
    /tmp/tt-venv4/bin/python tests/golden/make_text_golden.py [path/to/bpe_simple_vocab_16e6.txt.gz]

and for the ftfy cases (transformers' normal dependencies, `tokenizers` included):

    python3 -m venv /tmp/tt-venv-ftfy
    /tmp/tt-venv-ftfy/bin/pip install transformers==4.30.2 ftfy==6.1.1 regex lark "huggingface_hub<0.20"
    /tmp/tt-venv-ftfy/bin/python tests/golden/make_text_golden.py [path/to/bpe_simple_vocab_16e6.txt.gz]

Prompt-language reference: a small Python re-implementation written FROM THE
SPEC in shared/reference/a1111-compat.md section 3 (not from A1111's code):
the scheduling grammar is the verbatim lark grammar quoted there, run by lark
(as A1111 does) with the step logic written from the spec's text; emphasis,
AND, extra networks and chunking follow the spec's descriptions and regexes.
The value of these cases is that two independent implementations (this one
and worker/text/*.c) agree, plus the spec's own examples checked by hand
(the asserts below).
"""
import gzip
import json
import os
import random
import re
import sys
import tempfile

import ftfy  # noqa: E402  (6.1.1; hidden below while the no-ftfy tokenizer is built)
import lark  # noqa: E402
from transformers.utils import is_tokenizers_available  # noqa: E402
from make_text_golden_ftfy import FTFY_HAND, ftfy_prompts  # noqa: E402
from transformers import CLIPTokenizer  # noqa: E402
from transformers.utils import logging as tlog  # noqa: E402

tlog.set_verbosity_error()
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "text")


# ---------------------------------------------------------------- vocabulary
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def build_tokenizer_dir(gz, d):
    merges = gzip.open(gz).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({v: i for i, v in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    tok = lambda c: {"content": c, "single_word": False, "lstrip": False, "rstrip": False, "normalized": True}
    # as in openai/clip-vit-large-patch14 (what A1111 loads with from_pretrained)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"unk_token": dict(tok("<|endoftext|>"), __type="AddedToken"),
                   "bos_token": dict(tok("<|startoftext|>"), __type="AddedToken"),
                   "eos_token": dict(tok("<|endoftext|>"), __type="AddedToken"),
                   "pad_token": "<|endoftext|>", "add_prefix_space": False, "errors": "replace",
                   "do_lower_case": True, "model_max_length": 77, "tokenizer_class": "CLIPTokenizer"}, f)
    with open(os.path.join(d, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": tok("<|startoftext|>"), "eos_token": tok("<|endoftext|>"),
                   "unk_token": tok("<|endoftext|>"), "pad_token": "<|endoftext|>"}, f)


# ------------------------------------------------------------ prompt corpus
HAND = [
    "", " ", "a", "A", "a photo of an astronaut riding a horse on mars",
    "masterpiece, best quality, 1girl, solo, long hair, looking at viewer, smile",
    "Hello, World!", "HELLO world", "  leading and trailing   spaces  ", "tabs\tand\nnewlines\r\nhere",
    "it's don't we're they've I'm we'll he'd", "IT'S DON'T", "rock'n'roll", "'quoted'", "\"double\"",
    "1234567890", "3.14159", "1,000,000", "v1.5 sd-2.1 x4", "1girl 2boys", "100%", "$5.99", "#hashtag @user",
    "!!!???...", "a--b__c", "~`^|\\/<>", "(((masterpiece)))", "[[low quality]]", "(cat:1.3) [dog:0.5]",
    "a <lora:add_detail:0.8> test", "<|startoftext|>", "<|endoftext|>", "a<|endoftext|>b", "x<<|endoftext|>",
    "<|ENDOFTEXT|>", "café naïve résumé", "Crème Brûlée", "ÀÉÎÕÜ", "e\u0301 a\u0300 n\u0303", "ﬁ ﬂ ligatures",
    "ΑΣ ΟΔΥΣΣΕΥΣ σίσυφος", "İstanbul ıi", "Straße STRASSE", "Ǆ ǅ ǆ", "ſ K Å", "привет мир", "Ελληνικά",
    "你好世界", "日本語のテキスト", "한국어 텍스트", "中文English混合", "繁體中文", "\uf900\uf901", "🙂😀👍🏽",
    "👨\u200d👩\u200d👧", "❤️ ♥ ★ ☆", "🇺🇸🇯🇵", "a\u200bb", "a\u00a0b", "a\u3000b", "a\u2028b", "\u202e rtl",
    "العربية", "हिन्दी", "ภาษาไทย", "①②③ ⅠⅡⅢ ½ ²", "٠١٢٣ ০১২", "ｆｕｌｌｗｉｄｔｈ　ＡＢＣ", "\x00nul\x01ctl\x7f",
    "supercalifragilisticexpialidocious", "a" * 300, "ab" * 200, "🙂" * 50, "(" * 40 + "x" + ")" * 40,
    "pneumonoultramicroscopicsilicovolcanoconiosis " * 5, "BREAK", "a BREAK b", "AND", "a AND b:0.5",
]


def random_prompts(seed, n):
    r = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " ,.!?;:'\"()[]{}<>|\\/-_=+*&^%$#@~`",
        " \t\n\r\x0b\x0c\x1c\x85\xa0\u1680\u2000\u2028\u202f\u3000\u200b\ufeff\x00\ufffd",
        "\u0300\u0301\u0308\u0327\u0345\u0323\u05b0\u093c\u3099", "ΣσςΑαΒβΓγΔδΌΐ\u1f88", "İıŞşĞğſKÅÆæØøßẞǅ",
        "你好世界中文日本語漢字한국어\u1100\u1161\u11a8가각\uf900", "😀👍🏽👨\u200d👩❤️\ufe0f🇺🇸", "éèêëàâäôöûüçñÉÈ",
        "\u0627\u0644\u0639\u0915\u093f\u094d\u0e01\u0e34", "\u0661\u06f3\u0966\u00b2\u00bd\u2160\u2170\u2460\uff10",
        "\ue000\U000f0000\u0378\u00ad\u061c\u200e",
    ]
    out = []
    for _ in range(n):
        s = []
        for _ in range(r.choice([1, 3, 8, 20, 60])):
            if r.random() < 0.08:
                c = r.randrange(0x110000)
                s.append(chr(c) if not 0xD800 <= c < 0xE000 else "x")
            else:
                s.append(r.choice(r.choice(pools)))
        out.append("".join(s).encode("utf-8"))
    for _ in range(n // 10):  # invalid UTF-8
        b = bytearray(r.choice(out))
        for _ in range(r.randrange(1, 4)):
            b.insert(r.randrange(len(b) + 1), r.randrange(0x80, 0x100))
        out.append(bytes(b))
    return out


# ------------------------------------------- prompt language, from the spec
re_attention = re.compile(r"""
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
re_break = re.compile(r"\s*\bBREAK\b\s*", re.S)


def parse_attention(text):
    res, round_b, square_b = [], [], []

    def mul(start, m):
        for p in range(start, len(res)):
            res[p][1] *= m

    for m in re_attention.finditer(text):
        tok, weight = m.group(0), m.group(1)
        if tok.startswith("\\"):
            res.append([tok[1:], 1.0])
        elif tok == "(":
            round_b.append(len(res))
        elif tok == "[":
            square_b.append(len(res))
        elif weight is not None and round_b:
            mul(round_b.pop(), float(weight))
        elif tok == ")" and round_b:
            mul(round_b.pop(), 1.1)
        elif tok == "]" and square_b:
            mul(square_b.pop(), 1 / 1.1)
        else:
            for i, part in enumerate(re.split(re_break, tok)):
                if i > 0:
                    res.append(["BREAK", -1])
                res.append([part, 1.0])
    for p in round_b:
        mul(p, 1.1)
    for p in square_b:
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


GRAMMAR = r"""
!start: (prompt | /[][():]/+)*
prompt: (emphasized | scheduled | alternate | plain | WHITESPACE)*
!emphasized: "(" prompt ")"
        | "(" prompt ":" prompt ")"
        | "[" prompt "]"
scheduled: "[" [prompt ":"] prompt ":" [WHITESPACE] NUMBER [WHITESPACE] "]"
alternate: "[" prompt ("|" [prompt])+ "]"
WHITESPACE: /\s+/
plain: /([^\\\[\]():|]|\\.)+/
%import common.SIGNED_NUMBER -> NUMBER
"""
parser = lark.Lark(GRAMMAR)


def schedules(prompt, steps, hires_steps=None, old=False):
    if hires_steps is None or old:
        int_off, flt_off, total = 0, 0, steps
    else:
        int_off, flt_off, total = steps, 1.0, hires_steps
    try:
        tree = parser.parse(prompt)
    except lark.exceptions.LarkError:
        return [[total, prompt]]
    points = {total}
    whens = {}

    def visit(t):
        if isinstance(t, lark.Tree):
            for ch in t.children:
                visit(ch)
            if t.data == "scheduled":
                s = str(t.children[-2])
                v = float(s)
                if old:
                    v = v * total if v < 1 else v
                elif "." in s:
                    v = (v - flt_off) * total
                else:
                    v = v - int_off
                w = min(total, int(v))
                whens[id(t)] = w
                if w >= 1:
                    points.add(w)
            elif t.data == "alternate":
                points.update(range(1, total + 1))
    visit(tree)

    def render(t, step):
        if isinstance(t, lark.Token):
            return str(t)
        if t is None:
            return ""
        if t.data == "scheduled":
            ch = t.children
            before, after = ch[0], ch[1]
            return render(before, step) if step <= whens[id(t)] else render(after, step)
        if t.data == "alternate":
            alts = t.children
            return render(alts[(step - 1) % len(alts)], step)
        return "".join(render(c, step) for c in t.children)
    return [[s, render(tree, s)] for s in sorted(points)]


re_AND = re.compile(r"\bAND\b")
re_weight = re.compile(r"^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$")


def and_split(prompt):
    out = []
    for sub in re_AND.split(prompt):
        m = re_weight.search(sub)
        text, w = m.groups() if m is not None else (sub, 1.0)
        out.append([text, float(w) if w is not None else 1.0])
    return out


re_extra = re.compile(r"<(\w+):([^>]+)>")


def extra_networks(prompt):
    found = []

    def f(m):
        found.append({"kind": m.group(1), "items": m.group(2).split(":")})
        return ""
    return re.sub(re_extra, f, prompt), found


def chunks(tok, frags, pad_id=49407, backtrack=20):
    comma = tok.get_vocab()[",</w>"]
    bos, eos = 49406, 49407
    out, cur, cm = [], [], []
    state = {"last_comma": -1, "count": 0}

    def nxt(last=False):
        nonlocal cur, cm
        state["count"] += len(cur) if last else 75
        add = 75 - len(cur)
        ids = [bos] + cur + [eos] * add + [eos]
        mul = [1.0] + cm + [1.0] * add + [1.0]
        if pad_id != eos:
            k = ids.index(eos)
            ids = ids[:k + 1] + [pad_id] * (77 - k - 1)
        out.append({"ids": ids, "mult": mul})
        cur, cm = [], []
        state["last_comma"] = -1

    for text, w in frags:
        if text == "BREAK" and w == -1:
            nxt()
            continue
        for t in tok(text, truncation=False, add_special_tokens=False)["input_ids"]:
            if t == comma:
                state["last_comma"] = len(cur)
            elif backtrack != 0 and len(cur) == 75 and state["last_comma"] != -1 and len(cur) - state["last_comma"] <= backtrack:
                b = state["last_comma"] + 1
                rt, rm = cur[b:], cm[b:]
                cur, cm = cur[:b], cm[:b]
                nxt()
                cur, cm = rt, rm
            if len(cur) == 75:
                nxt()
            cur.append(t)
            cm.append(w)
    if cur or not out:
        nxt(True)
    return out, state["count"]


PROMPTS = [
    "", "a", "a photo of a cat", "(a)", "[a]", "((a))", "[[a]]", "(a:1.3)", "(a:0.5) b", "(a:1.2.3x)",
    "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).", "(unbalanced", "unbalanced)", "[unbalanced", "unbalanced]",
    "((a) b", "a) (b", "\\(escaped\\) \\[x\\] \\\\ \\ z", "a\\b", ":", "a:1.5)", "(a :  2 )", "(a:+1.5)", "(a:-1)",
    "(a:.5)", "(a:5.)", "a BREAK b", "aBREAK b", "a BREAKb", "a  BREAK  b BREAK c", "(a BREAK b)", "BREAK",
    "a, b, c BREAK d", "[a:b:5]", "[a:b:0.5]", "[a:b:.25]", "a [b:3]", "a[b:[c:d:2]:1]e", "a [b:.5] c",
    "[a::3]", "[:b:3]", "[a|b]", "[a|b|c]", "[fe|]male", "[a|[b|c]]", "a | b", "[a:b:1e1]", "[a:b:-2]",
    "[a:b: 3 ]", "[a:b:3x]", "[[a:b:5]", "][a:b:5]", "(a:[b:c:3])", "([a|b]:1.2)", "[a:(b:1.2):3]", "[(a|b)]",
    "((a:b:5))", "[a:b:c:5]", "a\\", "a\\[b:c:3\\]", "[a:b:10] [c:d:0.3] [e|f]", "x [a:b:100] y",
    "cat AND dog", "cat AND dog:0.5", "cat :1.5 AND dog : -0.3 AND bird", "catAND dog", "a AND", "AND b:2",
    "cat:abc AND dog:1:2", "a <lora:foo:0.8> b", "<lora:foo:0.5:0.7><hypernet:bar:1>x", "<lyco:a:b:c=1>",
    "<lora:>", "<:x>", "<lo ra:x:1>", "<lora:a>b>", "<lora:a<lora:b:1>", "\u00e9 <lora:\u00e9\u00e8:1>",
    "hello, " * 30, "word " * 80, ("a, " * 37) + "b c d e f g", ("x " * 70) + ", y z " + ("w " * 20),
    "(masterpiece:1.2), best quality, [blurry], (((detailed))), 1girl BREAK background, sky",
    "😀 (emoji:1.1) 你好 [café]", "a\nb\tc", "\u2028(a)\u3000[b]",
]


# Top-level constructs followed by stray ] ) : characters: lark's Earley
# resolution reads some of them as plain text (see raw_wins() in
# worker/text/prompt_schedule.c). Appended after the random cases so that the
# earlier cases keep their order.
SCHED_AMBIG = [
    "[x:2]:", "[x:2]::", "[x:2]:::", "[x:2]::::", "[x:2]:::::", "[x:2]))", "[x:2])))", "[x:2]]]]]", "[x:2]):",
    "[x:2](]", "[x:2][[", "a[x:y:2]::b", "[x:y:2]::", "[x::2]::", "[:x:2]::a", "[x:2] ::", "[x:2]::(a)",
    "[x:2]::[p|q]", "[x:2]::[x:2]", "[[x:2]]", "[[x:2]]:", "[[x:2]]::", "[[x:2]]:::", "([x:2]):", "([x:2])::",
    "[[[x:2]]]:", "[[[x:2]]]::", "[([x:2])]::", "[x:[a:b:1]:2]::", "[x:[a:b:1]:2]:::", "[a|b]::", "(a)::",
    "[x:2][x:2]::", "[x:2]:::[x:2]:", "[x:2]::[x:2]:",
]


def random_syntax_prompts(seed, n):
    r = random.Random(seed)
    atoms = ["a", "b", "cat", " ", ", ", "(", ")", "[", "]", ":", "|", "0.5", "3", "1.2", ":2)", "BREAK", " AND ",
             "\\(", "\\", "<lora:x:1>", "é", "::", "[x:y:2]", "[p|q]", "(z:1.1)"]
    out = []
    for _ in range(n):
        out.append("".join(r.choice(atoms) for _ in range(r.randrange(1, 14))))
    return out


def main():
    gz = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "TESSERA_CLIP_VOCAB", os.path.join(os.environ.get("TESSERA_DATA", os.path.expanduser("~/.cache/tessera")),
                                           "bpe_simple_vocab_16e6.txt.gz"))
    d = tempfile.mkdtemp()
    build_tokenizer_dir(gz, d)
    sys.modules["ftfy"] = None  # force transformers' no-ftfy path
    tok = CLIPTokenizer.from_pretrained(d)
    assert tok.fix_text is None
    sys.modules["ftfy"] = ftfy
    assert ftfy.__version__ == "6.1.1", ftfy.__version__
    ftok = CLIPTokenizer.from_pretrained(d)
    assert ftok.fix_text is ftfy.fix_text

    # spec examples, checked by hand
    assert schedules("a [b:3]", 10) == [[3, "a "], [10, "a b"]]
    assert schedules("a[b:[c:d:2]:1]e", 10) == [[1, "abe"], [2, "ace"], [10, "ade"]]
    assert schedules("a [b:.5] c", 10) == [[5, "a  c"], [10, "a b c"]]
    ex = parse_attention("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).")
    assert [t for t, _ in ex] == ["a ", "house", " ", "on", " a ", "hill", ", sun, ", "sky", "."]
    assert [round(w, 4) for _, w in ex] == [1.0, 1.573, 1.1, 1.0, 1.1, 0.55, 1.1, 1.4641, 1.1]

    tcases = []
    for b in [s.encode("utf-8") for s in HAND] + random_prompts(7, 400):
        s = b.decode("utf-8", "replace")
        tcases.append({"hex": b.hex(), "ids": tok(s, truncation=False, add_special_tokens=False)["input_ids"]})
    os.makedirs(OUT, exist_ok=True)
    fcases = []
    for b in [s.encode("utf-8") for s in HAND + FTFY_HAND] + ftfy_prompts(13, 600) + random_prompts(7, 400):
        s = b.decode("utf-8", "replace")
        fcases.append({"hex": b.hex(), "fixed": ftfy.fix_text(s).encode("utf-8", "surrogatepass").hex(),
                       "ids": ftok(s, truncation=False, add_special_tokens=False)["input_ids"]})
    with open(os.path.join(OUT, "tokenizer_cases_ftfy.json"), "w") as f:
        json.dump({"generator": "tests/golden/make_text_golden.py (transformers 4.30.2 slow CLIPTokenizer, "
                                "ftfy 6.1.1, tokenizers installed; 'fixed' = ftfy.fix_text of the text)",
                   "cases": fcases}, f, separators=(",", ":"))
        f.write("\n")
    if is_tokenizers_available():
        print("`tokenizers` is installed: tokenizer_cases.json left as it is (see the docstring)")
        tcases_out = None
    else:
        tcases_out = os.path.join(OUT, "tokenizer_cases.json")
    with open(tcases_out or os.devnull, "w") as f:
        json.dump({"generator": "tests/golden/make_text_golden.py (transformers 4.30.2 slow CLIPTokenizer, no ftfy)",
                   "cases": tcases}, f, separators=(",", ":"))
        f.write("\n")

    pcases = []
    for p in PROMPTS + random_syntax_prompts(11, 300) + SCHED_AMBIG:
        c = {"prompt": p}
        try:
            c["attention"] = parse_attention(p)
        except ValueError:
            c["attention"] = None  # A1111 raises
        sch = {}
        for steps in (1, 3, 10, 20):
            try:
                sch[str(steps)] = schedules(p, steps)
            except (ValueError, OverflowError):
                sch[str(steps)] = None
        c["schedules"] = sch
        try:
            c["schedules_hires"] = {"steps": 20, "hires_steps": 10, "value": schedules(p, 20, 10)}
        except (ValueError, OverflowError):
            c["schedules_hires"] = {"steps": 20, "hires_steps": 10, "value": None}
        try:
            c["schedules_old"] = {"steps": 10, "value": schedules(p, 10, None, True)}
        except (ValueError, OverflowError):
            c["schedules_old"] = {"steps": 10, "value": None}
        c["and"] = and_split(p)
        rest, nets = extra_networks(p)
        c["extra"] = {"prompt": rest, "tags": nets}
        if c["attention"] is not None:
            ch, cnt = chunks(ftok, c["attention"])  # the default (ftfy) tokenizer
            c["chunks"] = {"token_count": cnt, "chunks": ch}
            ch2, _ = chunks(ftok, c["attention"], pad_id=0, backtrack=0)
            c["chunks_sd2_nobacktrack"] = ch2
        pcases.append(c)
    with open(os.path.join(OUT, "prompt_cases.json"), "w") as f:
        json.dump({"generator": "tests/golden/make_text_golden.py (spec re-implementation + lark grammar)",
                   "cases": pcases}, f, separators=(",", ":"), ensure_ascii=True)
        f.write("\n")
    print(f"{len(tcases)} tokenizer cases, {len(fcases)} ftfy tokenizer cases, {len(pcases)} prompt cases")


if __name__ == "__main__":
    main()
