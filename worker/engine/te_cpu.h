/* te_cpu.h - the CPU backend: oneDNN for convolution and matmul (measured
 * faster than OpenBLAS on all but one SD shape, docs/PERF.md), hand-written
 * AVX-512 / AVX2 / scalar kernels for everything else, chosen at run time.
 *
 * Threads: our kernels run on a pthread pool inside the backend object;
 * oneDNN runs on its OpenMP team (Debian's libdnnl uses libgomp), capped to
 * the same thread count. Use the backend from the thread that created it.
 *
 * Environment: call te_cpu_prepare_env(argc, argv) first thing in main()
 * (before any oneDNN/OpenBLAS call). It sets OMP_WAIT_POLICY=PASSIVE (so the
 * OpenMP workers sleep instead of spinning for ~ms between convolutions and
 * stealing the cores from our pool) and OPENBLAS_CORETYPE=SkylakeX on
 * AVX-512 machines (Debian's OpenBLAS 0.3.21 does not know Emerald Rapids and
 * would run SSE3 kernels 6x slower), and re-executes the program once via
 * /proc/self/exe because both libraries read these in load-time constructors.
 * Variables already set by the user are respected; TE_NO_REEXEC=1 disables
 * the re-exec (e.g. under valgrind). */
#ifndef TE_CPU_H
#define TE_CPU_H
#include "te_backend.h"

typedef enum te_cpu_isa { TE_ISA_SCALAR = 0, TE_ISA_AVX2 = 1, TE_ISA_AVX512 = 2 } te_cpu_isa;

typedef enum te_conv_algo {
    TE_CONV_DEFAULT = 0,   /* $TE_CONV_ALGO=direct|winograd, else direct */
    TE_CONV_DIRECT,        /* direct (brgemm) convolution: f32-exact within 1e-5 */
    TE_CONV_WINOGRAD       /* 3x3 stride-1 convs with >= 256 input channels through oneDNN's
                              Winograd kernels (1.5-2.6x faster on SD shapes; error <= 4e-6 of
                              max|y| measured; needs a backend workspace of 2 blocked activations
                              outside the arena). $TE_CONV_ALGO=winograd-all drops the channel rule. */
} te_conv_algo;

typedef enum te_weight_precision {
    TE_WEIGHTS_DEFAULT = 0, /* $TE_WEIGHTS=bf16 selects bf16, else f32 */
    TE_WEIGHTS_F32,         /* conv/linear in f32: exact (the golden tests' 1e-4) */
    TE_WEIGHTS_BF16         /* opt-in: models store conv/linear weights in bf16 (half the memory; from f16
                               checkpoints this drops 3 mantissa bits, relative error <= 2^-9 per weight) and
                               the convs/linears run with bf16 activations and f32 accumulation (oneDNN
                               AMX / AVX512-BF16 kernels). Errors measured: docs/PERF.md. */
} te_weight_precision;

typedef struct te_cpu_options {
    int n_threads;       /* 0 = all online CPUs (or $TE_THREADS) */
    int isa;             /* -1 = best supported, or $TE_CPU_ISA=scalar|avx2|avx512 */
    te_conv_algo conv;   /* see te_conv_algo */
    te_weight_precision weights;  /* see te_weight_precision */
} te_cpu_options;

te_status te_cpu_backend_create(const te_cpu_options *opt, te_backend **out, char *err, size_t errlen);
te_cpu_isa te_cpu_backend_isa(const te_backend *be);
int te_cpu_backend_threads(const te_backend *be);
int te_cpu_backend_winograd(const te_backend *be);
const char *te_cpu_isa_name(te_cpu_isa isa);
/* Best ISA this CPU supports. */
te_cpu_isa te_cpu_detect_isa(void);

/* See above. Returns 0 normally; only returns after a failed re-exec. */
int te_cpu_prepare_env(int argc, char **argv);

#endif
