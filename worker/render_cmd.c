/* render_cmd.c - `tessera render`: the txt2img / img2img / inpaint pipelines
 * run locally, with no Redis and no daemon (the embedded mode a single user
 * starts with).
 *
 *   tessera render JOB.json [--a1111] [--models DIR] [--out DIR] [--threads N]
 *
 * JOB.json is a native job body (docs/jobs-sd.md) - the same validation as
 * POST /v1/jobs, so a file that renders here is accepted by the farm - or,
 * with --a1111, an A1111 /sdapi/v1/txt2img or /img2img request body
 * (img2img when it has init_images). Images go to DIR/<seed>-<n>.png with
 * the A1111 infotext; the result info JSON is printed on stdout. "-" reads
 * the job from stdin. */
#include "a1111.h"
#include "generate.h"
#include "job.h"
#include "sd_upscale.h"
#include "te_cpu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int tcli_render_main(int argc, char **argv);

#define RENDER_USAGE                                                                                       \
    "usage: tessera render JOB.json [--a1111] [--models DIR] [--out DIR] [--threads N]\n"                 \
    "  JOB.json   a native job (docs/jobs-sd.md: txt2img | img2img | inpaint | sd_upscale), or --a1111\n"  \
    "             an A1111 /sdapi/v1/txt2img or img2img request body; - reads stdin\n"                    \
    "  --models   the models directory (default: $TESSERA_MODELS or ./models)\n"                          \
    "  --out      where the PNGs go (default: out)\n"                                                     \
    "  --threads  CPU threads (default: all cores)\n"                                                     \
    "  --repeat N render the job N times with the model loaded once and print the mean seconds per\n"   \
    "             render (sampling, decode and PNG encoding) as JSON on stderr (benchmarks)\n"

typedef struct {
    int done_printed;
    double t0;
} progress_state;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int on_progress(void *ctx, int done, int total) {
    progress_state *ps = ctx;
    fprintf(stderr, "\rtessera: step %d/%d (%.1f s)", done, total, now_s() - ps->t0);
    if (done == total) fputc('\n', stderr);
    return 0;
}

int tcli_render_main(int argc, char **argv) {
    const char *job_path = NULL, *models = getenv("TESSERA_MODELS"), *out_dir = "out";
    int a1111 = 0, threads = 0, repeat = 1;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--a1111")) a1111 = 1;
        else if (!strcmp(argv[i], "--models") && i + 1 < argc) models = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out_dir = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(RENDER_USAGE, stdout);
            return 0;
        } else if (argv[i][0] == '-' && strcmp(argv[i], "-")) {
            fprintf(stderr, "tessera render: unknown option %s\n%s", argv[i], RENDER_USAGE);
            return 2;
        } else if (!job_path)
            job_path = argv[i];
        else {
            fputs(RENDER_USAGE, stderr);
            return 2;
        }
    }
    if (!job_path) {
        fputs(RENDER_USAGE, stderr);
        return 2;
    }
    if (!models || !models[0]) models = "models";
    te_cpu_prepare_env(argc, argv); /* may re-exec once; see te_cpu.h */

    json_error_t je;
    json_t *body = !strcmp(job_path, "-") ? json_loadf(stdin, 0, &je) : json_load_file(job_path, 0, &je);
    if (!body) {
        fprintf(stderr, "tessera render: %s: %s (line %d)\n", job_path, je.text, je.line);
        return 2;
    }
    if (a1111) {
        json_t *job = NULL, *opts = ta1_default_options();
        ta1_error ae;
        int is_img = json_object_get(body, "init_images") != NULL;
        int rc = is_img ? ta1_img2img_to_job(body, opts, &job, &ae) : ta1_txt2img_to_job(body, opts, &job, &ae);
        json_decref(opts);
        json_decref(body);
        if (rc) {
            fprintf(stderr, "tessera render: %d %s: %s\n", ae.http_status, ae.error, ae.detail);
            return 2;
        }
        body = job;
    }
    tjob_limits lim;
    tjob_limits_default(&lim);
    tjob_submission sub;
    tjob_error jerr;
    if (tjob_validate(body, &lim, &sub, &jerr)) {
        fprintf(stderr, "tessera render: %s%s%s\n", jerr.field[0] ? jerr.field : "", jerr.field[0] ? ": " : "",
                jerr.message);
        json_decref(body);
        return 2;
    }
    json_decref(body);
    int rc = 1;
    char err[1024];
    json_t *spec = json_loads(sub.spec_json, 0, &je);
    tpl_params prm;
    memset(&prm, 0, sizeof prm);
    ti_image init = {0}, mask = {0};
    te_backend *be = NULL;
    tpl_cache *cache = NULL;
    tpl_result res = {0};
    if (spec && !strcmp(sub.type, "sd_upscale")) { /* split, every tile in turn, combine: worker/sd_upscale.h */
        if (tw_sd_upscale_local(spec, sub.input, sub.input_len, models, threads, out_dir, err, sizeof err))
            fprintf(stderr, "tessera render: %s\n", err);
        else
            rc = 0;
        goto done;
    }
    if (!spec || (strcmp(sub.type, "txt2img") && strcmp(sub.type, "img2img") && strcmp(sub.type, "inpaint"))) {
        fprintf(stderr, "tessera render: runs txt2img, img2img and inpaint jobs (this is '%s')\n", sub.type);
        goto done;
    }
    if (tpl_params_from_spec(spec, &prm, err, sizeof err)) {
        fprintf(stderr, "tessera render: %s\n", err);
        goto done;
    }
    if (prm.kind != TPL_TXT2IMG) {
        const uint8_t *blobs[TJOB_MAX_INPUTS];
        size_t lens[TJOB_MAX_INPUTS];
        int n = tjob_inputs_unpack(sub.input, sub.input_len, blobs, lens, TJOB_MAX_INPUTS);
        if (n < 1 || ti_decode(blobs[0], lens[0], 0, &init, err, sizeof err) ||
            (prm.kind == TPL_INPAINT && (n < 2 || ti_decode(blobs[1], lens[1], 0, &mask, err, sizeof err)))) {
            fprintf(stderr, "tessera render: input image: %s\n", n < 1 ? "missing" : err);
            goto done;
        }
    }
    te_cpu_options co = {.n_threads = threads, .isa = -1};
    if (te_cpu_backend_create(&co, &be, err, sizeof err) != TE_OK) {
        fprintf(stderr, "tessera render: %s\n", err);
        goto done;
    }
    tpl_load_opts lo = {.be = be, .vocab = NULL, .want_hash = 1, .arena_cap = 0};
    tpl_model *m = NULL;
    if (tpl_cache_create(models, &lo, 0, &cache) ||
        tpl_cache_get(cache, prm.model[0] ? prm.model : NULL, prm.vae, &m, NULL, err, sizeof err)) {
        fprintf(stderr, "tessera render: %s\n", err);
        goto done;
    }
    progress_state ps = {0, now_s()};
    tpl_callbacks cb = {.progress = repeat > 1 ? NULL : on_progress, .preview = NULL, .ctx = &ps};
    if (repeat < 1) repeat = 1;
    double t_start = now_s();
    for (int rep = 0; rep < repeat; rep++) {
        tpl_result_free(&res);
        if (tpl_generate(m, &prm, prm.kind != TPL_TXT2IMG ? &init : NULL, prm.kind == TPL_INPAINT ? &mask : NULL,
                         &cb, 0, &res, err, sizeof err)) {
            fprintf(stderr, "tessera render: %s\n", err);
            goto done;
        }
        if (repeat > 1)
            for (int i = 0; i < res.n; i++) { /* the PNG encoding a worker does, timed too */
                ti_png_text t = {"parameters", res.infotexts[i]};
                uint8_t *png = NULL;
                size_t len = 0;
                if (ti_encode_png(&res.images[i], &t, 1, 6, &png, &len, err, sizeof err) == 0) free(png);
            }
    }
    if (repeat > 1)
        fprintf(stderr, "{\"renders\": %d, \"seconds_per_render\": %.6f}\n", repeat, (now_s() - t_start) / repeat);
    if (mkdir(out_dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "tessera render: %s: %s\n", out_dir, strerror(errno));
        goto done;
    }
    for (int i = 0; i < res.n; i++) {
        ti_png_text t = {"parameters", res.infotexts[i]};
        uint8_t *png = NULL;
        size_t len = 0;
        char path[4096];
        snprintf(path, sizeof path, "%s/%llu-%d.png", out_dir, (unsigned long long)res.seeds[i], i);
        if (ti_encode_png(&res.images[i], &t, 1, 6, &png, &len, err, sizeof err)) {
            fprintf(stderr, "tessera render: %s\n", err);
            goto done;
        }
        FILE *f = fopen(path, "wb");
        int ok = f && fwrite(png, 1, len, f) == len;
        if (f && fclose(f)) ok = 0;
        free(png);
        if (!ok) {
            fprintf(stderr, "tessera render: cannot write %s\n", path);
            goto done;
        }
        fprintf(stderr, "tessera: wrote %s\n", path);
    }
    char *info = tpl_result_info_json(m, &prm, &res);
    if (info) printf("%s\n", info);
    free(info);
    rc = 0;
done:
    tpl_result_free(&res);
    tpl_cache_free(cache);
    if (be) te_backend_destroy(be);
    ti_image_free(&init);
    ti_image_free(&mask);
    tpl_params_free(&prm);
    json_decref(spec);
    tjob_submission_free(&sub);
    return rc;
}
