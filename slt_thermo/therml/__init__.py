"""TherML (Alemi & Fischer, "TherML: Thermodynamics of Machine Learning", 2018) on the samplers.

The σS posterior p*(θ) ∝ q(θ) exp(−(ρR + δD + γC)/σ) is a tempered posterior with β = 1/σ:
:func:`posterior` builds it as a :class:`~slt_thermo.Target` (multipliers traced, R, D, C
recorded per draw), so every sampler covers a σ-ladder in one run, and :mod:`.laws` reads its
thermodynamics off the draws with error bars.

- :mod:`.toy`: Appendix B's toy, exactly (:func:`toy`, :class:`Toy`);
- :mod:`.model`: Appendix B's encoder/decoder/classifier with R, D, C exact by enumeration (:class:`Model`);
- :mod:`.posterior`: the σS posterior (:func:`posterior`, :func:`betas`);
- :mod:`.optimize`: the σ = 0 points of the paper's objectives by Adam, vmapped (:func:`optimize`);
- :mod:`.figures`: the paper's panels for one point (:func:`panels`, :func:`channels`);
- :mod:`.laws`: :func:`table` (R, D, C, S, J, K_D per σ), :func:`response` (fluctuation–response
  derivatives), :func:`first_law`, :func:`second_law`;
- :mod:`.iso`: Gao & Chaudhari's equilibrium surface F(λ, γ) and iso-classification process at σ = 0
  (:func:`equilibrium_surface`, :func:`surface_checks`, :func:`iso_classification`);
- :mod:`.iso_sampled`: the process at σ > 0 on the σS posterior, derivatives by fluctuation–response
  (:func:`iso_classification_sampled`);
- :mod:`.transfer`: iso-classification transfer between two tasks (:func:`iso_transfer`,
  :func:`tasks`, :func:`interpolate`), beside fine-tuning and training from scratch.
"""

from .figures import channels, panels, posterior_channels
from .iso import IsoProcess, equilibrium_surface, iso_classification, surface_checks
from .iso_sampled import iso_classification_sampled
from .laws import first_law, response, second_law, table
from .model import Model
from .optimize import OBJECTIVES, Optimized, optimize
from .posterior import betas, multipliers, posterior
from .toy import Toy, toy
from .transfer import Transfer, interpolate, iso_transfer, tasks

__all__ = ["OBJECTIVES", "IsoProcess", "Model", "Optimized", "Toy", "Transfer", "betas", "channels",
           "equilibrium_surface", "first_law", "interpolate", "iso_classification", "iso_classification_sampled",
           "iso_transfer", "multipliers", "optimize", "panels", "posterior", "posterior_channels", "response",
           "second_law", "surface_checks", "table", "tasks", "toy"]
