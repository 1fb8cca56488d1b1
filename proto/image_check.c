/* image_check.c - is an uploaded image complete? The daemon must refuse a
 * broken upload at submission, before anything is stored, but decoding every
 * pixel of a 50 MB upload on the event loop would stall every other client.
 * This checks the container completely and cheaply instead:
 *   PNG:  every chunk in bounds with a correct CRC, IHDR first, IDAT present,
 *         IEND last, and the IDAT zlib stream inflates (into a scratch buffer,
 *         nothing kept) to exactly the size the header implies;
 *   JPEG: a valid header (TurboJPEG) and the end-of-image marker present;
 *   WebP: the RIFF size matches the data and libwebp reads its features.
 * What it cannot see (say, corrupt JPEG entropy data) the worker's full decode
 * reports as a failed job with the decoder's message. */
#include "image_io.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <webp/decode.h>
#include <zlib.h>

static unsigned be32(const uint8_t *p) {
    return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

/* Bytes of filtered image data a non-interlaced or Adam7 PNG must inflate to. */
static unsigned long long png_data_size(unsigned w, unsigned h, int depth, int color, int interlace) {
    int channels = color == 0 ? 1 : color == 2 ? 3 : color == 3 ? 1 : color == 4 ? 2 : 4;
    unsigned long long bpp = (unsigned long long)channels * depth; /* bits per pixel */
    if (!interlace) return (unsigned long long)h * (1 + (w * bpp + 7) / 8);
    static const int xs[7] = {0, 4, 0, 2, 0, 1, 0}, ys[7] = {0, 0, 4, 0, 2, 0, 1};
    static const int dx[7] = {8, 8, 4, 4, 2, 2, 1}, dy[7] = {8, 8, 8, 4, 4, 2, 2};
    unsigned long long total = 0;
    for (int p = 0; p < 7; p++) {
        unsigned long long pw = w > (unsigned)xs[p] ? (w - xs[p] + dx[p] - 1) / dx[p] : 0;
        unsigned long long ph = h > (unsigned)ys[p] ? (h - ys[p] + dy[p] - 1) / dy[p] : 0;
        if (pw && ph) total += ph * (1 + (pw * bpp + 7) / 8);
    }
    return total;
}

/* One inflate state per thread, reset for each image: inflateInit and
 * inflateEnd per upload allocate and free zlib's ~40 KB of state and window,
 * which costs more than inflating a small image. Freed when the thread ends. */
static pthread_key_t zs_key;
static pthread_once_t zs_once = PTHREAD_ONCE_INIT;

static void zs_destroy(void *p) {
    inflateEnd(p);
    free(p);
}

static void zs_key_init(void) {
    if (pthread_key_create(&zs_key, zs_destroy)) zs_key = (pthread_key_t)-1;
}

static z_stream *zs_get(void) {
    pthread_once(&zs_once, zs_key_init);
    int keyed = zs_key != (pthread_key_t)-1;
    z_stream *zs = keyed ? pthread_getspecific(zs_key) : NULL;
    if (zs && inflateReset(zs) == Z_OK) return zs;
    if (zs) {
        pthread_setspecific(zs_key, NULL);
        zs_destroy(zs);
    }
    zs = calloc(1, sizeof *zs);
    if (!zs) return NULL;
    if (inflateInit(zs) != Z_OK) {
        free(zs);
        return NULL;
    }
    if (keyed && pthread_setspecific(zs_key, zs) == 0) return zs;
    zs_destroy(zs);
    return NULL;
}

static int check_png(const uint8_t *buf, size_t len, char *err, size_t errlen) {
    size_t pos = 8;
    int seen_ihdr = 0, seen_idat = 0, idat_done = 0;
    unsigned long long expect = 0, got = 0;
    z_stream *zp = zs_get();
    if (!zp) {
        snprintf(err, errlen, "PNG: cannot initialise zlib");
        return -1;
    }
    uint8_t scratch[65536];
    int zrc = Z_OK, rc = -1;
    for (;;) {
        if (len - pos < 12) {
            snprintf(err, errlen, "PNG: truncated at byte %zu (no IEND chunk)", pos);
            goto done;
        }
        unsigned n = be32(buf + pos);
        const uint8_t *type = buf + pos + 4, *data = buf + pos + 8;
        if (n > 0x7fffffffu || n > len - pos - 12) {
            snprintf(err, errlen, "PNG: chunk %.4s at byte %zu runs past the end of the data", (const char *)type,
                     pos);
            goto done;
        }
        unsigned crc = (unsigned)crc32(0, type, n + 4);
        if (crc != be32(data + n)) {
            snprintf(err, errlen, "PNG: CRC error in chunk %.4s at byte %zu", (const char *)type, pos);
            goto done;
        }
        if (!seen_ihdr) {
            if (memcmp(type, "IHDR", 4) || n != 13) {
                snprintf(err, errlen, "PNG: the first chunk is not IHDR");
                goto done;
            }
            seen_ihdr = 1;
            expect = png_data_size(be32(data), be32(data + 4), data[8], data[9], data[12]);
        } else if (!memcmp(type, "IDAT", 4)) {
            if (idat_done) {
                snprintf(err, errlen, "PNG: IDAT chunks are not consecutive");
                goto done;
            }
            seen_idat = 1;
            zp->next_in = (Bytef *)data;
            zp->avail_in = n;
            while (zp->avail_in && zrc == Z_OK) {
                zp->next_out = scratch;
                zp->avail_out = sizeof scratch;
                zrc = inflate(zp, Z_NO_FLUSH);
                got += sizeof scratch - zp->avail_out;
                if (zrc == Z_BUF_ERROR && zp->avail_out == 0) zrc = Z_OK;
                if (got > expect) {
                    snprintf(err, errlen, "PNG: image data is longer than the header says");
                    goto done;
                }
            }
            if (zrc != Z_OK && zrc != Z_STREAM_END) {
                snprintf(err, errlen, "PNG: corrupt image data (zlib: %s)", zp->msg ? zp->msg : "error");
                goto done;
            }
        } else {
            if (seen_idat) idat_done = 1;
            if (!memcmp(type, "IEND", 4)) break;
        }
        pos += 12 + (size_t)n;
    }
    if (!seen_idat) {
        snprintf(err, errlen, "PNG: no image data (IDAT)");
        goto done;
    }
    /* drain whatever zlib still holds */
    while (zrc == Z_OK) {
        zp->next_out = scratch;
        zp->avail_out = sizeof scratch;
        zrc = inflate(zp, Z_FINISH);
        got += sizeof scratch - zp->avail_out;
        if (zp->avail_out == sizeof scratch) break;
    }
    if (zrc != Z_STREAM_END || got != expect) {
        snprintf(err, errlen, "PNG: image data is incomplete (%llu of %llu bytes)", got, expect);
        goto done;
    }
    rc = 0;
done:
    return rc; /* the state stays with the thread; zs_get resets it */
}

static int check_jpeg(const uint8_t *buf, size_t len, char *err, size_t errlen) {
    size_t end = len;
    while (end > 2 && (buf[end - 1] == 0 || buf[end - 1] == '\n' || buf[end - 1] == '\r')) end--;
    if (end < 4 || buf[end - 2] != 0xFF || buf[end - 1] != 0xD9) {
        snprintf(err, errlen, "JPEG: truncated (no end-of-image marker)");
        return -1;
    }
    return 0;
}

static int check_webp(const uint8_t *buf, size_t len, char *err, size_t errlen) {
    if (len < 12) {
        snprintf(err, errlen, "WebP: truncated");
        return -1;
    }
    unsigned riff = (unsigned)buf[4] | (unsigned)buf[5] << 8 | (unsigned)buf[6] << 16 | (unsigned)buf[7] << 24;
    if ((size_t)riff + 8 > len) {
        snprintf(err, errlen, "WebP: truncated (%zu of %u bytes)", len, riff + 8);
        return -1;
    }
    WebPBitstreamFeatures f;
    if (WebPGetFeatures(buf, len, &f) != VP8_STATUS_OK) {
        snprintf(err, errlen, "WebP: unreadable header");
        return -1;
    }
    return 0;
}

int ti_check_complete(const uint8_t *buf, size_t len, char *err, size_t errlen) {
    switch (ti_detect(buf, len)) {
    case TI_FMT_PNG: return check_png(buf, len, err, errlen);
    case TI_FMT_JPEG: return check_jpeg(buf, len, err, errlen);
    case TI_FMT_WEBP: return check_webp(buf, len, err, errlen);
    default: snprintf(err, errlen, "not a PNG, JPEG or WebP image"); return -1;
    }
}
