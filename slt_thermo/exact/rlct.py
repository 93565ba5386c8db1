"""The RLCT type and the elementary exact RLCTs: regular models, monomials, sum and product rules.

Conventions follow REFERENCE §0–§1.0: the zeta function ζ(z) = ∫ K(w)^z φ(w) dw has its largest
pole at z = −λ, of order m. Then Z(β) ~ c (βn)^{−λ} (log βn)^{m−1}.
"""

from __future__ import annotations

import numbers
from fractions import Fraction
from typing import NamedTuple, Sequence

from ..errors import InvalidArgumentError

__all__ = ["RLCT", "rlct_regular", "rlct_monomial", "rlct_sum", "rlct_product"]


class RLCT(NamedTuple):
    """A real log canonical threshold and its multiplicity.

    Attributes
    ----------
    lam : fractions.Fraction
        The learning coefficient λ. The largest pole of the zeta function is at z = −λ.
    m : int
        The order of that pole (the multiplicity), m ≥ 1.
    """

    lam: Fraction
    m: int


# ---------------------------------------------------------------------------------------------
# validation helpers (shared with the other exact modules)
# ---------------------------------------------------------------------------------------------


def _as_int(value, name: str, *, minimum: int | None = None) -> int:
    """``value`` as a Python int (bools and non-integral numbers are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            try:
                as_fraction = Fraction(value)
            except (TypeError, ValueError, OverflowError):
                as_fraction = None
            if as_fraction is not None and as_fraction.denominator == 1:
                value = int(as_fraction)
            else:
                raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
        else:
            raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def _as_exponent(value, name: str) -> Fraction:
    """A prior exponent h_j: an int or a Fraction with h_j > −1 (so that |w|^h is integrable)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, Fraction)):
        raise InvalidArgumentError(
            f"{name} must be an integer or a fractions.Fraction greater than -1 "
            f"(exact arithmetic), got {value!r}"
        )
    value = Fraction(value)
    if value <= -1:
        raise InvalidArgumentError(f"{name} must be > -1 so that |w|^h is integrable, got {value}")
    return value


def _prior_exponents(h, d: int, name: str = "h") -> list[Fraction]:
    """Validate an optional sequence of d prior exponents; None means a flat prior (all 0)."""
    if h is None:
        return [Fraction(0)] * d
    if isinstance(h, (str, bytes)) or not isinstance(h, Sequence):
        try:
            h = list(h)
        except TypeError:
            raise InvalidArgumentError(
                f"{name} must be None or a sequence of {d} prior exponents, got {h!r}"
            ) from None
    if len(h) != d:
        raise InvalidArgumentError(
            f"{name} must have one prior exponent per variable ({d}), got {len(h)}"
        )
    return [_as_exponent(hj, f"{name}[{j}]") for j, hj in enumerate(h)]


def _as_rlct(part, name: str) -> RLCT:
    """Coerce an RLCT or a (lam, m) pair, checking lam ≥ 0 rational and m ≥ 1."""
    try:
        lam, m = part
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be an RLCT(lam, m) pair, got {part!r}") from None
    if isinstance(lam, bool) or not isinstance(lam, (numbers.Integral, Fraction)):
        raise InvalidArgumentError(
            f"{name}.lam must be an int or a fractions.Fraction (exact), got {lam!r}"
        )
    lam = Fraction(lam)
    if lam < 0:
        raise InvalidArgumentError(f"{name}.lam must be >= 0, got {lam}")
    return RLCT(lam, _as_int(m, f"{name}.m", minimum=1))


# ---------------------------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------------------------


def rlct_regular(d) -> RLCT:
    """RLCT of a regular model with d parameters: λ = d/2, m = 1.

    Source: REFERENCE §1.a (AGSLT Ch. 1/6; Schwarz's BIC) [MEM]. Conditions: the true parameter
    w0 is unique and interior, the Fisher information at w0 is positive definite, and the prior
    is continuous with φ(w0) > 0.

    ``d = 0`` is allowed and gives RLCT(0, 1), the neutral element of :func:`rlct_sum`.
    """
    d = _as_int(d, "d", minimum=0)
    return RLCT(Fraction(d, 2), 1)


def rlct_monomial(k, h=None) -> RLCT:
    """RLCT of the normal-crossing potential K(w) = Π_j w_j^{2 k_j} with prior ∝ Π_j |w_j|^{h_j}.

    λ = min_{j: k_j > 0} (h_j + 1)/(2 k_j) and m = #{j : k_j > 0, (h_j + 1)/(2 k_j) = λ}.

    Source: REFERENCE §1.b, Watanabe's standard form (AGSLT Ch. 2, 6; MTBS Ch. 3) [MEM + DER]:
    up to a constant ζ(z) = Π_j 1/(2 k_j z + h_j + 1). Conditions: the prior is
    b(w) Π_j |w_j|^{h_j} with b continuous and b(0) > 0 on a neighbourhood of 0.

    Parameters
    ----------
    k : sequence of int
        Half-exponents k_j ≥ 0 of K; at least one must be positive (otherwise K is constant).
    h : sequence of int or Fraction, optional
        Prior exponents h_j > −1, one per k_j; None means a flat prior (all h_j = 0).
    """
    if isinstance(k, (str, bytes)):
        raise InvalidArgumentError(f"k must be a sequence of non-negative integers, got {k!r}")
    try:
        k = list(k)
    except TypeError:
        raise InvalidArgumentError(
            f"k must be a sequence of non-negative integers, got {k!r}"
        ) from None
    if not k:
        raise InvalidArgumentError("k must be a non-empty sequence of non-negative integers")
    k = [_as_int(kj, f"k[{j}]", minimum=0) for j, kj in enumerate(k)]
    if all(kj == 0 for kj in k):
        raise InvalidArgumentError(
            "k must have at least one positive entry: with all k_j = 0, K = 1 has no zero"
        )
    hs = _prior_exponents(h, len(k))
    ratios = [(hj + 1) / (2 * kj) for kj, hj in zip(k, hs) if kj > 0]
    lam = min(ratios)
    return RLCT(lam, sum(1 for q in ratios if q == lam))


def rlct_sum(*parts) -> RLCT:
    """Sum rule: K = K_1(w_A) + K_2(w_B) + ... on disjoint variable blocks with a product prior.

    λ = Σ_i λ_i and m = Σ_i m_i − (number of parts − 1).

    Source: REFERENCE §1.0 [DER: the volume of {K < ε} is the convolution of the blocks'
    volumes; cf. Lin 2011]. Each part is an :class:`RLCT` (or a (lam, m) pair).
    """
    if not parts:
        raise InvalidArgumentError("rlct_sum needs at least one part (an RLCT)")
    parts = [_as_rlct(p, f"parts[{i}]") for i, p in enumerate(parts)]
    return RLCT(sum((p.lam for p in parts), Fraction(0)), sum(p.m for p in parts) - len(parts) + 1)


def rlct_product(*parts) -> RLCT:
    """Product rule: K = K_1(w_A) · K_2(w_B) · ... on disjoint variable blocks, product prior.

    λ = min_i λ_i and m = Σ of m_i over the parts that attain the minimum (the zeta function is
    the product of the blocks' zeta functions, so the orders of coinciding poles add).

    Source: REFERENCE §1.0 [DER]. Each part is an :class:`RLCT` (or a (lam, m) pair).
    """
    if not parts:
        raise InvalidArgumentError("rlct_product needs at least one part (an RLCT)")
    parts = [_as_rlct(p, f"parts[{i}]") for i, p in enumerate(parts)]
    lam = min(p.lam for p in parts)
    return RLCT(lam, sum(p.m for p in parts if p.lam == lam))
