/* cli_main.c - tessera: the command-line client of a Tessera farm.
 *
 *   tessera extras IMAGE [--resize F | --width W --height H] [--upscaler NAME] [--out FILE]
 *   tessera submit JOB.json [--wait] [--out DIR]
 *   tessera status ID | wait ID | fetch ID [--out DIR] | cancel ID | jobs | workers
 *   tessera sample OUT.png [--width W --height H]   (a test picture, made locally)
 *   tessera eval text|unet|vae-decode|vae-encode ... | model info PATH
 *                                   (local model runs, eval_cmd.c; tessera eval --help)
 *
 * It talks to tesserad over HTTP (libcurl) like any other client; --server and
 * --api_key (or TESSERA_SERVER / TESSERA_API_KEY, or the INI file) say where. */
#include "base64.h"
#include "config.h"
#include "image_io.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct {
    char *server;
    char *api_key;
    long long timeout_s;
    long long poll_ms;
    char *out;
    double resize;
    long long width, height;
    char *upscaler;
    int wait;
    char *priority;
} cli_settings;

#define OPT(sec, key, type, field, def, help) {sec, key, type, offsetof(cli_settings, field), def, help}
static const tcfg_option options[] = {
    OPT("client", "server", TCFG_STRING, server, "http://127.0.0.1:7860", "base URL of tesserad"),
    OPT("client", "api_key", TCFG_STRING, api_key, "", "bearer API key, if the farm needs one"),
    OPT("client", "timeout_s", TCFG_INT, timeout_s, "3600", "how long wait/extras wait for a job"),
    OPT("client", "poll_ms", TCFG_INT, poll_ms, "200", "status polling interval while waiting"),
    OPT("job", "out", TCFG_STRING, out, "", "output file (extras) or directory (fetch, submit --wait)"),
    OPT("job", "resize", TCFG_DOUBLE, resize, "0", "extras: scale factor"),
    OPT("job", "width", TCFG_INT, width, "0", "extras: target width"),
    OPT("job", "height", TCFG_INT, height, "0", "extras: target height"),
    OPT("job", "upscaler", TCFG_STRING, upscaler, "Lanczos", "extras: None, Lanczos, Nearest, Bicubic, Bilinear"),
    OPT("job", "priority", TCFG_STRING, priority, "normal", "high, normal or low"),
    OPT("job", "wait", TCFG_BOOL, wait, "false", "submit: wait for the job and fetch its images"),
};
static const tcfg_spec spec = {
    "tessera",
    "client of a Tessera farm. Commands: sample OUT.png | extras IMAGE | submit JOB.json | status ID | wait ID | fetch ID | "
    "cancel ID | jobs | workers | eval text|unet|vae-decode|vae-encode (local; tessera eval --help) | "
    "model info PATH [--json]",
    options, sizeof options / sizeof options[0]};

typedef struct {
    char *data;
    size_t len;
} buf;

static size_t on_data(char *p, size_t size, size_t n, void *u) {
    buf *b = u;
    size_t add = size * n;
    char *d = realloc(b->data, b->len + add + 1);
    if (!d) return 0;
    memcpy(d + b->len, p, add);
    b->data = d;
    b->len += add;
    d[b->len] = 0;
    return add;
}

/* One HTTP request; returns the status code or -1 (message printed). */
static long http(const cli_settings *s, const char *method, const char *path, const char *body, buf *out) {
    CURL *c = curl_easy_init();
    if (!c) return -1;
    char url[2048];
    snprintf(url, sizeof url, "%s%s", s->server, path);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    char auth[600];
    if (s->api_key[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->api_key);
        h = curl_slist_append(h, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    out->data = NULL;
    out->len = 0;
    CURLcode rc = curl_easy_perform(c);
    long code = -1;
    if (rc != CURLE_OK)
        fprintf(stderr, "tessera: %s %s: %s\n", method, url, curl_easy_strerror(rc));
    else
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

static int print_error(long code, const buf *b) {
    fprintf(stderr, "tessera: HTTP %ld: %s\n", code, b->data ? b->data : "");
    return 1;
}

static int write_file(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
        fprintf(stderr, "tessera: cannot write %s: %s\n", path, strerror(errno));
        if (f) fclose(f);
        return -1;
    }
    return 0;
}

/* Poll until the job is final; prints progress to stderr; returns the final JSON. */
static json_t *wait_job(const cli_settings *s, const char *id) {
    char path[256];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    time_t start = time(NULL);
    double last = -1;
    for (;;) {
        buf b;
        long code = http(s, "GET", path, NULL, &b);
        if (code != 200) {
            print_error(code, &b);
            free(b.data);
            return NULL;
        }
        json_t *j = json_loads(b.data, 0, NULL);
        free(b.data);
        const char *state = json_string_value(json_object_get(j, "state"));
        if (!state) {
            json_decref(j);
            return NULL;
        }
        if (!strcmp(state, "succeeded") || !strcmp(state, "failed") || !strcmp(state, "canceled")) return j;
        double f = json_number_value(json_object_get(json_object_get(j, "progress"), "fraction"));
        if (f != last) {
            fprintf(stderr, "tessera: %s %s %3.0f%%\n", id, state, f * 100);
            last = f;
        }
        json_decref(j);
        if (time(NULL) - start > s->timeout_s) {
            fprintf(stderr, "tessera: gave up waiting for %s after %llds\n", id, s->timeout_s);
            return NULL;
        }
        struct timespec ts = {s->poll_ms / 1000, (s->poll_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Download every image of a finished job. out: a file (single image) or directory. */
static int fetch_images(const cli_settings *s, const char *id, json_t *job, const char *out, int out_is_file) {
    json_t *images = json_object_get(job, "images");
    size_t n = json_array_size(images);
    for (size_t i = 0; i < n; i++) {
        char path[256], file[1024];
        snprintf(path, sizeof path, "/v1/jobs/%s/images/%zu", id, i);
        buf b;
        long code = http(s, "GET", path, NULL, &b);
        if (code != 200) {
            print_error(code, &b);
            free(b.data);
            return 1;
        }
        if (out_is_file && n == 1)
            snprintf(file, sizeof file, "%s", out);
        else
            snprintf(file, sizeof file, "%s/%s-%zu.png", out[0] ? out : ".", id, i);
        int rc = write_file(file, b.data, b.len);
        free(b.data);
        if (rc) return 1;
        printf("%s\n", file);
    }
    return 0;
}

static int finish_wait(const cli_settings *s, const char *id, const char *out, int out_is_file) {
    json_t *j = wait_job(s, id);
    if (!j) return 1;
    const char *state = json_string_value(json_object_get(j, "state"));
    int rc = 0;
    if (strcmp(state, "succeeded")) {
        char *e = json_dumps(json_object_get(j, "error"), JSON_COMPACT);
        fprintf(stderr, "tessera: job %s %s: %s\n", id, state, e ? e : "");
        free(e);
        rc = 1;
    } else {
        rc = fetch_images(s, id, j, out, out_is_file);
    }
    json_decref(j);
    return rc;
}

static int submit_body(const cli_settings *s, const char *body, char id[64]) {
    buf b;
    long code = http(s, "POST", "/v1/jobs", body, &b);
    if (code != 202 && code != 200) {
        print_error(code, &b);
        free(b.data);
        return 1;
    }
    json_t *j = json_loads(b.data, 0, NULL);
    free(b.data);
    const char *v = json_string_value(json_object_get(j, "id"));
    snprintf(id, 64, "%s", v ? v : "");
    json_decref(j);
    if (!id[0]) return 1;
    fprintf(stderr, "tessera: submitted job %s\n", id);
    return 0;
}

static int cmd_extras(const cli_settings *s, const char *image) {
    FILE *f = fopen(image, "rb");
    if (!f) {
        fprintf(stderr, "tessera: cannot open %s: %s\n", image, strerror(errno));
        return 1;
    }
    buf raw = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) on_data(chunk, 1, n, &raw);
    fclose(f);
    char *b64 = NULL, err[256];
    size_t blen;
    if (tb64_encode((const uint8_t *)raw.data, raw.len, &b64, &blen, err, sizeof err)) {
        fprintf(stderr, "tessera: %s\n", err);
        free(raw.data);
        return 1;
    }
    free(raw.data);
    json_t *job = json_pack("{s:s, s:s, s:s, s:s}", "type", "extras", "image", b64, "upscaler", s->upscaler,
                            "priority", s->priority);
    free(b64);
    if (s->width) json_object_set_new(job, "width", json_integer(s->width));
    if (s->height) json_object_set_new(job, "height", json_integer(s->height));
    if (s->resize > 0) json_object_set_new(job, "resize", json_real(s->resize));
    char *body = json_dumps(job, JSON_COMPACT);
    json_decref(job);
    char id[64];
    int rc = submit_body(s, body, id);
    free(body);
    if (rc) return rc;
    const char *out = s->out[0] ? s->out : "extras.png";
    return finish_wait(s, id, out, 1);
}

/* A colourful test picture with smooth gradients, hard edges and fine
 * detail, so that resampling filters visibly differ. */
static int cmd_sample(const cli_settings *s, const char *path) {
    int w = s->width ? (int)s->width : 256, h = s->height ? (int)s->height : 256;
    ti_image img;
    char err[256];
    if (w > 8192 || h > 8192 || ti_image_alloc(&img, w, h, 3, err, sizeof err)) {
        fprintf(stderr, "tessera: sample: %s\n", w > 8192 || h > 8192 ? "at most 8192x8192" : err);
        return 1;
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double u = (double)x / w, v = (double)y / h;
            double dx = u - 0.5, dy = v - 0.5, r = sqrt(dx * dx + dy * dy);
            uint8_t *p = img.pixels + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(255 * u);
            p[1] = (uint8_t)(255 * v);
            p[2] = (uint8_t)(127.5 + 127.5 * sin(40 * r));
            if (r < 0.2 && ((x / 8 + y / 8) & 1)) p[0] = p[1] = p[2] = 255;
        }
    uint8_t *png = NULL;
    size_t len = 0;
    ti_png_text t = {"Software", "tessera sample"};
    int rc = ti_encode_png(&img, &t, 1, 6, &png, &len, err, sizeof err);
    ti_image_free(&img);
    if (rc) {
        fprintf(stderr, "tessera: sample: %s\n", err);
        return 1;
    }
    rc = write_file(path, (const char *)png, len) ? 1 : 0;
    free(png);
    if (!rc) printf("%s\n", path);
    return rc;
}

static int cmd_simple_get(const cli_settings *s, const char *path) {
    buf b;
    long code = http(s, "GET", path, NULL, &b);
    int rc = code == 200 ? 0 : 1;
    if (rc)
        print_error(code, &b);
    else
        printf("%s\n", b.data ? b.data : "");
    free(b.data);
    return rc;
}

int tcli_eval_main(int argc, char **argv);  /* eval_cmd.c */
int tcli_model_main(int argc, char **argv); /* eval_cmd.c */
int tcli_render_main(int argc, char **argv); /* render_cmd.c */

int main(int argc, char **argv) {
    /* local model commands: own option parsing (eval_cmd.c) */
    if (argc > 1 && !strcmp(argv[1], "eval")) return tcli_eval_main(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "model")) return tcli_model_main(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "render")) return tcli_render_main(argc, argv);
    cli_settings s = {0};
    char err[1024], **rest = NULL;
    int nrest = 0;
    tcfg_result cr = tcfg_load(&spec, &s, argc, argv, &rest, &nrest, err, sizeof err);
    if (cr == TCFG_HELP) return 0;
    if (cr == TCFG_ERROR) {
        fprintf(stderr, "tessera: %s\n", err);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    size_t sl = strlen(s.server);
    while (sl && s.server[sl - 1] == '/') s.server[--sl] = 0;
    int rc = 2;
    const char *cmd = nrest > 0 ? rest[0] : "";
    const char *arg = nrest > 1 ? rest[1] : NULL;
    char path[512];
    if (nrest > 2 || (nrest > 0 && rest[nrest - 1][0] == '-')) {
        fprintf(stderr, "tessera: unexpected argument '%s' (see tessera --help)\n", rest[nrest - 1]);
    } else if (!strcmp(cmd, "sample") && arg) {
        rc = cmd_sample(&s, arg);
    } else if (!strcmp(cmd, "extras") && arg) {
        rc = cmd_extras(&s, arg);
    } else if (!strcmp(cmd, "submit") && arg) {
        FILE *f = fopen(arg, "rb");
        buf raw = {0};
        char chunk[65536];
        size_t n;
        if (!f) {
            fprintf(stderr, "tessera: cannot open %s: %s\n", arg, strerror(errno));
            rc = 1;
        } else {
            while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) on_data(chunk, 1, n, &raw);
            fclose(f);
            char id[64];
            rc = submit_body(&s, raw.data ? raw.data : "", id);
            if (!rc) {
                printf("%s\n", id);
                if (s.wait) rc = finish_wait(&s, id, s.out, 0);
            }
            free(raw.data);
        }
    } else if ((!strcmp(cmd, "status") || !strcmp(cmd, "wait") || !strcmp(cmd, "fetch") ||
                !strcmp(cmd, "cancel")) && arg) {
        if (!strcmp(cmd, "status")) {
            snprintf(path, sizeof path, "/v1/jobs/%s", arg);
            rc = cmd_simple_get(&s, path);
        } else if (!strcmp(cmd, "cancel")) {
            buf b;
            snprintf(path, sizeof path, "/v1/jobs/%s", arg);
            long code = http(&s, "DELETE", path, NULL, &b);
            rc = code == 200 || code == 202 ? 0 : print_error(code, &b);
            if (!rc) printf("%s\n", b.data);
            free(b.data);
        } else {
            rc = finish_wait(&s, arg, s.out, 0);
        }
    } else if (!strcmp(cmd, "jobs") && !arg) {
        rc = cmd_simple_get(&s, "/v1/jobs");
    } else if (!strcmp(cmd, "workers") && !arg) {
        rc = cmd_simple_get(&s, "/v1/workers");
    } else {
        fprintf(stderr, "tessera: usage: tessera render JOB.json | sample OUT.png | extras IMAGE | submit JOB.json | status ID | wait ID | fetch ID | "
                        "cancel ID | jobs | workers   (tessera --help for settings)\n");
    }
    free(rest);
    tcfg_free(&spec, &s);
    curl_global_cleanup();
    return rc;
}
