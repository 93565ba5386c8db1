"""The local learning coefficient along an SGD trajectory: λ̂(t) ± se at recorded checkpoints
(Lau et al.'s and devinterp's main use), each by :func:`slt_thermo.llc` with its default policy.

The checkpoints run one after another through the same compiled program (the LLC's center is a
traced argument of the driver, so a new checkpoint costs no compile); the SGLD chains of one
checkpoint are vmapped. On a zoo model, compare λ̂(t) with the exact λ of the region the
trajectory is in — e.g. a deep linear network that passes saddles of lower rank: Aoyagi's λ for
each rank (``slt_thermo.exact.rlct_dln``).
"""

from __future__ import annotations

import jax
import numpy as np
import xarray as xr

from .._utils import positive_int
from ..errors import InvalidArgumentError
from ..results import Samples
from ..target import Target


def checkpoint(traj: Samples, run: int, draw: int) -> dict:
    """The parameters of run ``run`` at recorded draw ``draw`` (a params pytree of arrays)."""
    names = traj.param_names
    if not names:
        raise InvalidArgumentError("`traj` kept no parameters (keep_params=False)")
    out = {k: np.asarray(traj[k].values[run, draw]) for k in names}
    return out


def llc_along(traj: Samples, target: Target, *, key, draws=None, run: int = 0, num_checkpoints: int = 8,
              progress: bool = False, **llc_kwargs) -> xr.Dataset:
    """λ̂ ± se of ``st.llc`` at checkpoints of one run of a trajectory.

    ``draws``: the recorded draws to use (default ``num_checkpoints`` evenly spaced over the run,
    the last included). ``llc_kwargs`` go to :func:`slt_thermo.llc` (``num_steps``, ``gamma``,
    ``beta``, ...). Returns a Dataset over ``step`` (optimizer steps done): ``llc``, ``se``,
    ``llc_ref_minimum`` (λ̂ + β·ΔH, the nearest-minimum correction of the estimate), ``nll``
    (nL_n at the checkpoint), ``step_size``, ``rhat``, ``mala_accept`` and ``problems`` (the
    llc's own warnings at that checkpoint, joined by " | "; empty when none).

    Cost: with the default ``step_size="auto"`` every checkpoint measures its curvature and may
    halve ε and rerun (a checkpoint off a minimum often does); a fixed ``step_size`` (e.g. the
    auto value at the last checkpoint) makes each checkpoint one run. Off a minimum, λ̂ is not an
    LLC: ``llc_ref_minimum`` refers it to the minimum L-BFGS reaches from the checkpoint, and with
    a weak localization (small γ) the chains measure the basin they fall into.
    """
    from ..llc import llc

    if not isinstance(traj, Samples) or traj.has_beta or traj.ds.attrs.get("sampler") != "sgd":
        raise InvalidArgumentError("`traj` must be the Samples of slt_thermo.sgd.sgd_trajectory")
    T = traj.ds.sizes["draw"]
    run = positive_int(run, "run", 0)
    if run >= traj.ds.sizes["chain"]:
        raise InvalidArgumentError(f"`run` must be < {traj.ds.sizes['chain']} (the trajectory's runs), got {run}")
    if draws is None:
        k = positive_int(num_checkpoints, "num_checkpoints")
        draws = np.unique(np.linspace(0, T - 1, min(k, T)).round().astype(int))
    draws = np.asarray(draws, int).ravel()
    if draws.size == 0 or draws.min() < 0 or draws.max() >= T:
        raise InvalidArgumentError(f"`draws` must be recorded draw indices in [0, {T}), got {draws}")
    every = int(traj.ds.attrs.get("record_every", 1))
    rows, problems = [], []
    for i, k in enumerate(draws):
        est = llc(target, checkpoint(traj, run, int(k)), key=jax.random.fold_in(key, i), progress=progress,
                  **llc_kwargs)
        d = est.details
        ref = d.get("llc_ref_minimum")
        rows.append((est.value, est.stderr, np.nan if ref is None else ref, float(traj["nll"].values[run, k]),
                     d["step_size_policy"]["step_size"], d.get("rhat", np.nan), d.get("mala_accept", np.nan)))
        problems.append(" | ".join(d.get("problems", [])))
    v = np.array(rows, np.float64)
    steps = (draws + 1) * every
    names = ("llc", "se", "llc_ref_minimum", "nll", "step_size", "rhat", "mala_accept")
    return xr.Dataset({**{name: ("step", v[:, j]) for j, name in enumerate(names)},
                       "problems": ("step", np.array(problems, dtype=object))},
                      coords={"step": steps, "draw": ("step", draws)}, attrs={"run": run, "n": traj.n})


__all__ = ["checkpoint", "llc_along"]
