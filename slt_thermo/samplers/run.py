"""The run driver: vmap a one-chain kernel over (β × chain), scan over steps in chunks.

Every sampler in :mod:`slt_thermo.samplers` describes itself by a hashable *config* whose
``build(target, center, gamma)`` returns a :class:`Kernel` for ONE chain. The driver

1. flattens the (β, chain) grid into one axis and vmaps the kernel over it, β traced;
2. runs warmup and sampling through ONE jit-compiled chunk function (a ``lax.scan`` over ticks:
   a tick is one kernel step during warmup and ``thinning`` steps while sampling), so a whole
   ladder costs one compile, and repeated runs with the same target and settings cost none;
3. after each chunk moves the recorded draws to the host and advances a tqdm bar, so a run
   that is interrupted (Ctrl-C) returns the draws it has, marked ``attrs["interrupted"] = 1``
   (:func:`~.interrupts.deferred_sigint`: the Ctrl-C is honoured at the end of the chunk running, never lost);
4. tracks per-chain health (non-finite position or energy ⇒ unhealthy) and the per-example
   log-likelihood accumulators (Welford mean/M2 and log-sum-exp) on device.

The PRNG stream of tick t is ``fold_in(key, t)``, so results do not depend on the chunk size.

A run is ``prepare`` → ``advance`` (chunk by chunk) → ``finalize`` around an explicit
:class:`RunState` (kernel states, accumulators, health, tick counter, the draws recorded so far).
:func:`run` does all three; the returned Samples carry their final state as ``samples.state``, and a
run given ``RunOptions(resume=state)`` continues where that state stopped, with the same numbers
as an uninterrupted run (same key). ``RunOptions(max_chunks=k)`` stops after k chunks.

Settings shared by every sampler (chains, warmup, draws, thinning, what to keep, init, progress,
chunking, resumption) live in one :class:`RunOptions`; the samplers' keyword forms are a thin
convenience over it (keywords override the options).

With ``betas=None`` the run has no β axis (an SGD trajectory): the kernel sees β = 1 and the
Samples have dims (chain, draw).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
import warnings
from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._target_inputs import check_key
from .._utils import check_beta, positive_int, real_number
from ..errors import ConvergenceWarning, InvalidArgumentError, NumericalWarning, SLTThermoWarning
from ..results import Samples, clean_attrs
from ..parallel import to_host
from ..target import Target
from .interrupts import check_interrupt, deferred_sigint
from .records import check_names, leaf_names, run_meta, to_dataset
from .run_checks import check_rungs


class Kernel(NamedTuple):
    """A one-chain transition kernel in the blackjax style (keys are arguments, never state).

    ``step`` returns ``(state, info)``, ``info`` a dict of per-step scalars under ArviZ names
    (``acceptance_rate``, ``step_size``, ``diverging``, ...), recorded at every draw."""

    init: Callable  # (key, position, beta) -> state
    step: Callable  # (key, state, beta) -> (state, info: dict[str, scalar])
    position: Callable  # state -> unconstrained position
    finite: Callable  # state -> bool
    # optional: the kernel's own estimate of H at the recorded point (e.g. SGLD's minibatch nll),
    # recorded as ``nll`` instead of the full-data value when the config sets ``kernel_energy``
    energy: Callable | None = None  # state -> scalar
    # optional: extra per-draw diagnostics computed only at recorded draws (not every step), and
    # only at every ``diagnose_every``-th of them (NaN at the others): they may cost far more
    # than a step (SGLD's full-batch MALA check)
    diagnose: Callable | None = None  # (key, state, beta) -> dict[str, scalar]


class Accumulators(NamedTuple):
    """Per-example log-likelihood running statistics over draws, one row per (β, chain)."""

    mean: jax.Array  # (BC, n)
    m2: jax.Array  # (BC, n)
    lse: jax.Array  # (BC, n)
    count: jax.Array  # ()


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Settings every sampler shares (one object instead of the same keywords in each signature).

    ``keep_params``: record the parameters at every draw; None (default) keeps them when they
    take at most :data:`PARAMS_BUDGET_BYTES` (1 GiB for 2 × β × chains × draws × d numbers: the
    Samples and the state they keep for resumption each hold the draws) and warns
    and keeps only the per-draw energies and observables otherwise (the streaming mode of large
    models: pass ``True`` to insist, or thin).
    ``num_warmup`` is the warm-up (adaptation) for NUTS/HMC/MALA and the burn-in for SGLD;
    ``num_samples`` draws are recorded per chain, one every ``thinning`` steps. ``init`` is a
    params pytree in model space (one point, or leading axes (num_betas, num_chains)).
    ``keep_pointwise`` (default: data targets) keeps the per-example log-likelihood accumulators.
    ``max_chunks`` stops after that many chunks of this call (the Samples then hold the draws so
    far and ``samples.state``); ``resume`` is a :class:`RunState` to continue from (same target,
    sampler, settings and key). ``devices`` (an int, a sequence of jax devices or a 1-D Mesh)
    splits the (β × chain) axis over several devices (:mod:`slt_thermo.parallel`: the same
    program; SGLD's numbers to a few ulps, NUTS's chains the same in law). ``checkpoint`` (a
    directory): the run's state is written there after every chunk (:func:`slt_thermo.io.save_state`), and a run started with the same directory
    and arguments continues from the state it finds — a killed run loses at most one chunk and
    ends with the numbers of an uninterrupted one.
    """

    num_chains: int | None = None
    num_warmup: int | None = None
    num_samples: int | None = None
    thinning: int = 1
    keep_params: bool | None = None
    keep_pointwise: bool | None = None
    init: Any = None
    progress: bool = True
    chunk_size: int | None = None
    max_chunks: int | None = None
    resume: Any = None
    devices: Any = None
    checkpoint: Any = None

    def replace(self, **changes) -> "RunOptions":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def check_reserved(self) -> None:
        """Raise on a ``checkpoint`` that is not a directory path (the name kept for callers)."""
        if self.checkpoint is not None and not isinstance(self.checkpoint, (str, os.PathLike)):
            raise InvalidArgumentError(
                f"`RunOptions.checkpoint` must be a directory path, got {type(self.checkpoint).__name__}")

    @classmethod
    def merge(cls, options: "RunOptions | None", **keywords) -> "RunOptions":
        """``options`` (or the defaults) with every keyword that is not None put over it."""
        if options is None:
            options = cls()
        elif not isinstance(options, cls):
            raise InvalidArgumentError(f"`options` must be a RunOptions, got {type(options).__name__}")
        return dataclasses.replace(options, **{k: v for k, v in keywords.items() if v is not None})


class RunState(NamedTuple):
    """Everything a run needs to continue: the vmapped kernel states, the per-example
    accumulators, chain health, the ticks done, the draws recorded so far (host arrays, one
    dict per chunk) and the wall time spent. ``fingerprint`` ties it to its run's settings."""

    kernel: Any
    acc: "Accumulators"
    healthy: jax.Array
    tick: int
    records: tuple
    wall_time_s: float
    fingerprint: tuple


class Plan(NamedTuple):
    """Static sizes of a run (part of the compile key)."""

    num_warmup: int
    num_samples: int
    thinning: int
    chunk: int
    keep_params: bool
    keep_pointwise: bool
    kernel_energy: bool = False
    diagnose_every: int = 1


# ------------------------------------------------------------------------------ validation
def all_finite(energy, position) -> jax.Array:
    """True when the energy and every entry of the position pytree are finite (a kernel's
    ``finite``: a chain that fails it is marked unhealthy)."""
    ok = jnp.isfinite(energy)
    for leaf in jax.tree_util.tree_leaves(position):
        ok = ok & jnp.all(jnp.isfinite(leaf))
    return ok


def validate_betas(betas) -> np.ndarray:
    b = np.atleast_1d(np.asarray(betas, dtype=float))
    if b.ndim != 1 or b.size == 0:
        raise InvalidArgumentError(f"`betas` must be a non-empty 1-D sequence, got shape {b.shape}")
    check_beta(b, "betas")
    if len(np.unique(b)) != b.size:
        raise InvalidArgumentError("`betas` has repeated values; each rung must be distinct")
    return b


# ------------------------------------------------------------------------------ compiled pieces
@partial(jax.jit, static_argnames=("config",))
def _init_states(config, target, u0, betas, keys, center, gamma):
    kernel = config.build(target, center, gamma)
    return jax.vmap(kernel.init)(keys, u0, betas)


@jax.jit
def _to_unconstrained(target, positions):  # target is a pytree: one compile per model, not per call
    return jax.vmap(target.to_unconstrained)(positions)


def _update_acc(acc: Accumulators, ll):
    count = acc.count + 1
    delta = ll - acc.mean
    mean = acc.mean + delta / count
    m2 = acc.m2 + delta * (ll - mean)
    return Accumulators(mean, m2, jnp.logaddexp(acc.lse, ll), count)


def _nan_like(shapes):
    return jax.tree_util.tree_map(lambda sd: jnp.full(sd.shape, jnp.nan, sd.dtype), shapes)


@partial(jax.jit, static_argnames=("config", "plan"))
def _run_chunk(config, plan: Plan, target: Target, states, acc, healthy, key, betas, t0, center, gamma):
    kernel = config.build(target, center, gamma)
    W, S, thin = plan.num_warmup, plan.num_samples, plan.thinning
    num = betas.shape[0]
    step = jax.vmap(kernel.step)

    def tick(carry, j):
        states, acc, healthy = carry
        t = t0 + j
        in_samp = (t >= W) & (t < W + S)
        n_inner = jnp.where(t < W, 1, jnp.where(in_samp, thin, 0))
        kt = jax.random.fold_in(key, t)
        keys_at = lambda i: jax.random.split(jax.random.fold_in(kt, i), num)
        info0 = jax.tree_util.tree_map(  # the info of the tick's last step (zeros if none)
            lambda sd: jnp.zeros(sd.shape, sd.dtype), jax.eval_shape(step, keys_at(0), states, betas)[1])
        states, info = jax.lax.fori_loop(
            0, n_inner, lambda i, c: step(keys_at(i), c[0], betas), (states, info0))
        w = jax.vmap(target.to_constrained)(jax.vmap(kernel.position)(states))

        def diagnose(_):
            keys = jax.random.split(jax.random.fold_in(kt, 0x7FFFFFFF), num)  # apart from step keys
            return jax.vmap(kernel.diagnose)(keys, states, betas)

        def record(acc):
            extra = {"log_prior": jax.vmap(target.log_prior)(w), **jax.vmap(target.observables)(w)}
            if kernel.diagnose is not None:
                if plan.diagnose_every == 1:
                    extra.update(diagnose(None))
                else:  # a real branch (scalar predicate): the skipped draws cost nothing
                    last = (W + S - 1 - t) % plan.diagnose_every == 0  # aligned to the last draw
                    extra.update(jax.lax.cond(
                        last, diagnose, lambda _: _nan_like(jax.eval_shape(diagnose, None)), None))
            if plan.keep_pointwise:
                ll = jax.vmap(target.log_likelihood)(w)
                acc, nll = _update_acc(acc, ll), -jnp.sum(ll, axis=1)
            if plan.kernel_energy:  # the kernel's own estimate; the full-data H is never built
                nll = jax.vmap(kernel.energy)(states)
            elif not plan.keep_pointwise:
                nll = jax.vmap(target.nll)(w)
            return acc, (nll, extra)

        def skip(acc):  # warmup or padding tick: same shapes as record, NaN values
            return acc, _nan_like(jax.eval_shape(record, acc)[1])

        acc, (nll, extra) = jax.lax.cond(in_samp, record, skip, acc)
        healthy = healthy & jax.vmap(kernel.finite)(states) & (jnp.isfinite(nll) | ~in_samp)
        out = {"nll": nll, **extra, **info}
        if plan.keep_params:
            out["params"] = w
        return (states, acc, healthy), out

    (states, acc, healthy), out = jax.lax.scan(
        tick, (states, acc, healthy), jnp.arange(plan.chunk)
    )
    return states, acc, healthy, out


# ------------------------------------------------------------------------------ the driver
class PreparedRun(NamedTuple):
    """The fixed context of one run (what :func:`advance` and :func:`finalize` need besides the
    :class:`RunState`): compiled-program settings, traced inputs, names and metadata."""

    config: Any
    plan: Plan
    target: Target
    betas: np.ndarray | None  # None: a run without β axis
    beta_flat: jax.Array
    num_chains: int
    center: Any
    gamma: float
    key: jax.Array  # the run's stream: tick t uses fold_in(key, t)
    names: list
    options: RunOptions
    meta: dict

    @property
    def ticks(self) -> int:
        return self.plan.num_warmup + self.plan.num_samples

    def done(self, state: RunState) -> bool:
        return state.tick >= self.ticks


def _check_options(options: RunOptions, target: Target):
    for name in ("num_chains", "num_warmup", "num_samples"):
        if getattr(options, name) is None:
            raise InvalidArgumentError(f"`{name}` is required (as a keyword or in RunOptions)")
    options.check_reserved()
    opts = options.replace(
        num_chains=positive_int(options.num_chains, "num_chains"),
        num_warmup=positive_int(options.num_warmup, "num_warmup", 0),
        num_samples=positive_int(options.num_samples, "num_samples"),
        thinning=positive_int(options.thinning, "thinning"),
    )
    if opts.chunk_size is not None:
        positive_int(opts.chunk_size, "chunk_size")
    if opts.max_chunks is not None:
        positive_int(opts.max_chunks, "max_chunks")
    if opts.resume is not None and not isinstance(opts.resume, RunState):
        raise InvalidArgumentError(
            f"`resume` must be the RunState of an earlier run (samples.state), got {type(opts.resume).__name__}")
    keep_pointwise = opts.keep_pointwise
    if keep_pointwise is None:
        keep_pointwise = not target.is_population
    if keep_pointwise and target.is_population:
        raise InvalidArgumentError("`keep_pointwise` needs data; population targets have none")
    return opts.replace(keep_pointwise=bool(keep_pointwise))


def prepare(config, target: Target, betas, options: RunOptions, *, key, center=None,
            gamma: float = 0.0, sampler: str = "", attrs: dict | None = None,
            kernel_energy: bool = False, diagnose_every: int = 1) -> tuple[PreparedRun, RunState]:
    """Validate a run and build its context and initial :class:`RunState` (or take
    ``options.resume``). Arguments as in :func:`run`."""
    if not isinstance(target, Target):
        raise InvalidArgumentError(
            f"`target` must be a slt_thermo.Target, got {type(target).__name__}; "
            "wrap your model with st.Target(model, data)"
        )
    check_key(key)
    if not isinstance(gamma, (jax.Array, np.ndarray)):  # an array γ (a traced sweep) is the caller's
        real_number(gamma, "gamma", strict=False)
    options = _check_options(options, target)
    beta_axis = betas is not None
    betas = validate_betas(betas) if beta_axis else np.ones(1)
    diagnose_every = positive_int(diagnose_every, "diagnose_every")
    gamma = float(gamma)
    if gamma < 0 or not math.isfinite(gamma):
        raise InvalidArgumentError(f"`gamma` must be finite and >= 0, got {gamma}")
    if gamma > 0 and center is None:
        raise InvalidArgumentError("`gamma` > 0 localizes around `center`: pass center=w_star")

    B, C = betas.size, options.num_chains
    ticks = options.num_warmup + options.num_samples
    chunk = options.chunk_size or max(1, min(ticks, math.ceil(ticks / 20), 250))
    template = target.init(jax.random.PRNGKey(0))
    options = options.replace(keep_params=_keep_params(options, template, B))
    plan = Plan(options.num_warmup, options.num_samples, options.thinning, chunk,
                bool(options.keep_params), options.keep_pointwise, bool(kernel_energy), diagnose_every)
    key_init, key_kernel, key_run = jax.random.split(key, 3)
    beta_flat = jnp.repeat(jnp.asarray(betas, dtype=jnp.result_type(float)), C)
    cvals = None if center is None else jax.tree_util.tree_map(jnp.asarray, center)
    names = leaf_names(template)
    check_names(names, target.observable_names)
    fingerprint = _fingerprint(sampler, config, target, betas, C, plan, gamma, cvals, key_run)
    meta = run_meta(target, sampler, options, gamma, center, names, beta_axis, attrs)
    run_ = PreparedRun(config, plan, target, betas if beta_axis else None, beta_flat, C, cvals,
                       gamma, key_run, names, options, meta)
    mesh = None
    if options.devices is not None:
        from .. import parallel

        mesh = parallel.mesh(options.devices)
        parallel.check_divisible(B * C, mesh, "the number of (β, chain) pairs")
        run_ = run_._replace(beta_flat=parallel.shard_leading(beta_flat, mesh, B * C))
    if options.resume is not None:
        if options.resume.fingerprint != fingerprint:
            raise InvalidArgumentError(
                "`resume` is the state of a different run (other sampler, target, settings, "
                "chunk size or key); resume with exactly the arguments of the run that made it")
        return run_, _placed(options.resume, mesh, B * C)

    positions = _initial_positions(target, options.init, key_init, B, C)
    u0 = _to_unconstrained(target, positions)
    states = _init_states(config, target, u0, beta_flat, jax.random.split(key_kernel, B * C), cvals, gamma)
    n_acc = target.n if plan.keep_pointwise else 0
    dt = jnp.result_type(float)
    acc = Accumulators(
        jnp.zeros((B * C, n_acc), dt), jnp.zeros((B * C, n_acc), dt),
        jnp.full((B * C, n_acc), -jnp.inf, dt), jnp.zeros((), dt),
    )
    return run_, _placed(RunState(states, acc, jnp.ones((B * C,), bool), 0, (), 0.0, fingerprint), mesh, B * C)


PARAMS_BUDGET_BYTES = 2**30  # the parameter draws kept by default (keep_params=None)


def params_bytes(template, num_records: int) -> int:
    """Bytes of ``num_records`` recorded draws of parameters shaped like ``template``."""
    return num_records * sum(int(np.size(x)) * np.dtype(jnp.result_type(x)).itemsize
                             for x in jax.tree_util.tree_leaves(template))


def _keep_params(options: RunOptions, template, num_betas: int) -> bool:
    """``options.keep_params``, or the default: keep the draws within PARAMS_BUDGET_BYTES."""
    if options.keep_params is not None:
        return bool(options.keep_params)
    # ×2: the returned Samples hold the draws twice while they keep their state for resumption
    # (the dataset and the per-chunk records; measured: benchmarks/scaling.py)
    size = 2 * params_bytes(template, num_betas * options.num_chains * options.num_samples)
    if size <= PARAMS_BUDGET_BYTES:
        return True
    warnings.warn(
        f"not recording the parameter draws: they would take {size / 2**30:.1f} GiB (2 × β × chains × draws × d: "
        "the Samples and their resumable state); "
        "the run keeps the per-draw energies and observables only. Pass keep_params=True to keep them "
        "(or record fewer draws: thinning)", SLTThermoWarning, stacklevel=4)
    return False


def _placed(state: RunState, mesh, size: int) -> RunState:
    """``state`` with its device arrays split over ``mesh`` along the (β × chain) axis (as is
    without a mesh)."""
    if mesh is None:
        return state
    from ..parallel import shard_leading

    kernel, acc, healthy = shard_leading((state.kernel, state.acc, state.healthy), mesh, size)
    return state._replace(kernel=kernel, acc=acc, healthy=healthy)


def advance(run_: PreparedRun, state: RunState, max_chunks: int | None = None, bar=None) -> RunState:
    """Run up to ``max_chunks`` chunks (all that remain by default); returns the new state. The
    draws of each chunk move to the host as it finishes."""
    plan, W, ticks = run_.plan, run_.plan.num_warmup, run_.ticks
    done = 0
    while state.tick < ticks and (max_chunks is None or done < max_chunks):
        start, t0 = time.perf_counter(), state.tick
        kernel, acc, healthy, out = _run_chunk(
            run_.config, plan, run_.target, state.kernel, state.acc, state.healthy, run_.key,
            run_.beta_flat, jnp.asarray(t0), run_.center, run_.gamma,
        )
        records = state.records
        lo, hi = max(t0, W), min(t0 + plan.chunk, ticks)
        if hi > lo:
            sl = slice(lo - t0, hi - t0)
            records = records + (jax.tree_util.tree_map(lambda a: to_host(a)[sl], out),)
        else:  # no draws to fetch: wait anyway, so that one chunk at most is in flight (a
            healthy.block_until_ready()  # Ctrl-C then waits for it alone, not a queued warm-up)
        state = RunState(kernel, acc, healthy, t0 + plan.chunk, records,
                         state.wall_time_s + time.perf_counter() - start, state.fingerprint)
        done += 1
        if bar is not None:
            bar.update(min(plan.chunk, ticks - t0))
            bar.set_postfix_str("warmup" if t0 + plan.chunk <= W else "sampling")
    return state


def finalize(run_: PreparedRun, state: RunState, interrupted: bool = False) -> Samples:
    """The :class:`Samples` of a run's state (its draws so far), with the state attached as
    ``samples.state`` so that the run can be continued (``RunOptions(resume=samples.state)``)."""
    B = 1 if run_.betas is None else run_.betas.size
    C = run_.num_chains
    healthy = to_host(state.healthy)
    ds = to_dataset(state.records, run_.betas if run_.betas is not None else np.ones(1), C,
                     run_.names, run_.plan, healthy, jax.tree_util.tree_map(to_host, state.acc))
    if run_.betas is None:
        ds = ds.isel(beta=0, drop=True)
    meta = dict(run_.meta)
    meta.update(num_draws=int(ds.sizes["draw"]), wall_time_s=state.wall_time_s,
                interrupted=interrupted, complete=run_.done(state))
    ds.attrs = clean_attrs(meta)
    unhealthy = B * C - int(healthy.sum())
    if unhealthy:
        warnings.warn(
            f"{unhealthy} of {B * C} (beta, chain) pairs went non-finite and are marked unhealthy; "
            "estimators exclude them",
            NumericalWarning,
            stacklevel=3,
        )
    if (meta["complete"] and not interrupted and meta.get("sampler") != "sgd" and "nll" in ds
            and ds.sizes["draw"] >= 4):  # SGD runs are no Markov chains with a target to converge to
        check_rungs(ds, healthy.reshape(B, C))
    samples = Samples(ds)
    samples.state = state
    return samples


def run(config, target: Target, betas, options: RunOptions, *, key, center=None,
        gamma: float = 0.0, sampler: str = "", attrs: dict | None = None,
        kernel_energy: bool = False, diagnose_every: int = 1) -> Samples:
    """Run ``config``'s kernel on every (β, chain) and return :class:`Samples`.

    ``betas=None`` runs without a β axis (the kernel sees β = 1; Samples dims chain × draw).
    ``options`` (:class:`RunOptions`): by default each chain starts at ``target.init(key_i)``;
    ``options.init`` is one point (broadcast) or has leading axes (num_betas, num_chains).
    ``kernel_energy`` records the kernel's own energy estimate (SGLD's minibatch Ĥ) as ``nll``.
    The kernel's ``diagnose`` runs at the recorded draws S−1, S−1−k, S−1−2k, ... ≥ 0 (S draws,
    k = ``diagnose_every``; the last draw always), NaN elsewhere; its PRNG stream is apart from
    the steps', so k changes neither the chains nor the diagnostics at the draws it keeps.
    A Ctrl-C ends the run when the chunk running finishes (:func:`deferred_sigint`; a second one
    at once) and returns the draws recorded so far (``attrs["interrupted"] = 1``; with none yet it
    raises ``KeyboardInterrupt``); the Samples carry their state (``samples.state``) for
    ``RunOptions(resume=...)``.
    """
    if options.checkpoint is not None and options.resume is None:
        from ..io import load_state

        options.check_reserved()
        saved = load_state(options.checkpoint)
        if saved is not None:
            options = options.replace(resume=saved)
    with deferred_sigint():  # a Ctrl-C ends the run between chunks (never lost, never mid-chunk)
        run_, state = prepare(config, target, betas, options, key=key, center=center, gamma=gamma,
                              sampler=sampler, attrs=attrs, kernel_energy=kernel_energy,
                              diagnose_every=diagnose_every)
        B = 1 if run_.betas is None else run_.betas.size
        bar = _progress_bar(run_.ticks, options.progress, f"{sampler} {B}β×{run_.num_chains}ch")
        bar.update(min(state.tick, run_.ticks))
        interrupted, chunks = False, 0
        try:
            while True:
                check_interrupt()  # a Ctrl-C during the set-up or the chunk just run
                if run_.done(state) or (options.max_chunks is not None and chunks >= options.max_chunks):
                    break
                state = advance(run_, state, 1, bar)  # a Ctrl-C inside keeps the last whole chunk
                chunks += 1
                if options.checkpoint is not None:
                    from ..io import save_state

                    save_state(options.checkpoint, state)
        except KeyboardInterrupt:
            if not state.records:
                bar.close()
                raise
            interrupted = True
            warnings.warn(
                f"sampling interrupted; returning the {sum(r['nll'].shape[0] for r in state.records)} "
                "draws recorded so far (attrs['interrupted'] = 1)",
                ConvergenceWarning,
                stacklevel=2,
            )
        bar.close()
        return finalize(run_, state, interrupted)


def _fingerprint(sampler, config, target, betas, num_chains, plan, gamma, center, key) -> tuple:
    """What a resumed run must share with the run that made its state (values, not objects):
    the kernel's numeric settings (ε, batch size, ...), the center and the hyperparameters by a
    SHA-256 of their bytes (a million-parameter center costs a hash, not a tuple of floats)."""
    import hashlib

    def digest(tree):
        h = hashlib.sha256()
        for x in jax.tree_util.tree_leaves(tree):
            h.update(np.ascontiguousarray(np.asarray(x)).tobytes())
        return h.hexdigest()

    settings = tuple((k, v) for k, v in getattr(config, "_asdict", dict)().items()
                     if v is None or isinstance(v, (bool, int, float, str)))
    return (sampler, type(config).__name__, settings, target.name, target.n, tuple(betas.tolist()),
            num_chains, plan, gamma, digest(center), digest(target.hyper),
            digest(jax.random.key_data(key)))


def _initial_positions(target, init, key, B, C):
    BC = B * C
    if init is None:
        return jax.vmap(target.init)(jax.random.split(key, BC))
    init = jax.tree_util.tree_map(jnp.asarray, init)
    ref = target.init(jax.random.PRNGKey(0))
    ref_shapes = [jnp.shape(x) for x in jax.tree_util.tree_leaves(ref)]
    leaves, treedef = jax.tree_util.tree_flatten(init)
    if treedef != jax.tree_util.tree_structure(ref):
        raise InvalidArgumentError(
            f"`init` must have the structure of the model's parameters {jax.tree_util.tree_structure(ref)}"
        )
    out = []
    for x, shape in zip(leaves, ref_shapes):
        if x.shape == shape:
            x = jnp.broadcast_to(x, (BC,) + shape)
        elif x.shape == (B, C) + shape:
            x = x.reshape((BC,) + shape)
        else:
            raise InvalidArgumentError(
                f"`init` leaf has shape {x.shape}; expected {shape} or {(B, C) + shape}"
            )
        out.append(x)
    return jax.tree_util.tree_unflatten(treedef, out)


class _NullBar:
    def update(self, *_):
        pass

    def set_postfix_str(self, *_):
        pass

    def close(self):
        pass


def _progress_bar(total, progress, desc):
    if not progress or not sys.stderr.isatty():
        return _NullBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False)
