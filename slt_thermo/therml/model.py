"""The 154-parameter encoder/decoder/classifier of TherML's Appendix B, with its functionals
R, D, C exact by enumeration over the 30 latent values.

With x_j = j/29 and z_i = i/29 (i, j = 0..29):

- encoder  e(z_i | x_j) ∝ exp(−(w^e_i x_j − b^e_i)²)   (softmax over i; 60 parameters)
- decoder  q(x_j | z_i) ∝ exp(−(w^d_i x_j − b^d_i)²)   (softmax over j; 60 parameters)
- classifier q(y | z_i) ∝ exp(−(w^c_y z_i − b^c_y)²)   (softmax over y ∈ {0, 1}; 4 parameters)
- marginal q(z_i) = softmax(π)_i                          (30 parameters)

Per example (x_n, y_n), summing over the latent exactly:

    r_n = Σ_i e(z_i|x_n) log(e(z_i|x_n)/q(z_i))     (rate)
    d_n = −Σ_i e(z_i|x_n) log q(x_n|z_i)             (distortion)
    c_n = −Σ_i e(z_i|x_n) log q(y_n|z_i)             (classification error)

R, D, C are their (weighted) sums over the dataset. The prior q(θ) on the parameters is an
isotropic normal N(0, prior_scale²).

**Encoder noise** (``Model(encoder_noise=True)``, 184 parameters): Achille & Soatto's information
dropout multiplies the encoder's activations by log-normal noise whose scale depends on the input,
ε ~ logN(0, α(x)²). Here the activation of latent i at input x_j is w^e_i x_j, and 30 more
parameters α_j (``enc_alpha``, one per input value) set the noise: with ξ_i ~ N(0, 1) independent
per latent,

    e(z_i | x_j, ξ) ∝ exp(−(w^e_i x_j · exp(α_j ξ_i) − b^e_i)²),     e(z|x) = E_ξ e(z|x, ξ).

The expectation is a Monte-Carlo average over S fixed draws ξ^(1..S) (``noise_draws``, drawn once
from ``noise_seed``: common random numbers, so the functionals stay deterministic, smooth functions
of θ that NUTS can sample). D and C are linear in e, so they are exactly the Monte-Carlo averages
over the noise of the noiseless formulas; R is the rate of the noise-averaged encoder,
Σ e(z|x) log(e(z|x)/q(z)) (the average of the per-draw KLs would only bound it from above). At
α = 0 the noisy model is the noiseless one. (At x_0 = 0 the activation is 0, so α_0 acts on nothing
and only its prior shapes it.)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .._utils import positive_int
from ..errors import InvalidArgumentError
from .toy import NUM_BINS

K = NUM_BINS  # latent values = input values = 30
PARAM_SHAPES = {"enc_w": (K,), "enc_b": (K,), "dec_w": (K,), "dec_b": (K,), "cls_w": (2,), "cls_b": (2,),
                "marginal": (K,)}
NOISE_SHAPES = {**PARAM_SHAPES, "enc_alpha": (K,)}  # with information dropout: α per input value
FUNCTIONALS = ("R", "D", "C")


def _log_encoder(params, noise):
    """log e(z|x) (x, z), averaged over the noise draws when the parameters carry ``enc_alpha``."""
    grid = jnp.arange(K) / (K - 1)
    act = params["enc_w"][None, :] * grid[:, None]  # (x, z): the activation w^e_z x
    if "enc_alpha" not in params:
        return jax.nn.log_softmax(-(act - params["enc_b"][None, :]) ** 2, axis=1)
    if noise is None:
        raise InvalidArgumentError("parameters with `enc_alpha` (encoder noise) need the model's `noise` draws")
    eps = jnp.exp(params["enc_alpha"][None, :, None] * noise[:, None, :])  # (draw, x, z)
    log_e = jax.nn.log_softmax(-(act[None] * eps - params["enc_b"][None, None, :]) ** 2, axis=2)
    return jax.scipy.special.logsumexp(log_e, axis=0) - math.log(noise.shape[0])


def tables(params, noise=None) -> dict:
    """The model's log-probability tables: ``log_e`` (x, z) = log e(z|x), ``log_dec`` (z, x) =
    log q(x|z), ``log_cls`` (z, y) = log q(y|z), ``log_qz`` (z,) = log q(z). ``noise``: the
    (S, 30) standard-normal draws ξ of a model with encoder noise (``Model.noise``)."""
    grid = jnp.arange(K) / (K - 1)
    dec = -(params["dec_w"][:, None] * grid[None, :] - params["dec_b"][:, None]) ** 2  # (z, x)
    cls = -(params["cls_w"][None, :] * grid[:, None] - params["cls_b"][None, :]) ** 2  # (z, y)
    return {"log_e": _log_encoder(params, noise), "log_dec": jax.nn.log_softmax(dec, axis=1),
            "log_cls": jax.nn.log_softmax(cls, axis=1), "log_qz": jax.nn.log_softmax(params["marginal"])}


def per_example(params, x, y, noise=None) -> dict:
    """r_n, d_n, c_n (each shape (n,)) at integer inputs ``x`` and labels ``y``."""
    t = tables(params, noise)
    log_e = t["log_e"][x]  # (n, z)
    e = jnp.exp(log_e)
    return {"R": jnp.sum(e * (log_e - t["log_qz"][None, :]), axis=1),
            "D": -jnp.sum(e * t["log_dec"][:, x].T, axis=1),
            "C": -jnp.sum(e * t["log_cls"][:, y].T, axis=1)}


class Model:
    """Appendix B's model as a pytree of parameters with a normal prior.

    ``free``: None for all parameters, or the flat indices (into
    ``jax.flatten_util.ravel_pytree`` order of the full parameters) that stay free while the
    others are frozen at ``base`` — the same code in as few dimensions as quadrature needs. Its
    parameters are then ``{"theta": (len(free),)}``.

    ``encoder_noise=True`` adds the 30 information-dropout parameters ``enc_alpha`` (184 in all;
    module docstring), averaged over ``noise_draws`` fixed noise draws from ``noise_seed``
    (``self.noise``, shape (noise_draws, 30)).
    """

    def __init__(self, *, prior_scale: float = 10.0, free=None, base=None, name: str | None = None,
                 encoder_noise: bool = False, noise_draws: int = 16, noise_seed: int = 0):
        if not (isinstance(prior_scale, (int, float)) and math.isfinite(prior_scale) and prior_scale > 0):
            raise InvalidArgumentError(f"`prior_scale` must be a positive number, got {prior_scale!r}")
        self.prior_scale = float(prior_scale)
        self.shapes = NOISE_SHAPES if encoder_noise else PARAM_SHAPES
        self.noise = None
        if encoder_noise:
            noise_draws = positive_int(noise_draws, "noise_draws")
            noise_seed = positive_int(noise_seed, "noise_seed", 0)
            self.noise = jax.random.normal(jax.random.PRNGKey(noise_seed), (noise_draws, K))
        template = {k: jnp.zeros(s, jnp.float32) for k, s in self.shapes.items()}
        _, self._unravel = ravel_pytree(template)
        self.free = None
        if free is not None:
            free = np.asarray(free, dtype=int).ravel()
            if base is None:
                raise InvalidArgumentError("`free` needs `base`, the full parameters the others are frozen at")
            flat, _ = ravel_pytree({k: jnp.asarray(base[k], jnp.float32).reshape(self.shapes[k])
                                    for k in self.shapes})
            if free.size == 0 or free.min() < 0 or free.max() >= flat.size or len(set(free)) != free.size:
                raise InvalidArgumentError(f"`free` must be distinct indices in [0, {flat.size}), got {free}")
            self.free, self._base_flat = free, flat
        self.num_params = sum(math.prod(s) for s in self.shapes.values()) if free is None else int(free.size)
        base_name = "therml_appendix_b" + ("_noise" if encoder_noise else "")
        self.name = name or (base_name if free is None else f"{base_name}[{self.num_params} free]")

    def full(self, params):
        """The full-parameter pytree of ``params`` (identity when nothing is frozen)."""
        if self.free is None:
            return params
        return self._unravel(self._base_flat.at[self.free].set(params["theta"]))

    def functionals(self, params, data) -> dict:
        """Per-example weighted r_n, d_n, c_n on ``data`` ({"x", "y", "weight"})."""
        out = per_example(self.full(params), data["x"], data["y"], self.noise)
        return {k: data["weight"] * v for k, v in out.items()}

    def accuracy(self, params, data):
        """The weighted fraction of ``data`` that the predictive classifier p(y|x) = Σ_z e(z|x)q(y|z)
        labels right (argmax over y)."""
        t = tables(self.full(params), self.noise)
        pred = jnp.argmax(jnp.exp(t["log_e"]) @ jnp.exp(t["log_cls"]), axis=1)  # (x,)
        right = (pred[data["x"]] == data["y"]).astype(jnp.float32)
        return jnp.sum(data["weight"] * right) / jnp.sum(data["weight"])

    def log_prior(self, params):
        leaves = jax.tree_util.tree_leaves(params)
        sq = sum(jnp.sum(x**2) for x in leaves)
        s2 = self.prior_scale**2
        return -0.5 * sq / s2 - 0.5 * self.num_params * math.log(2 * math.pi * s2)

    def sample_prior(self, key):
        return self.init(key, scale=self.prior_scale)

    def init(self, key, scale: float = 1.0):
        """A draw from N(0, scale²) (default 1: a start well inside the prior)."""
        shapes = self.shapes if self.free is None else {"theta": (self.num_params,)}
        keys = jax.random.split(key, len(shapes))
        return {k: scale * jax.random.normal(kk, s) for kk, (k, s) in zip(keys, shapes.items())}
