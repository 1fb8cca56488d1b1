/*
 * infotext.h -- the A1111 "infotext": the generation parameters text that
 * AUTOMATIC1111 writes into every image (PNG text chunk "parameters", EXIF
 * UserComment in JPEG/WebP) and that its UI and /sdapi/v1/png-info read back.
 *
 * Why: clients move images between A1111, Tessera and the tools around them
 * (Civitai, image browsers, "PNG Info" tabs), and they all read this one
 * text.  Tessera writes it exactly as A1111 1.10 does and parses it exactly
 * as A1111's parse_generation_parameters does, so that a picture rendered
 * here pastes back into A1111 (and the reverse) with the same settings.
 * Reference: shared/reference/a1111-compat.md sections 1.7, 2.1 and 2.2.
 *
 *   prompt line(s)
 *   Negative prompt: negative line(s)                    <- only if non-empty
 *   Steps: 20, Sampler: Euler a, CFG scale: 7.0, Seed: 1, Size: 512x512, ...
 *
 * Conventions: strings are UTF-8; returned strings are malloc'ed (free());
 * returned json_t are new references; errors are values (NULL / -1), there is
 * no global state, and every function takes hostile input: malformed UTF-8,
 * truncated or garbage images never crash or read out of bounds.
 *
 * Python details reproduced (A1111 runs on CPython 3.10/3.11):
 *   - "whitespace" (str.strip(), regex \s) is Python's Unicode set: ASCII
 *     \t\n\v\f\r, \x1c-\x1f, space, U+0085, U+00A0, U+1680, U+2000-U+200A,
 *     U+2028, U+2029, U+202F, U+205F, U+3000;
 *   - regex \w / \d are Unicode word characters / decimal digits (tables from
 *     Unicode 14.0, Python 3.11; see tests/golden/make_infotext_golden.py).
 */
#ifndef TESSERA_INFOTEXT_H
#define TESSERA_INFOTEXT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- writing (A1111 processing.create_infotext) --------------------------------- */

/* A1111's quote(): the value unchanged when it contains none of ',' '\n' ':',
 * else a JSON string literal as Python's json.dumps(ensure_ascii=False)
 * writes it: '"' -> \", '\' -> \\, \n \r \t \b \f, other bytes < 0x20 ->
 * \u00xx (lowercase hex); everything else (DEL, non-ASCII UTF-8) raw.
 * NULL value -> NULL.  Malloc'ed; NULL on OOM. */
char *tinf_quote(const char *value);

/* The parameter entries of the last line, in insertion order with Python
 * dict semantics: adding a key that is already there replaces its value and
 * keeps its first position.  A NULL value is kept (it holds the position)
 * but not written, as A1111 skips None; a value equal to its key is written
 * as the bare key; any other as "key: quote(value)". */
typedef struct tinf_params tinf_params;

tinf_params *tinf_params_new(void);           /* NULL on OOM */
void tinf_params_free(tinf_params *p);        /* NULL is fine */
/* 0, or -1 on OOM / NULL p / NULL key.  Strings are copied. */
int tinf_params_add(tinf_params *p, const char *key, const char *value);
int tinf_params_addf(tinf_params *p, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Python str(int): "20", "-1". */
int tinf_params_add_int(tinf_params *p, const char *key, long long value);
/* Python str(float) = repr (tinf_fmt_float): 7.0 -> "7.0". */
int tinf_params_add_float(tinf_params *p, const char *key, double value);
/* Number of keys (NULL-valued ones included); the value of key or NULL. */
size_t tinf_params_count(const tinf_params *p);
const char *tinf_params_get(const tinf_params *p, const char *key);

/* strip(prompt + ("\nNegative prompt: " + negative if negative is non-empty)
 *       + "\n" + ", ".join(entries))
 * where strip is Python's str.strip() (Unicode whitespace, see above).
 * NULL prompt / negative are "", NULL p has no entries.  Malloc'ed; NULL on
 * OOM. */
char *tinf_build(const char *prompt, const char *negative, const tinf_params *p);

/* Python repr() of a float, which is what str() and f-strings print:
 * the shortest digits that read back to the same double; fixed notation when
 * the decimal exponent is in [-4, 16), else "1e-05" / "1.5e+16" style;
 * integral values keep ".0" ("7.0"); "inf", "-inf", "nan", "-0.0".
 * A1111 writes "CFG scale: 7.0" for /sdapi requests: cfg_scale is a float
 * field of the request model, so 7 arrives as 7.0 (pictures made in the UI
 * show "CFG scale: 7" because the Gradio slider hands over an int for whole
 * values); Denoising strength 0.75, Eta 1.0 and so on alike.  Ints (steps,
 * seed, sizes) are written as ints (tinf_params_add_int).
 * Writes a NUL-terminated string into buf (TINF_FLOAT_BUFSZ always fits) and
 * returns its length, or -1 when n is too small (buf then holds ""). */
#define TINF_FLOAT_BUFSZ 32
int tinf_fmt_float(double v, char *buf, size_t n);

/* ---- parsing (A1111 infotext_utils.parse_generation_parameters) --------------- */

/* Parse an infotext into an object, as A1111 1.10 does with default options:
 *  - "Prompt", "Negative prompt" first, then every "key: value" pair of the
 *    last line in order (regex \s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)
 *    with re.findall semantics; the last line is a parameters line only when
 *    it has at least 3 matches).  Values are strings; "..." values are JSON-
 *    decoded (kept raw when that fails); WxH values ^(\d+)x(\d+)$ become
 *    "<key>-1" / "<key>-2"; a pair with an empty value is dropped (A1111
 *    raises on v[0] and skips it); a repeated key keeps its first position.
 *  - Every line starting with "Negative prompt:" (after Python strip) drops
 *    that prefix and switches to the negative prompt; lines are stripped and
 *    joined with "\n" (a leading empty line adds nothing).
 *  - Defaults for missing keys, with A1111's types: "Clip skip" "1",
 *    "Hires resize-1"/"-2" 0, "Hires sampler" "Use same sampler",
 *    "Hires checkpoint" "Use same checkpoint", "Hires prompt" "",
 *    "Hires negative prompt" "", "Mask mode" "Inpaint masked",
 *    "Masked content" "original", "Inpaint area" "Whole picture",
 *    "Masked area padding" 32, "RNG" "GPU", "Schedule type" "Automatic",
 *    "Schedule max sigma"/"min sigma"/"rho" 0, "VAE Encoder"/"Decoder"
 *    "Full", "FP8 weight" "Disable", and "Cache FP16 weight for LoRA" false
 *    when FP8 weight is not "Disable".
 *  - "Hypernet: name" appends <hypernet:name:strength> to "Prompt";
 *    an old "First pass size" becomes Size-1/-2 + Hires resize-1/-2 (ints);
 *    "Version" older than 1.6.0 / 1.7.0-225 / 1.8.0 adds A1111's
 *    back-compat flags ("Old prompt editing timelines", "Pad conds v0",
 *    "Downcast alphas_cumprod", "Refiner switch by sampling steps": true).
 * Not done: prompt styles (need the server's style list; A1111's default
 * "Apply if any" finds none without one), NovelAI conversion, extensions'
 * infotext_pasted callbacks.  Differences by necessity: invalid UTF-8 in
 * text is read as U+FFFD; a JSON "\udXXX" lone surrogate decodes to U+FFFD;
 * a "First pass size" that does not convert to ints (A1111 raises) is left
 * as parsed.  NULL text is "".  Returns NULL only on OOM. */
json_t *tinf_parse(const char *text);

/* ---- reading images (POST /sdapi/v1/png-info) ---------------------------------- */

#define TINF_NOT_IMAGE (-2)

/* What A1111's read_info_from_image returns for an uploaded image:
 *  - PNG: every tEXt/zTXt/iTXt chunk, in file order (a repeated key: last
 *    value, first position); "parameters" is taken out as the infotext, the
 *    others go to items; an eXIf chunk's UserComment, when non-empty,
 *    replaces the infotext; without EXIF a text chunk "comment" is the
 *    infotext (A1111's GIF rule, applied to any format);
 *  - JPEG (APP1 Exif) / WebP (EXIF chunk): the EXIF UserComment (see
 *    ti_read_exif_comment in image_io.h for the encodings) is the infotext;
 *  - keys A1111 ignores (dpi, exif, icc_profile, ...) are dropped from items.
 * *infotext: malloc'ed, or NULL when the image has none (png-info then
 * answers info ""); *items: a new object (may be empty); items may be NULL
 * when not wanted.  Returns 0, -1 when the file is malformed (bad header,
 * truncated before the pixel data), TINF_NOT_IMAGE when buf is not a
 * PNG/JPEG/WebP at all; on error *infotext and *items are NULL. */
int tinf_read_image(const uint8_t *buf, size_t len, char **infotext, json_t **items);

#endif
