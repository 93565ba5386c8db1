"""Training as refrigeration: an annealed learning-rate schedule read as a cooling protocol,
and the work a Langevin β-schedule does (DLT2 §6.1; Sohl-Dickstein et al.'s Jarzynski view).

- :func:`cooling_curve`: β̂(t) of an SGD trajectory, window by window, by energy matching against
  a tempered ladder (:func:`slt_thermo.beta_at_energy`): with η(t) decaying, β̂(t) rises — the
  schedule cools the iterates. It is a *quasi-static reading*: each window's mean energy is
  matched as if the iterates were at equilibrium, which lags when η changes faster than the
  iterates relax (~1/(ηκ) steps).
- :func:`annealing_work`: Langevin (MALA) at a β-schedule from the prior, i.e. AIS, and its work
  statistics (:func:`slt_thermo.thermo.work.work_statistics`): ⟨W⟩ − ΔF ≥ 0 against a ΔF from
  thermodynamic integration, and Jarzynski's estimate of ΔF with its error.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .._utils import positive_int
from ..errors import InvalidArgumentError
from ..results import Samples
from ..target import Target
from .temperature import _check_traj


def cooling_curve(traj: Samples, ladder: Samples, *, window: int = 10) -> xr.Dataset:
    """β̂ ± se per window of ``window`` recorded draws of an SGD trajectory (all runs), by energy
    matching against a tempered ``ladder`` run of the same target (MBAR solved once).

    Dataset over ``step`` (the optimizer step at each window's end): ``beta``, ``se``,
    ``energy``, ``energy_se`` (mean nL_n over the window and runs, error from the runs' spread)
    and ``learning_rate`` (the window's mean). β̂ is NaN where the energy lies outside the
    ladder's range of E^β (extend the ladder)."""
    from ..thermo.mbar import beta_at_energy, mbar_ladder

    traj = _check_traj(traj)
    window = positive_int(window, "window")
    if not isinstance(ladder, Samples) or not ladder.has_beta or ladder.n != traj.n:
        raise InvalidArgumentError("`ladder` must be a tempered run over a β-ladder of the trajectory's target")
    healthy = np.asarray(traj["healthy"].values, bool)
    nll = np.asarray(traj["nll"].values, np.float64)[healthy]
    if nll.shape[0] < 2:
        raise InvalidArgumentError("need >= 2 healthy runs for error bars")
    T = nll.shape[1]
    if window > T:
        raise InvalidArgumentError(f"`window` ({window}) exceeds the {T} recorded draws")
    fit = mbar_ladder(ladder)
    lr = np.asarray(traj["learning_rate"].values, np.float64)[healthy] if "learning_rate" in traj else None
    every = int(traj.ds.attrs.get("record_every", 1))
    rows = []
    for start in range(0, T - window + 1, window):
        per_run = nll[:, start:start + window].mean(axis=1)
        e, e_se = float(per_run.mean()), float(per_run.std(ddof=1) / np.sqrt(per_run.size))
        try:
            b, b_se = beta_at_energy(fit, e, e_se)
        except InvalidArgumentError:  # outside the ladder's energies
            b, b_se = np.nan, np.nan
        rate = float(np.mean(lr[:, start:start + window])) if lr is not None else np.nan
        rows.append(((start + window) * every, float(b), float(b_se), e, e_se, rate))
    v = np.array(rows, np.float64)
    return xr.Dataset({k: ("step", v[:, j + 1]) for j, k in
                       enumerate(("beta", "se", "energy", "energy_se", "learning_rate"))},
                      coords={"step": v[:, 0].astype(int)}, attrs={"window": window, "n": traj.n})


def annealing_work(target: Target, betas, *, key, num_chains: int = 256, log_z: float | None = None,
                   mcmc_steps: int = 2, progress: bool = False) -> dict:
    """Langevin dynamics (MALA moves) under the β-schedule ``betas`` (from 0, ascending) for
    ``num_chains`` independent particles, i.e. AIS (:func:`slt_thermo.ais`, ``mcmc="mala"``),
    and the work statistics of the protocol: ⟨W⟩, ΔF, ⟨W⟩ − ΔF (≥ 0), Jarzynski's log Z. Pass a
    ``log_z`` from thermodynamic integration (or an exact value) to measure the dissipated work
    against it; otherwise the run's own AIS estimate is used."""
    from ..samplers import ais
    from ..thermo.work import work_statistics

    result = ais(target, betas=betas, num_chains=positive_int(num_chains, "num_chains"), key=key, mcmc="mala",
                 mcmc_steps=mcmc_steps, progress=progress)
    return work_statistics(result, log_z) | {"num_rungs": int(np.asarray(betas).size)}


__all__ = ["annealing_work", "cooling_curve"]
