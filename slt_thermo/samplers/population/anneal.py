"""The rung loop: an explicit :class:`AnnealState` advanced rung by rung (begin / step / done).

Rung k draws its keys from ``fold_in(key, k)``, so a run stopped after k rungs and resumed from its
state gives exactly the numbers of an uninterrupted run, for fixed and adaptive ladders alike. The
adaptive ladder picks each Δβ by bisection on the weight ESS of the update.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import logsumexp as _np_logsumexp

from ...errors import ConvergenceWarning, InvalidArgumentError, NumericalError, NumericalWarning, SLTThermoError
from ...target import Target
from ..run import _progress_bar
from .moves import _Spec
from .results import _collect, rho_f_increments
from .rung import _dtype, _flatten_particles, _rung, _start
from .tuning import _initial_eps


COLLAPSE_RATIO = 1.5  # population annealing doubles its sweeps while ρ_t − 1 > this × ρ_f ...
MAX_SWEEP_FACTOR = 8  # ... up to this many times mcmc_steps, and warns if that was not enough


class AnnealingStalledError(SLTThermoError):
    """The adaptive schedule could not reach β_max: Δβ underflowed or ``max_rungs`` was hit.

    ``partial`` holds the :class:`AnnealingResult` up to the last rung reached.
    """

    def __init__(self, message, partial=None):
        super().__init__(message)
        self.partial = partial


class AnnealState(NamedTuple):
    """Everything the rung loop of :func:`population_annealing` / :func:`ais` needs to continue
    (``result.state``). Pass it back as ``RunOptions(resume=state)`` with the same arguments and
    key to continue exactly where it stopped (``fingerprint`` refuses any other run).

    ``particles`` is the device state of every run (flat unconstrained positions (run, R, D),
    energies, log weights, families, log step size); ``cols`` the per-rung host columns (each a
    tuple with one (run, ...) array per rung reached); ``log_z`` (run,) log Ẑ_r at β_k (AIS:
    log mean_i w_i), ``offset`` (run,) the host offset of AIS's relative log weights,
    ``var_within`` (run,) the delta-method variance of log Ẑ_r; ``tuning`` the tuning used at
    each rung (None at β_0); ``k`` the rungs done, ``beta`` = β_k, ``wall_time_s`` the time
    spent in the rung loop so far.
    """

    particles: Any
    ladder: tuple
    cols: dict
    log_z: np.ndarray
    offset: np.ndarray
    var_within: np.ndarray
    tuning: tuple
    k: int
    beta: float
    wall_time_s: float
    fingerprint: tuple


class _Ctx(NamedTuple):
    """The fixed context of an annealing run: what every rung needs besides the AnnealState."""

    target: Target
    spec: _Spec
    template: Any  # unconstrained params of one particle (structure for ravel/unravel)
    betas: np.ndarray | None  # the fixed ladder, or None (adaptive)
    beta_max: float
    target_ess: float
    max_rungs: int
    num_runs: int
    sweeps: int
    tunings: Any  # per-rung tuning given (BDMC's reverse pass), or None
    method: str
    attrs: dict
    key_rungs: jax.Array  # rung k uses fold_in(key_rungs, k)
    key_final: jax.Array  # AIS: the final equal-weight resampling


def _next_dbeta(H, beta, beta_max, target_ess):
    """Largest Δβ ≤ β_max − β whose weight ESS fraction (worst run) is ≥ target_ess (bisection)."""
    H = np.asarray(H, dtype=np.float64)
    H = np.where(np.isfinite(H), H, np.inf)
    finite = np.isfinite(H).sum(axis=1)
    if np.any(finite == 0):
        raise NumericalError(f"every particle of a run has a non-finite energy at β = {beta:.6g}")
    X = H - H.min(axis=1, keepdims=True)

    def frac(d):
        lw = np.where(np.isfinite(X), -d * X, -np.inf)
        ess = np.exp(2 * _np_logsumexp(lw, axis=1) - _np_logsumexp(2 * lw, axis=1))
        return float(np.min(ess / finite))

    hi = beta_max - beta
    if frac(hi) >= target_ess:
        return hi
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if frac(mid) >= target_ess:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-7 * hi:
            break
    return lo


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        h.update(str((a.dtype, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _fingerprint(ctx: _Ctx, key, u0, start_beta) -> tuple:
    """The settings, key, initial particles and hyperparameters of a run (plain values only)."""
    spec = ctx.spec
    sampler = spec.exact_sampler
    spec_id = spec._replace(config=repr(spec.config),
                            exact_sampler=getattr(sampler, "__qualname__", repr(sampler)))
    ladder = None if ctx.betas is None else tuple(float(b) for b in ctx.betas)
    hyper = jax.tree_util.tree_leaves(ctx.target.hyper)
    return (ctx.method, ctx.target.name, ctx.target.n, tuple(spec_id), ladder, ctx.beta_max,
            ctx.target_ess, ctx.max_rungs, ctx.num_runs, ctx.sweeps, float(start_beta),
            ctx.tunings is not None, _digest(jax.random.key_data(key)), _digest(u0),
            _digest(*hyper))


def _push(cols, s, log_z, var_within, M, ess=None, ess_inc=None, acc=None, eps=None, grads=None, sweeps=0):
    """``cols`` with one more rung (a new dict of tuples: the AnnealState is never mutated)."""
    nan = np.full(M, np.nan)
    row = {"E_run": s["E"], "Var_run": s["Var"], "E_var_run": s["E_var"], "sweeps": np.full(M, sweeps),
           **{k: s[k] for k in ("families", "families_eff", "rho_t", "nonfinite")},
           "ess": nan if ess is None else ess, "ess_inc": nan if ess_inc is None else ess_inc,
           "acceptance_rate": nan if acc is None else acc, "step_size": nan if eps is None else eps,
           "grad_evals": np.zeros(M) if grads is None else grads,
           "log_z_run": log_z, "var_within": var_within}
    for k in ("obs_mean", "obs_mean_var", "obs_cov"):
        if k in s:
            row[k + "_run"] = s[k]
    return {k: cols.get(k, ()) + (np.array(v, float),) for k, v in row.items()}


def _anneal_begin(ctx: _Ctx, u0, start_beta, fingerprint) -> AnnealState:
    """The state at β_0: every run's particles with their energies (and observables)."""
    M = ctx.num_runs
    log_eps0 = math.log(_initial_eps(ctx.spec.kind, u0.shape[-1]))
    particles, s0 = _start(ctx.spec, ctx.target, ctx.template, u0, log_eps0)
    zeros = np.zeros(M)
    cols = _push({}, jax.device_get(s0), zeros, zeros, M)
    return AnnealState(particles, (float(start_beta),), cols, zeros, zeros, zeros, (None,), 0,
                       float(start_beta), 0.0, fingerprint)


def _check_alive(ctx: _Ctx, st: AnnealState) -> None:
    """Raise :class:`~slt_thermo.errors.NumericalError` when a run has no particle left with a
    finite energy and a non-zero weight: its log Ẑ and rung statistics would be NaN."""
    H, logw = np.asarray(st.particles.H), np.asarray(st.particles.logw)
    alive = np.sum(np.isfinite(H) & np.isfinite(logw), axis=1)
    dead = np.flatnonzero(alive == 0)
    if dead.size:
        raise NumericalError(
            f"{ctx.method}: every particle of run {int(dead[0])} has a non-finite energy (or zero "
            f"weight) at β = {st.beta:.6g}, so there is nothing finite to estimate from; the "
            "log-likelihood (or the prior's support) is NaN/inf wherever the particles are: check "
            "the model and the initial particles")


def _warn_nonfinite(rungs) -> None:
    """One :class:`~slt_thermo.NumericalWarning` summing up the particles whose energy was
    non-finite (``rungs["num_nonfinite"]``, run × beta), when there were any."""
    counts = rungs["num_nonfinite"].values
    total = int(counts.sum())
    if not total:
        return
    worst = counts.max(axis=0)
    k = int(np.argmax(worst))
    warnings.warn(
        f"{rungs.attrs['method']}: {total} non-finite particle energies at {int((worst > 0).sum())} of "
        f"{counts.shape[1]} rungs (at most {int(worst[k])} of the {rungs.attrs['num_particles']} "
        f"particles of a run, at β = {float(rungs['beta'][k]):.4g}); those particles got zero weight "
        "and were dropped from log Z and the rung statistics (rungs['num_nonfinite'])",
        NumericalWarning, stacklevel=5)


def _anneal_done(ctx: _Ctx, st: AnnealState) -> bool:
    if ctx.betas is not None:
        return st.k + 1 >= len(ctx.betas)
    return st.beta >= ctx.beta_max


def _next_beta(ctx: _Ctx, st: AnnealState) -> float:
    """β of the next rung: the ladder's, or the adaptive one (raises AnnealingStalledError)."""
    if ctx.betas is not None:
        return float(ctx.betas[st.k + 1])
    beta, beta_max = st.beta, ctx.beta_max
    if st.k >= ctx.max_rungs:
        raise AnnealingStalledError(
            f"adaptive annealing hit max_rungs = {ctx.max_rungs} at β = {beta:.6g} < "
            f"{beta_max:g}; raise `max_rungs`, lower `target_ess` (now {ctx.target_ess}) or "
            "give a fixed ladder `betas`")
    d = _next_dbeta(np.asarray(st.particles.H), beta, beta_max, ctx.target_ess)
    new = beta_max if d >= beta_max - beta else beta + d
    if not (d > 0 and new > beta):
        raise AnnealingStalledError(
            f"adaptive annealing stalled at β = {beta:.6g}: Δβ underflowed (the weight "
            f"ESS falls below {ctx.target_ess}·R for every representable Δβ; check for "
            "non-finite or huge energies)")
    return new


def _log_z_update(spec: _Spec, s, st: AnnealState, dbeta, R):
    """(log_z, offset, var_within, ESS used) after a rung, from its device statistics ``s``."""
    h_ref = np.asarray(s["h_ref"], np.float64)
    if spec.scheme != "none":  # PA: log Ẑ += log Q
        log_q = np.asarray(s["lse_inc"], np.float64) - math.log(R) - dbeta * h_ref
        ess_used = np.asarray(s["ess_inc"], float)
        var_within = st.var_within + np.maximum(1.0 / ess_used - 1.0 / R, 0.0)
        return st.log_z + log_q, st.offset, var_within, ess_used
    base = st.offset - dbeta * h_ref  # AIS: log mean w over the relative log weights
    log_z = base + np.asarray(s["lse_w"], np.float64) - math.log(R)
    offset = base + np.asarray(s["shift"], np.float64)
    ess_used = np.asarray(s["ess"], float)
    return log_z, offset, np.maximum(1.0 / ess_used - 1.0 / R, 0.0), ess_used


def family_collapse(cols, R) -> tuple[float, float]:
    """(ρ_t − 1, ρ_f) at the last rung, means over runs: the family statistic of the final
    population (ρ_t = R Σ_j ν_j², ν_j the weight descended from initial particle j) and its
    perfect-mixing value from the weights alone, ρ_f = Σ_l (R/ESS_l − 1) (REFERENCE §3.1). With
    moves that decorrelate a particle from its family the two agree (Wang, Machta & Katzgraber
    2015); ρ_t − 1 > COLLAPSE_RATIO·ρ_f says the families die faster: the moves mix too little."""
    rho_f = np.sum(rho_f_increments(np.stack(cols["ess_inc"], axis=1), R), axis=1)
    return float(np.mean(cols["rho_t"][-1]) - 1.0), float(np.mean(rho_f))


def _collapsing(ctx: _Ctx, st: AnnealState) -> tuple[float, float] | None:
    """(ρ_t − 1, ρ_f) when population annealing's families die faster than perfect mixing
    predicts (ρ_t − 1 > COLLAPSE_RATIO·ρ_f, :func:`family_collapse`), else None (always for AIS
    and for runs without sweeps)."""
    if ctx.method != "population_annealing" or ctx.sweeps == 0 or st.k == 0:
        return None
    rho_t, rho_f = family_collapse(st.cols, ctx.spec.num_particles)
    return (rho_t, rho_f) if rho_t > COLLAPSE_RATIO * max(rho_f, 1.0) else None


def _next_sweeps(ctx: _Ctx, st: AnnealState) -> int:
    """The MCMC sweeps of the next rung: the last rung's, doubled (at most to MAX_SWEEP_FACTOR ×
    ``mcmc_steps``) while the families collapse (:func:`_collapsing`): on Bayesian linear
    regressions (R = 512) two sweeps left log Ẑ 0.3–0.4 nats low at d = 20–50 with ρ_t twice ρ_f,
    eight removed the bias. AIS keeps ``mcmc_steps``."""
    if _collapsing(ctx, st) is None:
        return int(st.cols["sweeps"][-1][0]) if st.k else ctx.sweeps
    return min(2 * int(st.cols["sweeps"][-1][0]), MAX_SWEEP_FACTOR * ctx.sweeps)


def _anneal_step(ctx: _Ctx, st: AnnealState) -> AnnealState:
    """One rung: reweight (PA: resample) into the next β, move there; the new AnnealState."""
    start = time.perf_counter()
    spec, M, R, dt = ctx.spec, ctx.num_runs, ctx.spec.num_particles, _dtype()
    new = _next_beta(ctx, st)
    dbeta = new - st.beta
    keys = jax.random.split(jax.random.fold_in(ctx.key_rungs, st.k), M)
    tun = None if ctx.tunings is None else ctx.tunings[st.k]
    n_sweeps = _next_sweeps(ctx, st)
    if ctx.method == "ais_reverse" and st.k + 2 == len(ctx.betas):
        n_sweeps = 0  # the last reverse move (at β = 0) is never used
    particles, s, tun_used = _rung(spec, ctx.target, ctx.template, st.particles, keys,
                                   jnp.asarray(new, dt), jnp.asarray(dbeta, dt),
                                   jnp.asarray(n_sweeps, jnp.int32), tun)
    s = jax.device_get(s)
    log_z, offset, var_within, ess_used = _log_z_update(spec, s, st, dbeta, R)
    cols = _push(st.cols, s, log_z, var_within, M, ess=ess_used, ess_inc=s["ess_inc"],
                 acc=s["acceptance_rate"], eps=s["step_size"], grads=s["grad_evals"], sweeps=n_sweeps)
    return AnnealState(particles, st.ladder + (new,), cols, log_z, offset, var_within,
                       st.tuning + (tun_used,), st.k + 1, new,
                       st.wall_time_s + time.perf_counter() - start, st.fingerprint)


def _anneal(target, spec, *, betas, beta_max, target_ess, max_rungs, num_runs, key, params0,
            sweeps, tunings=None, progress, method, attrs, start_beta=0.0, max_chunks=None,
            resume=None, devices=None, checkpoint=None):
    """Run the rung loop (from ``resume`` when given, for at most ``max_chunks`` rungs); returns
    an AnnealingResult (raises AnnealingStalledError on a stall, NumericalError when a run has no
    finite particle left; warns when particles were dropped for a non-finite energy). With a
    ``checkpoint`` directory the state is written after every rung and read back when the run starts."""
    M, R = num_runs, spec.num_particles
    k_rungs, k_final = jax.random.split(key)
    template = target.to_unconstrained(jax.tree_util.tree_map(lambda x: x[0, 0], params0))
    u0 = _flatten_particles(target, params0).astype(_dtype())
    ctx = _Ctx(target, spec, template, betas, beta_max, target_ess, max_rungs, M, sweeps, tunings,
               method, attrs, k_rungs, k_final)
    fingerprint = _fingerprint(ctx, key, u0, start_beta)
    if checkpoint is not None and resume is None:
        from ...io import load_state

        resume = load_state(checkpoint)
    if resume is None:
        st = _anneal_begin(ctx, u0, start_beta, fingerprint)
    elif resume.fingerprint != fingerprint:
        raise InvalidArgumentError(
            "`resume` is the state of a different run (other target, settings, initial particles "
            "or key); resume with exactly the arguments of the run that made it")
    else:
        st = resume
    if devices is not None:  # the population split over devices along its particle axis
        from ... import parallel

        mesh = parallel.mesh(devices)
        parallel.check_divisible(R, mesh, "the number of particles per run")
        st = st._replace(particles=parallel.shard_particles(st.particles, mesh, M, R))
    bar = _progress_bar((len(betas) - 1) if betas is not None else max_rungs, progress,
                        f"{method} {M}×{R}")
    bar.update(st.k)
    done = 0
    try:
        _check_alive(ctx, st)
        while not _anneal_done(ctx, st) and (max_chunks is None or done < max_chunks):
            st = _anneal_step(ctx, st)
            _check_alive(ctx, st)
            done += 1
            if checkpoint is not None:
                from ...io import save_state

                save_state(checkpoint, st)
            bar.update(1)
            bar.set_postfix_str(f"β={st.beta:.4g}")
    except AnnealingStalledError as err:
        if st.k > 0:
            err.partial = _collect(ctx, st, _anneal_done(ctx, st))
        raise
    finally:
        bar.close()
    result = _collect(ctx, st, _anneal_done(ctx, st))
    _warn_nonfinite(result.rungs)
    _warn_collapse(ctx, st)
    return result


def _warn_collapse(ctx: _Ctx, st: AnnealState) -> None:
    """A ConvergenceWarning when population annealing's families collapsed faster than perfect
    mixing predicts even at the most sweeps it allows (:func:`_next_sweeps`)."""
    collapse = _collapsing(ctx, st)
    if collapse is not None and st.cols["sweeps"][-1][0] >= MAX_SWEEP_FACTOR * ctx.sweeps:
        rho_t, rho_f = collapse
        warnings.warn(
            f"population_annealing: the families collapsed faster than perfect mixing predicts (ρ_t − 1 = "
            f"{rho_t:.3g} against ρ_f = {rho_f:.3g}) even at {MAX_SWEEP_FACTOR * ctx.sweeps} MCMC sweeps per "
            "rung: log Z's error bar is the genealogy's (rungs['log_z_se_family']) and log Z may be "
            "biased low; raise `mcmc_steps` or `num_particles`", ConvergenceWarning, stacklevel=4)
