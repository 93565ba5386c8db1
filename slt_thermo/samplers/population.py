"""Population annealing (PA), annealed importance sampling (AIS) and the BDMC sandwich.

All three anneal a population of particles through tempered posteriors
p^β(w) ∝ φ(w) exp(−β H(w)), H = nL_n, from β = 0 (the prior, sampled exactly with
:meth:`Target.sample_prior <slt_thermo.Target.sample_prior>`, or ``init_particles``) upward, and
read the partition function off the importance weights (REFERENCE §3.1–3.3):

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

**Compilation.** Everything that runs per particle (reweighting, resampling, tuning, all sweeps,
the target's observables) is one jit-compiled function per run, taking β, Δβ and the number of
sweeps as traced arguments; the Python loop is over rungs only.

**Observables.** When the target declares observables (``Target.observables``), they are
evaluated at every particle after each rung's move (in the same compiled function; nothing is
done when there are none) and reported per rung like E and Var of H: weighted means with
family-clustered (within-run) or run-spread errors, and their covariances with H and each other
(``rungs["obs_mean"]``, ``["obs_cov"]``, ... see :class:`AnnealingResult`); the final population
carries them per particle.

**Resumption.** The rung loop is an explicit :class:`AnnealState` (device particles, the ladder
so far, the per-rung columns, log Ẑ and its bookkeeping, the rung counter, β, the wall time and a
fingerprint of settings, key and initial particles) advanced by a function state → state. Rung k
draws its keys from ``fold_in(key, k)``, so ``RunOptions(max_chunks=k)`` (stop after k rungs;
``attrs["complete"] = 0``) followed by ``RunOptions(resume=result.state)`` with the same
arguments reproduces the uninterrupted run exactly, for fixed and adaptive ladders alike.

**Errors.** The within-run standard error of log Ẑ(β_k) is the delta method under perfect mixing,
Var ≈ Σ_{l≤k} (1/ESS_l − 1/R) (so ρ_f ≈ Σ (R/ESS_l − 1), REFERENCE §3.1), a lower bound when the
moves mix imperfectly; the family statistic ρ_t (≈ ρ_f, WMK 2015) is reported alongside. With
``num_runs`` ≥ 2 the reported ``log_z_se`` is the spread of the independent runs
(delta method on log mean_r Ẑ_r), which is honest whatever the mixing.
"""

from __future__ import annotations

import dataclasses
import hashlib
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
from .run import RunOptions, _check_names, _leaf_names, _progress_bar, _version

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
def _rung_stats(H, w, fam, R, A=None):
    """Weighted E, Var of H, the family-clustered variance of E, family statistics; with the
    observables ``A`` (R, K) also their statistics (:func:`_observable_stats`)."""
    obs = {} if A is None else _observable_stats(H, A, w, fam, R)
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
        **obs,
    }


def _observable_stats(H, A, w, fam, R):
    """Weighted means of the observables ``A`` (R, K), the family-clustered variance of each
    mean (as ``E_var`` for E), and the weighted covariance matrix of (H, A_1, ..., A_K) (the
    Var of :func:`_rung_stats` at [0, 0]). Particles with a non-finite H or A get weight 0."""
    X = jnp.concatenate([H[:, None], A], axis=1)
    ok = jnp.all(jnp.isfinite(X), axis=1)
    w = jnp.where(ok, w, 0.0)
    w = w / jnp.sum(w)
    X = jnp.where(ok[:, None], X, 0.0)
    mean = w @ X
    dev = jnp.where(ok[:, None], X - mean, 0.0)
    cov = (dev * w[:, None]).T @ dev
    cov = 0.5 * (cov + cov.T)  # exactly symmetric (the matmul's rounding is not)
    per_family = jax.ops.segment_sum(w[:, None] * dev[:, 1:], fam, num_segments=R)
    return {"obs_mean": mean[1:], "obs_mean_var": jnp.sum(per_family**2, axis=0), "obs_cov": cov}


def _observables_flat(target, unravel, u):
    """The target's observables at flat unconstrained particles ``u`` (R, D) as an (R, K)
    array in the order of ``target.observable_names``; None when it declares none."""
    names = target.observable_names
    if not names:
        return None
    obs = jax.vmap(lambda uf: target.observables(target.to_constrained(unravel(uf))))(u)
    return jnp.stack([jnp.asarray(obs[k], u.dtype) for k in names], axis=1)


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

    ``init(key, u, beta)``; ``step(key, state, beta, eps, scale, L) -> (state, info)`` (info:
    ``acceptance_rate``): one HMC trajectory (L
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
        new = _PState(sel(u, state.u), sel(lp, state.lp), sel(g, state.grad), sel(H, state.H), acc)
        return new, {"acceptance_rate": acc}

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

    return Kernel(init=init, step=step, position=lambda s: s.u, finite=lambda s: jnp.isfinite(s.lp))


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


def _move_exact(spec, target, ravel_one, energy, key, u, H, beta, sweeps, none_tuning):
    """The perfect transition: fresh exact draws from p^β (kept only when ``sweeps`` > 0)."""
    R, dt = u.shape[0], u.dtype
    draws = spec.exact_sampler(key, beta, R)
    uf = jax.vmap(lambda p: ravel_one(target.to_unconstrained(p)))(draws).astype(dt)
    Hn = jax.vmap(energy)(uf)
    active = sweeps > 0
    return (jnp.where(active, uf, u), jnp.where(active, Hn, H), jnp.ones((), dt),
            jnp.zeros((), jnp.int32), none_tuning)


def _move_kernel(spec, target, unravel, ravel_one, energy, k_init, k_loop, u, beta, sweeps,
                 none_tuning):
    """``sweeps`` steps of a sampler config's kernel (re-initialized at ``beta``) per particle;
    acceptance and gradient evaluations from the steps' info (``acceptance_rate``, ``n_steps``)."""
    R, dt = u.shape[0], u.dtype
    kernel = spec.config.build(target, None, 0.0)
    states = jax.vmap(kernel.init, in_axes=(0, 0, None))(
        jax.random.split(k_init, R), jax.vmap(unravel)(u), beta)
    step = jax.vmap(kernel.step, in_axes=(0, 0, None))
    keys_at = lambda i: jax.random.split(jax.random.fold_in(k_loop, i), R)
    probe = jax.eval_shape(step, keys_at(0), states, beta)[1]  # the info's keys

    def body(i, c):
        states, acc, grads = c
        states, info = step(keys_at(i), states, beta)
        a = jnp.mean(info["acceptance_rate"]) if "acceptance_rate" in probe else jnp.nan
        g = jnp.sum(info["n_steps"]).astype(jnp.int32) if "n_steps" in probe else jnp.int32(R)
        return states, acc + a, grads + g

    states, acc, grads = jax.lax.fori_loop(
        0, sweeps, body, (states, jnp.zeros((), dt), jnp.int32(R)))
    uf = jax.vmap(lambda s: ravel_one(kernel.position(s)))(states).astype(dt)
    Hn = jax.vmap(energy)(uf)
    return uf, Hn, acc / jnp.maximum(sweeps, 1), grads, none_tuning


def _halves(R):
    """The cross-tuned halves: (move lo, hi, tune-from lo, hi) for A = [0, R/2) and B."""
    h = R // 2
    return ((0, h, h, R), (h, R, 0, h))


def _sweeps_nuts(spec, logp, k_loop, u, beta, sweeps, log_e0, tuning_from, nudge):
    """``sweeps`` NUTS sweeps of the cross-tuned halves: (u, log ε, Σ acceptance, grad evals)."""
    R, dt = u.shape[0], u.dtype

    def body(i, c):
        uu, log_e, acc_sum, grads = c
        ki = jax.random.fold_in(k_loop, i)
        for j, (lo, hi, tlo, thi) in enumerate(_halves(R)):
            kj, kh = jax.random.split(jax.random.fold_in(ki, j))
            mu, scale = tuning_from(uu, tlo, thi)
            eps = jnp.exp(log_e) * jax.random.uniform(kj, (hi - lo,), dt, 1 - spec.jitter, 1 + spec.jitter)
            new, acc, g = _nuts_half(spec, logp, kh, uu[lo:hi], beta, eps, mu, scale)
            uu = uu.at[lo:hi].set(new)
            a = jnp.mean(jnp.where(jnp.isfinite(acc), acc, 0.0))
            log_e = nudge(log_e, a)
            acc_sum, grads = acc_sum + a * (hi - lo) / R, grads + g
        return uu, log_e, acc_sum, grads

    return jax.lax.fori_loop(0, sweeps, body, (u, log_e0, jnp.zeros((), dt), jnp.int32(0)))


def _sweeps_tuned(spec, logp, k_init, k_loop, u, beta, sweeps, log_e0, tuning_from, n_leap, nudge):
    """``sweeps`` HMC/MALA sweeps (:func:`_tuned_kernel`) of the cross-tuned halves:
    (u, H, log ε, Σ acceptance, grad evals)."""
    R, dt = u.shape[0], u.dtype
    kernel = _tuned_kernel(spec, logp)
    state = jax.vmap(kernel.init, in_axes=(0, 0, None))(jax.random.split(k_init, R), u, beta)
    step = jax.vmap(kernel.step, in_axes=(0, 0, None, 0, None, None))

    def body(i, c):
        st, log_e, acc_sum, grads = c
        ki = jax.random.fold_in(k_loop, i)
        for j, (lo, hi, tlo, thi) in enumerate(_halves(R)):
            kj, kh = jax.random.split(jax.random.fold_in(ki, j))
            _, scale = tuning_from(st.u, tlo, thi)
            L = n_leap(log_e)
            eps = jnp.exp(log_e) * jax.random.uniform(kj, (hi - lo,), dt, 1 - spec.jitter, 1 + spec.jitter)
            sub = jax.tree_util.tree_map(lambda x, lo=lo, hi=hi: x[lo:hi], st)
            new, info = step(jax.random.split(kh, hi - lo), sub, beta, eps, scale, L)
            st = jax.tree_util.tree_map(lambda x, y, lo=lo, hi=hi: x.at[lo:hi].set(y), st, new)
            a = jnp.mean(info["acceptance_rate"])
            log_e = nudge(log_e, a)
            acc_sum = acc_sum + a * (hi - lo) / R
            grads = grads + (L * (hi - lo)).astype(jnp.int32)
        return st, log_e, acc_sum, grads

    state, log_e, acc_sum, grads = jax.lax.fori_loop(
        0, sweeps, body, (state, log_e0, jnp.zeros((), dt), jnp.int32(R)))
    return state.u, state.H, log_e, acc_sum, grads


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
    D, dt = u.shape[1], u.dtype
    k_init, k_loop = jax.random.split(key)
    identity = jnp.eye(D, dtype=dt) if spec.precondition == "dense" else jnp.ones((D,), dt)
    none_tuning = _Tuning(jnp.zeros((D,), dt), identity, log_eps)
    energy = partial(_energy_flat, target, unravel)
    if spec.kind == "exact":
        return _move_exact(spec, target, ravel_one, energy, k_init, u, H, beta, sweeps, none_tuning)
    if spec.kind == "kernel":
        return _move_kernel(spec, target, unravel, ravel_one, energy, k_init, k_loop, u, beta,
                            sweeps, none_tuning)

    # ---- population-tuned HMC / MALA / NUTS, cross-tuned halves
    def logp(uf, b):
        lp0, Hh = _prior_and_energy(target, unravel(uf))
        return lp0 - b * Hh, Hh

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
        uf, log_e, acc_sum, grads = _sweeps_nuts(spec, logp, k_loop, u, beta, sweeps, log_e0,
                                                 tuning_from, nudge)
        Hn = jax.vmap(energy)(uf)
    else:
        uf, Hn, log_e, acc_sum, grads = _sweeps_tuned(spec, logp, k_init, k_loop, u, beta, sweeps,
                                                      log_e0, tuning_from, n_leap, nudge)
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
    stats = _rung_stats(H, w, fam, R, _observables_flat(target, unravel, u))
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
        return st, _rung_stats(H, w, fam, R, _observables_flat(target, unravel, u))

    return jax.vmap(one)(u)


@jax.jit
def _flatten_particles(target, params):
    to_u = lambda p: ravel_pytree(target.to_unconstrained(p))[0]
    return jax.vmap(jax.vmap(to_u))(params)


@jax.jit
def _final_params(target, template, u):
    """Model-space params, log prior and observables (dict) of flat unconstrained particles."""
    _, unravel = ravel_pytree(template)
    params = jax.vmap(lambda uf: target.to_constrained(unravel(uf)))(u)
    lp = jax.vmap(target.log_prior)(params)
    return params, lp, jax.vmap(target.observables)(params)


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
    try:
        return target.sample_prior(key, (M, R))  # M·R keys split from `key`, one per draw
    except InvalidArgumentError as err:
        raise InvalidArgumentError(
            f"annealing starts from exact prior draws, but the target {target.name!r} cannot draw "
            "from its prior (its `init` is not a prior draw). Give the model a `sample_prior(key)` "
            "method, build the target with `Target.from_functions(..., sample_prior=fn)`, or pass "
            f"`init_particles=` (model-space params with leading axis num_particles = {R}, drawn "
            "from the prior)") from err


def _dtype():
    return jnp.result_type(float)


# ============================================================================== result types
class AnnealState(NamedTuple):
    """Everything the rung loop of :func:`population_annealing` / :func:`ais` needs to continue
    (``result.state``). Pass it back as ``RunOptions(resume=state)`` with the same arguments and
    key to continue exactly where it stopped (``fingerprint`` refuses any other run).

    ``particles`` is the device state of every run (flat unconstrained positions (run, R, D),
    energies, log weights, families, log step size); ``cols`` the per-rung host columns (each a
    tuple with one (run, ...) array per rung reached); ``log_z`` (run,) log Ẑ_r at β_k (AIS:
    log mean_i w_i), ``offset`` (run,) the host offset of AIS's relative log weights,
    ``var_within`` (run,) the delta-method variance of log Ẑ_r; ``tuning`` the tuning used at
    each rung (None at β_0); ``k`` the rungs done, ``beta`` = β_k, ``wall_time_s`` the time
    spent in the rung loop so far.
    """

    particles: Any
    ladder: tuple
    cols: dict
    log_z: np.ndarray
    offset: np.ndarray
    var_within: np.ndarray
    tuning: tuple
    k: int
    beta: float
    wall_time_s: float
    fingerprint: tuple


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
              (R Σ ν_i²) per (run, beta); ``acceptance_rate``, ``step_size``, ``grad_evals``;
            - when the target declares observables (coordinate ``observable``, their names):
              ``obs_mean`` (beta, observable), the weighted E^β[A] combined across runs like
              ``E``; ``obs_mean_se`` its standard error like ``E_se`` (family-clustered within a
              run; the spread of the runs when num_runs ≥ 2); ``obs_mean_run``,
              ``obs_mean_se_run`` (run, beta, observable) per run; ``obs_cov`` (beta, quantity,
              quantity2), the weighted covariance matrix of (H, A_1, ..., A_K) over
              ``quantity = ["nll", *names]``, combined across runs like ``Var`` (so
              ``obs_cov[nll, nll]`` is ``Var`` and ``obs_cov[nll, A]`` is Cov^β(H, A) =
              −dE^β[A]/dβ), and ``obs_cov_run`` (run, beta, quantity, quantity2).
        samples: the final population at β_max as :class:`~slt_thermo.Samples` (one β, the
            particles of all runs as chains, one draw), resampled to equal weight, with one
            variable per observable (``samples.observable_names``).
        log_weights: AIS only: the final log weights, (run, chain).
        tuning: the tuning (population mean, preconditioner, step size) used at each rung.
        state: the final :class:`AnnealState` (``RunOptions(resume=result.state)`` continues a
            run stopped by ``RunOptions(max_chunks=k)``; ``attrs["complete"]`` says whether it
            reached β_max).
        attrs: settings and summary numbers (also ``rungs.attrs``).
    """

    rungs: xr.Dataset
    samples: Samples | None = None
    log_weights: np.ndarray | None = None
    tuning: list | None = dataclasses.field(default=None, repr=False)
    state: AnnealState | None = dataclasses.field(default=None, repr=False)

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


class _Ctx(NamedTuple):
    """The fixed context of an annealing run: what every rung needs besides the AnnealState."""

    target: Target
    spec: _Spec
    template: Any  # unconstrained params of one particle (structure for ravel/unravel)
    betas: np.ndarray | None  # the fixed ladder, or None (adaptive)
    beta_max: float
    target_ess: float
    max_rungs: int
    num_runs: int
    sweeps: int
    tunings: Any  # per-rung tuning given (BDMC's reverse pass), or None
    method: str
    attrs: dict
    key_rungs: jax.Array  # rung k uses fold_in(key_rungs, k)
    key_final: jax.Array  # AIS: the final equal-weight resampling


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        h.update(str((a.dtype, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _fingerprint(ctx: _Ctx, key, u0, start_beta) -> tuple:
    """The settings, key, initial particles and hyperparameters of a run (plain values only)."""
    spec = ctx.spec
    sampler = spec.exact_sampler
    spec_id = spec._replace(config=repr(spec.config),
                            exact_sampler=getattr(sampler, "__qualname__", repr(sampler)))
    ladder = None if ctx.betas is None else tuple(float(b) for b in ctx.betas)
    hyper = jax.tree_util.tree_leaves(ctx.target.hyper)
    return (ctx.method, ctx.target.name, ctx.target.n, tuple(spec_id), ladder, ctx.beta_max,
            ctx.target_ess, ctx.max_rungs, ctx.num_runs, ctx.sweeps, float(start_beta),
            ctx.tunings is not None, _digest(jax.random.key_data(key)), _digest(u0),
            _digest(*hyper))


def _push(cols, s, log_z, var_within, M, ess=None, ess_inc=None, acc=None, eps=None, grads=None):
    """``cols`` with one more rung (a new dict of tuples: the AnnealState is never mutated)."""
    nan = np.full(M, np.nan)
    row = {"E_run": s["E"], "Var_run": s["Var"], "E_var_run": s["E_var"],
           **{k: s[k] for k in ("families", "families_eff", "rho_t", "nonfinite")},
           "ess": nan if ess is None else ess, "ess_inc": nan if ess_inc is None else ess_inc,
           "acceptance_rate": nan if acc is None else acc, "step_size": nan if eps is None else eps,
           "grad_evals": np.zeros(M) if grads is None else grads,
           "log_z_run": log_z, "var_within": var_within}
    for k in ("obs_mean", "obs_mean_var", "obs_cov"):
        if k in s:
            row[k + "_run"] = s[k]
    return {k: cols.get(k, ()) + (np.array(v, float),) for k, v in row.items()}


def _anneal_begin(ctx: _Ctx, u0, start_beta, fingerprint) -> AnnealState:
    """The state at β_0: every run's particles with their energies (and observables)."""
    M = ctx.num_runs
    log_eps0 = math.log(_initial_eps(ctx.spec.kind, u0.shape[-1]))
    particles, s0 = _start(ctx.spec, ctx.target, ctx.template, u0, log_eps0)
    zeros = np.zeros(M)
    cols = _push({}, jax.device_get(s0), zeros, zeros, M)
    return AnnealState(particles, (float(start_beta),), cols, zeros, zeros, zeros, (None,), 0,
                       float(start_beta), 0.0, fingerprint)


def _anneal_done(ctx: _Ctx, st: AnnealState) -> bool:
    if ctx.betas is not None:
        return st.k + 1 >= len(ctx.betas)
    return st.beta >= ctx.beta_max


def _next_beta(ctx: _Ctx, st: AnnealState) -> float:
    """β of the next rung: the ladder's, or the adaptive one (raises AnnealingStalledError)."""
    if ctx.betas is not None:
        return float(ctx.betas[st.k + 1])
    beta, beta_max = st.beta, ctx.beta_max
    if st.k >= ctx.max_rungs:
        raise AnnealingStalledError(
            f"adaptive annealing hit max_rungs = {ctx.max_rungs} at β = {beta:.6g} < "
            f"{beta_max:g}; raise `max_rungs`, lower `target_ess` (now {ctx.target_ess}) or "
            "give a fixed ladder `betas`")
    d = _next_dbeta(np.asarray(st.particles.H), beta, beta_max, ctx.target_ess)
    new = beta_max if d >= beta_max - beta else beta + d
    if not (d > 0 and new > beta):
        raise AnnealingStalledError(
            f"adaptive annealing stalled at β = {beta:.6g}: Δβ underflowed (the weight "
            f"ESS falls below {ctx.target_ess}·R for every representable Δβ; check for "
            "non-finite or huge energies)")
    return new


def _log_z_update(spec: _Spec, s, st: AnnealState, dbeta, R):
    """(log_z, offset, var_within, ESS used) after a rung, from its device statistics ``s``."""
    h_ref = np.asarray(s["h_ref"], np.float64)
    if spec.scheme != "none":  # PA: log Ẑ += log Q
        log_q = np.asarray(s["lse_inc"], np.float64) - math.log(R) - dbeta * h_ref
        ess_used = np.asarray(s["ess_inc"], float)
        var_within = st.var_within + np.maximum(1.0 / ess_used - 1.0 / R, 0.0)
        return st.log_z + log_q, st.offset, var_within, ess_used
    base = st.offset - dbeta * h_ref  # AIS: log mean w over the relative log weights
    log_z = base + np.asarray(s["lse_w"], np.float64) - math.log(R)
    offset = base + np.asarray(s["shift"], np.float64)
    ess_used = np.asarray(s["ess"], float)
    return log_z, offset, np.maximum(1.0 / ess_used - 1.0 / R, 0.0), ess_used


def _anneal_step(ctx: _Ctx, st: AnnealState) -> AnnealState:
    """One rung: reweight (PA: resample) into the next β, move there; the new AnnealState."""
    start = time.perf_counter()
    spec, M, R, dt = ctx.spec, ctx.num_runs, ctx.spec.num_particles, _dtype()
    new = _next_beta(ctx, st)
    dbeta = new - st.beta
    keys = jax.random.split(jax.random.fold_in(ctx.key_rungs, st.k), M)
    tun = None if ctx.tunings is None else ctx.tunings[st.k]
    n_sweeps = ctx.sweeps
    if ctx.method == "ais_reverse" and st.k + 2 == len(ctx.betas):
        n_sweeps = 0  # the last reverse move (at β = 0) is never used
    particles, s, tun_used = _rung(spec, ctx.target, ctx.template, st.particles, keys,
                                   jnp.asarray(new, dt), jnp.asarray(dbeta, dt),
                                   jnp.asarray(n_sweeps, jnp.int32), tun)
    s = jax.device_get(s)
    log_z, offset, var_within, ess_used = _log_z_update(spec, s, st, dbeta, R)
    cols = _push(st.cols, s, log_z, var_within, M, ess=ess_used, ess_inc=s["ess_inc"],
                 acc=s["acceptance_rate"], eps=s["step_size"], grads=s["grad_evals"])
    return AnnealState(particles, st.ladder + (new,), cols, log_z, offset, var_within,
                       st.tuning + (tun_used,), st.k + 1, new,
                       st.wall_time_s + time.perf_counter() - start, st.fingerprint)


def _anneal(target, spec, *, betas, beta_max, target_ess, max_rungs, num_runs, key, params0,
            sweeps, tunings=None, progress, method, attrs, start_beta=0.0, max_chunks=None,
            resume=None):
    """Run the rung loop (from ``resume`` when given, for at most ``max_chunks`` rungs); returns
    an AnnealingResult (raises AnnealingStalledError on a stall)."""
    M, R = num_runs, spec.num_particles
    k_rungs, k_final = jax.random.split(key)
    template = target.to_unconstrained(jax.tree_util.tree_map(lambda x: x[0, 0], params0))
    u0 = _flatten_particles(target, params0).astype(_dtype())
    ctx = _Ctx(target, spec, template, betas, beta_max, target_ess, max_rungs, M, sweeps, tunings,
               method, attrs, k_rungs, k_final)
    fingerprint = _fingerprint(ctx, key, u0, start_beta)
    if resume is None:
        st = _anneal_begin(ctx, u0, start_beta, fingerprint)
    elif resume.fingerprint != fingerprint:
        raise InvalidArgumentError(
            "`resume` is the state of a different run (other target, settings, initial particles "
            "or key); resume with exactly the arguments of the run that made it")
    else:
        st = resume
    bar = _progress_bar((len(betas) - 1) if betas is not None else max_rungs, progress,
                        f"{method} {M}×{R}")
    bar.update(st.k)
    done = 0
    try:
        while not _anneal_done(ctx, st) and (max_chunks is None or done < max_chunks):
            st = _anneal_step(ctx, st)
            done += 1
            bar.update(1)
            bar.set_postfix_str(f"β={st.beta:.4g}")
    except AnnealingStalledError as err:
        bar.close()
        if st.k > 0:
            err.partial = _collect(ctx, st)
        raise
    bar.close()
    return _collect(ctx, st)


def _combine_runs(wr, x_run, var_run):
    """Machta's combination of per-run means ``x_run`` (run, beta, ...) with weights ``wr`` ∝ Ẑ_r
    (run, beta): (mean, standard error); the error is the spread of the runs when there are
    ≥ 2, else the within-run one from ``var_run``."""
    M = wr.shape[0]
    w = wr.reshape(wr.shape + (1,) * (x_run.ndim - 2))
    mean = np.sum(w * x_run, axis=0)
    if M >= 2:
        return mean, np.sqrt(np.sum(w**2 * (x_run - mean) ** 2, axis=0) * M / (M - 1))
    return mean, np.sqrt(np.sum(w**2 * var_run, axis=0))


def _observable_vars(A, wr, names) -> dict:
    """The per-rung observable variables of ``rungs`` (empty when there are none)."""
    if "obs_mean_run" not in A:
        return {}
    mean_run, cov_run = A["obs_mean_run"], A["obs_cov_run"]
    mean, se = _combine_runs(wr, mean_run, A["obs_mean_var_run"])
    m_run = np.concatenate([A["E_run"][..., None], mean_run], axis=-1)  # (run, beta, 1 + K)
    m = np.sum(wr[..., None] * m_run, axis=0)
    dev = m_run - m
    cov = np.sum(wr[..., None, None] * (cov_run + dev[..., :, None] * dev[..., None, :]), axis=0)
    rbo = ("run", "beta", "observable")
    qq = ("quantity", "quantity2")
    return {"obs_mean": (("beta", "observable"), mean), "obs_mean_se": (("beta", "observable"), se),
            "obs_mean_run": (rbo, mean_run), "obs_mean_se_run": (rbo, np.sqrt(A["obs_mean_var_run"])),
            "obs_cov": (("beta",) + qq, cov), "obs_cov_run": (("run", "beta") + qq, cov_run)}


def _rungs_dataset(ctx: _Ctx, st: AnnealState) -> xr.Dataset:
    """The per-rung curves (``result.rungs``) of a state, with the run's attributes."""
    M, R, spec = ctx.num_runs, ctx.spec.num_particles, ctx.spec
    A = {k: np.stack(v, axis=1) for k, v in st.cols.items()}  # (run, beta, ...)
    lz = A["log_z_run"]
    # Machta: log mean_r Ẑ_r, weights w_r ∝ Ẑ_r per rung
    log_z = _np_logsumexp(lz, axis=0) - math.log(M)
    wr = np.exp(lz - _np_logsumexp(lz, axis=0))
    se_within = np.sqrt(np.sum(wr**2 * A["var_within"], axis=0))
    E_run, Var_run = A["E_run"], A["Var_run"]
    E, E_se = _combine_runs(wr, E_run, A["E_var_run"])
    Var = np.sum(wr * (Var_run + (E_run - E) ** 2), axis=0)
    log_z_se = np.std(M * wr, axis=0, ddof=1) / math.sqrt(M) if M >= 2 else se_within
    ess = A["ess"]
    with np.errstate(divide="ignore", invalid="ignore"):
        rho_inc = np.where(np.isfinite(A["ess_inc"]), R / A["ess_inc"] - 1.0, 0.0)
    rho_f_delta = np.cumsum(rho_inc, axis=1)
    names = list(ctx.target.observable_names)
    coords = {"beta": np.asarray(st.ladder), "run": np.arange(M)}
    if "obs_mean_run" in A:
        coords.update(observable=names, quantity=["nll", *names], quantity2=["nll", *names])
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
            "grad_evals": (rb, A["grad_evals"]), **_observable_vars(A, wr, names),
        },
        coords=coords,
    )
    meta = {
        "method": ctx.method, "n": ctx.target.n, "target": ctx.target.name,
        "population": ctx.target.is_population, "num_particles": R, "num_runs": M,
        "mcmc": spec.kind, "resampling": spec.scheme, "precondition": spec.precondition,
        "num_rungs": len(st.ladder), "grad_evals": int(np.sum(A["grad_evals"])),
        "rho_f_delta": float(np.mean(rho_f_delta[:, -1])), "rho_t": float(np.mean(A["rho_t"][:, -1])),
        "wall_time_s": st.wall_time_s, "complete": _anneal_done(ctx, st),
        "observable_names": ",".join(names), "slt_thermo_version": _version(),
    }
    if M >= 2:
        meta["rho_f_runs"] = float(R * np.var(lz[:, -1], ddof=1))
    meta.update(ctx.attrs)
    ds.attrs = clean_attrs(meta)
    return ds


def _final_samples(ctx: _Ctx, st: AnnealState, meta: dict):
    """(Samples of the current population at equal weight, AIS's final log weights or None)."""
    M, R = ctx.num_runs, ctx.spec.num_particles
    u, H = st.particles.u, st.particles.H
    log_weights = None
    if ctx.spec.scheme == "none":
        log_weights = np.asarray(st.particles.logw, np.float64) + st.offset[:, None]
        u, H = _equalize(jax.random.split(ctx.key_final, M), st.particles.logw, u, H, R)
    MR = M * R
    params, lp, obs = _final_params(ctx.target, ctx.template, u.reshape((MR, -1)).astype(_dtype()))
    names = _leaf_names(ctx.template)
    Hn = np.asarray(H, float).reshape(1, MR, 1)
    bcd = ("beta", "chain", "draw")
    data_vars = {
        "nll": (bcd, Hn),
        "log_prior": (bcd, np.asarray(lp, float).reshape(1, MR, 1)),
        "healthy": (("beta", "chain"), np.isfinite(Hn[..., 0])),
    }
    for name, leaf in zip(names, jax.tree_util.tree_leaves(params)):
        g = np.asarray(leaf)[None, :, None]
        data_vars[name] = (bcd + tuple(f"{name}_dim_{i}" for i in range(g.ndim - 3)), g)
    for name in ctx.target.observable_names:
        data_vars[name] = (bcd, np.asarray(obs[name]).reshape(1, MR, 1))
    sds = xr.Dataset(data_vars, coords={"beta": [float(st.ladder[-1])], "chain": np.arange(MR), "draw": [0]})
    smeta = dict(meta)
    smeta.update(sampler=ctx.method, num_draws=1, num_warmup=0, num_samples=1,
                 param_names=",".join(names), localized=False, gamma=0.0)
    sds.attrs = clean_attrs(smeta)
    return Samples(sds), log_weights


def _collect(ctx: _Ctx, st: AnnealState) -> AnnealingResult:
    ds = _rungs_dataset(ctx, st)
    samples, log_weights = _final_samples(ctx, st, dict(ds.attrs))
    return AnnealingResult(ds, samples, log_weights, list(st.tuning), st)


# ============================================================================== public API
def _annealing_options(options, progress, init_particles, *, resumable=True) -> RunOptions:
    """The RunOptions of an annealing call (keywords over ``options``), checked."""
    opts = RunOptions.merge(options, progress=progress, init=init_particles)
    for name in ("devices", "checkpoint"):
        if getattr(opts, name) is not None:
            raise InvalidArgumentError(
                f"`RunOptions.{name}` is reserved for sharded / checkpointed runs, which are not "
                "available yet; leave it None")
    if not resumable and (opts.max_chunks is not None or opts.resume is not None):
        raise InvalidArgumentError(
            "bdmc runs its forward and reverse passes whole: `RunOptions.max_chunks` and "
            "`resume` apply to population_annealing and ais")
    if opts.max_chunks is not None:
        _positive_int(opts.max_chunks, "max_chunks")
    if opts.resume is not None and not isinstance(opts.resume, AnnealState):
        raise InvalidArgumentError(
            "`resume` must be the AnnealState of an earlier run with the same arguments "
            f"(result.state), got {type(opts.resume).__name__}")
    return opts


def _check_target(target, key):
    if not isinstance(target, Target):
        raise InvalidArgumentError(f"`target` must be a slt_thermo.Target, got {type(target).__name__}")
    _check_key(key)
    _check_names(_leaf_names(target.init(jax.random.PRNGKey(0))), target.observable_names)


def _dim(target) -> int:
    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(target.init(jax.random.PRNGKey(0)))))


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
    progress: bool | None = None,
    options: RunOptions | None = None,
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
            ``target.sample_prior`` (the model's ``sample_prior``, ``from_functions(...,
            sample_prior=fn)``, or a numpyro model's priors; required when the target has none:
            its ``init`` is not a prior draw). Overrides ``options.init``.
        exact_sampler: ``(key, beta, num) -> params`` exact draws from p^β (perfect transitions).
        progress: show a progress bar over the rungs (default ``options.progress``, True).
        options: a :class:`~slt_thermo.RunOptions`; read here: ``progress``, ``init`` (the
            initial particles), ``max_chunks`` (stop after that many rungs of this call and
            return what there is, ``attrs["complete"] = 0``) and ``resume`` (an
            :class:`AnnealState`, ``result.state`` of an earlier call with the same arguments
            and key: continues it, with exactly the numbers of an uninterrupted run).

    Returns:
        :class:`AnnealingResult`; ``result.log_z`` / ``result.free_energy`` are Estimates at
        β_max, ``result.rungs`` the per-rung curves (and the target's observables),
        ``result.samples`` the final population, ``result.state`` its :class:`AnnealState`.
    """
    _check_target(target, key)
    opts = _annealing_options(options, progress, init_particles)
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
    params0 = _initial_particles(target, k_init, M, R, opts.init, exact_sampler)
    spec = _resolve_move(mcmc, exact_sampler, num_leapfrog=num_leapfrog, max_leapfrog=max_leapfrog,
                         target_accept=target_accept, precondition=precondition,
                         max_tree_depth=max_tree_depth, dim=_dim(target), num_particles=R,
                         scheme=resampling)
    attrs = {"mcmc_steps": sweeps, "adaptive": betas is None, "target_ess": target_ess,
             "max_rungs": max_rungs, "target_accept": spec.target_accept}
    return _anneal(target, spec, betas=betas, beta_max=float(beta_max), target_ess=target_ess,
                   max_rungs=max_rungs, num_runs=M, key=k_run, params0=params0, sweeps=sweeps,
                   progress=opts.progress, method="population_annealing", attrs=attrs,
                   max_chunks=opts.max_chunks, resume=opts.resume)


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
    progress: bool | None = None,
    options: RunOptions | None = None,
) -> AnnealingResult:
    """Annealed importance sampling (Neal 2001) / Jarzynski along a fixed ladder from β = 0.

    x_0 ~ φ exactly; for each rung, log w += −Δβ_k H(x_{k−1}), then x_k ~ T_k(x_{k−1}, ·) leaving
    p^{β_k} invariant (the kernels of :func:`population_annealing`, tuned from the weighted
    population). log Ẑ = log mean_i w_i (unbiased Ẑ; a stochastic lower bound for log Z);
    ``result.log_weights`` holds the final per-chain log weights (their mean is the lower bound
    of the BDMC sandwich), ``rungs["ess"]`` the weight ESS at every rung, and the standard error
    of log Ẑ is the delta method √(1/ESS − 1/N). Arguments (``options`` included: progress,
    init, max_chunks, resume) as in :func:`population_annealing`.
    """
    _check_target(target, key)
    opts = _annealing_options(options, progress, init_particles)
    N = _positive_int(num_chains, "num_chains", 2)
    M = _positive_int(num_runs, "num_runs")
    sweeps = _positive_int(mcmc_steps, "mcmc_steps", 0)
    betas = _check_ladder(betas)
    k_init, k_run = jax.random.split(key)
    params0 = _initial_particles(target, k_init, M, N, opts.init, exact_sampler)
    spec = _resolve_move(mcmc, exact_sampler, num_leapfrog=num_leapfrog, max_leapfrog=max_leapfrog,
                         target_accept=target_accept, precondition=precondition,
                         max_tree_depth=max_tree_depth, dim=_dim(target), num_particles=N,
                         scheme="none")
    attrs = {"mcmc_steps": sweeps, "adaptive": False, "target_accept": spec.target_accept}
    return _anneal(target, spec, betas=betas, beta_max=float(betas[-1]), target_ess=0.5,
                   max_rungs=len(betas), num_runs=M, key=k_run, params0=params0, sweeps=sweeps,
                   progress=opts.progress, method="ais", attrs=attrs, max_chunks=opts.max_chunks,
                   resume=opts.resume)


def _exact_sample_particles(target, exact_sample, N):
    """``exact_sample`` (one params pytree or leading axis N) as particles (1, N, ...)."""
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
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(ref), out)


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
    progress: bool | None = None,
    options: RunOptions | None = None,
) -> BDMCResult:
    """Bidirectional Monte Carlo: forward AIS (lower bound) and reverse AIS (upper bound).

    ``exact_sample`` is an exact draw from the posterior p^{β_max} in model space: one params
    pytree (every reverse chain starts there) or a pytree with leading axis ``num_chains``. For
    simulated data it is the θ* the data were drawn from (θ* ~ φ, D ~ p(·|θ*)); a fixed teacher
    is NOT such a draw unless it was drawn from the prior.

    The reverse chains anneal β from β_max to 0, accumulating log w_rev += Δβ_k H(x_k); E[w_rev] =
    1/Z, so E[−log w_rev] ≥ log Z. The population-tuned kernels of the reverse pass reuse the
    forward pass's tuning at each β (the reverse population starts collapsed on θ*), so they are
    fixed, exactly invariant kernels. ``options`` (a :class:`~slt_thermo.RunOptions`) gives
    ``progress`` and ``init`` (the forward pass's initial particles; ``init_particles`` wins);
    both passes run whole (``max_chunks`` / ``resume`` raise).
    """
    _check_target(target, key)
    opts = _annealing_options(options, progress, init_particles, resumable=False)
    N = _positive_int(num_chains, "num_chains", 2)
    betas = _check_ladder(betas)
    k_fwd, k_rev = jax.random.split(key)
    common = {"mcmc": mcmc, "mcmc_steps": mcmc_steps, "num_leapfrog": num_leapfrog,
              "max_leapfrog": max_leapfrog, "target_accept": target_accept,
              "precondition": precondition, "max_tree_depth": max_tree_depth,
              "exact_sampler": exact_sampler, "progress": opts.progress}
    fwd = ais(target, betas=betas, num_chains=N, key=k_fwd, init_particles=opts.init, **common)

    # reverse: start from the exact posterior sample(s)
    params_rev = _exact_sample_particles(target, exact_sample, N)
    spec = fwd_spec = _resolve_move(mcmc, exact_sampler, num_leapfrog=num_leapfrog,
                                    max_leapfrog=max_leapfrog, target_accept=target_accept,
                                    precondition=precondition, max_tree_depth=max_tree_depth,
                                    dim=_dim(target), num_particles=N, scheme="none")
    rev_betas = betas[::-1].copy()
    tunings = None
    if fwd_spec.kind in MOVES:
        spec = fwd_spec._replace(adapt=False)
        # forward rung j moved at betas[j]; reverse rung k moves at rev_betas[k + 1] = betas[K-1-k]
        K = len(betas) - 1
        tunings = [fwd.tuning[max(K - 1 - k, 1)] for k in range(K)]
    sweeps = _positive_int(mcmc_steps, "mcmc_steps", 0)
    rev = _anneal(target, spec, betas=rev_betas, beta_max=float(rev_betas[-1]), target_ess=0.5,
                  max_rungs=len(betas), num_runs=1, key=k_rev, params0=params_rev, sweeps=sweeps,
                  tunings=tunings, progress=opts.progress, method="ais_reverse",
                  attrs={"mcmc_steps": sweeps, "adaptive": False}, start_beta=float(rev_betas[0]))
    return _bdmc_result(fwd, rev)


def _bdmc_result(fwd: AnnealingResult, rev: AnnealingResult) -> BDMCResult:
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


__all__ = ["AnnealState", "AnnealingResult", "AnnealingStalledError", "BDMCResult", "ais", "bdmc",
           "population_annealing", "resample"]
