/* job_extras.c - the "extras" job: resize one image with a classic filter, as
 * the A1111 Extras tab does ("Upscaler 1" with Lanczos, Nearest, Bicubic or
 * None), or with an ESRGAN-family AI upscaler from the worker's models dir.
 * AI upscalers are checked for syntax only (the daemon may not see the
 * models; the worker fails the job when the file is missing), with the rules
 * of worker/model/esrgan.h: "ESRGAN/<stem>", "RealESRGAN/<stem>" (folder
 * prefix case-insensitive, stem 1..100 of letters, digits, space and
 * _-.+()[], not starting with '.' or space, ".safetensors" dropped) or A1111's
 * names "ESRGAN_4x", "R-ESRGAN 4x+", "R-ESRGAN 4x+ Anime6B", "R-ESRGAN 2x+"
 * (case-insensitive, stored in A1111's spelling). The output size follows
 * A1111's arithmetic:
 *   scale mode: out = (int(w * resize), int(h * resize))
 *   size mode:  by = max(W/w, H/h); resize to (int(w*by), int(h*by)), then,
 *               with crop (default), cut the centre W x H.
 * Giving only one of width/height keeps the aspect ratio.
 *
 * Canonical spec (what the worker reads):
 *   {"type":"extras","upscaler":"Lanczos","resize":2.0 | null,
 *    "width":W | null,"height":H | null,"crop":true,
 *    "input":{"format":"png","width":w,"height":h,"alpha":false},
 *    "scaled":{"width":sw,"height":sh},"output":{"width":ow,"height":oh}}
 */
#include "base64.h"
#include "image_io.h"
#include "job.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const upscalers[] = {"None", "Lanczos", "Nearest", "Bicubic", "Bilinear", NULL};
static const char *const ai_upscalers[] = {"ESRGAN_4x", "R-ESRGAN 4x+", "R-ESRGAN 4x+ Anime6B", "R-ESRGAN 2x+", NULL};
static const char *const ai_dirs[] = {"ESRGAN", "RealESRGAN", NULL};

/* An AI upscaler name (see above): 1 and its canonical spelling in canon, else 0. */
static int ai_upscaler_name(const char *name, char *canon, size_t len) {
    for (int i = 0; ai_upscalers[i]; i++)
        if (!strcasecmp(name, ai_upscalers[i])) return snprintf(canon, len, "%s", ai_upscalers[i]), 1;
    for (int d = 0; ai_dirs[d]; d++) {
        size_t n = strlen(ai_dirs[d]);
        if (strncasecmp(name, ai_dirs[d], n) || name[n] != '/') continue;
        const char *stem = name + n + 1;
        size_t sl = strlen(stem);
        if (sl > 12 && !strcasecmp(stem + sl - 12, ".safetensors")) sl -= 12;
        if (sl < 1 || sl > 100 || stem[0] == '.' || stem[0] == ' ') return 0;
        for (size_t i = 0; i < sl; i++)
            if (!isalnum((unsigned char)stem[i]) && !strchr(" _-.+()[]", stem[i])) return 0;
        snprintf(canon, len, "%s/%.*s", ai_dirs[d], (int)sl, stem);
        return 1;
    }
    return 0;
}

static int get_positive_int(const json_t *body, const char *name, int *out, int *present, tjob_error *err) {
    json_t *v = json_object_get(body, name);
    *present = 0;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000) {
        tjob_fail(err, 422, "invalid_field", name, "%s must be a positive integer", name);
        return -1;
    }
    *out = (int)json_integer_value(v);
    *present = 1;
    return 0;
}

int tjob_validate_extras(const json_t *body, const tjob_limits *lim, json_t *spec, tjob_submission *out,
                         tjob_error *err) {
    static const char *const known[] = {"image", "upscaler", "resize", "width", "height", "crop", NULL};
    if (tjob_check_known_fields(body, known, err)) return -1;

    /* upscaler */
    const char *upscaler = "Lanczos";
    char ai[160];
    json_t *u = json_object_get(body, "upscaler");
    if (u && !json_is_null(u)) {
        upscaler = NULL;
        if (json_is_string(u)) {
            for (int i = 0; upscalers[i]; i++)
                if (!strcasecmp(json_string_value(u), upscalers[i])) upscaler = upscalers[i];
            if (!upscaler && ai_upscaler_name(json_string_value(u), ai, sizeof ai)) upscaler = ai;
        }
        if (!upscaler) {
            tjob_fail(err, 422, "invalid_field", "upscaler",
                      "upscaler must be one of None, Lanczos, Nearest, Bicubic, Bilinear, an AI upscaler of the "
                      "worker's models dir (ESRGAN/<name>, RealESRGAN/<name>) or ESRGAN_4x, R-ESRGAN 4x+, "
                      "R-ESRGAN 4x+ Anime6B, R-ESRGAN 2x+");
            return -1;
        }
    }

    /* sizing: resize factor, or width and/or height */
    int w = 0, h = 0, has_w, has_h;
    if (get_positive_int(body, "width", &w, &has_w, err) || get_positive_int(body, "height", &h, &has_h, err))
        return -1;
    json_t *r = json_object_get(body, "resize");
    double resize = 0;
    int has_r = r && !json_is_null(r);
    if (has_r) {
        if (!json_is_number(r) || !(json_number_value(r) > 0) || json_number_value(r) > 16) {
            tjob_fail(err, 422, "invalid_field", "resize", "resize must be a number in (0, 16]");
            return -1;
        }
        resize = json_number_value(r);
    }
    if (has_r && (has_w || has_h)) {
        tjob_fail(err, 422, "invalid_field", "resize", "give either resize or width/height, not both");
        return -1;
    }
    if (!has_r && !has_w && !has_h) {
        resize = 2.0; /* A1111's default upscaling_resize */
        has_r = 1;
    }
    int crop = 1;
    json_t *c = json_object_get(body, "crop");
    if (c && !json_is_null(c)) {
        if (!json_is_boolean(c)) {
            tjob_fail(err, 422, "invalid_field", "crop", "crop must be true or false");
            return -1;
        }
        crop = json_is_true(c);
    }

    /* image: base64, decoded, probed (header only) against the limits */
    json_t *img = json_object_get(body, "image");
    if (!img || json_is_null(img)) {
        tjob_fail(err, 422, "missing_field", "image", "image is required: a base64 PNG, JPEG or WebP");
        return -1;
    }
    if (!json_is_string(img)) {
        tjob_fail(err, 422, "invalid_field", "image", "image must be a base64 string");
        return -1;
    }
    char msg[256];
    if ((long long)json_string_length(img) / 4 * 3 > lim->max_input_bytes + 3) {
        tjob_fail(err, 413, "image_too_large", "image", "image is larger than the limit of %lld bytes",
                  lim->max_input_bytes);
        return -1;
    }
    if (tb64_decode(json_string_value(img), json_string_length(img), &out->input, &out->input_len, msg,
                    sizeof msg)) {
        tjob_fail(err, 422, "invalid_field", "image", "image is not valid base64: %s", msg);
        return -1;
    }
    ti_format fmt;
    int iw, ih, alpha;
    if (ti_probe(out->input, out->input_len, &fmt, &iw, &ih, &alpha, msg, sizeof msg)) {
        tjob_fail(err, 422, "invalid_field", "image", "image is not a readable PNG, JPEG or WebP: %s", msg);
        return -1;
    }
    if (iw > lim->max_width || ih > lim->max_height || (long long)iw * ih > lim->max_pixels) {
        tjob_fail(err, 422, "invalid_field", "image",
                  "image is %dx%d; the limits are %dx%d and %lld pixels", iw, ih, lim->max_width,
                  lim->max_height, lim->max_pixels);
        return -1;
    }
    /* only now, with the size known to be acceptable, read the whole container */
    if (ti_check_complete(out->input, out->input_len, msg, sizeof msg)) {
        tjob_fail(err, 422, "invalid_field", "image", "image is damaged or incomplete: %s", msg);
        return -1;
    }

    /* output size */
    long long sw, sh, ow, oh;
    const char *size_field = has_r ? "resize" : (has_w ? "width" : "height");
    if (has_r) {
        sw = (long long)floor(iw * resize);
        sh = (long long)floor(ih * resize);
        ow = sw;
        oh = sh;
    } else {
        if (!has_w) w = (int)llround((double)iw * h / ih);
        if (!has_h) h = (int)llround((double)ih * w / iw);
        double by = fmax((double)w / iw, (double)h / ih);
        sw = (long long)floor(iw * by);
        sh = (long long)floor(ih * by);
        /* floating error can leave the scaled side one short of the target */
        if (sw < w) sw = w;
        if (sh < h) sh = h;
        ow = crop ? w : sw;
        oh = crop ? h : sh;
    }
    if (sw < 1 || sh < 1) {
        tjob_fail(err, 422, "invalid_field", size_field, "the output would be %lldx%lld pixels", sw, sh);
        return -1;
    }
    if (sw > lim->max_width || sh > lim->max_height || sw * sh > lim->max_pixels) {
        tjob_fail(err, 422, "invalid_field", size_field,
                  "the output would be %lldx%lld; the limits are %dx%d and %lld pixels", sw, sh, lim->max_width,
                  lim->max_height, lim->max_pixels);
        return -1;
    }

    json_object_set_new(spec, "upscaler", json_string(upscaler));
    json_object_set_new(spec, "resize", has_r ? json_real(resize) : json_null());
    json_object_set_new(spec, "width", has_r ? json_null() : json_integer(w));
    json_object_set_new(spec, "height", has_r ? json_null() : json_integer(h));
    json_object_set_new(spec, "crop", json_boolean(crop));
    json_object_set_new(spec, "input", json_pack("{s:s, s:i, s:i, s:b}", "format", ti_format_name(fmt), "width",
                                                 iw, "height", ih, "alpha", alpha));
    json_object_set_new(spec, "scaled", json_pack("{s:I, s:I}", "width", (json_int_t)sw, "height", (json_int_t)sh));
    json_object_set_new(spec, "output", json_pack("{s:I, s:I}", "width", (json_int_t)ow, "height", (json_int_t)oh));
    return 0;
}
