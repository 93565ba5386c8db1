"""Thermodynamics read off tempered runs: ladders, TI free energies, λ estimators, observables.

Every estimator is a pure function of :class:`~slt_thermo.Samples` (mostly of the per-draw
energy ``nll``); none of them samples, except :func:`free_energy_vs_n`, which drives a sampler
over nested datasets.
"""

from . import ladder
from .estimators import fit_free_energy, free_energy_vs_n, rlct, wbic
from .integration import free_energy, free_energy_curve, ti_curve, ti_free_energy
from .observables import observables, susceptibility, thermodynamics, waic_from_loglik
from .stats import rung_stats

__all__ = [
    "fit_free_energy", "free_energy", "free_energy_curve", "free_energy_vs_n", "ladder",
    "observables", "rlct", "rung_stats", "susceptibility", "thermodynamics", "ti_curve",
    "ti_free_energy", "waic_from_loglik", "wbic",
]
