/* job_schema.c - validation of a submitted job: the fields every job type
 * shares (type, priority, pool, webhook, metadata) and dispatch to the
 * per-type validator. Nothing is stored until the whole body has passed, and
 * every refusal names the field (tjob_error.field) so clients can fix it.
 * The result is a canonical spec JSON that the worker reads back. */
#include "job.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void tjob_fail(tjob_error *err, int status, const char *code, const char *field, const char *fmt, ...) {
    err->http_status = status;
    snprintf(err->code, sizeof err->code, "%s", code);
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

void tjob_limits_default(tjob_limits *l) {
    memset(l, 0, sizeof *l);
    l->max_width = 8192;
    l->max_height = 8192;
    l->max_pixels = 8192LL * 8192;
    l->max_batch = 16;
    l->max_images = 64;
    l->max_steps = 150;
    l->max_tiles = 1024;
    l->max_input_bytes = 50LL << 20;
    l->max_metadata_bytes = 16 << 10;
    l->pools = "default";
    l->default_pool = "default";
}

static const char *priority_names[TJOB_PRIORITIES] = {"high", "normal", "low"};

const char *tjob_priority_name(int p) {
    return p >= 0 && p < TJOB_PRIORITIES ? priority_names[p] : "normal";
}

static int pool_allowed(const char *pools, const char *pool) {
    size_t n = strlen(pool);
    const char *p = pools;
    while (p && *p) {
        while (*p == ' ' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ') e++;
        if ((size_t)(e - p) == n && !strncmp(p, pool, n)) return 1;
        p = e;
    }
    return 0;
}

static int valid_pool_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 63) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static int validate_webhook(const json_t *wh, const tjob_limits *lim, tjob_submission *out, tjob_error *err) {
    if (!json_is_object(wh)) {
        tjob_fail(err, 422, "invalid_field", "webhook", "webhook must be an object {url, events, secret}");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)wh, key, v) {
        if (strcmp(key, "url") && strcmp(key, "events") && strcmp(key, "secret")) {
            tjob_fail(err, 422, "unknown_field", "webhook", "unknown field webhook.%.64s (expected url, events, secret)",
                      key);
            snprintf(err->field, sizeof err->field, "webhook.%.100s", key);
            return -1;
        }
    }
    json_t *url = json_object_get(wh, "url");
    if (!json_is_string(url)) {
        tjob_fail(err, 422, "invalid_field", "webhook.url", "webhook.url must be an http(s) URL");
        return -1;
    }
    const char *u = json_string_value(url);
    if (strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) {
        tjob_fail(err, 422, "invalid_field", "webhook.url", "webhook.url must start with http:// or https://");
        return -1;
    }
    if (lim->check_webhook_url) {
        char msg[400];
        if (lim->check_webhook_url(json_string_value(url), lim->check_ctx, msg, sizeof msg)) {
            tjob_fail(err, 422, "invalid_field", "webhook.url", "webhook.url: %s", msg);
            return -1;
        }
    }
    json_t *secret = json_object_get(wh, "secret");
    if (secret && !json_is_null(secret) &&
        (!json_is_string(secret) || json_string_length(secret) == 0 || json_string_length(secret) > 256)) {
        tjob_fail(err, 422, "invalid_field", "webhook.secret", "webhook.secret must be a string of 1 to 256 bytes");
        return -1;
    }
    static const char *allowed[] = {"succeeded", "failed", "canceled", "progress"};
    json_t *events = json_object_get(wh, "events");
    json_t *ev_out = json_array();
    if (!events || json_is_null(events)) {
        for (int i = 0; i < 3; i++) json_array_append_new(ev_out, json_string(allowed[i]));
    } else if (!json_is_array(events) || json_array_size(events) == 0 || json_array_size(events) > 4) {
        json_decref(ev_out);
        tjob_fail(err, 422, "invalid_field", "webhook.events",
                  "webhook.events must be a non-empty array of succeeded, failed, canceled, progress");
        return -1;
    } else {
        size_t i;
        json_t *e;
        json_array_foreach(events, i, e) {
            int ok = 0;
            for (int k = 0; k < 4; k++)
                if (json_is_string(e) && !strcmp(json_string_value(e), allowed[k])) ok = 1;
            if (!ok) {
                json_decref(ev_out);
                tjob_fail(err, 422, "invalid_field", "webhook.events",
                          "webhook.events[%zu] must be one of succeeded, failed, canceled, progress", i);
                return -1;
            }
            json_array_append(ev_out, e);
        }
    }
    json_t *w = json_pack("{s:O, s:o}", "url", url, "events", ev_out);
    if (secret && json_is_string(secret)) json_object_set(w, "secret", secret);
    out->webhook_json = json_dumps(w, JSON_COMPACT);
    json_decref(w);
    return out->webhook_json ? 0 : -1;
}

static int validate_common(const json_t *body, const tjob_limits *lim, tjob_submission *out, tjob_error *err) {
    json_t *pr = json_object_get(body, "priority");
    out->priority = 1;
    if (pr && !json_is_null(pr)) {
        int found = 0;
        if (json_is_string(pr)) {
            for (int i = 0; i < TJOB_PRIORITIES; i++)
                if (!strcasecmp(json_string_value(pr), priority_names[i])) {
                    out->priority = i;
                    found = 1;
                }
        }
        if (!found) {
            tjob_fail(err, 422, "invalid_field", "priority", "priority must be \"high\", \"normal\" or \"low\"");
            return -1;
        }
    }
    json_t *pool = json_object_get(body, "pool");
    const char *pname = lim->default_pool ? lim->default_pool : "default";
    if (pool && !json_is_null(pool)) {
        if (!json_is_string(pool) || !valid_pool_name(json_string_value(pool))) {
            tjob_fail(err, 422, "invalid_field", "pool", "pool must be a name of 1-63 characters [A-Za-z0-9._-]");
            return -1;
        }
        pname = json_string_value(pool);
        if (!pool_allowed(lim->pools ? lim->pools : "default", pname)) {
            tjob_fail(err, 422, "invalid_field", "pool", "unknown pool '%s'; this farm has: %s", pname,
                      lim->pools ? lim->pools : "default");
            return -1;
        }
    }
    snprintf(out->pool, sizeof out->pool, "%s", pname);
    json_t *wh = json_object_get(body, "webhook");
    if (wh && !json_is_null(wh) && validate_webhook(wh, lim, out, err)) return -1;
    json_t *md = json_object_get(body, "metadata");
    if (md && !json_is_null(md)) {
        if (!json_is_object(md)) {
            tjob_fail(err, 422, "invalid_field", "metadata", "metadata must be a JSON object");
            return -1;
        }
        out->metadata_json = json_dumps(md, JSON_COMPACT);
        if (!out->metadata_json) {
            tjob_fail(err, 422, "invalid_field", "metadata", "metadata cannot be serialised");
            return -1;
        }
        if ((long long)strlen(out->metadata_json) > lim->max_metadata_bytes) {
            tjob_fail(err, 422, "invalid_field", "metadata", "metadata is %zu bytes; the limit is %lld",
                      strlen(out->metadata_json), lim->max_metadata_bytes);
            return -1;
        }
    }
    return 0;
}

/* The job types and their validators (job_<type>.c). A validator may change
 * the type (an img2img with a mask becomes an inpaint): it then rewrites both
 * out->type and spec's "type". */
typedef int (*validate_fn)(const json_t *, const tjob_limits *, json_t *, tjob_submission *, tjob_error *);
static const struct {
    const char *type;
    validate_fn fn;
} validators[] = {
    {"txt2img", tjob_validate_txt2img},
    {"img2img", tjob_validate_img2img},
    {"inpaint", tjob_validate_inpaint},
    {"extras", tjob_validate_extras},
    {"sd_upscale", tjob_validate_sd_upscale},
};
#define TJOB_TYPES "txt2img, img2img, inpaint, extras, sd_upscale"

int tjob_validate(const json_t *body, const tjob_limits *lim, tjob_submission *out, tjob_error *err) {
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    if (!json_is_object(body)) {
        tjob_fail(err, 400, "malformed_json", NULL, "the body must be a JSON object");
        return -1;
    }
    json_t *type = json_object_get(body, "type");
    if (!type) {
        tjob_fail(err, 422, "missing_field", "type", "type is required (one of: " TJOB_TYPES ")");
        return -1;
    }
    if (!json_is_string(type)) {
        tjob_fail(err, 422, "invalid_field", "type", "type must be a string (one of: " TJOB_TYPES ")");
        return -1;
    }
    const char *t = json_string_value(type);
    validate_fn validate = NULL;
    for (size_t i = 0; i < sizeof validators / sizeof validators[0]; i++)
        if (!strcmp(t, validators[i].type)) validate = validators[i].fn;
    if (!validate) {
        tjob_fail(err, 422, "invalid_field", "type", "unknown job type '%.64s' (this farm runs: " TJOB_TYPES ")", t);
        return -1;
    }
    snprintf(out->type, sizeof out->type, "%s", t);
    if (validate_common(body, lim, out, err)) goto fail;
    json_t *spec = json_object();
    json_object_set_new(spec, "type", json_string(t));
    int rc = validate(body, lim, spec, out, err);
    if (rc == 0) {
        out->spec_json = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
        if (!out->spec_json) {
            tjob_fail(err, 500, "internal", NULL, "cannot serialise the job");
            rc = -1;
        }
    }
    json_decref(spec);
    if (rc == 0) return 0;
fail:
    tjob_submission_free(out);
    return -1;
}

void tjob_submission_free(tjob_submission *s) {
    free(s->spec_json);
    free(s->input);
    free(s->webhook_json);
    free(s->metadata_json);
    s->spec_json = s->webhook_json = s->metadata_json = NULL;
    s->input = NULL;
    s->input_len = 0;
}

/* Shared by all validators: reject fields a job type does not know, so a typo
 * (say "upscalr") is an error instead of a silently ignored setting. */
int tjob_check_known_fields(const json_t *body, const char *const *known, tjob_error *err) {
    static const char *common[] = {"type", "priority", "pool", "webhook", "metadata", NULL};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v) {
        int ok = 0;
        for (int i = 0; common[i] && !ok; i++) ok = !strcmp(key, common[i]);
        for (int i = 0; known[i] && !ok; i++) ok = !strcmp(key, known[i]);
        if (!ok) {
            tjob_fail(err, 422, "unknown_field", NULL, "unknown field '%.64s'", key);
            snprintf(err->field, sizeof err->field, "%.120s", key);
            return -1;
        }
    }
    return 0;
}
