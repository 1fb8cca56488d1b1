/* tcu_emu.cpp - the host emulator's runtime: block scheduler over a pool of
 * OS threads, fibers for the threads of a block, barriers, warp exchange
 * slots, launch validation and the error strings. See tcu_emu.h.
 *
 * Fiber switch: a 14-instruction x86-64 context switch (callee-saved
 * registers + stack pointer; no signal-mask syscall, unlike swapcontext),
 * or ucontext on other architectures / with -DTCU_EMU_UCONTEXT. */
#include "tcu_emu.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if !defined(__x86_64__) && !defined(TCU_EMU_UCONTEXT)
#define TCU_EMU_UCONTEXT 1
#endif
#ifdef TCU_EMU_UCONTEXT
#include <ucontext.h>
#else
asm(R"(
    .text
    .p2align 4
    .globl tcu_emu_switch
    .hidden tcu_emu_switch
    .type tcu_emu_switch,@function
tcu_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size tcu_emu_switch,.-tcu_emu_switch
)");
/* Save the callee-saved state on the current stack into *save, continue on `to`. */
extern "C" void tcu_emu_switch(void **save, void *to);
#endif

namespace tcu_emu {

thread_local uint3 t_threadIdx;
thread_local uint3 t_blockIdx;
thread_local dim3 t_blockDim;
thread_local dim3 t_gridDim;

namespace {

constexpr size_t kStack = 64 * 1024;            /* per fiber */
constexpr size_t kGuard = 4096;                 /* PROT_NONE page below each stack */
constexpr size_t kMaxSmem = 227 * 1024;          /* sm_90 opt-in maximum */
constexpr unsigned kMaxThreads = 1024;

enum : uint8_t { F_READY, F_RUNNING, F_WARP, F_BLOCK, F_DONE };

[[noreturn]] void die(const char *msg) {
    fprintf(stderr, "tcu_emu: %s\n", msg);
    fflush(stderr);
    abort();
}

struct Fiber {
    void *sp;
    uint8_t state;
    uint3 tid;
    unsigned lane, warp;
#ifdef TCU_EMU_UCONTEXT
    ucontext_t uc;
#endif
};

uint64_t splitmix(uint64_t &s) {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* One per OS thread: runs one block at a time on pooled fiber stacks. */
struct Runner {
    std::vector<char *> stacks;
    Fiber fibers[kMaxThreads];
    std::vector<uint64_t> slots;
    unsigned char *smem = nullptr;
    void *sched_sp = nullptr;
#ifdef TCU_EMU_UCONTEXT
    ucontext_t sched_uc;
#endif
    void (*body)(void *) = nullptr;
    void *ctx = nullptr;
    unsigned nthreads = 0, nwarps = 0;

    ~Runner() {
        for (char *s : stacks) munmap(s, kStack + kGuard);
        free(smem);
    }
    char *stack(unsigned i) {
        while (stacks.size() <= i) {
            void *p = mmap(nullptr, kStack + kGuard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (p == MAP_FAILED) die("cannot map a fiber stack");
            mprotect(p, kGuard, PROT_NONE);
            stacks.push_back(static_cast<char *>(p));
        }
        return stacks[i] + kGuard;
    }
};

thread_local Runner *t_runner;
thread_local Fiber *t_fiber;

Runner &runner() {
    if (!t_runner) {   /* on the heap: ~1 MiB with ucontext, too big for static TLS */
        static thread_local std::unique_ptr<Runner> r;
        r.reset(new Runner);
        t_runner = r.get();
    }
    return *t_runner;
}

void fiber_main() {
    Runner &r = *t_runner;
    r.body(r.ctx);
    Fiber *f = t_fiber;
    f->state = F_DONE;
#ifdef TCU_EMU_UCONTEXT
    setcontext(&r.sched_uc);
#else
    tcu_emu_switch(&f->sp, r.sched_sp);
#endif
    die("finished fiber resumed");
}

void fiber_init(Runner &r, Fiber &f, unsigned i) {
    char *base = r.stack(i);
#ifdef TCU_EMU_UCONTEXT
    getcontext(&f.uc);
    f.uc.uc_stack.ss_sp = base;
    f.uc.uc_stack.ss_size = kStack;
    f.uc.uc_link = nullptr;
    makecontext(&f.uc, fiber_main, 0);
#else
    void **sp = reinterpret_cast<void **>(base + kStack);   /* 16-byte aligned top */
    *--sp = nullptr;                                        /* fiber_main's return address slot */
    *--sp = reinterpret_cast<void *>(&fiber_main);          /* popped by `ret` */
    for (int k = 0; k < 6; k++) *--sp = nullptr;            /* rbp rbx r12 r13 r14 r15 */
    f.sp = sp;
#endif
    f.state = F_READY;
}

inline void resume(Runner &r, Fiber &f) {
    t_fiber = &f;
    t_threadIdx = f.tid;
    f.state = F_RUNNING;
#ifdef TCU_EMU_UCONTEXT
    swapcontext(&r.sched_uc, &f.uc);
#else
    tcu_emu_switch(&r.sched_sp, f.sp);
#endif
}

void yield(uint8_t st) {
    Fiber *f = t_fiber;
    if (!f || !t_runner) die("__syncthreads / warp collective called outside an emulated kernel");
    f->state = st;
#ifdef TCU_EMU_UCONTEXT
    swapcontext(&f->uc, &t_runner->sched_uc);
#else
    tcu_emu_switch(&f->sp, t_runner->sched_sp);
#endif
}

struct Launch {
    void (*body)(void *);
    void *ctx;
    dim3 grid, block;
    size_t smem;
    uint64_t seed;             /* 0 = ordered */
    std::vector<uint32_t> order;
};

void run_block(Runner &r, const Launch &L, uint64_t lin) {
    t_blockDim = L.block;
    t_gridDim = L.grid;
    t_blockIdx = uint3{(unsigned)(lin % L.grid.x), (unsigned)((lin / L.grid.x) % L.grid.y),
                       (unsigned)(lin / ((uint64_t)L.grid.x * L.grid.y))};
    r.body = L.body;
    r.ctx = L.ctx;
    unsigned T = L.block.x * L.block.y * L.block.z, nw = (T + 31) / 32;
    r.nthreads = T;
    r.nwarps = nw;
    if (r.slots.size() < (size_t)nw * 32) r.slots.resize((size_t)nw * 32);
    if (L.smem) {
        if (!r.smem && !(r.smem = static_cast<unsigned char *>(aligned_alloc(256, kMaxSmem)))) die("out of memory");
        memset(r.smem, 0xff, L.smem);
    }
    for (unsigned i = 0; i < T; i++) {
        Fiber &f = r.fibers[i];
        f.tid = uint3{i % L.block.x, (i / L.block.x) % L.block.y, i / (L.block.x * L.block.y)};
        f.lane = i & 31;
        f.warp = i >> 5;
        fiber_init(r, f, i);
    }
    unsigned worder[kMaxThreads / 32];
    for (unsigned w = 0; w < nw; w++) worder[w] = w;
    uint64_t rng = L.seed ^ (lin * 0x2545f4914f6cdd1dull);
    for (;;) {
        if (L.seed && nw > 1)
            for (unsigned w = nw - 1; w > 0; w--) std::swap(worder[w], worder[splitmix(rng) % (w + 1)]);
        for (unsigned wi = 0; wi < nw; wi++) {
            unsigned w = worder[wi], l0 = w * 32, l1 = std::min(T, l0 + 32);
            for (;;) {
                unsigned nwarp = 0, nblock = 0;
                for (unsigned i = l0; i < l1; i++)
                    if (r.fibers[i].state == F_READY) resume(r, r.fibers[i]);
                for (unsigned i = l0; i < l1; i++) {
                    nwarp += r.fibers[i].state == F_WARP;
                    nblock += r.fibers[i].state == F_BLOCK;
                }
                if (!nwarp) break;
                if (nblock) {
                    char msg[160];
                    snprintf(msg, sizeof msg, "block (%u,%u,%u) warp %u: lanes wait at a warp collective while others "
                             "wait at __syncthreads (divergent warp)", t_blockIdx.x, t_blockIdx.y, t_blockIdx.z, w);
                    die(msg);
                }
                for (unsigned i = l0; i < l1; i++)
                    if (r.fibers[i].state == F_WARP) r.fibers[i].state = F_READY;
            }
        }
        unsigned waiting = 0;
        for (unsigned i = 0; i < T; i++)
            if (r.fibers[i].state == F_BLOCK) { r.fibers[i].state = F_READY; waiting++; }
        if (!waiting) break;
    }
    t_fiber = nullptr;
}

/* ---- the pool of OS threads ------------------------------------------------ */
struct Pool {
    std::mutex launch_mu;                  /* one launch at a time (one emulated device) */
    std::mutex mu;
    std::condition_variable cv, done_cv;
    int n_threads = 0;                     /* including the launching thread */
    uint64_t seed = 0;
    int workers = 0;                       /* started worker threads */
    uint64_t gen = 0;
    const Launch *job = nullptr;
    int job_workers = 0, pending = 0;
    std::atomic<uint64_t> next{0};
    uint64_t total = 0;
    std::atomic<uint64_t> launches{0};

    void run_blocks() {
        Runner &r = runner();
        for (;;) {
            uint64_t i = next.fetch_add(1, std::memory_order_relaxed);
            if (i >= total) break;
            run_block(r, *job, job->seed ? job->order[i] : i);
        }
    }
    void worker(int k) {
        uint64_t seen = 0;
        for (;;) {
            std::unique_lock<std::mutex> lk(mu);
            cv.wait(lk, [&] { return gen != seen; });
            seen = gen;
            if (k >= job_workers) continue;
            lk.unlock();
            run_blocks();
            lk.lock();
            if (--pending == 0) done_cv.notify_all();
        }
    }
    void ensure_config() {
        if (n_threads) return;
        const char *e = getenv("TCU_EMU_THREADS");
        long n = e ? strtol(e, nullptr, 10) : sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = (int)std::max(1L, std::min(n, 16L));
        e = getenv("TCU_EMU_SHUFFLE");
        seed = e ? strtoull(e, nullptr, 0) : 0;
    }
};

Pool &pool() {
    static Pool *p = new Pool;   /* never destroyed: workers are detached */
    return *p;
}

thread_local cudaError_t t_last_error = cudaSuccess;

cudaError_t fail(cudaError_t e) {
    t_last_error = e;
    return e;
}

} // namespace

void sync_block() { yield(F_BLOCK); }
void sync_warp() { yield(F_WARP); }
unsigned lane_id() { return t_fiber ? t_fiber->lane : 0; }
uint64_t *warp_slots() {
    if (!t_fiber) die("warp collective called outside an emulated kernel");
    return &t_runner->slots[(size_t)t_fiber->warp * 32];
}
unsigned warp_live_mask() {
    if (!t_fiber) return 0;
    Runner &r = *t_runner;
    unsigned l0 = t_fiber->warp * 32, m = 0;
    for (unsigned i = l0; i < std::min(r.nthreads, l0 + 32); i++)
        if (r.fibers[i].state != F_DONE) m |= 1u << (i - l0);
    return m;
}
void *dyn_smem() { return t_runner ? t_runner->smem : nullptr; }

unsigned ballot(int pred) {
    uint64_t *slot = warp_slots();
    slot[lane_id()] = pred != 0;
    sync_warp();
    unsigned live = warp_live_mask(), m = 0;
    for (unsigned l = 0; l < 32; l++)
        if ((live >> l & 1) && slot[l]) m |= 1u << l;
    sync_warp();
    return m;
}

cudaError_t launch(void (*body)(void *), void *ctx, dim3 grid, dim3 block, size_t smem, cudaStream_t stream) {
    (void)stream;
    if (t_fiber) die("kernel launch from inside a kernel (dynamic parallelism is not emulated)");
    uint64_t T = (uint64_t)block.x * block.y * block.z;
    if (!block.x || !block.y || !block.z || block.x > 1024 || block.y > 1024 || block.z > 64 || T > kMaxThreads ||
        !grid.x || !grid.y || !grid.z || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
        return fail(cudaErrorInvalidConfiguration);
    if (smem > kMaxSmem) return fail(cudaErrorInvalidValue);
    Pool &P = pool();
    std::lock_guard<std::mutex> launch_lk(P.launch_mu);
    P.ensure_config();
    Launch L{body, ctx, grid, block, smem, 0, {}};
    uint64_t total = (uint64_t)grid.x * grid.y * grid.z;
    uint64_t nl = P.launches.fetch_add(1) + 1;
    if (P.seed) {
        uint64_t s = P.seed * 0x9e3779b97f4a7c15ull + nl;
        L.seed = s | 1;
        L.order.resize(total);
        for (uint64_t i = 0; i < total; i++) L.order[i] = (uint32_t)i;
        for (uint64_t i = total - 1; i > 0; i--) std::swap(L.order[i], L.order[splitmix(s) % (i + 1)]);
    }
    int nt = (int)std::min<uint64_t>((uint64_t)P.n_threads, total);
    {
        std::lock_guard<std::mutex> lk(P.mu);
        while (P.workers < nt - 1) {
            int k = P.workers++;
            std::thread([k] { pool().worker(k); }).detach();
        }
        P.job = &L;
        P.total = total;
        P.next.store(0);
        P.job_workers = nt - 1;
        P.pending = nt - 1;
        P.gen++;
    }
    P.cv.notify_all();
    P.run_blocks();
    {
        std::unique_lock<std::mutex> lk(P.mu);
        P.done_cv.wait(lk, [&] { return P.pending == 0; });
        P.job = nullptr;
    }
    return cudaSuccess;
}

} // namespace tcu_emu

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    }
    return "unrecognized error code";
}

cudaError_t cudaGetLastError(void) {
    cudaError_t e = tcu_emu::t_last_error;
    tcu_emu::t_last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return tcu_emu::t_last_error; }

extern "C" void tcu_emu_configure(int n_threads, uint64_t shuffle_seed) {
    tcu_emu::Pool &P = tcu_emu::pool();
    std::lock_guard<std::mutex> lk(P.launch_mu);
    P.n_threads = std::max(1, std::min(n_threads, 64));
    P.seed = shuffle_seed;
}
extern "C" int tcu_emu_threads(void) {
    tcu_emu::Pool &P = tcu_emu::pool();
    std::lock_guard<std::mutex> lk(P.launch_mu);
    P.ensure_config();
    return P.n_threads;
}
extern "C" uint64_t tcu_emu_launch_count(void) { return tcu_emu::pool().launches.load(); }
