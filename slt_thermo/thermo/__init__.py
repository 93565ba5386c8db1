"""Thermodynamics read off tempered runs: ladders, TI free energies, MBAR, λ estimators, observables.

Every estimator is a pure function of :class:`~slt_thermo.Samples` (mostly of the per-draw
energy ``nll``); none of them samples. Sweeps that sample over a grid of n
(:func:`slt_thermo.sweeps.free_energy_vs_n`) live in :mod:`slt_thermo.sweeps`.
"""

from . import ladder
from .estimators import fit_free_energy, rlct, wbic
from .integration import free_energy, free_energy_curve, ti_curve, ti_free_energy
from .mbar import (
    BetaAtEnergy,
    LadderMBAR,
    MBARResult,
    beta_at_energy,
    mbar,
    mbar_curve,
    mbar_ladder,
)
from .observables import observables, susceptibility, thermodynamics, waic_from_loglik
from .stats import rung_stats

__all__ = [
    "BetaAtEnergy", "LadderMBAR", "MBARResult", "beta_at_energy",
    "fit_free_energy", "free_energy", "free_energy_curve", "ladder", "mbar", "mbar_curve", "mbar_ladder",
    "observables", "rlct", "rung_stats", "susceptibility", "thermodynamics", "ti_curve",
    "ti_free_energy", "waic_from_loglik", "wbic",
]


def __getattr__(name):
    # deprecated alias: free_energy_vs_n samples, so it moved to slt_thermo.sweeps
    if name == "free_energy_vs_n":
        import warnings

        from ..sweeps import free_energy_vs_n

        warnings.warn("slt_thermo.thermo.free_energy_vs_n moved to slt_thermo.sweeps (st.free_energy_vs_n)",
                      DeprecationWarning, stacklevel=2)
        return free_energy_vs_n
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
