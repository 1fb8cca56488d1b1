/* cfg_denoiser.c - conditioning schedules and the CFG denoiser
 * (cfg_denoiser.h). */
#include "cfg_denoiser.h"

#include "mem_plan.h"
#include "prompt_parse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- conditioning ---- */

static void sched_free(tpl_sched *s) {
    free(s->end_at);
    free(s->enc);
}

/* The schedule of one (sub)prompt: its texts encoded as one batch
 * (tcd_encode_batch), as A1111's get_learned_conditioning. Sub-prompts seen
 * before in this batch reuse their encodings (A1111's per-prompt cache). */
static int build_sched(tpl_model *m, const tpl_params *p, tpl_conds *c, const char *text, int total_steps,
                       int hires_steps, tpl_sched *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    for (int i = 0; i < c->nkeys; i++)
        if (!strcmp(c->keys[i], text)) {
            const tpl_sched *o = &c->key_sched[i];
            s->end_at = malloc((size_t)o->n * sizeof *s->end_at);
            s->enc = malloc((size_t)o->n * sizeof *s->enc);
            if (!s->end_at || !s->enc) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            memcpy(s->end_at, o->end_at, (size_t)o->n * sizeof *s->end_at);
            memcpy(s->enc, o->enc, (size_t)o->n * sizeof *s->enc);
            s->n = o->n;
            return 0;
        }
    tpr_schedule sc;
    char e2[512];
    tpr_sched_opts so = {.hires_steps = hires_steps, .use_old_scheduling = 0};
    if (tpr_schedules_ex(text, total_steps, &so, &sc, e2, sizeof e2)) {
        snprintf(err, errlen, "prompt schedule: %s", e2);
        return -1;
    }
    int n = (int)sc.n;
    const char **texts = calloc(n ? (size_t)n : 1, sizeof *texts);
    tcd_cond *cd = calloc(n ? (size_t)n : 1, sizeof *cd);
    s->end_at = calloc(n ? (size_t)n : 1, sizeof *s->end_at);
    s->enc = calloc(n ? (size_t)n : 1, sizeof *s->enc);
    int rc = -1;
    if (!texts || !cd || !s->end_at || !s->enc) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (c->nenc + n > c->cap) {
        int cap = (c->nenc + n) * 2;
        tpl_enc *t = realloc(c->enc, (size_t)cap * sizeof *t);
        if (!t) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        c->enc = t;
        c->cap = cap;
    }
    for (int i = 0; i < n; i++) texts[i] = sc.v[i].text;
    tcd_opts o = tcd_default_opts();
    o.emphasis = p->emphasis;
    if (tcd_encode_batch(m->tok, m->text, texts, n, p->clip_skip, &o, cd, e2, sizeof e2)) {
        snprintf(err, errlen, "prompt: %s", e2);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        tpl_enc *e = &c->enc[c->nenc];
        e->text = strdup(texts[i]);
        e->z = cd[i].hidden;
        e->T = cd[i].n_tokens;
        c->C = cd[i].hidden_size;
        cd[i].hidden = NULL;
        s->end_at[i] = sc.v[i].end_at_step;
        s->enc[i] = c->nenc++;
        s->n = i + 1;
    }
    if (c->nkeys < TPL_MAX_KEYS) {
        c->keys[c->nkeys] = strdup(text);
        tpl_sched *k = &c->key_sched[c->nkeys];
        k->end_at = malloc((size_t)n * sizeof *k->end_at);
        k->enc = malloc((size_t)n * sizeof *k->enc);
        if (c->keys[c->nkeys] && k->end_at && k->enc) {
            memcpy(k->end_at, s->end_at, (size_t)n * sizeof *k->end_at);
            memcpy(k->enc, s->enc, (size_t)n * sizeof *k->enc);
            k->n = n;
            c->nkeys++;
        } else {
            free(c->keys[c->nkeys]);
            free(k->end_at);
            free(k->enc);
            memset(k, 0, sizeof *k);
        }
    }
    rc = 0;
done:
    if (cd)
        for (int i = 0; i < n; i++) tcd_cond_free(&cd[i]);
    free(cd);
    free(texts);
    tpr_schedule_free(&sc);
    return rc;
}


int tpl_conds_build(tpl_model *m, const tpl_params *p, char *const *prompts, char *const *negs, int B,
                    int total_steps, int hires_steps, tpl_conds *c, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    c->B = B;
    c->cond = calloc((size_t)B, sizeof *c->cond);
    c->uncond = calloc((size_t)B, sizeof *c->uncond);
    if (!c->cond || !c->uncond) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char e2[512];
    for (int b = 0; b < B; b++) {
        /* extra networks first (A1111 strips them before the AND split) */
        tpr_extra_list ex;
        if (tpr_extra_networks(prompts[b], &ex, e2, sizeof e2)) {
            snprintf(err, errlen, "prompt: %s", e2);
            return -1;
        }
        tpr_and_list al;
        int rc = tpr_split_and(ex.prompt, &al, e2, sizeof e2);
        tpr_extra_list_free(&ex);
        if (rc) {
            snprintf(err, errlen, "prompt: %s", e2);
            return -1;
        }
        tpl_multi *mc = &c->cond[b];
        mc->parts = calloc(al.n ? al.n : 1, sizeof *mc->parts);
        mc->w = calloc(al.n ? al.n : 1, sizeof *mc->w);
        if (!mc->parts || !mc->w) {
            tpr_and_list_free(&al);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (size_t k = 0; k < al.n; k++) {
            mc->w[k] = al.v[k].weight;
            if (build_sched(m, p, c, al.v[k].text, total_steps, hires_steps, &mc->parts[k], err, errlen)) {
                mc->n = (int)k + 1;
                tpr_and_list_free(&al);
                return -1;
            }
            mc->n = (int)k + 1;
        }
        tpr_and_list_free(&al);
        tpr_extra_list en;
        if (tpr_extra_networks(negs[b], &en, e2, sizeof e2)) {
            snprintf(err, errlen, "negative prompt: %s", e2);
            return -1;
        }
        rc = build_sched(m, p, c, en.prompt, total_steps, hires_steps, &c->uncond[b], err, errlen);
        tpr_extra_list_free(&en);
        if (rc) return -1;
    }
    return 0;
}

void tpl_conds_free(tpl_conds *c) {
    if (c->cond)
        for (int b = 0; b < c->B; b++) {
            for (int k = 0; k < c->cond[b].n; k++) sched_free(&c->cond[b].parts[k]);
            free(c->cond[b].parts);
            free(c->cond[b].w);
        }
    if (c->uncond)
        for (int b = 0; b < c->B; b++) sched_free(&c->uncond[b]);
    free(c->cond);
    free(c->uncond);
    for (int i = 0; i < c->nenc; i++) {
        free(c->enc[i].text);
        free(c->enc[i].z);
    }
    free(c->enc);
    for (int i = 0; i < c->nkeys; i++) {
        free(c->keys[i]);
        sched_free(&c->key_sched[i]);
    }
    memset(c, 0, sizeof *c);
}

/* the encoding a schedule uses at step */
static const tpl_enc *at_step(const tpl_conds *c, const tpl_sched *s, int step) {
    for (int i = 0; i < s->n; i++)
        if (step <= s->end_at[i]) return &c->enc[s->enc[i]];
    return &c->enc[s->enc[s->n - 1]];
}

/* ---- the denoiser ---- */

typedef struct {
    int image;              /* which x */
    const tpl_enc *e;
} row;

/* Copy e into dst [T, C], repeating its last token vector up to T. */
static void padded(const tpl_enc *e, int T, int C, float *dst) {
    memcpy(dst, e->z, (size_t)e->T * C * sizeof(float));
    for (int t = e->T; t < T; t++) memcpy(dst + (size_t)t * C, e->z + (size_t)(e->T - 1) * C, (size_t)C * sizeof(float));
}

/* Rows of UNet work per forward: keep the activations of one forward near a
 * 64x64 latent batch of 2 (a 512x512 SD job with cond+uncond). */
static int rows_per_forward(int lh, int lw) {
    long px = (long)lh * lw;
    int r = (int)(8192 / (px > 0 ? px : 1));
    return r < 1 ? 1 : r > 16 ? 16 : r;
}

/* UNet over rows r[0..nr) with token length T; x0 out [nr][n1]. Without a
 * tile grid each row is one UNet item; with one (Tiled Diffusion) every
 * (row, tile) pair is an item on the tile's crop, and the raw outputs are
 * blended back with the tile weights before the x0 conversion. */
static int run_rows(tpl_denoiser *d, const float *x, double sigma, const row *r, int nr, int T, float *x0) {
    tpl_model *m = d->m;
    const tpl_td_grid *g = d->grid && d->grid->w == d->lw && d->grid->h == d->lh ? d->grid : NULL;
    int C = d->c->C, in_c = tmu_get_config(m->unet)->in_channels, lc = d->lc;
    int tw = g ? g->tw : d->lw, th = g ? g->th : d->lh, ntiles = g ? g->ntiles : 1;
    size_t n1 = (size_t)lc * d->lh * d->lw, plane = (size_t)d->lh * d->lw, tplane = (size_t)tw * th;
    int per = rows_per_forward(th, tw);
    if (d->budget) {
        /* as many rows per forward as the budget allows (mem_plan.h) */
        if (d->plan_h != th || d->plan_w != tw || d->plan_T != T) {
            tpl_mem_plan mp;
            if (tpl_plan_unet(m, th, tw, T, per, d->budget, &mp, d->err, d->errlen)) return -1;
            d->plan_h = th;
            d->plan_w = tw;
            d->plan_T = T;
            d->plan_rows = mp.rows;
        }
        per = d->plan_rows;
    }
    long items = (long)nr * ntiles;
    float *xin = malloc((size_t)per * in_c * tplane * sizeof(float));
    float *ctx = malloc((size_t)per * T * C * sizeof(float));
    float *out = malloc((size_t)per * lc * tplane * sizeof(float));
    float *t = malloc((size_t)per * sizeof(float));
    float *acc = g ? calloc((size_t)nr * n1, sizeof(float)) : x0; /* raw model output on the canvas */
    int rc = -1;
    if (!xin || !ctx || !out || !t || !acc) {
        snprintf(d->err, d->errlen, "out of memory");
        goto done;
    }
    if (in_c > lc && (!d->c_concat || in_c - lc != 5)) {
        snprintf(d->err, d->errlen, "the UNet takes %d input channels but no image conditioning was made", in_c);
        goto done;
    }
    double cin = tsm_c_in(sigma);
    float tt = (float)tsm_sigma_to_t(&m->sched, sigma);
    for (long s = 0; s < items; s += per) {
        int k = items - s < per ? (int)(items - s) : per;
        for (int j = 0; j < k; j++) {
            /* tile-major as the extension batches: item = tile * nr + row */
            long it = s + j;
            int tile = (int)(it / nr), ri = (int)(it % nr);
            int ox = g ? g->tiles[tile].x : 0, oy = g ? g->tiles[tile].y : 0;
            const row *rw = &r[ri];
            const float *xi = x + (size_t)rw->image * n1;
            float *dst = xin + (size_t)j * in_c * tplane;
            for (int ch = 0; ch < lc; ch++)
                for (int y = 0; y < th; y++)
                    for (int xx = 0; xx < tw; xx++)
                        dst[(size_t)ch * tplane + (size_t)y * tw + xx] =
                            (float)(xi[(size_t)ch * plane + (size_t)(y + oy) * d->lw + xx + ox] * cin);
            if (in_c > lc) {
                const float *cc = d->c_concat + (size_t)rw->image * 5 * plane;
                for (int ch = 0; ch < 5; ch++)
                    for (int y = 0; y < th; y++)
                        memcpy(dst + (size_t)(lc + ch) * tplane + (size_t)y * tw,
                               cc + (size_t)ch * plane + (size_t)(y + oy) * d->lw + ox, (size_t)tw * sizeof(float));
            }
            padded(rw->e, T, C, ctx + (size_t)j * T * C);
            t[j] = tt;
        }
        char e2[512];
        if (tmu_forward_nchw(m->unet, m->arena, xin, k, th, tw, t, ctx, T, g ? out : acc + (size_t)s * n1, e2,
                             sizeof e2)) {
            snprintf(d->err, d->errlen, "unet: %s", e2);
            goto done;
        }
        if (!g) continue;
        for (int j = 0; j < k; j++) {
            long it = s + j;
            int tile = (int)(it / nr), ri = (int)(it % nr);
            int ox = g->tiles[tile].x, oy = g->tiles[tile].y;
            float *a = acc + (size_t)ri * n1;
            const float *o = out + (size_t)j * lc * tplane;
            for (int ch = 0; ch < lc; ch++)
                for (int y = 0; y < th; y++)
                    for (int xx = 0; xx < tw; xx++)
                        a[(size_t)ch * plane + (size_t)(y + oy) * d->lw + xx + ox] +=
                            o[(size_t)ch * tplane + (size_t)y * tw + xx] * g->tile_weight[(size_t)y * tw + xx];
        }
    }
    for (int j = 0; j < nr; j++) {
        float *a = acc + (size_t)j * n1;
        if (g)
            for (int ch = 0; ch < lc; ch++)
                for (size_t q = 0; q < plane; q++) a[(size_t)ch * plane + q] *= g->inv_wsum[q];
        const float *xi = x + (size_t)r[j].image * n1;
        tsm_output_to_denoised(m->sched.prediction, xi, a, sigma, x0 + (size_t)j * n1, n1);
    }
    rc = 0;
done:
    free(xin);
    free(ctx);
    free(out);
    free(t);
    if (g) free(acc);
    return rc;
}

int tpl_denoise(void *ctx, const float *xarg, float sigma, float *denoised, size_t n) {
    tpl_denoiser *d = ctx;
    const tpl_conds *c = d->c;
    int B = d->B, step = d->step++;
    size_t n1 = (size_t)d->lc * d->lh * d->lw, plane = (size_t)d->lh * d->lw;
    if (n != n1 * (size_t)B) {
        snprintf(d->err, d->errlen, "denoiser: latent size mismatch");
        return -1;
    }
    const float *x = xarg;
    float *xb = NULL;
    if (d->timesteps && d->nmask && d->init_latent) {
        /* timestep samplers: x_vp = x_vp*nmask + init*mask before the model; the
         * sampler hands us x_vp / sqrt(alphas_cumprod) = x_vp / c_in(sigma) */
        xb = malloc(n * sizeof(float));
        if (!xb) return -1;
        float inv = (float)(1.0 / tsm_c_in(sigma));
        for (int b = 0; b < B; b++)
            for (int ch = 0; ch < d->lc; ch++)
                for (size_t q = 0; q < plane; q++) {
                    size_t i = (size_t)b * n1 + (size_t)ch * plane + q;
                    xb[i] = x[i] * d->nmask[q] + d->init_latent[i] * (1.0f - d->nmask[q]) * inv;
                }
        x = xb;
    }
    int ncond = 0;
    for (int b = 0; b < B; b++) ncond += c->cond[b].n;
    int nrows = ncond + B;
    row *r = calloc((size_t)nrows, sizeof *r);
    float *x0 = malloc((size_t)nrows * n1 * sizeof(float));
    int rc = -1;
    if (!r || !x0) {
        snprintf(d->err, d->errlen, "out of memory");
        goto done;
    }
    int Tc = 0, Tu = 0, k = 0;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < c->cond[b].n; j++) {
            r[k].image = b;
            r[k].e = at_step(c, &c->cond[b].parts[j], step);
            if (r[k].e->T > Tc) Tc = r[k].e->T;
            k++;
        }
    for (int b = 0; b < B; b++) {
        r[k].image = b;
        r[k].e = at_step(c, &c->uncond[b], step);
        if (r[k].e->T > Tu) Tu = r[k].e->T;
        k++;
    }
    if (Tc == Tu) {
        if (run_rows(d, x, sigma, r, nrows, Tc, x0)) goto done;
    } else {
        if (run_rows(d, x, sigma, r, ncond, Tc, x0)) goto done;
        if (run_rows(d, x, sigma, r + ncond, B, Tu, x0 + (size_t)ncond * n1)) goto done;
    }
    /* CFG combine in A1111's order: start from the uncond, add each cond part */
    k = 0;
    for (int b = 0; b < B; b++) {
        float *o = denoised + (size_t)b * n1;
        const float *u = x0 + (size_t)(ncond + b) * n1;
        memcpy(o, u, n1 * sizeof(float));
        for (int j = 0; j < c->cond[b].n; j++, k++) {
            const float *cc = x0 + (size_t)k * n1;
            float w = (float)(c->cond[b].w[j] * d->cfg);
            for (size_t q = 0; q < n1; q++) o[q] += (cc[q] - u[q]) * w;
        }
    }
    if (!d->timesteps && d->nmask && d->init_latent)
        for (int b = 0; b < B; b++)
            for (int ch = 0; ch < d->lc; ch++)
                for (size_t q = 0; q < plane; q++) {
                    size_t i = (size_t)b * n1 + (size_t)ch * plane + q;
                    denoised[i] = d->init_latent[i] * (1.0f - d->nmask[q]) + d->nmask[q] * denoised[i];
                }
    rc = 0;
done:
    free(r);
    free(x0);
    free(xb);
    return rc;
}
