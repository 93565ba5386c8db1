"""Normal-crossing regression: f(x, w) = x · Π_j w_j^{k_j} on the box [−1, 1]^d."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions import constraints

from slt_thermo import exact
from slt_thermo.errors import InvalidArgumentError

from .base import GaussianRegression, check_positive


class Monomial(GaussianRegression):
    """y = x · Π_j w_j^{k_j} + N(0, σ²), x ~ N(0, 1), true w = 0.

    Prior φ(w) ∝ Π_j |w_j|^{h_j} on [−1, 1]^d (normalized; flat when h = 0). With the default
    σ² = 1/2 the population potential is exactly K(w) = Π_j w_j^{2k_j}, the fixture of
    REFERENCE §1.b and §2.2(a)/(b): λ = min_j (h_j + 1)/(2k_j).
    """

    def __init__(self, k, h=None, sigma=1 / math.sqrt(2)):
        k = (k,) if np.isscalar(k) else tuple(k)
        if not k or any(int(x) != x or x < 0 for x in k) or not any(k):
            raise InvalidArgumentError(f"`k` must be non-negative integers, not all zero; got {k!r}")
        h = (0,) * len(k) if h is None else ((h,) if np.isscalar(h) else tuple(h))
        if len(h) != len(k) or any(x < 0 for x in h):
            raise InvalidArgumentError(f"`h` must be {len(k)} non-negative numbers, got {h!r}")
        self.k = tuple(int(x) for x in k)
        self.h = tuple(h)
        self.sigma = check_positive(sigma, "sigma")
        d = len(k)
        self.name = f"monomial(k={self.k}, h={self.h})"
        self.support = {"w": constraints.interval(-1.0, 1.0)}
        self.true_params = {"w": jnp.zeros(d)}
        self._k = jnp.asarray(self.k, dtype=float)
        self._h = jnp.asarray(self.h, dtype=float)
        self._log_norm = float(np.sum(np.log((np.asarray(self.h) + 1) / 2)))

    def exact_rlct(self):
        return exact.rlct_monomial(self.k, self.h)

    def log_prior(self, params):
        w = params["w"]
        inside = jnp.all(jnp.abs(w) <= 1)
        # h_j·log|w_j| with 0·log 0 = 0 for flat coordinates; the inner where keeps the
        # gradient finite at w_j = 0 for them (no inf·0 in the backward pass)
        safe = jnp.where(self._h > 0, jnp.abs(w), 1.0)
        shape = jnp.sum(jnp.where(self._h > 0, self._h * jnp.log(safe), 0.0))
        return jnp.where(inside, self._log_norm + shape, -jnp.inf)

    def sample_prior(self, key):
        """An exact prior draw: |w_j| = U^{1/(h_j+1)} (the inverse CDF of (h+1)|w|^h on [0, 1]),
        with a random sign."""
        k_u, k_s = jax.random.split(key)
        d = len(self.k)
        u = jax.random.uniform(k_u, (d,), minval=jnp.finfo(jnp.float32).tiny)
        sign = jnp.where(jax.random.bernoulli(k_s, 0.5, (d,)), 1.0, -1.0)
        return {"w": sign * u ** (1.0 / (self._h + 1.0))}

    def init(self, key):
        return {"w": jax.random.uniform(key, (len(self.k),), minval=-0.9, maxval=0.9)}

    def predict(self, params, x):
        return x * jnp.prod(params["w"] ** self._k)

    def sample_x(self, key, n):
        return jax.random.normal(key, (n,))

    def kl(self, params):
        """K(w) = E[x²] (Π w^k)² / (2σ²)."""
        return jnp.prod(params["w"] ** (2 * self._k)) / (2 * self.sigma**2)


def monomial(k, h=None, sigma=1 / math.sqrt(2)) -> Monomial:
    """Normal-crossing regression f(x,w) = x·Π w_j^{k_j} with prior ∝ Π|w_j|^{h_j} on [−1,1]^d."""
    return Monomial(k, h, sigma)
