/*
 * image_io.c -- PNG / JPEG / WebP decoding and PNG encoding (see image_io.h).
 *
 * Decoders follow the same three steps: read the header, check the pixel
 * count against the caller's limit, and only then allocate and decode.  The
 * libraries are driven so that they read from the caller's buffer with
 * explicit bounds:
 *   - libpng through the classic API with a bounded read callback and
 *     setjmp error recovery (palette, gray, tRNS, 16-bit and interlaced input
 *     are normalised to 8-bit RGB/RGBA by libpng transforms, matching PIL:
 *     16-bit samples keep their high byte, gamma chunks are ignored);
 *   - TurboJPEG's tjDecompress2 (Debian's libturbojpeg 2.1 has no tj3 API);
 *     CMYK/YCCK JPEGs are assumed to follow Adobe's inverted convention, as
 *     PIL assumes, and are converted to RGB here;
 *   - libwebp's advanced API decoding straight into our buffer.
 *
 * PNG text chunks are read back with a small chunk walker of our own rather
 * than libpng, so that reading infotext never decodes pixels.
 */
#include "image_io.h"

#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <webp/decode.h>
#include <zlib.h>

/* Largest text value we inflate out of a zTXt / compressed iTXt chunk. */
#define TI_TEXT_MAX ((size_t)16 << 20)

static const uint8_t PNG_SIG[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* ---- ti_image ------------------------------------------------------------ */

int ti_image_alloc(ti_image *img, int width, int height, int channels,
                   char *err, size_t errlen) {
    memset(img, 0, sizeof(*img));
    if (width <= 0 || height <= 0) {
        seterr(err, errlen, "invalid image size %dx%d", width, height);
        return -1;
    }
    if (channels != 3 && channels != 4) {
        seterr(err, errlen, "unsupported channel count %d (want 3 or 4)", channels);
        return -1;
    }
    uint64_t px = (uint64_t)width * (uint64_t)height;
    if (px > TI_HARD_MAX_PIXELS) {
        seterr(err, errlen, "image is %dx%d = %llu pixels, limit is %llu", width,
               height, (unsigned long long)px, (unsigned long long)TI_HARD_MAX_PIXELS);
        return -1;
    }
    img->pixels = calloc((size_t)px, (size_t)channels);
    if (!img->pixels) {
        seterr(err, errlen, "out of memory allocating a %dx%d image", width, height);
        return -1;
    }
    img->width = width;
    img->height = height;
    img->channels = channels;
    return 0;
}

void ti_image_free(ti_image *img) {
    if (!img) return;
    free(img->pixels);
    memset(img, 0, sizeof(*img));
}

/* ---- format detection ------------------------------------------------------ */

ti_format ti_detect(const uint8_t *buf, size_t len) {
    if (!buf) return TI_FMT_UNKNOWN;
    if (len >= 8 && memcmp(buf, PNG_SIG, 8) == 0) return TI_FMT_PNG;
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff) return TI_FMT_JPEG;
    if (len >= 12 && memcmp(buf, "RIFF", 4) == 0 && memcmp(buf + 8, "WEBP", 4) == 0)
        return TI_FMT_WEBP;
    return TI_FMT_UNKNOWN;
}

const char *ti_format_name(ti_format fmt) {
    switch (fmt) {
    case TI_FMT_PNG: return "png";
    case TI_FMT_JPEG: return "jpeg";
    case TI_FMT_WEBP: return "webp";
    default: return "unknown";
    }
}

/* Common limit check, done from header values before any allocation. */
static int check_limit(const char *what, uint64_t w, uint64_t h, uint64_t max_pixels,
                       char *err, size_t errlen) {
    if (w == 0 || h == 0) {
        seterr(err, errlen, "%s: invalid image size %llux%llu", what,
               (unsigned long long)w, (unsigned long long)h);
        return -1;
    }
    uint64_t limit = max_pixels ? max_pixels : TI_HARD_MAX_PIXELS;
    if (limit > TI_HARD_MAX_PIXELS) limit = TI_HARD_MAX_PIXELS;
    if (w > 0x7fffffffu || h > 0x7fffffffu || w * h > limit) {
        seterr(err, errlen, "image is %llux%llu = %llu pixels, limit is %llu",
               (unsigned long long)w, (unsigned long long)h,
               (unsigned long long)(w * h), (unsigned long long)limit);
        return -1;
    }
    return 0;
}

/* ---- probe ----------------------------------------------------------------- */

static int probe_png(const uint8_t *buf, size_t len, int *w, int *h, int *alpha,
                     char *err, size_t errlen) {
    /* signature(8) + length(4) + "IHDR"(4) + data(13) */
    if (len < 8 + 8 + 13) {
        seterr(err, errlen, "PNG: file too short for a header");
        return -1;
    }
    if (be32(buf + 8) != 13 || memcmp(buf + 12, "IHDR", 4) != 0) {
        seterr(err, errlen, "PNG: first chunk is not a valid IHDR");
        return -1;
    }
    uint32_t pw = be32(buf + 16), ph = be32(buf + 20);
    int depth = buf[24], ctype = buf[25];
    if (pw == 0 || ph == 0 || pw > 0x7fffffffu || ph > 0x7fffffffu) {
        seterr(err, errlen, "PNG: invalid image size %ux%u", pw, ph);
        return -1;
    }
    int ok;
    switch (ctype) {
    case 0: ok = depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16; break;
    case 3: ok = depth == 1 || depth == 2 || depth == 4 || depth == 8; break;
    case 2: case 4: case 6: ok = depth == 8 || depth == 16; break;
    default: ok = 0;
    }
    if (!ok) {
        seterr(err, errlen, "PNG: invalid color type %d / bit depth %d", ctype, depth);
        return -1;
    }
    int a = (ctype & 4) != 0;
    /* A tRNS chunk before the image data also means alpha after decoding. */
    size_t pos = 33;
    while (!a && pos <= len && len - pos >= 8) {
        uint32_t clen = be32(buf + pos);
        const uint8_t *type = buf + pos + 4;
        if (memcmp(type, "tRNS", 4) == 0) a = 1;
        if (memcmp(type, "IDAT", 4) == 0 || memcmp(type, "IEND", 4) == 0) break;
        if (clen > 0x7fffffffu || len - pos - 8 < (size_t)clen + 4) break;
        pos += 12 + (size_t)clen;
    }
    *w = (int)pw;
    *h = (int)ph;
    *alpha = a;
    return 0;
}

static int probe_jpeg(const uint8_t *buf, size_t len, int *w, int *h, char *err,
                      size_t errlen) {
    tjhandle tj = tjInitDecompress();
    if (!tj) {
        seterr(err, errlen, "JPEG: cannot initialise decoder");
        return -1;
    }
    int jw = 0, jh = 0, ss = 0, cs = 0;
    int rc = tjDecompressHeader3(tj, buf, (unsigned long)len, &jw, &jh, &ss, &cs);
    if (rc != 0) {
        seterr(err, errlen, "JPEG: %s", tjGetErrorStr2(tj));
        tjDestroy(tj);
        return -1;
    }
    tjDestroy(tj);
    if (jw <= 0 || jh <= 0) {
        seterr(err, errlen, "JPEG: invalid image size %dx%d", jw, jh);
        return -1;
    }
    *w = jw;
    *h = jh;
    return 0;
}

static const char *webp_status_str(VP8StatusCode st) {
    switch (st) {
    case VP8_STATUS_OK: return "ok";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "corrupt bitstream";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "decoding suspended";
    case VP8_STATUS_USER_ABORT: return "decoding aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated data";
    default: return "unknown error";
    }
}

static int probe_webp(const uint8_t *buf, size_t len, WebPBitstreamFeatures *f,
                      char *err, size_t errlen) {
    VP8StatusCode st = WebPGetFeatures(buf, len, f);
    if (st != VP8_STATUS_OK) {
        seterr(err, errlen, "WebP: %s", webp_status_str(st));
        return -1;
    }
    if (f->width <= 0 || f->height <= 0) {
        seterr(err, errlen, "WebP: invalid image size %dx%d", f->width, f->height);
        return -1;
    }
    return 0;
}

int ti_probe(const uint8_t *buf, size_t len, ti_format *fmt, int *width,
             int *height, int *has_alpha, char *err, size_t errlen) {
    ti_format f = ti_detect(buf, len);
    int w = 0, h = 0, a = 0;
    if (fmt) *fmt = f;
    switch (f) {
    case TI_FMT_PNG:
        if (probe_png(buf, len, &w, &h, &a, err, errlen) != 0) return -1;
        break;
    case TI_FMT_JPEG:
        if (probe_jpeg(buf, len, &w, &h, err, errlen) != 0) return -1;
        break;
    case TI_FMT_WEBP: {
        WebPBitstreamFeatures feat;
        if (probe_webp(buf, len, &feat, err, errlen) != 0) return -1;
        w = feat.width;
        h = feat.height;
        a = feat.has_alpha != 0;
        break;
    }
    default:
        seterr(err, errlen, "unrecognised image format (expected PNG, JPEG or WebP)");
        return -1;
    }
    if (width) *width = w;
    if (height) *height = h;
    if (has_alpha) *has_alpha = a;
    return 0;
}

/* ---- PNG decode -------------------------------------------------------------- */

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    char msg[200];
} png_ctx;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof(c->msg), "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void png_read_cb(png_structp png, png_bytep out, png_size_t n) {
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->pos) png_error(png, "unexpected end of data (truncated file)");
    memcpy(out, c->buf + c->pos, n);
    c->pos += n;
}

static int decode_png(const uint8_t *buf, size_t len, uint64_t max_pixels,
                      ti_image *img, char *err, size_t errlen) {
    png_ctx ctx = {.buf = buf, .len = len, .pos = 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx,
                                             png_on_error, png_on_warning);
    if (!png) {
        seterr(err, errlen, "PNG: cannot initialise decoder");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        seterr(err, errlen, "PNG: cannot initialise decoder");
        return -1;
    }
    /* Modified after setjmp, so they must be volatile to survive longjmp. */
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    volatile int limit_failed = 0;

    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(pixels);
        png_destroy_read_struct(&png, &info, NULL);
        if (!limit_failed) seterr(err, errlen, "PNG: %s", ctx.msg);
        return -1;
    }
    png_set_read_fn(png, &ctx, png_read_cb);
    /* Ancillary chunks (text, ICC, ...) may not make libpng allocate more. */
    png_set_chunk_malloc_max(png, 16u << 20);
    png_read_info(png, info);

    png_uint_32 w = 0, h = 0;
    int depth = 0, ctype = 0, interlace = 0;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    if (check_limit("PNG", w, h, max_pixels, err, errlen) != 0) {
        limit_failed = 1;
        png_longjmp(png, 1);
    }
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_strip_16(png);
    if (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    if ((channels != 3 && channels != 4) || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)w * (size_t)channels)
        png_error(png, "unexpected pixel layout after conversion");

    pixels = malloc((size_t)w * h * channels);
    rows = malloc(sizeof(png_bytep) * h);
    if (!pixels || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + (size_t)y * w * channels;
    png_read_image(png, rows);
    png_read_end(png, NULL);

    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    img->width = (int)w;
    img->height = (int)h;
    img->channels = channels;
    img->pixels = pixels;
    return 0;
}

/* ---- JPEG decode ------------------------------------------------------------- */

/* libjpeg warnings that real-world encoders routinely trigger and that leave
 * the image intact; any other warning (truncation in particular) is fatal. */
static int jpeg_warning_is_benign(const char *msg) {
    return strstr(msg, "extraneous bytes before marker") != NULL ||
           strstr(msg, "Invalid SOS parameters") != NULL;
}

static int decode_jpeg(const uint8_t *buf, size_t len, uint64_t max_pixels,
                       ti_image *img, char *err, size_t errlen) {
    tjhandle tj = tjInitDecompress();
    if (!tj) {
        seterr(err, errlen, "JPEG: cannot initialise decoder");
        return -1;
    }
    int w = 0, h = 0, ss = 0, cs = 0;
    uint8_t *out = NULL, *cmyk = NULL;
    if (tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &ss, &cs) != 0) {
        seterr(err, errlen, "JPEG: %s", tjGetErrorStr2(tj));
        goto fail;
    }
    if (check_limit("JPEG", (uint64_t)(w > 0 ? w : 0), (uint64_t)(h > 0 ? h : 0),
                    max_pixels, err, errlen) != 0)
        goto fail;
    size_t npx = (size_t)w * (size_t)h;
    out = malloc(npx * 3);
    if (!out) {
        seterr(err, errlen, "JPEG: out of memory");
        goto fail;
    }
    int is_cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
    if (is_cmyk) {
        cmyk = malloc(npx * 4);
        if (!cmyk) {
            seterr(err, errlen, "JPEG: out of memory");
            goto fail;
        }
    }
    int rc = tjDecompress2(tj, buf, (unsigned long)len, is_cmyk ? cmyk : out, w, 0, h,
                           is_cmyk ? TJPF_CMYK : TJPF_RGB, 0);
    if (rc != 0) {
        const char *msg = tjGetErrorStr2(tj);
        if (tjGetErrorCode(tj) != TJERR_WARNING || !jpeg_warning_is_benign(msg)) {
            seterr(err, errlen, "JPEG: %s", msg);
            goto fail;
        }
    }
    if (is_cmyk) {
        /* Adobe CMYK is stored inverted: stored = 255 - ink.  Then
         * R = (255 - C) * (255 - K) / 255 = stored_C * stored_K / 255. */
        for (size_t i = 0; i < npx; i++) {
            unsigned k = cmyk[i * 4 + 3];
            for (int c = 0; c < 3; c++)
                out[i * 3 + c] = (uint8_t)((cmyk[i * 4 + c] * k + 127) / 255);
        }
        free(cmyk);
    }
    tjDestroy(tj);
    img->width = w;
    img->height = h;
    img->channels = 3;
    img->pixels = out;
    return 0;
fail:
    free(out);
    free(cmyk);
    tjDestroy(tj);
    return -1;
}

/* ---- WebP decode ------------------------------------------------------------- */

static int decode_webp(const uint8_t *buf, size_t len, uint64_t max_pixels,
                       ti_image *img, char *err, size_t errlen) {
    WebPDecoderConfig cfg;
    if (!WebPInitDecoderConfig(&cfg)) {
        seterr(err, errlen, "WebP: library version mismatch");
        return -1;
    }
    if (probe_webp(buf, len, &cfg.input, err, errlen) != 0) return -1;
    if (cfg.input.has_animation) {
        seterr(err, errlen, "WebP: animated images are not supported");
        return -1;
    }
    int w = cfg.input.width, h = cfg.input.height;
    if (check_limit("WebP", (uint64_t)w, (uint64_t)h, max_pixels, err, errlen) != 0)
        return -1;
    int channels = cfg.input.has_alpha ? 4 : 3;
    size_t size = (size_t)w * h * channels;
    uint8_t *px = malloc(size);
    if (!px) {
        seterr(err, errlen, "WebP: out of memory");
        return -1;
    }
    cfg.output.colorspace = channels == 4 ? MODE_RGBA : MODE_RGB;
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = px;
    cfg.output.u.RGBA.stride = w * channels;
    cfg.output.u.RGBA.size = size;
    VP8StatusCode st = WebPDecode(buf, len, &cfg);
    WebPFreeDecBuffer(&cfg.output);
    if (st != VP8_STATUS_OK) {
        free(px);
        seterr(err, errlen, "WebP: %s", webp_status_str(st));
        return -1;
    }
    img->width = w;
    img->height = h;
    img->channels = channels;
    img->pixels = px;
    return 0;
}

int ti_decode(const uint8_t *buf, size_t len, uint64_t max_pixels, ti_image *img,
              char *err, size_t errlen) {
    memset(img, 0, sizeof(*img));
    switch (ti_detect(buf, len)) {
    case TI_FMT_PNG: return decode_png(buf, len, max_pixels, img, err, errlen);
    case TI_FMT_JPEG: return decode_jpeg(buf, len, max_pixels, img, err, errlen);
    case TI_FMT_WEBP: return decode_webp(buf, len, max_pixels, img, err, errlen);
    default:
        seterr(err, errlen, "unrecognised image format (expected PNG, JPEG or WebP)");
        return -1;
    }
}

/* ---- text helpers ------------------------------------------------------------ */

/* Strictly decode one UTF-8 sequence at s[*i]; returns the code point or -1. */
static long utf8_next(const unsigned char *s, size_t len, size_t *i) {
    unsigned char c = s[*i];
    if (c < 0x80) { (*i)++; return c; }
    int n;
    long cp, min;
    if ((c & 0xe0) == 0xc0) { n = 1; cp = c & 0x1f; min = 0x80; }
    else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0f; min = 0x800; }
    else if ((c & 0xf8) == 0xf0) { n = 3; cp = c & 0x07; min = 0x10000; }
    else return -1;
    if (len - *i <= (size_t)n) return -1;
    for (int k = 1; k <= n; k++) {
        unsigned char cc = s[*i + k];
        if ((cc & 0xc0) != 0x80) return -1;
        cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
    *i += (size_t)n + 1;
    return cp;
}

/* UTF-8 -> Latin-1.  Returns 1 and a malloc'ed string when every code point
 * is <= U+00FF, 0 when some is not, -1 on invalid UTF-8 or OOM. */
static int utf8_to_latin1(const char *in, char **out) {
    const unsigned char *s = (const unsigned char *)in;
    size_t len = strlen(in), i = 0, o = 0;
    int latin1 = 1;
    while (i < len) {
        long cp = utf8_next(s, len, &i);
        if (cp < 0) return -1;
        if (cp > 0xff) latin1 = 0;
    }
    if (!latin1) return 0;
    char *r = malloc(len + 1);
    if (!r) return -1;
    for (i = 0; i < len;) r[o++] = (char)utf8_next(s, len, &i);
    r[o] = '\0';
    *out = r;
    return 1;
}

static char *latin1_to_utf8(const uint8_t *s, size_t len) {
    char *r = malloc(len * 2 + 1);
    if (!r) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x80) {
            r[o++] = (char)s[i];
        } else {
            r[o++] = (char)(0xc0 | (s[i] >> 6));
            r[o++] = (char)(0x80 | (s[i] & 0x3f));
        }
    }
    r[o] = '\0';
    return r;
}

static int valid_keyword(const char *k) {
    size_t n = strlen(k);
    if (n < 1 || n > 79 || k[0] == ' ' || k[n - 1] == ' ') return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 32 || (unsigned char)k[i] > 126) return 0;
    return 1;
}

/* ---- PNG encode -------------------------------------------------------------- */

typedef struct {
    uint8_t *data;
    size_t len, cap;
    char msg[200];
} png_wctx;

static void png_wr_error(png_structp png, png_const_charp msg) {
    png_wctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof(c->msg), "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static void png_write_cb(png_structp png, png_bytep data, png_size_t n) {
    png_wctx *c = png_get_io_ptr(png);
    if (n > c->cap - c->len) {
        size_t cap = c->cap ? c->cap : 65536;
        while (cap - c->len < n) {
            if (cap > SIZE_MAX / 2) png_error(png, "output too large");
            cap *= 2;
        }
        uint8_t *d = realloc(c->data, cap);
        if (!d) png_error(png, "out of memory");
        c->data = d;
        c->cap = cap;
    }
    memcpy(c->data + c->len, data, n);
    c->len += n;
}

static void png_flush_cb(png_structp png) { (void)png; }

int ti_encode_png(const ti_image *img, const ti_png_text *texts, int ntexts,
                  int compression_level, uint8_t **out, size_t *outlen,
                  char *err, size_t errlen) {
    return ti_encode_png_progress(img, texts, ntexts, compression_level, NULL, NULL, out, outlen, err,
                                  errlen);
}

int ti_encode_png_progress(const ti_image *img, const ti_png_text *texts, int ntexts,
                           int compression_level, ti_progress_fn progress, void *progress_ctx,
                           uint8_t **out, size_t *outlen, char *err, size_t errlen) {
    *out = NULL;
    *outlen = 0;
    if (!img || !img->pixels || img->width <= 0 || img->height <= 0 ||
        (img->channels != 3 && img->channels != 4)) {
        seterr(err, errlen, "PNG encode: invalid image");
        return -1;
    }
    if (ntexts < 0 || (ntexts > 0 && !texts)) {
        seterr(err, errlen, "PNG encode: invalid text list");
        return -1;
    }
    if (compression_level < -1 || compression_level > 9) {
        seterr(err, errlen, "PNG encode: compression level %d not in -1..9", compression_level);
        return -1;
    }

    /* Prepare the text chunks first, so that the setjmp section only has to
     * free what exists by then. */
    png_text *pt = ntexts ? calloc((size_t)ntexts, sizeof(*pt)) : NULL;
    char **latin = ntexts ? calloc((size_t)ntexts, sizeof(*latin)) : NULL;
    int rc = -1;
    png_structp png = NULL;
    png_infop info = NULL;
    png_bytep *rows = NULL;
    png_wctx ctx = {0};
    if (ntexts && (!pt || !latin)) {
        seterr(err, errlen, "PNG encode: out of memory");
        goto done;
    }
    for (int i = 0; i < ntexts; i++) {
        if (!texts[i].key || !texts[i].value || !valid_keyword(texts[i].key)) {
            seterr(err, errlen, "PNG encode: invalid text key \"%s\"",
                   texts[i].key ? texts[i].key : "(null)");
            goto done;
        }
        int l = utf8_to_latin1(texts[i].value, &latin[i]);
        if (l < 0) {
            seterr(err, errlen, "PNG encode: value of \"%s\" is not valid UTF-8",
                   texts[i].key);
            goto done;
        }
        pt[i].key = (char *)texts[i].key;
        if (l == 1) {
            pt[i].compression = PNG_TEXT_COMPRESSION_NONE;
            pt[i].text = latin[i];
            pt[i].text_length = strlen(latin[i]);
        } else {
            pt[i].compression = PNG_ITXT_COMPRESSION_NONE;
            pt[i].text = (char *)texts[i].value;
            pt[i].itxt_length = strlen(texts[i].value);
            pt[i].lang = "";
            pt[i].lang_key = "";
        }
    }
    rows = malloc(sizeof(png_bytep) * (size_t)img->height);
    if (!rows) {
        seterr(err, errlen, "PNG encode: out of memory");
        goto done;
    }
    for (int y = 0; y < img->height; y++)
        rows[y] = img->pixels + (size_t)y * img->width * img->channels;

    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_wr_error, png_on_warning);
    if (png) info = png_create_info_struct(png);
    if (!png || !info) {
        seterr(err, errlen, "PNG encode: cannot initialise encoder");
        goto done;
    }
    if (setjmp(png_jmpbuf(png))) {
        seterr(err, errlen, "PNG encode: %s", ctx.msg);
        goto done;
    }
    png_set_write_fn(png, &ctx, png_write_cb, png_flush_cb);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 img->channels == 4 ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (compression_level >= 0) png_set_compression_level(png, compression_level);
    if (ntexts) png_set_text(png, info, pt, ntexts);
    png_write_info(png, info);
    /* Rows in bands, so a long encode can report progress and be stopped. */
    for (int y = 0; y < img->height; y += 64) {
        int n = img->height - y < 64 ? img->height - y : 64;
        png_write_rows(png, rows + y, (png_uint_32)n);
        if (progress && progress(progress_ctx, y + n, img->height)) {
            seterr(err, errlen, "PNG encode: stopped");
            goto done;
        }
    }
    png_write_end(png, NULL);

    *out = ctx.data;
    *outlen = ctx.len;
    ctx.data = NULL;
    rc = 0;
done:
    if (png) png_destroy_write_struct(&png, info ? &info : NULL);
    free(ctx.data);
    free(rows);
    if (latin)
        for (int i = 0; i < ntexts; i++) free(latin[i]);
    free(latin);
    free(pt);
    return rc;
}

/* ---- PNG text read-back ------------------------------------------------------ */

static uint8_t *inflate_capped(const uint8_t *in, size_t inlen, size_t cap, size_t *outlen, int *too_big);

/* Inflate a zlib stream into a malloc'ed NUL-terminated buffer (<= TI_TEXT_MAX). */
static uint8_t *inflate_text(const uint8_t *in, size_t inlen, size_t *outlen) {
    int too_big;
    return inflate_capped(in, inlen, TI_TEXT_MAX, outlen, &too_big);
}

/* Decode one text chunk whose keyword matched; data points past "key\0". */
static char *text_chunk_value(const uint8_t *type, const uint8_t *d, size_t n) {
    if (memcmp(type, "tEXt", 4) == 0) return latin1_to_utf8(d, n);
    if (memcmp(type, "zTXt", 4) == 0) {
        if (n < 1 || d[0] != 0) return NULL;
        size_t ulen;
        uint8_t *u = inflate_text(d + 1, n - 1, &ulen);
        if (!u) return NULL;
        char *r = latin1_to_utf8(u, ulen);
        free(u);
        return r;
    }
    /* iTXt: flag, method, lang\0, translated key\0, text */
    if (n < 2) return NULL;
    int compressed = d[0];
    if (compressed > 1 || (compressed && d[1] != 0)) return NULL;
    const uint8_t *p = d + 2, *end = d + n;
    for (int field = 0; field < 2; field++) {
        const uint8_t *z = memchr(p, 0, (size_t)(end - p));
        if (!z) return NULL;
        p = z + 1;
    }
    size_t tlen = (size_t)(end - p);
    if (compressed) {
        size_t ulen;
        return (char *)inflate_text(p, tlen, &ulen);
    }
    char *r = malloc(tlen + 1);
    if (!r) return NULL;
    memcpy(r, p, tlen);
    r[tlen] = '\0';
    return r;
}

int ti_png_read_text(const uint8_t *buf, size_t len, const char *key, char **value) {
    *value = NULL;
    if (!buf || !key || len < 8 || memcmp(buf, PNG_SIG, 8) != 0) return 0;
    size_t klen = strlen(key);
    size_t pos = 8;
    while (len - pos >= 12) {
        uint32_t clen = be32(buf + pos);
        const uint8_t *type = buf + pos + 4;
        if (clen > 0x7fffffffu || len - pos - 12 < clen) return -1;
        const uint8_t *d = buf + pos + 8;
        if (memcmp(type, "tEXt", 4) == 0 || memcmp(type, "zTXt", 4) == 0 ||
            memcmp(type, "iTXt", 4) == 0) {
            const uint8_t *z = memchr(d, 0, clen);
            if (z && (size_t)(z - d) == klen && memcmp(d, key, klen) == 0) {
                *value = text_chunk_value(type, z + 1, clen - klen - 1);
                return *value ? 1 : -1;
            }
        }
        if (memcmp(type, "IEND", 4) == 0) return 0;
        pos += 12 + (size_t)clen;
    }
    return pos == len ? 0 : -1;
}

/* ---- all PNG text chunks (ti_png_read_texts) ---------------------------------- */

#define TI_TEXT_MAX_CHUNKS 65536
#define TI_TEXT_TOTAL_MAX ((size_t)64 << 20)

static int utf8_valid(const uint8_t *s, size_t len) {
    size_t i = 0;
    while (i < len)
        if (utf8_next(s, len, &i) < 0) return 0;
    return 1;
}

/* Inflate at most cap bytes.  Returns the malloc'ed NUL-terminated data, or
 * NULL with *too_big set when the stream inflates past cap (else a broken
 * stream or OOM). */
static uint8_t *inflate_capped(const uint8_t *in, size_t inlen, size_t cap, size_t *outlen,
                               int *too_big) {
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    *too_big = 0;
    if (inflateInit(&zs) != Z_OK) return NULL;
    size_t bufcap = inlen * 4 + 64, len = 0;
    if (bufcap > cap) bufcap = cap;
    uint8_t *out = malloc(bufcap + 1);
    int zr = Z_OK;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)(inlen > 0xffffffffu ? 0xffffffffu : inlen);
    while (out) {
        if (len == bufcap) {
            if (bufcap >= cap) {
                /* Full: over the cap unless the stream ends right here. */
                uint8_t probe;
                zs.next_out = &probe;
                zs.avail_out = 1;
                zr = inflate(&zs, Z_NO_FLUSH);
                if (zr != Z_STREAM_END || zs.avail_out == 0) {
                    *too_big = zs.avail_out == 0 || zr == Z_OK;
                    zr = Z_DATA_ERROR;
                }
                break;
            }
            size_t ncap = bufcap * 2 > cap ? cap : bufcap * 2;
            uint8_t *n = realloc(out, ncap + 1);
            if (!n) break;
            out = n;
            bufcap = ncap;
        }
        zs.next_out = out + len;
        zs.avail_out = (uInt)(bufcap - len);
        zr = inflate(&zs, Z_NO_FLUSH);
        len = bufcap - zs.avail_out;
        if (zr == Z_STREAM_END || (zr != Z_OK && zr != Z_BUF_ERROR)) break;
        if (zr == Z_BUF_ERROR && zs.avail_in == 0) break; /* truncated */
    }
    inflateEnd(&zs);
    if (!out || zr != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    out[len] = '\0';
    *outlen = len;
    return out;
}

void ti_png_texts_free(ti_png_text *texts, int ntexts) {
    if (!texts) return;
    for (int i = 0; i < ntexts; i++) {
        free((char *)texts[i].key);
        free((char *)texts[i].value);
    }
    free(texts);
}

typedef struct {
    ti_png_text *v;
    int n, cap;
    size_t total; /* text bytes so far, inflate attempts included */
} text_list;

/* Takes ownership of key and value (frees them on failure). */
static int text_list_add(text_list *l, char *key, char *value) {
    if (!key || !value) goto fail;
    l->total += strlen(value);
    if (l->n >= TI_TEXT_MAX_CHUNKS || l->total > TI_TEXT_TOTAL_MAX) goto fail;
    if (l->n == l->cap) {
        int ncap = l->cap ? l->cap * 2 : 8;
        ti_png_text *nv = realloc(l->v, sizeof(*nv) * (size_t)ncap);
        if (!nv) goto fail;
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n].key = key;
    l->v[l->n].value = value;
    l->n++;
    return 0;
fail:
    free(key);
    free(value);
    return -1;
}

/* Inflate a text stream within what is left of the total budget.  Returns
 * the text, or NULL with *rc: 0 = undecodable, -1 = over the total / OOM. */
static char *text_inflate(text_list *l, const uint8_t *in, size_t n, int *rc) {
    size_t left = TI_TEXT_TOTAL_MAX - (l->total < TI_TEXT_TOTAL_MAX ? l->total : TI_TEXT_TOTAL_MAX);
    size_t cap = left < TI_TEXT_MAX ? left : TI_TEXT_MAX;
    size_t ulen = 0;
    int too_big = 0;
    uint8_t *u = inflate_capped(in, n, cap, &ulen, &too_big);
    *rc = 0;
    if (!u && too_big) {
        if (cap < TI_TEXT_MAX) *rc = -1;
        l->total += cap; /* a bomb still spends the budget */
    }
    return (char *)u;
}

/* One text chunk into the list: 0 (added or skipped) or -1 (limits / OOM). */
static int text_chunk_collect(text_list *l, const uint8_t *type, const uint8_t *d, size_t n) {
    const uint8_t *z = memchr(d, 0, n);
    size_t klen = z ? (size_t)(z - d) : n;
    const uint8_t *v = z ? z + 1 : d + n;
    size_t vlen = (size_t)(d + n - v);
    if (klen == 0) return 0;
    int rc = 0;
    if (memcmp(type, "tEXt", 4) == 0)
        return text_list_add(l, latin1_to_utf8(d, klen), latin1_to_utf8(v, vlen));
    if (memcmp(type, "zTXt", 4) == 0) {
        if (vlen > 0 && v[0] != 0) return 0; /* unknown compression method */
        char *val = NULL;
        if (vlen > 1) {
            uint8_t *u = (uint8_t *)text_inflate(l, v + 1, vlen - 1, &rc);
            if (rc < 0) return -1;
            if (u) {
                val = latin1_to_utf8(u, strlen((char *)u));
                free(u);
                if (!val) return -1;
            }
        }
        if (!val) val = calloc(1, 1);
        return text_list_add(l, latin1_to_utf8(d, klen), val);
    }
    /* iTXt: key\0 flag method lang\0 translated\0 text */
    if (!z || vlen < 2) return 0;
    int compressed = v[0] != 0, method = v[1];
    const uint8_t *p = v + 2, *end = d + n;
    for (int field = 0; field < 2; field++) {
        const uint8_t *zz = memchr(p, 0, (size_t)(end - p));
        if (!zz || !utf8_valid(p, (size_t)(zz - p))) return 0;
        p = zz + 1;
    }
    size_t tlen = (size_t)(end - p);
    char *val;
    if (compressed) {
        if (method != 0) return 0;
        val = text_inflate(l, p, tlen, &rc);
        if (rc < 0) return -1;
        if (!val) return 0;
        tlen = strlen(val);
    } else {
        val = malloc(tlen + 1);
        if (!val) return -1;
        memcpy(val, p, tlen);
        val[tlen] = '\0';
        tlen = strlen(val); /* a NUL ends the C string */
    }
    if (!utf8_valid((const uint8_t *)val, tlen)) {
        free(val);
        return 0;
    }
    return text_list_add(l, latin1_to_utf8(d, klen), val);
}

int ti_png_read_texts(const uint8_t *buf, size_t len, ti_png_text **texts, int *ntexts) {
    *texts = NULL;
    *ntexts = 0;
    if (!buf || len < 8 || memcmp(buf, PNG_SIG, 8) != 0) return 0;
    text_list l = {0};
    int seen_idat = 0;
    size_t pos = 8;
    while (len - pos >= 12) {
        uint32_t clen = be32(buf + pos);
        const uint8_t *type = buf + pos + 4;
        if (clen > 0x7fffffffu || len - pos - 12 < clen) break;
        const uint8_t *d = buf + pos + 8;
        if (memcmp(type, "IDAT", 4) == 0) {
            seen_idat = 1;
        } else if (memcmp(type, "IEND", 4) == 0) {
            break;
        } else if (memcmp(type, "tEXt", 4) == 0 || memcmp(type, "zTXt", 4) == 0 ||
                   memcmp(type, "iTXt", 4) == 0) {
            if (text_chunk_collect(&l, type, d, clen) != 0) {
                ti_png_texts_free(l.v, l.n);
                return -1;
            }
        }
        pos += 12 + (size_t)clen;
    }
    if (!seen_idat) { /* ended (or broke) before any pixel data */
        ti_png_texts_free(l.v, l.n);
        return -1;
    }
    *texts = l.v;
    *ntexts = l.n;
    return 0;
}

/* ---- EXIF UserComment (ti_read_exif_comment) ------------------------------------ */

static uint32_t le32(const uint8_t *p) {
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

static uint32_t tiff32(const uint8_t *p, int be) { return be ? be32(p) : le32(p); }
static unsigned tiff16(const uint8_t *p, int be) {
    return be ? ((unsigned)p[0] << 8 | p[1]) : ((unsigned)p[1] << 8 | p[0]);
}

/* The 12-byte entry of tag in the IFD at off, or NULL. */
static const uint8_t *ifd_entry(const uint8_t *t, size_t n, int be, uint32_t off, unsigned tag) {
    if (off > n || n - off < 2) return NULL;
    unsigned cnt = tiff16(t + off, be);
    for (unsigned i = 0; i < cnt; i++) {
        size_t e = (size_t)off + 2 + (size_t)i * 12;
        if (e > n || n - e < 12) return NULL;
        if (tiff16(t + e, be) == tag) return t + e;
    }
    return NULL;
}

/* The bytes of an IFD entry's value, bounds-checked. */
static int ifd_value(const uint8_t *t, size_t n, int be, const uint8_t *e, const uint8_t **v,
                     size_t *vlen) {
    uint64_t unit;
    switch (tiff16(e + 2, be)) {
    case 1: case 2: case 6: case 7: unit = 1; break;
    case 3: case 8: unit = 2; break;
    case 4: case 9: case 11: case 13: unit = 4; break;
    case 5: case 10: case 12: unit = 8; break;
    default: return 0;
    }
    uint64_t size = (uint64_t)tiff32(e + 4, be) * unit;
    if (size <= 4) {
        *v = e + 8;
        *vlen = (size_t)size;
        return 1;
    }
    uint32_t off = tiff32(e + 8, be);
    if (off > n || (uint64_t)(n - off) < size) return 0;
    *v = t + off;
    *vlen = (size_t)size;
    return 1;
}

typedef struct {
    char *d;
    size_t n, cap;
    int oom;
} ubuf;

static void ubuf_cp(ubuf *b, long cp) {
    if (cp == 0 || b->oom) return; /* U+0000 dropped */
    if (b->cap - b->n < 5) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        char *nd = realloc(b->d, ncap);
        if (!nd) {
            b->oom = 1;
            return;
        }
        b->d = nd;
        b->cap = ncap;
    }
    char *o = b->d + b->n;
    if (cp < 0x80) {
        o[0] = (char)cp;
        b->n += 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        b->n += 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        b->n += 3;
    } else {
        o[0] = (char)(0xf0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[3] = (char)(0x80 | (cp & 0x3f));
        b->n += 4;
    }
}

/* UTF-8 with invalid bytes replaced by U+FFFD (replace) or dropped. */
static void ubuf_utf8(ubuf *b, const uint8_t *s, size_t n, int replace) {
    size_t i = 0;
    while (i < n) {
        long cp = utf8_next(s, n, &i);
        if (cp < 0) {
            i++;
            if (replace) ubuf_cp(b, 0xfffd);
        } else {
            ubuf_cp(b, cp);
        }
    }
}

/* Decoded UserComment (malloc'ed, NULL when empty); *oom on allocation failure. */
static char *user_comment_decode(const uint8_t *v, size_t n, int tiff_be, int *oom) {
    ubuf b = {0};
    if (n >= 8 && memcmp(v, "UNICODE\0", 8) == 0) {
        const uint8_t *s = v + 8;
        size_t sn = n - 8;
        int be;
        if (sn >= 2 && s[0] == 0xfe && s[1] == 0xff) {
            be = 1;
            s += 2;
            sn -= 2;
        } else if (sn >= 2 && s[0] == 0xff && s[1] == 0xfe) {
            be = 0;
            s += 2;
            sn -= 2;
        } else {
            /* ASCII-range text in UTF-16BE has its zero bytes at even offsets. */
            size_t ze = 0, zo = 0;
            for (size_t i = 0; i < sn; i++)
                if (s[i] == 0) *(i & 1 ? &zo : &ze) += 1;
            be = ze > zo ? 1 : zo > ze ? 0 : tiff_be;
        }
        size_t i = 0;
        while (i + 1 < sn) {
            unsigned u = be ? ((unsigned)s[i] << 8 | s[i + 1]) : ((unsigned)s[i + 1] << 8 | s[i]);
            i += 2;
            if (u >= 0xd800 && u <= 0xdbff && i + 1 < sn) {
                unsigned u2 = be ? ((unsigned)s[i] << 8 | s[i + 1]) : ((unsigned)s[i + 1] << 8 | s[i]);
                if (u2 >= 0xdc00 && u2 <= 0xdfff) {
                    i += 2;
                    ubuf_cp(&b, 0x10000 + (((long)u - 0xd800) << 10) + (u2 - 0xdc00));
                    continue;
                }
            }
            ubuf_cp(&b, u >= 0xd800 && u <= 0xdfff ? 0xfffd : (long)u);
        }
        if (i < sn) ubuf_cp(&b, 0xfffd); /* odd trailing byte */
    } else if (n >= 8 && (memcmp(v, "ASCII\0\0\0", 8) == 0 || memcmp(v, "JIS\0\0\0\0\0", 8) == 0)) {
        ubuf_utf8(&b, v + 8, n - 8, 1);
    } else {
        ubuf_utf8(&b, v, n, 0);
    }
    if (b.oom) {
        free(b.d);
        *oom = 1;
        return NULL;
    }
    if (b.n == 0) {
        free(b.d);
        return NULL;
    }
    b.d[b.n] = '\0'; /* ubuf_cp keeps >= 1 spare byte */
    return b.d;
}

/* UserComment of a TIFF block: 0 (maybe *comment), -1 on OOM. */
static int tiff_user_comment(const uint8_t *t, size_t n, char **comment) {
    if (n >= 6 && memcmp(t, "Exif\0\0", 6) == 0) {
        t += 6;
        n -= 6;
    }
    if (n < 8) return 0;
    int be;
    if (memcmp(t, "MM\0*", 4) == 0) be = 1;
    else if (memcmp(t, "II*\0", 4) == 0) be = 0;
    else return 0;
    const uint8_t *e = ifd_entry(t, n, be, tiff32(t + 4, be), 0x8769);
    if (!e) return 0;
    e = ifd_entry(t, n, be, tiff32(e + 8, be), 0x9286);
    const uint8_t *v;
    size_t vlen;
    if (!e || !ifd_value(t, n, be, e, &v, &vlen)) return 0;
    int oom = 0;
    *comment = user_comment_decode(v, vlen, be, &oom);
    return oom ? -1 : 0;
}

/* Locate the EXIF block: 1 found, 0 none, -1 malformed. */
static int png_find_exif(const uint8_t *buf, size_t len, const uint8_t **t, size_t *tn) {
    int seen_idat = 0, found = 0;
    size_t pos = 8;
    while (len - pos >= 12) {
        uint32_t clen = be32(buf + pos);
        const uint8_t *type = buf + pos + 4;
        if (clen > 0x7fffffffu || len - pos - 12 < clen) break;
        if (memcmp(type, "IDAT", 4) == 0) seen_idat = 1;
        else if (memcmp(type, "IEND", 4) == 0) break;
        else if (memcmp(type, "eXIf", 4) == 0 && !found) {
            *t = buf + pos + 8;
            *tn = clen;
            found = 1;
        }
        pos += 12 + (size_t)clen;
    }
    return seen_idat ? found : -1;
}

static int jpeg_find_exif(const uint8_t *b, size_t len, const uint8_t **t, size_t *tn) {
    int found = 0;
    size_t pos = 2; /* after SOI */
    for (;;) {
        if (pos >= len || b[pos] != 0xff) return -1;
        while (pos < len && b[pos] == 0xff) pos++; /* fill bytes */
        if (pos >= len) return -1;
        uint8_t m = b[pos++];
        if (m == 0xda) return found; /* SOS: the metadata is behind us */
        if (m == 0x01 || (m >= 0xd0 && m <= 0xd7)) continue;
        if (m == 0x00 || m == 0xd8 || m == 0xd9) return -1;
        if (len - pos < 2) return -1;
        size_t sl = ((size_t)b[pos] << 8) | b[pos + 1];
        if (sl < 2 || len - pos < sl) return -1;
        if (m == 0xe1 && !found && sl >= 8 && memcmp(b + pos + 2, "Exif\0\0", 6) == 0) {
            *t = b + pos + 2;
            *tn = sl - 2;
            found = 1;
        }
        pos += sl;
    }
}

static int webp_find_exif(const uint8_t *b, size_t len, const uint8_t **t, size_t *tn) {
    int found = 0, chunks = 0;
    size_t end = 8 + (size_t)le32(b + 4);
    if (end > len) end = len;
    if (end < 12) return -1;
    size_t pos = 12;
    while (end - pos >= 8) {
        uint32_t cl = le32(b + pos + 4);
        if (cl > end - pos - 8) return -1; /* truncated chunk */
        if (memcmp(b + pos, "EXIF", 4) == 0 && !found) {
            *t = b + pos + 8;
            *tn = cl;
            found = 1;
        }
        chunks++;
        size_t adv = 8 + (size_t)cl + (cl & 1);
        if (adv > end - pos) break;
        pos += adv;
    }
    return chunks ? found : -1;
}

int ti_read_exif_comment(const uint8_t *buf, size_t len, char **comment) {
    *comment = NULL;
    const uint8_t *t = NULL;
    size_t tn = 0;
    int r;
    switch (ti_detect(buf, len)) {
    case TI_FMT_PNG: r = png_find_exif(buf, len, &t, &tn); break;
    case TI_FMT_JPEG: r = jpeg_find_exif(buf, len, &t, &tn); break;
    case TI_FMT_WEBP: r = webp_find_exif(buf, len, &t, &tn); break;
    default: return 0;
    }
    if (r <= 0) return r;
    if (tiff_user_comment(t, tn, comment) != 0) return -1;
    return 1;
}
