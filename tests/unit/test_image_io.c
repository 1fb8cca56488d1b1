/*
 * test_image_io.c -- proto/image_io.c and proto/base64.c.
 *
 * Images are produced in the test by the libraries themselves (libpng with
 * unusual colour types, TurboJPEG, libwebp) and decoded through ti_decode.
 * Hostile input: every prefix of a small PNG / JPEG / WebP and random byte
 * flips must give an error or a sane image, never a crash or a bad read
 * (run under valgrind to check the latter), and oversized headers must be
 * refused before any allocation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <png.h>
#include <turbojpeg.h>
#include <webp/encode.h>
#include <zlib.h>

#include "base64.h"
#include "image_io.h"

static uint32_t rng_state = 2463534242u;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* A smooth-ish test picture (compresses like a real image). */
static ti_image make_image(int w, int h, int ch) {
    ti_image im;
    assert_int_equal(ti_image_alloc(&im, w, h, ch, NULL, 0), 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = im.pixels + ((size_t)y * w + x) * ch;
            p[0] = (uint8_t)(x * 255 / (w > 1 ? w - 1 : 1));
            p[1] = (uint8_t)(y * 255 / (h > 1 ? h - 1 : 1));
            p[2] = (uint8_t)((x * 7 + y * 13) & 255);
            if (ch == 4) p[3] = (uint8_t)((x + y) * 9 & 255);
        }
    return im;
}

/* ---- a libpng writer for exotic layouts ------------------------------------------ */

typedef struct {
    uint8_t *d;
    size_t n, cap;
} buf_t;

static void buf_put(buf_t *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->d = realloc(b->d, b->cap);
        assert_non_null(b->d);
    }
    memcpy(b->d + b->n, p, n);
    b->n += n;
}

static void wcb(png_structp png, png_bytep d, png_size_t n) { buf_put(png_get_io_ptr(png), d, n); }
static void fcb(png_structp png) { (void)png; }

/* rows: packed samples in the given layout. */
static buf_t write_png_raw(int w, int h, int ctype, int depth, int interlace, const uint8_t *data,
                           const png_color *pal, int npal, const uint8_t *trns, int ntrns,
                           const png_color_16 *trns_color) {
    buf_t b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_false(setjmp(png_jmpbuf(png)));
    png_set_write_fn(png, &b, wcb, fcb);
    png_set_IHDR(png, info, w, h, depth, ctype, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, info, pal, npal);
    if (trns || trns_color) png_set_tRNS(png, info, trns, ntrns, (png_color_16p)trns_color);
    png_write_info(png, info);
    size_t rb = png_get_rowbytes(png, info);
    png_bytep *rows = malloc(sizeof(png_bytep) * h);
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)data + rb * y;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    free(rows);
    png_destroy_write_struct(&png, &info);
    return b;
}

static ti_image decode_ok(const uint8_t *buf, size_t len) {
    ti_image im;
    char err[256] = "";
    int rc = ti_decode(buf, len, 0, &im, err, sizeof(err));
    if (rc != 0) fail_msg("ti_decode: %s", err);
    return im;
}

/* ---- PNG --------------------------------------------------------------------------- */

static int count_chunks(const uint8_t *b, size_t n, const char *type) {
    int c = 0;
    for (size_t pos = 8; pos + 12 <= n;) {
        uint32_t len = (uint32_t)b[pos] << 24 | b[pos + 1] << 16 | b[pos + 2] << 8 | b[pos + 3];
        if (memcmp(b + pos + 4, type, 4) == 0) c++;
        pos += 12 + len;
    }
    return c;
}

static void test_png_roundtrip_text(void **state) {
    (void)state;
    const char *latin = "a cat, caf\xc3\xa9 style\nSteps: 20, Sampler: Euler a, CFG scale: 7";
    const char *cjk = "\xe7\x8c\xab, masterpiece \xf0\x9f\x90\xb1\nSteps: 30";
    ti_png_text texts[] = {{"parameters", latin}, {"prompt_cjk", cjk}, {"Software", "Tessera"}};
    for (int ch = 3; ch <= 4; ch++) {
        ti_image im = make_image(33, 17, ch);
        uint8_t *png = NULL;
        size_t n = 0;
        char err[256] = "";
        int rc = ti_encode_png(&im, texts, 3, 6, &png, &n, err, sizeof(err));
        if (rc != 0) fail_msg("encode: %s", err);
        assert_int_equal(ti_detect(png, n), TI_FMT_PNG);
        assert_string_equal(ti_format_name(ti_detect(png, n)), "png");
        assert_int_equal(count_chunks(png, n, "tEXt"), 2);
        assert_int_equal(count_chunks(png, n, "iTXt"), 1);
        /* the Latin-1 value is stored as Latin-1 bytes (PIL compatible) */
        assert_non_null(memmem(png, n, "parameters\0a cat, caf\xe9 style", 28));

        char *v = NULL;
        assert_int_equal(ti_png_read_text(png, n, "parameters", &v), 1);
        assert_string_equal(v, latin);
        free(v);
        assert_int_equal(ti_png_read_text(png, n, "prompt_cjk", &v), 1);
        assert_string_equal(v, cjk);
        free(v);
        assert_int_equal(ti_png_read_text(png, n, "Software", &v), 1);
        assert_string_equal(v, "Tessera");
        free(v);
        assert_int_equal(ti_png_read_text(png, n, "absent", &v), 0);
        assert_null(v);
        assert_int_equal(ti_png_read_text(png, n, "param", &v), 0);

        ti_format f;
        int w, h, a;
        assert_int_equal(ti_probe(png, n, &f, &w, &h, &a, err, sizeof(err)), 0);
        assert_int_equal(f, TI_FMT_PNG);
        assert_int_equal(w, 33);
        assert_int_equal(h, 17);
        assert_int_equal(a, ch == 4);

        ti_image back = decode_ok(png, n);
        assert_int_equal(back.width, 33);
        assert_int_equal(back.height, 17);
        assert_int_equal(back.channels, ch);
        assert_memory_equal(back.pixels, im.pixels, (size_t)33 * 17 * ch);
        ti_image_free(&back);
        free(png);
        ti_image_free(&im);
    }
    /* no texts, default compression */
    ti_image im = make_image(5, 3, 3);
    uint8_t *png;
    size_t n;
    assert_int_equal(ti_encode_png(&im, NULL, 0, -1, &png, &n, NULL, 0), 0);
    ti_image back = decode_ok(png, n);
    assert_memory_equal(back.pixels, im.pixels, 5 * 3 * 3);
    ti_image_free(&back);
    free(png);
    ti_image_free(&im);
}

static void test_png_encode_errors(void **state) {
    (void)state;
    ti_image im = make_image(4, 4, 3);
    uint8_t *png = (uint8_t *)1;
    size_t n = 1;
    char err[256];
    ti_png_text bad_utf8[] = {{"parameters", "\xc3\x28"}};
    assert_int_equal(ti_encode_png(&im, bad_utf8, 1, 6, &png, &n, err, sizeof(err)), -1);
    assert_null(png);
    assert_non_null(strstr(err, "UTF-8"));
    ti_png_text bad_key[] = {{"", "x"}};
    assert_int_equal(ti_encode_png(&im, bad_key, 1, 6, &png, &n, err, sizeof(err)), -1);
    ti_png_text long_key[] = {{"0123456789012345678901234567890123456789012345678901234567890123456789012345678901", "x"}};
    assert_int_equal(ti_encode_png(&im, long_key, 1, 6, &png, &n, err, sizeof(err)), -1);
    assert_int_equal(ti_encode_png(&im, NULL, 0, 12, &png, &n, err, sizeof(err)), -1);
    ti_image bad = {4, 4, 2, im.pixels};
    assert_int_equal(ti_encode_png(&bad, NULL, 0, 6, &png, &n, err, sizeof(err)), -1);
    ti_image_free(&im);
}

static void append_chunk(buf_t *b, const char *type, const uint8_t *d, uint32_t n) {
    uint8_t hdr[8] = {n >> 24, n >> 16, n >> 8, n, type[0], type[1], type[2], type[3]};
    buf_put(b, hdr, 8);
    if (n) buf_put(b, d, n);
    uLong crc = crc32(0, (const Bytef *)type, 4);
    if (n) crc = crc32(crc, d, n);
    uint8_t c[4] = {crc >> 24, crc >> 16, crc >> 8, crc};
    buf_put(b, c, 4);
}

static void test_png_read_text_variants(void **state) {
    (void)state;
    ti_image im = make_image(4, 4, 3);
    uint8_t *png;
    size_t n;
    assert_int_equal(ti_encode_png(&im, NULL, 0, 6, &png, &n, NULL, 0), 0);
    /* splice zTXt and compressed iTXt chunks in before IEND */
    buf_t b = {0};
    buf_put(&b, png, n - 12);
    const char *val = "caf\xe9 zipped";
    uint8_t z[256];
    uLongf zn = sizeof(z);
    assert_int_equal(compress(z, &zn, (const Bytef *)val, strlen(val)), Z_OK);
    uint8_t chunk[512];
    size_t cn = 0;
    memcpy(chunk, "zkey\0\0", 6);
    cn = 6;
    memcpy(chunk + cn, z, zn);
    append_chunk(&b, "zTXt", chunk, (uint32_t)(cn + zn));
    const char *uval = "\xe7\x8c\xab zipped itxt";
    zn = sizeof(z);
    assert_int_equal(compress(z, &zn, (const Bytef *)uval, strlen(uval)), Z_OK);
    memcpy(chunk, "ikey\0\x01\0en\0Key\0", 14);
    memcpy(chunk + 14, z, zn);
    append_chunk(&b, "iTXt", chunk, (uint32_t)(14 + zn));
    /* a zTXt with a corrupt stream */
    memcpy(chunk, "bad\0\0\x78\x9c\xff\xff", 9);
    append_chunk(&b, "zTXt", chunk, 9);
    append_chunk(&b, "IEND", NULL, 0);

    char *v;
    assert_int_equal(ti_png_read_text(b.d, b.n, "zkey", &v), 1);
    assert_string_equal(v, "caf\xc3\xa9 zipped");
    free(v);
    assert_int_equal(ti_png_read_text(b.d, b.n, "ikey", &v), 1);
    assert_string_equal(v, uval);
    free(v);
    assert_int_equal(ti_png_read_text(b.d, b.n, "bad", &v), -1);
    assert_null(v);
    /* still a valid PNG for the decoder */
    ti_image back = decode_ok(b.d, b.n);
    ti_image_free(&back);
    /* truncated chunk list and non-PNG input */
    for (size_t k = 0; k < b.n; k++) {
        int r = ti_png_read_text(b.d, k, "zkey", &v);
        assert_true(r >= -1 && r <= 1);
        free(v);
    }
    assert_int_equal(ti_png_read_text((const uint8_t *)"hello", 5, "x", &v), 0);
    free(b.d);
    free(png);
    ti_image_free(&im);
}

static void test_png_layouts(void **state) {
    (void)state;
    enum { W = 7, H = 5 };
    uint8_t data[W * H * 8];
    for (size_t i = 0; i < sizeof(data); i++) data[i] = (uint8_t)(i * 37 + 11);
    ti_image im;

    /* 8-bit gray -> RGB */
    buf_t b = write_png_raw(W, H, PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, data, NULL, 0, NULL, 0, NULL);
    im = decode_ok(b.d, b.n);
    assert_int_equal(im.channels, 3);
    for (int i = 0; i < W * H; i++) {
        assert_int_equal(im.pixels[i * 3], data[i]);
        assert_int_equal(im.pixels[i * 3 + 2], data[i]);
    }
    ti_image_free(&im);
    free(b.d);

    /* gray + alpha -> RGBA */
    b = write_png_raw(W, H, PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, data, NULL, 0, NULL, 0, NULL);
    im = decode_ok(b.d, b.n);
    assert_int_equal(im.channels, 4);
    for (int i = 0; i < W * H; i++) {
        assert_int_equal(im.pixels[i * 4 + 1], data[i * 2]);
        assert_int_equal(im.pixels[i * 4 + 3], data[i * 2 + 1]);
    }
    ti_image_free(&im);
    free(b.d);

    /* 16-bit RGB -> high bytes */
    b = write_png_raw(W, H, PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE, data, NULL, 0, NULL, 0, NULL);
    im = decode_ok(b.d, b.n);
    assert_int_equal(im.channels, 3);
    for (int i = 0; i < W * H * 3; i++) assert_int_equal(im.pixels[i], data[i * 2]);
    ti_image_free(&im);
    free(b.d);

    /* 2-bit palette with tRNS -> RGBA */
    png_color pal[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {9, 8, 7}};
    uint8_t trns[2] = {0, 128};
    uint8_t idx[H * 2]; /* 7 pixels * 2 bits = 2 bytes per row */
    for (int i = 0; i < H * 2; i++) idx[i] = 0x1b; /* 0,1,2,3 */
    b = write_png_raw(W, H, PNG_COLOR_TYPE_PALETTE, 2, PNG_INTERLACE_NONE, idx, pal, 4, trns, 2, NULL);
    ti_format f;
    int w, h, a;
    assert_int_equal(ti_probe(b.d, b.n, &f, &w, &h, &a, NULL, 0), 0);
    assert_int_equal(a, 1);
    im = decode_ok(b.d, b.n);
    assert_int_equal(im.channels, 4);
    const uint8_t px0[4] = {255, 0, 0, 0}, px1[4] = {0, 255, 0, 128}, px3[4] = {9, 8, 7, 255};
    assert_memory_equal(im.pixels, px0, 4);
    assert_memory_equal(im.pixels + 4, px1, 4);
    assert_memory_equal(im.pixels + 12, px3, 4);
    ti_image_free(&im);
    free(b.d);

    /* 1-bit gray with tRNS colour key -> RGBA */
    png_color_16 key = {0};
    key.gray = 1;
    uint8_t bits[H] = {0xaa, 0x55, 0xaa, 0x55, 0xaa};
    b = write_png_raw(W, H, PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE, bits, NULL, 0, NULL, 0, &key);
    im = decode_ok(b.d, b.n);
    assert_int_equal(im.channels, 4);
    const uint8_t white_clear[4] = {255, 255, 255, 0}, black[4] = {0, 0, 0, 255};
    assert_memory_equal(im.pixels, white_clear, 4);
    assert_memory_equal(im.pixels + 4, black, 4);
    ti_image_free(&im);
    free(b.d);

    /* Adam7 interlaced RGBA */
    b = write_png_raw(W, H, PNG_COLOR_TYPE_RGB_ALPHA, 8, PNG_INTERLACE_ADAM7, data, NULL, 0, NULL, 0, NULL);
    im = decode_ok(b.d, b.n);
    assert_int_equal(im.channels, 4);
    assert_memory_equal(im.pixels, data, W * H * 4);
    ti_image_free(&im);
    free(b.d);
}

/* ---- JPEG / WebP -------------------------------------------------------------------- */

static buf_t make_jpeg(const uint8_t *px, int w, int h, int pf, int subsamp) {
    tjhandle tj = tjInitCompress();
    unsigned char *out = NULL;
    unsigned long n = 0;
    assert_int_equal(tjCompress2(tj, px, w, 0, h, pf, &out, &n, subsamp, 95, 0), 0);
    buf_t b = {0};
    buf_put(&b, out, n);
    tjFree(out);
    tjDestroy(tj);
    return b;
}

static double mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += abs((int)a[i] - (int)b[i]);
    return s / n;
}

static void test_jpeg(void **state) {
    (void)state;
    ti_image im = make_image(40, 24, 3);
    buf_t b = make_jpeg(im.pixels, 40, 24, TJPF_RGB, TJSAMP_444);
    assert_int_equal(ti_detect(b.d, b.n), TI_FMT_JPEG);
    ti_format f;
    int w, h, a = -1;
    char err[256];
    assert_int_equal(ti_probe(b.d, b.n, &f, &w, &h, &a, err, sizeof(err)), 0);
    assert_int_equal(f, TI_FMT_JPEG);
    assert_int_equal(w, 40);
    assert_int_equal(h, 24);
    assert_int_equal(a, 0);
    ti_image d = decode_ok(b.d, b.n);
    assert_int_equal(d.channels, 3);
    assert_true(mean_abs_diff(d.pixels, im.pixels, 40 * 24 * 3) < 3.0);
    ti_image_free(&d);
    free(b.d);

    /* grayscale JPEG -> RGB */
    uint8_t gray[40 * 24];
    for (int i = 0; i < 40 * 24; i++) gray[i] = (uint8_t)(i % 40 * 6);
    b = make_jpeg(gray, 40, 24, TJPF_GRAY, TJSAMP_GRAY);
    d = decode_ok(b.d, b.n);
    assert_int_equal(d.channels, 3);
    for (int i = 0; i < 40 * 24; i++) {
        assert_int_equal(d.pixels[i * 3], d.pixels[i * 3 + 1]);
        assert_true(abs((int)d.pixels[i * 3] - gray[i]) <= 4);
    }
    ti_image_free(&d);
    free(b.d);

    /* CMYK (YCCK) JPEG, Adobe inverted convention: stored (200,100,50,255) -> RGB (200,100,50) */
    uint8_t cmyk[16 * 16 * 4];
    for (int i = 0; i < 16 * 16; i++) {
        cmyk[i * 4] = 200;
        cmyk[i * 4 + 1] = 100;
        cmyk[i * 4 + 2] = 50;
        cmyk[i * 4 + 3] = 255;
    }
    b = make_jpeg(cmyk, 16, 16, TJPF_CMYK, TJSAMP_444);
    d = decode_ok(b.d, b.n);
    assert_int_equal(d.channels, 3);
    assert_true(abs(d.pixels[0] - 200) <= 3 && abs(d.pixels[1] - 100) <= 3 && abs(d.pixels[2] - 50) <= 3);
    ti_image_free(&d);
    free(b.d);
    ti_image_free(&im);
}

static void test_webp(void **state) {
    (void)state;
    for (int ch = 3; ch <= 4; ch++) {
        ti_image im = make_image(21, 11, ch);
        uint8_t *out = NULL;
        size_t n = ch == 4 ? WebPEncodeLosslessRGBA(im.pixels, 21, 11, 21 * 4, &out)
                           : WebPEncodeLosslessRGB(im.pixels, 21, 11, 21 * 3, &out);
        assert_true(n > 0);
        assert_int_equal(ti_detect(out, n), TI_FMT_WEBP);
        assert_string_equal(ti_format_name(TI_FMT_WEBP), "webp");
        int w, h, a;
        assert_int_equal(ti_probe(out, n, NULL, &w, &h, &a, NULL, 0), 0);
        assert_int_equal(w, 21);
        assert_int_equal(h, 11);
        assert_int_equal(a, ch == 4);
        ti_image d = decode_ok(out, n);
        assert_int_equal(d.channels, ch);
        assert_memory_equal(d.pixels, im.pixels, 21 * 11 * ch);
        ti_image_free(&d);
        WebPFree(out);
        ti_image_free(&im);
    }
    /* lossy */
    ti_image im = make_image(32, 32, 3);
    uint8_t *out = NULL;
    size_t n = WebPEncodeRGB(im.pixels, 32, 32, 32 * 3, 90, &out);
    ti_image d = decode_ok(out, n);
    assert_true(mean_abs_diff(d.pixels, im.pixels, 32 * 32 * 3) < 6.0);
    ti_image_free(&d);
    WebPFree(out);
    ti_image_free(&im);
}

/* ---- hostile input ------------------------------------------------------------------- */

static void hostile(const uint8_t *good, size_t n, const char *what, int flips) {
    char err[256];
    ti_image im;
    /* every strict prefix must fail cleanly */
    for (size_t k = 0; k < n; k++) {
        uint8_t *p = malloc(k ? k : 1); /* exact size so valgrind sees overreads */
        memcpy(p, good, k);
        err[0] = '\0';
        int rc = ti_decode(p, k, 0, &im, err, sizeof(err));
        if (rc == 0) fail_msg("%s: prefix of %zu/%zu bytes decoded without error", what, k, n);
        assert_true(err[0] != '\0');
        assert_null(im.pixels);
        int w, h, a;
        ti_format f;
        if (ti_probe(p, k, &f, &w, &h, &a, err, sizeof(err)) == 0) assert_true(w > 0 && h > 0);
        char *v = NULL;
        ti_png_read_text(p, k, "parameters", &v);
        free(v);
        free(p);
    }
    /* random corruption: error or a sane image, never a crash */
    uint8_t *p = malloc(n);
    int decoded = 0;
    for (int it = 0; it < flips; it++) {
        memcpy(p, good, n);
        int nflip = 1 + rnd() % 4;
        for (int j = 0; j < nflip; j++) {
            size_t at = rnd() % n;
            if (rnd() & 1) p[at] ^= (uint8_t)(1u << (rnd() % 8));
            else p[at] = (uint8_t)rnd();
        }
        if (ti_decode(p, n, 1 << 20, &im, err, sizeof(err)) == 0) {
            assert_true(im.width > 0 && im.height > 0 && (im.channels == 3 || im.channels == 4));
            decoded++;
            ti_image_free(&im);
        }
        int w, h, a;
        ti_probe(p, n, NULL, &w, &h, &a, err, sizeof(err));
    }
    printf("  %s: %zu prefixes rejected, %d/%d corrupted copies still decoded\n", what, n, decoded, flips);
    free(p);
}

static void test_hostile(void **state) {
    (void)state;
    ti_image im = make_image(19, 13, 4);
    uint8_t *png;
    size_t n;
    ti_png_text t[] = {{"parameters", "x"}};
    assert_int_equal(ti_encode_png(&im, t, 1, 9, &png, &n, NULL, 0), 0);
    hostile(png, n, "PNG", 400);
    free(png);

    ti_image rgb = make_image(19, 13, 3);
    buf_t j = make_jpeg(rgb.pixels, 19, 13, TJPF_RGB, TJSAMP_420);
    hostile(j.d, j.n, "JPEG", 400);
    free(j.d);

    uint8_t *wp = NULL;
    size_t wn = WebPEncodeLosslessRGBA(im.pixels, 19, 13, 19 * 4, &wp);
    hostile(wp, wn, "WebP lossless", 400);
    WebPFree(wp);
    wn = WebPEncodeRGB(rgb.pixels, 19, 13, 19 * 3, 80, &wp);
    hostile(wp, wn, "WebP lossy", 400);
    WebPFree(wp);

    char err[256];
    ti_image out;
    assert_int_equal(ti_decode(NULL, 0, 0, &out, err, sizeof(err)), -1);
    assert_int_equal(ti_decode((const uint8_t *)"GIF89a", 6, 0, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unrecognised"));
    assert_int_equal(ti_detect((const uint8_t *)"RIFF\0\0\0\0WAVE", 12), TI_FMT_UNKNOWN);
    ti_image_free(&rgb);
    ti_image_free(&im);
}

static void test_pixel_limits(void **state) {
    (void)state;
    char err[256];
    ti_image im = make_image(19, 13, 3), out;
    uint8_t *png;
    size_t n;
    assert_int_equal(ti_encode_png(&im, NULL, 0, 6, &png, &n, NULL, 0), 0);
    assert_int_equal(ti_decode(png, n, 19 * 13, &out, err, sizeof(err)), 0);
    ti_image_free(&out);
    assert_int_equal(ti_decode(png, n, 19 * 13 - 1, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "image is 19x13 = 247 pixels, limit is 246");

    /* A PNG whose header claims 100000 x 100000: refused from the header,
     * before libpng is asked to allocate anything. */
    buf_t b = {0};
    buf_put(&b, png, 33);
    uint32_t big = 100000;
    uint8_t be[4] = {big >> 24, big >> 16, big >> 8, big};
    memcpy(b.d + 16, be, 4);
    memcpy(b.d + 20, be, 4);
    uLong crc = crc32(0, b.d + 12, 17);
    uint8_t c[4] = {crc >> 24, crc >> 16, crc >> 8, crc};
    memcpy(b.d + 29, c, 4);
    buf_put(&b, png + 33, n - 33);
    int w, h, a;
    assert_int_equal(ti_probe(b.d, b.n, NULL, &w, &h, &a, err, sizeof(err)), 0);
    assert_int_equal(w, 100000);
    assert_int_equal(ti_decode(b.d, b.n, 0, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "10000000000 pixels"));
    assert_int_equal(ti_decode(b.d, b.n, 4096 * 4096, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "limit is 16777216"));
    free(b.d);
    free(png);

    /* JPEG with a patched SOF claiming 60000 x 60000 */
    buf_t j = make_jpeg(im.pixels, 19, 13, TJPF_RGB, TJSAMP_444);
    size_t sof = 0;
    for (size_t i = 2; i + 9 < j.n; i++)
        if (j.d[i] == 0xff && j.d[i + 1] == 0xc0) {
            sof = i;
            break;
        }
    assert_true(sof > 0);
    j.d[sof + 5] = 60000 >> 8;
    j.d[sof + 6] = 60000 & 255;
    j.d[sof + 7] = 60000 >> 8;
    j.d[sof + 8] = 60000 & 255;
    assert_int_equal(ti_probe(j.d, j.n, NULL, &w, &h, &a, err, sizeof(err)), 0);
    assert_int_equal(h, 60000);
    assert_int_equal(ti_decode(j.d, j.n, 0, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "60000x60000"));
    free(j.d);

    /* WebP over the limit */
    uint8_t *wp;
    size_t wn = WebPEncodeLosslessRGB(im.pixels, 19, 13, 19 * 3, &wp);
    assert_int_equal(ti_decode(wp, wn, 100, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "limit is 100"));
    WebPFree(wp);
    ti_image_free(&im);
}

/* ---- base64 ---------------------------------------------------------------------------- */

static void dec_expect(const char *in, const char *want, size_t wantlen) {
    uint8_t *out;
    size_t n;
    char err[256];
    int rc = tb64_decode(in, strlen(in), &out, &n, err, sizeof(err));
    if (rc != 0) fail_msg("decode \"%s\": %s", in, err);
    assert_int_equal(n, wantlen);
    assert_memory_equal(out, want, wantlen);
    free(out);
}

static void dec_fail(const char *in, const char *msgpart) {
    uint8_t *out = (uint8_t *)1;
    size_t n;
    char err[256] = "";
    assert_int_equal(tb64_decode(in, strlen(in), &out, &n, err, sizeof(err)), -1);
    assert_null(out);
    if (!strstr(err, msgpart)) fail_msg("decode \"%s\": error \"%s\" lacks \"%s\"", in, err, msgpart);
}

static void test_base64(void **state) {
    (void)state;
    const char *vec[][2] = {{"", ""},         {"f", "Zg=="},       {"fo", "Zm8="},
                            {"foo", "Zm9v"},  {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                            {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < 7; i++) {
        char *e;
        size_t n;
        assert_int_equal(tb64_encode((const uint8_t *)vec[i][0], strlen(vec[i][0]), &e, &n, NULL, 0), 0);
        assert_string_equal(e, vec[i][1]);
        assert_int_equal(n, strlen(vec[i][1]));
        assert_int_equal(tb64_encoded_len(strlen(vec[i][0])), n);
        free(e);
        dec_expect(vec[i][1], vec[i][0], strlen(vec[i][0]));
    }
    /* missing padding, whitespace, data URL */
    dec_expect("Zg", "f", 1);
    dec_expect("Zm8", "fo", 2);
    dec_expect("Zm9v\r\nYmFy\n", "foobar", 6);
    dec_expect("  Z m 9 v\tY g = = \n", "foob", 4);
    dec_expect("data:image/png;base64,Zm9vYmE=", "fooba", 5);
    dec_expect("data:image/jpeg;base64,\nZm9v\n", "foo", 3);
    dec_expect("data:image/png;base64,", "", 0);
    dec_expect("\n\n", "", 0);
    dec_expect("+/+/", "\xfb\xff\xbf", 3);
    dec_expect("Zh==", "f", 1); /* non-zero trailing bits are accepted, as Python does */
    /* errors */
    dec_fail("Zm9v!mFy", "'!' at offset 4");
    dec_fail("Zm9v\xc3\xa9", "0xc3 at offset 4");
    dec_fail("Zm9vY", "truncated");
    dec_fail("Zg==Zg==", "after '=' padding at offset 4");
    dec_fail("Zg=", "padding");
    dec_fail("Zg===", "padding");
    dec_fail("Zm9v=", "padding");
    dec_fail("=", "padding");
    dec_fail("Zm9v-_", "'-' at offset 4");
    dec_fail("data:image/png,Zm9v", "data URL");
    dec_fail("data:image/png;base64Zm9v", "data URL");
    dec_fail("data:image/png;base64,Zm9v*", "'*' at offset 26");
    /* random round trips */
    for (int it = 0; it < 200; it++) {
        size_t len = rnd() % 300;
        uint8_t *src = malloc(len + 1);
        for (size_t i = 0; i < len; i++) src[i] = (uint8_t)rnd();
        char *e;
        size_t en;
        assert_int_equal(tb64_encode(src, len, &e, &en, NULL, 0), 0);
        uint8_t *d;
        size_t dn;
        assert_int_equal(tb64_decode(e, en, &d, &dn, NULL, 0), 0);
        assert_int_equal(dn, len);
        assert_memory_equal(d, src, len);
        free(d);
        /* without padding too */
        while (en && e[en - 1] == '=') en--;
        assert_int_equal(tb64_decode(e, en, &d, &dn, NULL, 0), 0);
        assert_int_equal(dn, len);
        assert_memory_equal(d, src, len);
        free(d);
        free(e);
        free(src);
    }
    /* a real image through base64 */
    ti_image im = make_image(9, 9, 3), back;
    uint8_t *png;
    size_t n;
    assert_int_equal(ti_encode_png(&im, NULL, 0, 6, &png, &n, NULL, 0), 0);
    char *e;
    size_t en;
    assert_int_equal(tb64_encode(png, n, &e, &en, NULL, 0), 0);
    size_t ulen = strlen("data:image/png;base64,") + en;
    char *url = malloc(ulen + 1);
    sprintf(url, "data:image/png;base64,%s", e);
    uint8_t *d;
    size_t dn;
    assert_int_equal(tb64_decode(url, ulen, &d, &dn, NULL, 0), 0);
    back = decode_ok(d, dn);
    assert_memory_equal(back.pixels, im.pixels, 9 * 9 * 3);
    ti_image_free(&back);
    free(d);
    free(url);
    free(e);
    free(png);
    ti_image_free(&im);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_roundtrip_text),
        cmocka_unit_test(test_png_encode_errors),
        cmocka_unit_test(test_png_read_text_variants),
        cmocka_unit_test(test_png_layouts),
        cmocka_unit_test(test_jpeg),
        cmocka_unit_test(test_webp),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_pixel_limits),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
