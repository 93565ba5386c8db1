"""A two-component Gaussian mixture with one free weight and one free location."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import norm
from numpyro.distributions import constraints

from slt_thermo import exact

from .base import Model, check_n, check_positive

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(64)


class GaussianMixture(Model):
    """p(x | a, b) = (1 − a) N(0, 1) + a N(b, 1), a ∈ [0, 1], b ∈ [−C, C], uniform prior.

    The truth is q = N(0, 1): the true set is {a = 0} ∪ {b = 0}. At the origin λ = 1/2, m = 2
    (REFERENCE §1.f, case 1). K(a, b) = −E_q log(1 − a + a e^{bx − b²/2}) by 64-point
    Gauss–Hermite quadrature.
    """

    def __init__(self, C=2.0):
        self.C = check_positive(C, "C")
        self.support = {"a": constraints.unit_interval, "b": constraints.interval(-self.C, self.C)}
        self.true_params = {"a": jnp.asarray(0.0), "b": jnp.asarray(0.0)}
        self.name = f"gaussian_mixture(C={self.C:g})"
        self._x = jnp.asarray(_NODES)
        self._wq = jnp.asarray(_WEIGHTS / np.sqrt(2 * np.pi))

    def exact_rlct(self):
        return exact.rlct_gaussian_mixture(case=1)

    def log_prior(self, params):
        a, b = params["a"], params["b"]
        inside = (a >= 0) & (a <= 1) & (jnp.abs(b) <= self.C)
        return jnp.where(inside, -jnp.log(2 * self.C), -jnp.inf)

    def sample_prior(self, key):
        """An exact draw from the uniform prior on [0, 1] × [−C, C]."""
        ka, kb = jax.random.split(key)
        return {"a": jax.random.uniform(ka), "b": jax.random.uniform(kb, minval=-self.C, maxval=self.C)}

    def init(self, key):
        ka, kb = jax.random.split(key)
        return {"a": jax.random.uniform(ka, minval=0.05, maxval=0.95),
                "b": jax.random.uniform(kb, minval=-0.9 * self.C, maxval=0.9 * self.C)}

    def log_likelihood(self, params, data):
        a, b = params["a"], params["b"]
        x = data["x"]
        return jnp.logaddexp(jnp.log1p(-a) + norm.logpdf(x), jnp.log(a) + norm.logpdf(x, b))

    def simulate(self, key, n):
        """n draws from the truth q = N(0, 1)."""
        check_n(n)
        return {"x": jax.random.normal(key, (n,))}

    def kl(self, params):
        a, b = params["a"], params["b"]
        ratio = 1 - a + a * jnp.exp(b * self._x - b**2 / 2)
        return -jnp.sum(self._wq * jnp.log(ratio))


def gaussian_mixture(C=2.0) -> GaussianMixture:
    """(1 − a)N(0,1) + aN(b,1) with uniform priors on a ∈ [0,1], b ∈ [−C, C]; truth N(0,1)."""
    return GaussianMixture(C)
