/* device.h - CUDA devices as the worker sees them: count, name, memory, and
 * the versions of the runtime and libraries the build links (cuBLAS, cuDNN).
 * Every call returns a status; failures carry the CUDA error text. */
#ifndef TESSERA_CUDA_DEVICE_H
#define TESSERA_CUDA_DEVICE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int index;
    char name[256];
    size_t total_bytes;
    size_t free_bytes;
    int cc_major, cc_minor;
    int multiprocessors;
} tcu_device_info;

/* Number of devices (0 when none); -1 with err on a driver/runtime failure. */
int tcu_device_count(char *err, size_t errlen);
int tcu_device_query(int index, tcu_device_info *out, char *err, size_t errlen);
/* Versions: runtime, cuBLAS, cuDNN (as the libraries report them, no GPU needed). */
void tcu_library_versions(int *runtime, int *cublas, size_t *cudnn);

#ifdef __cplusplus
}
#endif
#endif
