/* emu_selftest.cu - tests of the host emulator itself (cuda/emu): barrier
 * ordering, shuffles (idx/up/down/xor with every width), ballot/any/all,
 * atomics under contention across OS threads, dynamic shared memory, 3-D
 * indices, 1024-thread block reductions, launch validation. Each check runs
 * under several schedules (OS threads x block order). Compiled as C++ with
 * the emulator, like the kernels. */
#include <stdio.h>
#include <stdlib.h>
#include <vector>

#include "tcu_reduce.cuh"

static int failures;
#define CHECK(c, ...) do { if (!(c)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); } } while (0)

/* ---- __syncthreads: every round each thread reads its neighbour's value of
 * the same round; a barrier that let a warp run ahead would show. */
__global__ void k_barrier(int *errors, int rounds) {
    __shared__ int sh[1024];
    unsigned T = blockDim.x, t = threadIdx.x;
    for (int k = 1; k <= rounds; k++) {
        sh[t] = (int)(t * 7 + k + blockIdx.x);
        __syncthreads();
        unsigned u = (t + 33) % T;
        if (sh[u] != (int)(u * 7 + k + blockIdx.x)) atomicAdd(errors, 1);
        __syncthreads();
    }
}

/* ---- shuffles: out[mode][width][lane] for a 32-lane warp */
__global__ void k_shuffle(int *out, int arg) {
    int lane = threadIdx.x & 31, v = 1000 + lane + 100 * (int)(threadIdx.x >> 5);
    int wi = 0;
    for (int w = 32; w >= 2; w >>= 1, wi++) {
        int *o = out + ((threadIdx.x >> 5) * 5 + wi) * 4 * 32;
        o[0 * 32 + lane] = __shfl_sync(0xffffffffu, v, arg, w);
        o[1 * 32 + lane] = __shfl_up_sync(0xffffffffu, v, (unsigned)arg, w);
        o[2 * 32 + lane] = __shfl_down_sync(0xffffffffu, v, (unsigned)arg, w);
        o[3 * 32 + lane] = __shfl_xor_sync(0xffffffffu, v, arg, w);
    }
}

__global__ void k_vote(unsigned *out) {
    int lane = threadIdx.x & 31;
    unsigned b = __ballot_sync(0xffffffffu, lane % 3 == 0);
    int any1 = __any_sync(0xffffffffu, lane == 17), any0 = __any_sync(0xffffffffu, 0);
    int all1 = __all_sync(0xffffffffu, 1), all0 = __all_sync(0xffffffffu, lane != 5);
    if (lane == 0) { out[0] = b; out[1] = any1; out[2] = any0; out[3] = all1; out[4] = all0; }
    double d = __shfl_sync(0xffffffffu, 0.5 + lane, 31);   /* 8-byte payload */
    if (d != 31.5) atomicAdd(&out[5], 1u);
}

__global__ void k_atomics(int *ci, float *cf, int *mx, unsigned *cas, unsigned long long *cu, int reps) {
    int id = blockIdx.x * blockDim.x + threadIdx.x;
    for (int r = 0; r < reps; r++) {
        atomicAdd(ci, 1);
        atomicAdd(cf, 1.0f);
        atomicAdd(cu, 2ull);
        unsigned old = *cas, seen;
        while ((seen = atomicCAS(cas, old, old + 1)) != old) old = seen;
    }
    atomicMax(mx, (id * 7919) % 100003);
}

__global__ void k_dyn_smem(float *out, int n) {
    TCU_EXTERN_SHARED(float, buf);
    for (int i = threadIdx.x; i < n; i += blockDim.x) buf[i] = (float)(i + blockIdx.x);
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) out[blockIdx.x * n + i] = buf[n - 1 - i];
}

__global__ void k_index3d(int *hits) {
    unsigned bx = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    unsigned tx = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    atomicAdd(&hits[bx * (blockDim.x * blockDim.y * blockDim.z) + tx], 1);
}

__global__ void k_block_sum(float *out, const float *x) {
    __shared__ float sh[32];
    float s = tcu_block_sum(x[blockIdx.x * blockDim.x + threadIdx.x], sh);
    float m = tcu_block_max(x[blockIdx.x * blockDim.x + threadIdx.x], sh);
    if (s != tcu_block_sum(x[blockIdx.x * blockDim.x + threadIdx.x], sh)) atomicAdd(out + gridDim.x * 2, 1.0f);
    if (threadIdx.x == 0) { out[blockIdx.x * 2] = s; out[blockIdx.x * 2 + 1] = m; }
}

__global__ void k_noop(int *p) { (void)p; }

static int expect_shfl(int mode, int w, int lane, int arg, int base) {
    int seg0 = lane & ~(w - 1), j;
    switch (mode) {
    case 0: j = seg0 + (arg % w); break;
    case 1: j = (lane - seg0) >= arg ? lane - arg : lane; break;
    case 2: j = (lane - seg0) + arg < w ? lane + arg : lane; break;
    default: j = lane ^ (arg & 31); if (j >= seg0 + w) j = lane; break;   /* earlier groups allowed */
    }
    return base + j;
}

static void run_all(const char *cfg) {
    /* barrier */
    for (unsigned T : {1u, 31u, 100u, 256u, 1024u}) {
        int err = 0;
        CHECK(TCU_LAUNCH(k_barrier, 7, T, 0, nullptr, &err, 4) == cudaSuccess, "launch");
        CHECK(err == 0, "%s: barrier T=%u: %d stale reads", cfg, T, err);
    }
    /* shuffles */
    for (int arg : {0, 1, 3, 5, 16, 31, 37}) {
        std::vector<int> out(2 * 5 * 4 * 32, -1);
        CHECK(TCU_LAUNCH(k_shuffle, 3, 64, 0, nullptr, out.data(), arg) == cudaSuccess, "launch");
        for (int wp = 0; wp < 2; wp++)
            for (int wi = 0, w = 32; w >= 2; w >>= 1, wi++)
                for (int mode = 0; mode < 4; mode++) {
                    if ((mode == 1 || mode == 2) && arg > 31) continue;
                    for (int lane = 0; lane < 32; lane++) {
                        int got = out[((wp * 5 + wi) * 4 + mode) * 32 + lane], want = expect_shfl(mode, w, lane, arg, 1000 + 100 * wp);
                        CHECK(got == want, "%s: shfl mode %d width %d arg %d lane %d: %d != %d", cfg, mode, w, arg, lane, got, want);
                    }
                }
    }
    /* votes */
    unsigned vote[6] = {0, 0, 0, 0, 0, 0};
    CHECK(TCU_LAUNCH(k_vote, 1, 32, 0, nullptr, vote) == cudaSuccess, "launch");
    CHECK(vote[0] == 0x49249249u && vote[1] == 1 && vote[2] == 0 && vote[3] == 1 && vote[4] == 0 && vote[5] == 0,
          "%s: votes %08x %u %u %u %u %u", cfg, vote[0], vote[1], vote[2], vote[3], vote[4], vote[5]);
    /* atomics */
    int ci = 0, mx = -1;
    float cf = 0;
    unsigned cas = 0;
    unsigned long long cu = 0;
    const int blocks = 96, threads = 128, reps = 20;
    CHECK(TCU_LAUNCH(k_atomics, blocks, threads, 0, nullptr, &ci, &cf, &mx, &cas, &cu, reps) == cudaSuccess, "launch");
    int total = blocks * threads * reps, mxw = -1;
    for (int id = 0; id < blocks * threads; id++) mxw = std::max(mxw, (id * 7919) % 100003);
    CHECK(ci == total && cf == (float)total && cas == (unsigned)total && cu == 2ull * total && mx == mxw,
          "%s: atomics %d %g %u %llu max %d (want %d, max %d)", cfg, ci, cf, cas, cu, mx, total, mxw);
    /* dynamic shared memory, sizes not multiples of the block */
    for (int n : {1, 300, 12345}) {
        std::vector<float> out((size_t)5 * n);
        CHECK(TCU_LAUNCH(k_dyn_smem, 5, 96, n * sizeof(float), nullptr, out.data(), n) == cudaSuccess, "launch");
        int bad = 0;
        for (int b = 0; b < 5; b++)
            for (int i = 0; i < n; i++) bad += out[(size_t)b * n + i] != (float)(n - 1 - i + b);
        CHECK(bad == 0, "%s: dynamic smem n=%d: %d wrong", cfg, n, bad);
    }
    /* 3-D indices */
    dim3 g(3, 2, 5), b(5, 3, 2);
    std::vector<int> hits(3 * 2 * 5 * 5 * 3 * 2, 0);
    CHECK(TCU_LAUNCH(k_index3d, g, b, 0, nullptr, hits.data()) == cudaSuccess, "launch");
    int bad = 0;
    for (int h : hits) bad += h != 1;
    CHECK(bad == 0, "%s: 3-D index coverage: %d wrong", cfg, bad);
    /* block reductions at 1024 threads */
    std::vector<float> x(4 * 1024), out(4 * 2 + 1, 0.0f);
    for (size_t i = 0; i < x.size(); i++) x[i] = (float)((i * 37) % 101) - 50.0f;
    CHECK(TCU_LAUNCH(k_block_sum, 4, 1024, 0, nullptr, out.data(), (const float *)x.data()) == cudaSuccess, "launch");
    for (int bl = 0; bl < 4; bl++) {
        double s = 0, m = -1e30;
        for (int i = 0; i < 1024; i++) { s += x[bl * 1024 + i]; m = std::max(m, (double)x[bl * 1024 + i]); }
        CHECK(out[bl * 2] == (float)s && out[bl * 2 + 1] == (float)m, "%s: block sum %g (%g) max %g (%g)", cfg,
              out[bl * 2], s, out[bl * 2 + 1], m);
    }
    CHECK(out[8] == 0.0f, "%s: block sum not repeatable", cfg);
}

int main(void) {
    struct { int threads; uint64_t seed; } cfgs[] = {{1, 0}, {2, 0}, {2, 7}, {4, 12345}, {3, 99}};
    for (auto &c : cfgs) {
        tcu_emu_configure(c.threads, c.seed);
        char name[64];
        snprintf(name, sizeof name, "threads=%d shuffle=%llu", c.threads, (unsigned long long)c.seed);
        run_all(name);
    }
    /* launch validation: errors are values, and cudaGetLastError reports then clears them */
    int dummy = 0;
    CHECK(TCU_LAUNCH(k_noop, 1, 1025, 0, nullptr, &dummy) == cudaErrorInvalidConfiguration, "1025 threads accepted");
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration && cudaGetLastError() == cudaSuccess, "last error");
    CHECK(TCU_LAUNCH(k_noop, 0, 32, 0, nullptr, &dummy) == cudaErrorInvalidConfiguration, "empty grid accepted");
    CHECK(TCU_LAUNCH(k_noop, 1, 32, 300 * 1024, nullptr, &dummy) == cudaErrorInvalidValue, "300 KiB smem accepted");
    CHECK(TCU_LAUNCH(k_noop, dim3(1, 70000), 32, 0, nullptr, &dummy) == cudaErrorInvalidConfiguration, "grid.y 70000");
    cudaGetLastError();
    CHECK(tcu_emu_launch_count() > 0, "launch counter");
    if (failures) { fprintf(stderr, "emu_selftest: %d failure(s)\n", failures); return 1; }
    printf("emu_selftest: ok (%llu launches)\n", (unsigned long long)tcu_emu_launch_count());
    return 0;
}
