#!/usr/bin/env python3
"""Generate tests/golden/samplers/unipc.bin: reference final latents of
A1111 1.10's UniPC sampler, for tests/unit/test_unipc.c.

Run by hand with the reference venv (numpy; torch + diffusers only for the
validation step):
    /root/ref-venv/bin/python tests/golden/make_unipc_golden.py

What is computed
----------------
An independent float64 re-implementation of multistep UniPC (Zhao et al.
2023, "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of
Diffusion Models"), data-prediction form (predict_x0=True), B(h) = h ("bh1")
or e^h - 1 ("bh2"), run the way A1111 1.10 runs it
(sd_samplers_timesteps_impl.unipc):
  * NoiseScheduleVP('discrete'): log alpha_t piecewise linear in t over the
    knots t_j = (j + 1) / 1000 with values 0.5 * log(alphas_cumprod[j]);
    sigma_t = sqrt(1 - alpha_t^2), lambda_t = log alpha_t - log sigma_t.
  * UniPC step count M = len(A1111 timesteps) = len(range(0, 1000,
    1000 // steps)) (so 30 steps run M = 31; 20 run 20).
  * time_uniform: t_i = linspace(1, 1/1000, M + 1); the model sees
    t_input = (t - 1/1000) * 1000 (fractional), as eps ("noise" model).
  * warm-up steps i < order use order i, later steps min(order, M + 1 - i)
    with lower_order_final; every step but the last runs the corrector UniC
    with the model value at the predicted point, which is then reused as
    the next step's history value; the last step skips the corrector (and
    so the model call): M model calls in all.
  * the result is x at t = 1/1000 (VP space, no denoise_to_zero).

The model is the Tessera sigma-space bridge around an analytic denoiser D
(the "gauss" and "tanh" denoisers of make_sampler_golden.py): at t_input the
denoiser gets sigma_k = k-diffusion t_to_sigma(t_input) (log-sigma
interpolation, so that sigma_to_t(sigma_k) = t_input exactly: the UNet sees
A1111's fractional timestep) and x_k = x_vp * sqrt(1 + sigma_k^2) (so that
x_k * c_in(sigma_k) = x_vp: the UNet sees A1111's input), and
eps = (x_k - D(x_k, sigma_k)) / sigma_k.  The solver itself uses the VP
schedule's alpha_t/sigma_t (log-alpha interpolation), as A1111 does.
printed "bridge" numbers: how far the VP schedule's own sigma
(sigma_t / alpha_t) is from sigma_k at the fractional times, and the
UNet-time error one would get by handing the callback that sigma instead.

Validation (against diffusers 0.42.1 UniPCMultistepScheduler)
-------------------------------------------------------------
diffusers runs UniPC on integer timesteps only.  With M in {3, 9, 27, 37}
(M divides 999) every t_input = 999 - 999 i / M is an integer, and
diffusers' "linspace" spacing gives exactly these timesteps; with
final_sigmas_type="sigma_min" its last target is timestep 0 (= t 1/1000).
Its sigmas (stored float32) are replaced by float64 ones from the same
float64 alphas_cumprod, and its model is given the same eps.  Both then
define the same computation.  Result of the last run (max |diff| / max |x|
over the final latents, orders 1-3, bh1/bh2, lower_order_final on/off, both
denoisers, M in {3, 9, 27, 37}; 96 runs):
    max relative difference 1.2e-14  (printed again by every run)
i.e. equal up to float64 rounding.  The only difference in definition found
is the warm-up order: diffusers uses min(order, M + 1 - i, i), the official
code (and A1111) uses i during warm-up; they differ only for order >= 4
with M < 2 * order - 1 (not covered by the validation, covered here the
official way).  Not validated by diffusers: the log-alpha interpolation at
fractional times (checked here against numpy.interp: 8.9e-16) and the A1111
step count rule.  A one-off extra check (not kept in the tree) ran a float64
transcription of A1111's uni_pc.py (NoiseScheduleVP / interpolate_fn /
multistep_uni_pc_bh_update / sample) on the same bridge model at the
fractional times: A1111 steps {1,3,4,5,7,10,20,30}, orders 1-4, bh1/bh2,
lower_order_final on/off, both denoisers (232 runs): max relative
difference 1.5e-13.

Bridge numbers (printed): at the fractional times of M in {5,10,20,31,50}
the VP schedule's sigma_t/alpha_t differs from k-diffusion's t_to_sigma by
up to 4.7e-5 relative; handing the callback sigma_t/alpha_t would make the
pipeline's UNet timestep sigma_to_t(.) miss A1111's t_input by up to 0.0028
timesteps, hence the k-diffusion sigma in the bridge.

File layout (little endian):
  "TSU1" u32 n, f32[n] initial noise
  u32 nsig; f64[nsig] sigmas the denoiser gets for A1111 steps = 20,
            order 3 (in call order), f64[nsig] their t_input
  u32 ncase; per case: u8 denoiser (0 gauss, 1 tanh), u8 order, u8 bh2,
             u8 lower_order_final, u16 A1111 steps, u16 model calls,
             f64[n] final latent
"""
import math
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "samplers", "unipc.bin")

NT = 1000


def torch_linspace(start, end, n):
    """torch.linspace's arithmetic (first half from start, second from end)."""
    if n == 1:
        return np.array([start], dtype=np.float64)
    step = (end - start) / (n - 1)
    i = np.arange(n)
    return np.where(i < n // 2, start + step * i, end - step * (n - 1 - i))


# ---- SD schedule (float64) ----
BETAS = torch_linspace(0.00085 ** 0.5, 0.012 ** 0.5, NT) ** 2
AC = np.cumprod(1.0 - BETAS)
KSIG = np.sqrt((1.0 - AC) / AC)
KLOGSIG = np.log(KSIG)


def kd_t_to_sigma(t):
    """k-diffusion DiscreteSchedule.t_to_sigma (log-sigma interpolation)."""
    t = min(max(t, 0.0), NT - 1.0)
    lo = math.floor(t)
    hi = math.ceil(t)
    w = t - lo
    return math.exp((1 - w) * KLOGSIG[lo] + w * KLOGSIG[hi])


def kd_sigma_to_t(sigma):
    ls = math.log(sigma)
    cnt = int(np.sum(KLOGSIG <= ls))
    low = min(max(cnt - 1, 0), NT - 2)
    lo, hi = KLOGSIG[low], KLOGSIG[low + 1]
    w = min(max((lo - ls) / (lo - hi), 0.0), 1.0)
    return (1 - w) * low + w * (low + 1)


# ---- VP schedule of UniPC, discrete: log alpha piecewise linear in t ----
T_KNOTS = (np.arange(NT) + 1.0) / NT
LOGA_KNOTS = 0.5 * np.log(AC)


def vp_log_alpha(t):
    # position on the knot grid; the segment [j, j+1], j clamped to [0, NT-2]
    # (outside [1/NT, 1] the end segments extend linearly)
    p = t * NT - 1.0
    j = min(max(int(math.floor(p)), 0), NT - 2)
    w = p - j
    return (1.0 - w) * LOGA_KNOTS[j] + w * LOGA_KNOTS[j + 1]


def vp(t):
    la = vp_log_alpha(t)
    alpha = math.exp(la)
    sigma = math.sqrt(-math.expm1(2.0 * la))
    lam = la - math.log(sigma)
    return alpha, sigma, lam


def model_time(t):
    return (t - 1.0 / NT) * NT


# ---- analytic denoisers (as make_sampler_golden.py) ----
SHAPE = (2, 4, 4, 4)
N = int(np.prod(SHAPE))
MU = 0.5 * np.sin(0.37 * np.arange(N, dtype=np.float64))
S2 = 0.8 * 0.8


def denoiser(kind):
    def D(x, sigma):
        if kind == 0:
            return (x * S2 + MU * sigma ** 2) / (S2 + sigma ** 2)
        return MU + 0.7 * np.tanh(x / math.sqrt(1 + sigma ** 2) + 0.3 * MU)
    return D


class BridgeModel:
    """eps(x_vp, t) through the sigma-space denoiser; records the calls."""

    def __init__(self, D):
        self.D = D
        self.sigmas = []
        self.tinputs = []

    def eps(self, x, t_input):
        s = kd_t_to_sigma(t_input)
        self.sigmas.append(s)
        self.tinputs.append(t_input)
        xk = x * math.sqrt(1.0 + s * s)
        return (xk - self.D(xk, s)) / s


# ---- UniPC, written from the paper ----
def phis(z, kmax):
    """phi_1..phi_kmax at z: phi_1 = (e^z - 1)/z, phi_{k+1} = (phi_k - 1/k!)/z."""
    out = [math.expm1(z) / z]
    fact = 1.0
    for k in range(1, kmax):
        out.append((out[-1] - 1.0 / fact) / z)
        fact *= k + 1
    return out


def unipc_coeffs(rs, h, p, bh2):
    """Right-hand side b_i = i! * z * phi_{i+1}(z) / B(z), z = -h, i = 1..p, and
    the Vandermonde-style matrix R[i][k] = r_k^i (r_p = 1)."""
    z = -h
    B = math.expm1(z) if bh2 else z
    ph = phis(z, p + 1)
    b = np.array([math.factorial(i) * z * ph[i] / B for i in range(1, p + 1)])
    R = np.array([[r ** i for r in rs] for i in range(p)])
    return b, R, B


def unipc_step(model_x0, x, hist, t, p, corrector, bh2):
    """One UniPC-p step from hist[-1] = (t_s, m_s) to t.
    hist: the last p (t, x0-model) pairs, oldest first.  Returns (x_t, m_t)."""
    t_s, m_s = hist[-1]
    a_s, s_s, l_s = vp(t_s)
    a_t, s_t, l_t = vp(t)
    h = l_t - l_s
    # earlier points: r_k = (lambda_k - lambda_s) / h (negative), D_k = (m_k - m_s) / r_k
    rs, Ds = [], []
    for k in range(1, p):
        t_k, m_k = hist[-(k + 1)]
        r = (vp(t_k)[2] - l_s) / h
        rs.append(r)
        Ds.append((m_k - m_s) / r)
    rs.append(1.0)
    b, R, B = unipc_coeffs(rs, h, p, bh2)
    # first-order part (DPM-Solver++ 1 / DDIM in x0 form)
    base = (s_t / s_s) * x - a_t * math.expm1(-h) * m_s
    # UniP: order-p predictor from the p-1 earlier differences
    if p == 1:
        x_pred = base
    else:
        a = np.array([0.5]) if p == 2 else np.linalg.solve(R[:-1, :-1], b[:-1])
        x_pred = base - a_t * B * sum(a[k] * Ds[k] for k in range(p - 1))
    if not corrector:
        return x_pred, None
    # UniC: order-(p+1) corrector adding the new model value at x_pred
    m_t = model_x0(x_pred, t)
    c = np.array([0.5]) if p == 1 else np.linalg.solve(R, b)
    res = c[-1] * (m_t - m_s)
    for k in range(p - 1):
        res = res + c[k] * Ds[k]
    return base - a_t * B * res, m_t


def a1111_unipc_steps(steps, discard=False):
    s = steps + (1 if discard else 0)
    return len(range(0, NT, NT // s))


def unipc_sample(eps_fn, x, M, order, bh2, lower_order_final):
    if M < order:
        raise ValueError("UniPC order must be < sampling steps")

    def model_x0(xv, t):
        a, s, _ = vp(t)
        return (xv - s * eps_fn(xv, model_time(t))) / a

    ts = torch_linspace(1.0, 1.0 / NT, M + 1)
    hist = [(ts[0], model_x0(x, ts[0]))]
    for i in range(1, M + 1):
        if i < order:
            p = i
        else:
            p = min(order, M + 1 - i) if lower_order_final else order
        last = i == M
        x, m = unipc_step(model_x0, x, hist[-p:], ts[i], p, not last, bh2)
        if not last:
            hist.append((ts[i], m))
            hist = hist[-order:]
    return x


# ---- validation against diffusers ----
def validate():
    import torch
    from diffusers import UniPCMultistepScheduler
    worst = 0.0
    runs = 0
    init = np.random.default_rng(7).standard_normal(N)
    for M in (3, 9, 27, 37):
        for order in (1, 2, 3):
            if order > M:
                continue
            for bh2 in (False, True):
                for lof in (True, False):
                    for kind in (0, 1):
                        model = BridgeModel(denoiser(kind))
                        ref = unipc_sample(model.eps, init.copy(), M, order, bh2, lof)
                        sch = UniPCMultistepScheduler(
                            num_train_timesteps=NT, beta_schedule="scaled_linear", beta_start=0.00085,
                            beta_end=0.012, solver_order=order, prediction_type="epsilon",
                            predict_x0=True, solver_type="bh2" if bh2 else "bh1",
                            lower_order_final=lof, timestep_spacing="linspace",
                            final_sigmas_type="sigma_min")
                        sch.set_timesteps(M)
                        tsteps = [int(v) for v in sch.timesteps]
                        want = [round(model_time(t)) for t in torch_linspace(1.0, 1.0 / NT, M + 1)]
                        assert tsteps == want[:-1], (tsteps, want)
                        sch.sigmas = torch.tensor([KSIG[t] for t in tsteps] + [KSIG[0]],
                                                  dtype=torch.float64)
                        sample = torch.tensor(init.copy(), dtype=torch.float64).reshape(SHAPE)
                        m2 = BridgeModel(denoiser(kind))
                        for t in tsteps:
                            e = m2.eps(sample.reshape(-1).numpy(), float(t))
                            sample = sch.step(torch.tensor(e).reshape(SHAPE), t, sample).prev_sample
                        got = sample.reshape(-1).numpy()
                        d = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
                        worst = max(worst, d)
                        runs += 1
    print(f"validation vs diffusers UniPCMultistepScheduler: {runs} runs, "
          f"max relative difference {worst:.2g}")
    if worst > 1e-10:
        sys.exit("validation failed")
    # the VP log-alpha interpolation against numpy.interp
    tt = np.linspace(1.0 / NT, 1.0, 12345)
    d = max(abs(vp_log_alpha(t) - np.interp(t, T_KNOTS, LOGA_KNOTS)) for t in tt)
    print(f"VP log-alpha interpolation vs numpy.interp: max abs diff {d:.2g}")
    if d > 1e-12:
        sys.exit("interpolation check failed")


def bridge_report():
    worst_s, worst_t = 0.0, 0.0
    for M in (5, 10, 20, 31, 50):
        for t in torch_linspace(1.0, 1.0 / NT, M + 1):
            ti = model_time(t)
            a, s, _ = vp(t)
            s_vp = s / a
            s_k = kd_t_to_sigma(ti)
            worst_s = max(worst_s, abs(s_vp / s_k - 1))
            worst_t = max(worst_t, abs(kd_sigma_to_t(s_vp) - ti))
    print(f"bridge: VP sigma/alpha vs k-diffusion t_to_sigma at fractional t: max rel diff "
          f"{worst_s:.2g}; sigma_to_t(VP sigma) - t_input: max {worst_t:.2g} timesteps")


def main():
    validate()
    bridge_report()
    gen = np.random.default_rng(20240611)
    init = gen.standard_normal(N).astype(np.float32)
    x_init = init.astype(np.float64)

    b = bytearray(b"TSU1")
    b += struct.pack("<I", N) + init.tobytes()

    # the callback's sigmas for 20 A1111 steps, order 3
    m = BridgeModel(denoiser(0))
    unipc_sample(m.eps, x_init.copy(), a1111_unipc_steps(20), 3, False, True)
    b += struct.pack("<I", len(m.sigmas))
    b += np.array(m.sigmas, dtype=np.float64).tobytes()
    b += np.array(m.tinputs, dtype=np.float64).tobytes()

    cases = []
    for steps in (5, 10, 20):
        for order in (1, 2, 3):
            for bh2 in (0, 1):
                for kind in (0, 1):
                    cases.append((kind, order, bh2, 1, steps))
    cases += [
        (1, 3, 0, 1, 30),   # 31 UniPC steps
        (0, 2, 1, 1, 7),    # 8 UniPC steps
        (1, 3, 0, 1, 3),    # 4 UniPC steps: warm-up meets lower_order_final
        (0, 1, 0, 1, 1),    # a single step, no corrector
        (1, 3, 0, 0, 10),   # lower_order_final off
        (0, 3, 1, 0, 10),
        (1, 4, 0, 1, 12),   # order 4 (A1111's slider allows up to 50)
        (0, 4, 1, 1, 4),    # order 4, M = 4: warm-up order 3 meets the last steps
    ]
    b += struct.pack("<I", len(cases))
    for kind, order, bh2, lof, steps in cases:
        M = a1111_unipc_steps(steps)
        mdl = BridgeModel(denoiser(kind))
        out = unipc_sample(mdl.eps, x_init.copy(), M, order, bool(bh2), bool(lof))
        assert len(mdl.sigmas) == M
        b += struct.pack("<BBBBHH", kind, order, bh2, lof, steps, M) + out.astype(np.float64).tobytes()
        print(f"kind={kind} order={order} {'bh2' if bh2 else 'bh1'} lof={lof} steps={steps:2d} "
              f"M={M:2d} |x|={np.mean(np.abs(out)):.5f}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as fh:
        fh.write(b)
    print(OUT, len(b), "bytes")


if __name__ == "__main__":
    main()
