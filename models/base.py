"""The Model protocol and the Gaussian-noise regression base most zoo models share."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from slt_thermo.errors import InvalidArgumentError


def check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidArgumentError(f"`n` must be an integer >= 1, got {n!r}")
    return n


def check_size(value, name, minimum=1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"`{name}` must be an integer >= {minimum}, got {value!r}")
    return value


def check_positive(value, name) -> float:
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise InvalidArgumentError(f"`{name}` must be a positive number, got {value!r}")
    return value


class Model:
    """A statistical model p(y|x, w) with prior φ(w), the object a Target is built from.

    Subclasses provide ``log_prior(params)``, ``log_likelihood(params, data)`` (one value per
    example), ``init(key)`` and ``simulate(key, n)``; where known, ``true_params``, ``kl(params)``
    (the population potential K(w) = KL(q ‖ p(·|w)), used by ``Target.population``) and the
    exact learning coefficient ``rlct`` (a Fraction) with its ``multiplicity``, both computed by
    :mod:`slt_thermo.exact`. ``support`` is a pytree of numpyro constraints (None: unconstrained).

    Optional seams a Target picks up when present:

    - ``sample_prior(key) -> params``: an exact draw from φ (population annealing, AIS and BDMC
      start from it; ``Target.sample_prior(key, shape)``);
    - ``observables(params, data) -> dict[str, scalar]``: quantities every sampler records per
      draw, by name (``data`` is None for population targets);
    - ``hyper``: a pytree of hyperparameters (multipliers); the model's likelihood is then
      ``log_likelihood(params, data, hyper)`` (and ``kl(params, hyper)``), hyper being traced, so
      ``target.with_hyper(...)`` over a grid reuses one compiled sampler.
    """

    name = "model"
    support = None
    true_params = None

    def exact_rlct(self):
        """The exact (λ, m) as an ``exact.RLCT``, or None when theory does not give it."""
        return None

    @property
    def rlct(self):
        """The true learning coefficient λ (a ``fractions.Fraction``), or None if unknown."""
        r = self.exact_rlct()
        return None if r is None else r.lam

    @property
    def multiplicity(self):
        """The true multiplicity m, or None if unknown."""
        r = self.exact_rlct()
        return None if r is None else r.m

    def __repr__(self):
        extra = f", rlct={self.rlct}, m={self.multiplicity}" if self.exact_rlct() else ""
        return f"{self.name}{extra}"


class GaussianRegression(Model):
    """y = f(x, w) + N(0, σ² I): the log-likelihood includes the −½ log 2πσ² normalizers."""

    sigma: float = 1.0

    def predict(self, params, x):
        raise NotImplementedError

    def sample_x(self, key, n):
        raise NotImplementedError

    def log_likelihood(self, params, data):
        resid = data["y"] - self.predict(params, data["x"])
        s2 = self.sigma**2
        ll = -0.5 * resid**2 / s2 - 0.5 * jnp.log(2 * jnp.pi * s2)
        return ll.reshape(ll.shape[0], -1).sum(axis=1)

    def simulate(self, key, n, params=None):
        """Draw n examples from the model at ``params`` (default: the true parameters)."""
        check_n(n)
        params = self.true_params if params is None else params
        kx, ky = jax.random.split(key)
        x = self.sample_x(kx, n)
        mean = self.predict(params, x)
        y = mean + self.sigma * jax.random.normal(ky, mean.shape)
        return {"x": x, "y": y}
