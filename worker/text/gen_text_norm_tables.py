#!/usr/bin/env python3
"""gen_text_norm_tables.py - generate worker/text/text_norm_tables.c.

Run by hand at development time (never by the build), with Python 3.11.7
(unicodedata 14.0.0, the same as gen_unicode_tables.py) and ftfy 6.1.1, the
ftfy of A1111's era (the venv of tests/golden/make_text_golden.py):

    /tmp/tt-venv-ftfy/bin/python worker/text/gen_text_norm_tables.py > worker/text/text_norm_tables.c

Everything is taken from the very objects ftfy.fix_text uses (ftfy.chardata,
ftfy.badness, html.entities, the charmap codecs), so the C side reproduces
them exactly; text_norm.c holds the logic. The badness regex of ftfy is
re-expressed as a list of fixed sequences of character classes (ALTS below)
and checked against ftfy.badness.is_bad on a random corpus before anything
is written.
"""
import codecs
import html
import html.entities
import random
import re
import sys
import unicodedata

import ftfy
import ftfy.bad_codecs  # noqa: F401  registers sloppy-windows-*
from ftfy import chardata
from ftfy.badness import MOJIBAKE_CATEGORIES as M, is_bad

assert ftfy.__version__ == "6.1.1", ftfy.__version__

# ------------------------------------------------------------------ badness
# One entry per alternative of ftfy.badness.BADNESS_RE, in order. Items:
# a regex character class (formatted with MOJIBAKE_CATEGORIES), or one of
# "\\s", "\\s?", "^", "\\w", ".", or ("not", class).
_C = "[{lower_accented}{upper_accented}{box}{start_punctuation}{end_punctuation}{currency}{numeric}]"
ALTS = [
    ["[{c1}]"],
    ["[{bad}{lower_accented}{upper_accented}{box}{start_punctuation}{end_punctuation}{currency}{numeric}]", "[{bad}]"],
    ["[a-zA-Z]", "[{lower_common}{upper_common}]", "[{bad}]"],
    ["[{bad}]", _C],
    ["[{lower_accented}{lower_common}{box}{end_punctuation}{currency}{numeric}]", "[{upper_accented}]"],
    ["[{box}{end_punctuation}{currency}{numeric}]", "[{lower_accented}]"],
    ["[{lower_accented}{box}{end_punctuation}]", "[{currency}]"],
    ["\\s", "[{upper_accented}]", "[{currency}]"],
    ["[{upper_accented}{box}]", "[{numeric}]"],
    ["[{lower_accented}{upper_accented}{box}{currency}{end_punctuation}]", "[{start_punctuation}]", "[{numeric}]"],
    ["[{lower_accented}{upper_accented}{currency}{numeric}{box}]", "[{end_punctuation}]", "[{start_punctuation}]"],
    ["[{currency}{numeric}{box}]", "[{start_punctuation}]"],
    ["[a-z]", "[{upper_accented}]", "[{start_punctuation}{currency}]"],
    ["[{box}]", "[{kaomoji}]"],
    ["[{lower_accented}{upper_accented}{currency}{numeric}{start_punctuation}{end_punctuation}]", "[{box}]"],
    ["[{box}]", "[{end_punctuation}]"],
    ["[{lower_accented}{upper_accented}]", "[{end_punctuation}]", "\\w"],
    ["[Œœ]", ("not", "[A-Za-z]")],
    ["[ÂÃÎÐ]", "[€Šš¢£Ÿž\xa0\xad®©°·»{start_punctuation}{end_punctuation}–—´]"],
    ["[×]", "[²³]"],
    ["[ØÙ]", "[{common}{currency}{bad}{numeric}{start_punctuation}ŸŠ®°µ»]",
     "[ØÙ]", "[{common}{currency}{bad}{numeric}{start_punctuation}ŸŠ®°µ»]"],
    ["[à]", "[²µ¹¼½¾]"],
    ["[√]", "[±∂†≠®™´≤≥¥µø]"],
    ["[≈]", "[°¢]"],
    ["[‚]", "[Ä]", "[ìîïòôúùû†°¢π]"],
    ["[‚]", "[âó]", "[àä°ê]"],
    ["[в]", "[Ђ]"],
    ["[ВГРС]", "[{c1}{bad}{start_punctuation}{end_punctuation}{currency}°µ]", "[ВГРС]"],
    ["[Г]", "[ў]", "[В]", "[Ђ]", "[В]", ".", "[A-Za-z ]"],
    ["[Ã]", "[\xa0¡]"],
    ["[a-z]", "\\s?", "[ÃÂ]", "[ ]"],
    ["^", "[ÃÂ]", "[ ]"],
    ["[a-z.,?!{end_punctuation}]", "[Â]", "[ {start_punctuation}{end_punctuation}]"],
    ["[β]", "[€]", "[™\xa0Ά\xad®°]"],
    ["[ΒΓΞΟ]", "[{c1}{bad}{start_punctuation}{end_punctuation}{currency}°]", "[ΒΓΞΟ]"],
]
UTF8_SETS = ["utf8_first_of_2", "utf8_first_of_3", "utf8_first_of_4", "utf8_continuation",
             "utf8_continuation_strict"]

classes = []  # formatted class strings, index = bit


def cls_id(c):
    s = c.format(**M)
    if s not in classes:
        classes.append(s)
    return classes.index(s)


def member_fn(s):
    r = re.compile(s)
    return lambda ch: r.fullmatch(ch) is not None


ALT_CODE = []  # per alternative: list of (op, arg)
for alt in ALTS:
    code = []
    for it in alt:
        if isinstance(it, tuple):
            code.append(("NOT", cls_id(it[1])))
        elif it in ("\\s", "\\s?", "^", "\\w", "."):
            code.append({"\\s": ("SPACE", 0), "\\s?": ("OPTSPACE", 0), "^": ("BOL", 0), "\\w": ("WORD", 0),
                         ".": ("ANY", 0)}[it])
        else:
            code.append(("SET", cls_id(it)))
    ALT_CODE.append(code)
UTF8_IDS = [cls_id("[" + chardata.UTF8_CLUES[k] + "]") for k in UTF8_SETS]
assert len(classes) <= 96, len(classes)

members = [member_fn(c) for c in classes]
masks = {}
for cp in range(0x10000):  # every class is within the BMP (checked below)
    ch = chr(cp)
    m = 0
    for i, f in enumerate(members):
        if f(ch):
            m |= 1 << i
    if m:
        masks[cp] = m
for c in classes:
    assert max(map(ord, c)) < 0x10000


def py_is_bad(text):
    def mask(ch):
        return masks.get(ord(ch), 0)

    def match(code, k, i):
        if k == len(code):
            return True
        op, a = code[k]
        if op == "BOL":
            return i == 0 and match(code, k + 1, i)
        if op == "OPTSPACE":
            if i < len(text) and text[i].isspace() and match(code, k + 1, i + 1):
                return True
            return match(code, k + 1, i)
        if i >= len(text):
            return False
        ch = text[i]
        ok = {"SET": lambda: mask(ch) >> a & 1, "NOT": lambda: not mask(ch) >> a & 1,
              "SPACE": lambda: ch.isspace(), "WORD": lambda: ch.isalnum() or ch == "_",
              "ANY": lambda: ch != "\n"}[op]()
        return bool(ok) and match(code, k + 1, i + 1)
    return any(match(code, 0, i) for i in range(len(text) + 1) for code in ALT_CODE)


def self_check():
    rnd = random.Random(5)
    pool = sorted(set(chr(c) for c in masks) | set("abcxyzABCXYZ019 .,?!_\n\t'\"-"))
    for n in range(200000):
        s = "".join(rnd.choice(pool) for _ in range(rnd.randrange(1, 7)))
        assert py_is_bad(s) == is_bad(s), repr(s)


# ------------------------------------------------------------------ output
def emit_u32(name, vals, per=12):
    print(f"const uint32_t {name}[] = {{")
    for i in range(0, len(vals), per):
        print("    " + ",".join(f"0x{v:X}" for v in vals[i:i + per]) + ",")
    print("};")
    print(f"const size_t {name}_n = {len(vals)};\n")


def cstr(s):
    out = ""
    for b in s.encode("utf-8"):
        out += chr(b) if 32 <= b < 127 and chr(b) not in '"\\?' else f"\\{b:03o}"
    return '"' + out + '"'


def main():
    self_check()
    print("/* text_norm_tables.c - GENERATED by worker/text/gen_text_norm_tables.py; do not edit.")
    print(f" * Python {sys.version.split()[0]}, unicodedata {unicodedata.unidata_version}, ftfy {ftfy.__version__}.")
    print(" * See text_norm.c for how each table is used. */")
    print('#include "text_norm_tables.h"\n')

    # NFC: primary composites {first, second, composite}, sorted
    comp = []
    for c in range(0x110000):
        if 0xAC00 <= c <= 0xD7A3:
            continue
        d = unicodedata.decomposition(chr(c))
        if not d or d.startswith("<"):
            continue
        parts = [int(x, 16) for x in d.split()]
        if len(parts) == 2 and unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == chr(c):
            comp.append((parts[0], parts[1], c))
    comp.sort()
    print("/* NFC primary composites: {first, second, composite} sorted by (first, second) */")
    print("const uint32_t tn_comp[][3] = {")
    for a, b, c in comp:
        print(f"    {{0x{a:X},0x{b:X},0x{c:X}}},")
    print("};")
    print(f"const size_t tn_comp_n = {len(comp)};\n")

    # HTML entities as ftfy sees them (names with ';', plus upper-case variants)
    ents = sorted((k[1:-1], v) for k, v in chardata.HTML_ENTITIES.items())
    print("/* ftfy.chardata.HTML_ENTITIES: {name without '&' and ';', UTF-8 value}, sorted by name (strcmp) */")
    print("const tn_entity tn_entities[] = {")
    ents.sort(key=lambda kv: kv[0].encode())
    for k, v in ents:
        print(f"    {{{cstr(k)},{cstr(v)}}},")
    print("};")
    print(f"const size_t tn_entities_n = {len(ents)};\n")
    from html import _invalid_charrefs, _invalid_codepoints
    inv = sorted(_invalid_charrefs.items())
    print("/* html._invalid_charrefs: {number, replacement code point} */")
    print("const uint32_t tn_html_charrefs[][2] = {")
    for k, v in inv:
        assert len(v) == 1
        print(f"    {{0x{k:X},0x{ord(v):X}}},")
    print("};")
    print(f"const size_t tn_html_charrefs_n = {len(inv)};\n")
    emit_u32("tn_html_invalid_cp", sorted(_invalid_codepoints))

    # single code point maps: width, ligatures
    def emit_map(name, mp, doc):
        items = sorted(mp.items())
        print(f"/* {doc}: {{cp, out0, out1, out2}} */")
        print(f"const uint32_t {name}[][4] = {{")
        for k, v in items:
            v = [ord(x) for x in v] + [0] * (3 - len(v))
            assert len(v) == 3
            print(f"    {{0x{k:X},0x{v[0]:X},0x{v[1]:X},0x{v[2]:X}}},")
        print("};")
        print(f"const size_t {name}_n = {len(items)};\n")
    emit_map("tn_width", chardata.WIDTH_MAP, "ftfy WIDTH_MAP (fix_character_width)")
    emit_map("tn_ligatures", chardata.LIGATURES, "ftfy LIGATURES (fix_latin_ligatures)")
    for k, v in chardata.CONTROL_CHARS.items():
        assert v is None
    emit_u32("tn_control", sorted(chardata.CONTROL_CHARS))

    # charmap encodings: decode of bytes 0x80..0xFF, then of 0x1A
    print("/* ftfy CHARMAP_ENCODINGS in order: bytes 0x80..0xFF decoded, then byte 0x1A decoded */")
    print(f"const char *const tn_enc_names[TN_NENC] = {{{','.join(cstr(e) for e in chardata.CHARMAP_ENCODINGS)}}};")
    assert len(chardata.CHARMAP_ENCODINGS) == 9
    print("const uint32_t tn_enc_high[TN_NENC][129] = {")
    for e in chardata.CHARMAP_ENCODINGS:
        vals = []
        for b in list(range(0x80, 0x100)) + [0x1A]:
            ch = bytes([b]).decode(e)
            assert len(ch) == 1 and ch.encode(e) == bytes([b]), (e, b)
            vals.append(ord(ch))
        for b in [x for x in range(0x80) if x != 0x1A]:  # ASCII round-trips (0x1A: see vals[128])
            assert bytes([b]).decode(e) == chr(b) and chr(b).encode(e) == bytes([b])
        print("    {" + ",".join(f"0x{v:X}" for v in vals) + "},")
    print("};\n")
    strict1252 = []
    for b in range(0x80, 0xA0):
        try:
            strict1252.append(ord(bytes([b]).decode("windows-1252")))
        except UnicodeDecodeError:
            strict1252.append(0)
    print("/* windows-1252 (strict) of bytes 0x80..0x9F, 0 = undefined */")
    emit_u32("tn_cp1252_c1", strict1252)

    # badness classes
    items = sorted(masks.items())
    print(f"/* {len(classes)} character classes of ftfy's badness / UTF-8 detector regexes: {{cp, mask bits 0-31, 32-63, 64-95}} */")
    print("const uint32_t tn_cls[][4] = {")
    for cp, m in items:
        print(f"    {{0x{cp:X},0x{m & 0xFFFFFFFF:X},0x{(m >> 32) & 0xFFFFFFFF:X},0x{m >> 64:X}}},")
    print("};")
    print(f"const size_t tn_cls_n = {len(items)};\n")
    print("/* ftfy.badness.BADNESS_RE alternatives as {op, arg} sequences (TN_OP_END-terminated) */")
    print("const unsigned char tn_bad_alts[][16] = {")
    for code in ALT_CODE:
        flat = []
        for op, a in code:
            flat += ["TN_OP_" + op, str(a)]
        flat += ["TN_OP_END", "0"]
        assert len(flat) <= 16
        print("    {" + ",".join(flat) + "},")
    print("};")
    print(f"const size_t tn_bad_alts_n = {len(ALT_CODE)};")
    print("const unsigned char tn_utf8_cls[5] = {" + ",".join(map(str, UTF8_IDS)) + "};")


if __name__ == "__main__":
    main()
