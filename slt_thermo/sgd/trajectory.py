"""SGD trajectories as runs of the sampler driver: an optax kernel with no β axis.

A trajectory is the chain of an optimizer instead of a sampler: the same driver
(:func:`slt_thermo.samplers.run.run`) vmaps it over runs (the ``chain`` axis), scans it over
steps in chunks with progress, records the full-data energy nL_n, the parameters and the
learning rate at every ``record_every``-th step, and returns the same :class:`~slt_thermo.Samples`
(dims chain × draw, ``betas`` None), so every estimator and plot applies unchanged.

The objective is the per-example loss L_n(w) = nL_n(w)/n (``prior=True``: the MAP objective
L_n(w) − log φ(w)/n, Mandt et al.'s form), estimated on a minibatch of ``batch_size`` examples
drawn uniformly *with replacement* at every step (the i.i.d. minibatches the SGD-as-sampling
analyses assume; epochs without replacement have smaller noise late in each epoch). The
optimizer works in the sampler's unconstrained space (the identity for unconstrained models).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._utils import positive_int
from ..errors import InvalidArgumentError
from ..results import Samples
from ..samplers.run import Kernel, RunOptions, all_finite, run
from ..target import Target


class SGDState(NamedTuple):
    position: Any  # unconstrained params pytree
    opt_state: Any  # the optax state
    loss: jax.Array  # the minibatch objective at the last step's start
    finite: jax.Array


def learning_rate_of(opt_state) -> jax.Array:
    """The learning rate an optax state used last: ``hyperparams["learning_rate"]`` of the
    first ``optax.inject_hyperparams`` state inside it, NaN when there is none."""
    found = [s for s in jax.tree_util.tree_leaves(opt_state, is_leaf=lambda s: hasattr(s, "hyperparams"))
             if hasattr(s, "hyperparams") and "learning_rate" in s.hyperparams]
    return jnp.asarray(found[0].hyperparams["learning_rate"], jnp.float32) if found else jnp.float32(jnp.nan)


class SGDConfig(NamedTuple):
    optimizer: Any  # an optax GradientTransformation (hashable: its functions)
    batch_size: int
    prior: bool  # include −log φ(w)/n in the objective

    def build(self, target: Target, center, gamma) -> Kernel:
        n, B = target.n, self.batch_size

        def objective(u, idx):
            w = target.to_constrained(u)
            loss = target.nll_batch(w, idx) / n
            return loss - target.log_prior(w) / n if self.prior else loss

        value_and_grad = jax.value_and_grad(objective)

        def init(key, u, beta):
            loss = objective(u, jax.random.randint(key, (B,), 0, n))
            return SGDState(u, self.optimizer.init(u), loss, jnp.isfinite(loss))

        def step(key, state, beta):  # β is the driver's placeholder (1): SGD has none
            idx = jax.random.randint(key, (B,), 0, n)
            loss, grad = value_and_grad(state.position, idx)
            updates, opt_state = self.optimizer.update(grad, state.opt_state, state.position)
            new = optax.apply_updates(state.position, updates)
            ok = state.finite & all_finite(loss, new)
            info = {"learning_rate": learning_rate_of(opt_state), "minibatch_loss": loss}
            return SGDState(new, opt_state, loss, ok), info

        return Kernel(init=init, step=step, position=lambda s: s.position, finite=lambda s: s.finite)


def _optimizer(optimizer, schedule):
    """The optax transformation to run, with its learning rate injected (recorded per step) when
    it comes from a factory and a ``schedule``."""
    if isinstance(optimizer, optax.GradientTransformation):
        if schedule is not None:
            raise InvalidArgumentError(
                "give either an optax transformation (e.g. optax.sgd(0.01)) or an optimizer factory with "
                "`schedule` (e.g. optax.sgd, schedule=0.01), not a transformation and a schedule")
        return optimizer
    if not callable(optimizer):
        raise InvalidArgumentError(
            f"`optimizer` must be an optax GradientTransformation or a factory such as optax.sgd, got "
            f"{type(optimizer).__name__}")
    if schedule is None:
        raise InvalidArgumentError("an optimizer factory (e.g. optax.sgd) needs `schedule`: a learning rate "
                                   "(float > 0) or an optax schedule")
    if not callable(schedule):
        if isinstance(schedule, bool) or not isinstance(schedule, (int, float)) or not (
                math.isfinite(schedule) and schedule > 0):
            raise InvalidArgumentError(f"`schedule` (the learning rate η) must be > 0, got {schedule!r}")
    else:
        lr0 = float(schedule(0))
        if not (math.isfinite(lr0) and lr0 > 0):
            raise InvalidArgumentError(f"`schedule` must give learning rates > 0; at step 0 it gives {lr0}")
    out = optax.inject_hyperparams(optimizer)(learning_rate=schedule)
    if not isinstance(out, optax.GradientTransformation):
        raise InvalidArgumentError("`optimizer` factory must return an optax GradientTransformation")
    return out


def _init_per_run(target, init, num_runs):
    """``init`` as the driver takes it: one point (broadcast) or leading (1, num_runs)."""
    if init is None:
        return None
    ref = target.init(jax.random.PRNGKey(0))
    leaves = jax.tree_util.tree_leaves(init)
    refs = jax.tree_util.tree_leaves(ref)
    if len(leaves) == len(refs) and all(np.shape(a) == (num_runs,) + np.shape(r) for a, r in zip(leaves, refs)):
        return jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], init)
    return init


def sgd_trajectory(target: Target, optimizer, *, num_steps: int, batch_size: int, key,
                   schedule=None, num_runs: int = 8, init=None, record_every: int = 1, prior: bool = False,
                   keep_params: bool = True, progress: bool = True, chunk_size: int | None = None,
                   devices=None) -> Samples:
    """Train ``num_runs`` independent SGD runs on ``target``, vmapped, and return them as Samples.

    Args:
        optimizer: an optax GradientTransformation (``optax.sgd(0.01)``, ``optax.adam(1e-3)``), or
            a factory taking ``learning_rate`` (``optax.sgd``, ``functools.partial(optax.sgd,
            momentum=0.9)``) together with ``schedule``.
        schedule: with a factory, the learning rate: a float or an optax schedule (step → η).
            It is injected (``optax.inject_hyperparams``), so the rate of every step is recorded
            as ``learning_rate`` (NaN for a bare transformation that does not expose it).
        num_steps: optimizer steps per run; a draw is recorded after every ``record_every``-th
            (draw k is the point after (k+1)·record_every steps).
        batch_size: examples per minibatch (drawn with replacement, module docstring), ≤ n.
        num_runs: independent runs (different initial points and minibatch streams).
        init: starting parameters (model space): one point for every run, or leaves with a
            leading ``num_runs`` axis; default ``target.init`` per run.
        prior: minimize L_n − log φ/n (MAP) instead of L_n. Neither matches p^β ∝ φ e^{−βnL_n}
            exactly: without it SGD ignores φ, with it the prior is tempered along (φ^β at the
            SGD temperature). For large n the difference is O(1/n) in the law.
        devices: split the runs over devices (:mod:`slt_thermo.parallel`; ``num_runs`` a
            multiple of their number).

    Returns Samples over (chain = run, draw) with ``nll`` = the full-data nL_n at each recorded
    point, ``learning_rate``, ``minibatch_loss`` and the params (``keep_params``). The first
    draws are the transient from ``init``: discard them before reading a stationary law
    (:func:`slt_thermo.sgd.stationary`).
    """
    if not isinstance(target, Target):
        raise InvalidArgumentError(f"`target` must be a slt_thermo.Target, got {type(target).__name__}")
    num_steps = positive_int(num_steps, "num_steps")
    record_every = positive_int(record_every, "record_every")
    batch_size = positive_int(batch_size, "batch_size")
    num_runs = positive_int(num_runs, "num_runs")
    if batch_size > target.n and not target.is_population:
        raise InvalidArgumentError(f"`batch_size` ({batch_size}) exceeds the dataset size n = {target.n}")
    num_draws = num_steps // record_every
    if num_draws < 1:
        raise InvalidArgumentError(f"`record_every` ({record_every}) exceeds `num_steps` ({num_steps}): no draws")
    tx = _optimizer(optimizer, schedule)
    options = RunOptions(num_chains=num_runs, num_warmup=0, num_samples=num_draws, thinning=record_every,
                         keep_params=keep_params, keep_pointwise=False, init=_init_per_run(target, init, num_runs),
                         progress=progress, chunk_size=chunk_size, devices=devices)
    attrs = {"batch_size": batch_size, "num_steps": num_draws * record_every, "record_every": record_every,
             "prior_in_objective": bool(prior),
             "learning_rate": float(schedule) if schedule is not None and not callable(schedule) else float("nan")}
    return run(SGDConfig(tx, batch_size, bool(prior)), target, None, options, key=key, sampler="sgd",
               attrs=attrs)


def stationary(traj: Samples, burn_in: float | int = 0.5) -> Samples:
    """The draws of a trajectory after its transient: ``burn_in`` a fraction (0 ≤ f < 1) of the
    draws or a number of draws to drop from the start of every run."""
    if not isinstance(traj, Samples):
        raise InvalidArgumentError(f"`traj` must be Samples (an sgd_trajectory), got {type(traj).__name__}")
    T = traj.ds.sizes["draw"]
    if isinstance(burn_in, float):
        if not 0 <= burn_in < 1:
            raise InvalidArgumentError(f"a fractional `burn_in` must be in [0, 1), got {burn_in}")
        k = int(burn_in * T)
    else:
        k = positive_int(burn_in, "burn_in", 0)
    if k >= T:
        raise InvalidArgumentError(f"`burn_in` ({k}) leaves no draws of {T}")
    out = Samples(traj.ds.isel(draw=slice(k, None)))
    return out


__all__ = ["SGDConfig", "SGDState", "learning_rate_of", "sgd_trajectory", "stationary"]
