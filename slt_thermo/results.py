"""Result types: :class:`Samples` (draws over a β-ladder) and :class:`Estimate` (value ± error).

``Samples`` wraps an ``xarray.Dataset`` with dims ``beta, chain, draw``:

- ``nll`` (beta, chain, draw): the energy H(w) = n L_n(w) of each draw on the full data
  (n K(w) for population targets). Not called ``energy``: ArviZ reserves that name for the
  Hamiltonian energy of HMC.
- ``log_prior`` (beta, chain, draw): log φ(w) of each draw (for entropies and internal energies);
- one variable per parameter array (beta, chain, draw, <name>_dim_0, ...) when kept, in model space;
- sampler statistics under ArviZ names: ``diverging``, ``acceptance_rate``, ``step_size``,
  ``n_steps``, ``tree_depth``, ``energy``, ``lp``;
- per-example log-likelihood accumulators over the draws of each (beta, chain), dims
  (beta, chain, example): ``loglik_mean`` (running mean of log p(y_i|x_i,w)), ``loglik_m2``
  (running sum of squared deviations, Welford), ``loglik_logsumexp`` (log Σ_draws p(y_i|x_i,w)).
  With ``attrs["num_draws"]`` they give WAIC, the Bayes training loss and the functional variance
  without ever storing a draws × n matrix;
- ``healthy`` (beta, chain): False where the chain produced a non-finite value;
- one variable per declared observable of the target (``Target.observables``), per draw.

A run without inverse temperature (an SGD trajectory) has no ``beta`` dimension: dims
(chain, draw). Estimators that need β raise on it, saying so.

Attributes record n, the sampler and its settings, the target name and, when known, the true λ.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from typing import Any

import numpy as np
import xarray as xr

from .errors import InvalidArgumentError, ResultsFileError
from .io import read_netcdf, write_netcdf

RESERVED = {
    "nll", "log_prior", "healthy", "diverging", "acceptance_rate", "step_size", "n_steps", "tree_depth",
    "energy", "lp", "loglik_mean", "loglik_m2", "loglik_logsumexp", "mala_accept", "sq_distance",
    "minibatch_excess", "discretization_excess",
}
STAT_NAMES = ("diverging", "acceptance_rate", "step_size", "n_steps", "tree_depth", "energy", "lp")
POINTWISE = ("loglik_mean", "loglik_m2", "loglik_logsumexp")


def _arviz():
    import arviz as az

    return az


class Samples:
    """Draws from tempered posteriors over a β-ladder: an xarray.Dataset with helpers.

    The dataset is ``samples.ds``; ``samples["nll"]`` and friends index into it.
    """

    def __init__(self, ds: xr.Dataset):
        missing = {"nll", "healthy"} - set(ds.data_vars)
        if missing or not {"chain", "draw"} <= set(ds.dims):
            raise InvalidArgumentError(
                "`ds` is not a Samples dataset: it needs dims (beta,) chain, draw and variables "
                f"nll, healthy (missing: {sorted(missing)})"
            )
        self.ds = ds
        self.state = None  # the run's final RunState when it came from a sampler (not saved)

    # ----------------------------------------------------------------- access
    def __getitem__(self, name):
        return self.ds[name]

    def __contains__(self, name):
        return name in self.ds

    @property
    def has_beta(self) -> bool:
        """False for a run without inverse temperature (an SGD trajectory: dims chain × draw)."""
        return "beta" in self.ds.dims

    @property
    def betas(self) -> np.ndarray:
        """The ladder's inverse temperatures; raises on a run without β axis."""
        if not self.has_beta:
            raise InvalidArgumentError(
                f"these samples ({self.ds.attrs.get('sampler', '?')} run) have no β axis, so "
                "nothing that needs an inverse temperature (free energies, RLCT, observables of "
                "p^β, ...) can be computed from them")
        return self.ds["beta"].values

    @property
    def n(self) -> int:
        return int(self.ds.attrs["n"])

    @property
    def nll(self) -> xr.DataArray:
        return self.ds["nll"]

    @property
    def healthy(self) -> xr.DataArray:
        return self.ds["healthy"]

    @property
    def param_names(self) -> list[str]:
        names = self.ds.attrs.get("param_names", "")
        return [s for s in str(names).split(",") if s]

    @property
    def params(self) -> dict[str, xr.DataArray]:
        """The kept parameters, in model space, by name."""
        return {k: self.ds[k] for k in self.param_names if k in self.ds}

    @property
    def observable_names(self) -> list[str]:
        """Names of the target's observables recorded per draw."""
        names = self.ds.attrs.get("observable_names", "")
        return [s for s in str(names).split(",") if s]

    @property
    def num_draws(self) -> int:
        return int(self.ds.sizes["draw"])

    def sel_beta(self, beta) -> "Samples":
        """The samples at one β (nearest rung), keeping the beta dimension of length 1."""
        ds = self.ds.sel(beta=[float(beta)], method="nearest")
        return Samples(ds)

    # ----------------------------------------------------------------- diagnostics
    def summary(self):
        """Per-β table (pandas DataFrame; one row, β = NaN, for a run without β axis): mean and MC standard error of nll, R-hat and bulk ESS
        of nll over the healthy chains, healthy-chain count, divergences and acceptance rate."""
        import pandas as pd

        ds = self.ds if self.has_beta else self.ds.expand_dims(beta=[float("nan")])
        rows = []
        for i, b in enumerate(ds["beta"].values):
            ok = ds["healthy"].values[i]
            x = ds["nll"].values[i][ok]
            row = {"beta": b, "healthy_chains": int(ok.sum())}
            if x.shape[0] >= 1 and x.shape[1] >= 4:
                row.update(
                    nll_mean=float(x.mean()),
                    nll_mcse=float(x.std(ddof=1) / math.sqrt(max(ess_mean(x), 1.0))),
                    nll_rhat=rhat(x) if x.shape[0] >= 2 else float("nan"),
                    nll_ess_bulk=ess_bulk(x),
                )
            if "diverging" in ds:
                row["divergences"] = int(ds["diverging"].values[i].sum())
            if "acceptance_rate" in ds:
                row["acceptance_rate"] = float(ds["acceptance_rate"].values[i].mean())
            rows.append(row)
        return pd.DataFrame(rows).set_index("beta")

    # ----------------------------------------------------------------- export
    def to_arviz(self, beta=None):
        """ArviZ data (InferenceData on arviz < 1, DataTree on arviz ≥ 1) at one β.

        ``posterior`` holds the parameters and ``nll``; ``sample_stats`` the sampler statistics.
        ``beta`` may be omitted when the run has a single rung (or no β axis).
        """
        if not self.has_beta:
            ds = self.ds
        elif beta is None:
            if len(self.betas) != 1:
                raise InvalidArgumentError(
                    f"`beta` is required: this run has {len(self.betas)} rungs; pick one of "
                    f"{np.round(self.betas, 6).tolist()}"
                )
            beta = self.betas[0]
        if self.has_beta:
            ds = self.ds.sel(beta=float(beta), method="nearest")
        names = [k for k in self.param_names + self.observable_names if k in ds]
        post = ds[names + ["nll"]]
        stats = ds[[s for s in STAT_NAMES if s in ds]]
        post = post.drop_vars("beta", errors="ignore")
        stats = stats.drop_vars("beta", errors="ignore")
        post.attrs = stats.attrs = {"beta": float(ds["beta"])} if "beta" in ds.coords else {}
        az = _arviz()
        if int(az.__version__.split(".")[0]) < 1:
            return az.InferenceData(posterior=post, sample_stats=stats)
        return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})

    def save(self, path) -> str:
        """Write to netCDF (h5netcdf engine) with :func:`slt_thermo.io.write_netcdf`: under a
        temporary name renamed onto ``path`` (a killed process leaves the old file or none), with
        an HDF5 checksum on every variable's data. A missing parent directory is created.
        Returns the path. Round-trips via :func:`load`."""
        return write_netcdf(path, self.ds)

    @classmethod
    def load(cls, path) -> "Samples":
        """Read Samples written by :meth:`save`. Raises :class:`~slt_thermo.errors.ResultsFileError`
        naming the path and the cause when the file is missing, truncated, corrupted (a checksum
        does not match) or not a samples file."""
        path = os.fspath(path)
        ds = read_netcdf(path)
        missing = sorted({"nll", "healthy"} - set(ds.data_vars))
        if missing or "chain" not in ds.dims or "draw" not in ds.dims:
            raise ResultsFileError(f"cannot read {path!r}: a netCDF file but not a samples file (it lacks "
                                   f"{', '.join(missing) or 'the chain and draw dimensions'}; write one with "
                                   "Samples.save)")
        ds["healthy"] = ds["healthy"].astype(bool)
        if "diverging" in ds:
            ds["diverging"] = ds["diverging"].astype(bool)
        return cls(ds)

    def __repr__(self):
        h = int(self.healthy.values.sum())
        if self.has_beta:
            b = self.betas
            ladder = f"{len(b)} beta in [{b.min():.4g}, {b.max():.4g}], "
        else:
            ladder = "no beta axis, "
        return (
            f"Samples({self.ds.attrs.get('target', '?')}, sampler={self.ds.attrs.get('sampler', '?')}, "
            f"n={self.n}, {ladder}{self.ds.sizes['chain']} chains x {self.num_draws} draws, "
            f"{h}/{self.healthy.size} healthy)"
        )


def load(path) -> Samples:
    """Read :class:`Samples` from a netCDF file written by ``Samples.save`` (raises
    :class:`~slt_thermo.errors.ResultsFileError` for a missing, damaged or foreign file)."""
    return Samples.load(path)


def clean_attrs(attrs: dict) -> dict:
    """netCDF-safe attributes: None dropped, bools as ints, dicts/lists as JSON strings."""
    out = {}
    for k, v in attrs.items():
        if v is None:
            continue
        if isinstance(v, (bool, np.bool_)):
            v = int(v)
        elif isinstance(v, (dict, list, tuple)):
            v = json.dumps(v, default=str)
        elif not isinstance(v, (int, float, str, np.integer, np.floating)):
            v = str(v)
        out[k] = v
    return out


# --------------------------------------------------------------------- ArviZ-backed diagnostics
def rhat(x: np.ndarray) -> float:
    """Rank-normalized split R-hat of a (chain, draw) array (ArviZ)."""
    az = _arviz()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(az.rhat(np.asarray(x, dtype=float)))


def ess_mean(x: np.ndarray) -> float:
    """ESS for the mean of a (chain, draw) array (ArviZ ``method="mean"``): the one that gives
    the Monte Carlo standard error of a mean, sd/√ESS (ArviZ's ``mcse_mean``)."""
    az = _arviz()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(az.ess(np.asarray(x, dtype=float), method="mean"))


def ess_bulk(x: np.ndarray) -> float:
    """Bulk effective sample size of a (chain, draw) array (ArviZ)."""
    az = _arviz()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(az.ess(np.asarray(x, dtype=float), method="bulk"))


RHAT_INFLATE = 1.05  # above this split R-hat the chains disagree (warned; error bars widened)
ESS_WARN = 100  # bulk ESS below this: the error bar itself is unreliable (warned)


def stuck_chains(x: np.ndarray) -> int:
    """How many chains of a (chain, draw) array never moved (every draw equal to the first)."""
    x = np.asarray(x)
    return int(np.sum(np.all(x == x[:, :1], axis=1))) if x.ndim == 2 and x.shape[1] > 1 else 0


def unconverged_rungs(betas, *, stuck, rhat, ess, divergences=None) -> list[str]:
    """One phrase per kind of failure, naming the rungs (β) that have it: chains that never moved
    (``stuck``: counts per rung), split R-hat > RHAT_INFLATE, ESS < ESS_WARN (both judged on the
    rungs without stuck chains, where they mean something) and divergent transitions. Empty when
    every rung passes. The end-of-run check and the estimators' check word their warnings with it."""
    betas, stuck = np.atleast_1d(np.asarray(betas, float)), np.asarray(stuck)
    rhat, ess = np.asarray(rhat, float), np.asarray(ess, float)
    moved = stuck == 0
    split = moved & (np.nan_to_num(rhat, nan=1.0) > RHAT_INFLATE)
    few = moved & (np.nan_to_num(ess, nan=np.inf) < ESS_WARN)
    divergent = np.zeros(betas.shape, bool) if divergences is None else np.asarray(divergences) > 0

    def at(mask):
        shown = ", ".join(f"{b:.4g}" for b in betas[mask][:4])
        return f"β = {shown}" + (f" (+{int(mask.sum()) - 4} more)" if mask.sum() > 4 else "")

    parts = []
    if (~moved).any():
        parts.append(f"{int(stuck.sum())} chain(s) never moved at {at(~moved)}")
    if split.any():
        parts.append(f"R-hat of nL_n > {RHAT_INFLATE} at {at(split)} (max {np.nanmax(rhat[split]):.3g})")
    if few.any():
        parts.append(f"ESS of nL_n < {ESS_WARN} at {at(few)} (min {np.nanmin(ess[few]):.0f})")
    if divergent.any():
        parts.append(f"{int(np.sum(divergences))} divergent transition(s) at {at(divergent)}")
    return parts


# --------------------------------------------------------------------- Estimate
@dataclasses.dataclass(frozen=True)
class Estimate:
    """A number with its standard error and provenance; prints as ``0.512 ± 0.011``."""

    value: float
    stderr: float
    method: str = ""
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __str__(self):
        s = self.stderr
        if not (isinstance(s, (int, float)) and math.isfinite(s) and s > 0):
            return f"{self.value:.4g} ± {s}"
        decimals = max(0, 1 - math.floor(math.log10(s)))
        return f"{self.value:.{decimals}f} ± {s:.{decimals}f}"

    def __repr__(self):
        extra = f", method={self.method!r}" if self.method else ""
        diag = self.details.get("diagnostics")
        return f"Estimate({self}{extra})" + (f"\n  {diag}" if diag else "")

    def __float__(self):
        return float(self.value)
