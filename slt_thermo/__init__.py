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

from . import errors
from ._lazy import make_lazy
from .errors import (
    ConvergenceWarning,
    DataError,
    InvalidArgumentError,
    LikelihoodError,
    NumericalError,
    NumericalWarning,
    ResultsFileError,
    SLTThermoError,
    SLTThermoWarning,
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
    **dict.fromkeys(("beta_at_energy", "free_energy", "free_energy_curve", "ladder", "mbar", "mbar_curve",
                     "observables", "rlct", "susceptibility", "thermodynamics", "ti_free_energy",
                     "waic_from_loglik", "wbic"), "thermo"),
}
_SUBMODULES = ("cli", "exact", "io", "metrics", "models", "plotting", "results", "samplers", "sgd", "sweeps",
               "target", "therml", "thermo")

__all__ = [
    "AnnealingResult",
    "AnnealingStalledError",
    "BDMCResult",
    "RunOptions",
    "RunState",
    "ais",
    "bdmc",
    "population_annealing",
    "ConvergenceWarning",
    "DataError",
    "Estimate",
    "InvalidArgumentError",
    "LikelihoodError",
    "NumericalError",
    "NumericalWarning",
    "ResultsFileError",
    "SLTThermoError",
    "SLTThermoWarning",
    "Samples",
    "Target",
    "TooFewHealthyChainsError",
    "beta_at_energy",
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
    "mbar",
    "mbar_curve",
    "observables",
    "plotting",
    "rlct",
    "sample_hmc",
    "sample_mala",
    "sample_nuts",
    "sample_sgld",
    "sgld_step_size",
    "susceptibility",
    "therml",
    "thermodynamics",
    "ti_free_energy",
    "waic_from_loglik",
    "wbic",
]


make_lazy(__name__, _LAZY, _SUBMODULES)
