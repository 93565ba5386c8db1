"""Exact truths: known RLCTs (λ, m) and exactly solvable thermodynamics (REFERENCE §1, §2.2).

Pure numpy/scipy/sympy/mpmath code (no JAX), meant as ground truth for tests and benchmarks.

- :mod:`.rlct` — the :class:`RLCT` type, regular models, monomials, the sum and product rules.
- :mod:`.newton` — the Newton-polyhedron method with an exact LP and a non-degeneracy check.
- :mod:`.networks` — reduced-rank regression, deep linear networks, tanh networks, mixtures.
- :mod:`.thermo` — exact F, E, Var for the partition-function fixtures of REFERENCE §2.2.
"""

from .networks import rlct_dln, rlct_gaussian_mixture, rlct_rrr, rlct_tanh
from .newton import DegenerateError, rlct_newton
from .rlct import RLCT, rlct_monomial, rlct_product, rlct_regular, rlct_sum
from .thermo import (
    Thermo,
    gaussian_thermo,
    linear_regression_thermo,
    linear_regression_wbic,
    monomial_thermo,
    normal_crossing_thermo,
)

__all__ = [
    "RLCT",
    "DegenerateError",
    "rlct_regular",
    "rlct_monomial",
    "rlct_sum",
    "rlct_product",
    "rlct_newton",
    "rlct_rrr",
    "rlct_dln",
    "rlct_tanh",
    "rlct_gaussian_mixture",
    "Thermo",
    "monomial_thermo",
    "normal_crossing_thermo",
    "gaussian_thermo",
    "linear_regression_thermo",
    "linear_regression_wbic",
]
