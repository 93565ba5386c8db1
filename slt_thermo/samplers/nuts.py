"""NUTS and fixed-length HMC over a whole β-ladder, on numpyro's functional HMC kernels.

numpyro's ``hmc(potential_fn_gen=..., algo=...)`` gives ``init_kernel`` / ``sample_kernel`` for one
chain, with windowed step-size (dual averaging) and mass-matrix adaptation during warmup. We build
the potential from β (a traced model argument), vmap the kernels over every (β, chain) pair, so
each pair adapts its own step size and mass matrix, and let :mod:`.run` scan them in chunks.

Under ``vmap`` NUTS runs in lockstep: every chain waits for the deepest tree of the batch. When
that waste matters (many β with very different geometry), :func:`sample_hmc` uses a fixed number
of leapfrog steps per trajectory, so no chain waits.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp

from .._utils import positive_int, real_number
from ..errors import InvalidArgumentError
from ..results import Samples
from ..target import Target
from .run import Kernel, RunOptions, all_finite, run


class HMCConfig(NamedTuple):
    """Static settings of numpyro's HMC/NUTS kernel (hashable: part of the compile key)."""

    algo: str  # "NUTS" or "HMC"
    num_warmup: int
    max_tree_depth: int
    dense_mass: bool
    target_accept_prob: float
    num_steps: int | None  # fixed leapfrog steps (HMC only)
    step_size: float

    def build(self, target: Target, center, gamma) -> Kernel:
        from numpyro.infer.hmc import hmc

        def potential_gen(beta):
            return lambda u: -target.log_density_unconstrained(u, beta, center, gamma)

        init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo=self.algo)
        settings = dict(
            num_warmup=self.num_warmup,
            step_size=self.step_size,
            dense_mass=self.dense_mass,
            target_accept_prob=self.target_accept_prob,
            max_tree_depth=self.max_tree_depth,
            num_steps=self.num_steps,
            trajectory_length=None if self.num_steps else 2 * math.pi,
        )
        primed = []

        def init(key, u, beta):
            primed.append(True)
            return init_kernel(u, rng_key=key, model_args=(beta,), **settings)

        def step(key, state, beta):
            if not primed:
                # numpyro's sample_kernel reads settings that init_kernel stores in its closure;
                # in a fresh trace, run init once for that side effect (XLA drops the result).
                init(key, state.z, beta)
            new = sample_kernel(state._replace(rng_key=key), model_args=(beta,))
            return new, stats(new)

        def stats(state):
            steps = state.num_steps
            out = {
                "diverging": state.diverging,
                "acceptance_rate": state.accept_prob,
                "step_size": state.adapt_state.step_size,
                "n_steps": steps,
                "energy": state.energy,
                "lp": -state.potential_energy,
            }
            if self.algo == "NUTS":
                out["tree_depth"] = jnp.ceil(jnp.log2(steps.astype(jnp.float32) + 1.0)).astype(jnp.int32)
            return out

        def finite(state):
            return all_finite(state.potential_energy, state.z)

        return Kernel(init=init, step=step, position=lambda s: s.z, finite=finite)


def _check_settings(max_tree_depth, target_accept_prob, step_size):
    if isinstance(max_tree_depth, bool) or not isinstance(max_tree_depth, int) or not 1 <= max_tree_depth <= 20:
        raise InvalidArgumentError(f"`max_tree_depth` must be an integer in [1, 20], got {max_tree_depth!r}")
    if real_number(target_accept_prob, "target_accept_prob") >= 1:
        raise InvalidArgumentError(f"`target_accept_prob` must be in (0, 1), got {target_accept_prob!r}")
    real_number(step_size, "step_size")


def sample_nuts(
    target: Target,
    betas,
    *,
    key,
    options: RunOptions | None = None,
    num_chains: int | None = None,
    num_warmup: int | None = None,
    num_samples: int | None = None,
    thinning: int | None = None,
    keep_params: bool | None = None,
    init=None,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    target_accept_prob: float = 0.8,
    step_size: float = 1.0,
    center=None,
    gamma: float = 0.0,
    keep_pointwise: bool | None = None,
    progress: bool | None = None,
    chunk_size: int | None = None,
    devices=None,
) -> Samples:
    """Sample p^β(w|D_n) ∝ φ(w) exp(−β nL_n(w)) with NUTS at every β, ``num_chains`` chains each.

    All (β, chain) pairs run vmapped in one compiled program; each adapts its own step size and
    (diagonal or dense) mass matrix during ``num_warmup`` steps. β = 0 samples the prior.
    ``center``/``gamma`` add the localization exp(−γ/2‖w − center‖²) of the LLC posterior.
    The run settings (chains, warmup, draws, thinning, what to keep, init, progress, chunking,
    ``max_chunks``/``resume``, ``devices``) come from ``options`` (a :class:`RunOptions`), with
    any of the same-named keywords put over it. ``devices`` splits the (β × chain) axis over
    several devices (:mod:`slt_thermo.parallel`): the same numbers as one device.

    Returns :class:`~slt_thermo.Samples` with ``nll`` (H(w) per draw, full data), the
    parameters when ``keep_params``, the target's observables, sampler statistics and
    per-example log-likelihood accumulators (data targets); ``samples.state`` continues the run.
    """
    _check_settings(max_tree_depth, target_accept_prob, step_size)
    options = RunOptions.merge(
        options, num_chains=num_chains, num_warmup=num_warmup, num_samples=num_samples,
        thinning=thinning, keep_params=keep_params, keep_pointwise=keep_pointwise, init=init,
        progress=progress, chunk_size=chunk_size, devices=devices)
    return _sample_hmc_family("NUTS", target, betas, options, key, max_tree_depth, dense_mass,
                              target_accept_prob, None, step_size, center, gamma)


def sample_hmc(
    target: Target,
    betas,
    *,
    key,
    options: RunOptions | None = None,
    num_chains: int | None = None,
    num_warmup: int | None = None,
    num_samples: int | None = None,
    num_steps: int = 16,
    thinning: int | None = None,
    keep_params: bool | None = None,
    init=None,
    dense_mass: bool = False,
    target_accept_prob: float = 0.8,
    step_size: float = 1.0,
    center=None,
    gamma: float = 0.0,
    keep_pointwise: bool | None = None,
    progress: bool | None = None,
    chunk_size: int | None = None,
    devices=None,
) -> Samples:
    """Like :func:`sample_nuts`, with a fixed number ``num_steps`` of leapfrog steps per draw.

    The step size is still adapted per (β, chain) during warmup, so the trajectory length
    ``num_steps × step_size`` follows each rung's geometry, but every chain does the same amount
    of work per draw: nothing waits in lockstep under vmap.
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise InvalidArgumentError(f"`num_steps` must be an integer >= 1, got {num_steps!r}")
    _check_settings(10, target_accept_prob, step_size)
    options = RunOptions.merge(
        options, num_chains=num_chains, num_warmup=num_warmup, num_samples=num_samples,
        thinning=thinning, keep_params=keep_params, keep_pointwise=keep_pointwise, init=init,
        progress=progress, chunk_size=chunk_size, devices=devices)
    return _sample_hmc_family("HMC", target, betas, options, key, 10, dense_mass,
                              target_accept_prob, num_steps, step_size, center, gamma)


def _sample_hmc_family(algo, target, betas, options, key, max_tree_depth, dense_mass,
                       target_accept_prob, num_steps, step_size, center, gamma) -> Samples:
    if options.num_warmup is None:
        raise InvalidArgumentError("`num_warmup` is required (as a keyword or in RunOptions)")
    config = HMCConfig(algo, positive_int(options.num_warmup, "num_warmup", 0), max_tree_depth, bool(dense_mass),
                       float(target_accept_prob), num_steps, float(step_size))
    attrs = {"dense_mass": dense_mass, "target_accept_prob": target_accept_prob}
    if algo == "NUTS":
        attrs["max_tree_depth"] = max_tree_depth
    else:
        attrs["num_steps"] = num_steps
    return run(config, target, betas, options, key=key, center=center, gamma=gamma,
               sampler=algo.lower(), attrs=attrs)
