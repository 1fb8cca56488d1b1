/* job_inputs.c - several input images of one job in one stored blob.
 *
 * A job's input lives in Redis as a single binary value; img2img and inpaint
 * need two images (the picture, then its mask), later job types more (e.g.
 * ControlNet hints). The layout is deliberately trivial so that the worker can
 * take views into the Redis reply without copying:
 *
 *   "TSIN"  u32 count  { u32 length  bytes[length] } * count     (little endian)
 *
 * Unpacking is strict: the magic, a count of at most TJOB_MAX_INPUTS, every
 * length within the buffer and no trailing bytes, else the blob is malformed.
 * A blob with more images than the caller has room for (max) is refused too,
 * so that a caller never has to deal with a partial view.
 */
#include "job.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t magic[4] = {'T', 'S', 'I', 'N'};

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int tjob_inputs_pack(const uint8_t *const *blobs, const size_t *lens, int n, uint8_t **out, size_t *outlen) {
    if (!out || !outlen || n < 0 || n > TJOB_MAX_INPUTS || (n > 0 && (!blobs || !lens))) return -1;
    *out = NULL;
    *outlen = 0;
    size_t total = 8;
    for (int i = 0; i < n; i++) {
        if (lens[i] > UINT32_MAX || (lens[i] && !blobs[i])) return -1;
        if (total > SIZE_MAX - 4 - lens[i]) return -1;
        total += 4 + lens[i];
    }
    uint8_t *buf = malloc(total);
    if (!buf) return -1;
    memcpy(buf, magic, 4);
    put_u32(buf + 4, (uint32_t)n);
    size_t at = 8;
    for (int i = 0; i < n; i++) {
        put_u32(buf + at, (uint32_t)lens[i]);
        at += 4;
        if (lens[i]) memcpy(buf + at, blobs[i], lens[i]);
        at += lens[i];
    }
    *out = buf;
    *outlen = total;
    return 0;
}

int tjob_inputs_unpack(const uint8_t *buf, size_t len, const uint8_t **blobs, size_t *lens, int max) {
    if (!buf || len < 8 || memcmp(buf, magic, 4)) return -1;
    uint32_t n = get_u32(buf + 4);
    if (n > TJOB_MAX_INPUTS || max < 0 || n > (uint32_t)max) return -1;
    if (n > 0 && (!blobs || !lens)) return -1;
    size_t at = 8;
    for (uint32_t i = 0; i < n; i++) {
        if (len - at < 4) return -1;
        uint32_t l = get_u32(buf + at);
        at += 4;
        if (len - at < l) return -1;
        blobs[i] = buf + at;
        lens[i] = l;
        at += l;
    }
    return at == len ? (int)n : -1;
}
