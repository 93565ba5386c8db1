"""The model zoo (installed as ``slt_thermo.models``): models with known learning coefficients.

Each model has ``log_prior``, ``log_likelihood`` (one value per example), ``init(key)``,
``simulate(key, n)``, ``true_params``, the population potential ``kl(params)`` and, from
:mod:`slt_thermo.exact`, its ``rlct`` (a Fraction) and ``multiplicity``.
"""

from .base import GaussianRegression, Model
from .linear import DeepLinear, LinearRegression, ReducedRank, deep_linear, linear_regression, reduced_rank
from .mixture import GaussianMixture, gaussian_mixture
from .monomial import Monomial, monomial
from .tanh import TanhNet, tanh_net

__all__ = [
    "DeepLinear", "GaussianMixture", "GaussianRegression", "LinearRegression", "Model",
    "Monomial", "ReducedRank", "TanhNet", "deep_linear", "gaussian_mixture", "linear_regression",
    "monomial", "reduced_rank", "tanh_net",
]
