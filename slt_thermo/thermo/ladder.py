"""β ladders: where to put the rungs of a tempered run.

- :func:`power` — (i/N)^c with β = 0 included, the thermodynamic-integration default
  (Calderhead & Girolami recommend c = 5; REFERENCE §2.5);
- :func:`geometric` — equal thermodynamic length in the singular regime, where
  Var^β[nL_n] ≈ λ/β² makes dβ ∝ 1/√Var geometric in β;
- :func:`ti` — the thermodynamic-integration ladder for n examples: β = 0, then geometric
  from β = low/n (where the posterior is still the prior) to 1; pair it with the
  ``"log_corrected_trapezoid"`` rule;
- :func:`around_wbic` — rungs around β = 1/log n, where the λ estimators read the energy;
- :func:`adaptive` — equal thermodynamic length from a pilot run's energy variance.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidArgumentError


def _check_num(num, minimum=1):
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < minimum:
        raise InvalidArgumentError(f"`num` must be an integer >= {minimum}, got {num!r}")
    return int(num)


def power(num: int = 16, exponent: float = 5.0, beta_max: float = 1.0) -> np.ndarray:
    """β_i = beta_max·(i/num)^exponent for i = 0..num: ``num + 1`` rungs from 0 to beta_max."""
    num = _check_num(num)
    if not exponent > 0:
        raise InvalidArgumentError(f"`exponent` must be > 0, got {exponent!r}")
    if not beta_max > 0:
        raise InvalidArgumentError(f"`beta_max` must be > 0, got {beta_max!r}")
    return beta_max * (np.arange(num + 1) / num) ** float(exponent)


def geometric(beta_min: float, beta_max: float = 1.0, num: int = 16, *, include_zero: bool = False) -> np.ndarray:
    """``num`` geometrically spaced rungs in [beta_min, beta_max] (and β = 0 first if asked)."""
    num = _check_num(num, 2)
    if not 0 < beta_min < beta_max:
        raise InvalidArgumentError(
            f"need 0 < `beta_min` < `beta_max`, got beta_min={beta_min!r}, beta_max={beta_max!r}"
        )
    b = np.geomspace(beta_min, beta_max, num)
    return np.concatenate([[0.0], b]) if include_zero else b


def ti(n: int, num: int = 24, beta_max: float = 1.0, low: float = 0.01) -> np.ndarray:
    """β = 0 and ``num`` geometric rungs from ``low``/n to ``beta_max``: a ladder for TI at size n.

    E^β[nL_n] moves from its prior value to the singular regime E ≈ nL_n(w0) + λ/β across
    β ~ 1/n, and from there on only β·E changes slowly (in log β). A power ladder puts almost
    no rungs near 1/n when n is large (``power(16)``'s first positive rung is 1e-6), so its
    quadrature error grows with n (−35 nats at n = 1e7 on the exact w² fixture); this ladder
    with the ``"log_corrected_trapezoid"`` rule keeps it below 1e-3 nats for n ≤ 1e7 at
    ``num`` = 24 (tests/test_integration.py checks it against the closed forms).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InvalidArgumentError(f"`n` must be an integer >= 1, got {n!r}")
    if not 0 < low < 1:
        raise InvalidArgumentError(f"`low` must be in (0, 1), got {low!r}")
    if not beta_max > low / n:
        raise InvalidArgumentError(f"`beta_max` must exceed low/n = {low / n:.3g}, got {beta_max!r}")
    return geometric(low / n, beta_max, _check_num(num, 2), include_zero=True)


def around_wbic(n: int, num: int = 8, width: float = 2.0) -> np.ndarray:
    """``num`` geometric rungs in [1/(width·log n), width/log n], centred on β = 1/log n.

    With an odd ``num`` the middle rung is exactly 1/log n.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise InvalidArgumentError(f"`n` must be an integer >= 2, got {n!r}")
    if not width > 1:
        raise InvalidArgumentError(f"`width` must be > 1, got {width!r}")
    b0 = 1.0 / math.log(n)
    return geometric(b0 / width, b0 * width, num)


def adaptive(pilot, num: int = 16) -> np.ndarray:
    """Rungs at equal thermodynamic length s(β) = ∫ √Var^β[nL_n] dβ, from a pilot run.

    ``pilot`` is a :class:`~slt_thermo.Samples` over a coarse ladder; log Var is interpolated
    linearly in log β between its rungs (Var ≈ λ/β² is a straight line there). Returns ``num``
    rungs from the pilot's smallest to its largest β (keeps β = 0 if the pilot has it).
    """
    from .stats import rung_stats

    num = _check_num(num, 2)
    stats = rung_stats(pilot)
    betas = np.asarray(stats["beta"].values, dtype=float)
    sd = np.sqrt(np.maximum(np.asarray(stats["Var"].values), 1e-300))
    if betas.size < 2:
        raise InvalidArgumentError("`pilot` needs at least two rungs to interpolate the variance")
    grid = np.concatenate([np.linspace(betas[i], betas[i + 1], 200, endpoint=False)
                           for i in range(betas.size - 1)] + [betas[-1:]])
    pos = betas > 0
    if pos.sum() >= 2:
        log_sd = np.interp(np.log(np.maximum(grid, betas[pos][0])), np.log(betas[pos]), np.log(sd[pos]))
        sd_grid = np.exp(log_sd)
        if not pos.all():  # between 0 and the first positive rung: linear in β
            first = betas[pos][0]
            low = grid < first
            sd_grid[low] = np.interp(grid[low], betas[: np.argmax(pos) + 1], sd[: np.argmax(pos) + 1])
    else:
        sd_grid = np.interp(grid, betas, sd)
    s = np.concatenate([[0.0], np.cumsum(0.5 * (sd_grid[1:] + sd_grid[:-1]) * np.diff(grid))])
    targets = np.linspace(0.0, s[-1], num)
    out = np.interp(targets, s, grid)
    out[0], out[-1] = betas[0], betas[-1]
    return out
