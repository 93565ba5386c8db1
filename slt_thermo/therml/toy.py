"""The toy problem of TherML's Appendix B (Alemi & Fischer, arXiv:1807.04162), exactly.

Convention (fixed here; the paper describes it in words): a label z ∈ {0, 1} with P(z = 1) = 0.7;
a hidden h | z ~ N(μ_z, s²) with μ_0 = −1, μ_1 = +1; the input x ∈ {0, …, 29} is the index of h
among 30 equal bins of [−4, 4], the tails folded into the two end bins; the target y = z. The
noise s is solved (scipy's brentq) so that I(x; z) = 0.5 nats. :attr:`Toy.p_xy` is the exact
joint p(x, y) (30 × 2) for the infinite-data variant; :attr:`Toy.data` a finite sample of n
pairs.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._target_inputs import check_key
from .._utils import positive_int
from ..errors import InvalidArgumentError

NUM_BINS = 30
LOW, HIGH = -4.0, 4.0
P_Z1 = 0.7
MU = (-1.0, 1.0)
TARGET_MI = 0.5  # nats
# the transfer tasks (therml.transfer): the toy moved two units left, and its mirror image; both label
# the middle of the input range 1, so their mixtures never disagree about a label
TRANSFER_MU = {"source": (-3.0, -1.0), "target": (3.0, 1.0)}


class Toy(NamedTuple):
    """The toy's exact distribution and one finite dataset drawn from it.

    Attributes:
        p_xy: (30, 2) float64, the exact joint p(x, y), summing to 1.
        s: the noise scale that makes I(x; z) = 0.5 nats.
        data: ``{"x": (n,) int32, "y": (n,) int32, "weight": (n,) float32}``, n i.i.d. pairs
            (weight 1 each), the layout :func:`~slt_thermo.therml.posterior` takes.
        n: the dataset size.
    """

    p_xy: np.ndarray
    s: float
    data: dict
    n: int

    def mutual_information(self) -> float:
        """I(x; y) = I(x; z) of the exact joint, in nats."""
        return mutual_information(self.p_xy)

    def infinite_data(self, n: int | None = None) -> dict:
        """The infinite-data variant as a weighted dataset: all 60 cells (x, y), each weighted by
        n·p(x, y), so that sums over it are n times expectations under p (default n: the toy's)."""
        n = self.n if n is None else positive_int(n, "n")
        x, y = np.meshgrid(np.arange(NUM_BINS), np.arange(2), indexing="ij")
        return {"x": x.ravel().astype(np.int32), "y": y.ravel().astype(np.int32),
                "weight": (n * self.p_xy.ravel()).astype(np.float32)}


def bin_probabilities(s: float, mu=MU) -> np.ndarray:
    """p(x | z) as a (2, 30) array: the N(μ_z, s²) mass of each bin, tails folded in."""
    from scipy.stats import norm

    edges = np.linspace(LOW, HIGH, NUM_BINS + 1)
    edges[0], edges[-1] = -np.inf, np.inf
    cdf = norm.cdf((edges[None, :] - np.asarray(mu, np.float64)[:, None]) / s)
    return np.diff(cdf, axis=1)


def joint(s: float, mu=MU) -> np.ndarray:
    """The exact p(x, y) (30 × 2) at noise scale ``s`` (class means ``mu``)."""
    p_z = np.array([1 - P_Z1, P_Z1])
    return (bin_probabilities(s, mu) * p_z[:, None]).T


def mutual_information(p_xy) -> float:
    """I(x; y) in nats of a joint table (zero cells contribute nothing)."""
    p = np.asarray(p_xy, dtype=np.float64)
    px, py = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / (px @ py)[mask])))


def solve_noise(target_mi: float = TARGET_MI) -> float:
    """The s with I(x; z) = ``target_mi`` nats (I falls from H(z) = 0.611 at s → 0 to 0)."""
    from scipy.optimize import brentq

    h_z = -(P_Z1 * math.log(P_Z1) + (1 - P_Z1) * math.log(1 - P_Z1))
    if not 0 < target_mi < h_z:
        raise InvalidArgumentError(f"`target_mi` must lie in (0, H(z) = {h_z:.4f}) nats, got {target_mi!r}")
    return float(brentq(lambda s: mutual_information(joint(s)) - target_mi, 1e-3, 50.0,
                        xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500))


def toy(n: int = 50, *, key, mu=None) -> Toy:
    """Appendix B's toy with a dataset of ``n`` i.i.d. pairs drawn with the JAX key ``key``.

    ``mu``: other class means (μ_0, μ_1) on the same 30 bins with the same noise s (solved for
    Appendix B's means, so I(x; y) is 0.5 nats only while both classes stay well inside the range,
    as for :data:`TRANSFER_MU`'s, to 4e-7): a second task on the same input space, e.g. :data:`TRANSFER_MU`'s tasks for the transfer experiment of :mod:`.transfer`."""
    import jax
    import jax.numpy as jnp

    n = positive_int(n, "n")
    check_key(key)
    if mu is not None:
        mu = tuple(float(m) for m in np.ravel(mu))
        if len(mu) != 2 or not all(math.isfinite(m) for m in mu):
            raise InvalidArgumentError(f"`mu` must be two finite class means (μ_0, μ_1), got {mu!r}")
    s = solve_noise()
    p = joint(s, MU if mu is None else mu)
    cells = jax.random.categorical(key, jnp.log(jnp.asarray(p.ravel(), jnp.float32)), shape=(n,))
    cells = np.asarray(cells)
    data = {"x": (cells // 2).astype(np.int32), "y": (cells % 2).astype(np.int32),
            "weight": np.ones(n, np.float32)}
    return Toy(p_xy=p, s=s, data=data, n=n)
