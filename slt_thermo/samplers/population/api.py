"""The public functions: :func:`population_annealing`, :func:`ais`, :func:`bdmc`.

All three validate and set up a run through one path (:func:`_prepare`: target and key, run
options, particle counts, sweeps, their own settings, the initial particles, the move), then run
the rung loop of :mod:`.anneal`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ...errors import InvalidArgumentError
from ..._target_inputs import check_key
from ...target import Target
from ..._utils import num_params, positive_int
from ..records import check_names, leaf_names
from ..run import RunOptions
from .anneal import AnnealState, _anneal
from .moves import MOVES, _MoveArgs, _resolve_move, _Spec
from .resampling import SCHEMES
from .results import AnnealingResult, BDMCResult, _bdmc_result
from .rung import _dtype


# ============================================================================== checks
def _annealing_options(options, progress, init_particles, *, resumable=True) -> RunOptions:
    """The RunOptions of an annealing call (keywords over ``options``), checked."""
    opts = RunOptions.merge(options, progress=progress, init=init_particles)
    opts.check_reserved()
    if not resumable and (opts.max_chunks is not None or opts.resume is not None):
        raise InvalidArgumentError(
            "bdmc runs its forward and reverse passes whole: `RunOptions.max_chunks` and "
            "`resume` apply to population_annealing and ais")
    if opts.chunk_size is not None:  # refused rather than silently ignored (issue 24)
        raise InvalidArgumentError(
            "annealing advances one rung at a time (`max_chunks` counts rungs): `RunOptions.chunk_size` "
            "does not apply")
    if opts.max_chunks is not None:
        positive_int(opts.max_chunks, "max_chunks")
    if opts.resume is not None and not isinstance(opts.resume, AnnealState):
        raise InvalidArgumentError(
            "`resume` must be the AnnealState of an earlier run with the same arguments "
            f"(result.state), got {type(opts.resume).__name__}")
    return opts


def _check_target(target, key):
    if not isinstance(target, Target):
        raise InvalidArgumentError(f"`target` must be a slt_thermo.Target, got {type(target).__name__}")
    check_key(key)
    check_names(leaf_names(target.init(jax.random.PRNGKey(0))), target.observable_names)


def _dim(target) -> int:
    return num_params(target.init(jax.random.PRNGKey(0)))


def _check_ladder(betas):
    b = np.atleast_1d(np.asarray(betas, dtype=float))
    if b.ndim != 1 or b.size < 1 or not np.all(np.isfinite(b)) or np.any(b < 0):
        raise InvalidArgumentError(f"`betas` must be a 1-D sequence of finite numbers >= 0, got {betas!r}")
    if b[0] != 0.0:
        b = np.concatenate([[0.0], b])
    if b.size < 2 or np.any(np.diff(b) <= 0):
        raise InvalidArgumentError(
            "`betas` must increase strictly from 0 (β = 0 is prepended when missing), e.g. "
            "st.ladder.power(20)")
    return b


def _check_schedule(betas, resampling, target_ess, max_rungs, beta_max):
    """population_annealing's own settings, checked: (betas or None, beta_max, max_rungs)."""
    if resampling not in SCHEMES:
        raise InvalidArgumentError(f"`resampling` must be one of {SCHEMES}, got {resampling!r}")
    if not 0 < target_ess < 1:
        raise InvalidArgumentError(f"`target_ess` must be in (0, 1), got {target_ess!r}")
    max_rungs = positive_int(max_rungs, "max_rungs")
    if not (beta_max > 0 and math.isfinite(beta_max)):
        raise InvalidArgumentError(f"`beta_max` must be a positive number, got {beta_max!r}")
    if betas is None:
        return None, float(beta_max), max_rungs
    betas = _check_ladder(betas)
    return betas, float(betas[-1]), max_rungs


# ============================================================================== initial particles
def _particle_leaves(name, given, ref, shapes):
    """The leaves of the pytree ``given`` (structure of ``ref``), each reshaped by
    ``shapes(x, shape)`` (None: not an accepted shape, a message is raised)."""
    p = jax.tree_util.tree_map(jnp.asarray, given)
    if jax.tree_util.tree_structure(p) != jax.tree_util.tree_structure(ref):
        raise InvalidArgumentError(
            f"`{name}` must have the structure of the model's parameters {jax.tree_util.tree_structure(ref)}")
    out = [shapes(x, jnp.shape(r)) for x, r in zip(jax.tree_util.tree_leaves(p), jax.tree_util.tree_leaves(ref))]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(ref), out)


def _initial_particles(target, key, M, R, init_particles, exact_sampler):
    """Model-space particles with leading axes (M, R), drawn exactly from the prior."""
    if init_particles is not None:

        def shapes(x, shape):
            if x.shape == (R,) + shape:
                if M != 1:
                    raise InvalidArgumentError(
                        f"`init_particles` has {R} particles for {M} runs; give shape "
                        f"{(M, R) + shape} (an independent prior sample per run)")
                return jnp.broadcast_to(x, (M, R) + shape)
            if x.shape != (M, R) + shape:
                raise InvalidArgumentError(
                    f"`init_particles` leaf has shape {x.shape}; expected {(R,) + shape} (one run) "
                    f"or {(M, R) + shape}")
            return x

        return _particle_leaves("init_particles", init_particles, target.init(jax.random.PRNGKey(0)), shapes)
    if exact_sampler is not None:
        keys = jax.random.split(key, M)
        return jax.vmap(lambda k: exact_sampler(k, jnp.zeros(()), R))(keys)
    try:
        return target.sample_prior(key, (M, R))  # M·R keys split from `key`, one per draw
    except InvalidArgumentError as err:
        raise InvalidArgumentError(
            f"annealing starts from exact prior draws, but the target {target.name!r} cannot draw "
            "from its prior (its `init` is not a prior draw). Give the model a `sample_prior(key)` "
            "method, build the target with `Target.from_functions(..., sample_prior=fn)`, or pass "
            f"`init_particles=` (model-space params with leading axis num_particles = {R}, drawn "
            "from the prior)") from err


def _exact_sample_particles(target, exact_sample, N):
    """``exact_sample`` (one params pytree or leading axis N) as particles (1, N, ...)."""

    def shapes(x, shape):
        if x.shape == shape:
            x = jnp.broadcast_to(x, (1, N) + shape)
        elif x.shape == (N,) + shape:
            x = x[None]
        else:
            raise InvalidArgumentError(
                f"`exact_sample` leaf has shape {x.shape}; expected {shape} or {(N,) + shape}")
        return x.astype(_dtype())

    return _particle_leaves("exact_sample", exact_sample, target.init(jax.random.PRNGKey(0)), shapes)


# ============================================================================== the shared set-up
class _Setup(NamedTuple):
    """A checked, prepared annealing call."""

    options: RunOptions
    num_particles: int  # R (PA) / N (AIS, BDMC) per run
    num_runs: int
    sweeps: int
    settings: Any  # what the method's own check returned
    key: jax.Array  # the rung loop's key
    params0: Any  # model-space initial particles (run, particle, ...)
    spec: _Spec


def _prepare(target, key, move: _MoveArgs, *, options, progress, init_particles, num, num_name,
             num_runs, mcmc_steps, scheme, check=None, start=None, resumable=True) -> _Setup:
    """The validation and set-up shared by population_annealing, ais and bdmc, in this order:
    target and key, options, particle counts, sweeps, ``check()`` (the method's own settings),
    the initial particles, the move.

    The initial particles are ``start(num)`` when given (BDMC's reverse pass: the key is then
    the caller's, returned as is), else ``init_particles`` or exact prior draws made with the
    first half of ``key`` (the second half is returned for the rung loop)."""
    _check_target(target, key)
    opts = _annealing_options(options, progress, init_particles, resumable=resumable)
    R = positive_int(num, num_name, 2)
    M = positive_int(num_runs, "num_runs")
    sweeps = positive_int(mcmc_steps, "mcmc_steps", 0)
    settings = None if check is None else check()
    if start is None:
        k_init, key = jax.random.split(key)
        params0 = _initial_particles(target, k_init, M, R, opts.init, move.exact_sampler)
    else:
        params0 = start(R)
    spec = _resolve_move(move, dim=_dim(target), num_particles=R, scheme=scheme)
    return _Setup(opts, R, M, sweeps, settings, key, params0, spec)


def _run(target, s: _Setup, *, betas, beta_max, method, attrs, **kwargs) -> AnnealingResult:
    """The rung loop of a prepared call (``kwargs``: target_ess, max_rungs, BDMC's extras)."""
    kwargs.setdefault("target_ess", 0.5)
    kwargs.setdefault("max_rungs", None if betas is None else len(betas))
    return _anneal(target, s.spec, betas=betas, beta_max=beta_max, num_runs=s.num_runs, key=s.key,
                   params0=s.params0, sweeps=s.sweeps, progress=s.options.progress, method=method,
                   attrs=attrs, devices=s.options.devices, checkpoint=s.options.checkpoint, **kwargs)


# ============================================================================== public
def population_annealing(
    target: Target,
    *,
    num_particles: int,
    key,
    betas=None,
    mcmc="hmc",
    mcmc_steps: int = 2,
    resampling: str = "systematic",
    num_runs: int = 1,
    max_rungs: int = 1000,
    target_ess: float = 0.5,
    beta_max: float = 1.0,
    num_leapfrog: int | None = None,
    max_leapfrog: int = 32,
    target_accept: float | None = None,
    precondition: str = "auto",
    max_tree_depth: int = 6,
    init_particles=None,
    exact_sampler: Callable | None = None,
    progress: bool | None = None,
    options: RunOptions | None = None,
) -> AnnealingResult:
    """Population annealing from the prior (β = 0) to ``beta_max``, with log Z at every rung.

    Args:
        target: the :class:`~slt_thermo.Target` (data or population).
        num_particles: R, the population size of each run.
        key: JAX PRNG key.
        betas: a fixed increasing ladder (β = 0 prepended when missing), or None for the adaptive
            schedule: each Δβ is found by bisection so that the weight ESS of the update is
            ``target_ess``·R (the worst of the runs, so all runs share one ladder), with at most
            ``max_rungs`` steps; a stall raises :class:`AnnealingStalledError` (an
            :class:`~slt_thermo.SLTThermoError`) carrying the partial result.
        mcmc: ``"hmc"`` | ``"mala"`` | ``"nuts"`` (population-tuned kernels, see the module
            docstring) or a sampler config with ``.build(target, center, gamma)``.
        mcmc_steps: MCMC sweeps per particle per rung (HMC: trajectories); doubled, up to 8×,
            while the families collapse faster than perfect mixing predicts (``rungs["sweeps"]``).
        resampling: ``"systematic"`` (default, lowest variance), ``"multinomial"`` or
            ``"residual"``.
        num_runs: independent runs (vmapped), combined by Machta's weighted averaging.
        num_leapfrog: HMC leapfrog steps per trajectory (default ⌈(π/2)/ε⌉ ≤ ``max_leapfrog``).
        target_accept: acceptance targeted by the step-size tuning (HMC/NUTS 0.8, MALA 0.574).
        precondition: ``"auto"`` (dense when dim ≤ 64 and R ≥ 4·dim, else diagonal),
            ``"dense"``, ``"diag"`` or ``"none"``.
        init_particles: prior draws in model space, leading axis R (or (num_runs, R)); default
            ``target.sample_prior`` (the model's ``sample_prior``, ``from_functions(...,
            sample_prior=fn)``, or a numpyro model's priors; required when the target has none:
            its ``init`` is not a prior draw). Overrides ``options.init``.
        exact_sampler: ``(key, beta, num) -> params`` exact draws from p^β (perfect transitions).
        progress: show a progress bar over the rungs (default ``options.progress``, True).
        options: a :class:`~slt_thermo.RunOptions`; read here: ``progress``, ``init`` (the
            initial particles), ``max_chunks`` (stop after that many rungs of this call and
            return what there is, ``attrs["complete"] = 0``) and ``resume`` (an
            :class:`AnnealState`, ``result.state`` of an earlier call with the same arguments
            and key: continues it, with exactly the numbers of an uninterrupted run).

    Returns:
        :class:`AnnealingResult`; ``result.log_z`` / ``result.free_energy`` are Estimates at
        β_max, ``result.rungs`` the per-rung curves (and the target's observables),
        ``result.samples`` the final population, ``result.state`` its :class:`AnnealState`.
    """
    move = _MoveArgs(mcmc, exact_sampler, num_leapfrog, max_leapfrog, target_accept, precondition,
                     max_tree_depth)
    s = _prepare(target, key, move, options=options, progress=progress, init_particles=init_particles,
                 num=num_particles, num_name="num_particles", num_runs=num_runs, mcmc_steps=mcmc_steps,
                 scheme=resampling,
                 check=lambda: _check_schedule(betas, resampling, target_ess, max_rungs, beta_max))
    betas, beta_max, max_rungs = s.settings
    attrs = {"mcmc_steps": s.sweeps, "adaptive": betas is None, "target_ess": target_ess,
             "max_rungs": max_rungs, "target_accept": s.spec.target_accept}
    return _run(target, s, betas=betas, beta_max=beta_max, target_ess=target_ess, max_rungs=max_rungs,
                method="population_annealing", attrs=attrs, max_chunks=s.options.max_chunks,
                resume=s.options.resume)


def ais(
    target: Target,
    *,
    betas,
    num_chains: int,
    key,
    mcmc="hmc",
    mcmc_steps: int = 2,
    num_runs: int = 1,
    num_leapfrog: int | None = None,
    max_leapfrog: int = 32,
    target_accept: float | None = None,
    precondition: str = "auto",
    max_tree_depth: int = 6,
    init_particles=None,
    exact_sampler: Callable | None = None,
    progress: bool | None = None,
    options: RunOptions | None = None,
) -> AnnealingResult:
    """Annealed importance sampling (Neal 2001) / Jarzynski along a fixed ladder from β = 0.

    x_0 ~ φ exactly; for each rung, log w += −Δβ_k H(x_{k−1}), then x_k ~ T_k(x_{k−1}, ·) leaving
    p^{β_k} invariant (the kernels of :func:`population_annealing`, tuned from the weighted
    population). log Ẑ = log mean_i w_i (unbiased Ẑ; a stochastic lower bound for log Z);
    ``result.log_weights`` holds the final per-chain log weights (their mean is the lower bound
    of the BDMC sandwich), ``rungs["ess"]`` the weight ESS at every rung, and the standard error
    of log Ẑ is the delta method √(1/ESS − 1/N). Arguments (``options`` included: progress,
    init, max_chunks, resume) as in :func:`population_annealing`.
    """
    move = _MoveArgs(mcmc, exact_sampler, num_leapfrog, max_leapfrog, target_accept, precondition,
                     max_tree_depth)
    s = _prepare(target, key, move, options=options, progress=progress, init_particles=init_particles,
                 num=num_chains, num_name="num_chains", num_runs=num_runs, mcmc_steps=mcmc_steps,
                 scheme="none", check=lambda: _check_ladder(betas))
    attrs = {"mcmc_steps": s.sweeps, "adaptive": False, "target_accept": s.spec.target_accept}
    return _run(target, s, betas=s.settings, beta_max=float(s.settings[-1]), method="ais",
                attrs=attrs, max_chunks=s.options.max_chunks, resume=s.options.resume)


def bdmc(
    target: Target,
    *,
    betas,
    num_chains: int,
    exact_sample,
    key,
    mcmc="hmc",
    mcmc_steps: int = 2,
    num_leapfrog: int | None = None,
    max_leapfrog: int = 32,
    target_accept: float | None = None,
    precondition: str = "auto",
    max_tree_depth: int = 6,
    init_particles=None,
    exact_sampler: Callable | None = None,
    progress: bool | None = None,
    options: RunOptions | None = None,
) -> BDMCResult:
    """Bidirectional Monte Carlo: forward AIS (lower bound) and reverse AIS (upper bound).

    ``exact_sample`` is an exact draw from the posterior p^{β_max} in model space: one params
    pytree (every reverse chain starts there) or a pytree with leading axis ``num_chains``. For
    simulated data it is the θ* the data were drawn from (θ* ~ φ, D ~ p(·|θ*)); a fixed teacher
    is NOT such a draw unless it was drawn from the prior.

    The reverse chains anneal β from β_max to 0, accumulating log w_rev += Δβ_k H(x_k); E[w_rev] =
    1/Z, so E[−log w_rev] ≥ log Z. The population-tuned kernels of the reverse pass reuse the
    forward pass's tuning at each β (the reverse population starts collapsed on θ*), so they are
    fixed, exactly invariant kernels. ``options`` (a :class:`~slt_thermo.RunOptions`) gives
    ``progress`` and ``init`` (the forward pass's initial particles; ``init_particles`` wins);
    both passes run whole (``max_chunks`` / ``resume`` raise).
    """
    move = _MoveArgs(mcmc, exact_sampler, num_leapfrog, max_leapfrog, target_accept, precondition,
                     max_tree_depth)
    rev = _prepare(target, key, move, options=options, progress=progress, init_particles=init_particles,
                   num=num_chains, num_name="num_chains", num_runs=1, mcmc_steps=mcmc_steps,
                   scheme="none", check=lambda: _check_ladder(betas), resumable=False,
                   start=lambda N: _exact_sample_particles(target, exact_sample, N))
    betas, N = rev.settings, rev.num_particles
    k_fwd, k_rev = jax.random.split(key)
    fwd = ais(target, betas=betas, num_chains=N, key=k_fwd, mcmc_steps=mcmc_steps,
              init_particles=rev.options.init, progress=rev.options.progress, **move._asdict())

    # reverse: from the exact posterior sample(s), with the forward pass's tuning at each β
    rev_betas = betas[::-1].copy()
    tunings = None
    if rev.spec.kind in MOVES:
        rev = rev._replace(spec=rev.spec._replace(adapt=False))
        # forward rung j moved at betas[j]; reverse rung k moves at rev_betas[k + 1] = betas[K-1-k]
        K = len(betas) - 1
        tunings = [fwd.tuning[max(K - 1 - k, 1)] for k in range(K)]
    back = _run(target, rev._replace(key=k_rev), betas=rev_betas, beta_max=float(rev_betas[-1]),
                method="ais_reverse", attrs={"mcmc_steps": rev.sweeps, "adaptive": False},
                tunings=tunings, start_beta=float(rev_betas[0]))
    return _bdmc_result(fwd, back)
