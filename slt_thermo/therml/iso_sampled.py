"""The iso-classification process at σ > 0 (beyond Gao & Chaudhari, who stop at σ = 0): the same
moves of the multipliers,

    λ̇ = −α ∂⟨C⟩/∂γ,   γ̇ = α ∂⟨C⟩/∂λ,

on the σS posterior p*(θ) ∝ q(θ) exp(−(R + λD + γC)/σ) (TherML's δ is the paper's λ), with the
derivatives of the *posterior mean* ⟨C⟩ read off the draws by the fluctuation–response identities

    ∂⟨C⟩/∂γ = −Var(C)/σ,   ∂⟨C⟩/∂λ = −Cov(C, D)/σ

(exact, no step size; :func:`~slt_thermo.therml.response`, jackknife errors) instead of the finite
differences the σ = 0 process needs. Each step samples p* with NUTS at the current (λ, γ), every
chain started from its last draw of the step before; the multipliers are traced (``with_hyper``),
so all steps share one compiled sampler. ``h`` also runs the finite-difference route (four more
runs per step, at λ ± h and γ ± h, the same key) for comparison.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import xarray as xr

from .._target_inputs import check_key
from .._utils import check_beta, positive_int
from ..errors import InvalidArgumentError
from ..target import Target
from .iso import IsoProcess, _check_numbers
from .laws import _draws, _jackknife, response


def _mean(draws: dict, name) -> tuple[float, float]:
    """⟨name⟩ ± its jackknife error over one rung's draws (``laws._draws(run)[0]``)."""
    return _jackknife(draws, lambda x: float(x[name].mean()))


def _last_draws(run) -> dict:
    """Each chain's last draw, with the leading (β = 1, chain) axes ``init`` takes."""
    return {k: jnp.asarray(run[k].values[:, :, -1]) for k in run.param_names}


def iso_classification_sampled(target: Target, *, beta: float, lam: float, gam: float, key, num_steps: int = 10,
                               alpha: float = 0.01, h: float | None = None, num_chains: int = 4,
                               num_warmup: int = 200, num_samples: int = 400, progress: bool = False,
                               **nuts_options) -> IsoProcess:
    """The σ > 0 iso-classification process (module docstring) on ``target`` (from
    :func:`~slt_thermo.therml.posterior`; its ρ is kept) at β = 1/σ = ``beta``, from (λ, γ) =
    (``lam``, ``gam``): ``num_steps`` Euler steps of size ``alpha``, each a NUTS run of
    ``num_chains`` × (``num_warmup`` + ``num_samples``) (more :func:`~slt_thermo.sample_nuts`
    keywords in ``nuts_options``).

    Returns an :class:`~slt_thermo.therml.IsoProcess` whose table has, per point (N + 1 rows, the
    start first): ``lam``, ``gam``; ⟨R⟩, ⟨D⟩, ⟨C⟩ and their ``*_se``; the fluctuation–response
    ``dC_dlam``, ``dC_dgam`` (± ``*_se``) that moved the multipliers; with ``h`` the
    finite-difference ``dC_dlam_fd``, ``dC_dgam_fd`` (± ``*_se``, the two runs' errors combined as
    if independent: conservative, since they share the key); and ``rhat_C``. ``params``: every
    chain's last draw.
    """
    from ..samplers.nuts import sample_nuts

    if not isinstance(target, Target) or not {"delta", "gamma"} <= set(target.hyper):
        raise InvalidArgumentError("`target` must be a σS posterior (slt_thermo.therml.posterior)")
    beta = check_beta(beta, positive=True)
    check_key(key)
    num_steps = positive_int(num_steps, "num_steps")
    _check_numbers(positive=("h",), lam=lam, gam=gam, alpha=alpha, **({} if h is None else {"h": h}))
    if h is not None and h >= min(lam, gam):
        raise InvalidArgumentError(f"`h` ({h}) must be smaller than λ and γ so the differences stay in range")
    kw = dict(num_chains=num_chains, num_warmup=num_warmup, num_samples=num_samples, progress=False, **nuts_options)

    def sample(lm, gm, init):
        here = target.with_hyper(delta=lm, gamma=gm)
        return here, sample_nuts(here, [beta], key=key, init=init, **kw)

    rows, init = [], None
    lm, gm = float(lam), float(gam)
    for step in range(num_steps + 1):
        here, run = sample(lm, gm, init)
        init = _last_draws(run)  # every chain's last draw starts the next runs
        row = {"lam": lm, "gam": gm, "rhat_C": float(_rhat(run, "C"))}
        draws = _draws(run)[0]
        for name in ("R", "D", "C"):
            row[name], row[f"{name}_se"] = _mean(draws, name)
        for col, wrt in (("dC_dlam", "delta"), ("dC_dgam", "gamma")):
            r = response(run, here, "C", wrt)
            row[col], row[f"{col}_se"] = float(r["value"].values[0]), float(r["se"].values[0])
        if h is not None:
            for col, (a, b) in (("dC_dlam_fd", ((lm + h, gm), (lm - h, gm))),
                                ("dC_dgam_fd", ((lm, gm + h), (lm, gm - h)))):
                (ca, sa), (cb, sb) = (_mean(_draws(sample(*pt, init)[1])[0], "C") for pt in (a, b))
                row[col], row[f"{col}_se"] = (ca - cb) / (2 * h), math.hypot(sa, sb) / (2 * h)
        rows.append(row)
        if progress:
            print(f"iso σ>0 step {step}/{num_steps}: λ = {lm:.4g}, γ = {gm:.4g}, ⟨C⟩ = {row['C']:.4g} ± "
                  f"{row['C_se']:.2g}", flush=True)
        lm, gm = lm - alpha * row["dC_dgam"], gm + alpha * row["dC_dlam"]
        if lm < 0 or gm < 0:
            raise InvalidArgumentError(f"the process left λ, γ >= 0 at step {step + 1} (λ = {lm:.3g}, γ = {gm:.3g}): "
                                       "take a smaller `alpha`")
    table = xr.Dataset({k: ("step", np.array([r[k] for r in rows], np.float64)) for k in rows[0]},
                       coords={"step": np.arange(num_steps + 1)},
                       attrs={"alpha": alpha, "beta": beta, "sigma": 1 / beta, "h": np.nan if h is None else h,
                              "num_chains": num_chains, "num_samples": num_samples})
    return IsoProcess(table, {k: np.asarray(v) for k, v in init.items()})


def _rhat(run, name) -> float:
    from ..results import rhat

    x = run[name].values[0][np.asarray(run["healthy"].values[0], bool)]
    return float(rhat(x))


__all__ = ["iso_classification_sampled"]
