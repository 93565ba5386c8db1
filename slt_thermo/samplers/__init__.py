"""Samplers: one module per algorithm, all driven by :mod:`slt_thermo.samplers.run`."""

from .mala import sample_mala
from .nuts import sample_hmc, sample_nuts
from .population import (
    AnnealingResult,
    AnnealState,
    AnnealingStalledError,
    BDMCResult,
    ais,
    bdmc,
    population_annealing,
    resample,
)
from .run import Kernel, PreparedRun, RunOptions, RunState, advance, finalize, prepare
from .sgld import sample_sgld

__all__ = [
    "AnnealState", "AnnealingResult", "AnnealingStalledError", "BDMCResult", "Kernel", "PreparedRun", "RunOptions",
    "RunState", "advance", "ais", "bdmc", "finalize", "prepare",
    "population_annealing", "resample", "sample_hmc", "sample_mala", "sample_nuts", "sample_sgld",
]
