"""Thermometers: the inverse temperature β̂ at which a tempered posterior looks like the
stationary iterates of SGD (REFERENCE §4.1), four ways, each with its error bar and the
assumption it rests on.

- (a) ``energy_matching``: E^β̂[nL_n] = the time average of nL_n(w_t), E^β read from a tempered
  ladder run by MBAR (:func:`slt_thermo.thermo.mbar.beta_at_energy`). Assumes only that the SGD
  law has the energy of some p^β — the most general, and the one that needs a sampler run.
- (b) ``equipartition``: β̂ = λ/(⟨nL_n⟩ − nL_n(w*)), the LLC formula read backwards (E^β[nL_n] −
  nL_n(w*) ≈ λ/β near w*). Assumes the iterates stay in the basin of w* and λ is known.
- (c) ``covariance_matching``: β̂ = d / tr(∇²H(w*) Σ_SGD), H = nL_n (p^β ≈ N(w*, (β∇²H)^{-1})).
  Regular minima only. Per eigendirection of ∇²H also β̂_j = 1/(κ_j v_jᵀΣv_j): equal for a Gibbs
  law; with anisotropic noise they differ — for Fisher-like noise C ≈ A, Σ ≈ (η/2B)I and the
  stiff directions are hotter (smaller β̂_j).
- (d) ``mandt``: β_eff = 2B/(η n σ_g²) with σ_g² = tr C/d, C the covariance of the per-example
  gradients at w* (Mandt, Hoffman & Blei 2017): the continuous-time OU limit with isotropic
  noise C = σ_g² I. Ignores the O(ηκ) discreteness: for L = aθ²/2 the exact discrete law gives
  nβ = B(2 − ηa)/(ησ²), (d) gives 2B/(ησ²) — too cold by the factor 2/(2 − ηa).

By the trace of the OU Lyapunov equation, 2tr(AΣ) = (η/B)tr C whatever the noise's shape, so
(a)–(d) agree on any quadratic basin up to discreteness: they measure one scalar temperature.
What anisotropic noise breaks is that a single β describes the law: read (c)'s per-direction β̂_j.
Errors: (a)–(c) from the spread between independent runs (every run is one stationary
trajectory: the runs' means are independent), (d) from the spread of the per-example gradients.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.flatten_util import ravel_pytree

from ..errors import InvalidArgumentError, SLTThermoWarning
from ..results import Samples
from ..target import Target

ASSUMPTIONS = {
    "energy": "the SGD law has the mean energy of some tempered posterior p^β (read from a sampler's ladder)",
    "equipartition": "iterates stay near w*, where E^β[nL_n] − nL_n(w*) ≈ λ/β (λ given)",
    "covariance": "a regular minimum w*: p^β ≈ N(w*, (β∇²H)^{-1}); one β for all directions",
    "mandt": "constant-step plain SGD, continuous-time OU limit, isotropic gradient noise C = σ_g² I",
}


class Thermometer(NamedTuple):
    """β̂ ± se by one method, with the assumption it rests on and method-specific details."""

    method: str
    beta: float
    se: float
    assumption: str
    details: dict


def _check_traj(traj) -> Samples:
    """``traj`` as Samples without a β axis (a one-rung sampler run counts: a sampler is its own
    test case)."""
    if isinstance(traj, Samples) and traj.has_beta and traj.ds.sizes["beta"] == 1:
        traj = Samples(traj.ds.isel(beta=0, drop=True))
    if not isinstance(traj, Samples) or traj.has_beta:
        raise InvalidArgumentError("`traj` must be the Samples of an SGD trajectory (no β axis): "
                                   "slt_thermo.sgd.sgd_trajectory(...), after stationary(...)")
    return traj


def _run_means(traj, values) -> np.ndarray:
    """Per healthy run, the time average of ``values`` (chain, draw, ...)."""
    healthy = np.asarray(traj["healthy"].values, bool)
    v = np.asarray(values, np.float64)[healthy]
    if v.shape[0] < 2:
        raise InvalidArgumentError(f"need >= 2 healthy runs for an error bar, got {v.shape[0]}")
    return v.mean(axis=1)


def mean_energy(traj: Samples) -> tuple[float, float]:
    """The time-and-run average of the full-data nL_n over a (stationary) trajectory, and its
    standard error from the spread of the independent runs' averages."""
    traj = _check_traj(traj)
    m = _run_means(traj, traj["nll"].values)
    return float(m.mean()), float(m.std(ddof=1) / math.sqrt(m.size))


def energy_matching(traj: Samples, ladder: Samples) -> Thermometer:
    """(a) β̂ with E^β̂[nL_n] = the SGD average, E^β by MBAR over a tempered ``ladder`` run of the
    same target; the se combines the SGD average's and the curve's errors (delta method)."""
    from ..thermo.mbar import beta_at_energy

    e, e_se = mean_energy(traj)
    if not isinstance(ladder, Samples) or not ladder.has_beta:
        raise InvalidArgumentError("`ladder` must be a tempered sampler run over a β-ladder (Samples with betas)")
    if ladder.n != traj.n:
        raise InvalidArgumentError(f"`ladder` (n = {ladder.n}) and `traj` (n = {traj.n}) must share the dataset")
    beta, se = beta_at_energy(ladder, e, e_se)
    return Thermometer("energy", float(beta), float(se), ASSUMPTIONS["energy"], {"energy": e, "energy_se": e_se})


def equipartition(traj: Samples, *, rlct: float, nll_star: float) -> Thermometer:
    """(b) β̂ = λ/(⟨nL_n⟩_SGD − nL_n(w*)) with ``rlct`` λ and ``nll_star`` = nL_n(w*)."""
    e, e_se = mean_energy(traj)
    if not (isinstance(rlct, (int, float)) and rlct > 0 and math.isfinite(rlct)):
        raise InvalidArgumentError(f"`rlct` must be a positive number, got {rlct!r}")
    excess = e - float(nll_star)
    if excess <= 0:
        raise InvalidArgumentError(f"the SGD average nL_n ({e:.6g}) is not above nL_n(w*) ({nll_star:.6g}): "
                                   "is w* the minimum the runs sit in?")
    beta = rlct / excess
    return Thermometer("equipartition", beta, beta * e_se / excess, ASSUMPTIONS["equipartition"],
                       {"energy": e, "energy_se": e_se, "excess": excess})


def _flat_draws(traj) -> np.ndarray:
    names = traj.param_names
    if not names:
        raise InvalidArgumentError("`traj` kept no parameters (keep_params=False): covariance matching needs them")
    healthy = np.asarray(traj["healthy"].values, bool)
    parts = [np.asarray(traj[k].values, np.float64)[healthy] for k in names]
    C, T = parts[0].shape[:2]
    return np.concatenate([p.reshape(C, T, -1) for p in parts], axis=2)  # (run, draw, d)


def hessian(target: Target, w_star) -> np.ndarray:
    """∇²H(w*) (H = nL_n, d × d, flat in ``ravel_pytree`` order)."""
    flat, unravel = ravel_pytree(jax.tree_util.tree_map(jnp.asarray, w_star))
    return np.asarray(jax.hessian(lambda f: target.nll(unravel(f)))(flat), np.float64)


def covariance_matching(traj: Samples, target: Target, w_star) -> Thermometer:
    """(c) β̂ = d / tr(∇²H(w*) Σ_SGD), Σ the iterates' covariance (pooled over runs); se by the
    jackknife over runs. ``details["per_direction"]``: β̂_j = 1/(κ_j v_jᵀΣv_j) along the
    eigenvectors v_j (eigenvalues κ_j, ascending) of ∇²H(w*), with jackknife errors."""
    traj = _check_traj(traj)
    A = hessian(target, w_star)
    kappa, V = np.linalg.eigh(A)
    keep = kappa > 1e-8 * max(kappa.max(), 1e-300)
    if not keep.all():
        warnings.warn(f"∇²H(w*) has {int((~keep).sum())} flat direction(s): w* is singular, covariance "
                      "matching uses the other directions only and is not the right thermometer here",
                      SLTThermoWarning, stacklevel=2)
    kappa, V = kappa[keep], V[:, keep]
    X = _flat_draws(traj) @ V  # (run, draw, d'): coordinates along the eigenvectors
    if X.shape[0] < 2:
        raise InvalidArgumentError("need >= 2 healthy runs for an error bar")

    def estimate(x):
        flat = x.reshape(-1, x.shape[-1])
        var = flat.var(axis=0, ddof=1)  # Σ_jj in the eigenbasis
        per = 1.0 / (kappa * var)
        return kappa.size / np.sum(kappa * var), per

    beta, per = estimate(X)
    R = X.shape[0]
    loo = [estimate(np.delete(X, r, axis=0)) for r in range(R)]
    jk = lambda vals: np.sqrt((R - 1) / R * np.sum((vals - vals.mean(axis=0)) ** 2, axis=0))  # noqa: E731
    se = float(jk(np.array([b for b, _ in loo])))
    per_se = jk(np.array([p for _, p in loo]))
    return Thermometer("covariance", float(beta), se, ASSUMPTIONS["covariance"],
                       {"curvatures": kappa, "per_direction": per, "per_direction_se": per_se})


def gradient_noise(target: Target, w_star) -> tuple[float, float]:
    """σ_g² = tr C / d, C the covariance over the n examples of the per-example loss gradients
    ∇ℓ_i(w*) (ℓ_i = −log p(y_i|x_i, w); the 1/n covariance: a minibatch drawn with replacement
    has exactly C/B), and its standard error as an estimate of the noise of the data-generating
    process (the spread of |∇ℓ_i − ḡ|²/d over examples; 0 when they are all alike)."""
    if target.is_population:
        raise InvalidArgumentError("a population target has no per-example gradients (no minibatch noise)")
    flat, unravel = ravel_pytree(jax.tree_util.tree_map(jnp.asarray, w_star))
    G = np.asarray(jax.jacrev(lambda f: -target.log_likelihood(unravel(f)))(flat), np.float64)  # (n, d)
    n, d = G.shape
    q = np.sum((G - G.mean(axis=0)) ** 2, axis=1) / d  # 1/n: minibatches draw with replacement
    return float(q.mean()), float(q.std(ddof=1) / math.sqrt(n))


def mandt(target: Target, w_star, *, learning_rate: float, batch_size: int) -> Thermometer:
    """(d) β_eff = 2B/(η n σ_g²) (Mandt, Hoffman & Blei 2017), σ_g² from :func:`gradient_noise`
    at ``w_star``; for plain constant-step SGD (with momentum μ use η/(1 − μ))."""
    if not (isinstance(learning_rate, (int, float)) and learning_rate > 0 and math.isfinite(learning_rate)):
        raise InvalidArgumentError(f"`learning_rate` must be a positive number, got {learning_rate!r}")
    s2, s2_se = gradient_noise(target, w_star)
    beta = 2 * batch_size / (learning_rate * target.n * s2)
    return Thermometer("mandt", beta, beta * s2_se / s2, ASSUMPTIONS["mandt"],
                       {"sigma_g2": s2, "sigma_g2_se": s2_se, "learning_rate": learning_rate,
                        "batch_size": batch_size})


def thermometers(traj: Samples, target: Target, *, w_star, ladder: Samples | None = None,
                 rlct: float | None = None) -> xr.Dataset:
    """All the thermometers that the inputs allow, side by side, on a stationary trajectory:
    (a) with a ``ladder``, (b) with ``rlct``, (c) always (warns at a singular w*), (d) when the
    trajectory's learning rate is constant and recorded. Dataset over ``thermometer`` (not
    "method": xarray's ``sel(method=...)`` is taken): ``beta``, ``se``, ``n_beta`` (nβ̂) and
    ``assumption``."""
    traj = _check_traj(traj)
    out = []
    if ladder is not None:
        out.append(energy_matching(traj, ladder))
    if rlct is not None:
        out.append(equipartition(traj, rlct=rlct, nll_star=float(target.nll(w_star))))
    out.append(covariance_matching(traj, target, w_star))
    lr = np.asarray(traj["learning_rate"].values, np.float64) if "learning_rate" in traj else np.array([np.nan])
    if np.all(np.isfinite(lr)) and np.ptp(lr) <= 1e-6 * abs(lr.mean()):
        out.append(mandt(target, w_star, learning_rate=float(lr.mean()), batch_size=int(traj.ds.attrs["batch_size"])))
    n = traj.n
    return xr.Dataset({"beta": ("thermometer", [t.beta for t in out]), "se": ("thermometer", [t.se for t in out]),
                       "n_beta": ("thermometer", [n * t.beta for t in out]),
                       "assumption": ("thermometer", [t.assumption for t in out])},
                      coords={"thermometer": [t.method for t in out]})


__all__ = ["ASSUMPTIONS", "Thermometer", "covariance_matching", "energy_matching", "equipartition",
           "gradient_noise", "hessian", "mandt", "mean_energy", "thermometers"]
