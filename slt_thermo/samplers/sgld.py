"""Stochastic-gradient Langevin dynamics (Welling & Teh 2011), optionally RMSprop-preconditioned
(Li et al. 2016) and localized (the LLC posterior of Lau et al., arXiv:2308.12108).

One step, in the sampler's unconstrained space u (identity for unconstrained models):

    Δu = (ε/2) G ∘ ∇_u [log φ − β Ĥ_B − (γ/2)‖w − w*‖² + log|J|] + √ε · N(0, G)

where Ĥ_B = (n/B) Σ_{i∈B} −log p(y_i|x_i, w) is the unbiased minibatch estimate of H = nL_n
(B examples drawn uniformly with replacement each step), G = 1 without preconditioning and
G = 1/(√V + δ) with V the running average of squared gradients under ``"rmsprop"``.
SGLD has no accept/reject step: its stationary law differs from p^β by O(ε) and by the
minibatch noise, so small steps matter; :func:`~slt_thermo.samplers.mala.langevin_acceptance`
scores ε (recorded per draw as ``mala_accept``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..errors import InvalidArgumentError
from ..results import Samples
from ..target import Target
from .mala import langevin_acceptance
from .run import Kernel, _positive_int, run

PRECONDITIONERS = (None, "rmsprop")


class SGLDState(NamedTuple):
    position: object  # unconstrained params pytree
    sq_grad: jax.Array  # RMSprop running mean of squared gradients (flat)
    nll: jax.Array  # minibatch estimate of H at `position`
    finite: jax.Array


class SGLDConfig(NamedTuple):
    step_size: float
    batch_size: int
    preconditioner: str | None
    rmsprop_decay: float
    rmsprop_eps: float
    full_nll: bool

    def build(self, target: Target, center, gamma) -> Kernel:
        n = target.n
        B = self.batch_size

        def batch_logdensity(u, beta, idx):
            w = target.to_constrained(u)
            nll = target.nll_batch(w, idx)
            return target.log_density_unconstrained(u, beta, center, gamma, idx), nll

        def init(key, u, beta):
            flat = ravel_pytree(u)[0]
            idx = jax.random.randint(key, (B,), 0, n)
            _, nll = batch_logdensity(u, beta, idx)
            return SGLDState(u, jnp.zeros_like(flat), nll, jnp.isfinite(nll))

        def step(key, state, beta):
            k_batch, k_noise = jax.random.split(key)
            idx = jax.random.randint(k_batch, (B,), 0, n)
            (logp, nll), grad = jax.value_and_grad(batch_logdensity, has_aux=True)(state.position, beta, idx)
            flat, unravel = ravel_pytree(state.position)
            g = ravel_pytree(grad)[0]
            if self.preconditioner == "rmsprop":
                a = self.rmsprop_decay
                sq = jnp.where(jnp.all(state.sq_grad == 0), g**2, a * state.sq_grad + (1 - a) * g**2)
                G = 1.0 / (jnp.sqrt(sq) + self.rmsprop_eps)
            else:
                sq, G = state.sq_grad, 1.0
            eps = self.step_size
            noise = jax.random.normal(k_noise, flat.shape, flat.dtype)
            new = flat + 0.5 * eps * G * g + jnp.sqrt(eps * G) * noise
            ok = state.finite & jnp.all(jnp.isfinite(new)) & jnp.isfinite(logp)
            return SGLDState(unravel(new), sq, nll, ok)

        def diagnose(key, state, beta):
            fn = lambda u: target.log_density_unconstrained(u, beta, center, gamma)
            return {"mala_accept": langevin_acceptance(key, fn, state.position, self.step_size)}

        def finite(state):
            return state.finite

        def stats(state):
            return {"step_size": jnp.asarray(self.step_size, state.nll.dtype)}

        return Kernel(init=init, step=step, position=lambda s: s.position, stats=stats,
                      finite=finite, energy=lambda s: s.nll, diagnose=diagnose)


def sample_sgld(
    target: Target,
    betas,
    *,
    step_size: float,
    num_chains: int,
    num_steps: int,
    num_burnin: int,
    batch_size: int,
    key,
    center=None,
    gamma: float = 0.0,
    preconditioner: str | None = None,
    thinning: int = 1,
    eval_full_nll_every: int | None = None,
    keep_params: bool = True,
    init=None,
    rmsprop_decay: float = 0.99,
    rmsprop_eps: float = 1e-8,
    progress: bool = True,
    chunk_size: int | None = None,
) -> Samples:
    """SGLD on p^β(w) ∝ φ(w) e^{−βnL_n(w)} (× e^{−γ/2‖w − center‖²}) at every β, vmapped chains.

    ``num_steps`` counts every SGLD step, the first ``num_burnin`` of which are discarded; a draw
    is recorded every ``thinning`` steps after that. ``nll`` in the result is:

    - with ``eval_full_nll_every=None`` (default): the minibatch estimate Ĥ_B of nL_n from the
      gradient pass of the recorded step, i.e. at the point that step started from (unbiased,
      noisier; what devinterp averages), costing nothing extra;
    - with ``eval_full_nll_every=k``: the full-data nL_n, evaluated every k-th step (a draw is
      recorded every k steps; ``thinning`` must then be 1).

    Every recorded draw also gets ``mala_accept``: the probability that exact MALA would accept
    a Langevin move of this ε from that point (full-batch), the discretization diagnostic.
    """
    if not (isinstance(step_size, (int, float)) and step_size > 0 and math.isfinite(step_size)):
        raise InvalidArgumentError(f"`step_size` must be a positive number, got {step_size!r}")
    num_steps = _positive_int(num_steps, "num_steps")
    num_burnin = _positive_int(num_burnin, "num_burnin", 0)
    if num_burnin >= num_steps:
        raise InvalidArgumentError(
            f"`num_burnin` ({num_burnin}) must be smaller than `num_steps` ({num_steps}): "
            "num_steps counts every step, burn-in included"
        )
    batch_size = _positive_int(batch_size, "batch_size")
    if batch_size > target.n and not target.is_population:
        raise InvalidArgumentError(f"`batch_size` ({batch_size}) exceeds the dataset size n = {target.n}")
    if preconditioner not in PRECONDITIONERS:
        raise InvalidArgumentError(f"`preconditioner` must be one of {PRECONDITIONERS}, got {preconditioner!r}")
    if eval_full_nll_every is not None:
        eval_full_nll_every = _positive_int(eval_full_nll_every, "eval_full_nll_every")
        if thinning != 1:
            raise InvalidArgumentError("give either `thinning` or `eval_full_nll_every`, not both")
        thinning = eval_full_nll_every
    thinning = _positive_int(thinning, "thinning")
    num_samples = (num_steps - num_burnin) // thinning
    if num_samples < 1:
        raise InvalidArgumentError(
            f"no draws: (num_steps − num_burnin) // thinning = {num_samples}; take more steps"
        )
    config = SGLDConfig(float(step_size), batch_size, preconditioner, float(rmsprop_decay),
                        float(rmsprop_eps), eval_full_nll_every is not None)
    return run(
        config, target, betas, num_chains=num_chains, num_warmup=num_burnin,
        num_samples=num_samples, key=key, thinning=thinning, keep_params=keep_params,
        keep_pointwise=False, init=init, center=center, gamma=gamma, progress=progress,
        chunk_size=chunk_size, sampler="sgld", kernel_energy=not config.full_nll,
        attrs={"step_size": step_size, "batch_size": batch_size,
               "preconditioner": preconditioner or "none",
               "nll_kind": "full" if config.full_nll else "minibatch", "num_steps": num_steps,
               "num_burnin": num_burnin},
    )
