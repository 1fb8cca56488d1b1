#!/usr/bin/env python3
"""Generate tests/golden/samplers/samplers.bin: reference sigma schedules and
final latents of the A1111 samplers, for tests/unit/test_samplers.c.

Run by hand with the reference venv (torch, k-diffusion 0.1.1.post1 from PyPI
installed with --no-deps, plus torchsde, torchdiffeq, scipy):
    /root/ref-venv/bin/python tests/golden/make_sampler_golden.py

References:
  * k-diffusion's own sampling.py functions (sample_euler, ..._3m_sde) run
    unchanged; k_diffusion/__init__.py is bypassed (it imports training
    deps) by loading k_diffusion.sampling under a stub package.
  * schedules: k-diffusion get_sigmas_karras/exponential/polyexponential and
    the discrete-model get_sigmas / sigma_to_t / t_to_sigma of
    k_diffusion.external.DiscreteSchedule; the other A1111 schedulers
    (sgm_uniform, kl_optimal, align_your_steps, simple, normal, ddim, beta)
    written here from the description in shared/reference/a1111-compat.md
    and sd_schedulers.py's math (scipy.stats.beta.ppf for Beta).
  * LCM (A1111's sample_lcm), DDIM and PLMS (A1111's timestep samplers)
    written here from their published math.
Everything runs in float64 (torch default dtype set to float64, and
t_to_sigma without its float32 cast), so the fixtures are the exact math;
A1111 runs float32 and differs from these by float32 rounding only.

Denoisers are analytic, no weights: "gauss" is the exact denoiser of data
x0 ~ N(mu_k, s^2) per element, D = (x s^2 + mu sigma^2) / (s^2 + sigma^2);
"tanh" is a nonlinear one, D = mu_k + 0.7 tanh(x c_in + 0.3 mu_k) (c_in =
1/sqrt(1+sigma^2)).  mu_k = 0.5 sin(0.37 k), s = 0.8.  Initial noise and
every per-step noise are fixed tensors; the noise sampler / randn_like (as
A1111 hijacks it) return them in order, and the C test's noise callback
returns the same list in the same order.

File layout (little endian):
  "TSG1" u32 n, u32 nnoise
  f32[n] initial noise, f32[nnoise][n] per-step noise
  u32 nsched; per case: u8 scheduler, u8 discard, u16 steps, u16 count, f64[count]
  u32 ncase;  per case: u8 sampler, u8 denoiser (0 gauss, 1 tanh),
              u8 scheduler (0 = sampler default), u8 pad, u16 steps,
              f64 eta (-1 = default), f64 s_churn, u32 noises used, f32[n] final
"""
import importlib.util
import math
import os
import struct
import sys
import types

import numpy as np
import torch
from scipy import stats

torch.set_default_dtype(torch.float64)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "samplers", "samplers.bin")

# ---- load k_diffusion.sampling / external without k_diffusion/__init__ ----
spec = importlib.util.find_spec("k_diffusion")
KD = os.path.dirname(spec.origin)
pkg = types.ModuleType("k_diffusion")
pkg.__path__ = [KD]
sys.modules["k_diffusion"] = pkg
utils = types.ModuleType("k_diffusion.utils")


def append_dims(x, target_dims):
    return x[(...,) + (None,) * (target_dims - x.ndim)]


utils.append_dims = append_dims
sys.modules["k_diffusion.utils"] = utils
pkg.utils = utils


def load(name):
    s = importlib.util.spec_from_file_location("k_diffusion." + name, os.path.join(KD, name + ".py"))
    m = importlib.util.module_from_spec(s)
    sys.modules["k_diffusion." + name] = m
    s.loader.exec_module(m)
    setattr(pkg, name, m)
    return m


K = load("sampling")
EXT = load("external")

# ---- SD schedule ----
betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
ac = torch.cumprod(1.0 - betas, dim=0)


class Disc(EXT.DiscreteSchedule):
    def t_to_sigma(self, t):  # float64 (k-diffusion casts t to float32)
        t = torch.as_tensor(t, dtype=torch.float64)
        low, high, w = t.floor().long(), t.ceil().long(), t.frac()
        return ((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]).exp()


MODEL = Disc(((1 - ac) / ac) ** 0.5, False)
SMIN, SMAX = MODEL.sigmas[0].item(), MODEL.sigmas[-1].item()

SCHED = ["automatic", "uniform", "karras", "exponential", "polyexponential", "sgm_uniform",
         "kl_optimal", "align_your_steps", "simple", "normal", "ddim", "beta"]
AYS = [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029]


def sched_sigmas(name, n):
    T = torch.tensor
    if name in ("uniform", "automatic"):
        return MODEL.get_sigmas(n)
    if name == "karras":
        return K.get_sigmas_karras(n, SMIN, SMAX, rho=7.0)
    if name == "exponential":
        return K.get_sigmas_exponential(n, SMIN, SMAX)
    if name == "polyexponential":
        return K.get_sigmas_polyexponential(n, SMIN, SMAX, rho=1.0)
    if name in ("sgm_uniform", "normal"):
        start, end = MODEL.sigma_to_t(T(SMAX)), MODEL.sigma_to_t(T(SMIN))
        ts = torch.linspace(start.item(), end.item(), n + 1)[:-1] if name == "sgm_uniform" \
            else torch.linspace(start.item(), end.item(), n)
        return T([MODEL.t_to_sigma(t).item() for t in ts] + [0.0])
    if name == "kl_optimal":
        amin, amax = math.atan(SMIN), math.atan(SMAX)
        i = torch.arange(n + 1, dtype=torch.float64)
        return torch.tan(i / n * amin + (1.0 - i / n) * amax)
    if name == "align_your_steps":
        if n == len(AYS):
            return T(AYS + [0.0])
        xs = np.linspace(0, 1, len(AYS))
        ys = np.log(AYS[::-1])
        new = np.exp(np.interp(np.linspace(0, 1, n), xs, ys))[::-1]
        return T(list(new) + [0.0])
    if name == "simple":
        ss = 1000 / n
        return T([MODEL.sigmas[-(1 + int(x * ss))].item() for x in range(n)] + [0.0])
    if name == "ddim":
        ss = max(1000 // n, 1)
        s = [MODEL.sigmas[x].item() for x in range(1, 1000, ss)][::-1]
        return T(s + [0.0])
    if name == "beta":
        ts = [stats.beta.ppf(x, 0.6, 0.6) for x in 1 - np.linspace(0, 1, n)]
        return T([SMIN + x * (SMAX - SMIN) for x in ts] + [0.0])
    raise ValueError(name)


def a1111_sigmas(name, steps, discard):
    s = sched_sigmas(name, steps + (1 if discard else 0))
    if discard:
        s = torch.cat([s[:-2], s[-1:]])
    return s


# ---- samplers: (name, k-diffusion function or local, default scheduler, discard) ----
SAMPLERS = [
    ("DPM++ 2M", "sample_dpmpp_2m", "karras", False),
    ("DPM++ SDE", "sample_dpmpp_sde", "karras", False),
    ("DPM++ 2M SDE", "sample_dpmpp_2m_sde", "exponential", False),
    ("DPM++ 2M SDE Heun", "sample_dpmpp_2m_sde", "exponential", False),
    ("DPM++ 2S a", "sample_dpmpp_2s_ancestral", "karras", False),
    ("DPM++ 3M SDE", "sample_dpmpp_3m_sde", "exponential", True),
    ("Euler a", "sample_euler_ancestral", None, False),
    ("Euler", "sample_euler", None, False),
    ("LMS", "sample_lms", None, False),
    ("Heun", "sample_heun", None, False),
    ("DPM2", "sample_dpm_2", "karras", True),
    ("DPM2 a", "sample_dpm_2_ancestral", "karras", True),
    ("DDIM", "ddim", None, False),
    ("PLMS", "plms", None, False),
    ("UniPC", "unipc", None, False),
    ("LCM", "lcm", None, False),
]
SIDX = {s[0]: i for i, s in enumerate(SAMPLERS)}

N = 2 * 4 * 8 * 8
SHAPE = (2, 4, 8, 8)
NNOISE = 48
gen = np.random.default_rng(20240607)
init_noise = gen.standard_normal(N).astype(np.float32)
noises = gen.standard_normal((NNOISE, N)).astype(np.float32)
kk = np.arange(N, dtype=np.float64)
MU = torch.tensor(0.5 * np.sin(0.37 * kk)).reshape(SHAPE)
S2 = 0.8 * 0.8


def make_denoiser(kind):
    def D(x, sigma):
        sig = torch.as_tensor(sigma, dtype=torch.float64)
        if sig.ndim == 0:
            sig = sig.expand(x.shape[0])
        sig = sig.reshape(-1, 1, 1, 1)
        if kind == 0:
            return (x * S2 + MU * sig ** 2) / (S2 + sig ** 2)
        return MU + 0.7 * torch.tanh(x / (1 + sig ** 2) ** 0.5 + 0.3 * MU)
    return D


class NoiseList:
    def __init__(self):
        self.i = 0

    def next(self, *_):
        if self.i >= NNOISE:
            raise RuntimeError("noise list exhausted")
        t = torch.tensor(noises[self.i].astype(np.float64)).reshape(SHAPE)
        self.i += 1
        return t


class Hijack:  # A1111's TorchHijack: randn_like -> the image RNG
    def __init__(self, nl):
        self.nl = nl

    def __getattr__(self, item):
        if item == "randn_like":
            return lambda x: self.nl.next()
        return getattr(torch, item)


def lcm(model, x, sigmas, nl):
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        x = model(x, sigmas[i] * s_in)
        if sigmas[i + 1] > 0:
            x = x + sigmas[i + 1] * nl.next()
    return x


def a1111_timesteps(steps):
    return [min(t + 1, 999) for t in range(0, 1000, 1000 // steps)]


def eps_model(D):
    # eps from the sigma-space denoiser at integer timestep t, VP input x
    def e(x, t):
        a = ac[t].item()
        sigma = MODEL.sigmas[t].item()
        xk = x / a ** 0.5
        return (xk - D(xk, sigma)) / sigma
    return e


def ddim(D, x, ts, eta, nl):
    e = eps_model(D)
    L = len(ts)
    for i in range(L - 1):
        index = L - 1 - i
        a = ac[ts[index]].item()
        ap = ac[ts[index - 1] if index > 0 else 0].item()
        st = eta * math.sqrt((1 - ap) / (1 - a) * (1 - a / ap))
        et = e(x, ts[index])
        px0 = (x - math.sqrt(1 - a) * et) / math.sqrt(a)
        x = math.sqrt(ap) * px0 + math.sqrt(1 - ap - st ** 2) * et
        if st != 0:
            x = x + st * nl.next()
    return x


def plms(D, x, ts):
    e = eps_model(D)
    L = len(ts)
    old = []

    def step(x, et, index):
        a = ac[ts[index]].item()
        ap = ac[ts[index - 1] if index > 0 else 0].item()
        px0 = (x - math.sqrt(1 - a) * et) / math.sqrt(a)
        return math.sqrt(ap) * px0 + math.sqrt(1 - ap) * et

    for i in range(L - 1):
        index = L - 1 - i
        et = e(x, ts[index])
        if len(old) == 0:
            xp = step(x, et, index)
            en = e(xp, ts[max(index - 1, 0)])
            ep = (et + en) / 2
        elif len(old) == 1:
            ep = (3 * et - old[-1]) / 2
        elif len(old) == 2:
            ep = (23 * et - 16 * old[-1] + 5 * old[-2]) / 12
        else:
            ep = (55 * et - 59 * old[-1] + 37 * old[-2] - 9 * old[-3]) / 24
        x = step(x, ep, index)
        old.append(et)
        if len(old) >= 4:
            old.pop(0)
    return x


def run_case(sampler, kind, sched, steps, eta, churn):
    name, fn, dsched, discard = SAMPLERS[sampler]
    D = make_denoiser(kind)
    nl = NoiseList()
    K.torch = Hijack(nl)
    x0 = torch.tensor(init_noise.astype(np.float64)).reshape(SHAPE)
    if fn in ("ddim", "plms"):
        ts = a1111_timesteps(steps)
        out = ddim(D, x0, ts, 0.0 if eta < 0 else eta, nl) if fn == "ddim" else plms(D, x0, ts)
        K.torch = torch
        return out, nl.i
    if fn == "unipc":
        raise ValueError("unipc has no reference here")
    sname = SCHED[sched] if sched else (dsched or "uniform")
    sig = a1111_sigmas(sname, steps, discard)
    x = x0 * sig[0]
    kw = {}
    e = 1.0 if eta < 0 else eta
    if fn == "lcm":
        out = lcm(D, x, sig, nl)
    else:
        f = getattr(K, fn)
        if fn in ("sample_euler", "sample_heun", "sample_dpm_2"):
            kw = dict(s_churn=churn)
        elif fn == "sample_lms":
            kw = dict(order=4)
        elif fn == "sample_dpmpp_2m":
            kw = {}
        else:
            kw = dict(eta=e, noise_sampler=nl.next)
        if name == "DPM++ 2M SDE Heun":
            kw["solver_type"] = "heun"
        out = f(D, x, sig, disable=True, **kw)
    K.torch = torch
    return out, nl.i


def main():
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    b = bytearray(b"TSG1")
    b += struct.pack("<II", N, NNOISE)
    b += init_noise.tobytes() + noises.tobytes()

    scases = []
    for si, name in enumerate(SCHED):
        for steps in (1, 7, 11, 20, 30):
            scases.append((si, 0, steps))
    for si in (1, 2, 3):
        scases.append((si, 1, 10))
    b += struct.pack("<I", len(scases))
    for si, disc, steps in scases:
        s = a1111_sigmas(SCHED[si], steps, disc).numpy().astype(np.float64)
        b += struct.pack("<BBHH", si, disc, steps, len(s)) + s.tobytes()

    cases = []
    for i, (name, fn, _, _) in enumerate(SAMPLERS):
        if fn == "unipc":
            continue
        cases.append((i, 0, 0, 12, -1.0, 0.0))
        cases.append((i, 1, 0, 15, -1.0, 0.0))
    cases += [
        (SIDX["Euler"], 1, 0, 10, -1.0, 2.0),         # churn
        (SIDX["Heun"], 0, 2, 10, -1.0, 1.0),          # churn + karras
        (SIDX["DPM2"], 1, 1, 10, -1.0, 0.5),          # churn + uniform
        (SIDX["Euler a"], 1, 2, 14, 0.5, 0.0),        # eta + karras
        (SIDX["DPM++ 2M"], 1, 1, 20, -1.0, 0.0),      # uniform
        (SIDX["DPM++ 2M"], 0, 9, 10, -1.0, 0.0),      # normal
        (SIDX["DPM++ SDE"], 1, 3, 10, 0.7, 0.0),
        (SIDX["DPM++ 2M SDE"], 1, 2, 16, 0.0, 0.0),   # eta 0 (ODE)
        (SIDX["DPM++ 3M SDE"], 1, 5, 12, -1.0, 0.0),  # sgm uniform
        (SIDX["LMS"], 1, 2, 18, -1.0, 0.0),
        (SIDX["DDIM"], 1, 0, 30, 0.0, 0.0),           # 30 steps: 31 timesteps
        (SIDX["DDIM"], 0, 0, 10, 0.6, 0.0),           # eta > 0
        (SIDX["PLMS"], 1, 0, 25, -1.0, 0.0),
        (SIDX["LCM"], 1, 2, 6, -1.0, 0.0),
    ]
    b += struct.pack("<I", len(cases))
    for sampler, kind, sched, steps, eta, churn in cases:
        out, used = run_case(sampler, kind, sched, steps, eta, churn)
        f = out.reshape(-1).numpy().astype(np.float32)
        b += struct.pack("<BBBBHddI", sampler, kind, sched, 0, steps, eta, churn, used) + f.tobytes()
        print(f"{SAMPLERS[sampler][0]:18s} kind={kind} sched={SCHED[sched]:12s} steps={steps:2d} "
              f"eta={eta:4.1f} churn={churn} noises={used} |x|={float(out.abs().mean()):.4f}")
    with open(OUT, "wb") as fh:
        fh.write(b)
    print(OUT, len(b), "bytes")


if __name__ == "__main__":
    main()
