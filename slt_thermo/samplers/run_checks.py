"""The end-of-run check of a sampler run (issue 24): per rung, split R-hat and bulk ESS of nL_n
over the healthy chains, chains that never moved and divergent transitions, stored in the
dataset's attrs and summarized in one ConvergenceWarning when a rung fails."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ConvergenceWarning
from ..results import ess_bulk, rhat, stuck_chains, unconverged_rungs

RUN_CHECK = "run check"  # the prefix of the end-of-run ConvergenceWarning (st.llc reports its own)


def check_rungs(ds, healthy) -> None:
    """Store ``rung_rhat``, ``rung_ess``, ``rung_stuck`` and ``rung_divergences`` (one entry per β)
    in ``ds.attrs`` and warn once (``RUN_CHECK: …``) when a rung has R-hat > 1.05, ESS < 100, a
    stuck chain or a divergence. ``healthy``: (β, chain) booleans; unhealthy chains are left out."""
    nll = np.asarray(ds["nll"].values, dtype=float)
    if nll.ndim == 2:  # a run without β
        nll = nll[None]
    div = ds["diverging"].values.reshape(nll.shape) if "diverging" in ds else np.zeros(nll.shape, bool)
    cols = {"rung_rhat": [], "rung_ess": [], "rung_stuck": [], "rung_divergences": []}
    for x, ok, dv in zip(nll, healthy, div):
        x = x[ok]
        good = x.shape[0] >= 1 and np.isfinite(x).all()
        cols["rung_rhat"].append(rhat(x) if good and x.shape[0] >= 2 else float("nan"))
        cols["rung_ess"].append(ess_bulk(x) if good else float("nan"))
        cols["rung_stuck"].append(stuck_chains(x))
        cols["rung_divergences"].append(int(np.sum(dv[ok])))
    cols = {k: np.asarray(v) for k, v in cols.items()}
    ds.attrs.update(cols)
    betas = ds["beta"].values if "beta" in ds.coords else np.ones(1)
    parts = unconverged_rungs(betas, stuck=cols["rung_stuck"], rhat=cols["rung_rhat"], ess=cols["rung_ess"],
                              divergences=cols["rung_divergences"])
    if parts:
        warnings.warn(f"{RUN_CHECK}: " + "; ".join(parts) + " (attrs rung_rhat, rung_ess, rung_stuck, "
                      "rung_divergences). Warm up longer, run longer or check the step size",
                      ConvergenceWarning, stacklevel=5)
