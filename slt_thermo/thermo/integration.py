"""Thermodynamic integration: F(β) = −log Z(β) = ∫_0^β E^b[nL_n] db − log Z(0).

The identity d(−log Z)/dβ = E^β[nL_n] is exact (REFERENCE §0), so F is a quadrature of the
per-rung mean energies. Three rules (REFERENCE §2.5):

- ``"trapezoid"``: Σ h_i (E_i + E_{i+1})/2;
- ``"corrected_trapezoid"`` (Friel, Hurn & Wyse 2014): adds Σ h_i² (V_{i+1} − V_i)/12, using
  dE/dβ = −Var^β[nL_n] (the Euler–Maclaurin end correction of each panel);
- ``"log_corrected_trapezoid"``: the same corrected (cubic Hermite) rule in u = log β, for
  geometric ladders (:func:`~slt_thermo.ladder.ti`). In the singular regime E^β − E_ref ≈ λ/β,
  so g(u) = β(E^β − E_ref) is nearly flat in u, where the β-rule needs many rungs to follow
  1/β: on the exact w² fixture at n = 1e7 the β-rule on ``power(16)`` is off by −35 nats, the
  log rule on ``ti(n, 24)`` by 4e-4. The baseline E_ref = E at the last rung is integrated
  exactly (β·E_ref), which keeps the large constant nL_n(w0) out of the quadrature; the first
  panel [0, β_1] uses the corrected β-rule. dg/du = β(E − E_ref) − β²Var.

The Monte Carlo standard error propagates each rung's ESS-based error (rungs are independent
chains). The discretization error is reported separately: for the trapezoid it is the size of
the variance correction (its leading error term); for the corrected rule, a Richardson estimate
from the same rule on every other rung, |F_h − F_2h|/15.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .._utils import check_samples, real_array, real_scalar
from ..errors import InvalidArgumentError
from ..results import Estimate, Samples
from .stats import rung_stats

METHODS = ("trapezoid", "corrected_trapezoid", "log_corrected_trapezoid", "left", "right")
_NEEDS_V = ("corrected_trapezoid", "log_corrected_trapezoid")


def _weights(betas, method):
    """Quadrature as linear maps: F = a·E + c·V (cumulative, one row per rung)."""
    if method == "log_corrected_trapezoid":
        return _log_weights(betas)
    h = np.diff(betas)
    k = betas.size
    A = np.zeros((k, k))
    Cv = np.zeros((k, k))
    for j in range(1, k):
        A[j] = A[j - 1]
        Cv[j] = Cv[j - 1]
        i = j - 1
        if method == "left":
            A[j, i] += h[i]
        elif method == "right":
            A[j, j] += h[i]
        else:
            A[j, i] += h[i] / 2
            A[j, j] += h[i] / 2
            if method == "corrected_trapezoid":
                Cv[j, j] += h[i] ** 2 / 12
                Cv[j, i] -= h[i] ** 2 / 12
    return A, Cv


def _log_weights(betas):
    """Corrected trapezoid in u = log β on g = β(E − E_last), plus β·E_last (module docstring).

    Per panel of width h in u: h(g_i + g_{i+1})/2 + h²(g'_i − g'_{i+1})/12, g' = g − β²V. Linear
    in (E, V), so the Monte Carlo errors propagate through the same matrices as the other rules.
    """
    k = betas.size
    last = k - 1
    Ae = np.zeros((k, k))  # coefficients on e_i = E_i − E_last
    Cv = np.zeros((k, k))
    for j in range(1, k):
        Ae[j] = Ae[j - 1]
        Cv[j] = Cv[j - 1]
        i = j - 1
        b0, b1 = betas[i], betas[j]
        if b0 == 0.0:  # first panel: the corrected rule in β
            h = b1
            Ae[j, i] += h / 2
            Ae[j, j] += h / 2
            Cv[j, i] -= h**2 / 12
            Cv[j, j] += h**2 / 12
        else:
            h = np.log(b1 / b0)
            Ae[j, i] += b0 * (h / 2 + h**2 / 12)
            Ae[j, j] += b1 * (h / 2 - h**2 / 12)
            Cv[j, i] -= h**2 * b0**2 / 12
            Cv[j, j] += h**2 * b1**2 / 12
    A = Ae.copy()
    A[:, last] += betas - Ae.sum(axis=1)  # β_j·E_last − Σ_i a_ji·E_last
    return A, Cv


def _check_method(method):
    if not isinstance(method, str) or method not in METHODS:
        raise InvalidArgumentError(f"`method` must be one of {METHODS}, got {method!r}")


def ti_curve(betas, E, V=None, *, E_se=None, V_se=None, method="log_corrected_trapezoid", log_z0=0.0):
    """F at every rung by TI from the first rung (which must be β = 0).

    Args:
        betas: increasing rungs, betas[0] == 0.
        E, V: E^β[nL_n] and Var^β[nL_n] per rung (V needed by the corrected rules).
        method: one of ``METHODS``; the default, the corrected rule in log β, is the most
            accurate on every ladder we tried (power and geometric, regular and singular).
        E_se, V_se: their standard errors (optional; NaN errors if absent).
        log_z0: log Z(0) = log ∫φ; 0 for a normalized prior.

    Returns:
        (F, F_se) arrays over the rungs.
    """
    _check_method(method)
    log_z0 = real_scalar(log_z0, "log_z0")
    betas = real_array(betas, "betas", ndim=1)
    E = real_array(E, "E", ndim=1)
    if betas.size < 2 or E.shape != betas.shape:
        raise InvalidArgumentError("`betas` and `E` must be 1-D of equal length >= 2")
    if V is not None:
        V = real_array(V, "V", shape=betas.shape, nonnegative=True)
    # an error may be NaN (unknown) or inf (a stuck rung), never negative or misshapen
    if E_se is not None:
        E_se = real_array(E_se, "E_se", shape=betas.shape, finite=False, nonnegative=True)
    if V_se is not None:
        V_se = real_array(V_se, "V_se", shape=betas.shape, finite=False, nonnegative=True)
    if betas[0] != 0.0:
        raise InvalidArgumentError(
            f"`betas` must start at 0 for thermodynamic integration (got {betas[0]:.4g}); "
            "use st.ladder.power(...), which includes β = 0"
        )
    if np.any(np.diff(betas) <= 0):
        raise InvalidArgumentError("`betas` must be strictly increasing")
    A, Cv = _weights(betas, method)
    if method in _NEEDS_V:
        if V is None:
            raise InvalidArgumentError(f"`V` (Var^β[nL_n] per rung) is required by {method}")
        V = np.asarray(V, dtype=float)
    else:
        V = np.zeros_like(E)
    F = A @ E + Cv @ V - log_z0
    E_se = np.full_like(E, np.nan) if E_se is None else np.asarray(E_se, dtype=float)
    V_se = np.zeros_like(E) if V_se is None or method not in _NEEDS_V else np.asarray(V_se, dtype=float)
    F_se = np.sqrt(_weighted_sum(A**2, E_se**2) + _weighted_sum(Cv**2, V_se**2))
    return F, F_se


def _weighted_sum(w, x):
    """w @ x where a zero weight ignores its term even when that term is infinite (a rung with an
    infinite error bar, e.g. stuck chains, spoils only the F values that integrate over it)."""
    return np.sum(np.where(w != 0, w * np.where(w != 0, x, 0.0), 0.0), axis=-1)


def ti_free_energy(betas, E, V=None, *, E_se=None, V_se=None, method="log_corrected_trapezoid", log_z0=0.0) -> Estimate:
    """F(β_max) = −log Z(β_max) by thermodynamic integration, as an :class:`Estimate`.

    ``details`` holds the Monte Carlo error (``stderr``) and, separately, the estimated
    ``discretization_error`` (see the module docstring).
    """
    F, F_se = ti_curve(betas, E, V, E_se=E_se, V_se=V_se, method=method, log_z0=log_z0)
    betas = np.asarray(betas, dtype=float)
    disc = _discretization_error(betas, np.asarray(E, float), None if V is None else np.asarray(V, float), method)
    return Estimate(
        float(F[-1]), float(F_se[-1]), method=f"ti/{method}",
        details={"beta_max": float(betas[-1]), "discretization_error": disc, "num_rungs": int(betas.size)},
    )


def _discretization_error(betas, E, V, method):
    if method == "trapezoid" and V is not None:
        F_t, _ = ti_curve(betas, E, V, method="trapezoid")
        F_c, _ = ti_curve(betas, E, V, method="corrected_trapezoid")
        return float(abs(F_c[-1] - F_t[-1]))
    order = {"trapezoid": 2, "corrected_trapezoid": 4, "log_corrected_trapezoid": 4, "left": 1, "right": 1}[method]
    idx = np.arange(0, betas.size, 2)
    if idx[-1] != betas.size - 1:
        idx = np.append(idx, betas.size - 1)
    if idx.size < 2:
        return float("nan")
    full, _ = ti_curve(betas, E, V, method=method)
    coarse, _ = ti_curve(betas[idx], E[idx], None if V is None else V[idx], method=method)
    return float(abs(full[-1] - coarse[-1]) / (2**order - 1))


def free_energy(samples: Samples, method: str = "log_corrected_trapezoid", *, log_z0: float = 0.0) -> Estimate:
    """F(β_max) = −log Z(β_max) from a tempered run whose ladder starts at β = 0.

    At β_max = 1 this is the Bayes free energy F_n (minus log evidence). F includes every
    normalizer inside nL_n; ``log_z0`` = log ∫φ corrects for an unnormalized prior.
    """
    check_samples(samples)
    _check_method(method)
    log_z0 = real_scalar(log_z0, "log_z0")
    s = rung_stats(samples)
    return ti_free_energy(s["beta"].values, s["E"].values, s["Var"].values, E_se=s["E_se"].values,
                          V_se=s["Var_se"].values, method=method, log_z0=log_z0)


def free_energy_curve(samples: Samples, method: str = "log_corrected_trapezoid", *, log_z0: float = 0.0) -> xr.Dataset:
    """F(β) at every rung (TI from β = 0) with its Monte Carlo error: variables ``F``, ``F_se``."""
    check_samples(samples)
    _check_method(method)
    log_z0 = real_scalar(log_z0, "log_z0")
    s = rung_stats(samples)
    F, F_se = ti_curve(s["beta"].values, s["E"].values, s["Var"].values, E_se=s["E_se"].values,
                       V_se=s["Var_se"].values, method=method, log_z0=log_z0)
    return xr.Dataset({"F": ("beta", F), "F_se": ("beta", F_se)}, coords={"beta": s["beta"].values},
                      attrs={"method": method, "n": samples.n})
