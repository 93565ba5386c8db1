"""slt_thermo: thermodynamics of Bayesian learning, as singular learning theory describes it.

Sample tempered posteriors p^β(w|D_n) ∝ φ(w) exp(−β nL_n(w)) over whole β-ladders with
NUTS/HMC (and, as they land, SGLD and population annealing), then read free energies,
learning coefficients and susceptibilities off the per-draw energies.

    import slt_thermo as st
    from slt_thermo import models

    model = models.linear_regression(d=3)
    target = st.Target(model, model.simulate(jax.random.key(0), n=200))
    run = st.sample_nuts(target, betas=[0.1, 0.5, 1.0], num_chains=4,
                         num_warmup=300, num_samples=500, key=jax.random.key(1))
    st.plotting.traces(run, path="traces.png")      # figures (matplotlib, imported on first use)
"""

import importlib
import sys
import types

from . import errors
from .errors import (
    DataError,
    InvalidArgumentError,
    LikelihoodError,
    SLTThermoError,
    TooFewHealthyChainsError,
)

# The public names, each loaded from its module on first use (PEP 562): `import slt_thermo` (and so
# `slt-thermo --help`) imports neither jax nor sympy/scipy/xarray until something needs them.
_LAZY = {
    **dict.fromkeys(("gamma_sensitivity", "llc", "llc_from_samples", "max_curvature",
                     "sgld_step_size"), "llc"),
    **dict.fromkeys(("Estimate", "Samples", "load"), "results"),
    **dict.fromkeys(("AnnealingResult", "AnnealingStalledError", "BDMCResult", "RunOptions",
                     "RunState", "ais", "bdmc", "population_annealing", "sample_hmc", "sample_mala",
                     "sample_nuts", "sample_sgld"), "samplers"),
    "Target": "target",
    "free_energy_vs_n": "sweeps",
    **dict.fromkeys(("free_energy", "free_energy_curve", "ladder",
                     "observables", "rlct", "susceptibility", "thermodynamics", "ti_free_energy",
                     "waic_from_loglik", "wbic"), "thermo"),
}
_SUBMODULES = ("cli", "exact", "io", "models", "plotting", "results", "samplers", "sweeps", "target",
               "thermo")

__all__ = [
    "AnnealingResult",
    "AnnealingStalledError",
    "BDMCResult",
    "RunOptions",
    "RunState",
    "ais",
    "bdmc",
    "population_annealing",
    "DataError",
    "Estimate",
    "InvalidArgumentError",
    "LikelihoodError",
    "SLTThermoError",
    "Samples",
    "Target",
    "TooFewHealthyChainsError",
    "errors",
    "exact",
    "free_energy",
    "free_energy_curve",
    "free_energy_vs_n",
    "ladder",
    "gamma_sensitivity",
    "llc",
    "llc_from_samples",
    "max_curvature",
    "load",
    "observables",
    "plotting",
    "rlct",
    "sample_hmc",
    "sample_mala",
    "sample_nuts",
    "sample_sgld",
    "sgld_step_size",
    "susceptibility",
    "thermodynamics",
    "ti_free_energy",
    "waic_from_loglik",
    "wbic",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


class _Package(types.ModuleType):
    """Keeps ``st.llc`` the function: importing the submodule ``slt_thermo.llc`` sets the package
    attribute of that name to the module (an eager ``from .llc import llc`` used to rebind it)."""

    def __setattr__(self, name, value):
        if name in _LAZY and isinstance(value, types.ModuleType) and hasattr(value, name):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
