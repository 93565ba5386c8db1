"""The moves of annealing: population-tuned HMC / MALA / NUTS, a sampler config's kernel, exact draws.

Every move is a one-chain kernel vmapped over the particles. The population-tuned kernels run in
the whitened coordinates of :mod:`.tuning` and move the population in two cross-tuned halves; a
sampler config's kernel is re-initialized at every rung; the exact move replaces the particles by
fresh draws from p^β (the perfect transitions of the exact tests).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ...errors import InvalidArgumentError
from ...target import Target
from ..mala import accept_prob, scaled_langevin
from ..._utils import positive_int
from ..run import Kernel
from .tuning import (
    PRECONDITIONS,
    _from_z,
    _halves,
    _mul,
    _mul_t,
    _nudge,
    _precondition,
    _resolve_precondition,
    _to_z,
    _Tuning,
)

MOVES = ("hmc", "mala", "nuts")
_HALF_PERIOD = 0.5 * math.pi  # HMC trajectory time in whitened coordinates (a quarter period)


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


class _MoveArgs(NamedTuple):
    """The move keywords of population_annealing / ais / bdmc, as given (see :func:`_resolve_move`)."""

    mcmc: Any
    exact_sampler: Any
    num_leapfrog: Any
    max_leapfrog: Any
    target_accept: Any
    precondition: Any
    max_tree_depth: Any


# ============================================================================== energy pieces
def _prior_and_energy(target: Target, u):
    """(log φ(w) + log|det J|, H(w)) at unconstrained ``u`` (a params pytree)."""
    w, logdet = target.constrain_with_logdet(u)
    return target.log_prior(w) + logdet, target.nll(w)


def _energy_flat(target, unravel, uf):
    return target.nll(target.to_constrained(unravel(uf)))


# ============================================================================== one-chain kernels
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
    ``acceptance_rate``): one HMC trajectory (L leapfrog steps, momentum p ~ N(0, I) in whitened
    coordinates, i.e. inverse mass matrix CCᵀ) or one MALA move z' = z + (ε/2)∇_z + √ε ξ in
    whitened coordinates (:func:`~slt_thermo.samplers.mala.scaled_langevin`), written in u-space
    so the state's gradient survives a change of C without a new gradient evaluation.
    """
    vg = jax.value_and_grad(logp, has_aux=True)

    def init(key, u, beta):
        del key
        (lp, H), g = vg(u, beta)
        return _PState(u, lp, g, H, jnp.ones_like(lp))

    def finish(state, u, lp, H, g, log_ratio, key):
        acc = accept_prob(log_ratio)
        take = jax.random.uniform(key, dtype=acc.dtype) < acc
        sel = lambda a, b: jnp.where(take, a, b)
        new = _PState(sel(u, state.u), sel(lp, state.lp), sel(g, state.grad), sel(H, state.H), acc)
        return new, {"acceptance_rate": acc}

    def mala(key, state, beta, eps, scale, L):
        del L
        k1, k2 = jax.random.split(key)
        prop, (lp, H), g, log_ratio = scaled_langevin(
            k1, lambda u: logp(u, beta), state.u, state.lp, state.grad, eps, partial(_mul, scale),
            partial(_mul_t, scale))
        return finish(state, prop, lp, H, g, log_ratio, k2)

    def hmc(key, state, beta, eps, scale, L):
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

    step = mala if spec.kind == "mala" else hmc
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


# ============================================================================== the moves
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


def _jittered(spec, key, log_e, n, dt):
    """ε for ``n`` particles: e^log_e times a uniform factor in 1 ± jitter, one per particle."""
    return jnp.exp(log_e) * jax.random.uniform(key, (n,), dt, 1 - spec.jitter, 1 + spec.jitter)


def _cross_tuned(spec, k_loop, sweeps, R, dt, carry, log_e0, grads0, half, nudge):
    """``sweeps`` sweeps, each moving the halves of :func:`~.tuning._halves` in turn:
    ``half(carry, key, eps, log_e, (lo, hi, tlo, thi)) -> (carry, mean acceptance, grad evals)``
    moves particles [lo, hi) tuned from [tlo, thi) with per-particle ε, and log ε is nudged after
    each half. Returns (carry, log ε, Σ acceptance weighted by the halves' sizes, grad evals)."""

    def body(i, c):
        carry, log_e, acc_sum, grads = c
        ki = jax.random.fold_in(k_loop, i)
        for j, (lo, hi, tlo, thi) in enumerate(_halves(R)):
            kj, kh = jax.random.split(jax.random.fold_in(ki, j))
            eps = _jittered(spec, kj, log_e, hi - lo, dt)
            carry, a, g = half(carry, kh, eps, log_e, (lo, hi, tlo, thi))
            log_e = nudge(log_e, a)
            acc_sum, grads = acc_sum + a * (hi - lo) / R, grads + g
        return carry, log_e, acc_sum, grads

    return jax.lax.fori_loop(0, sweeps, body, (carry, log_e0, jnp.zeros((), dt), grads0))


def _sweeps_nuts(spec, logp, k_loop, u, beta, sweeps, log_e0, tuning_from, nudge):
    """``sweeps`` NUTS sweeps of the cross-tuned halves: (u, log ε, Σ acceptance, grad evals)."""

    def half(uu, key, eps, log_e, bounds):
        lo, hi, tlo, thi = bounds
        mu, scale = tuning_from(uu, tlo, thi)
        new, acc, g = _nuts_half(spec, logp, key, uu[lo:hi], beta, eps, mu, scale)
        return uu.at[lo:hi].set(new), jnp.mean(jnp.where(jnp.isfinite(acc), acc, 0.0)), g

    return _cross_tuned(spec, k_loop, sweeps, u.shape[0], u.dtype, u, log_e0, jnp.int32(0), half,
                        nudge)


def _sweeps_tuned(spec, logp, k_init, k_loop, u, beta, sweeps, log_e0, tuning_from, n_leap, nudge):
    """``sweeps`` HMC/MALA sweeps (:func:`_tuned_kernel`) of the cross-tuned halves:
    (u, H, log ε, Σ acceptance, grad evals)."""
    R = u.shape[0]
    kernel = _tuned_kernel(spec, logp)
    state = jax.vmap(kernel.init, in_axes=(0, 0, None))(jax.random.split(k_init, R), u, beta)
    step = jax.vmap(kernel.step, in_axes=(0, 0, None, 0, None, None))

    def half(st, key, eps, log_e, bounds):
        lo, hi, tlo, thi = bounds
        _, scale = tuning_from(st.u, tlo, thi)
        L = n_leap(log_e)
        sub = jax.tree_util.tree_map(lambda x: x[lo:hi], st)
        new, info = step(jax.random.split(key, hi - lo), sub, beta, eps, scale, L)
        st = jax.tree_util.tree_map(lambda x, y: x.at[lo:hi].set(y), st, new)
        return st, jnp.mean(info["acceptance_rate"]), (L * (hi - lo)).astype(jnp.int32)

    state, log_e, acc_sum, grads = _cross_tuned(spec, k_loop, sweeps, R, u.dtype, state, log_e0,
                                                jnp.int32(R), half, nudge)
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
        return _nudge(log_e, a, spec.target_accept) if spec.adapt else log_e

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


# ============================================================================== settings
def _move_kind(mcmc, exact_sampler):
    """(kind, sampler config or None) of the move keywords ``mcmc`` / ``exact_sampler``."""
    if exact_sampler is not None:
        if not callable(exact_sampler):
            raise InvalidArgumentError("`exact_sampler` must be a callable (key, beta, num) -> params")
        return "exact", None
    if isinstance(mcmc, str):
        if mcmc.lower() not in MOVES:
            raise InvalidArgumentError(
                f"`mcmc` must be one of {MOVES} or a sampler config with .build(target, center, "
                f"gamma) (e.g. HMCConfig), got {mcmc!r}")
        return mcmc.lower(), None
    if callable(getattr(mcmc, "build", None)):
        return "kernel", mcmc
    raise InvalidArgumentError(
        f"`mcmc` must be one of {MOVES} or a sampler config with .build(target, center, gamma), "
        f"got {type(mcmc).__name__}")


def _resolve_move(args: _MoveArgs, *, dim, num_particles, scheme, jitter=0.2) -> _Spec:
    """The checked static settings of a run's move (``args`` as the user gave them)."""
    kind, config = _move_kind(args.mcmc, args.exact_sampler)
    if args.precondition not in PRECONDITIONS:
        raise InvalidArgumentError(
            f"`precondition` must be one of {PRECONDITIONS}, got {args.precondition!r}")
    precondition = _resolve_precondition(args.precondition, kind in MOVES, dim, num_particles)
    num_leapfrog = 0 if args.num_leapfrog is None else args.num_leapfrog
    num_leapfrog = positive_int(num_leapfrog, "num_leapfrog", 0)
    max_leapfrog = positive_int(args.max_leapfrog, "max_leapfrog")
    target_accept = args.target_accept
    if target_accept is None:
        target_accept = {"hmc": 0.8, "mala": 0.574, "nuts": 0.8}.get(kind, 0.8)
    if not 0 < target_accept < 1:
        raise InvalidArgumentError(f"`target_accept` must be in (0, 1), got {target_accept!r}")
    depth = args.max_tree_depth
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 20:
        raise InvalidArgumentError(f"`max_tree_depth` must be an integer in [1, 20], got {depth!r}")
    return _Spec(kind, scheme, num_particles, precondition, True, num_leapfrog, max_leapfrog,
                 float(target_accept), float(jitter), depth, config, args.exact_sampler)
