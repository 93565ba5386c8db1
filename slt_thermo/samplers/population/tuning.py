"""Tuning the moves from the population: preconditioner, whitening, step size, cross-tuned halves.

The particles' weighted covariance Σ defines the preconditioner C (``"dense"``: chol Σ, shrunk
towards the diagonal when there are few particles per dimension; ``"diag"``: √diag Σ;
``"none"``: identity), so the tuned kernels run in whitened coordinates z = C⁻¹(u − μ). The step
size ε (in z) is carried from rung to rung and nudged after every half-sweep by the mean
acceptance. The population moves in two halves, each tuned from the other (:func:`_halves`), so
that a particle's kernel never depends on its own position.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

PRECONDITIONS = ("auto", "dense", "diag", "none")
_NUDGE = 0.7  # the largest change of log ε after one half-sweep


class _Tuning(NamedTuple):
    mu: jax.Array  # (D,)
    scale: jax.Array  # (D,) diag / (D, D) Cholesky factor
    log_eps: jax.Array  # ()


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


def _resolve_precondition(precondition, tuned, dim, num_particles):
    """The preconditioner a run uses: ``"none"`` for moves that are not population-tuned or
    populations too small to split, ``"auto"`` → dense when dim ≤ 64 and R ≥ 8·dim, else diag."""
    if not tuned or num_particles < 8:
        return "none"  # (each half of the population tunes the other: too few to estimate)
    if precondition == "auto":
        return "dense" if (dim <= 64 and num_particles >= 8 * dim) else "diag"
    return precondition


def _to_z(u, mu, scale):
    if scale.ndim == 1:
        return (u - mu) / scale
    return jax.scipy.linalg.solve_triangular(scale, (u - mu).T, lower=True).T


def _from_z(z, mu, scale):
    return mu + (scale * z if scale.ndim == 1 else scale @ z)


def _mul(scale, v):
    """C v for a diagonal (vector) or lower-triangular (matrix) scale C."""
    return scale * v if scale.ndim == 1 else scale @ v


def _mul_t(scale, v):
    """Cᵀ v."""
    return scale * v if scale.ndim == 1 else scale.T @ v


def _initial_eps(kind, dim):
    """ε at β = 0 in whitened coordinates: MALA's d^(−1/3) scaling, HMC's d^(−1/4)."""
    if kind == "mala":
        return float(dim) ** (-1.0 / 3.0)
    return min(1.0, 1.5 * float(dim) ** -0.25)


def _nudge(log_eps, acceptance, target_accept):
    """log ε after a half-sweep of mean ``acceptance``: += clip(ā − target, ±0.7)."""
    return log_eps + jnp.clip(acceptance - target_accept, -_NUDGE, _NUDGE)


def _halves(R):
    """The cross-tuned halves: (move lo, hi, tune-from lo, hi) for A = [0, R/2) and B."""
    h = R // 2
    return ((0, h, h, R), (h, R, 0, h))
