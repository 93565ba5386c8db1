"""The local learning coefficient (LLC) by localized SGLD, with the diagnostics that say when to
distrust it (Lau, Furman, Wang, Murfet & Wei, arXiv:2308.12108).

- :mod:`.api`: :func:`llc`, the estimate, one default policy shared with ``slt-thermo llc``;
- :mod:`.diagnostics`: :func:`llc_from_samples`, λ̂ and its checks from a run's draws;
- :mod:`.step_size`: the curvature κ̂ at w*, the ``auto`` rule, the :func:`sgld_step_size` sweep;
- :mod:`.center`: the checks on w* and :func:`nearest_minimum` (the ΔH correction).
"""

from .api import HOT_START_HEAT, llc
from .._utils import num_params
from .center import check_center, nearest_minimum
from .diagnostics import (
    DRIFT_Z,
    EQUILIBRATION_Z,
    GAMMA_SENSITIVITY,
    PREDICTED_BIAS,
    gamma_sensitivity,
    llc_from_samples,
    predicted_bias_too_large,
)
from .step_size import AUTO_ACCEPT, AUTO_MAX_HALVINGS, max_curvature, sgld_step_size

__all__ = [
    "AUTO_ACCEPT", "AUTO_MAX_HALVINGS", "DRIFT_Z", "EQUILIBRATION_Z", "GAMMA_SENSITIVITY",
    "HOT_START_HEAT", "PREDICTED_BIAS", "check_center", "gamma_sensitivity", "llc", "llc_from_samples",
    "max_curvature", "nearest_minimum", "num_params", "predicted_bias_too_large", "sgld_step_size",
]
