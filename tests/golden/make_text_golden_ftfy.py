#!/usr/bin/env python3
"""make_text_golden_ftfy.py - the prompt corpus for tokenizer_cases_ftfy.json.

Imported by make_text_golden.py (run that one): hand-written prompts that
exercise each step of ftfy.fix_text (HTML entities, mojibake, C1 controls,
ligatures, width, quotes, line breaks, terminal escapes, control
characters, NFC) and of the ftfy path of CLIPTokenizer (whitespace_clean,
lower(), the CLIP pattern), plus random mixtures of them.
"""
import random

MOJI = ["café", "naïve résumé", "Crème Brûlée", "“quoted”", "‘single’", "em—dash", "en–dash", "…", "€5", "©®™",
        "Ä Ö Ü ß", "à la carte", "Привет мир", "Ελληνικά", "łódź", "İstanbul", "😀 emoji", "你好", "½ ¼", "naïve café",
        "señor niño", "déjà vu", "Zürich", "smörgåsbord", "°C", "x²", "–—", "•", "\xa0nbsp", "Åland"]
ENCS = ["windows-1252", "latin-1", "windows-1251", "windows-1250", "windows-1253", "iso-8859-2", "mac_roman",
        "cp437", "windows-1254"]


def mojibake(r):
    t = r.choice(MOJI)
    for _ in range(r.choice([1, 1, 1, 2])):
        t = t.encode("utf-8").decode(r.choice(ENCS), "replace")
    if r.random() < 0.2:
        t = t.replace("\xa0", " ")
    return t


FTFY_HAND = [
    "&amp; &lt; &gt; &quot; &#39; &apos;", "fish &amp; chips", "&eacute;t&eacute;", "&Eacute;COLE", "&EACUTE;",
    "&nbsp;x&nbsp;", "&nbsp x", "&amp;amp;", "&#x41;&#66;&#x1F600;", "&#59;", "&#0;", "&#128;&#150;", "&#x110000;",
    "&#xD800;", "&#1;&#11;", "&#12a;", "&#x;", "&notanentity;", "&aaaaaaaaaaaaaaaaaaaaaaaaaaa;", "a <b> &amp;",
    "&amp;\n<tag>\n&amp;", "<x>\n&amp;", "&SZLIG; &szlig;", "&frac12; &half;", "&lt;|endoftext|&gt;",
    "&lt;|startoftext|&gt; x", "<|startoftext|>", "<|StartOfText|>", "<|ENDOFTEXT|>", "a<|startoftext|>b",
    ",<|startoftext|>", "<|\u017ftartoftext|>", "'\u017f 'S 'T it'S", "don't we'll i'D", "..'s '''",
    "\u201csmart\u201d \u2018quotes\u2019 \u201alow\u201e \u2039\u203a\u00ab\u00bb \u201b\u201f",
    "\u02bcn \u0149", "ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ Ĳ ĳ Ǆ ǅ ǆ Ǉ ǈ ǉ Ǌ ǋ ǌ Ǳ ǲ ǳ", "ｆｕｌｌｗｉｄｔｈ　ＡＢＣ１２３！", "ｶﾀｶﾅ ﾊﾟﾝ", "￠￡￥",
    "line1\r\nline2\rline3\u2028l4\u2029l5\x85l6", "\x1b[31mred\x1b[0m \x1b[1;2x \x1bnot", "\x80\x81\x8d\x9f",
    "c1 \x93quoted\x94 text", "\x00nul\x01\x02\x7f del", "\u200b\u200c\u200d\u2060\ufeff\ufff9\ufffc\u206a",
    "e\u0301 a\u0300 n\u0303 \u1100\u1161\u11a8", "\u212b \u00c5 A\u030a", "\u0958 \u2126", "café naïve", "ÀÉÎÕÜ",
    "ΑΣ. ΟΔΥΣΣΕΥΣ", "İ ı", "ẞ ß", "ǅungla", "\u0130stanbul", "🙂😀👍🏽", "👨\u200d👩\u200d👧",
    "🇺🇸 🏴\U000e0067\U000e0062\U000e007f", "你好世界", "日本語のテキスト", "한국어", "中文English混合", "a\u3000b",
    "a\u00a0b", "\t tabs \n\n newlines  ", "cafÃ©", "naÃ¯ve", "Ã©tÃ©", "â€œquotedâ€\x9d", "â€™s", "donâ€™t",
    "Ã  la carte", "Ã¢â‚¬â„¢", "Ã", "Ã ", "Â£5", "Ð¿Ñ€Ð¸Ð²ÐµÑ‚", "ÎšÎ±Î»Î·Î¼Î­ÏÎ±", "Ã¼ber", "ðŸ˜€", "ðŸ˜€ emoji",
    "I â™¥ NY", "The Mona Lisa doesnÃƒÂ¢Ã¢â€šÂ¬Ã¢â€žÂ¢t have eyebrows.", "l'humanitÃ©", "âœ” done", "cÃ³digo",
    "Ã‚Â©", "\u00c3\u00a9 mixed with real é", "Ã© and \u201ccurly\u201d", "├▒", "Ã¡", "Ã\xa0", "sÃ£o paulo", "ÅÅ",
    "Ã©\nÃ©", "<b>cafÃ©</b> &amp;", "a ¿Qué?", "×²", "√±", "вЂ", "ВГР", "Γ°Β", "ï»¿bom", "Ã\x81",
    "masterpiece, best quality, &lt;lora:x:1&gt;", "(cat:1.2) \u201cfluffy\u201d", "1girl, ｓｏｌｏ, long hair",
]


def ftfy_prompts(seed, n):
    r = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " ,.!?;:'\"()[]{}<>|\\/-_=+*&^%$#@~`",
        ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&eacute;", "&nbsp;", "&#x263a;", "&hellip;", "&mdash;", "&",
         "&#", "&copy;", "&COPY;", "&Auml;", "&AUML;", "&zwj;", "&#8203;", "&#128512;", "&NotAThing;"],
        "\u201c\u201d\u2018\u2019\u201a\u201e\u2039\u203a\u00ab\u00bb\u02bc\u201b\u201f", "ﬁﬂﬀﬃﬄﬅﬆĲĳǄǅǆ",
        "ｆｕｌｌＡＢＣ１２３！＃　ｶﾀﾅﾟﾞ￠", " \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u2029\u3000",
        "\x00\x01\x1b\x7f\x80\x81\x8d\x93\x94\x9f\u200b\ufeff\ufffc\u206b\ufffd", "\u0300\u0301\u0308\u0327\u0345\u3099",
        "éèêëàâäôöûüçñÉÈÅÆØßİıſ", "ΣσςΑαΒβΓγΔδ", "привет", "你好世界中文日本語한국어가", "😀👍🏽❤️\ufe0f🇺🇸\u200d",
        "ÃÂâ€œ™žŸ¢£©®°±²³´µ·¹º»¼½¾¿", ["<|endoftext|>", "<|startoftext|>", "'s", "'T", "'re", "'ll", "\x1b[1m"],
    ]
    out = []
    for _ in range(n):
        s = []
        for _ in range(r.choice([1, 3, 8, 20])):
            if r.random() < 0.12:
                s.append(mojibake(r))
            else:
                s.append(r.choice(r.choice(pools)))
            if r.random() < 0.3:
                s.append(" ")
        out.append("".join(s).encode("utf-8"))
    return out
