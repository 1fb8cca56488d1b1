/* test_env.c - te_cpu_prepare_env: started without OPENBLAS_CORETYPE and
 * OMP_WAIT_POLICY, the program must come back (re-executed once) with both
 * set, and OpenBLAS must then report the SkylakeX kernels on AVX-512 CPUs
 * (Debian's 0.3.21 otherwise falls back to SSE3 "Prescott" on this CPU). */
#include "te_test.h"
#include <cblas.h>

int main(int argc, char **argv) {
    int first = getenv("TE_ENV_PREPARED") == NULL;
    te_cpu_prepare_env(argc, argv);
    TT_CHECK(!first || getenv("TE_NO_REEXEC"), "prepare_env returned without re-executing");
    TT_CHECK(getenv("OMP_WAIT_POLICY") && !strcmp(getenv("OMP_WAIT_POLICY"), "PASSIVE"), "OMP_WAIT_POLICY not set");
    if (te_cpu_detect_isa() == TE_ISA_AVX512) {
        TT_CHECK(getenv("OPENBLAS_CORETYPE") && !strcmp(getenv("OPENBLAS_CORETYPE"), "SkylakeX"), "OPENBLAS_CORETYPE not set");
        TT_CHECK(!strcmp(openblas_get_corename(), "SkylakeX"), "OpenBLAS core is %s", openblas_get_corename());
    }
    printf("openblas core %s, OMP_WAIT_POLICY=%s\n", openblas_get_corename(), getenv("OMP_WAIT_POLICY"));
    return tt_done("engine_env");
}
