"""SGD against the samplers: optax trajectories as Samples (:mod:`.trajectory`) and the
thermometers that read an effective inverse temperature off them (:mod:`.temperature`)."""

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
from .trajectory import sgd_trajectory, stationary

__all__ = ["Thermometer", "checkpoint", "llc_along", "covariance_matching", "energy_matching", "equipartition", "gradient_noise", "mandt",
           "mean_energy", "sgd_trajectory", "stationary", "thermometers"]
