/*
 * image_io.h -- decode PNG / JPEG / WebP uploads, encode PNG results.
 *
 * Every image that enters Tessera (init images, masks, ControlNet inputs,
 * Extras uploads) arrives as bytes from an untrusted client, and every image
 * that leaves it is a PNG carrying the A1111 "parameters" infotext.  This
 * module is the only place that talks to libpng, TurboJPEG and libwebp.
 *
 * Rules kept throughout:
 *   - hostile input yields an error value and a human-readable message,
 *     never a crash or an out-of-bounds read;
 *   - pixel limits are enforced from the header, BEFORE pixels are allocated;
 *   - decoded images are always 8-bit RGB (3 channels) or RGBA (4 channels),
 *     row-major, interleaved, no row padding.  Gray is expanded to RGB.
 *
 * Functions returning int return 0 on success and -1 on error, with the
 * reason written to err (which may be NULL) unless noted otherwise.
 */
#ifndef TESSERA_IMAGE_IO_H
#define TESSERA_IMAGE_IO_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int width, height;
    int channels;       /* 3 = RGB, 4 = RGBA */
    uint8_t *pixels;    /* row-major, interleaved, 8-bit; width*channels per row */
} ti_image;

typedef enum {
    TI_FMT_UNKNOWN = 0,
    TI_FMT_PNG,
    TI_FMT_JPEG,
    TI_FMT_WEBP
} ti_format;

/* One PNG text chunk.  key: 1..79 printable ASCII characters.  value: UTF-8. */
typedef struct {
    const char *key;
    const char *value;
} ti_png_text;

/* Hard ceiling on any image we allocate, whatever max_pixels says
 * (16384 x 16384); keeps w*h*4 far from size_t / int overflow. */
#define TI_HARD_MAX_PIXELS ((uint64_t)1 << 28)

/* Allocate a zeroed image; w, h > 0, channels 3 or 4, w*h <= TI_HARD_MAX_PIXELS. */
int ti_image_alloc(ti_image *img, int width, int height, int channels,
                   char *err, size_t errlen);
/* Free the pixels and zero the struct.  NULL and zeroed images are fine. */
void ti_image_free(ti_image *img);

/* Format by magic bytes; TI_FMT_UNKNOWN when none matches. */
ti_format ti_detect(const uint8_t *buf, size_t len);
/* "png", "jpeg", "webp", or "unknown". */
const char *ti_format_name(ti_format fmt);

/* Read only the header: format, dimensions and whether the image carries
 * alpha (PNG alpha colour type or tRNS, WebP alpha flag; JPEG never).
 * No pixels are decoded; cost is independent of the image size.
 * Any of the out pointers may be NULL. */
int ti_probe(const uint8_t *buf, size_t len, ti_format *fmt, int *width,
             int *height, int *has_alpha, char *err, size_t errlen);

/* Cheap completeness check of the container after ti_probe (image_check.c):
 * PNG chunks, CRCs and the inflated data size; the JPEG end marker; the WebP
 * RIFF size. 0 when complete, -1 with the reason. */
int ti_check_complete(const uint8_t *buf, size_t len, char *err, size_t errlen);

/* Full decode to 8-bit RGB or RGBA (RGBA only when the source has alpha).
 * Refuses images with width*height > max_pixels (0 = TI_HARD_MAX_PIXELS)
 * before allocating.  On success *img owns its pixels (ti_image_free);
 * on error *img is zeroed. */
int ti_decode(const uint8_t *buf, size_t len, uint64_t max_pixels,
              ti_image *img, char *err, size_t errlen);

/* Encode an RGB or RGBA image as PNG in memory.  Each text is written as
 * tEXt when its value is Latin-1 encodable, else as uncompressed iTXt
 * (what PIL's PngInfo.add_text does for A1111's "parameters").
 * compression_level: 0..9, or -1 for zlib's default.
 * On success *out is malloc'ed (caller frees) and *outlen its size. */
int ti_encode_png(const ti_image *img, const ti_png_text *texts, int ntexts,
                  int compression_level, uint8_t **out, size_t *outlen,
                  char *err, size_t errlen);

/* ti_encode_png with a callback after every band of rows: it gets the rows
 * written so far and the total, and returns nonzero to stop (the call then
 * fails with "stopped"). */
typedef int (*ti_progress_fn)(void *ctx, int done, int total);
int ti_encode_png_progress(const ti_image *img, const ti_png_text *texts, int ntexts,
                           int compression_level, ti_progress_fn progress, void *progress_ctx,
                           uint8_t **out, size_t *outlen, char *err, size_t errlen);

/* Find the first tEXt / zTXt / iTXt chunk whose keyword is key and return
 * its value as a malloc'ed NUL-terminated UTF-8 string in *value (tEXt and
 * zTXt Latin-1 is converted to UTF-8).
 * Returns 1 when found, 0 when absent (or buf is not a PNG), -1 when the
 * file is malformed or the chunk cannot be decoded (*value is NULL then). */
int ti_png_read_text(const uint8_t *buf, size_t len, const char *key,
                     char **value);

/* Every tEXt / zTXt / iTXt chunk of a PNG, in file order, as PIL reads
 * them: keys Latin-1 -> UTF-8 (a chunk with an empty key is skipped);
 * tEXt / zTXt values Latin-1 -> UTF-8 (a tEXt without a NUL is a key with
 * an empty value, an undecodable zTXt stream gives ""); iTXt values must be
 * UTF-8, and an iTXt that is malformed or not UTF-8 is skipped.  Values are
 * C strings: an embedded NUL ends them.  Chunk structure errors before the
 * first IDAT make the file malformed; after it (truncated pixel data) the
 * walk stops and keeps what it has.  Limits: 65536 chunks, 64 MiB of text.
 * On success *texts is a malloc'ed array of *ntexts entries whose key and
 * value are malloc'ed (free all with ti_png_texts_free; NULL when none).
 * Returns 0 (also for a buffer that is not a PNG: no texts), -1 when
 * malformed or over the limits (*texts NULL, *ntexts 0). */
int ti_png_read_texts(const uint8_t *buf, size_t len, ti_png_text **texts, int *ntexts);
void ti_png_texts_free(ti_png_text *texts, int ntexts);

/* The EXIF UserComment (tag 0x9286 of the Exif IFD) of a JPEG (first APP1
 * "Exif\0\0" segment before SOS), WebP (first "EXIF" chunk) or PNG (first
 * eXIf chunk), decoded as A1111 / piexif do: an 8-byte prefix names the
 * encoding -- "UNICODE\0": UTF-16, big-endian as piexif writes it, little-
 * endian when a BOM or the zero-byte pattern says so (ties follow the TIFF
 * byte order); "ASCII\0\0\0" and "JIS\0\0\0\0\0": the bytes as UTF-8
 * (invalid sequences -> U+FFFD; Shift-JIS is not converted); anything else
 * (undefined prefix, shorter than 8 bytes): the whole value as UTF-8 with
 * invalid bytes dropped.  U+0000 characters are removed.  A broken TIFF
 * structure inside the EXIF block reads as "no UserComment".
 * Returns 1 when the image has an EXIF block (*comment: malloc'ed, or NULL
 * when it has no non-empty UserComment), 0 when it has none (or buf is not
 * PNG/JPEG/WebP), -1 when the container is malformed before the pixel data
 * (*comment NULL). */
int ti_read_exif_comment(const uint8_t *buf, size_t len, char **comment);

#endif
