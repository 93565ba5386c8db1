"""Small checks and numerics that several modules share: argument checks, weighted least
squares, parameter counts, and the one reader of a model's known learning coefficient."""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import numpy as np

from .errors import InvalidArgumentError


def positive_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int, checked to be an integer >= ``minimum`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InvalidArgumentError(f"`{name}` must be an integer >= {minimum}, got {value!r}")
    return int(value)


def real_number(value, name: str, *, minimum: float | None = 0.0, strict: bool = True) -> float:
    """``value`` as a float, checked to be a finite real number > ``minimum`` (>= with
    ``strict=False``; any finite number with ``minimum=None``; bools refused)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if minimum is None:
        if not ok:
            raise InvalidArgumentError(f"`{name}` must be a finite real number, got {value!r}")
    elif not ok or (value <= minimum if strict else value < minimum):
        raise InvalidArgumentError(
            f"`{name}` must be a finite number {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return float(value)


def check_beta(beta, name: str = "beta", *, positive: bool = False):
    """An inverse temperature (number or array) as float64, checked finite and >= 0 (> 0 with
    ``positive``; β = 0 samples the prior). Returns a float for a scalar, else an array."""
    try:
        b = np.asarray(beta, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"`{name}` must be a real number or array, got {beta!r}") from None
    low_ok = np.all(b > 0) if positive else np.all(b >= 0)
    if not (np.all(np.isfinite(b)) and low_ok):
        bound = "> 0" if positive else ">= 0 (beta = 0 samples the prior)"
        raise InvalidArgumentError(f"`{name}` must be finite and {bound}, got {beta!r}")
    return float(b) if b.ndim == 0 else b


def num_params(params) -> int:
    """d, the number of scalar parameters of a pytree."""
    import jax

    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(params)))


def weighted_least_squares(X, y, se, *, floor: float = 1e-12):
    """Coefficients of y ≈ X·c weighted by 1/se², their covariance scaled by max(1, χ²_red)
    (so a poor fit widens the errors, a good one never narrows them), and χ²_red (NaN with no
    degrees of freedom)."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    w = 1 / np.maximum(np.asarray(se, dtype=float), floor) ** 2
    cov = np.linalg.pinv(X.T @ (w[:, None] * X))
    coef = cov @ (X.T @ (w * y))
    dof = X.shape[0] - X.shape[1]
    chi2 = float(np.sum(w * (y - X @ coef) ** 2) / dof) if dof > 0 else float("nan")
    return coef, cov * (max(1.0, chi2) if math.isfinite(chi2) else 1.0), chi2


def known_rlct(source) -> tuple[Fraction | None, int | None]:
    """(λ, m) known exactly for ``source``, else None in their place.

    ``source`` is a model (``rlct``/``multiplicity`` attributes), a Target (its model), a
    :class:`~slt_thermo.Samples` or a results attrs dict (``true_rlct`` and
    ``true_multiplicity``, written by the samplers from the model), or λ itself (number or string).
    """
    attrs = getattr(getattr(source, "ds", None), "attrs", None)
    if attrs is None and isinstance(source, dict):
        attrs = source
    if attrs is not None:
        lam, m = attrs.get("true_rlct"), attrs.get("true_multiplicity")
    elif source is None or isinstance(source, (str, numbers.Number)):
        lam, m = source, None
    else:
        model = getattr(source, "model", source)
        try:
            lam, m = getattr(model, "rlct", None), getattr(model, "multiplicity", None)
        except Exception:  # a model whose exact λ is unknown may raise from the property
            return None, None
    if lam is None or (isinstance(lam, str) and lam.strip() in ("", "None")):
        lam = None
    else:
        try:
            lam = Fraction(str(lam))
        except (ValueError, ZeroDivisionError):
            lam = None
    try:
        m = None if m is None or (isinstance(m, float) and math.isnan(m)) else int(m)
    except (TypeError, ValueError):
        m = None
    return lam, m


def package_version() -> str:
    """The installed slt-thermo version (recorded in every results file), or "unknown"."""
    try:
        from importlib.metadata import version

        return version("slt-thermo")
    except Exception:
        return "unknown"


def real_scalar(value, name: str, *, minimum: float | None = None, strict: bool = True) -> float:
    """``value`` as a float, checked to be one finite real number (a 0-d numpy/JAX array counts;
    bools and strings refused), and > ``minimum`` (>= with ``strict=False``) when one is given."""
    if (not isinstance(value, (numbers.Number, str, bytes)) and getattr(value, "ndim", None) == 0
            and getattr(getattr(value, "dtype", None), "kind", "") in "fiu"):
        value = float(value)
    return real_number(value, name, minimum=minimum, strict=strict)


def check_samples(samples, name: str = "samples"):
    """``samples`` itself, checked to be a :class:`~slt_thermo.Samples`."""
    from .results import Samples

    if not isinstance(samples, Samples):
        raise InvalidArgumentError(f"`{name}` must be slt_thermo.Samples, got {type(samples).__name__}")
    return samples


def real_array(value, name: str, *, shape=None, ndim=None, finite: bool = True,
               nonnegative: bool = False) -> np.ndarray:
    """``value`` as a float64 array, checked to be numeric, of ``shape`` (or ``ndim``), finite
    (with ``finite``; NaN/inf allowed otherwise) and, with ``nonnegative``, never < 0."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"`{name}` must be a numeric array, got {value!r:.80}") from None
    if shape is not None and arr.shape != tuple(shape):
        raise InvalidArgumentError(f"`{name}` must have shape {tuple(shape)}, got {arr.shape}")
    if ndim is not None and arr.ndim != ndim:
        raise InvalidArgumentError(f"`{name}` must be {ndim}-D, got shape {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(f"`{name}` has {int(np.sum(~np.isfinite(arr)))} non-finite value(s)")
    if nonnegative and np.any(arr < 0):
        raise InvalidArgumentError(f"`{name}` must be >= 0, got {int(np.sum(arr < 0))} negative value(s)")
    return arr
