"""Samplers: one module per algorithm, all driven by :mod:`slt_thermo.samplers.run`."""

from .nuts import sample_hmc, sample_nuts
from .run import Kernel

__all__ = ["Kernel", "sample_hmc", "sample_nuts"]
