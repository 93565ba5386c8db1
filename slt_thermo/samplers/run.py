"""The run driver: vmap a one-chain kernel over (β × chain), scan over steps in chunks.

Every sampler in :mod:`slt_thermo.samplers` describes itself by a hashable *config* whose
``build(target, center, gamma)`` returns a :class:`Kernel` for ONE chain. The driver

1. flattens the (β, chain) grid into one axis and vmaps the kernel over it, β traced;
2. runs warmup and sampling through ONE jit-compiled chunk function (a ``lax.scan`` over ticks:
   a tick is one kernel step during warmup and ``thinning`` steps while sampling), so a whole
   ladder costs one compile, and repeated runs with the same target and settings cost none;
3. after each chunk moves the recorded draws to the host and advances a tqdm bar, so a run
   that is interrupted (Ctrl-C) returns the draws it has, marked ``attrs["interrupted"] = 1``;
4. tracks per-chain health (non-finite position or energy ⇒ unhealthy) and the per-example
   log-likelihood accumulators (Welford mean/M2 and log-sum-exp) on device.

The PRNG stream of tick t is ``fold_in(key, t)``, so results do not depend on the chunk size.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ..errors import InvalidArgumentError
from ..results import RESERVED, Samples, clean_attrs
from ..target import Target, _check_key, check_beta


class Kernel(NamedTuple):
    """A one-chain transition kernel in the blackjax style (keys are arguments, never state)."""

    init: Callable  # (key, position, beta) -> state
    step: Callable  # (key, state, beta) -> state
    position: Callable  # state -> unconstrained position
    stats: Callable  # state -> dict[str, scalar] (ArviZ names)
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


def _positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidArgumentError(f"`{name}` must be an integer >= {minimum}, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------ compiled pieces
@partial(jax.jit, static_argnames=("config",))
def _init_states(config, target, u0, betas, keys, center, gamma):
    kernel = config.build(target, center, gamma)
    return jax.vmap(kernel.init)(keys, u0, betas)


def _update_acc(acc: Accumulators, ll):
    count = acc.count + 1
    delta = ll - acc.mean
    mean = acc.mean + delta / count
    m2 = acc.m2 + delta * (ll - mean)
    return Accumulators(mean, m2, jnp.logaddexp(acc.lse, ll), count)


@partial(jax.jit, static_argnames=("config", "plan"))
def _run_chunk(config, plan: Plan, target: Target, states, acc, healthy, key, betas, t0, center, gamma):
    kernel = config.build(target, center, gamma)
    W, S, thin = plan.num_warmup, plan.num_samples, plan.thinning
    num = betas.shape[0]

    def tick(carry, j):
        states, acc, healthy = carry
        t = t0 + j
        in_samp = (t >= W) & (t < W + S)
        n_inner = jnp.where(t < W, 1, jnp.where(in_samp, thin, 0))
        kt = jax.random.fold_in(key, t)

        def inner(i, st):
            keys = jax.random.split(jax.random.fold_in(kt, i), num)
            return jax.vmap(kernel.step)(keys, st, betas)

        states = jax.lax.fori_loop(0, n_inner, inner, states)
        w = jax.vmap(target.to_constrained)(jax.vmap(kernel.position)(states))

        def diagnose(_):
            keys = jax.random.split(jax.random.fold_in(kt, 0x7FFFFFFF), num)  # apart from step keys
            return jax.vmap(kernel.diagnose)(keys, states, betas)

        def record(acc):
            extra = {"log_prior": jax.vmap(target.log_prior)(w)}
            if kernel.diagnose is not None:
                if plan.diagnose_every == 1:
                    extra.update(diagnose(None))
                else:  # a real branch (scalar predicate): the skipped draws cost nothing
                    shapes = jax.eval_shape(diagnose, None)
                    nan = lambda _: jax.tree_util.tree_map(
                        lambda sd: jnp.full(sd.shape, jnp.nan, sd.dtype), shapes)
                    last = (W + S - 1 - t) % plan.diagnose_every == 0  # aligned to the last draw
                    extra.update(jax.lax.cond(last, diagnose, nan, None))
            if plan.keep_pointwise:
                ll = jax.vmap(target.log_likelihood)(w)
                acc, nll = _update_acc(acc, ll), -jnp.sum(ll, axis=1)
            if plan.kernel_energy:  # the kernel's own estimate; the full-data H is never built
                nll = jax.vmap(kernel.energy)(states)
            elif not plan.keep_pointwise:
                nll = jax.vmap(target.nll)(w)
            return acc, (nll, extra)

        def skip(acc):  # warmup or padding tick: same shapes as record, NaN values
            shapes = jax.eval_shape(record, acc)[1]
            return acc, jax.tree_util.tree_map(lambda sd: jnp.full(sd.shape, jnp.nan, sd.dtype), shapes)

        acc, (nll, extra) = jax.lax.cond(in_samp, record, skip, acc)
        healthy = healthy & jax.vmap(kernel.finite)(states) & (jnp.isfinite(nll) | ~in_samp)
        out = {"nll": nll, **extra, **jax.vmap(kernel.stats)(states)}
        if plan.keep_params:
            out["params"] = w
        return (states, acc, healthy), out

    (states, acc, healthy), out = jax.lax.scan(
        tick, (states, acc, healthy), jnp.arange(plan.chunk)
    )
    return states, acc, healthy, out


# ------------------------------------------------------------------------------ naming
def _leaf_names(tree) -> list[str]:
    paths = jax.tree_util.tree_flatten_with_path(tree)[0]
    names = []
    for path, _ in paths:
        parts = []
        for k in path:
            for attr in ("key", "name", "idx"):
                if hasattr(k, attr):
                    parts.append(str(getattr(k, attr)))
                    break
        names.append(".".join(parts) if parts else "w")
    for name in names:
        if name in RESERVED:
            raise InvalidArgumentError(
                f"parameter name `{name}` collides with a Samples variable; rename it"
            )
    return names


# ------------------------------------------------------------------------------ the driver
def run(
    config,
    target: Target,
    betas,
    *,
    num_chains: int,
    num_warmup: int,
    num_samples: int,
    key,
    thinning: int = 1,
    keep_params: bool = True,
    keep_pointwise: bool | None = None,
    init=None,
    center=None,
    gamma: float = 0.0,
    progress: bool = True,
    chunk_size: int | None = None,
    sampler: str = "",
    attrs: dict | None = None,
    kernel_energy: bool = False,
    diagnose_every: int = 1,
) -> Samples:
    """Run ``config``'s kernel on every (β, chain) and return :class:`Samples`.

    ``init`` is a params pytree in model space, either one point (broadcast to every chain) or
    with leading axes (num_betas, num_chains); by default each chain starts at
    ``target.init(key_i)``. ``keep_pointwise`` (default: True for data targets, False for
    population targets) keeps the per-example log-likelihood accumulators. ``kernel_energy``
    records the kernel's own energy estimate (SGLD's minibatch Ĥ) as ``nll``. The kernel's
    ``diagnose`` runs at the recorded draws S−1, S−1−k, S−1−2k, ... ≥ 0 (S draws, k =
    ``diagnose_every``; the last draw always), NaN elsewhere; its
    PRNG stream is apart from the steps', so k changes neither the chains nor the diagnostics at
    the draws it keeps.
    """
    if not isinstance(target, Target):
        raise InvalidArgumentError(
            f"`target` must be a slt_thermo.Target, got {type(target).__name__}; "
            "wrap your model with st.Target(model, data)"
        )
    _check_key(key)
    betas = validate_betas(betas)
    num_chains = _positive_int(num_chains, "num_chains")
    num_warmup = _positive_int(num_warmup, "num_warmup", 0)
    num_samples = _positive_int(num_samples, "num_samples")
    thinning = _positive_int(thinning, "thinning")
    diagnose_every = _positive_int(diagnose_every, "diagnose_every")
    gamma = float(gamma)
    if gamma < 0 or not math.isfinite(gamma):
        raise InvalidArgumentError(f"`gamma` must be finite and >= 0, got {gamma}")
    if gamma > 0 and center is None:
        raise InvalidArgumentError("`gamma` > 0 localizes around `center`: pass center=w_star")
    if keep_pointwise is None:
        keep_pointwise = not target.is_population
    if keep_pointwise and target.is_population:
        raise InvalidArgumentError("`keep_pointwise` needs data; population targets have none")

    B, C = betas.size, num_chains
    BC = B * C
    ticks = num_warmup + num_samples
    chunk = chunk_size or max(1, min(ticks, math.ceil(ticks / 20), 250))
    chunk = _positive_int(chunk, "chunk_size")
    plan = Plan(num_warmup, num_samples, thinning, chunk, bool(keep_params), bool(keep_pointwise),
                bool(kernel_energy), diagnose_every)

    key_init, key_kernel, key_run = jax.random.split(key, 3)
    positions = _initial_positions(target, init, key_init, B, C)
    u0 = jax.jit(jax.vmap(target.to_unconstrained))(positions)
    beta_flat = jnp.repeat(jnp.asarray(betas, dtype=jnp.result_type(float)), C)
    cvals = None if center is None else jax.tree_util.tree_map(jnp.asarray, center)
    states = _init_states(config, target, u0, beta_flat, jax.random.split(key_kernel, BC), cvals, gamma)

    n_acc = target.n if keep_pointwise else 0
    dt = jnp.result_type(float)
    acc = Accumulators(
        jnp.zeros((BC, n_acc), dt), jnp.zeros((BC, n_acc), dt),
        jnp.full((BC, n_acc), -jnp.inf, dt), jnp.zeros((), dt),
    )
    healthy = jnp.ones((BC,), bool)

    records: list[dict] = []
    interrupted = False
    bar = _progress_bar(ticks, progress, f"{sampler} {B}β×{C}ch")
    t0 = 0
    start = time.perf_counter()
    try:
        while t0 < ticks:
            states, acc, healthy, out = _run_chunk(
                config, plan, target, states, acc, healthy, key_run, beta_flat,
                jnp.asarray(t0), cvals, gamma,
            )
            lo, hi = max(t0, num_warmup), min(t0 + chunk, ticks)
            if hi > lo:
                sl = slice(lo - t0, hi - t0)
                records.append(jax.tree_util.tree_map(lambda a: np.asarray(a[sl]), out))
            bar.update(min(chunk, ticks - t0))
            bar.set_postfix_str("warmup" if t0 + chunk <= num_warmup else "sampling")
            t0 += chunk
    except KeyboardInterrupt:
        if not records:
            bar.close()
            raise
        interrupted = True
        warnings.warn(
            f"sampling interrupted; returning the {sum(r['nll'].shape[0] for r in records)} "
            "draws recorded so far (attrs['interrupted'] = 1)",
            stacklevel=2,
        )
    bar.close()
    wall = time.perf_counter() - start

    names = _leaf_names(positions)
    ds = _to_dataset(records, betas, C, names, plan, np.asarray(healthy), acc)
    meta = {
        "n": target.n,
        "target": target.name,
        "population": target.is_population,
        "sampler": sampler,
        "num_warmup": num_warmup,
        "num_samples": num_samples,
        "thinning": thinning,
        "num_draws": int(ds.sizes["draw"]),
        "gamma": gamma,
        "localized": center is not None,
        "interrupted": interrupted,
        "wall_time_s": wall,
        "param_names": ",".join(names if keep_params else []),
        "slt_thermo_version": _version(),
    }
    model = target.model
    for attr in ("rlct", "multiplicity"):
        try:
            value = getattr(model, attr, None)
        except Exception:  # truth not known for these settings
            value = None
        if value is not None:
            meta[f"true_{attr}"] = str(value)
    meta.update(attrs or {})
    ds.attrs = clean_attrs(meta)
    unhealthy = BC - int(np.asarray(healthy).sum())
    if unhealthy:
        warnings.warn(
            f"{unhealthy} of {BC} (beta, chain) pairs went non-finite and are marked unhealthy; "
            "estimators exclude them",
            stacklevel=2,
        )
    return Samples(ds)


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


def _to_dataset(records, betas, C, names, plan, healthy, acc) -> xr.Dataset:
    B = betas.size
    cat = {}
    if records:
        cat = jax.tree_util.tree_map(lambda *xs: np.concatenate(xs, axis=0), *records)
    S = cat["nll"].shape[0] if records else 0

    def grid(a):  # (S, BC, ...) -> (B, C, S, ...)
        a = np.asarray(a).reshape((S, B, C) + a.shape[2:])
        return np.moveaxis(a, 0, 2)

    coords = {"beta": betas, "chain": np.arange(C), "draw": np.arange(S)}
    data_vars = {}
    if records:
        data_vars["nll"] = (("beta", "chain", "draw"), grid(cat["nll"]))
        for k, v in cat.items():
            if k in ("nll", "params"):
                continue
            data_vars[k] = (("beta", "chain", "draw"), grid(v))
        if plan.keep_params:
            for name, leaf in zip(names, jax.tree_util.tree_leaves(cat["params"])):
                g = grid(leaf)
                dims = ("beta", "chain", "draw") + tuple(f"{name}_dim_{i}" for i in range(g.ndim - 3))
                data_vars[name] = (dims, g)
    else:
        data_vars["nll"] = (("beta", "chain", "draw"), np.zeros((B, C, 0)))
    data_vars["healthy"] = (("beta", "chain"), healthy.reshape(B, C))
    if plan.keep_pointwise:
        for name, arr in zip(("loglik_mean", "loglik_m2", "loglik_logsumexp"), acc[:3]):
            a = np.asarray(arr)
            data_vars[name] = (("beta", "chain", "example"), a.reshape((B, C, a.shape[-1])))
    return xr.Dataset(data_vars, coords=coords)


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


def _version():
    try:
        from importlib.metadata import version

        return version("slt-thermo")
    except Exception:
        return "unknown"
