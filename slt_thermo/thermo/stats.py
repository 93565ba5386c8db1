"""Per-rung energy statistics with Monte Carlo errors: the common input of every estimator.

Everything here reads the per-draw energy ``nll`` = H(w) = nL_n(w) of :class:`~slt_thermo.Samples`,
pools the healthy chains of each β, and attaches ESS-based standard errors (ArviZ's ESS for the mean), so
that estimators built on top (TI, λ estimators, specific heat) carry honest error bars.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import xarray as xr

from ..errors import ConvergenceWarning, InvalidArgumentError, NumericalWarning, TooFewHealthyChainsError
from ..results import RHAT_INFLATE, Samples, ess_mean, rhat, stuck_chains, unconverged_rungs


def healthy_draws(samples: Samples, var: str = "nll", *, min_chains: int = 1) -> list[np.ndarray]:
    """For each β, the (chain, draw) array of ``var`` over the healthy chains only.

    Unhealthy chains (non-finite values) are excluded with a warning; fewer than ``min_chains``
    healthy chains at any β raises :class:`TooFewHealthyChainsError`.
    """
    if not isinstance(samples, Samples):
        raise InvalidArgumentError(f"`samples` must be slt_thermo.Samples, got {type(samples).__name__}")
    if samples.num_draws < 4:
        raise InvalidArgumentError(f"`samples` has {samples.num_draws} draws per chain; need >= 4")
    healthy = samples.healthy.values
    values = np.asarray(samples[var].values, dtype=float)
    out = []
    dropped = 0
    for i, beta in enumerate(samples.betas):
        ok = healthy[i]
        dropped += int((~ok).sum())
        if ok.sum() < min_chains:
            raise TooFewHealthyChainsError(
                f"only {int(ok.sum())} healthy chain(s) at beta = {beta:.6g}; need {min_chains}. "
                "Check the step size / init, or run more chains"
            )
        out.append(values[i][ok])
    if dropped:
        warnings.warn(f"excluding {dropped} unhealthy (beta, chain) pair(s) from the estimate", NumericalWarning,
                      stacklevel=3)
    return out


def mean_se(x: np.ndarray) -> tuple[float, float, float]:
    """(mean, standard error, ESS) of a (chain, draw) array; SE = sd/√ESS_mean (ArviZ mcse_mean),
    made honest where the chains say the draws cannot be trusted:

    - a chain whose draws are all equal never moved (a step size far too large, no warm-up): its
      draws say nothing about their own error, so SE = inf (a stuck chain gave F = 603.7 ± 0.0
      against an exact 291.7 before, issue 24);
    - split R-hat > RHAT_INFLATE: the chains sample different regions, and the within-chain
      ESS understates the error; SE is then at least the spread of the chain means,
      sd(chain means)/√chains (the batch-means error with one batch per chain).
    """
    x = np.asarray(x, dtype=float)
    ess = ess_mean(x) if x.shape[1] >= 4 else float(x.size)
    ess = max(min(ess, float(x.size)), 1.0) if math.isfinite(ess) else 1.0
    sd = float(x.std(ddof=1)) if x.size > 1 else float("nan")
    se = sd / math.sqrt(ess)
    if x.ndim == 2 and x.shape[1] >= 4:
        if stuck_chains(x):
            se = math.inf
        elif x.shape[0] >= 2 and rhat(x) > RHAT_INFLATE:
            se = max(se, float(x.mean(axis=1).std(ddof=1)) / math.sqrt(x.shape[0]))
    return float(x.mean()), se, ess


def rung_stats(samples: Samples, *, min_chains: int = 1) -> xr.Dataset:
    """Per-β table of the energy H = nL_n: mean ``E`` and ``E_se``, variance ``Var`` and
    ``Var_se``, bulk ``ess`` of H, its split ``rhat`` (NaN with one chain), and the number of
    healthy chains ``chains``."""
    rows = {k: [] for k in ("E", "E_se", "Var", "Var_se", "ess", "rhat", "chains", "stuck")}
    for x in healthy_draws(samples, min_chains=min_chains):
        m, se, ess = mean_se(x)
        dev2 = (x - m) ** 2
        v, v_se, _ = mean_se(dev2)
        n = x.size
        rows["E"].append(m)
        rows["E_se"].append(se)
        rows["Var"].append(v * n / max(n - 1, 1))
        rows["Var_se"].append(v_se)
        rows["ess"].append(ess)
        rows["rhat"].append(rhat(x) if x.shape[0] >= 2 else float("nan"))
        rows["chains"].append(x.shape[0])
        rows["stuck"].append(stuck_chains(x))
    coords = {"beta": samples.betas}
    out = xr.Dataset({k: ("beta", np.asarray(v)) for k, v in rows.items()}, coords=coords,
                     attrs={"n": samples.n})
    _warn_unconverged(out)
    return out


def _warn_unconverged(stats: xr.Dataset) -> None:
    """One ConvergenceWarning naming the rungs with stuck chains, R-hat > RHAT_INFLATE or ESS <
    ESS_WARN, and what their error bars became."""
    parts = unconverged_rungs(stats["beta"].values, stuck=stats["stuck"].values, rhat=stats["rhat"].values,
                              ess=stats["ess"].values)
    if parts:
        warnings.warn("unconverged rungs: " + "; ".join(parts) + ". Error bars: inf where a chain never moved, "
                      "at least the chain means' spread where R-hat is high. Run longer, warm up, or check "
                      "the step size", ConvergenceWarning, stacklevel=3)
