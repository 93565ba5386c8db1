"""Exactly solvable tempered thermodynamics: the partition-function fixtures of REFERENCE §2.2.

Every function returns :class:`Thermo` (F, E, Var) at inverse temperature β:

- F = −log Z(β), with Z(β) = ∫ φ(w) exp(−β H(w)) dw and a normalized prior (so F(0) = 0);
- E = E^β[H] = dF/dβ;
- Var = Var^β[H] = −dE/dβ;

where H = nK (population potentials, §2.2 a–c) or H = nL_n, the full negative log-likelihood
including its normalizers (§2.2 d). Values are float64 (numpy arrays of β's shape when β is an
array). The formulas are exact at every n and β (no asymptotic approximation); mpmath is used
where float64 special functions are not available or not accurate enough.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import mpmath
import numpy as np
from scipy import special

from .._utils import check_beta, positive_int
from ..errors import InvalidArgumentError

__all__ = [
    "Thermo",
    "monomial_thermo",
    "normal_crossing_thermo",
    "gaussian_thermo",
    "linear_regression_thermo",
    "linear_regression_wbic",
]


class Thermo(NamedTuple):
    """Exact tempered thermodynamics at inverse temperature β.

    Attributes
    ----------
    F : float or numpy.ndarray
        Free energy −log Z(β).
    E : float or numpy.ndarray
        Tempered mean energy E^β[H] = dF/dβ.
    Var : float or numpy.ndarray
        Tempered energy variance Var^β[H] = −dE/dβ.
    """

    F: float | np.ndarray
    E: float | np.ndarray
    Var: float | np.ndarray


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgumentError(f"{name} must be a positive real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"{name} must be a positive finite number, got {value}")
    return value


def _betas(beta) -> tuple[np.ndarray, bool]:
    b = np.asarray(check_beta(beta), dtype=np.float64)
    return b, b.ndim == 0


def _out(F, E, V, scalar: bool) -> Thermo:
    if scalar:
        return Thermo(float(F), float(E), float(V))
    return Thermo(np.asarray(F, float), np.asarray(E, float), np.asarray(V, float))


# ---------------------------------------------------------------------------------------------
# (a) 1-D monomial
# ---------------------------------------------------------------------------------------------

_SERIES_TERMS = 40


def _s_series(r: float, a: np.ndarray) -> np.ndarray:
    """S_r(a) = a^{−r} γ(r, a) = Σ_j (−a)^j / (j! (r + j)), for 0 ≤ a ≤ 1."""
    total = np.zeros_like(a)
    term = np.ones_like(a)  # (−a)^j / j!
    for j in range(_SERIES_TERMS):
        total = total + term / (r + j)
        term = term * (-a) / (j + 1)
    return total


def _s_series_tail(r: float, a: np.ndarray) -> np.ndarray:
    """S_r(a) − 1/r = Σ_{j≥1} (−a)^j / (j! (r + j)), for 0 ≤ a ≤ 1 (no cancellation)."""
    total = np.zeros_like(a)
    term = -a
    for j in range(1, _SERIES_TERMS):
        total = total + term / (r + j)
        term = term * (-a) / (j + 1)
    return total


def _log_gammainc(s: float, a: np.ndarray) -> np.ndarray:
    """log P(s, a) (regularized lower incomplete gamma), accurate for P near 1 too."""
    P = special.gammainc(s, a)
    big = P > 0.5
    out = np.empty_like(a)
    out[big] = np.log1p(-special.gammaincc(s, a[big]))
    out[~big] = np.log(P[~big])
    return out


def monomial_thermo(k, h, n, beta) -> Thermo:
    """Exact thermodynamics of K = w^{2k} on [0, 1] with prior φ(w) = (h+1) w^h, H = nK.

    With a = βn and s = (h+1)/(2k) (= λ),

        Z(β) = s a^{−s} γ(s, a) = Γ(s+1) a^{−s} P(s, a),
        E^β[nK] = (s/β) P(s+1, a)/P(s, a),
        Var^β[nK] = β^{−2} [s(s+1) P(s+2, a)/P(s, a) − s² (P(s+1, a)/P(s, a))²],

    where γ is the lower incomplete gamma function and P = γ/Γ its regularized form (the
    moments ⟨w^{2kj}⟩ are ratios of incomplete gammas). For a ≤ 1 the power series of a^{−r}
    γ(r, a) is used instead, so that F, E and Var stay accurate (also relatively) as β → 0; at
    β = 0 they are 0, n s/(s+1) and n²[s/(s+2) − s²/(s+1)²]. The flat prior on [0, 1] is
    equivalent to U[−1, 1] by symmetry.

    Source: REFERENCE §2.2(a) [NUM]; up to O(e^{−a}), βE = β²Var = λ and
    F = λ log a − log Γ(1 + λ).

    Parameters
    ----------
    k : int ≥ 1
        K = w^{2k}.
    h : float > −1 or None
        Prior exponent (φ ∝ |w|^h, normalized on [0, 1]); None or 0 means flat.
    n : float > 0
        Sample size (H = nK).
    beta : float or array of floats ≥ 0
        Inverse temperature(s).
    """
    k = positive_int(k, "k")
    if h is None:
        h = 0.0
    if isinstance(h, bool) or not isinstance(h, numbers.Real) or not h > -1:
        raise InvalidArgumentError(f"h must be None or a real number > -1, got {h!r}")
    h = float(h)
    n = _positive(n, "n")
    b, scalar = _betas(beta)
    s = (h + 1.0) / (2.0 * k)
    a = np.atleast_1d(n * b)
    F, E, V = np.empty_like(a), np.empty_like(a), np.empty_like(a)
    small = a <= 1.0
    if np.any(small):
        x = a[small]
        S0, S1, S2 = _s_series(s, x), _s_series(s + 1, x), _s_series(s + 2, x)
        F[small] = 0.0 - np.log1p(s * _s_series_tail(s, x))
        m1, m2 = S1 / S0, S2 / S0  # <w^{2k}>, <w^{4k}>
        E[small] = n * m1
        V[small] = n * n * (m2 - m1 * m1)
    if np.any(~small):
        x = a[~small]
        bb = np.atleast_1d(b)[~small]
        logP0 = _log_gammainc(s, x)
        r1 = np.exp(_log_gammainc(s + 1, x) - logP0)
        r2 = np.exp(_log_gammainc(s + 2, x) - logP0)
        F[~small] = s * np.log(x) - special.gammaln(s + 1) - logP0
        E[~small] = s * r1 / bb
        V[~small] = (s * (s + 1) * r2 - s * s * r1 * r1) / (bb * bb)
    shape = b.shape
    return _out(F.reshape(shape), E.reshape(shape), V.reshape(shape), scalar)


# ---------------------------------------------------------------------------------------------
# (b) 2-D normal crossing
# ---------------------------------------------------------------------------------------------

_MP_DPS = 40


def _normal_crossing_one(n: float, beta: float) -> tuple[float, float, float]:
    with mpmath.workdps(_MP_DPS):
        a = mpmath.mpf(n) * mpmath.mpf(beta)
        half, three, five, seven = (mpmath.mpf(x) / 2 for x in (1, 3, 5, 7))
        Z0 = mpmath.hyp2f2(half, half, three, three, -a)
        Z1 = mpmath.hyp2f2(three, three, five, five, -a) / 9
        Z2 = mpmath.hyp2f2(five, five, seven, seven, -a) / 25
        m1, m2 = Z1 / Z0, Z2 / Z0
        return float(-mpmath.log(Z0)), float(n * m1), float(mpmath.mpf(n) ** 2 * (m2 - m1**2))


def normal_crossing_thermo(n, beta) -> Thermo:
    """Exact thermodynamics of K = w1² w2² on [0, 1]² with the flat prior, H = nK (m = 2).

    With a = βn the moments of K are hypergeometric (expand e^{−aK} and integrate termwise):

        Z(β)          = ∫∫ e^{−a w1² w2²} = Σ_j (−a)^j / (j! (2j+1)²) = ₂F₂(½,½; 3/2,3/2; −a)
                      = (√π / (2√a)) ∫_0^{√a} erf(u)/u du,
        Z·⟨K⟩         = ₂F₂(3/2,3/2; 5/2,5/2; −a) / 9,
        Z·⟨K²⟩        = ₂F₂(5/2,5/2; 7/2,7/2; −a) / 25,

    so E = n⟨K⟩ and Var = n²(⟨K²⟩ − ⟨K⟩²). They are evaluated with mpmath at 40 digits (its
    ₂F₂ switches to an asymptotic expansion for large a) and rounded to float64.

    Source: REFERENCE §2.2(b) [NUM]. Up to exponentially small terms, with s = log(βn) + γ_E +
    2 log 2: F = ½ log(βn) − log s + log(4/√π), βE = ½ − 1/s, β²Var = ½ − 1/s − 1/s².

    Parameters
    ----------
    n : float > 0
        Sample size.
    beta : float or array of floats ≥ 0
        Inverse temperature(s).
    """
    n = _positive(n, "n")
    b, scalar = _betas(beta)
    flat = np.atleast_1d(b).ravel()
    vals = np.array([_normal_crossing_one(n, float(x)) for x in flat]).reshape(flat.size, 3)
    shape = b.shape
    return _out(vals[:, 0].reshape(shape), vals[:, 1].reshape(shape), vals[:, 2].reshape(shape),
                scalar)


# ---------------------------------------------------------------------------------------------
# (c) regular Gaussian potential
# ---------------------------------------------------------------------------------------------


def gaussian_thermo(d, n, sigma2, beta) -> Thermo:
    """Exact thermodynamics of H(w) = n|w|²/2 with prior φ = N(0, σ² I_d).

    With c = nσ²: F = (d/2) log(1 + βc), E = (d/2) c/(1 + βc), Var = (d/2) c²/(1 + βc)²,
    so β²Var → d/2 (a regular model, λ = d/2, m = 1).

    Source: REFERENCE §2.2(c) [NUM] (Gaussian integral).

    Parameters
    ----------
    d : int ≥ 1
        Dimension.
    n : float > 0
        Sample size (scale of the potential).
    sigma2 : float > 0
        Prior variance σ².
    beta : float or array of floats ≥ 0
        Inverse temperature(s).
    """
    d = positive_int(d, "d")
    n = _positive(n, "n")
    sigma2 = _positive(sigma2, "sigma2")
    b, scalar = _betas(beta)
    c = n * sigma2
    F = 0.5 * d * np.log1p(b * c)
    E = 0.5 * d * c / (1.0 + b * c)
    V = 0.5 * d * (c / (1.0 + b * c)) ** 2
    return _out(F, E, V, scalar)


# ---------------------------------------------------------------------------------------------
# (d) Bayesian linear regression with data
# ---------------------------------------------------------------------------------------------


def _regression_data(X, y):
    try:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError("X and y must be real numeric arrays") from None
    if y.ndim != 1 or y.size == 0:
        raise InvalidArgumentError(f"y must be a non-empty 1-D array, got shape {y.shape}")
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] != y.shape[0] or X.shape[1] == 0:
        raise InvalidArgumentError(
            f"X must have shape (n, d) (or (n,)) with n = len(y) = {y.shape[0]}, got {X.shape}"
        )
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise InvalidArgumentError("X and y must be finite")
    return X, y


def _regression_one(X, y, s, Q, sigma2, alpha, beta):
    n = y.shape[0]
    lam = alpha + beta * s / sigma2  # eigenvalues of A_β
    z = Q.T @ (X.T @ y)
    mean = Q @ ((beta / sigma2) * z / lam)  # m_β = A_β^{-1} b_β
    e = y - X @ mean
    ee = float(e @ e)
    log2pis = np.log(2.0 * np.pi * sigma2)
    F = (0.5 * n * beta * log2pis + 0.5 * np.sum(np.log1p(beta * s / (sigma2 * alpha)))
         + beta * ee / (2.0 * sigma2) + 0.5 * alpha * float(mean @ mean))
    E = 0.5 * n * log2pis + (ee + np.sum(s / lam)) / (2.0 * sigma2)
    u = Q.T @ (X.T @ e)
    V = (4.0 * np.sum(u * u / lam) + 2.0 * np.sum((s / lam) ** 2)) / (4.0 * sigma2**2)
    return F, E, V


def linear_regression_thermo(X, y, sigma2, alpha, beta) -> Thermo:
    """Exact tempered thermodynamics of Bayesian linear regression (a regular model).

    Model y_i = x_iᵀw + N(0, σ²), prior N(0, α^{-1} I_d), H = nL_n the full negative
    log-likelihood (with the (n/2) log 2πσ² normalizer). With A_β = αI + (β/σ²) XᵀX,
    b_β = (β/σ²) Xᵀy, m_β = A_β^{-1} b_β and e = y − X m_β:

        −log Z(β) = (nβ/2) log 2πσ² + ½ log det(A_β/α) + β eᵀe/(2σ²) + (α/2) m_βᵀ m_β,
        E^β[nL_n] = (n/2) log 2πσ² + [eᵀe + tr(X A_β^{-1} Xᵀ)]/(2σ²),
        Var^β[nL_n] = [4 eᵀ X A_β^{-1} Xᵀ e + 2 tr((A_β^{-1} XᵀX)²)]/(4σ⁴).

    The first line is REFERENCE's −(nβ/2)log 2πσ² − ½ log det(A_β/α) − (β/2σ²) yᵀy +
    ½ b_βᵀA_β^{-1}b_β after completing the square (no cancellation between yᵀy and the
    quadratic form). Everything is computed in the eigenbasis of XᵀX.

    Source: REFERENCE §2.2(d) [DER + NUM] (conjugate Gaussian integrals; the variance is that
    of a Gaussian quadratic form).

    Parameters
    ----------
    X : array of shape (n, d) or (n,)
        Design matrix.
    y : array of shape (n,)
        Responses.
    sigma2 : float > 0
        Known noise variance σ².
    alpha : float > 0
        Prior precision α.
    beta : float or array of floats ≥ 0
        Inverse temperature(s).
    """
    X, y = _regression_data(X, y)
    sigma2 = _positive(sigma2, "sigma2")
    alpha = _positive(alpha, "alpha")
    b, scalar = _betas(beta)
    s, Q = np.linalg.eigh(X.T @ X)
    s = np.clip(s, 0.0, None)
    flat = np.atleast_1d(b).ravel()
    vals = np.array([_regression_one(X, y, s, Q, sigma2, alpha, float(x)) for x in flat])
    vals = vals.reshape(flat.size, 3)
    shape = b.shape
    return _out(vals[:, 0].reshape(shape), vals[:, 1].reshape(shape), vals[:, 2].reshape(shape),
                scalar)


def linear_regression_wbic(X, y, sigma2, alpha) -> float:
    """WBIC of Bayesian linear regression: E^β[nL_n] at β = 1/log n, from the closed form.

    Source: Watanabe 2013, JMLR 14:867–897 (definition [ABS]); REFERENCE §2.3 and §2.2(d).
    Needs n = len(y) ≥ 2 (so that log n > 0). Arguments as in
    :func:`linear_regression_thermo`.
    """
    X, y = _regression_data(X, y)
    if y.shape[0] < 2:
        raise InvalidArgumentError(
            f"y must have n >= 2 samples for beta = 1/log n, got n = {y.shape[0]}"
        )
    return float(linear_regression_thermo(X, y, sigma2, alpha, 1.0 / np.log(y.shape[0])).E)
