"""One comparison of SGD against the samplers, as a researcher runs it: SGD at a grid of
(learning rate η, batch size B), each trajectory's temperature by the thermometers, and the
distances between its stationary iterates and NUTS draws at the matched β̂.

:func:`compare` runs it all on one target and returns one Dataset; the ``slt-thermo sgd``
command prints and plots it.
"""

from __future__ import annotations

import jax
import numpy as np
import optax
import xarray as xr

from .._utils import positive_int
from ..errors import InvalidArgumentError
from ..results import Samples
from ..target import Target
from .temperature import gradient_noise, thermometers
from .trajectory import sgd_trajectory, stationary


def _grid(values, name, kind):
    v = np.atleast_1d(np.asarray(values, dtype=float))
    if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise InvalidArgumentError(f"`{name}` must be a non-empty list of {kind} > 0, got {values!r}")
    return v


def _independent_points(samples, num_points: int) -> np.ndarray:
    """Flat draws (N, d) of a one-β Samples thinned, within each chain, to about its effective
    sample size (ArviZ bulk ESS of nL_n), at most ``num_points``: the permutation test of MMD
    assumes independent points, and autocorrelated iterates (SGD relaxes in ~1/(ηκ) steps)
    would make it reject too often."""
    from .. import metrics
    from ..results import ess_bulk

    if samples.has_beta:
        samples = Samples(samples.ds.isel(beta=0, drop=True))
    healthy = np.asarray(samples["healthy"].values, bool)
    nll = np.asarray(samples["nll"].values, np.float64)[healthy]
    C, T = nll.shape
    keep = int(min(num_points, max(2 * C, ess_bulk(nll))))
    per_chain = max(1, keep // C)
    idx = np.unique(np.linspace(0, T - 1, per_chain).round().astype(int))
    return metrics.as_points(Samples(samples.ds.isel(draw=idx)))


def default_ladder(target: Target, w_star, learning_rates, batch_sizes, num_rungs: int = 10) -> np.ndarray:
    """A β-ladder spanning the settings' Mandt temperatures 2B/(ηnσ_g²) by a factor 3 each way
    (geometric): where energy matching will look."""
    s2, _ = gradient_noise(target, w_star)
    b = [2 * B / (eta * target.n * s2) for eta in learning_rates for B in batch_sizes]
    return np.geomspace(min(b) / 3, max(b) * 3, positive_int(num_rungs, "num_rungs"))


def compare(target: Target, w_star, *, learning_rates, batch_sizes, key, num_steps: int = 6000,
            num_runs: int = 16, record_every: int = 5, burn_in: float = 0.2, ladder=None, rlct: float | None = None,
            nuts: dict | None = None, num_points: int = 1000) -> xr.Dataset:
    """SGD (plain, constant η, started at ``w_star``) at every (η, B), against NUTS.

    Steps: (1) a NUTS run over ``ladder`` (default :func:`default_ladder`); (2) per setting, a
    trajectory of ``num_runs`` runs, its stationary part (after ``burn_in``), and the
    thermometers (energy matching on the ladder, equipartition if ``rlct``, covariance
    matching, Mandt); (3) one NUTS run at every setting's energy-matched β̂; (4) MMD² (with a
    permutation p-value), energy distance and sliced W₂² between ``num_points`` SGD iterates and
    as many NUTS draws at that β̂, each set thinned to about its effective sample size (the
    permutation test assumes independent points). ``nuts``: keywords for :func:`slt_thermo.sample_nuts`
    (default 4 chains × (300 + 500)).

    Returns a Dataset over ``setting`` (coords ``learning_rate``, ``batch_size``) and ``thermometer``:
    ``beta``, ``se`` (setting × thermometer), ``energy``, ``energy_se``, ``mmd2``, ``mmd2_se``,
    ``mmd_p``, ``energy_distance``, ``sliced_w2`` (setting); attrs ``ladder``, ``n``.
    """
    from .. import metrics
    from ..samplers import sample_nuts
    from .temperature import mean_energy

    etas, Bs = _grid(learning_rates, "learning_rates", "learning rates"), _grid(batch_sizes, "batch_sizes", "sizes")
    num_points = positive_int(num_points, "num_points", 10)
    nuts = {"num_chains": 4, "num_warmup": 300, "num_samples": 500, "progress": False} | (nuts or {})
    if ladder is None:
        ladder = default_ladder(target, w_star, etas, Bs)
    k_ladder, k_sgd, k_at, k_metric = jax.random.split(key, 4)
    ladder_run = sample_nuts(target, ladder, key=k_ladder, **nuts)
    settings = [(eta, int(B)) for eta in etas for B in Bs]
    tabs, trajs = [], []
    for i, (eta, B) in enumerate(settings):
        traj = sgd_trajectory(target, optax.sgd, schedule=float(eta), num_steps=num_steps, batch_size=B,
                              num_runs=num_runs, record_every=record_every, init=w_star,
                              key=jax.random.fold_in(k_sgd, i), progress=False)
        traj = stationary(traj, burn_in)
        trajs.append(traj)
        tabs.append(thermometers(traj, target, w_star=w_star, ladder=ladder_run, rlct=rlct))
    methods = list(tabs[0]["thermometer"].values)
    beta = np.array([t["beta"].values for t in tabs])
    se = np.array([t["se"].values for t in tabs])
    b_hat = beta[:, methods.index("energy")]
    at = sample_nuts(target, np.unique(b_hat), key=k_at, **nuts)
    rows = []
    for i, traj in enumerate(trajs):
        x = _independent_points(traj, num_points)
        y = _independent_points(at.sel_beta(float(b_hat[i])), num_points)
        km = jax.random.fold_in(k_metric, i)
        mmd = metrics.mmd2_u(x, y, num_permutations=200, key=km)
        e, e_se = mean_energy(traj)
        rows.append((e, e_se, mmd.value, mmd.stderr, mmd.p_value, float(metrics.energy_distance(x, y)),
                     metrics.sliced_w2(x, y, key=jax.random.fold_in(km, 1))))
    r = np.array(rows, np.float64)
    names = ("energy", "energy_se", "mmd2", "mmd2_se", "mmd_p", "energy_distance", "sliced_w2")
    ds = xr.Dataset({"beta": (("setting", "thermometer"), beta), "se": (("setting", "thermometer"), se),
                     **{k: ("setting", r[:, j]) for j, k in enumerate(names)}},
                    coords={"setting": np.arange(len(settings)), "thermometer": methods,
                            "learning_rate": ("setting", [s[0] for s in settings]),
                            "batch_size": ("setting", [s[1] for s in settings])})
    ds.attrs.update(ladder=np.asarray(ladder, float).tolist(), n=target.n, num_steps=num_steps, num_runs=num_runs,
                    burn_in=burn_in, noise_scale_rule="β ∝ B/η (Mandt; Smith & Le)")
    return ds


__all__ = ["compare", "default_ladder"]
