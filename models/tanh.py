"""One-hidden-layer tanh network without biases: f(x, w) = Σ_h a_h tanh(b_h x)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions import constraints

from slt_thermo import exact

from .base import GaussianRegression, check_positive, check_size

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(48)


class TanhNet(GaussianRegression):
    """y = Σ_h a_h tanh(b_h x) + N(0, σ²), x ~ U[0, 1], true function f₀ ≡ 0 (a = b = 0).

    Prior uniform on the box [−box, box]^{2H}. λ = (H + i² + i)/(4i + 2), i = ⌊√H⌋
    (REFERENCE §1.e). K(w) = E_x[f(x,w)²]/(2σ²) by 48-point Gauss–Legendre quadrature on [0, 1]
    (exact to float precision for an analytic integrand on a bounded box).
    """

    def __init__(self, H, sigma=1.0, box=1.0):
        self.H = check_size(H, "H")
        self.sigma = check_positive(sigma, "sigma")
        self.box = check_positive(box, "box")
        self.support = {"a": constraints.interval(-self.box, self.box),
                        "b": constraints.interval(-self.box, self.box)}
        self.true_params = {"a": jnp.zeros(self.H), "b": jnp.zeros(self.H)}
        self.name = f"tanh_net(H={self.H})"
        self._x = jnp.asarray((_NODES + 1) / 2)
        self._wq = jnp.asarray(_WEIGHTS / 2)

    def exact_rlct(self):
        return exact.rlct_tanh(self.H)

    def log_prior(self, params):
        inside = jnp.all(jnp.abs(params["a"]) <= self.box) & jnp.all(jnp.abs(params["b"]) <= self.box)
        return jnp.where(inside, -2 * self.H * jnp.log(2 * self.box), -jnp.inf)

    def sample_prior(self, key):
        """An exact draw from the uniform prior on the box [−box, box]^{2H}."""
        ka, kb = jax.random.split(key)
        u = lambda k: jax.random.uniform(k, (self.H,), minval=-self.box, maxval=self.box)
        return {"a": u(ka), "b": u(kb)}

    def init(self, key):
        ka, kb = jax.random.split(key)
        u = lambda k: jax.random.uniform(k, (self.H,), minval=-0.9 * self.box, maxval=0.9 * self.box)
        return {"a": u(ka), "b": u(kb)}

    def predict(self, params, x):
        return jnp.tanh(x[:, None] * params["b"]) @ params["a"]

    def sample_x(self, key, n):
        return jax.random.uniform(key, (n,))

    def kl(self, params):
        f = self.predict(params, self._x)
        return jnp.sum(self._wq * f**2) / (2 * self.sigma**2)


def tanh_net(H, sigma=1.0, box=1.0) -> TanhNet:
    """One-input, one-output tanh network with H hidden units and no biases (true f ≡ 0)."""
    return TanhNet(H, sigma, box)
