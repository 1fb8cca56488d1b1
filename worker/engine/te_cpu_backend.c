/* te_cpu_backend.c - CPU backend object: ISA choice, thread pool, scratch,
 * memory, and the op table wiring (the ops live in te_cpu_*.c). */

#include "te_cpu_impl.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

const char *te_cpu_isa_name(te_cpu_isa isa) {
    return isa == TE_ISA_AVX512 ? "avx512" : isa == TE_ISA_AVX2 ? "avx2" : "scalar";
}

te_cpu_isa te_cpu_detect_isa(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return TE_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return TE_ISA_AVX2;
    return TE_ISA_SCALAR;
}

int te_cpu_prepare_env(int argc, char **argv) {
    (void)argc;
    if (getenv("TE_ENV_PREPARED")) return 0;
    int changed = 0;
    if (!getenv("OMP_WAIT_POLICY")) { setenv("OMP_WAIT_POLICY", "PASSIVE", 1); changed = 1; }
    if (!getenv("OPENBLAS_CORETYPE") && te_cpu_detect_isa() == TE_ISA_AVX512) {
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
        changed = 1;
    }
    setenv("TE_ENV_PREPARED", "1", 1);
    if (changed && !getenv("TE_NO_REEXEC")) {
        execv("/proc/self/exe", argv);
        return -1;   /* exec failed: carry on with what we have */
    }
    return 0;
}

/* Large blocks (weights, packed weights, the arena) get their own mapping so
 * that freeing one (e.g. a plain weight once its packed copy exists) returns
 * the memory to the system at once; malloc's heap would keep such holes
 * resident. A 64-byte header before the pointer says how it was made. */
#define BIG_BLOCK ((size_t)1 << 20)
typedef struct { void *base; size_t len; } blk_hdr;

void *te_cpu_big_alloc(size_t n) {
    n = (n + 63) & ~(size_t)63;
    if (!n) n = 64;
    if (n >= BIG_BLOCK) {
        size_t pg = (size_t)sysconf(_SC_PAGESIZE), len = (n + pg + pg - 1) & ~(pg - 1);
        char *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (b == MAP_FAILED) return NULL;
        blk_hdr *h = (blk_hdr *)(b + pg - 64);
        h->base = b, h->len = len;
        return b + pg;
    }
    char *b = aligned_alloc(64, n + 64);
    if (!b) return NULL;
    blk_hdr *h = (blk_hdr *)b;
    h->base = b, h->len = 0;
    return b + 64;
}

void te_cpu_big_free(void *p) {
    if (!p) return;
    blk_hdr *h = (blk_hdr *)((char *)p - 64);
    if (h->len) munmap(h->base, h->len);
    else free(h->base);
}

static void *cpu_alloc(te_backend *be, size_t n) {
    (void)be;
    return te_cpu_big_alloc(n);
}
static void cpu_free(te_backend *be, void *p) { (void)be; te_cpu_big_free(p); }
static te_status cpu_copy_mem(te_backend *be, void *dst, const void *src, size_t n) {
    (void)be;
    memcpy(dst, src, n);
    return TE_OK;
}
static te_status cpu_sync(te_backend *be) { (void)be; return TE_OK; }

static void cpu_destroy(te_backend *be) {
    te_cpu *c = te_cpu_of(be);
    if (c) {
        te_cpu_dnnl_fini(be);
        te_pool_destroy(c->pool);
        for (int i = 0; i < c->n_threads; i++) {
            if (c->attn) {
                free(c->attn[i].qs); free(c->attn[i].kt); free(c->attn[i].vp); free(c->attn[i].s);
                free(c->attn[i].acc); free(c->attn[i].m); free(c->attn[i].l);
            }
            if (c->scratch) free(c->scratch[i]);
        }
        free(c->attn);
        free(c->scratch);
        free(c);
    }
    free(be);
}

static te_status te_cpu_attention_op(te_backend *be, te_tensor *o, const te_tensor *q, const te_tensor *k,
                                     const te_tensor *v, const te_attn_params *p) {
    return te_cpu_attention(be, o, q, k, v, p);
}

static const te_backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy_mem,
    .download = cpu_copy_mem,
    .synchronize = cpu_sync,
    .release_prep = te_cpu_release_prep,
    .conv2d = te_cpu_conv2d,
    .linear = te_cpu_linear,
    .matmul = te_cpu_matmul,
    .group_norm = te_cpu_group_norm,
    .layer_norm = te_cpu_layer_norm,
    .unary = te_cpu_unary,
    .geglu = te_cpu_geglu,
    .softmax = te_cpu_softmax,
    .attention = te_cpu_attention_op,
    .binary = te_cpu_binary,
    .scale = te_cpu_scale,
    .concat_channels = te_cpu_concat,
    .upsample_nearest2x = te_cpu_upsample2x,
    .interpolate = te_cpu_interpolate,
    .timestep_embedding = te_cpu_timestep,
    .nchw_nhwc = te_cpu_layout,
    .convert = te_cpu_convert,
    .copy = te_cpu_copy,
    .leaky_relu = te_cpu_leaky_relu,
};

static int parse_isa(const char *s) {
    if (!s || !*s) return -1;
    if (!strcmp(s, "scalar")) return TE_ISA_SCALAR;
    if (!strcmp(s, "avx2")) return TE_ISA_AVX2;
    if (!strcmp(s, "avx512")) return TE_ISA_AVX512;
    return -2;
}

te_status te_cpu_backend_create(const te_cpu_options *opt, te_backend **out, char *err, size_t errlen) {
    *out = NULL;
    te_cpu_options o = { 0, -1, TE_CONV_DEFAULT, TE_WEIGHTS_DEFAULT };
    if (opt) o = *opt;
    if (o.n_threads <= 0 && getenv("TE_THREADS")) o.n_threads = atoi(getenv("TE_THREADS"));
    if (o.n_threads <= 0) o.n_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (o.n_threads <= 0) o.n_threads = 1;
    te_cpu_isa best = te_cpu_detect_isa();
    int isa = o.isa;
    if (isa < 0) {
        isa = parse_isa(getenv("TE_CPU_ISA"));
        if (isa == -2) { snprintf(err, errlen, "cpu: TE_CPU_ISA must be scalar, avx2 or avx512"); return TE_ERR_ARG; }
    }
    if (isa < 0) isa = best;
    if (isa > (int)best) {
        snprintf(err, errlen, "cpu: ISA %s requested but this CPU supports only %s", te_cpu_isa_name(isa),
                 te_cpu_isa_name(best));
        return TE_ERR_UNSUPPORTED;
    }
    te_backend *be = calloc(1, sizeof *be);
    te_cpu *c = calloc(1, sizeof *c);
    if (!be || !c) { free(be); free(c); snprintf(err, errlen, "cpu: out of memory"); return TE_ERR_OOM; }
    be->ops = &cpu_ops;
    be->impl = c;
    c->isa = (te_cpu_isa)isa;
    if (o.conv == TE_CONV_DEFAULT) {
        const char *ca = getenv("TE_CONV_ALGO");
        o.conv = ca && !strncmp(ca, "winograd", 8) ? TE_CONV_WINOGRAD : TE_CONV_DIRECT;
    }
    c->winograd = o.conv == TE_CONV_WINOGRAD;
    if (c->winograd && getenv("TE_CONV_ALGO") && !strcmp(getenv("TE_CONV_ALGO"), "winograd-all")) c->winograd = 2;
    if (o.weights == TE_WEIGHTS_DEFAULT) {
        const char *wd = getenv("TE_WEIGHTS");
        o.weights = wd && !strcmp(wd, "bf16") ? TE_WEIGHTS_BF16 : TE_WEIGHTS_F32;
    }
    be->matrix_dtype = o.weights == TE_WEIGHTS_BF16 ? TE_BF16 : TE_F32;
    c->n_threads = o.n_threads;
    te_cpu_kernels_scalar(&c->k);
    if (c->isa >= TE_ISA_AVX2) te_cpu_kernels_avx2(&c->k);
    if (c->isa >= TE_ISA_AVX512) te_cpu_kernels_avx512(&c->k);
    c->pool = te_pool_create(c->n_threads);
    c->attn = calloc((size_t)c->n_threads, sizeof *c->attn);
    c->scratch = calloc((size_t)c->n_threads, sizeof *c->scratch);
    int ok = c->pool && c->attn && c->scratch;
    for (int i = 0; ok && i < c->n_threads; i++) {
        te_attn_scratch *s = &c->attn[i];
        s->qs = aligned_alloc(64, sizeof(float) * TE_ATTN_BR * TE_ATTN_DMAX);
        s->kt = aligned_alloc(64, sizeof(float) * TE_ATTN_DMAX * TE_ATTN_BC);
        s->vp = aligned_alloc(64, sizeof(float) * TE_ATTN_DMAX * TE_ATTN_BC);
        s->s = aligned_alloc(64, sizeof(float) * TE_ATTN_BR * TE_ATTN_BC);
        s->acc = aligned_alloc(64, sizeof(float) * TE_ATTN_BR * TE_ATTN_DMAX);
        s->m = aligned_alloc(64, sizeof(float) * TE_ATTN_GROUP * TE_ATTN_BR);
        s->l = aligned_alloc(64, sizeof(float) * TE_ATTN_GROUP * TE_ATTN_BR);
        c->scratch[i] = aligned_alloc(64, sizeof(float) * TE_CPU_SCRATCH_FLOATS);
        ok = s->qs && s->kt && s->vp && s->s && s->acc && s->m && s->l && c->scratch[i];
    }
    /* oneDNN runs on libgomp (Debian build): cap its team to our thread count. */
    c->omp_set_num_threads = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (c->omp_set_num_threads) c->omp_set_num_threads(c->n_threads);
    if (!ok) { cpu_destroy(be); snprintf(err, errlen, "cpu: out of memory"); return TE_ERR_OOM; }
    te_status s = te_cpu_dnnl_init(be);
    if (s != TE_OK) { snprintf(err, errlen, "%s", be->err); cpu_destroy(be); return s; }
    *out = be;
    return TE_OK;
}

int te_cpu_backend_winograd(const te_backend *be) { return ((te_cpu *)be->impl)->winograd; }
te_cpu_isa te_cpu_backend_isa(const te_backend *be) { return ((te_cpu *)be->impl)->isa; }
int te_cpu_backend_threads(const te_backend *be) { return ((te_cpu *)be->impl)->n_threads; }
