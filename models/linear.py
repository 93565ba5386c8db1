"""Linear models with Gaussian priors: linear regression, reduced-rank regression, deep linear nets.

All use x ~ N(0, I) so the population potential is K(w) = ‖f_w − f_0‖²_F / (2σ²) in closed form.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from slt_thermo import exact
from slt_thermo.errors import InvalidArgumentError

from .base import GaussianRegression, check_positive, check_size


def _gaussian_log_prior(params, scale):
    leaves = jax.tree_util.tree_leaves(params)
    size = sum(x.size for x in leaves)
    sq = sum(jnp.sum(x**2) for x in leaves)
    return -0.5 * sq / scale**2 - 0.5 * size * jnp.log(2 * jnp.pi * scale**2)


class LinearRegression(GaussianRegression):
    """y = xᵀw + N(0, σ²), x ~ N(0, I_d), prior w ~ N(0, α⁻¹ I_d): conjugate, so the tempered
    evidence is exact at every β (``exact.linear_regression_thermo``). Regular: λ = d/2, m = 1."""

    def __init__(self, d, sigma=1.0, alpha=1.0, w0=None, seed=0):
        self.d = check_size(d, "d")
        self.sigma = check_positive(sigma, "sigma")
        self.alpha = check_positive(alpha, "alpha")
        if w0 is None:
            w0 = jax.random.normal(jax.random.PRNGKey(seed), (self.d,)) / np.sqrt(self.alpha)
        w0 = jnp.asarray(w0, dtype=float)
        if w0.shape != (self.d,):
            raise InvalidArgumentError(f"`w0` must have shape ({self.d},), got {w0.shape}")
        self.true_params = {"w": w0}
        self.name = f"linear_regression(d={self.d})"

    def exact_rlct(self):
        return exact.rlct_regular(self.d)

    def log_prior(self, params):
        return _gaussian_log_prior(params, 1 / np.sqrt(self.alpha))

    def sample_prior(self, key):
        return {"w": jax.random.normal(key, (self.d,)) / np.sqrt(self.alpha)}

    def init(self, key):
        return self.sample_prior(key)

    def predict(self, params, x):
        return x @ params["w"]

    def sample_x(self, key, n):
        return jax.random.normal(key, (n, self.d))

    def kl(self, params):
        return jnp.sum((params["w"] - self.true_params["w"]) ** 2) / (2 * self.sigma**2)

    def exact_thermo(self, data, beta):
        """F(β) = −log Z(β), E^β[nL_n], Var^β[nL_n] for this dataset, in closed form."""
        X = np.asarray(data["x"], dtype=float)
        y = np.asarray(data["y"], dtype=float)
        return exact.linear_regression_thermo(X, y, self.sigma**2, self.alpha, beta)


def linear_regression(d, sigma=1.0, alpha=1.0, w0=None, seed=0) -> LinearRegression:
    """Bayesian linear regression with a conjugate N(0, α⁻¹I) prior (exact evidence)."""
    return LinearRegression(d, sigma, alpha, w0, seed)


class DeepLinear(GaussianRegression):
    """f(x) = W_L ⋯ W_1 x with widths (input, hidden..., output), N(0, s²) priors on every entry.

    The true product has rank r and every hidden unit beyond the first r is dead (zero in- and
    out-weights): the most singular point of the true set, where the local learning coefficient
    equals the global λ of Aoyagi's DLN theorem (``exact.rlct_dln``). At a generic true point
    (dead units with live out-weights, say) the LLC is larger: on reduced_rank(5, 3, 2, 1) at
    n = 1e6, γ = 100, NUTS gives βE[nK] = 5.38 ± 0.08 there against λ = 4.5. With two layers
    this is reduced-rank regression.
    """

    def __init__(self, widths, r, sigma=1.0, prior_scale=1.0, seed=0, name=None):
        widths = tuple(widths)
        if len(widths) < 2 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise InvalidArgumentError(f"`widths` must be >= 2 positive integers, got {widths!r}")
        if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r <= min(widths):
            raise InvalidArgumentError(f"`r` must be an integer in [0, min(widths) = {min(widths)}], got {r!r}")
        self.widths, self.r = widths, r
        self.sigma = check_positive(sigma, "sigma")
        self.prior_scale = check_positive(prior_scale, "prior_scale")
        self.layers = [f"W{i + 1}" for i in range(len(widths) - 1)]
        keys = jax.random.split(jax.random.PRNGKey(seed), len(self.layers))
        true = {}
        last = len(self.layers) - 1
        for i, (name_i, k) in enumerate(zip(self.layers, keys)):
            W = jax.random.normal(k, (widths[i + 1], widths[i]))
            if i < last:  # only the first r units of each hidden layer are alive
                W = W.at[r:, :].set(0.0)
            if i > 0:
                W = W.at[:, r:].set(0.0)
            true[name_i] = W
        self.true_params = true
        self._P0 = self.product(true)
        self.name = name or f"deep_linear(widths={widths}, r={r})"

    def exact_rlct(self):
        return exact.rlct_dln(self.widths, self.r)

    def product(self, params):
        P = params[self.layers[0]]
        for name in self.layers[1:]:
            P = params[name] @ P
        return P

    @property
    def num_params(self):
        return sum(a * b for a, b in zip(self.widths[:-1], self.widths[1:]))

    def log_prior(self, params):
        return _gaussian_log_prior(params, self.prior_scale)

    def sample_prior(self, key):
        """An exact prior draw: every entry N(0, s²)."""
        keys = jax.random.split(key, len(self.layers))
        return {
            name: self.prior_scale * jax.random.normal(k, (self.widths[i + 1], self.widths[i]))
            for i, (name, k) in enumerate(zip(self.layers, keys))
        }

    def init(self, key):
        return self.sample_prior(key)

    def predict(self, params, x):
        return x @ self.product(params).T

    def sample_x(self, key, n):
        return jax.random.normal(key, (n, self.widths[0]))

    def kl(self, params):
        return jnp.sum((self.product(params) - self._P0) ** 2) / (2 * self.sigma**2)


def deep_linear(widths, r, sigma=1.0, prior_scale=1.0, seed=0) -> DeepLinear:
    """Deep linear network W_L⋯W_1 x, widths from input to output, true product of rank r."""
    return DeepLinear(widths, r, sigma, prior_scale, seed)


class ReducedRank(DeepLinear):
    """y = B A x + noise, A: H×M, B: N×H, true BA of rank r (Aoyagi & Watanabe 2005)."""

    def __init__(self, M, N, H, r, sigma=1.0, prior_scale=1.0, seed=0):
        super().__init__((M, H, N), r, sigma, prior_scale, seed,
                         name=f"reduced_rank(M={M}, N={N}, H={H}, r={r})")
        self.M, self.N, self.H = M, N, H

    def exact_rlct(self):
        return exact.rlct_rrr(self.M, self.N, self.H, self.r)


def reduced_rank(M, N, H, r, sigma=1.0, prior_scale=1.0, seed=0) -> ReducedRank:
    """Reduced-rank regression y = BAx + ε with M inputs, N outputs, H hidden, true rank r.

    Parameters are named ``W1`` (= A) and ``W2`` (= B), as in the two-layer deep linear net.
    """
    return ReducedRank(M, N, H, r, sigma, prior_scale, seed)
