"""One rung of annealing, compiled: reweight into the new β, resample (PA), move, statistics.

Everything that runs per particle at a rung (reweighting, resampling, tuning, all sweeps, the
target's observables) is one jit-compiled function vmapped over the independent runs, taking β,
Δβ and the number of sweeps as traced arguments.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .moves import _energy_flat, _move, _Spec
from .resampling import _resample_w


class _State(NamedTuple):
    u: jax.Array  # (R, D) unconstrained, flattened
    H: jax.Array  # (R,) energies at u
    logw: jax.Array  # (R,) log weights relative to a host-side offset (0 after resampling)
    fam: jax.Array  # (R,) family: index of the initial ancestor
    log_eps: jax.Array  # () step size of the tuned kernels, in whitened coordinates


def _dtype():
    return jnp.result_type(float)


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


# ============================================================================== the rung
def _reweight(st: _State, dbeta):
    """The log weights after a step Δβ, with the statistics of the update: the log-sum-exps of
    the increments (taken relative to the best finite energy ``h_ref``) and of the new weights,
    and the ESS of each."""
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
    return lw, {"lse_inc": lse_inc, "lse_w": lse_w, "h_ref": h_ref, "ess": ess, "ess_inc": ess_inc}


def _rung_one(spec: _Spec, target, template, st: _State, key, beta, dbeta, sweeps, tun_in):
    R = spec.num_particles
    _, unravel = ravel_pytree(template)
    ravel_one = lambda p: ravel_pytree(p)[0]
    k_res, k_move = jax.random.split(key)
    lw, weights = _reweight(st, dbeta)
    w = jnp.exp(lw - weights["lse_w"])
    if spec.scheme != "none":
        idx = jnp.sort(_resample_w(k_res, w, R, spec.scheme))  # families contiguous
        u, H, fam = st.u[idx], st.H[idx], st.fam[idx]
        w = jnp.full((R,), 1.0 / R, w.dtype)
        shift = jnp.zeros((), lw.dtype)
        logw = jnp.zeros_like(lw)
    else:
        u, H, fam = st.u, st.H, st.fam
        shift = jnp.max(lw)
        logw = lw - shift
    u, H, acc, grads, tun = _move(spec, target, unravel, ravel_one, k_move, u, H, w, st.log_eps,
                                  beta, sweeps, tun_in)
    stats = _rung_stats(H, w, fam, R, _observables_flat(target, unravel, u))
    stats.update(weights, shift=shift, acceptance_rate=acc, grad_evals=grads,
                 step_size=jnp.exp(tun.log_eps))
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
    """Model-space particles (run, particle, ...) as flat unconstrained ones (run, particle, D)."""
    to_u = lambda p: ravel_pytree(target.to_unconstrained(p))[0]
    return jax.vmap(jax.vmap(to_u))(params)
