/* bench_fma.c - the machine's fp32 ceiling: 16 independent zmm FMA chains,
 * on 1 thread and on all threads. Every other engine bench reports its
 * fraction of this number, measured in its own run. */
#include "bench_util.h"
#include <unistd.h>

int main(int argc, char **argv) {
    te_cpu_prepare_env(argc, argv);
    int n = argc > 1 ? atoi(argv[1]) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    printf("fma peak 1 thread : %7.1f GFLOP/s\n", bu_fma_peak(1));
    printf("fma peak %d threads: %7.1f GFLOP/s\n", n, bu_fma_peak(n));
    return 0;
}
