/*
 * sampler_unipc.c -- UniPC, NOT IMPLEMENTED YET.
 *
 * A1111 runs UniPC as a timestep sampler (sd_samplers_timesteps_impl.unipc):
 * NoiseScheduleVP('discrete', alphas_cumprod), predict_x0, variant bh1,
 * skip type time_uniform (t from 1 to 1/1000, steps+1 points), order 3,
 * lower_order_final, model called at t_input = (t - 1/1000) * 1000.
 * Through the sigma-space callback the model call at fractional t_input is
 * exact with sigma = tsm_t_to_sigma(t_input) and x_k = x_vp *
 * sqrt(1 + sigma^2) (the pipeline then feeds x_vp at timestep t_input);
 * eps = (x_k - D) / sigma.  Until the bh1/bh2 predictor-corrector is ported
 * this returns TSM_ERR_UNSUPPORTED.
 */
#include "sampler_internal.h"

int tsm__run_unipc(const tsm__run *r, float *x)
{
    (void)r;
    (void)x;
    return TSM_ERR_UNSUPPORTED;
}
