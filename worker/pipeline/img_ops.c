/*
 * img_ops.c -- A1111 img2img / inpainting pixel operations (see img_ops.h):
 * resize_image modes, binary masks, crop regions, masked content fill,
 * the overlay composite, the latent mask and the image <-> tensor
 * conversions.  The blurs live in img_blur.c.
 *
 * Everything here is integer arithmetic copied from what Pillow 9.5 does
 * for the corresponding call (Convert.c, Paste.c, AlphaComposite.c,
 * Resample.c) or float32 arithmetic in the order numpy / torch evaluate it,
 * so that results are bit-identical to A1111; the goldens in
 * tests/golden/img_ops/ check that.  Resampling itself is tr_resize
 * (worker/resize.c), which already matches Pillow's Image.resize; the one
 * resize it cannot express -- Pillow resize with a zero-height box, used by
 * resize mode 2 to stretch the edge rows -- is done here with Pillow's own
 * coefficient formula.
 */
#include "img_ops.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resize.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Pillow's 8-bit helpers (libImaging/ImPlatform.h, Imaging.h). */
static inline unsigned div255(unsigned a) {
    unsigned t = a + 128;
    return ((t >> 8) + t) >> 8;
}

static int mask_ok(const tio_mask *m) {
    return m && m->pixels && m->width > 0 && m->height > 0;
}

static int image_ok(const ti_image *im) {
    return im && im->pixels && im->width > 0 && im->height > 0 &&
           (im->channels == 3 || im->channels == 4);
}

/* ==== masks ============================================================================= */

int tio_mask_alloc(tio_mask *m, int width, int height, char *err, size_t errlen) {
    memset(m, 0, sizeof(*m));
    if (width <= 0 || height <= 0 ||
        (uint64_t)width * (uint64_t)height > TI_HARD_MAX_PIXELS) {
        seterr(err, errlen, "mask: invalid size %dx%d", width, height);
        return -1;
    }
    m->pixels = calloc((size_t)width * height, 1);
    if (!m->pixels) {
        seterr(err, errlen, "mask: out of memory");
        return -1;
    }
    m->width = width;
    m->height = height;
    return 0;
}

void tio_mask_free(tio_mask *m) {
    if (!m) return;
    free(m->pixels);
    memset(m, 0, sizeof(*m));
}

int tio_mask_from_image(const ti_image *img, tio_mask *out, char *err, size_t errlen) {
    if (out) memset(out, 0, sizeof(*out));
    if (!image_ok(img) || !out) {
        seterr(err, errlen, "mask from image: invalid image");
        return -1;
    }
    if (tio_mask_alloc(out, img->width, img->height, err, errlen) != 0) return -1;
    const size_t n = (size_t)img->width * img->height;
    const int ch = img->channels;
    const uint8_t *p = img->pixels;
    for (size_t i = 0; i < n; i++, p += ch)
        out->pixels[i] = (uint8_t)((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
    return 0;
}

int tio_mask_to_rgb(const tio_mask *m, ti_image *out, char *err, size_t errlen) {
    if (out) memset(out, 0, sizeof(*out));
    if (!mask_ok(m) || !out) {
        seterr(err, errlen, "mask to rgb: invalid mask");
        return -1;
    }
    if (ti_image_alloc(out, m->width, m->height, 3, err, errlen) != 0) return -1;
    const size_t n = (size_t)m->width * m->height;
    for (size_t i = 0; i < n; i++)
        out->pixels[i * 3] = out->pixels[i * 3 + 1] = out->pixels[i * 3 + 2] = m->pixels[i];
    return 0;
}

int tio_binary_mask(const ti_image *img, int round_mask, tio_mask *out, char *err, size_t errlen) {
    if (out) memset(out, 0, sizeof(*out));
    if (!image_ok(img) || !out) {
        seterr(err, errlen, "binary mask: invalid image");
        return -1;
    }
    const size_t n = (size_t)img->width * img->height;
    int use_alpha = 0;
    if (img->channels == 4)
        for (size_t i = 0; i < n && !use_alpha; i++) use_alpha = img->pixels[i * 4 + 3] != 255;
    if (!use_alpha) return tio_mask_from_image(img, out, err, errlen);
    if (tio_mask_alloc(out, img->width, img->height, err, errlen) != 0) return -1;
    for (size_t i = 0; i < n; i++) {
        uint8_t a = img->pixels[i * 4 + 3];
        out->pixels[i] = round_mask ? (a > 128 ? 255 : 0) : a;
    }
    return 0;
}

void tio_mask_invert(tio_mask *m) {
    if (!mask_ok(m)) return;
    const size_t n = (size_t)m->width * m->height;
    for (size_t i = 0; i < n; i++) m->pixels[i] = (uint8_t)(255 - m->pixels[i]);
}

/* ==== planes: RGB images and masks through one code path =============================== */

typedef struct {
    int w, h, ch; /* ch 1 (mask) or 3 (RGB) */
    uint8_t *px;
} plane;

static int plane_alloc(plane *p, int w, int h, int ch) {
    p->w = w;
    p->h = h;
    p->ch = ch;
    p->px = calloc((size_t)w * h * ch, 1);
    return p->px ? 0 : -1;
}

/* Pillow LANCZOS resize via tr_resize (RGB; a 1-channel plane goes through
 * RGB with R = G = B, which resamples each channel exactly like 'L'). */
static int plane_lanczos(const plane *in, int w, int h, plane *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    ti_image src = {in->w, in->h, 3, in->px}, dst = {0};
    uint8_t *tmp = NULL;
    if (in->ch == 1) {
        size_t n = (size_t)in->w * in->h;
        tmp = malloc(n * 3);
        if (!tmp) {
            seterr(err, errlen, "resize: out of memory");
            return -1;
        }
        for (size_t i = 0; i < n; i++) tmp[i * 3] = tmp[i * 3 + 1] = tmp[i * 3 + 2] = in->px[i];
        src.pixels = tmp;
    }
    int rc = tr_resize(&src, w, h, TR_LANCZOS, &dst, err, errlen);
    free(tmp);
    if (rc != 0) return -1;
    if (in->ch == 3) {
        out->w = w;
        out->h = h;
        out->ch = 3;
        out->px = dst.pixels; /* take ownership */
        return 0;
    }
    if (plane_alloc(out, w, h, 1) != 0) {
        ti_image_free(&dst);
        seterr(err, errlen, "resize: out of memory");
        return -1;
    }
    for (size_t i = 0; i < (size_t)w * h; i++) out->px[i] = dst.pixels[i * 3];
    ti_image_free(&dst);
    return 0;
}

/* Pillow Image.paste(src, (dx, dy)) without a mask, clipped to dst. */
static void plane_paste(plane *dst, const plane *src, int dx, int dy) {
    int sx = 0, sy = 0, w = src->w, h = src->h;
    if (dx < 0) {
        sx = -dx;
        w += dx;
        dx = 0;
    }
    if (dy < 0) {
        sy = -dy;
        h += dy;
        dy = 0;
    }
    if (dx + w > dst->w) w = dst->w - dx;
    if (dy + h > dst->h) h = dst->h - dy;
    if (w <= 0 || h <= 0) return;
    const int ch = dst->ch;
    for (int y = 0; y < h; y++)
        memcpy(dst->px + ((size_t)(dy + y) * dst->w + dx) * ch,
               src->px + ((size_t)(sy + y) * src->w + sx) * ch, (size_t)w * ch);
}

/* Pillow's bicubic kernel (a = -0.5), the default filter of Image.resize. */
static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Pillow's precompute_coeffs for a zero-length box at `edge` (0 or the
 * input size) with the BICUBIC filter (A1111 passes no resample argument
 * for these strips, so Image.resize uses its default): scale 0, so every
 * output sample uses the same taps -- centre = edge, support 2, window
 * [(int)(edge - 1.5), (int)(edge + 2.5)) clamped to the input, weights
 * bicubic(i + xmin - edge + 0.5) normalised, rounded to 22-bit fixed
 * point.  At an edge this leaves two taps, 1.125 and -0.125 (nearest line
 * first).  Returns the tap count. */
#define PIL_PRECISION_BITS 22
static int edge_coeffs(int in_size, int edge, int *xmin_out, int32_t k[8]) {
    const double support = 2.0;
    double center = edge;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    int n = xmax - xmin;
    if (n < 0) n = 0;
    if (n > 5) n = 5; /* ceil(support) * 2 + 1 */
    double w[8], ww = 0.0;
    for (int i = 0; i < n; i++) {
        w[i] = bicubic(i + xmin - center + 0.5);
        ww += w[i];
    }
    for (int i = 0; i < n; i++) {
        double v = ww != 0.0 ? w[i] / ww : w[i];
        k[i] = v < 0 ? (int32_t)(-0.5 + v * (1 << PIL_PRECISION_BITS))
                     : (int32_t)(0.5 + v * (1 << PIL_PRECISION_BITS));
    }
    *xmin_out = xmin;
    return n;
}

static inline uint8_t pil_clip8(int32_t v) {
    if (v >= (1 << PIL_PRECISION_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> PIL_PRECISION_BITS);
}

/* resized.resize((len, band), box=(0, edge, len, edge)) (rows) or
 * resized.resize((band, len), box=(edge, 0, edge, len)) (columns), pasted
 * at (px, py) into dst.  Every output line is the same blend of the <= 3
 * source lines nearest the edge. */
static void paste_edge_band(plane *dst, const plane *src, int rows, int edge, int band,
                            int px, int py) {
    int32_t k[8] = {0};
    int xmin;
    const int ch = src->ch;
    if (rows) {
        int n = edge_coeffs(src->h, edge, &xmin, k);
        for (int x = 0; x < src->w; x++) {
            if (px + x < 0 || px + x >= dst->w) continue;
            for (int c = 0; c < ch; c++) {
                int32_t ss = 1 << (PIL_PRECISION_BITS - 1);
                for (int i = 0; i < n; i++)
                    ss += src->px[((size_t)(xmin + i) * src->w + x) * ch + c] * k[i];
                uint8_t v = pil_clip8(ss);
                for (int y = 0; y < band; y++) {
                    int yy = py + y;
                    if (yy < 0 || yy >= dst->h) continue;
                    dst->px[((size_t)yy * dst->w + px + x) * ch + c] = v;
                }
            }
        }
    } else {
        int n = edge_coeffs(src->w, edge, &xmin, k);
        for (int y = 0; y < src->h; y++) {
            if (py + y < 0 || py + y >= dst->h) continue;
            for (int c = 0; c < ch; c++) {
                int32_t ss = 1 << (PIL_PRECISION_BITS - 1);
                for (int i = 0; i < n; i++)
                    ss += src->px[((size_t)y * src->w + xmin + i) * ch + c] * k[i];
                uint8_t v = pil_clip8(ss);
                for (int x = 0; x < band; x++) {
                    int xx = px + x;
                    if (xx < 0 || xx >= dst->w) continue;
                    dst->px[((size_t)(py + y) * dst->w + xx) * ch + c] = v;
                }
            }
        }
    }
}

static int plane_resize_image(const plane *in, int mode, int width, int height, plane *out,
                              char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    if (mode < 0 || mode > 3) {
        seterr(err, errlen, "resize_image: unknown resize mode %d", mode);
        return -1;
    }
    if (width <= 0 || height <= 0 ||
        (uint64_t)width * (uint64_t)height > TI_HARD_MAX_PIXELS) {
        seterr(err, errlen, "resize_image: invalid target size %dx%d", width, height);
        return -1;
    }
    if (mode == 0) return plane_lanczos(in, width, height, out, err, errlen);

    const double ratio = (double)width / height;
    const double src_ratio = (double)in->w / in->h;
    int64_t sw, sh;
    if (mode == 1) {
        sw = ratio > src_ratio ? width : (int64_t)in->w * height / in->h;
        sh = ratio <= src_ratio ? height : (int64_t)in->h * width / in->w;
    } else {
        sw = ratio < src_ratio ? width : (int64_t)in->w * height / in->h;
        sh = ratio >= src_ratio ? height : (int64_t)in->h * width / in->w;
    }
    if (sw < 1 || sh < 1 || (uint64_t)sw * (uint64_t)sh > TI_HARD_MAX_PIXELS) {
        seterr(err, errlen, "resize_image: %dx%d -> %dx%d scales the image to %lldx%lld",
               in->w, in->h, width, height, (long long)sw, (long long)sh);
        return -1;
    }
    plane resized;
    if (plane_lanczos(in, (int)sw, (int)sh, &resized, err, errlen) != 0) return -1;
    if (plane_alloc(out, width, height, in->ch) != 0) {
        free(resized.px);
        seterr(err, errlen, "resize_image: out of memory");
        return -1;
    }
    const int ox = width / 2 - (int)sw / 2, oy = height / 2 - (int)sh / 2;
    plane_paste(out, &resized, ox, oy);
    if (mode >= 2) {
        if (ratio < src_ratio) {
            int fh = height / 2 - (int)sh / 2;
            if (fh > 0) {
                paste_edge_band(out, &resized, 1, 0, fh, 0, 0);
                paste_edge_band(out, &resized, 1, resized.h, fh, 0, fh + (int)sh);
            }
        } else if (ratio > src_ratio) {
            int fw = width / 2 - (int)sw / 2;
            if (fw > 0) {
                paste_edge_band(out, &resized, 0, 0, fw, 0, 0);
                paste_edge_band(out, &resized, 0, resized.w, fw, fw + (int)sw, 0);
            }
        }
    }
    free(resized.px);
    return 0;
}

int tio_resize_image(const ti_image *in, int mode, int w, int h, ti_image *out,
                     char *err, size_t errlen) {
    if (out) memset(out, 0, sizeof(*out));
    if (!image_ok(in) || in->channels != 3 || !out) {
        seterr(err, errlen, "resize_image: need an RGB image");
        return -1;
    }
    plane src = {in->width, in->height, 3, in->pixels}, dst;
    if (plane_resize_image(&src, mode, w, h, &dst, err, errlen) != 0) return -1;
    out->width = dst.w;
    out->height = dst.h;
    out->channels = 3;
    out->pixels = dst.px;
    return 0;
}

int tio_resize_mask(const tio_mask *in, int mode, int w, int h, tio_mask *out,
                    char *err, size_t errlen) {
    if (out) memset(out, 0, sizeof(*out));
    if (!mask_ok(in) || !out) {
        seterr(err, errlen, "resize_image: invalid mask");
        return -1;
    }
    plane src = {in->width, in->height, 1, in->pixels}, dst;
    if (plane_resize_image(&src, mode, w, h, &dst, err, errlen) != 0) return -1;
    out->width = dst.w;
    out->height = dst.h;
    out->pixels = dst.px;
    return 0;
}

/* ==== crop regions ====================================================================== */

int tio_crop_region(const tio_mask *m, int pad, tio_rect *out, char *err, size_t errlen) {
    if (!mask_ok(m) || !out) {
        seterr(err, errlen, "crop region: invalid mask");
        return -1;
    }
    if (pad < 0) {
        seterr(err, errlen, "crop region: negative padding %d", pad);
        return -1;
    }
    int x1 = m->width, y1 = m->height, x2 = -1, y2 = -1;
    for (int y = 0; y < m->height; y++) {
        const uint8_t *row = m->pixels + (size_t)y * m->width;
        for (int x = 0; x < m->width; x++) {
            if (!row[x]) continue;
            if (x < x1) x1 = x;
            if (x > x2) x2 = x;
            if (y < y1) y1 = y;
            y2 = y;
        }
    }
    if (x2 < 0) return 0;
    /* Pillow getbbox: exclusive right / bottom. */
    x2 += 1;
    y2 += 1;
    int64_t a = (int64_t)x1 - pad, b = (int64_t)y1 - pad;
    int64_t c = (int64_t)x2 + pad, d = (int64_t)y2 + pad;
    out->x1 = a < 0 ? 0 : (int)a;
    out->y1 = b < 0 ? 0 : (int)b;
    out->x2 = c > m->width ? m->width : (int)c;
    out->y2 = d > m->height ? m->height : (int)d;
    return 1;
}

/* Python's // for a positive divisor. */
static int64_t floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

tio_rect tio_expand_crop_region(tio_rect r, int proc_w, int proc_h, int image_w, int image_h) {
    if (r.x2 <= r.x1 || r.y2 <= r.y1 || proc_w <= 0 || proc_h <= 0) return r;
    int64_t x1 = r.x1, y1 = r.y1, x2 = r.x2, y2 = r.y2;
    const double ratio_crop = (double)(x2 - x1) / (double)(y2 - y1);
    const double ratio_proc = (double)proc_w / (double)proc_h;
    if (ratio_crop > ratio_proc) {
        double desired = (double)(x2 - x1) / ratio_proc;
        int64_t diff = (int64_t)(desired - (double)(y2 - y1));
        y1 -= floordiv(diff, 2);
        y2 += diff - floordiv(diff, 2);
        if (y2 >= image_h) {
            int64_t s = y2 - image_h;
            y2 -= s;
            y1 -= s;
        }
        if (y1 < 0) {
            y2 -= y1;
            y1 = 0;
        }
        if (y2 >= image_h) y2 = image_h;
    } else {
        double desired = (double)(y2 - y1) * ratio_proc;
        int64_t diff = (int64_t)(desired - (double)(x2 - x1));
        x1 -= floordiv(diff, 2);
        x2 += diff - floordiv(diff, 2);
        if (x2 >= image_w) {
            int64_t s = x2 - image_w;
            x2 -= s;
            x1 -= s;
        }
        if (x1 < 0) {
            x2 -= x1;
            x1 = 0;
        }
        if (x2 >= image_w) x2 = image_w;
    }
    tio_rect o = {(int)x1, (int)y1, (int)x2, (int)y2};
    return o;
}

static int plane_crop(const plane *in, tio_rect b, plane *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    int64_t w = (int64_t)b.x2 - b.x1, h = (int64_t)b.y2 - b.y1;
    if (w <= 0 || h <= 0 || (uint64_t)w * (uint64_t)h > TI_HARD_MAX_PIXELS) {
        seterr(err, errlen, "crop: invalid box (%d,%d,%d,%d)", b.x1, b.y1, b.x2, b.y2);
        return -1;
    }
    if (plane_alloc(out, (int)w, (int)h, in->ch) != 0) {
        seterr(err, errlen, "crop: out of memory");
        return -1;
    }
    plane_paste(out, in, -b.x1, -b.y1);
    return 0;
}

int tio_crop_image(const ti_image *in, tio_rect box, ti_image *out, char *err, size_t errlen) {
    if (out) memset(out, 0, sizeof(*out));
    if (!image_ok(in) || !out) {
        seterr(err, errlen, "crop: invalid image");
        return -1;
    }
    plane src = {in->width, in->height, in->channels, in->pixels}, dst;
    if (plane_crop(&src, box, &dst, err, errlen) != 0) return -1;
    out->width = dst.w;
    out->height = dst.h;
    out->channels = in->channels;
    out->pixels = dst.px;
    return 0;
}

int tio_crop_mask(const tio_mask *in, tio_rect box, tio_mask *out, char *err, size_t errlen) {
    if (out) memset(out, 0, sizeof(*out));
    if (!mask_ok(in) || !out) {
        seterr(err, errlen, "crop: invalid mask");
        return -1;
    }
    plane src = {in->width, in->height, 1, in->pixels}, dst;
    if (plane_crop(&src, box, &dst, err, errlen) != 0) return -1;
    out->width = dst.w;
    out->height = dst.h;
    out->pixels = dst.px;
    return 0;
}

/* ==== compositing ====================================================================== */

int tio_alpha_composite(ti_image *dst, const ti_image *src, char *err, size_t errlen) {
    if (!image_ok(dst) || !image_ok(src) || dst->channels != 4 || src->channels != 4 ||
        dst->width != src->width || dst->height != src->height) {
        seterr(err, errlen, "alpha composite: need two RGBA images of the same size");
        return -1;
    }
    const int PB = 7; /* Pillow's PRECISION_BITS in AlphaComposite.c */
    const size_t n = (size_t)dst->width * dst->height;
    uint8_t *d = dst->pixels;
    const uint8_t *s = src->pixels;
    for (size_t i = 0; i < n; i++, d += 4, s += 4) {
        if (s[3] == 0) continue;
        uint32_t blend = (uint32_t)d[3] * (255u - s[3]);
        uint32_t outa255 = (uint32_t)s[3] * 255u + blend;
        uint32_t coef1 = (uint32_t)s[3] * 255u * 255u * (1u << PB) / outa255;
        uint32_t coef2 = 255u * (1u << PB) - coef1;
        for (int c = 0; c < 3; c++) {
            uint32_t t = s[c] * coef1 + d[c] * coef2 + (0x80u << PB);
            d[c] = (uint8_t)((((t >> 8) + t) >> 8) >> PB);
        }
        uint32_t t = outa255 + 0x80u;
        d[3] = (uint8_t)(((t >> 8) + t) >> 8);
    }
    return 0;
}

/* Pillow RGBa -> RGBA (Convert.c rgba2rgbA). */
static void unpremultiply(uint8_t *p, size_t npx) {
    for (size_t i = 0; i < npx; i++, p += 4) {
        unsigned a = p[3];
        if (a == 0 || a == 255) continue;
        for (int c = 0; c < 3; c++) {
            unsigned v = 255u * p[c] / a;
            p[c] = (uint8_t)(v > 255 ? 255 : v);
        }
    }
}

/* Image.new('RGBa').paste(image.convert('RGBA').convert('RGBa'),
 * mask=ImageOps.invert(mask)): every channel of the premultiplied image
 * blended with zero through 255 - mask (Paste.c paste_mask_L). */
static int masked_premultiplied(const ti_image *image, const tio_mask *mask, ti_image *out,
                                char *err, size_t errlen) {
    if (ti_image_alloc(out, image->width, image->height, 4, err, errlen) != 0) return -1;
    const size_t n = (size_t)image->width * image->height;
    const int ch = image->channels;
    const uint8_t *p = image->pixels;
    uint8_t *o = out->pixels;
    for (size_t i = 0; i < n; i++, p += ch, o += 4) {
        unsigned a = ch == 4 ? p[3] : 255u;
        unsigned m = 255u - mask->pixels[i];
        for (int c = 0; c < 3; c++) {
            unsigned pre = ch == 4 ? div255(p[c] * a) : p[c]; /* RGBA -> RGBa */
            o[c] = (uint8_t)div255(pre * m);
        }
        o[3] = (uint8_t)div255(a * m);
    }
    return 0;
}

int tio_fill(const ti_image *image, const tio_mask *mask, ti_image *out, char *err, size_t errlen) {
    if (out) memset(out, 0, sizeof(*out));
    if (!image_ok(image) || !mask_ok(mask) || !out || mask->width != image->width ||
        mask->height != image->height) {
        seterr(err, errlen, "fill: need an image and a mask of the same size");
        return -1;
    }
    static const struct {
        float radius;
        int repeats;
    } steps[] = {{256, 1}, {64, 1}, {16, 2}, {4, 4}, {2, 2}, {0, 1}};
    ti_image masked = {0}, blurred = {0}, canvas = {0};
    const size_t n = (size_t)image->width * image->height;
    if (masked_premultiplied(image, mask, &masked, err, errlen) != 0 ||
        ti_image_alloc(&blurred, image->width, image->height, 4, err, errlen) != 0 ||
        ti_image_alloc(&canvas, image->width, image->height, 4, err, errlen) != 0)
        goto fail;
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        memcpy(blurred.pixels, masked.pixels, n * 4);
        if (tio_pil_gaussian_blur(&blurred, steps[s].radius, err, errlen) != 0) goto fail;
        unpremultiply(blurred.pixels, n);
        for (int r = 0; r < steps[s].repeats; r++)
            if (tio_alpha_composite(&canvas, &blurred, err, errlen) != 0) goto fail;
    }
    if (ti_image_alloc(out, image->width, image->height, 3, err, errlen) != 0) goto fail;
    for (size_t i = 0; i < n; i++) memcpy(out->pixels + i * 3, canvas.pixels + i * 4, 3);
    ti_image_free(&masked);
    ti_image_free(&blurred);
    ti_image_free(&canvas);
    return 0;
fail:
    ti_image_free(&masked);
    ti_image_free(&blurred);
    ti_image_free(&canvas);
    return -1;
}

int tio_make_overlay(const ti_image *image, const tio_mask *mask_for_overlay, ti_image *out,
                     char *err, size_t errlen) {
    if (out) memset(out, 0, sizeof(*out));
    if (!image_ok(image) || !mask_ok(mask_for_overlay) || !out ||
        mask_for_overlay->width != image->width || mask_for_overlay->height != image->height) {
        seterr(err, errlen, "overlay: need an image and a mask of the same size");
        return -1;
    }
    if (masked_premultiplied(image, mask_for_overlay, out, err, errlen) != 0) return -1;
    unpremultiply(out->pixels, (size_t)image->width * image->height);
    return 0;
}

int tio_whole_picture_overlay_mask(const tio_mask *mask, tio_mask *out, char *err, size_t errlen) {
    if (out) memset(out, 0, sizeof(*out));
    if (!mask_ok(mask) || !out) {
        seterr(err, errlen, "overlay mask: invalid mask");
        return -1;
    }
    if (tio_mask_alloc(out, mask->width, mask->height, err, errlen) != 0) return -1;
    const size_t n = (size_t)mask->width * mask->height;
    for (size_t i = 0; i < n; i++) {
        unsigned v = 2u * mask->pixels[i];
        out->pixels[i] = (uint8_t)(v > 255 ? 255 : v);
    }
    return 0;
}

int tio_apply_overlay(const ti_image *generated, const tio_rect *paste_to, const ti_image *overlay,
                      ti_image *out, char *err, size_t errlen) {
    if (out) memset(out, 0, sizeof(*out));
    if (!image_ok(generated) || generated->channels != 3 || !image_ok(overlay) ||
        overlay->channels != 4 || !out) {
        seterr(err, errlen, "apply overlay: need an RGB image and an RGBA overlay");
        return -1;
    }
    const int W = overlay->width, H = overlay->height;
    ti_image base = {0};
    if (ti_image_alloc(&base, W, H, 4, err, errlen) != 0) return -1;
    if (paste_to) {
        ti_image part = {0};
        if (tio_resize_image(generated, 1, paste_to->x2 - paste_to->x1,
                             paste_to->y2 - paste_to->y1, &part, err, errlen) != 0) {
            ti_image_free(&base);
            return -1;
        }
        for (int y = 0; y < part.height; y++) {
            int yy = paste_to->y1 + y;
            if (yy < 0 || yy >= H) continue;
            for (int x = 0; x < part.width; x++) {
                int xx = paste_to->x1 + x;
                if (xx < 0 || xx >= W) continue;
                uint8_t *d = base.pixels + ((size_t)yy * W + xx) * 4;
                memcpy(d, part.pixels + ((size_t)y * part.width + x) * 3, 3);
                d[3] = 255;
            }
        }
        ti_image_free(&part);
    } else {
        if (generated->width != W || generated->height != H) {
            ti_image_free(&base);
            seterr(err, errlen, "apply overlay: image %dx%d, overlay %dx%d", generated->width,
                   generated->height, W, H);
            return -1;
        }
        for (size_t i = 0; i < (size_t)W * H; i++) {
            memcpy(base.pixels + i * 4, generated->pixels + i * 3, 3);
            base.pixels[i * 4 + 3] = 255;
        }
    }
    if (tio_alpha_composite(&base, overlay, err, errlen) != 0 ||
        ti_image_alloc(out, W, H, 3, err, errlen) != 0) {
        ti_image_free(&base);
        return -1;
    }
    for (size_t i = 0; i < (size_t)W * H; i++) memcpy(out->pixels + i * 3, base.pixels + i * 4, 3);
    ti_image_free(&base);
    return 0;
}

/* ==== latent mask ======================================================================= */

int tio_latent_mask(const tio_mask *m, int lat_w, int lat_h, int round_mask, float *nmask,
                    float *mask, char *err, size_t errlen) {
    if (!mask_ok(m) || lat_w <= 0 || lat_h <= 0) {
        seterr(err, errlen, "latent mask: invalid mask or size");
        return -1;
    }
    ti_image rgb = {0}, small = {0};
    if (tio_mask_to_rgb(m, &rgb, err, errlen) != 0) return -1;
    int rc = tr_resize(&rgb, lat_w, lat_h, TR_BICUBIC, &small, err, errlen);
    ti_image_free(&rgb);
    if (rc != 0) return -1;
    for (size_t i = 0; i < (size_t)lat_w * lat_h; i++) {
        float v = (float)small.pixels[i * 3] / 255.0f;
        if (round_mask) v = rintf(v); /* np.around: half to even */
        if (nmask) nmask[i] = v;
        if (mask) mask[i] = 1.0f - v;
    }
    ti_image_free(&small);
    return 0;
}

/* ==== tensors =========================================================================== */

int tio_image_to_chw(const ti_image *img, float *chw, char *err, size_t errlen) {
    if (!image_ok(img) || img->channels != 3 || !chw) {
        seterr(err, errlen, "image to tensor: need an RGB image");
        return -1;
    }
    const size_t n = (size_t)img->width * img->height;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) {
            float t = (float)img->pixels[i * 3 + c] / 255.0f;
            t = t * 2.0f;
            chw[(size_t)c * n + i] = t - 1.0f;
        }
    return 0;
}

int tio_chw_to_image(const float *chw, int w, int h, ti_image *out, char *err, size_t errlen) {
    if (out) memset(out, 0, sizeof(*out));
    if (!chw || !out) {
        seterr(err, errlen, "tensor to image: NULL argument");
        return -1;
    }
    if (ti_image_alloc(out, w, h, 3, err, errlen) != 0) return -1;
    const size_t n = (size_t)w * h;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) {
            float x = chw[(size_t)c * n + i];
            float v = (x + 1.0f) / 2.0f;
            if (!(v == v)) v = 0.0f;
            if (v < 0.0f) v = 0.0f;
            if (v > 1.0f) v = 1.0f;
            v = 255.0f * v;
            out->pixels[i * 3 + c] = (uint8_t)v; /* astype(np.uint8): truncation */
        }
    return 0;
}
