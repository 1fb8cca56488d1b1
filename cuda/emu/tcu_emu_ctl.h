/* tcu_emu_ctl.h - C interface to the host emulator's scheduler (tests set
 * the number of OS threads and the block order here). Plain C, so C tests
 * can drive kernels compiled under the emulator.
 *
 * Defaults come from the environment at the first launch:
 *   TCU_EMU_THREADS  OS threads running blocks (default: online CPUs, max 16)
 *   TCU_EMU_SHUFFLE  non-zero seed: run blocks (and warps inside a block, at
 *                    each barrier round) in a pseudo-random order */
#ifndef TCU_EMU_CTL_H
#define TCU_EMU_CTL_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* n_threads >= 1; shuffle_seed 0 = grid order (blockIdx.x fastest), else a
 * seeded permutation that changes at every launch. */
void tcu_emu_configure(int n_threads, uint64_t shuffle_seed);
int tcu_emu_threads(void);
/* Launches and fibers run since start (for tests and benches). */
uint64_t tcu_emu_launch_count(void);

#ifdef __cplusplus
}
#endif
#endif
