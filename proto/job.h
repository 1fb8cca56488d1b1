/* job.h - the job as both sides see it: ids, states, priorities, and the
 * validation of a submitted JSON job into what is stored in Redis.
 *
 * The daemon validates a whole body with tjob_validate before anything is
 * stored; the worker reads back the canonical spec JSON that validation
 * produced. Per-type rules live in job_<type>.c (job_extras.c for now).
 */
#ifndef TESSERA_JOB_H
#define TESSERA_JOB_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define TJOB_ID_LEN 24 /* 12 hex digits of ms time + 12 random hex digits */

typedef enum { TJOB_QUEUED, TJOB_RUNNING, TJOB_SUCCEEDED, TJOB_FAILED, TJOB_CANCELED } tjob_state;

const char *tjob_state_name(tjob_state s);
int tjob_state_from_name(const char *name, tjob_state *out);
int tjob_is_valid_id(const char *s);
/* A new time-sortable id, TJOB_ID_LEN chars plus NUL. */
int tjob_new_id(char out[TJOB_ID_LEN + 1]);
/* n random bytes (getrandom, buffered per thread); 0 or -1. */
int tjob_random_bytes(void *out, size_t n);
/* n bytes as 2n lowercase hex digits plus a NUL. */
void tjob_hex(const unsigned char *in, size_t n, char *out);

/* Priorities map to one stream per pool and level: 0 high, 1 normal, 2 low. */
#define TJOB_PRIORITIES 3
const char *tjob_priority_name(int p);

typedef struct {
    int max_width, max_height;   /* output and input images */
    long long max_pixels;        /* width*height of any image */
    int max_batch;               /* images per forward pass (batch_size) */
    int max_images;              /* images per job (batch_size * n_iter), 64 */
    int max_steps;               /* sampling steps, 150 */
    int max_tiles;               /* tiles of one sd_upscale job, 1024 (0 = 1024) */
    long long max_input_bytes;   /* decoded input image */
    long long max_metadata_bytes;
    const char *pools;           /* comma-separated list of pools accepted, e.g. "default,gpu-24g" */
    const char *default_pool;
    /* Checks a webhook URL (the daemon plugs in twh_check_url); NULL: syntax only. */
    int (*check_webhook_url)(const char *url, void *ctx, char *err, size_t errlen);
    void *check_ctx;
} tjob_limits;

void tjob_limits_default(tjob_limits *l);

typedef struct {
    char type[32];
    char pool[64];
    int priority;          /* 0..2 */
    char *spec_json;       /* canonical job spec stored in Redis, without input bytes */
    uint8_t *input;        /* decoded input image (PNG/JPEG/WebP bytes), or NULL */
    size_t input_len;
    char *webhook_json;    /* {"url","events":[...],"secret"} or NULL */
    char *metadata_json;   /* client's object, echoed back, or NULL */
} tjob_submission;

typedef struct {
    int http_status;       /* 400, 413 or 422 */
    char code[48];         /* machine-readable, e.g. "invalid_field" */
    char field[128];       /* JSON path of the field, e.g. "webhook.url"; "" for none */
    char message[512];
} tjob_error;

/* Validate a parsed body. Returns 0 and fills out, or -1 and fills err. */
int tjob_validate(const json_t *body, const tjob_limits *lim, tjob_submission *out, tjob_error *err);
void tjob_submission_free(tjob_submission *s);

/* Helpers for the per-type validators (job_<type>.c). */
void tjob_fail(tjob_error *err, int status, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Refuse fields outside the common ones and known (NULL-terminated). */
int tjob_check_known_fields(const json_t *body, const char *const *known, tjob_error *err);

/* Per-type validators: take the body, write the canonical spec into spec. */
int tjob_validate_extras(const json_t *body, const tjob_limits *lim, json_t *spec,
                         tjob_submission *out, tjob_error *err);
/* txt2img, img2img and inpaint (job_sd.c; fields in docs/jobs-sd.md). For
 * img2img/inpaint, out->input gets the packed inputs (tjob_inputs_pack). */
int tjob_validate_txt2img(const json_t *body, const tjob_limits *lim, json_t *spec,
                          tjob_submission *out, tjob_error *err);
int tjob_validate_img2img(const json_t *body, const tjob_limits *lim, json_t *spec,
                          tjob_submission *out, tjob_error *err);
int tjob_validate_inpaint(const json_t *body, const tjob_limits *lim, json_t *spec,
                          tjob_submission *out, tjob_error *err);
/* sd_upscale (job_sd.c): A1111's "SD upscale" script as one job whose tiles
 * any free worker renders (docs/jobs-sd.md; the grid in spec "grid"). */
int tjob_validate_sd_upscale(const json_t *body, const tjob_limits *lim, json_t *spec,
                             tjob_submission *out, tjob_error *err);

/* Several input images in one stored blob (job_inputs.c): "TSIN", u32 count,
 * then per image u32 length and the bytes (little endian). The image of an
 * img2img job is first, its mask (if any) second. */
#define TJOB_MAX_INPUTS 8
int tjob_inputs_pack(const uint8_t *const *blobs, const size_t *lens, int n, uint8_t **out, size_t *outlen);
/* Views into buf (no copies); returns the count (0..TJOB_MAX_INPUTS), -1 if malformed. */
int tjob_inputs_unpack(const uint8_t *buf, size_t len, const uint8_t **blobs, size_t *lens, int max);

#endif
