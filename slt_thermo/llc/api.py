"""``st.llc``: the local learning coefficient at w* by localized SGLD, one policy for the library
and ``slt-thermo llc``.

Lau, Furman, Wang, Murfet & Wei (arXiv:2308.12108): at a point w* (a local minimum of L_n),

    λ̂(w*) = nβ (E_{w|w*,γ}^β[L_n(w)] − L_n(w*)),   β = 1/log n,

the expectation over p(w) ∝ φ(w) exp(−nβL_n(w) − γ/2‖w − w*‖²), sampled by SGLD chains
started at w*. n is the dataset size (never the batch size), L_n(w*) is on the full data, and
burn-in is excluded.
"""

from __future__ import annotations

import math
import os
import time
import warnings

import jax
import jax.numpy as jnp

from .._utils import check_beta, num_params, positive_int, real_number
from ..errors import ConvergenceWarning, InvalidArgumentError, NumericalWarning, SLTThermoError
from ..results import Estimate, Samples
from ..samplers.run import RunOptions
from ..samplers.run_checks import RUN_CHECK
from ..samplers.sgld import sample_sgld
from ..target import Target
from .center import check_center, nearest_minimum
from .diagnostics import PREDICTED_BIAS, llc_from_samples, predicted_bias_too_large
from .step_size import AUTO_ACCEPT, AUTO_MAX_HALVINGS, auto_step, curvature_reached, default_beta, first_step

DEFAULT_GAMMA = 1.0  # the localization γ (docstring); devinterp's 100 truncates deep nets' flat directions
HOT_START_HEAT = 16.0  # check_equilibration: the extra chains start from a run at β / this
DEFAULT_THINNING = 10  # the full-data nL_n is recorded every this many steps after burn-in
# num_steps="auto": blocks of AUTO_BLOCK steps until the second half of the draws so far passes
AUTO_BLOCK = 2000
AUTO_MAX_STEPS = 50_000  # the default budget (steps per chain)
AUTO_RHAT, AUTO_DRIFT_Z, AUTO_ESS = 1.05, 2.0, 400  # stricter than the warnings' DRIFT_Z = 4


def llc(
    target: Target,
    center,
    *,
    key,
    beta: float | None = None,
    step_size: float | str = "auto",
    gamma: float = DEFAULT_GAMMA,
    num_chains: int = 8,
    num_steps: int | str = "auto",
    num_burnin: int = 400,
    max_steps: int = AUTO_MAX_STEPS,
    max_seconds: float | None = None,
    batch_size: int | None = None,
    preconditioner: str | None = None,
    control_variate: bool = False,
    check_equilibration: bool = False,
    thinning: int | None = None,
    eval_full_nll_every: int | None = None,
    progress: bool = True,
    diagnose_every: int | None = None,
    devices=None,
    checkpoint=None,
    friction: float | str | None = "auto",
) -> Estimate:
    """Estimate the local learning coefficient at ``center`` (= w*, in model space).

    The default policy is the one ``slt-thermo llc`` runs (the same numbers for the same key;
    chosen by measurement on issue 25's suite of deep linear networks, ``benchmarks/llc_accuracy.py``):
    underdamped Langevin chains (friction 2√γ) on full-data gradients, ε = ``"auto"``, γ = 1,
    8 chains run until converged (``num_steps="auto"``, at most 50 000 steps each), the
    full-data nL_n recorded every 10th step.

    Args:
        target: the model and data (n = ``target.n`` enters nβ).
        center: w*, a params pytree (a trained network's weights, a true parameter, ...); it must
            be an interior point of the prior with a finite nL_n.
        key: PRNG key.
        beta: inverse temperature; default 1/log n.
        step_size: SGLD ε. ``"auto"``: ε = 1/(4κ̂), κ̂ the largest curvature of the localized log
            density at w* (:func:`max_curvature`); the run is repeated (at most 4 times) with ε
            halved while its MALA acceptance is < 0.9 or its predicted ε-bias exceeds 5% of λ̂,
            and, when a chain goes non-finite, with ε = 1/(4κ̂_reached) (at most half the last),
            κ̂_reached the largest curvature where the surviving chains ended
            (:func:`~slt_thermo.llc.step_size.curvature_reached`; chains that spread from a
            singular w* meet stiffer regions, 10–10⁴× in deep nets) or cut 16× when every chain
            blew up (no preconditioner; underdamped chains step h = √ε). ``"sweep"``:
            :func:`sgld_step_size` (11 short overdamped runs, minutes; None means the same, the
            default before issue 23). Or a number.
            ``details["step_size_policy"]`` records the choice.
        gamma: localization strength γ (0 for none: only sensible with a compact prior). The
            default 1 leaves a direction free up to a distance ~1 from w*; devinterp's and Lau et
            al.'s 100 truncates every direction whose posterior spread at this nβ exceeds 0.1,
            which lowers λ̂ below λ(w*) on high-order singular directions (the dead units of deep
            nets: 2.1 instead of 11.7 on a depth-5 net at n = 1e4). ``details["gamma_sensitivity"]``
            (dλ̂/dlog γ, :func:`gamma_sensitivity`) says how much γ shapes λ̂, and llc warns above
            10% of λ̂. A smaller γ needs longer runs (flat directions relax in ~1/(εγ) SGLD steps,
            ~2/√(εγ) underdamped ones). Measurements: ``benchmarks/README.md``.
        friction: underdamped Langevin (:mod:`~slt_thermo.samplers.underdamped`) with this
            friction; ``"auto"`` (default): 2√max(γ, 1), critical damping of the flattest localized
            direction, or None (overdamped SGLD) with a ``preconditioner``; None: overdamped SGLD.
            On deep linear nets at γ = 1 underdamped chains reach NUTS's value on the same
            localized posterior where SGLD's capped ε leaves the flat directions unmixed.
        batch_size: minibatch size of the gradients; default n (full data). Minibatch noise heats
            the chains and biases λ̂ upward, most where B ≪ nβ (``details["bias_minibatch"]``).
        preconditioner: None (the default), ``"rmsprop"`` (adapted during burn-in,
            then held fixed, so the draws target the localized posterior up to O(ε); needs a
            number or ``"sweep"`` for ``step_size``) or ``"rmsprop_adaptive"`` (pSGLD, biased).
        control_variate: SGLD-CV (:func:`~slt_thermo.sample_sgld`): control-variate the
            minibatch gradient at w* (less minibatch-noise bias where chains stay near w*).
        check_equilibration: also run ``num_chains // 2`` chains started *hot* (from the end of
            a ``num_burnin``-step run at β/16 from w*) and compare their λ̂ with the main
            chains' over the second half of the draws (``details["equilibration_z"]``,
            ``cold_start_llc``, ``hot_start_llc``; warning at |z| > 4): chains from w* relax
            from below, hot ones from above, so a gap brackets the localized value. λ̂ itself is
            the main run's. Costs 50–60% more steps and two more compiles.
        thinning, eval_full_nll_every: which steps after burn-in are kept and what nll they hold.
            Default: every 10th step, with the full-data nL_n. ``eval_full_nll_every=k``: every
            k-th, full data; ``thinning=k`` alone: every k-th, SGLD's minibatch estimate.
        num_steps: steps per chain, burn-in included, or ``"auto"`` (default): the chains run in
            blocks of 2000 steps until the second half of the draws so far (the first half is
            burn-in) passes R-hat ≤ 1.05, |drift z| ≤ 2 (nL_n and ‖w − w*‖²) and ESS ≥ 400, or
            the budget ``max_steps`` (per chain; default 50 000) or ``max_seconds`` ends; then
            ``details["auto"]`` says which (``converged``, ``steps``, ``checks``) and an
            unconverged estimate warns which way it is biased (chains started at w* spread
            outward; a λ̂ still rising is a lower bound, one still falling an upper bound).
            λ̂ is then the second half's.
            A block in which a chain goes non-finite (chains that spread meet larger curvatures)
            ends the run; the next attempt starts again from w* with ε from κ̂_reached (above),
            within the same ``max_seconds``.
        num_chains, num_burnin, diagnose_every, progress, devices: as in
            :func:`~slt_thermo.sample_sgld` (the MALA check runs on at most 50 draws per chain
            unless ``diagnose_every`` says otherwise; ``devices`` splits the chains over devices).
        checkpoint: a directory: every SGLD run of the call (each step-size attempt, the hot-start
            runs) writes its state there after every chunk (``attempt-K/``, ``hot-heat/``,
            ``hot/``), and a call with the same arguments and directory continues where a killed
            one stopped, with the numbers of an uninterrupted call (finished runs are reread,
            not rerun). The step-size tuning is not checkpointed: it is deterministic in the key
            and short next to the runs.

    Returns:
        :class:`~slt_thermo.Estimate` whose ``details`` hold the diagnostics of
        :func:`llc_from_samples` (``per_chain``, ``rhat``, ``ess``, ``mala_accept``,
        ``predicted_bias``, ``drift_z``, ``drift_z_distance``, ``gamma_sensitivity``,
        ``unhealthy``, ``problems``, ``samples``, ...), ``step_size_policy`` (the rule, ε, and for
        auto κ̂, the halvings and each attempt), ``nearest_minimum`` (ΔH = nL_n(w*) − nL_n(ŵ),
        ŵ the minimum L-BFGS reaches from w*, or None) and ``llc_ref_minimum`` = λ̂ + β·ΔH (the
        LLC assumes w* minimizes L_n; a true parameter on data does not, which lowers λ̂ by ~β·ΔH).
    """
    if not isinstance(target, Target):
        raise InvalidArgumentError(f"`target` must be a slt_thermo.Target, got {type(target).__name__}")
    beta = default_beta(target) if beta is None else check_beta(beta, positive=True)
    if not isinstance(beta, float):
        raise InvalidArgumentError(f"`beta` must be a number, got {beta!r}")
    auto = isinstance(num_steps, str) and num_steps == "auto"
    if not auto:
        if isinstance(num_steps, str):
            raise InvalidArgumentError(f"`num_steps` must be an integer or 'auto', got {num_steps!r}")
        positive_int(num_steps, "num_steps", 2)
    max_steps = positive_int(max_steps, "max_steps", AUTO_BLOCK)
    if max_seconds is not None:
        real_number(max_seconds, "max_seconds")
    positive_int(num_chains, "num_chains")
    positive_int(num_burnin, "num_burnin", 0)
    gamma = real_number(gamma, "gamma", strict=False)
    friction = resolve_friction(friction, gamma, preconditioner)
    batch_size = target.n if batch_size is None else batch_size
    if thinning is None and eval_full_nll_every is None:
        eval_full_nll_every = DEFAULT_THINNING
    center = check_center(target, center)
    nll_center = float(target.nll(center))
    key_tune, key_run = jax.random.split(key)
    step = first_step(step_size, target, center, key=key_tune, beta=beta, gamma=gamma, batch_size=batch_size,
                      preconditioner=preconditioner, control_variate=control_variate, progress=progress)
    run_kw = dict(num_steps=max_steps if auto else num_steps, num_burnin=num_burnin, batch_size=batch_size, center=center, friction=friction,
                  gamma=gamma, preconditioner=preconditioner, control_variate=control_variate,
                  thinning=1 if thinning is None else thinning, eval_full_nll_every=eval_full_nll_every,
                  progress=progress, keep_params=False, diagnose_every=diagnose_every, devices=devices)
    first = _Blocks(checkpoint, auto, num_burnin, run_kw["eval_full_nll_every"] or run_kw["thinning"])
    if auto and diagnose_every is None:  # MALA checks spread over each block, not over the budget
        run_kw["diagnose_every"] = max(1, first.draws // 8)
    extend = None
    if auto:
        deadline = None if max_seconds is None else time.perf_counter() + max_seconds
        extend = lambda e, kw: _extend_until_converged(target, center, beta, num_chains, key_run, kw, e,
                                                       nll_center, first, deadline)
    est, step = _sample_until_accepted(target, center, beta, num_chains, key_run, run_kw, step, nll_center,
                                       first, extend)
    run_kw["step_size"] = step["step_size"]
    if check_equilibration:
        if auto:  # the hot chains run as long as the main run did; both compared on their second halves
            run_kw["num_steps"] = est.details["auto"]["steps"]
        with warnings.catch_warnings():  # llc's own equilibration check reports on these chains
            warnings.filterwarnings("ignore", message=RUN_CHECK)
            hot = _hot_started_run(target, center, beta, max(1, num_chains // 2),
                                   jax.random.fold_in(key_run, 1), run_kw, checkpoint)
        auto_info = est.details.get("auto")
        est = llc_from_samples(est.details["samples"], nll_center, beta=beta, num_params=num_params(center),
                               hot_start=hot, warn=False)
        if auto_info is not None:
            est.details["auto"] = auto_info
            if not auto_info["converged"]:
                est.details["problems"].insert(0, auto_info["problem"])
    for p in est.details["problems"]:
        warnings.warn(f"llc: {p}", NumericalWarning if "non-finite" in p else ConvergenceWarning, stacklevel=2)
    nm = nearest_minimum(target, center)
    est.details.update(step_size_policy=step, nearest_minimum=nm,
                       llc_ref_minimum=None if nm is None else est.value + beta * nm["delta"])
    return est


def resolve_friction(friction, gamma, preconditioner):
    """The underdamped run's friction, checked: ``"auto"`` is critical damping 2√γ of the
    localization's curvature γ, the flattest a localized direction can be (γ floored at 1, as
    RMSprop's V), or None (overdamped) with a preconditioner; a number must be positive; None
    stays None (overdamped SGLD)."""
    if isinstance(friction, str) and friction == "auto":
        return None if preconditioner is not None else 2.0 * math.sqrt(max(gamma, 1.0))
    return None if friction is None else real_number(friction, "friction")


def _sample_until_accepted(target, center, beta, num_chains, key, run_kw, step, nll_center, blocks=None,
                           extend=None):
    """One run at ``step``; under ``auto``, halve ε and run again while the run fails its checks
    (finite chains, MALA acceptance >= AUTO_ACCEPT, predicted ε-bias <= PREDICTED_BIAS of λ̂), at
    most AUTO_MAX_HALVINGS times. With ``extend`` (num_steps="auto"), a first block that passes is
    extended until it converges, and the checks are those of the extended run: chains that spread
    from w* meet larger curvatures, where an ε accepted at the start can fail (or blow up). The
    last run's warnings are re-emitted (problems excluded: the caller warns about those once).
    Returns (estimate, step record with ``attempts``)."""
    attempts = []
    while True:
        last = step["rule"] != "auto" or len(attempts) >= AUTO_MAX_HALVINGS
        s = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                s = sample_sgld(target, [beta], num_chains=num_chains, key=key, init=center,
                                step_size=step["step_size"],
                                options=(blocks or _Blocks()).first(f"attempt-{len(attempts)}"), **run_kw)
                est = llc_from_samples(s, nll_center, beta=beta, num_params=num_params(center), warn=False)
                if extend is not None and _passes(est):
                    est = extend(est, dict(run_kw, step_size=step["step_size"]))
                    last = last or est.details["auto"]["budget"] == "time"
                acc, bad, bias = (est.details[k] for k in ("mala_accept", "unhealthy", "predicted_bias"))
            except SLTThermoError as err:
                if last:
                    tried = ", ".join(f"{e:.3g}" for e in [a["step_size"] for a in attempts] + [step["step_size"]])
                    raise SLTThermoError(
                        f"llc: no step size tried ({tried}) gave a run to estimate from ({err}). Chains that "
                        "spread from w* meet larger curvatures (deep nets at small γ); a larger `gamma` keeps "
                        "them nearer, or give a smaller `step_size`") from err
                est, acc, bad, bias = None, float("nan"), num_chains, float("nan")
        attempts.append({"step_size": step["step_size"], "mala_accept": acc, "unhealthy": bad,
                         "predicted_bias": bias})
        passed = est is not None and _passes(est)
        if last or passed:
            break
        why = (f"{bad} chain(s) went non-finite" if bad else f"MALA acceptance {acc:.3f} < {AUTO_ACCEPT}"
               if acc < AUTO_ACCEPT else f"predicted ε-bias {bias:+.3g} > {PREDICTED_BIAS:.0%} of λ̂")
        halvings, reached = step["halvings"] + 1, step.get("kappa_reached")
        if bad:
            k = (est.details.get("kappa_reached") if est is not None and "kappa_reached" in est.details
                 else curvature_reached(target, s, center, beta=beta, gamma=run_kw["gamma"]))
            attempts[-1]["kappa_reached"] = k
            if math.isfinite(k):  # ε from the curvature where the surviving chains went (at least halved)
                halvings, reached = 0, max(k, 2 / (4 * step["step_size"]))
            elif bad >= num_chains:  # every chain blew up, nothing to measure: ε cut 16×, not 2×
                halvings = step["halvings"] + 4
        step = auto_step(step["kappa"], halvings, kappa_reached=reached)
        if run_kw["progress"]:
            print(f"llc: {why}: ε → {step['step_size']:.3g} ({step['short']}), running again …", flush=True)
    for w in caught:  # the sampler's end-of-run check repeats what llc's own diagnostics report
        if not str(w.message).startswith(RUN_CHECK):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if step["rule"] == "auto":
        step = auto_step(step["kappa"], step["halvings"], passed, step.get("kappa_reached"))
    return est, {**step, "attempts": attempts}


def _passes(est) -> bool:
    """The step-size checks: no chain went non-finite, MALA acceptance >= AUTO_ACCEPT, predicted
    ε-bias <= PREDICTED_BIAS of λ̂."""
    d = est.details
    return (d["unhealthy"] == 0 and d["mala_accept"] >= AUTO_ACCEPT
            and not predicted_bias_too_large(d["predicted_bias"], est.value))


def _hot_started_run(target, center, beta, num_chains, key, run_kw, checkpoint=None) -> Samples:
    """``num_chains`` chains like the main run's, but started from the end of a run at
    β/HOT_START_HEAT (``num_burnin`` steps from w*, the same ε, γ and preconditioner): spread
    *beyond* the localized posterior, so they relax towards it from above while chains started at
    w* relax from below. Where the two disagree, neither has equilibrated."""
    k_heat, k_run = jax.random.split(key)
    steps = run_kw["num_burnin"] + 1
    heat_kw = dict(run_kw, num_steps=steps, num_burnin=steps - 1, thinning=1,
                   eval_full_nll_every=None, keep_params=True, progress=False, diagnose_every=None)
    heated = sample_sgld(target, [beta / HOT_START_HEAT], num_chains=num_chains, key=k_heat,
                         init=center, options=_checkpointed(checkpoint, "hot-heat"), **heat_kw)
    leaves = [jnp.asarray(heated.params[name].values[:, :, -1]) for name in heated.param_names]
    start = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(center), leaves)
    return sample_sgld(target, [beta], num_chains=num_chains, key=k_run, init=start,
                       options=_checkpointed(checkpoint, "hot"), **run_kw)


def _checkpointed(checkpoint, name) -> RunOptions | None:
    """RunOptions writing the run's state under ``checkpoint/name`` (None without a checkpoint)."""
    if checkpoint is None:
        return None
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise InvalidArgumentError(f"`checkpoint` must be a directory path, got {type(checkpoint).__name__}")
    return RunOptions(checkpoint=os.path.join(os.fspath(checkpoint), name))


class _Blocks:
    """How the runs of one llc call are cut: with ``auto``, a run is planned for the whole budget
    and stopped after its burn-in and first AUTO_BLOCK steps (``max_chunks``), to be continued
    AUTO_BLOCK steps at a time; with a ``checkpoint``, each run writes its state under its own
    subdirectory. The driver counts ticks: one per burn-in step, one per recorded draw (``every``
    steps) after it."""

    def __init__(self, checkpoint=None, auto: bool = False, burnin: int = 0, every: int = 1):
        self.checkpoint, self.auto, self.name, self.burnin, self.every = checkpoint, auto, None, burnin, every
        self.draws = max(4, AUTO_BLOCK // every)  # ticks of one block after burn-in
        self.chunk = self.draws // 4
        self.first_chunks = math.ceil((burnin + self.draws) / self.chunk)

    def first(self, name) -> RunOptions | None:
        self.name = name
        opts = _checkpointed(self.checkpoint, name)
        if not self.auto:
            return opts
        return (opts or RunOptions()).replace(chunk_size=self.chunk, max_chunks=self.first_chunks)

    def more(self, samples) -> RunOptions:
        opts = _checkpointed(self.checkpoint, self.name) or RunOptions()
        return opts.replace(chunk_size=self.chunk, max_chunks=4,
                            resume=None if self.checkpoint is not None else samples.state)


def _second_half(samples: Samples) -> Samples:
    """The draws so far, less the first half (the auto run's burn-in)."""
    k = samples.num_draws // 2
    return Samples(samples.ds.isel(draw=slice(k, None)))


def _auto_checks(est) -> dict:
    d = est.details
    return {"rhat": d["rhat"], "drift_z": d["drift_z"], "drift_z_distance": d["drift_z_distance"],
            "ess": d["ess"], "passed": bool(d["rhat"] <= AUTO_RHAT and abs(d["drift_z"]) <= AUTO_DRIFT_Z
                                            and not abs(d["drift_z_distance"]) > AUTO_DRIFT_Z
                                            and d["ess"] >= AUTO_ESS)}


def _unconverged_direction(checks) -> str:
    """Which way an unconverged λ̂ is off, from the drift of nL_n between the second half's
    halves: still rising (a lower bound) or falling (an upper bound); otherwise unknown. The
    spread ‖w − w*‖² says the chains have not settled, not which way λ̂ moves: on the issue-25
    suite, runs still spreading sat 30% below and 42% above λ."""
    z = checks["drift_z"]
    spreading = " (the chains are still spreading from w*)" if checks["drift_z_distance"] > AUTO_DRIFT_Z else ""
    if z > AUTO_DRIFT_Z:
        return f"λ̂ is still rising{spreading}: a lower bound"
    if z < -AUTO_DRIFT_Z:
        return f"λ̂ is still falling{spreading}: an upper bound"
    return f"λ̂ has not settled{spreading}: its error bar understates its error"


def _extend_until_converged(target, center, beta, num_chains, key, run_kw, est, nll_center, blocks,
                            deadline) -> Estimate:
    """Continue the accepted auto run block by block until its second half passes the checks or
    the budget ends (steps, or ``deadline`` in ``time.perf_counter`` seconds); the estimate of the
    second half, with ``details["auto"]``. A block in which a chain goes non-finite ends the run:
    the estimate is the previous block's, with ``unhealthy`` set to the chains lost (so the caller
    halves ε)."""
    samples, d, lost = est.details["samples"], num_params(center), 0
    while True:
        half = llc_from_samples(_second_half(samples), nll_center, beta=beta, num_params=d, warn=False)
        checks = _auto_checks(half)
        steps = blocks.burnin + samples.num_draws * blocks.every
        out_of_time = deadline is not None and time.perf_counter() > deadline
        if checks["passed"] or samples.ds.attrs.get("complete") or out_of_time:
            break
        more = sample_sgld(target, [beta], num_chains=num_chains, key=key, init=center,
                           options=blocks.more(samples), **run_kw)
        lost = int((~more.healthy.values).sum())
        if lost:
            half.details["unhealthy"] = lost
            half.details["kappa_reached"] = curvature_reached(target, more, center, beta=beta,
                                                              gamma=run_kw["gamma"])
            break
        samples = more
    half.details["auto"] = {"converged": checks["passed"] and not lost, "steps": int(steps), "checks": checks,
                            "budget": "time" if out_of_time and not checks["passed"] else
                            "steps" if not checks["passed"] and not lost else None}
    if lost:
        problem = (f"num_steps='auto': {lost} chain(s) went non-finite after {int(steps)} steps per chain (ε too "
                   "large where the chains spread from w*): λ̂ is from the draws before")
    elif not checks["passed"]:
        problem = (
            f"num_steps='auto': the budget ({'max_seconds' if out_of_time else 'max_steps'}) ended after "
            f"{int(steps)} steps per chain before the chains converged (R-hat {checks['rhat']:.3f}, drift z "
            f"{checks['drift_z']:+.1f}, ‖w − w*‖² drift z {checks['drift_z_distance']:+.1f}, ESS {checks['ess']:.0f}); "
            + _unconverged_direction(checks))
    else:
        return half
    half.details["auto"]["problem"] = problem
    half.details["problems"].insert(0, problem)
    return half
