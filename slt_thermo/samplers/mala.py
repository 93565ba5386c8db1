"""Metropolis-adjusted Langevin (MALA): exact, full-batch; the yardstick for SGLD.

Proposal u' = u + (ε/2)∇log p(u) + √ε ξ, accepted with the Metropolis–Hastings ratio of the
Langevin proposal densities, so the chain targets p^β exactly at any ε. During warmup ε is tuned
per (β, chain) by dual averaging (Hoffman & Gelman's scheme, numpyro's implementation) towards
``target_accept_prob`` (0.574 is optimal for MALA in high dimension, Roberts & Rosenthal 1998).

The proposal (:func:`scaled_langevin`, in coordinates whitened by a fixed linear map) is also the
population-tuned MALA move of :mod:`.population`. The same acceptance ratio scores SGLD step
sizes: :func:`langevin_acceptance` is the probability that MALA would accept a Langevin move of
size ε from a given point.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .._utils import positive_int, real_number
from ..errors import InvalidArgumentError
from ..results import Samples
from ..target import Target
from .run import Kernel, RunOptions, all_finite, run


class MALAState(NamedTuple):
    position: object  # unconstrained params pytree
    logdensity: jax.Array
    grad: object
    accept_prob: jax.Array
    step_size: jax.Array
    da_state: tuple  # numpyro dual-averaging state
    i: jax.Array


def accept_prob(log_ratio):
    """The Metropolis–Hastings acceptance probability min(1, e^log_ratio); 0 when it is not finite."""
    return jnp.where(jnp.isfinite(log_ratio), jnp.exp(jnp.minimum(log_ratio, 0.0)), 0.0)


def scaled_langevin(key, logp_fn, u, logp, grad, eps, mul=None, mul_t=None):
    """The Langevin proposal in coordinates whitened by a fixed linear map C (u = Cz + const).

    z' = z + (ε/2)∇_z log p + √ε ξ, ∇_z = Cᵀ∇_u, written in u (u' = u + C((ε/2)Cᵀ∇_u + √ε ξ)),
    i.e. the proposal N(u + (ε/2)CCᵀ∇log p(u), εCCᵀ); ``mul(v)`` = Cv and ``mul_t(v)`` = Cᵀv
    (identity when None). ``u`` and ``grad`` are flat; ``logp_fn(u) -> (log p, aux)``. The log
    proposal densities are written with the drawn ξ (no difference of nearby positions).

    Returns (u', (log p(u'), aux), ∇log p(u'), log Metropolis–Hastings ratio).
    """
    mul = (lambda v: v) if mul is None else mul
    mul_t = (lambda v: v) if mul_t is None else mul_t
    xi = jax.random.normal(key, u.shape, u.dtype)
    gz = mul_t(grad)
    prop = u + mul(0.5 * eps * gz + jnp.sqrt(eps) * xi)
    (lp, aux), g = jax.value_and_grad(logp_fn, has_aux=True)(prop)
    resid = -0.5 * eps * (gz + mul_t(g)) - jnp.sqrt(eps) * xi  # z − z' − (ε/2)∇_z log p(z')
    log_ratio = lp - logp - jnp.sum(resid**2) / (2 * eps) + 0.5 * jnp.sum(xi**2)
    return prop, (lp, aux), g, log_ratio


def langevin_step(key, logdensity_fn, u, logp, grad, eps, precond=None):
    """One MALA move: (proposal, its log density and gradient, acceptance probability).

    ``precond``: optional fixed diagonal preconditioner G (flat array, > 0): step εG per
    coordinate (the acceptance ratio of that proposal, G held fixed both ways)."""
    flat, unravel = ravel_pytree(u)
    root = None if precond is None else jnp.sqrt(precond)
    mul = None if precond is None else (lambda v: root * v)
    prop, (logp_prop, _), grad_prop, log_ratio = scaled_langevin(
        key, lambda x: (logdensity_fn(unravel(x)), ()), flat, logp, ravel_pytree(grad)[0], eps,
        mul, mul)
    return unravel(prop), logp_prop, unravel(grad_prop), accept_prob(log_ratio)


def langevin_acceptance(key, logdensity_fn, u, eps, precond=None):
    """Probability that MALA accepts a Langevin proposal of step ``eps`` (times the optional
    fixed diagonal preconditioner ``precond``) from ``u``."""
    logp, grad = jax.value_and_grad(logdensity_fn)(u)
    return langevin_step(key, logdensity_fn, u, logp, grad, eps, precond)[3]


class MALAConfig(NamedTuple):
    """Static MALA settings (hashable: part of the compile key)."""

    num_warmup: int
    step_size: float
    target_accept_prob: float
    adapt: bool

    def build(self, target: Target, center, gamma) -> Kernel:
        from numpyro.infer.hmc_util import dual_averaging

        da_init, da_update = dual_averaging()

        def logdensity(beta):
            return lambda u: target.log_density_unconstrained(u, beta, center, gamma)

        def init(key, u, beta):
            logp, grad = jax.value_and_grad(logdensity(beta))(u)
            eps = jnp.asarray(self.step_size, logp.dtype)
            return MALAState(u, logp, grad, jnp.zeros_like(logp), eps,
                             da_init(jnp.log(10 * eps)), jnp.zeros((), jnp.int32))

        def step(key, state, beta):
            k_prop, k_acc = jax.random.split(key)
            prop, logp, grad, acc = langevin_step(
                k_prop, logdensity(beta), state.position, state.logdensity, state.grad, state.step_size
            )
            take = jax.random.uniform(k_acc) < acc
            pick = lambda a, b: jax.tree_util.tree_map(lambda x, y: jnp.where(take, x, y), a, b)
            warm = (state.i < self.num_warmup) & self.adapt
            da = da_update(self.target_accept_prob - acc, state.da_state)
            da = jax.tree_util.tree_map(lambda new, old: jnp.where(warm, new, old), da, state.da_state)
            last_warm = state.i == self.num_warmup - 1
            eps = jnp.where(warm, jnp.exp(jnp.where(last_warm, da[1], da[0])), state.step_size)
            new = MALAState(pick(prop, state.position), jnp.where(take, logp, state.logdensity),
                            pick(grad, state.grad), acc, eps.astype(state.step_size.dtype), da,
                            state.i + 1)
            return new, stats(new)

        def stats(state):
            return {"acceptance_rate": state.accept_prob, "step_size": state.step_size,
                    "lp": state.logdensity}

        def finite(state):
            return all_finite(state.logdensity, state.position)

        return Kernel(init=init, step=step, position=lambda s: s.position, finite=finite)


def sample_mala(
    target: Target,
    betas,
    *,
    key,
    options: RunOptions | None = None,
    num_chains: int | None = None,
    num_warmup: int | None = None,
    num_samples: int | None = None,
    step_size: float = 1e-3,
    target_accept_prob: float = 0.574,
    adapt_step_size: bool = True,
    thinning: int | None = None,
    keep_params: bool | None = None,
    init=None,
    center=None,
    gamma: float = 0.0,
    keep_pointwise: bool | None = None,
    progress: bool | None = None,
    chunk_size: int | None = None,
    devices=None,
) -> Samples:
    """Sample p^β with exact (full-batch) Metropolis-adjusted Langevin at every β.

    ``step_size`` is the initial ε; with ``adapt_step_size`` it is tuned per (β, chain) during
    ``num_warmup`` steps by dual averaging towards ``target_accept_prob`` and then frozen.
    Run settings as in :func:`~slt_thermo.sample_nuts` (``options`` and keywords).
    Returns :class:`~slt_thermo.Samples` like :func:`~slt_thermo.sample_nuts`.
    """
    real_number(step_size, "step_size")
    if real_number(target_accept_prob, "target_accept_prob") >= 1:
        raise InvalidArgumentError(f"`target_accept_prob` must be in (0, 1), got {target_accept_prob!r}")
    options = RunOptions.merge(
        options, num_chains=num_chains, num_warmup=num_warmup, num_samples=num_samples,
        thinning=thinning, keep_params=keep_params, keep_pointwise=keep_pointwise, init=init,
        progress=progress, chunk_size=chunk_size, devices=devices)
    if options.num_warmup is None:
        raise InvalidArgumentError("`num_warmup` is required (as a keyword or in RunOptions)")
    config = MALAConfig(positive_int(options.num_warmup, "num_warmup", 0), float(step_size), float(target_accept_prob),
                        bool(adapt_step_size))
    return run(
        config, target, betas, options, key=key, center=center, gamma=gamma, sampler="mala",
        attrs={"target_accept_prob": target_accept_prob, "adapt_step_size": adapt_step_size},
    )
