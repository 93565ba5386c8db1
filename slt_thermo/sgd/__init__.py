"""SGD against the samplers: optax trajectories as Samples (:mod:`.trajectory`), the
thermometers that read an effective inverse temperature off them (:mod:`.temperature`), λ̂ along
training (:mod:`.along`) and training read as a cooling protocol (:mod:`.protocol`). Distances
between SGD iterates and sampler draws: :mod:`slt_thermo.metrics`."""

from .temperature import (
    Thermometer,
    covariance_matching,
    energy_matching,
    equipartition,
    gradient_noise,
    mandt,
    mean_energy,
    thermometers,
)
from .along import checkpoint, llc_along
from .compare import compare, default_ladder
from .protocol import annealing_work, cooling_curve
from .trajectory import sgd_trajectory, stationary

__all__ = ["Thermometer", "annealing_work", "checkpoint", "compare", "default_ladder", "cooling_curve", "covariance_matching", "energy_matching",
           "equipartition", "gradient_noise", "llc_along", "mandt", "mean_energy", "sgd_trajectory", "stationary",
           "thermometers"]
