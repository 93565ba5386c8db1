"""Population annealing (PA), annealed importance sampling (AIS) and the BDMC sandwich.

All three anneal a population of particles through tempered posteriors
p^β(w) ∝ φ(w) exp(−β H(w)), H = nL_n, from β = 0 (the prior, sampled exactly) upward, and read
the partition function off the importance weights (REFERENCE §3.1–3.3):

- :func:`population_annealing` — at each rung reweight by ω_j = exp(−Δβ H(w_j)) (log space),
  Q_k = mean_j ω_j, resample (systematic / multinomial / residual), move at the new β.
  log Ẑ(β_k) = Σ_{l<k} log Q_l (Ẑ is unbiased, log Ẑ biased low by ≈ ρ_f/(2R)). With
  ``betas=None`` the ladder is adaptive: Δβ is found by bisection so that the weight ESS is
  ``target_ess``·R. ``num_runs`` independent runs are combined by Machta's weighted averaging.
- :func:`ais` — the same without resampling (Neal 2001, Jarzynski): log w accumulates,
  log Ẑ = log mean_i w_i.
- :func:`bdmc` — forward AIS (stochastic lower bound) and reverse AIS from an exact posterior
  sample (stochastic upper bound), Grosse, Ghahramani & Adams 2015.

**Moves.** Every MCMC move is a one-chain kernel in the :class:`~slt_thermo.samplers.run.Kernel`
style, vmapped over the particles (and over the independent runs). ``mcmc`` is one of

- ``"hmc"`` (default), ``"mala"``, ``"nuts"``: *population-tuned* kernels. The particles' weighted
  covariance Σ defines the preconditioner C (``precondition="dense"``: chol Σ; ``"diag"``: √diag Σ),
  i.e. the kernels run in whitened coordinates z = C⁻¹u with an identity mass matrix. The step size
  ε (in z) is carried over from rung to rung and nudged after every half-sweep by the mean
  acceptance, log ε += clip(ā − target_accept, ±0.7), so it follows the geometry as β grows
  without any per-rung warmup. **Cross-tuning:** the population moves in two halves (A = the
  first ⌊R/2⌋ particles, B = the rest; resampled indices are sorted, so families stay
  contiguous): A moves with the C of B's current positions, then B with the C of A's new
  positions. The preconditioner of a particle's kernel never depends on that particle's own
  position (only the scalar ε sees its past acceptance, with weight ~1/R). (Tuning every kernel
  from a covariance that includes the particle itself contracts the population by O(1/R) per
  move; over ~50 rungs this biased log Ẑ by +0.5 nats at R = 400 on linear regression with
  d = 10, n = 1000 in development; the cross-tuned halves remove it.) HMC uses ``num_leapfrog`` steps (default ⌈(π/2)/ε⌉, a quarter
  period of a unit Gaussian, at most ``max_leapfrog``) with ε jittered ±20% per particle; MALA is
  the exact Langevin proposal of :mod:`.mala` in whitened coordinates; NUTS is numpyro's, in z,
  with ε set (not adapted) per half-sweep.
- any sampler config with ``.build(target, center, gamma) -> Kernel`` (e.g.
  :class:`~slt_thermo.samplers.nuts.HMCConfig`, :class:`~slt_thermo.samplers.mala.MALAConfig`):
  the kernel is re-initialized at every rung at the new β, so its *own* warmup adaptation runs
  during its first ``config.num_warmup`` steps of each rung (numpyro adapts only while its
  counter is below num_warmup), then it samples with the adapted step size.
- ``exact_sampler=f`` (the "perfect transition" hook of the exact tests): the move is replaced
  by fresh independent draws ``f(key, beta, num) -> params`` (model space, leading axis num),
  which must be jax-traceable with β traced. With it, PA/AIS/BDMC reproduce the closed forms of
  REFERENCE §3.1–3.3 exactly in expectation.

Gradient evaluations are counted exactly (``grad_evals``): for the built-in kernels 1 per particle
per rung (the gradient at the new β) plus the leapfrog steps (HMC: L per sweep, MALA: 1,
NUTS: its tree size). Forward-only energy evaluations are not counted.

**Compilation.** Everything that runs per particle (reweighting, resampling, tuning, all sweeps)
is one jit-compiled function per run, taking β, Δβ and the number of sweeps as traced
arguments; the Python loop is over rungs only.

**Errors.** The within-run standard error of log Ẑ(β_k) is the delta method under perfect mixing,
Var ≈ Σ_{l≤k} (1/ESS_l − 1/R) (so ρ_f ≈ Σ (R/ESS_l − 1), REFERENCE §3.1), a lower bound when the
moves mix imperfectly; the family statistic ρ_t (≈ ρ_f, WMK 2015) is reported alongside. With
``num_runs`` ≥ 2 the reported ``log_z_se`` is the spread of the independent runs
(delta method on log mean_r Ẑ_r), which is honest whatever the mixing.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.flatten_util import ravel_pytree
from scipy.special import logsumexp as _np_logsumexp

from ..errors import InvalidArgumentError, SLTThermoError
from ..results import Estimate, Samples, clean_attrs
from ..target import Target, _check_key
from .run import _leaf_names, _progress_bar, _version

SCHEMES = ("systematic", "multinomial", "residual")
MOVES = ("hmc", "mala", "nuts")
PRECONDITIONS = ("auto", "dense", "diag", "none")
_HALF_PERIOD = 0.5 * math.pi  # HMC trajectory time in whitened coordinates (a quarter period)


class AnnealingStalledError(SLTThermoError):
    """The adaptive schedule could not reach β_max: Δβ underflowed or ``max_rungs`` was hit.

    ``partial`` holds the :class:`AnnealingResult` up to the last rung reached.
    """

    def __init__(self, message, partial=None):
        super().__init__(message)
        self.partial = partial


# ============================================================================== resampling
def _cdf(w):
    c = jnp.cumsum(w)
    return c / c[-1]


def _resample_w(key, w, num, scheme):
    """Indices of ``num`` offspring drawn from normalized weights ``w`` (static scheme)."""
    N = w.shape[0]
    dt = w.dtype
    if scheme == "systematic":
        u = (jax.random.uniform(key, dtype=dt) + jnp.arange(num, dtype=dt)) / num
        return jnp.clip(jnp.searchsorted(_cdf(w), u, side="right"), 0, N - 1)
    if scheme == "multinomial":
        u = jax.random.uniform(key, (num,), dtype=dt)
        return jnp.clip(jnp.searchsorted(_cdf(w), u, side="right"), 0, N - 1)
    if scheme == "residual":
        nw = num * w
        counts = jnp.floor(nw).astype(jnp.int32)
        det = jnp.repeat(jnp.arange(N), counts, total_repeat_length=num)
        res = nw - counts
        total = jnp.sum(res)
        cdf = jnp.cumsum(res) / jnp.where(total > 0, total, 1.0)
        u = jax.random.uniform(key, (num,), dtype=dt)
        extra = jnp.clip(jnp.searchsorted(cdf, u, side="right"), 0, N - 1)
        return jnp.where(jnp.arange(num) < jnp.sum(counts), det, extra)
    raise InvalidArgumentError(f"`resampling` must be one of {SCHEMES}, got {scheme!r}")


def resample(key, log_weights, scheme: str = "systematic", num: int | None = None):
    """Offspring indices for (unnormalized) ``log_weights``: ``num`` (default: as many as
    weights) indices whose expected count for particle i is num·w_i, for every scheme.

    - ``"systematic"``: one uniform, stratified positions (U + j)/num on the weight CDF;
    - ``"multinomial"``: num independent draws;
    - ``"residual"``: ⌊num·w_i⌋ copies, then multinomial on the remainders.
    """
    if scheme not in SCHEMES:
        raise InvalidArgumentError(f"`scheme` must be one of {SCHEMES}, got {scheme!r}")
    lw = jnp.asarray(log_weights)
    if lw.ndim != 1 or lw.shape[0] < 1:
        raise InvalidArgumentError(f"`log_weights` must be 1-D and non-empty, got shape {lw.shape}")
    num = lw.shape[0] if num is None else int(num)
    lw = jnp.where(jnp.isnan(lw), -jnp.inf, lw)
    w = jnp.exp(lw - jax.nn.logsumexp(lw))
    return _resample_w(key, w, num, scheme)


# ============================================================================== static settings
class _Spec(NamedTuple):
    """Static part of a rung function (hashable: part of the compile key)."""

    kind: str  # "hmc" | "mala" | "nuts" | "exact" | "kernel"
    scheme: str  # resampling scheme, or "none" (AIS)
    num_particles: int
    precondition: str  # "dense" | "diag" | "none"
    adapt: bool  # tune from the population (False: take the tuning given per rung)
    num_leapfrog: int  # HMC, 0 = auto
    max_leapfrog: int
    target_accept: float
    jitter: float
    max_tree_depth: int
    config: Any  # a sampler config (kind == "kernel")
    exact_sampler: Any  # kind == "exact"


class _State(NamedTuple):
    u: jax.Array  # (R, D) unconstrained, flattened
    H: jax.Array  # (R,) energies at u
    logw: jax.Array  # (R,) log weights relative to a host-side offset (0 after resampling)
    fam: jax.Array  # (R,) family: index of the initial ancestor
    log_eps: jax.Array  # () step size of the tuned kernels, in whitened coordinates


class _Tuning(NamedTuple):
    mu: jax.Array  # (D,)
    scale: jax.Array  # (D,) diag / (D, D) Cholesky factor
    log_eps: jax.Array  # ()


# ============================================================================== energy pieces
def _prior_and_energy(target: Target, u):
    """(log φ(w) + log|det J|, H(w)) at unconstrained ``u`` (a params pytree)."""
    w, logdet = target.constrain_with_logdet(u)
    return target.log_prior(w) + logdet, target.nll(w)


def _energy_flat(target, unravel, uf):
    return target.nll(target.to_constrained(unravel(uf)))


# ============================================================================== statistics
def _rung_stats(H, w, fam, R):
    """Weighted E, Var of H, the family-clustered variance of E, family statistics."""
    ok = jnp.isfinite(H)
    w = jnp.where(ok, w, 0.0)
    w = w / jnp.sum(w)
    Hs = jnp.where(ok, H, 0.0)
    E = jnp.sum(w * Hs)
    dev = jnp.where(ok, Hs - E, 0.0)
    Var = jnp.sum(w * dev**2)
    per_family = jax.ops.segment_sum(w * dev, fam, num_segments=R)
    E_var = jnp.sum(per_family**2)
    nu = jax.ops.segment_sum(w, fam, num_segments=R)
    entropy = -jnp.sum(jnp.where(nu > 0, nu * jnp.log(jnp.where(nu > 0, nu, 1.0)), 0.0))
    return {
        "E": E,
        "Var": Var,
        "E_var": E_var,
        "families": jnp.sum(nu > 0),
        "families_eff": jnp.exp(entropy),
        "rho_t": R * jnp.sum(nu**2),
        "nonfinite": jnp.sum(~ok),
    }


def _precondition(u, w, mode):
    """Weighted mean and scale (√diag or Cholesky) of the particles."""
    ok = jnp.all(jnp.isfinite(u), axis=1) & (w > 0)
    w = jnp.where(ok, w, 0.0)
    w = w / jnp.sum(w)
    us = jnp.where(ok[:, None], u, 0.0)
    mu = jnp.sum(w[:, None] * us, axis=0)
    X = jnp.where(ok[:, None], us - mu, 0.0)
    var = jnp.sum(w[:, None] * X**2, axis=0)
    floor = 1e-10 * (1.0 + jnp.mean(var)) + 1e-30
    if mode == "none":
        return jnp.zeros_like(mu), jnp.ones_like(mu)
    if mode == "diag":
        return mu, jnp.sqrt(var + floor)
    D = u.shape[1]
    R_eff = 1.0 / jnp.sum(w**2)
    shrink = jnp.minimum(1.0, D / R_eff)  # towards the diagonal when few particles per dimension
    cov = (X * w[:, None]).T @ X
    cov = (1.0 - shrink) * cov + shrink * jnp.diag(var) + floor * jnp.eye(D, dtype=u.dtype)
    return mu, jnp.linalg.cholesky(cov)


def _to_z(u, mu, scale):
    if scale.ndim == 1:
        return (u - mu) / scale
    return jax.scipy.linalg.solve_triangular(scale, (u - mu).T, lower=True).T


def _from_z(z, mu, scale):
    return mu + (scale * z if scale.ndim == 1 else scale @ z)


# ============================================================================== one-chain kernels
def _mul(scale, v):
    """C v for a diagonal (vector) or lower-triangular (matrix) scale C."""
    return scale * v if scale.ndim == 1 else scale @ v


def _mul_t(scale, v):
    """Cᵀ v."""
    return scale * v if scale.ndim == 1 else scale.T @ v


class _PState(NamedTuple):
    """One particle of the tuned HMC/MALA kernels (unconstrained space)."""

    u: jax.Array  # (D,)
    lp: jax.Array  # log p^β(u) (log-Jacobian included)
    grad: jax.Array  # ∇_u log p^β
    H: jax.Array  # energy at u
    accept: jax.Array  # acceptance probability of the last move


def _tuned_kernel(spec: _Spec, logp):
    """The population-tuned one-chain kernel (a :class:`~slt_thermo.samplers.run.Kernel`).

    ``init(key, u, beta)``; ``step(key, state, beta, eps, scale, L)``: one HMC trajectory (L
    leapfrog steps, momentum p ~ N(0, I) in whitened coordinates, i.e. inverse mass matrix CCᵀ)
    or one MALA move z' = z + (ε/2)∇_z + √ε ξ in whitened coordinates, written in u-space so the
    state's gradient survives a change of C without a new gradient evaluation.
    """
    from .run import Kernel

    vg = jax.value_and_grad(logp, has_aux=True)

    def init(key, u, beta):
        del key
        (lp, H), g = vg(u, beta)
        return _PState(u, lp, g, H, jnp.ones_like(lp))

    def finish(state, u, lp, H, g, log_ratio, key):
        acc = jnp.where(jnp.isfinite(log_ratio), jnp.exp(jnp.minimum(log_ratio, 0.0)), 0.0)
        take = jax.random.uniform(key, dtype=acc.dtype) < acc
        sel = lambda a, b: jnp.where(take, a, b)
        return _PState(sel(u, state.u), sel(lp, state.lp), sel(g, state.grad), sel(H, state.H), acc)

    if spec.kind == "mala":

        def step(key, state, beta, eps, scale, L):
            del L
            k1, k2 = jax.random.split(key)
            xi = jax.random.normal(k1, state.u.shape, state.u.dtype)
            gz = _mul_t(scale, state.grad)
            prop = state.u + _mul(scale, 0.5 * eps * gz + jnp.sqrt(eps) * xi)
            (lp, H), g = vg(prop, beta)
            resid = -0.5 * eps * (gz + _mul_t(scale, g)) - jnp.sqrt(eps) * xi
            log_ratio = lp - state.lp - jnp.sum(resid**2) / (2 * eps) + 0.5 * jnp.sum(xi**2)
            return finish(state, prop, lp, H, g, log_ratio, k2)

    else:

        def step(key, state, beta, eps, scale, L):
            k1, k2 = jax.random.split(key)
            p0 = jax.random.normal(k1, state.u.shape, state.u.dtype)

            def leap(_, c):
                u, p, g, lp, H = c
                p = p + 0.5 * eps * _mul_t(scale, g)
                u = u + eps * _mul(scale, p)
                (lp, H), g = vg(u, beta)
                p = p + 0.5 * eps * _mul_t(scale, g)
                return u, p, g, lp, H

            u, p, g, lp, H = jax.lax.fori_loop(0, L, leap, (state.u, p0, state.grad, state.lp, state.H))
            log_ratio = lp - 0.5 * jnp.sum(p**2) - state.lp + 0.5 * jnp.sum(p0**2)
            return finish(state, u, lp, H, g, log_ratio, k2)

    return Kernel(init=init, step=step, position=lambda s: s.u,
                  stats=lambda s: {"acceptance_rate": s.accept}, finite=lambda s: jnp.isfinite(s.lp))


def _nuts_half(spec, logp, key, u, beta, eps, mu, scale):
    """One NUTS transition (numpyro) per particle of ``u``, in whitened coordinates u = μ + Cz.

    Returns (u, acceptance (mean accept prob of the tree), gradient evaluations)."""
    from numpyro.infer.hmc import hmc

    init_kernel, sample_kernel = hmc(
        potential_fn_gen=lambda b: (lambda z: -logp(_from_z(z, mu, scale), b)[0]), algo="NUTS")
    n = u.shape[0]
    k1, k2 = jax.random.split(key)
    z0 = _to_z(u, mu, scale)

    def one(ka, kb, z, e):
        s = init_kernel(z, num_warmup=0, step_size=e, adapt_step_size=False, adapt_mass_matrix=False,
                        max_tree_depth=spec.max_tree_depth, rng_key=ka, model_args=(beta,))
        s = sample_kernel(s._replace(rng_key=kb), model_args=(beta,))
        return _from_z(s.z, mu, scale), s.accept_prob, s.num_steps

    u, acc, steps = jax.vmap(one)(jax.random.split(k1, n), jax.random.split(k2, n), z0, eps)
    return u, acc, jnp.sum(steps).astype(jnp.int32) + n


def _move(spec: _Spec, target, unravel, ravel_one, key, u, H, w, log_eps, beta, sweeps, tun_in):
    """Move every particle at ``beta`` for ``sweeps`` sweeps. Returns
    (u, H, mean acceptance, gradient evaluations, tuning: full-population μ, C and final ε).

    Tuned kernels (HMC/MALA/NUTS) update the population in two halves, A = first ⌊R/2⌋
    particles, B = the rest (families are contiguous: resampled indices are sorted): A moves
    with the preconditioner of B's current positions, then B with A's new positions, and the step
    size is nudged after each half by that half's mean acceptance. A particle's kernel therefore
    never depends on its own position (a self-tuned covariance biases log Ẑ by O(1/R) per rung,
    which accumulates over the ladder), and each half-move leaves the product of the p^β
    invariant exactly."""
    R, D = u.shape
    dt = u.dtype
    k_init, k_loop = jax.random.split(key)
    identity = jnp.eye(D, dtype=dt) if spec.precondition == "dense" else jnp.ones((D,), dt)
    none_tuning = _Tuning(jnp.zeros((D,), dt), identity, log_eps)
    energy = partial(_energy_flat, target, unravel)
    if spec.kind == "exact":
        draws = spec.exact_sampler(k_init, beta, R)
        uf = jax.vmap(lambda p: ravel_one(target.to_unconstrained(p)))(draws).astype(dt)
        Hn = jax.vmap(energy)(uf)
        active = sweeps > 0
        return (jnp.where(active, uf, u), jnp.where(active, Hn, H), jnp.ones((), dt),
                jnp.zeros((), jnp.int32), none_tuning)

    if spec.kind == "kernel":
        kernel = spec.config.build(target, None, 0.0)
        states = jax.vmap(kernel.init, in_axes=(0, 0, None))(
            jax.random.split(k_init, R), jax.vmap(unravel)(u), beta)
        probe = jax.eval_shape(lambda s: jax.vmap(kernel.stats)(s), states)

        def body(i, c):
            states, acc, grads = c
            states = jax.vmap(kernel.step, in_axes=(0, 0, None))(
                jax.random.split(jax.random.fold_in(k_loop, i), R), states, beta)
            s = jax.vmap(kernel.stats)(states)
            a = jnp.mean(s["acceptance_rate"]) if "acceptance_rate" in probe else jnp.nan
            g = jnp.sum(s["n_steps"]).astype(jnp.int32) if "n_steps" in probe else jnp.int32(R)
            return states, acc + a, grads + g

        states, acc, grads = jax.lax.fori_loop(
            0, sweeps, body, (states, jnp.zeros((), dt), jnp.int32(R)))
        uf = jax.vmap(lambda s: ravel_one(kernel.position(s)))(states).astype(dt)
        Hn = jax.vmap(energy)(uf)
        return uf, Hn, acc / jnp.maximum(sweeps, 1), grads, none_tuning

    # ---- population-tuned HMC / MALA / NUTS, cross-tuned halves
    def logp(uf, b):
        lp0, Hh = _prior_and_energy(target, unravel(uf))
        return lp0 - b * Hh, Hh

    h = R // 2
    halves = ((0, h, h, R), (h, R, 0, h))  # (move lo, hi, tune-from lo, hi)

    def tuning_from(uu, lo, hi):
        if not spec.adapt:
            return tun_in.mu, tun_in.scale
        return _precondition(uu[lo:hi], w[lo:hi], spec.precondition)

    def n_leap(log_e):
        if spec.kind != "hmc":
            return jnp.int32(1)
        if spec.num_leapfrog > 0:
            return jnp.int32(spec.num_leapfrog)
        return jnp.clip(jnp.ceil(_HALF_PERIOD / jnp.exp(log_e)), 1, spec.max_leapfrog).astype(jnp.int32)

    def nudge(log_e, a):
        return log_e + jnp.clip(a - spec.target_accept, -0.7, 0.7) if spec.adapt else log_e

    log_e0 = log_eps if spec.adapt else tun_in.log_eps

    if spec.kind == "nuts":

        def body(i, c):
            uu, log_e, acc_sum, grads = c
            ki = jax.random.fold_in(k_loop, i)
            for j, (lo, hi, tlo, thi) in enumerate(halves):
                kj, kh = jax.random.split(jax.random.fold_in(ki, j))
                mu, scale = tuning_from(uu, tlo, thi)
                eps = jnp.exp(log_e) * jax.random.uniform(kj, (hi - lo,), dt, 1 - spec.jitter, 1 + spec.jitter)
                new, acc, g = _nuts_half(spec, logp, kh, uu[lo:hi], beta, eps, mu, scale)
                uu = uu.at[lo:hi].set(new)
                a = jnp.mean(jnp.where(jnp.isfinite(acc), acc, 0.0))
                log_e = nudge(log_e, a)
                acc_sum, grads = acc_sum + a * (hi - lo) / R, grads + g
            return uu, log_e, acc_sum, grads

        uf, log_e, acc_sum, grads = jax.lax.fori_loop(
            0, sweeps, body, (u, log_e0, jnp.zeros((), dt), jnp.int32(0)))
        Hn = jax.vmap(energy)(uf)
    else:
        kernel = _tuned_kernel(spec, logp)
        state = jax.vmap(kernel.init, in_axes=(0, 0, None))(jax.random.split(k_init, R), u, beta)

        def body(i, c):
            st, log_e, acc_sum, grads = c
            ki = jax.random.fold_in(k_loop, i)
            for j, (lo, hi, tlo, thi) in enumerate(halves):
                kj, kh = jax.random.split(jax.random.fold_in(ki, j))
                _, scale = tuning_from(st.u, tlo, thi)
                L = n_leap(log_e)
                eps = jnp.exp(log_e) * jax.random.uniform(kj, (hi - lo,), dt, 1 - spec.jitter, 1 + spec.jitter)
                sub = jax.tree_util.tree_map(lambda x, lo=lo, hi=hi: x[lo:hi], st)
                new = jax.vmap(kernel.step, in_axes=(0, 0, None, 0, None, None))(
                    jax.random.split(kh, hi - lo), sub, beta, eps, scale, L)
                st = jax.tree_util.tree_map(lambda x, y, lo=lo, hi=hi: x.at[lo:hi].set(y), st, new)
                a = jnp.mean(new.accept)
                log_e = nudge(log_e, a)
                acc_sum = acc_sum + a * (hi - lo) / R
                grads = grads + (L * (hi - lo)).astype(jnp.int32)
            return st, log_e, acc_sum, grads

        state, log_e, acc_sum, grads = jax.lax.fori_loop(
            0, sweeps, body, (state, log_e0, jnp.zeros((), dt), jnp.int32(R)))
        uf, Hn = state.u, state.H
    if spec.adapt:
        mu, scale = _precondition(uf, w, spec.precondition)
    else:
        mu, scale = tun_in.mu, tun_in.scale
    return uf, Hn, acc_sum / jnp.maximum(sweeps, 1), grads, _Tuning(mu, scale, log_e)


# ============================================================================== compiled rung
def _rung_one(spec: _Spec, target, template, st: _State, key, beta, dbeta, sweeps, tun_in):
    R = spec.num_particles
    _, unravel = ravel_pytree(template)
    ravel_one = lambda p: ravel_pytree(p)[0]
    k_res, k_move = jax.random.split(key)
    H = st.H
    ok = jnp.isfinite(H)
    up = dbeta >= 0
    h_ref = jnp.where(up, jnp.min(jnp.where(ok, H, jnp.inf)), jnp.max(jnp.where(ok, H, -jnp.inf)))
    inc = jnp.where(ok, -dbeta * (H - h_ref), -jnp.inf)
    lse_inc = jax.nn.logsumexp(inc)
    lw = st.logw + inc
    lse_w = jax.nn.logsumexp(lw)
    ess = jnp.exp(2 * lse_w - jax.nn.logsumexp(2 * lw))
    ess_inc = jnp.exp(2 * lse_inc - jax.nn.logsumexp(2 * inc))
    w = jnp.exp(lw - lse_w)
    if spec.scheme != "none":
        idx = jnp.sort(_resample_w(k_res, w, R, spec.scheme))  # families contiguous
        u, H, fam = st.u[idx], H[idx], st.fam[idx]
        w = jnp.full((R,), 1.0 / R, w.dtype)
        shift = jnp.zeros((), lw.dtype)
        logw = jnp.zeros_like(lw)
    else:
        u, fam = st.u, st.fam
        shift = jnp.max(lw)
        logw = lw - shift
    u, H, acc, grads, tun = _move(spec, target, unravel, ravel_one, k_move, u, H, w, st.log_eps,
                                  beta, sweeps, tun_in)
    stats = _rung_stats(H, w, fam, R)
    stats.update(lse_inc=lse_inc, lse_w=lse_w, h_ref=h_ref, shift=shift, ess=ess, ess_inc=ess_inc,
                 acceptance_rate=acc, grad_evals=grads, step_size=jnp.exp(tun.log_eps))
    return _State(u, H, logw, fam, tun.log_eps), stats, tun


@partial(jax.jit, static_argnames=("spec",))
def _rung(spec, target, template, state, keys, beta, dbeta, sweeps, tuning):
    f = partial(_rung_one, spec, target, template)
    in_tun = None if tuning is None else 0
    return jax.vmap(f, in_axes=(0, 0, None, None, None, in_tun))(state, keys, beta, dbeta, sweeps, tuning)


@partial(jax.jit, static_argnames=("spec",))
def _start(spec, target, template, u, log_eps):
    """Initial state of every run from its particles (unconstrained, flat): energies, stats."""
    _, unravel = ravel_pytree(template)
    R = spec.num_particles

    def one(u):
        H = jax.vmap(partial(_energy_flat, target, unravel))(u)
        fam = jnp.arange(R, dtype=jnp.int32)
        w = jnp.full((R,), 1.0 / R, u.dtype)
        st = _State(u, H, jnp.zeros((R,), u.dtype), fam, jnp.asarray(log_eps, u.dtype))
        return st, _rung_stats(H, w, fam, R)

    return jax.vmap(one)(u)


@jax.jit
def _flatten_particles(target, params):
    to_u = lambda p: ravel_pytree(target.to_unconstrained(p))[0]
    return jax.vmap(jax.vmap(to_u))(params)


@jax.jit
def _final_params(target, template, u):
    _, unravel = ravel_pytree(template)
    params = jax.vmap(lambda uf: target.to_constrained(unravel(uf)))(u)
    lp = jax.vmap(target.log_prior)(params)
    return params, lp


@partial(jax.jit, static_argnames=("num",))
def _equalize(keys, logw, u, H, num):
    """Systematic resampling of weighted particles (per run) to equal weight."""

    def one(key, lw, u, H):
        lw = jnp.where(jnp.isnan(lw), -jnp.inf, lw)
        idx = _resample_w(key, jnp.exp(lw - jax.nn.logsumexp(lw)), num, "systematic")
        return u[idx], H[idx]

    return jax.vmap(one)(keys, logw, u, H)


# ============================================================================== setup helpers
def _positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidArgumentError(f"`{name}` must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_ladder(betas):
    b = np.atleast_1d(np.asarray(betas, dtype=float))
    if b.ndim != 1 or b.size < 1 or not np.all(np.isfinite(b)) or np.any(b < 0):
        raise InvalidArgumentError(f"`betas` must be a 1-D sequence of finite numbers >= 0, got {betas!r}")
    if b[0] != 0.0:
        b = np.concatenate([[0.0], b])
    if b.size < 2 or np.any(np.diff(b) <= 0):
        raise InvalidArgumentError(
            "`betas` must increase strictly from 0 (β = 0 is prepended when missing), e.g. "
            "st.ladder.power(20)")
    return b


def _resolve_move(mcmc, exact_sampler, *, num_leapfrog, max_leapfrog, target_accept,
                  precondition, max_tree_depth, dim, num_particles, scheme, jitter=0.2):
    if exact_sampler is not None:
        if not callable(exact_sampler):
            raise InvalidArgumentError("`exact_sampler` must be a callable (key, beta, num) -> params")
        kind, config = "exact", None
    elif isinstance(mcmc, str):
        if mcmc.lower() not in MOVES:
            raise InvalidArgumentError(
                f"`mcmc` must be one of {MOVES} or a sampler config with .build(target, center, "
                f"gamma) (e.g. HMCConfig), got {mcmc!r}")
        kind, config = mcmc.lower(), None
    elif callable(getattr(mcmc, "build", None)):
        kind, config = "kernel", mcmc
    else:
        raise InvalidArgumentError(
            f"`mcmc` must be one of {MOVES} or a sampler config with .build(target, center, gamma), "
            f"got {type(mcmc).__name__}")
    if precondition not in PRECONDITIONS:
        raise InvalidArgumentError(f"`precondition` must be one of {PRECONDITIONS}, got {precondition!r}")
    if kind not in MOVES or num_particles < 8:
        precondition = "none"  # (each half of the population tunes the other: too few to estimate)
    elif precondition == "auto":
        precondition = "dense" if (dim <= 64 and num_particles >= 8 * dim) else "diag"
    if num_leapfrog is None:
        num_leapfrog = 0
    num_leapfrog = _positive_int(num_leapfrog, "num_leapfrog", 0)
    max_leapfrog = _positive_int(max_leapfrog, "max_leapfrog")
    if target_accept is None:
        target_accept = {"hmc": 0.8, "mala": 0.574, "nuts": 0.8}.get(kind, 0.8)
    if not 0 < target_accept < 1:
        raise InvalidArgumentError(f"`target_accept` must be in (0, 1), got {target_accept!r}")
    if isinstance(max_tree_depth, bool) or not isinstance(max_tree_depth, int) or not 1 <= max_tree_depth <= 20:
        raise InvalidArgumentError(f"`max_tree_depth` must be an integer in [1, 20], got {max_tree_depth!r}")
    spec = _Spec(kind, scheme, num_particles, precondition, True, num_leapfrog, max_leapfrog,
                 float(target_accept), float(jitter), max_tree_depth, config, exact_sampler)
    return spec


def _initial_eps(kind, dim):
    if kind == "mala":
        return float(dim) ** (-1.0 / 3.0)
    return min(1.0, 1.5 * float(dim) ** -0.25)


def _initial_particles(target, key, M, R, init_particles, exact_sampler):
    """Model-space particles with leading axes (M, R), drawn exactly from the prior."""
    if init_particles is not None:
        p = jax.tree_util.tree_map(jnp.asarray, init_particles)
        ref = target.init(jax.random.PRNGKey(0))
        if jax.tree_util.tree_structure(p) != jax.tree_util.tree_structure(ref):
            raise InvalidArgumentError(
                "`init_particles` must have the structure of the model's parameters "
                f"{jax.tree_util.tree_structure(ref)}")
        out = []
        for x, r in zip(jax.tree_util.tree_leaves(p), jax.tree_util.tree_leaves(ref)):
            shape = jnp.shape(r)
            if x.shape == (R,) + shape:
                x = jnp.broadcast_to(x, (M, R) + shape) if M == 1 else None
                if x is None:
                    raise InvalidArgumentError(
                        f"`init_particles` has {R} particles for {M} runs; give shape "
                        f"{(M, R) + shape} (an independent prior sample per run)")
            elif x.shape != (M, R) + shape:
                raise InvalidArgumentError(
                    f"`init_particles` leaf has shape {x.shape}; expected {(R,) + shape} (one run) "
                    f"or {(M, R) + shape}")
            out.append(x)
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(ref), out)
    if exact_sampler is not None:
        keys = jax.random.split(key, M)
        return jax.vmap(lambda k: exact_sampler(k, jnp.zeros(()), R))(keys)
    sample_prior = getattr(target.model, "sample_prior", None)
    if not callable(sample_prior):
        raise InvalidArgumentError(
            f"annealing starts from exact prior draws, but the model {target.name!r} has no "
            "`sample_prior(key)` (its `init` is not a prior draw). Pass `init_particles=` "
            f"(model-space params with leading axis num_particles = {R}, drawn from the prior)")
    keys = jax.random.split(key, M * R)
    keys = keys.reshape((M, R) + keys.shape[1:])
    return jax.vmap(jax.vmap(sample_prior))(keys)


def _dtype():
    return jnp.result_type(float)


# ============================================================================== result types
@dataclasses.dataclass
class AnnealingResult:
    """The outcome of :func:`population_annealing` or :func:`ais`.

    Attributes:
        rungs: ``xarray.Dataset`` over the rungs (coordinate ``beta``, the ladder from β_0 = 0)
            and the independent runs (``run``):

            - ``log_z`` (beta): log Ẑ(β) = log mean_r Ẑ_r(β) (Machta's combination; log Z(0) = 0
              for a normalized prior), ``log_z_se`` its standard error (spread of the runs when
              num_runs ≥ 2, else within-run), ``log_z_se_within`` (delta method, perfect
              mixing), ``log_z_run`` (run, beta) per run;
            - ``E``, ``Var`` (beta): E^β[nL_n] and Var^β[nL_n] weighted by Ẑ_r across runs
              (⟨H⟩ and ⟨H²⟩ weighted separately), so β²·Var is the specific heat; ``E_se``;
              ``E_run``, ``Var_run`` per run;
            - ``ess`` / ``ess_frac`` (run, beta): weight ESS (Σω)²/Σω² of the update into the rung
              (NaN at β_0); ``rho_f_delta`` (run, beta): Σ_{l≤k}(R/ESS_l − 1);
            - ``families`` (surviving families), ``families_eff`` (e^{S_f}), ``rho_t``
              (R Σ ν_i²) per (run, beta); ``acceptance_rate``, ``step_size``, ``grad_evals``.
        samples: the final population at β_max as :class:`~slt_thermo.Samples` (one β, the
            particles of all runs as chains, one draw), resampled to equal weight.
        log_weights: AIS only: the final log weights, (run, chain).
        attrs: settings and summary numbers (also ``rungs.attrs``).
    """

    rungs: xr.Dataset
    samples: Samples | None = None
    log_weights: np.ndarray | None = None
    tuning: list | None = dataclasses.field(default=None, repr=False)

    @property
    def attrs(self) -> dict:
        return dict(self.rungs.attrs)

    @property
    def betas(self) -> np.ndarray:
        return self.rungs["beta"].values

    @property
    def log_z(self) -> Estimate:
        """log Ẑ at the last rung, with its standard error."""
        r = self.rungs.isel(beta=-1)
        details = {k: self.rungs.attrs[k] for k in ("num_runs", "num_particles", "grad_evals",
                                                    "rho_f_runs", "rho_f_delta", "rho_t", "method")
                   if k in self.rungs.attrs}
        details.update(beta=float(r["beta"]), stderr_within=float(r["log_z_se_within"]),
                       num_rungs=int(self.rungs.sizes["beta"]))
        return Estimate(float(r["log_z"]), float(r["log_z_se"]), method=self.rungs.attrs["method"],
                        details=details)

    @property
    def free_energy(self) -> Estimate:
        """F(β_max) = −log Z(β_max) as an :class:`~slt_thermo.Estimate`."""
        lz = self.log_z
        return Estimate(-lz.value, lz.stderr, method=lz.method, details=lz.details)

    def __repr__(self):
        a = self.rungs.attrs
        return (f"AnnealingResult({a.get('method')}, {a.get('target')}, {self.rungs.sizes['beta']} rungs, "
                f"{a.get('num_runs')} run(s) × {a.get('num_particles')} particles, log Z = {self.log_z}, "
                f"{a.get('grad_evals')} gradient evaluations)")


@dataclasses.dataclass
class BDMCResult:
    """The BDMC sandwich: ``lower`` ≤ log Z ≤ ``upper`` in expectation.

    - ``lower`` = mean_i log w_i of forward AIS (E ≤ log Z by Jensen; exactly the left Riemann sum
      −Σ Δβ_k E^{β_{k−1}}[H] with perfect transitions);
    - ``upper`` = mean_i (−log w_rev,i) of reverse AIS started from exact posterior samples
      (E ≥ log Z; the right Riemann sum with perfect transitions);
    - ``lower_lme`` = log mean_i w_i and ``upper_lme`` = −log mean_i w_rev,i: tighter stochastic
      bounds (P(lower_lme > log Z + a) ≤ e^{−a}, and symmetrically);
    - ``forward``, ``reverse``: the two :class:`AnnealingResult` (the reverse one anneals β from 1
      to 0, so its ``log_z`` estimates log Z(0)/Z(1) = −log Z).
    """

    lower: Estimate
    upper: Estimate
    lower_lme: Estimate
    upper_lme: Estimate
    forward: AnnealingResult
    reverse: AnnealingResult

    @property
    def gap(self) -> float:
        """upper − lower: bounds the bias of either estimate (and the forward KL + reverse KL)."""
        return self.upper.value - self.lower.value

    def __repr__(self):
        return (f"BDMCResult(lower={self.lower}, upper={self.upper}, gap={self.gap:.4g}, "
                f"lower_lme={self.lower_lme}, upper_lme={self.upper_lme})")


# ============================================================================== the driver
def _next_dbeta(H, beta, beta_max, target_ess):
    """Largest Δβ ≤ β_max − β whose weight ESS fraction (worst run) is ≥ target_ess (bisection)."""
    H = np.asarray(H, dtype=np.float64)
    H = np.where(np.isfinite(H), H, np.inf)
    finite = np.isfinite(H).sum(axis=1)
    if np.any(finite == 0):
        raise AnnealingStalledError(f"every particle of a run has a non-finite energy at β = {beta:.6g}")
    X = H - H.min(axis=1, keepdims=True)

    def frac(d):
        lw = np.where(np.isfinite(X), -d * X, -np.inf)
        ess = np.exp(2 * _np_logsumexp(lw, axis=1) - _np_logsumexp(2 * lw, axis=1))
        return float(np.min(ess / finite))

    hi = beta_max - beta
    if frac(hi) >= target_ess:
        return hi
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if frac(mid) >= target_ess:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-7 * hi:
            break
    return lo


def _anneal(target, spec, *, betas, beta_max, target_ess, max_rungs, num_runs, key, params0,
            sweeps, tunings=None, progress, method, attrs, start_beta=0.0):
    """Run the rung loop; returns an AnnealingResult (raises AnnealingStalledError on a stall)."""
    M, R = num_runs, spec.num_particles
    dt = _dtype()
    k_rungs, k_final = jax.random.split(key)
    template_params = jax.tree_util.tree_map(lambda x: x[0, 0], params0)
    template = target.to_unconstrained(template_params)
    u0 = _flatten_particles(target, params0).astype(dt)
    D = u0.shape[-1]
    log_eps0 = math.log(_initial_eps(spec.kind, D))
    state, s0 = _start(spec, target, template, u0, log_eps0)
    s0 = jax.device_get(s0)

    cols = {k: [] for k in ("E_run", "Var_run", "E_var_run", "families", "families_eff", "rho_t",
                            "nonfinite", "ess", "ess_inc", "acceptance_rate", "step_size",
                            "grad_evals", "log_z_run", "var_within")}

    def push(s, log_z, var_within, ess=None, ess_inc=None, acc=None, eps=None, grads=None):
        nan = np.full(M, np.nan)
        cols["E_run"].append(np.asarray(s["E"], float))
        cols["Var_run"].append(np.asarray(s["Var"], float))
        cols["E_var_run"].append(np.asarray(s["E_var"], float))
        for k in ("families", "families_eff", "rho_t", "nonfinite"):
            cols[k].append(np.asarray(s[k], float))
        cols["ess"].append(nan if ess is None else ess)
        cols["ess_inc"].append(nan if ess_inc is None else ess_inc)
        cols["acceptance_rate"].append(nan if acc is None else acc)
        cols["step_size"].append(nan if eps is None else eps)
        cols["grad_evals"].append(np.zeros(M) if grads is None else grads)
        cols["log_z_run"].append(log_z.copy())
        cols["var_within"].append(var_within.copy())

    ladder = [float(start_beta)]
    log_z = np.zeros(M)  # PA: Σ log Q; AIS: offset of the relative log weights
    offset = np.zeros(M)
    var_within = np.zeros(M)
    push(s0, log_z, var_within)
    tuning_log = [None]
    fixed = betas is not None
    total = (len(betas) - 1) if fixed else max_rungs
    bar = _progress_bar(total, progress, f"{method} {M}×{R}")
    start = time.perf_counter()
    k = 0
    beta = float(start_beta)
    try:
        while True:
            if fixed:
                if k + 1 >= len(betas):
                    break
                new = float(betas[k + 1])
            else:
                if beta >= beta_max:
                    break
                if k >= max_rungs:
                    raise AnnealingStalledError(
                        f"adaptive annealing hit max_rungs = {max_rungs} at β = {beta:.6g} < "
                        f"{beta_max:g}; raise `max_rungs`, lower `target_ess` (now {target_ess}) or "
                        "give a fixed ladder `betas`")
                d = _next_dbeta(np.asarray(state.H), beta, beta_max, target_ess)
                new = beta_max if d >= beta_max - beta else beta + d
                if not (d > 0 and new > beta):
                    raise AnnealingStalledError(
                        f"adaptive annealing stalled at β = {beta:.6g}: Δβ underflowed (the weight "
                        f"ESS falls below {target_ess}·R for every representable Δβ; check for "
                        "non-finite or huge energies)")
            dbeta = new - beta
            keys = jax.random.split(jax.random.fold_in(k_rungs, k), M)
            tun = None if tunings is None else tunings[k]
            n_sweeps = sweeps
            if method == "ais_reverse" and k + 2 == len(betas):
                n_sweeps = 0  # the last reverse move (at β = 0) is never used
            state, s, tun_used = _rung(spec, target, template, state, keys, jnp.asarray(new, dt),
                                       jnp.asarray(dbeta, dt), jnp.asarray(n_sweeps, jnp.int32), tun)
            s = jax.device_get(s)
            h_ref = np.asarray(s["h_ref"], np.float64)
            if spec.scheme != "none":
                log_q = np.asarray(s["lse_inc"], np.float64) - math.log(R) - dbeta * h_ref
                log_z = log_z + log_q
                ess_used = np.asarray(s["ess_inc"], float)
                var_within = var_within + np.maximum(1.0 / ess_used - 1.0 / R, 0.0)
            else:
                base = offset - dbeta * h_ref
                log_z = base + np.asarray(s["lse_w"], np.float64) - math.log(R)
                offset = base + np.asarray(s["shift"], np.float64)
                ess_used = np.asarray(s["ess"], float)
                var_within = np.maximum(1.0 / ess_used - 1.0 / R, 0.0)
            push(s, log_z, var_within, ess=ess_used, ess_inc=np.asarray(s["ess_inc"], float),
                 acc=np.asarray(s["acceptance_rate"], float), eps=np.asarray(s["step_size"], float),
                 grads=np.asarray(s["grad_evals"], float))
            tuning_log.append(tun_used)
            ladder.append(new)
            beta = new
            k += 1
            bar.update(1)
            bar.set_postfix_str(f"β={beta:.4g}")
    except AnnealingStalledError as err:
        bar.close()
        if len(ladder) > 1:
            err.partial = _collect(target, spec, cols, ladder, state, None, template, k_final,
                                   method, attrs, time.perf_counter() - start, tuning_log)
        raise
    bar.close()
    wall = time.perf_counter() - start
    return _collect(target, spec, cols, ladder, state, offset, template, k_final, method, attrs,
                    wall, tuning_log)


def _collect(target, spec, cols, ladder, state, offset, template, key, method, attrs, wall, tuning_log):
    M = cols["E_run"][0].shape[0]
    R = spec.num_particles
    A = {k: np.stack(v, axis=1) for k, v in cols.items()}  # (run, beta)
    lz = A["log_z_run"]
    # Machta: log mean_r Ẑ_r, weights w_r ∝ Ẑ_r per rung
    log_z = _np_logsumexp(lz, axis=0) - math.log(M)
    wr = np.exp(lz - _np_logsumexp(lz, axis=0))
    var_within = A["var_within"]
    se_within = np.sqrt(np.sum(wr**2 * var_within, axis=0))
    E_run, Var_run = A["E_run"], A["Var_run"]
    E = np.sum(wr * E_run, axis=0)
    Var = np.sum(wr * (Var_run + (E_run - E) ** 2), axis=0)
    E_se_within = np.sqrt(np.sum(wr**2 * A["E_var_run"], axis=0))
    if M >= 2:
        rel = M * wr  # Ẑ_r / mean Ẑ
        log_z_se = np.std(rel, axis=0, ddof=1) / math.sqrt(M)
        E_se = np.sqrt(np.sum(wr**2 * (E_run - E) ** 2, axis=0) * M / (M - 1))
    else:
        log_z_se = se_within
        E_se = E_se_within
    ess = A["ess"]
    with np.errstate(divide="ignore", invalid="ignore"):
        rho_inc = np.where(np.isfinite(A["ess_inc"]), R / A["ess_inc"] - 1.0, 0.0)
    rho_f_delta = np.cumsum(rho_inc, axis=1)
    coords = {"beta": np.asarray(ladder), "run": np.arange(M)}
    rb = ("run", "beta")
    ds = xr.Dataset(
        {
            "log_z": ("beta", log_z), "log_z_se": ("beta", log_z_se),
            "log_z_se_within": ("beta", se_within), "log_z_run": (rb, lz),
            "E": ("beta", E), "E_se": ("beta", E_se), "Var": ("beta", Var),
            "E_run": (rb, E_run), "Var_run": (rb, Var_run), "E_se_run": (rb, np.sqrt(A["E_var_run"])),
            "ess": (rb, ess), "ess_frac": (rb, ess / R), "rho_f_delta": (rb, rho_f_delta),
            "families": (rb, A["families"]), "families_eff": (rb, A["families_eff"]),
            "rho_t": (rb, A["rho_t"]), "nonfinite": (rb, A["nonfinite"]),
            "acceptance_rate": (rb, A["acceptance_rate"]), "step_size": (rb, A["step_size"]),
            "grad_evals": (rb, A["grad_evals"]),
        },
        coords=coords,
    )
    grad_total = int(np.sum(A["grad_evals"]))
    meta = {
        "method": method, "n": target.n, "target": target.name, "population": target.is_population,
        "num_particles": R, "num_runs": M, "mcmc": spec.kind, "resampling": spec.scheme,
        "precondition": spec.precondition, "num_rungs": len(ladder), "grad_evals": grad_total,
        "rho_f_delta": float(np.mean(rho_f_delta[:, -1])), "rho_t": float(np.mean(A["rho_t"][:, -1])),
        "wall_time_s": wall, "slt_thermo_version": _version(),
    }
    if M >= 2:
        meta["rho_f_runs"] = float(R * np.var(lz[:, -1], ddof=1))
    meta.update(attrs)
    ds.attrs = clean_attrs(meta)

    # final particles (equal weight)
    dt = _dtype()
    u, H = state.u, state.H
    log_weights = None
    if spec.scheme == "none":
        lw = np.asarray(state.logw, np.float64)
        if offset is not None:
            log_weights = lw + offset[:, None]
        u, H = _equalize(jax.random.split(key, M), state.logw, u, H, R)
    MR = M * R
    params, lp = _final_params(target, template, u.reshape((MR, -1)).astype(dt))
    names = _leaf_names(template)
    Hn = np.asarray(H, float).reshape(1, MR, 1)
    data_vars = {
        "nll": (("beta", "chain", "draw"), Hn),
        "log_prior": (("beta", "chain", "draw"), np.asarray(lp, float).reshape(1, MR, 1)),
        "healthy": (("beta", "chain"), np.isfinite(Hn[..., 0])),
    }
    for name, leaf in zip(names, jax.tree_util.tree_leaves(params)):
        g = np.asarray(leaf)[None, :, None]
        dims = ("beta", "chain", "draw") + tuple(f"{name}_dim_{i}" for i in range(g.ndim - 3))
        data_vars[name] = (dims, g)
    sds = xr.Dataset(data_vars, coords={"beta": [float(ladder[-1])], "chain": np.arange(MR), "draw": [0]})
    smeta = dict(meta)
    smeta.update(sampler=method, num_draws=1, num_warmup=0, num_samples=1,
                 param_names=",".join(names), localized=False, gamma=0.0)
    sds.attrs = clean_attrs(smeta)
    return AnnealingResult(ds, Samples(sds), log_weights, tuning_log)


# ============================================================================== public API
def population_annealing(
    target: Target,
    *,
    num_particles: int,
    key,
    betas=None,
    mcmc="hmc",
    mcmc_steps: int = 2,
    resampling: str = "systematic",
    num_runs: int = 1,
    max_rungs: int = 1000,
    target_ess: float = 0.5,
    beta_max: float = 1.0,
    num_leapfrog: int | None = None,
    max_leapfrog: int = 32,
    target_accept: float | None = None,
    precondition: str = "auto",
    max_tree_depth: int = 6,
    init_particles=None,
    exact_sampler: Callable | None = None,
    progress: bool = True,
) -> AnnealingResult:
    """Population annealing from the prior (β = 0) to ``beta_max``, with log Z at every rung.

    Args:
        target: the :class:`~slt_thermo.Target` (data or population).
        num_particles: R, the population size of each run.
        key: JAX PRNG key.
        betas: a fixed increasing ladder (β = 0 prepended when missing), or None for the adaptive
            schedule: each Δβ is found by bisection so that the weight ESS of the update is
            ``target_ess``·R (the worst of the runs, so all runs share one ladder), with at most
            ``max_rungs`` steps; a stall raises :class:`AnnealingStalledError` (an
            :class:`~slt_thermo.SLTThermoError`) carrying the partial result.
        mcmc: ``"hmc"`` | ``"mala"`` | ``"nuts"`` (population-tuned kernels, see the module
            docstring) or a sampler config with ``.build(target, center, gamma)``.
        mcmc_steps: MCMC sweeps per particle per rung (HMC: trajectories).
        resampling: ``"systematic"`` (default, lowest variance), ``"multinomial"`` or
            ``"residual"``.
        num_runs: independent runs (vmapped), combined by Machta's weighted averaging.
        num_leapfrog: HMC leapfrog steps per trajectory (default ⌈(π/2)/ε⌉ ≤ ``max_leapfrog``).
        target_accept: acceptance targeted by the step-size tuning (HMC/NUTS 0.8, MALA 0.574).
        precondition: ``"auto"`` (dense when dim ≤ 64 and R ≥ 4·dim, else diagonal),
            ``"dense"``, ``"diag"`` or ``"none"``.
        init_particles: prior draws in model space, leading axis R (or (num_runs, R)); default
            ``target.model.sample_prior`` (required when the model has none: its ``init`` is
            not a prior draw).
        exact_sampler: ``(key, beta, num) -> params`` exact draws from p^β (perfect transitions).

    Returns:
        :class:`AnnealingResult`; ``result.log_z`` / ``result.free_energy`` are Estimates at
        β_max, ``result.rungs`` the per-rung curves, ``result.samples`` the final population.
    """
    if not isinstance(target, Target):
        raise InvalidArgumentError(f"`target` must be a slt_thermo.Target, got {type(target).__name__}")
    _check_key(key)
    R = _positive_int(num_particles, "num_particles", 2)
    M = _positive_int(num_runs, "num_runs")
    sweeps = _positive_int(mcmc_steps, "mcmc_steps", 0)
    if resampling not in SCHEMES:
        raise InvalidArgumentError(f"`resampling` must be one of {SCHEMES}, got {resampling!r}")
    if not 0 < target_ess < 1:
        raise InvalidArgumentError(f"`target_ess` must be in (0, 1), got {target_ess!r}")
    max_rungs = _positive_int(max_rungs, "max_rungs")
    if not (beta_max > 0 and math.isfinite(beta_max)):
        raise InvalidArgumentError(f"`beta_max` must be a positive number, got {beta_max!r}")
    if betas is not None:
        betas = _check_ladder(betas)
        beta_max = float(betas[-1])
    k_init, k_run = jax.random.split(key)
    params0 = _initial_particles(target, k_init, M, R, init_particles, exact_sampler)
    dim = int(sum(np.size(x) for x in jax.tree_util.tree_leaves(target.init(jax.random.PRNGKey(0)))))
    spec = _resolve_move(mcmc, exact_sampler, num_leapfrog=num_leapfrog, max_leapfrog=max_leapfrog,
                         target_accept=target_accept, precondition=precondition,
                         max_tree_depth=max_tree_depth, dim=dim, num_particles=R, scheme=resampling)
    attrs = {"mcmc_steps": sweeps, "adaptive": betas is None, "target_ess": target_ess,
             "max_rungs": max_rungs, "target_accept": spec.target_accept}
    return _anneal(target, spec, betas=betas, beta_max=float(beta_max), target_ess=target_ess,
                   max_rungs=max_rungs, num_runs=M, key=k_run, params0=params0, sweeps=sweeps,
                   progress=progress, method="population_annealing", attrs=attrs)


def ais(
    target: Target,
    *,
    betas,
    num_chains: int,
    key,
    mcmc="hmc",
    mcmc_steps: int = 2,
    num_runs: int = 1,
    num_leapfrog: int | None = None,
    max_leapfrog: int = 32,
    target_accept: float | None = None,
    precondition: str = "auto",
    max_tree_depth: int = 6,
    init_particles=None,
    exact_sampler: Callable | None = None,
    progress: bool = True,
) -> AnnealingResult:
    """Annealed importance sampling (Neal 2001) / Jarzynski along a fixed ladder from β = 0.

    x_0 ~ φ exactly; for each rung, log w += −Δβ_k H(x_{k−1}), then x_k ~ T_k(x_{k−1}, ·) leaving
    p^{β_k} invariant (the kernels of :func:`population_annealing`, tuned from the weighted
    population). log Ẑ = log mean_i w_i (unbiased Ẑ; a stochastic lower bound for log Z);
    ``result.log_weights`` holds the final per-chain log weights (their mean is the lower bound
    of the BDMC sandwich), ``rungs["ess"]`` the weight ESS at every rung, and the standard error
    of log Ẑ is the delta method √(1/ESS − 1/N). Arguments as in :func:`population_annealing`.
    """
    if not isinstance(target, Target):
        raise InvalidArgumentError(f"`target` must be a slt_thermo.Target, got {type(target).__name__}")
    _check_key(key)
    N = _positive_int(num_chains, "num_chains", 2)
    M = _positive_int(num_runs, "num_runs")
    sweeps = _positive_int(mcmc_steps, "mcmc_steps", 0)
    betas = _check_ladder(betas)
    k_init, k_run = jax.random.split(key)
    params0 = _initial_particles(target, k_init, M, N, init_particles, exact_sampler)
    dim = int(sum(np.size(x) for x in jax.tree_util.tree_leaves(target.init(jax.random.PRNGKey(0)))))
    spec = _resolve_move(mcmc, exact_sampler, num_leapfrog=num_leapfrog, max_leapfrog=max_leapfrog,
                         target_accept=target_accept, precondition=precondition,
                         max_tree_depth=max_tree_depth, dim=dim, num_particles=N, scheme="none")
    attrs = {"mcmc_steps": sweeps, "adaptive": False, "target_accept": spec.target_accept}
    return _anneal(target, spec, betas=betas, beta_max=float(betas[-1]), target_ess=0.5,
                   max_rungs=len(betas), num_runs=M, key=k_run, params0=params0, sweeps=sweeps,
                   progress=progress, method="ais", attrs=attrs)


def bdmc(
    target: Target,
    *,
    betas,
    num_chains: int,
    exact_sample,
    key,
    mcmc="hmc",
    mcmc_steps: int = 2,
    num_leapfrog: int | None = None,
    max_leapfrog: int = 32,
    target_accept: float | None = None,
    precondition: str = "auto",
    max_tree_depth: int = 6,
    init_particles=None,
    exact_sampler: Callable | None = None,
    progress: bool = True,
) -> BDMCResult:
    """Bidirectional Monte Carlo: forward AIS (lower bound) and reverse AIS (upper bound).

    ``exact_sample`` is an exact draw from the posterior p^{β_max} in model space: one params
    pytree (every reverse chain starts there) or a pytree with leading axis ``num_chains``. For
    simulated data it is the θ* the data were drawn from (θ* ~ φ, D ~ p(·|θ*)); a fixed teacher
    is NOT such a draw unless it was drawn from the prior.

    The reverse chains anneal β from β_max to 0, accumulating log w_rev += Δβ_k H(x_k); E[w_rev] =
    1/Z, so E[−log w_rev] ≥ log Z. The population-tuned kernels of the reverse pass reuse the
    forward pass's tuning at each β (the reverse population starts collapsed on θ*), so they are
    fixed, exactly invariant kernels.
    """
    if not isinstance(target, Target):
        raise InvalidArgumentError(f"`target` must be a slt_thermo.Target, got {type(target).__name__}")
    _check_key(key)
    N = _positive_int(num_chains, "num_chains", 2)
    betas = _check_ladder(betas)
    k_fwd, k_rev = jax.random.split(key)
    common = {"mcmc": mcmc, "mcmc_steps": mcmc_steps, "num_leapfrog": num_leapfrog,
              "max_leapfrog": max_leapfrog, "target_accept": target_accept,
              "precondition": precondition, "max_tree_depth": max_tree_depth,
              "exact_sampler": exact_sampler, "progress": progress}
    fwd = ais(target, betas=betas, num_chains=N, key=k_fwd, init_particles=init_particles, **common)

    # reverse: start from the exact posterior sample(s)
    ref = target.init(jax.random.PRNGKey(0))
    leaves = jax.tree_util.tree_leaves(jax.tree_util.tree_map(jnp.asarray, exact_sample))
    if jax.tree_util.tree_structure(exact_sample) != jax.tree_util.tree_structure(ref):
        raise InvalidArgumentError(
            f"`exact_sample` must have the structure of the model's parameters {jax.tree_util.tree_structure(ref)}")
    out = []
    for x, r in zip(leaves, jax.tree_util.tree_leaves(ref)):
        shape = jnp.shape(r)
        if x.shape == shape:
            x = jnp.broadcast_to(x, (1, N) + shape)
        elif x.shape == (N,) + shape:
            x = x[None]
        else:
            raise InvalidArgumentError(
                f"`exact_sample` leaf has shape {x.shape}; expected {shape} or {(N,) + shape}")
        out.append(x.astype(_dtype()))
    params_rev = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(ref), out)
    spec = fwd_spec = _resolve_move(mcmc, exact_sampler, num_leapfrog=num_leapfrog,
                                    max_leapfrog=max_leapfrog, target_accept=target_accept,
                                    precondition=precondition, max_tree_depth=max_tree_depth,
                                    dim=sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(ref)),
                                    num_particles=N, scheme="none")
    rev_betas = betas[::-1].copy()
    tunings = None
    if fwd_spec.kind in MOVES:
        spec = fwd_spec._replace(adapt=False)
        # forward rung j moved at betas[j]; reverse rung k moves at rev_betas[k + 1] = betas[K-1-k]
        K = len(betas) - 1
        tunings = []
        for k in range(K):
            j = K - 1 - k
            tunings.append(fwd.tuning[max(j, 1)])
    sweeps = _positive_int(mcmc_steps, "mcmc_steps", 0)
    rev = _anneal(target, spec, betas=rev_betas, beta_max=float(rev_betas[-1]), target_ess=0.5,
                  max_rungs=len(betas), num_runs=1, key=k_rev, params0=params_rev, sweeps=sweeps,
                  tunings=tunings, progress=progress, method="ais_reverse",
                  attrs={"mcmc_steps": sweeps, "adaptive": False}, start_beta=float(rev_betas[0]))
    lw_f = fwd.log_weights.reshape(-1)
    lw_r = rev.log_weights.reshape(-1)
    n_f, n_r = lw_f.size, lw_r.size
    lower = Estimate(float(np.mean(lw_f)), float(np.std(lw_f, ddof=1) / math.sqrt(n_f)),
                     method="bdmc/forward_mean_log_w", details={"num_chains": n_f})
    upper = Estimate(float(np.mean(-lw_r)), float(np.std(lw_r, ddof=1) / math.sqrt(n_r)),
                     method="bdmc/reverse_mean_log_w", details={"num_chains": n_r})
    lf = fwd.log_z
    lr = rev.log_z
    lower_lme = Estimate(lf.value, lf.stderr, method="bdmc/forward_log_mean_w", details=lf.details)
    upper_lme = Estimate(-lr.value, lr.stderr, method="bdmc/reverse_log_mean_w", details=lr.details)
    return BDMCResult(lower, upper, lower_lme, upper_lme, fwd, rev)


__all__ = ["AnnealingResult", "AnnealingStalledError", "BDMCResult", "ais", "bdmc",
           "population_annealing", "resample"]
