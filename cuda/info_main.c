/* info_main.c - tessera-cuda-info: lists the CUDA devices a worker could use
 * (--device cuda:N) and the library versions this build links. */
#include "device.h"

#include <stdio.h>

int main(void) {
    int rt, cublas;
    size_t cudnn;
    tcu_library_versions(&rt, &cublas, &cudnn);
    printf("CUDA runtime %d, cuBLAS %d, cuDNN %zu\n", rt, cublas, cudnn);
    char err[512];
    int n = tcu_device_count(err, sizeof err);
    if (n < 0) {
        fprintf(stderr, "tessera-cuda-info: %s\n", err);
        return 1;
    }
    if (n == 0) printf("no CUDA devices\n");
    for (int i = 0; i < n; i++) {
        tcu_device_info d;
        if (tcu_device_query(i, &d, err, sizeof err)) {
            fprintf(stderr, "tessera-cuda-info: %s\n", err);
            return 1;
        }
        printf("cuda:%d  %s  sm_%d%d  %d SMs  %.1f GiB total, %.1f GiB free\n", i, d.name, d.cc_major, d.cc_minor,
               d.multiprocessors, d.total_bytes / 1073741824.0, d.free_bytes / 1073741824.0);
    }
    return 0;
}
