/* device.cu - device queries for the worker (see device.h). */
#include "device.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdio.h>
#include <string.h>

extern "C" int tcu_device_count(char *err, size_t errlen) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) return 0;
    if (e != cudaSuccess) {
        snprintf(err, errlen, "cudaGetDeviceCount: %s", cudaGetErrorString(e));
        return -1;
    }
    return n;
}

extern "C" int tcu_device_query(int index, tcu_device_info *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, index);
    if (e != cudaSuccess) {
        snprintf(err, errlen, "cuda:%d: %s", index, cudaGetErrorString(e));
        return -1;
    }
    out->index = index;
    snprintf(out->name, sizeof out->name, "%s", p.name);
    out->total_bytes = p.totalGlobalMem;
    out->cc_major = p.major;
    out->cc_minor = p.minor;
    out->multiprocessors = p.multiProcessorCount;
    e = cudaSetDevice(index);
    if (e == cudaSuccess) e = cudaMemGetInfo(&out->free_bytes, &out->total_bytes);
    if (e != cudaSuccess) {
        snprintf(err, errlen, "cuda:%d: %s", index, cudaGetErrorString(e));
        return -1;
    }
    return 0;
}

extern "C" void tcu_library_versions(int *runtime, int *cublas, size_t *cudnn) {
    *runtime = 0;
    cudaRuntimeGetVersion(runtime);
    *cublas = 0;
    cublasGetProperty(MAJOR_VERSION, cublas);
    int minor = 0;
    cublasGetProperty(MINOR_VERSION, &minor);
    *cublas = *cublas * 1000 + minor;
    *cudnn = cudnnGetVersion();
}
