"""The local learning coefficient (LLC) by SGLD, with the diagnostics that say when to distrust it.

Lau, Furman, Wang, Murfet & Wei (arXiv:2308.12108): at a point w* (a local minimum of L_n),

    λ̂(w*) = nβ (E_{w|w*,γ}^β[L_n(w)] − L_n(w*)),   β = 1/log n,

the expectation over p(w) ∝ φ(w) exp(−nβL_n(w) − γ/2‖w − w*‖²), sampled by SGLD. Here n is the
dataset size (never the batch size), L_n(w*) is on the full data, and burn-in is excluded.

Diagnostics: per-chain λ̂, R-hat and ESS of the nll trace, the mean MALA acceptance of Langevin
moves of the chosen step at a bounded number of draws (discretization check), SGLD's predicted
first-order ε-bias of λ̂ from minibatch noise and discretization at the same draws, the count of
non-finite chains (excluded, never averaged), a first-half/second-half drift test of the nll
(burn-in check) and of ‖w − w*‖² (mixing check: the minibatch nll hardly sees the flat
directions), the sensitivity dλ̂/dlog γ to the localization (how much γ, not L_n, sets λ̂),
and warnings when any of them says the step size, burn-in or localization is wrong.
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from .errors import InvalidArgumentError, SLTThermoError
from .results import Estimate, Samples, rhat
from .samplers.sgld import sample_sgld
from .target import Target
from .thermo.stats import healthy_draws, mean_se


def _default_beta(target):
    if target.n < 2:
        raise InvalidArgumentError("`target` has n < 2; pass `beta` explicitly")
    return 1.0 / math.log(target.n)


def _drift_z(x):
    """z-score of (second-half mean − first-half mean) of a (chain, draw) trace."""
    h = x.shape[1] // 2
    if h < 4:
        return float("nan")
    m1, s1, _ = mean_se(x[:, :h])
    m2, s2, _ = mean_se(x[:, h:])
    return (m2 - m1) / math.sqrt(s1**2 + s2**2) if s1 + s2 > 0 else 0.0


# llc warns when SGLD's predicted ε-bias exceeds this fraction of λ̂ (and 2 standard errors)
PREDICTED_BIAS = 0.05
# llc warns when |dλ̂/d log γ| exceeds this fraction of λ̂ (beyond 2 standard errors)
GAMMA_SENSITIVITY = 0.1
# llc warns when the second half of the draws differs from the first by more (in se), for nL_n
# and for ‖w − w*‖²: burn-in too short, or chains still spreading from w*
DRIFT_Z = 4.0


def llc(
    target: Target,
    center,
    *,
    key,
    beta: float | None = None,
    step_size: float | None = None,
    gamma: float = 100.0,
    num_chains: int = 8,
    num_steps: int = 1000,
    num_burnin: int = 200,
    batch_size: int | None = None,
    preconditioner: str | None = "rmsprop",
    control_variate: bool = False,
    check_equilibration: bool = False,
    thinning: int = 1,
    eval_full_nll_every: int | None = None,
    progress: bool = True,
    diagnose_every: int | None = None,
) -> Estimate:
    """Estimate the local learning coefficient at ``center`` (= w*, in model space).

    Args:
        target: the model and data (n = ``target.n`` enters nβ).
        center: w*, a params pytree (a trained network's weights, a true parameter, ...).
        key: PRNG key.
        beta: inverse temperature; default 1/log n.
        step_size: SGLD ε; None picks one with :func:`sgld_step_size` (documented there).
        gamma: localization strength γ (0 for none: only sensible with a compact prior). The
            default 100 is devinterp's and Lau et al.'s; it truncates every direction whose
            posterior spread at this nβ exceeds 1/√γ, which at practical n lowers λ̂ far below
            λ(w*) on high-order singular directions: the dead units of an L-layer deep linear
            net have loss of degree 2L and need γ ≲ (nβ)^{1/L}. Exact localized values (NUTS)
            on a depth-5 rank-1 net, λ = 12.5: 2.1 at γ = 100 and 11.7 at γ = 1 (n = 1e4),
            7.6 at γ = 100 even at n = 1e8. ``details["gamma_sensitivity"]`` = dλ̂/dlog γ (from
            the same draws, :func:`gamma_sensitivity`) says how much γ shapes λ̂, and llc warns
            when it exceeds 10% of λ̂. A smaller γ needs more steps (the flat directions relax
            in ~1/(εγ) steps). On six random m = 1 DLNs (noise-free data, n = 1e4; the
            benchmark ``llc_vs_devinterp.py``) γ = 1 and 5000 steps put λ̂ within 8% of λ (mean
            |error| 3%) on every one and within 2 se of NUTS on four; the other two sit 1.6 and
            1.9 above NUTS (3.5–5 se), the picked ε's own bias, predicted as +1.7 and +3.0
            (``details["predicted_bias"]``); at γ = 100 NUTS's exact value itself
            is 0–84% below λ on the same data (more than 10% on 3 of 6, where dλ̂/dlog γ is
            37–110% of λ̂). Mixing at small γ can be far slower: on deep_linear((6, 5, 4, 5), 2)
            (notebook 03) 20 000 steps at γ = 1 gave 9.1 against NUTS's 11.3, with R-hat 1.02.
            On *noisy* data at γ = 1 (5000 steps) the picked ε is within 3 se of NUTS on 5 of
            the 6 DLNs (the sixth 9% low: too few steps at its small ε, and no diagnostic
            fired); with 20 000 steps the picked ε's own bias, capped at 5% of λ̂ by
            prediction, shows: +1.3 to +2.7 on three nets (2.4–5.6 se). Check against NUTS
            where you can.
        preconditioner: ``"rmsprop"`` (default; adapted during burn-in, then held fixed, so
            the draws target the localized posterior exactly up to O(ε)), None for plain SGLD,
            or ``"rmsprop_adaptive"`` (pSGLD, biased; for comparisons). At a singular w* the
            stiff live weights limit plain SGLD's ε so much that the dead-unit directions never
            spread (λ̂ too low) or, at the largest stable ε, its ε-bias dominates, while
            RMSprop's G ≈ 1/√curvature lets every direction move. Measured against NUTS on the
            same localized posteriors: reduced_rank(4, 4, 3, 1), n = 1e6, γ = 100: 5.41 ± 0.19
            vs 5.45 ± 0.05 (plain: 4.48 ± 0.19); within 2 se on 5 of 6 random DLNs at n = 1e4
            (plain at ε = 1/(2κ̂): +3 to +8 se on 3 of 6); reduced_rank(2, 2, 1, 1), n = 1e4, all
            defaults: 1.56 ± 0.85 vs λ = 3/2 (plain: 4.07 ± 0.85). Give it enough steps: the
            dead directions relax in ~1/(ε√γ) steps.
        control_variate: SGLD-CV (see :func:`~slt_thermo.sample_sgld`): control-variate the
            minibatch gradient at w*. It removes most of the minibatch-noise part of the ε-bias
            where the chains stay near w* (noisy data; on noise-free data that part is already
            ~0), so the sweep can pick a larger ε under the same 5% cap; each step costs 1.2–1.4×
            (DLNs of 152–9800 parameters, CPU). Measured on six random DLNs, noisy data, n = 1e4,
            5000 steps, picked ε, against NUTS: at γ = 100 mean |λ̂ − NUTS|/NUTS 4.8% with it and
            5.1% without (worst 7.4% vs 9.4%: it helps the slowest net, deep_linear((10, 9, 8, 8,
            8), 8), −3.6 vs −7.4 se, whose picked ε doubles, and costs accuracy in se where the
            larger ε brings its own 5% bias); at γ = 1 the chains wander too far from w* for the
            control variate to help much (within 3 se of NUTS on 4 of 6 with it, 5 of 6 without).
            Off by default.
        check_equilibration: also run ``num_chains // 2`` chains started *hot* (from the end of
            a ``num_burnin``-step run at β/16 from w*) and compare their λ̂ with the main
            chains' over the second half of the draws (``details["equilibration_z"]``,
            ``cold_start_llc``, ``hot_start_llc``; warning at |z| > 4). Chains from w* relax into
            the localized posterior from below, hot ones from above, so a slow mode that neither
            R-hat nor the drift tests see (all chains move together) shows as a gap, which
            brackets the localized value. λ̂ itself is the main run's (identical to a run without
            the check). Costs 50–60% more steps and two more compiles. Measured on the six noisy-data
            DLNs of the benchmark (γ = 1, 8 + 4 chains, 5000 steps, the picked ε), cold vs hot
            second halves (NUTS): (10, 9, 8, 8, 8) 34.0 vs 39.2 ± 1.8, z = +2.8 (37.2: λ̂ is 33.8
            and no other diagnostic fires; the gap brackets NUTS but stays under the 4-se
            warning: 4 hot chains are noisy); (17, 16, 16) 91.4 vs 98.1, z = +4.5, *warns* (92.1;
            a 20 000-step run drifts up to 94.8, so this run was not equilibrated either); the
            other four |z| ≤ 2.9, no warning, NUTS between or near both. So read the two values,
            not only the warning; the heat (16) and the threshold are not tuned further.
        num_chains, num_steps, num_burnin, batch_size, thinning,
        eval_full_nll_every, diagnose_every: as in :func:`~slt_thermo.sample_sgld`
            (``batch_size`` defaults to min(n, 256); the MALA check runs on at most 50 draws
            per chain, fewer when full-data passes are costly, unless ``diagnose_every`` says
            otherwise).

    Returns:
        :class:`~slt_thermo.Estimate` whose ``details`` hold ``per_chain``, ``rhat``, ``ess``,
        ``mala_accept`` (and ``mala_checks``, how many draws it averages), ``predicted_bias``
        (SGLD's first-order ε-bias of λ̂ predicted at the checked draws; ``bias_minibatch`` +
        ``bias_discretization``, see :mod:`slt_thermo.samplers.sgld`), ``drift_z`` (nll) and
        ``drift_z_distance`` (‖w − w*‖²), ``gamma_sensitivity`` (dλ̂/dlog γ) and its
        ``gamma_sensitivity_se``, ``unhealthy``, the settings, ``nll_center`` and the
        ``samples``; its repr prints these diagnostics.
    """
    if not isinstance(target, Target):
        raise InvalidArgumentError(f"`target` must be a slt_thermo.Target, got {type(target).__name__}")
    beta = _default_beta(target) if beta is None else float(beta)
    if not (beta > 0 and math.isfinite(beta)):
        raise InvalidArgumentError(f"`beta` must be a positive number, got {beta!r}")
    batch_size = min(target.n, 256) if batch_size is None else batch_size
    center = jax.tree_util.tree_map(lambda x: np.asarray(x, dtype=np.float32), center)
    nll_center = float(target.nll(center))
    if not math.isfinite(nll_center):
        raise InvalidArgumentError("`center` has a non-finite nll; it must be a point of the model")
    key_tune, key_run = jax.random.split(key)
    if step_size is None:
        step_size, _ = sgld_step_size(target, center, key=key_tune, beta=beta, gamma=gamma,
                                      batch_size=batch_size, preconditioner=preconditioner,
                                      control_variate=control_variate)
    run_kw = dict(step_size=step_size, num_steps=num_steps, num_burnin=num_burnin,
                  batch_size=batch_size, center=center, gamma=gamma, preconditioner=preconditioner,
                  control_variate=control_variate, thinning=thinning,
                  eval_full_nll_every=eval_full_nll_every, progress=progress, keep_params=False,
                  diagnose_every=diagnose_every)
    samples = sample_sgld(target, [beta], num_chains=num_chains, key=key_run, init=center, **run_kw)
    if not check_equilibration:
        return llc_from_samples(samples, nll_center, beta=beta, num_params=_num_params(center))
    hot = _hot_started_run(target, center, beta, max(1, num_chains // 2),
                           jax.random.fold_in(key_run, 1), run_kw)
    return llc_from_samples(samples, nll_center, beta=beta, num_params=_num_params(center),
                            hot_start=hot)


HOT_START_HEAT = 16.0  # check_equilibration: the extra chains start from a run at β / this
EQUILIBRATION_Z = 4.0  # ... and llc warns when the two groups' second halves differ by more (in se)


def _hot_started_run(target, center, beta, num_chains, key, run_kw) -> Samples:
    """``num_chains`` chains like the main run's, but started from the end of a run at
    β/HOT_START_HEAT (``num_burnin`` steps from w*, the same ε, γ and preconditioner): spread *beyond* the
    localized posterior, so they relax towards it from above while chains started at w* relax
    from below. Where the two disagree, neither has equilibrated."""
    k_heat, k_run = jax.random.split(key)
    steps = run_kw["num_burnin"] + 1
    heat_kw = dict(run_kw, num_steps=steps, num_burnin=steps - 1, thinning=1,
                   eval_full_nll_every=None, keep_params=True, progress=False, diagnose_every=None)
    heated = sample_sgld(target, [beta / HOT_START_HEAT], num_chains=num_chains, key=k_heat,
                         init=center, **heat_kw)
    leaves = [jnp.asarray(heated.params[name].values[:, :, -1]) for name in heated.param_names]
    start = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(center), leaves)
    return sample_sgld(target, [beta], num_chains=num_chains, key=k_run, init=start, **run_kw)


def _num_params(params) -> int:
    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(params)))


def llc_from_samples(samples: Samples, nll_center: float, *, beta: float | None = None,
                     num_params: int | None = None, warn: bool = True,
                     hot_start: Samples | None = None) -> Estimate:
    """λ̂ = β (E[nL_n] − nL_n(w*)) from a localized run at one β, with its diagnostics.

    ``num_params`` (d) enables the bound check: a learning coefficient never exceeds d/2, so
    λ̂ > d/2 (beyond 4 standard errors) means the chains left the basin of w* — almost always
    a step size too large for the curvature at w*. ``hot_start``: a second run of the same
    posterior whose chains started spread beyond it (:func:`llc`'s ``check_equilibration``);
    λ̂ stays the first run's, and the two runs' second halves are compared
    (``details["equilibration_z"]``, warning above 4).
    """
    beta = float(samples.betas[0]) if beta is None else beta
    unhealthy = int((~samples.healthy.values[0]).sum())
    x = healthy_draws(samples, min_chains=1)[0]  # (chain, draw); warns if chains were dropped
    mean, se, ess = mean_se(x)
    per_chain = beta * (x.mean(axis=1) - nll_center)
    value = beta * (mean - nll_center)
    r = rhat(x) if x.shape[0] >= 2 else float("nan")
    mala, mala_checks = _checked_mean(samples, "mala_accept")
    # SGLD's predicted first-order ε-bias of λ̂ (in units of β_run·H, like the stats)
    to_beta = beta / float(samples.betas[0])
    bias_noise = _checked_mean(samples, "minibatch_excess")[0] * to_beta
    bias_disc = _checked_mean(samples, "discretization_excess")[0] * to_beta
    bias = bias_noise + bias_disc
    drift = _drift_z(x)
    drift_dist = float("nan")  # the same test on the slow observable ‖w − w*‖²
    attrs = samples.ds.attrs
    gamma = attrs.get("gamma")
    sens, sens_se = float("nan"), float("nan")
    if "sq_distance" in samples:
        dist2 = np.asarray(samples["sq_distance"].values[0][samples.healthy.values[0]], float)
        drift_dist = _drift_z(dist2)
        if gamma:
            sens, sens_se = gamma_sensitivity(x, dist2, beta=beta, gamma=float(gamma))
    problems = []
    if unhealthy:
        problems.append(f"{unhealthy} chain(s) went non-finite and were excluded: step size too large?")
    if mala < 0.5:
        problems.append(f"MALA acceptance {mala:.2f} < 0.5: the step size is too large for this posterior")
    if r > 1.05:
        problems.append(f"R-hat of nll {r:.3f} > 1.05: chains disagree (burn-in too short or step too small)")
    if predicted_bias_too_large(bias, value, floor=2 * beta * se):
        problems.append(
            f"SGLD's predicted ε-bias is {bias:+.3g} ({100 * bias / abs(value - bias):.0f}% of λ̂; "
            f"minibatch noise {bias_noise:+.3g}, discretization {bias_disc:+.3g}): a smaller "
            "step_size (the minibatch part also shrinks with a larger batch_size)")
    if abs(drift) > DRIFT_Z:
        problems.append(f"nll drifts between halves (z = {drift:.1f}): burn-in too short")
    if abs(drift_dist) > DRIFT_Z:
        problems.append(f"‖w − w*‖² drifts between halves (z = {drift_dist:.1f}): the chains are still "
                        "spreading from w*, λ̂ is likely too low (step too small or run too short)")
    if abs(sens) - 2 * sens_se > GAMMA_SENSITIVITY * abs(value):
        problems.append(
            f"λ̂ depends on the localization: dλ̂/d log γ = {sens:+.3g} ± {sens_se:.2g} "
            f"({100 * abs(sens) / abs(value):.0f}% of λ̂ per e-fold of γ): γ/2‖w − w*‖² holds directions "
            f"whose posterior spread at this nβ exceeds 1/√γ = {1 / math.sqrt(float(gamma)):.2g} (high-order "
            "singular directions, e.g. the dead units of deep nets), so λ̂ is "
            + ("below" if sens < 0 else "above") + " λ(w*); a smaller gamma (with more steps) moves it "
            "toward λ(w*)")
    equil = {}
    if hot_start is not None:
        equil = _equilibration_check(x, healthy_draws(hot_start, min_chains=1)[0], beta, nll_center)
        if abs(equil["equilibration_z"]) > EQUILIBRATION_Z:
            problems.append(
                f"chains started at w* and chains started hot disagree over the second half of the "
                f"run: λ̂ {equil['cold_start_llc']:.3g} vs {equil['hot_start_llc']:.3g} (z = "
                f"{equil['equilibration_z']:+.1f}). Neither has equilibrated; the localized value "
                "likely lies between them: run longer (or a larger γ)")
    if value < 0:
        problems.append("negative LLC: w* is not a local minimum, or SGLD found lower loss nearby")
    if num_params is not None and value - 4 * beta * se > num_params / 2:
        problems.append(f"LLC {value:.3g} exceeds d/2 = {num_params / 2:g}, impossible for a learning "
                        "coefficient: the chains left w*'s basin (step size too large?)")
    if warn:
        for p in problems:
            warnings.warn(f"llc: {p}", stacklevel=3)
    details = {
        "per_chain": per_chain.tolist(), "rhat": r, "ess": ess, "mala_accept": mala,
        "mala_checks": mala_checks, "predicted_bias": bias, "bias_minibatch": bias_noise,
        "bias_discretization": bias_disc,
        "drift_z": drift, "drift_z_distance": drift_dist, "gamma_sensitivity": sens,
        "gamma_sensitivity_se": sens_se, "unhealthy": unhealthy, "beta": beta,
        "n": samples.n,
        "nll_center": nll_center, "gamma": gamma, "step_size": attrs.get("step_size"),
        "batch_size": attrs.get("batch_size"), "nll_kind": attrs.get("nll_kind"),
        "problems": problems, "samples": samples, **equil,
    }
    if hot_start is not None:
        details["hot_start_samples"] = hot_start
    details["diagnostics"] = (
        f"chains {x.shape[0]} (+{unhealthy} unhealthy) | draws {x.shape[1]} | R-hat {r:.3f} | "
        f"ESS {ess:.0f} | MALA acc {mala:.2f} | ε-bias {bias:+.3g} | drift z {drift:+.1f} (‖w−w*‖² {drift_dist:+.1f}) | "
        f"dλ̂/dlog γ {sens:+.3g} ± {sens_se:.2g} | "
        + (f"cold/hot start λ̂ {equil['cold_start_llc']:.3g}/{equil['hot_start_llc']:.3g} "
           f"(z {equil['equilibration_z']:+.1f}) | " if equil else "")
        + f"ε {attrs.get('step_size')} γ {gamma} β {beta:.4g} n {samples.n}"
        + ("" if not problems else " | WARN: " + "; ".join(problems))
    )
    return Estimate(value, beta * se, method="llc", details=details)


def _equilibration_check(cold, hot, beta, nll_center) -> dict:
    """λ̂ over the second half of the draws of chains started at w* (``cold``, (chain, draw)) and
    of chains started hot, and the z of their difference. The first halves are left out: there
    the hot chains are still relaxing in, and that transient alone says nothing."""
    out = {}
    for name, x in (("cold_start", cold), ("hot_start", hot)):
        mean, se, _ = mean_se(x[:, x.shape[1] // 2:])
        out[f"{name}_llc"], out[f"{name}_llc_se"] = beta * (mean - nll_center), beta * se
    gap = out["hot_start_llc"] - out["cold_start_llc"]
    out["equilibration_z"] = gap / math.hypot(out["cold_start_llc_se"], out["hot_start_llc_se"])
    return out


def predicted_bias_too_large(bias: float, value: float, *, floor: float = 0.0) -> bool:
    """Whether SGLD's predicted ε-bias ``bias`` of the estimate ``value`` exceeds PREDICTED_BIAS of
    the bias-free level value − bias (and ``floor``, e.g. the Monte Carlo error); NaN: no."""
    return abs(bias) > max(PREDICTED_BIAS * abs(value - bias), floor)


def _checked_mean(samples: Samples, name: str) -> tuple[float, int]:
    """Mean of a per-draw diagnostic over the healthy chains' checked draws (NaN elsewhere)."""
    if name not in samples:
        return float("nan"), 0
    a = samples[name].values[0][samples.healthy.values[0]]
    a = a[np.isfinite(a)]
    return (float(a.mean()) if a.size else float("nan")), int(a.size)


def gamma_sensitivity(nll, sq_distance, *, beta: float, gamma: float) -> tuple[float, float]:
    """dλ̂/d log γ from the draws of one localized run: −(βγ/2) Cov(nL_n, ‖w − w*‖²).

    The localized density ∝ exp(−βH − γ/2‖w − w*‖²) gives ∂E[H]/∂γ = −Cov(H, ‖w − w*‖²)/2
    (the same identity as the specific heat's ∂E/∂β = −Var H). A λ̂ that moves with γ is shaped
    by the localization, not by L_n alone: the localization truncates every direction whose
    posterior spread at this nβ exceeds 1/√γ, which lowers λ̂ below λ(w*) (it vanishes as
    n → ∞ at fixed γ, but slowly for high-order directions: on a depth-5 rank-1 deep linear net
    at n = 1e4 it is −1.25 per e-fold at γ = 100, where λ̂ is 2.1 against λ = 12.5). ``nll`` and
    ``sq_distance`` are (chain, draw) arrays; the minibatch nll of SGLD is an unbiased stand-in
    for H here (its noise is independent of the position). Returns (value, standard error), the
    error from the spread of the per-chain covariances (NaN with one chain).
    """
    h, q = np.asarray(nll, float), np.asarray(sq_distance, float)
    if h.shape != q.shape or h.ndim != 2:
        raise InvalidArgumentError(f"`nll` and `sq_distance` must be (chain, draw) arrays of one shape, "
                                   f"got {h.shape} and {q.shape}")
    scale = -0.5 * beta * gamma
    value = scale * float(np.mean((h - h.mean()) * (q - q.mean())))
    per_chain = scale * np.mean((h - h.mean(axis=1, keepdims=True)) * (q - q.mean(axis=1, keepdims=True)), axis=1)
    se = float(per_chain.std(ddof=1) / math.sqrt(h.shape[0])) if h.shape[0] >= 2 else float("nan")
    return value, se


def max_curvature(target: Target, center, *, beta: float | None = None, gamma: float = 100.0,
                  iters: int = 60, tol: float = 1e-4) -> float:
    """κ̂: the largest |eigenvalue| of −∇² log p(u) at ``center`` (= w*), by power iteration.

    The density is the one SGLD moves on: tempered (β, default 1/log n), localized (γ), prior and
    Jacobian included, in the sampler's unconstrained space, on the full data. Langevin steps are
    stable for ε < 2/κ̂; ε = 1/(4κ̂) keeps the discretization bias small where the curvature is
    largest (the ``slt-thermo llc`` default, a fast alternative to :func:`sgld_step_size`; at a
    singular w* the curvature grows away from it, so check the run's MALA acceptance). Hessian-
    vector products by forward-over-reverse autodiff, or by central differences of the gradient
    where autodiff gives NaN (e.g. w**k at w = 0). Returns NaN if the products are not finite.
    """
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    beta = _default_beta(target) if beta is None else float(beta)
    flat, unravel = ravel_pytree(target.to_unconstrained(center))
    center_j = jax.tree_util.tree_map(jnp.asarray, center)

    def f(tg, v):
        return -tg.log_density_unconstrained(unravel(v), beta, center_j, gamma)

    grad = jax.grad(f, argnums=1)
    exact_hvp = jax.jit(lambda tg, v, t: jax.jvp(lambda x: grad(tg, x), (v,), (t,))[1])
    h = 1e-3 * (1.0 + float(jnp.max(jnp.abs(flat))) if flat.size else 1.0)
    fd_hvp = jax.jit(lambda tg, v, t: (grad(tg, v + h * t) - grad(tg, v - h * t)) / (2 * h))
    t = jax.random.normal(jax.random.PRNGKey(0), flat.shape, flat.dtype)
    t = t / jnp.linalg.norm(t)
    hvp = exact_hvp if bool(jnp.all(jnp.isfinite(exact_hvp(target, flat, t)))) else fd_hvp
    kappa = float("nan")
    for _ in range(iters):
        hv = hvp(target, flat, t)
        new = abs(float(t @ hv))
        norm = float(jnp.linalg.norm(hv))
        if not (math.isfinite(norm) and norm > 0):
            return float("nan")
        t = hv / norm
        if math.isfinite(kappa) and abs(new - kappa) <= tol * new:
            return new
        kappa = new
    return kappa


def sgld_step_size(
    target: Target,
    center,
    *,
    key,
    beta: float | None = None,
    gamma: float = 100.0,
    batch_size: int | None = None,
    candidates=None,
    num_chains: int = 8,
    num_steps: int = 2000,
    target_accept: float = 0.9,
    max_bias: float = PREDICTED_BIAS,
    preconditioner: str | None = None,
    control_variate: bool = False,
):
    """Pick an SGLD step size by a short sweep: stable, with a small predicted ε-bias, mixing.

    Each candidate ε (default: 11 geometric values from 1e-4/(nβ) to 10/(nβ): the curvature of
    βH grows like nβ, and so does the largest stable step; with ``preconditioner="rmsprop"``,
    from 1e-3/√κ̂ to 1/√κ̂, κ̂ = :func:`max_curvature`, since G ≈ 1/√curvature) runs ``num_chains``
    localized SGLD chains of ``num_steps`` steps from w*, discarding the first quarter, and
    estimates λ̂(ε) with its diagnostics. A candidate is

    - *sound* when every chain stays finite, the mean probability that exact MALA would accept a
      Langevin move of that ε along the chains is ≥ ``target_accept``, and λ̂(ε) ≤ d/2 (+4 se):
      a learning coefficient cannot exceed d/2, and an unstable step throws the chains out of
      w*'s basin onto flat regions where the acceptance looks fine;
    - *small-bias* when SGLD's predicted first-order ε-bias b(ε) (``details["predicted_bias"]``
      of :func:`llc`: minibatch noise plus discretization, measured at the sweep's draws; see
      :mod:`slt_thermo.samplers.sgld`) is at most ``max_bias`` of the level max(λ̂ − b) over
      the sound candidates (``table.attrs["llc_level"]``: a small ε's own λ̂ is still low
      after a short sweep at small γ);
    - *mixing* when the chains' slow observable has an integrated autocorrelation time
      τ = draws/ESS of at most half the burn-in (a too small step never leaves w*: huge τ) and
      neither it nor the nll trace drifts between its halves (|z| < 4). The slow observable is
      ‖w − w*‖² for plain SGLD (recorded by :func:`~slt_thermo.sample_sgld` as
      ``sq_distance``; the minibatch nll looks white even while the chains have barely started to
      spread along the flat directions that set λ, which relax in ~1/(εγ) steps where only the
      localization confines them) and the nll under RMSprop (G ≈ 1/√γ lets the dead-unit
      coordinates relax in ~1/(ε√γ) steps; what stays slow in ‖w − w*‖² is motion along
      symmetry orbits, A → cA, B → B/c, on which L_n is constant).

    The largest sound, small-bias ε is returned: it spreads the chains fastest, and its bias is
    bounded by prediction rather than read off λ̂(ε) across the sweep (which at small γ mixes
    the ε-bias with how far the chains got from w* in ``num_steps``: on noisy data λ̂(ε) rose
    from 9 to 48 over the sweep on deep_linear((10, 9, 8, 8, 8), 8), NUTS 37). If no sound ε
    has a small predicted bias, the smallest sound ε is returned with a warning; if the
    returned ε does not mix within the sweep, a warning says λ̂ is likely too low unless the
    run is much longer (typical at γ ≲ 1 and at the most singular true points of deep nets).
    Why prediction: SGLD's bias is first order in ε, and MALA acceptance, which uses exact
    gradients, cannot see its minibatch part, which dominates on noisy data (by nβ/B): on
    deep_linear((17, 16, 16), 1) at γ = 1 an ε with acceptance 0.91 put λ̂ 36% above NUTS, its
    predicted bias +37 against the observed +38. Returns ``(step_size, table)``: a pandas
    DataFrame of the candidates (``sound``, ``small_bias``, ``mixing``, ``predicted_bias`` and
    its parts, ``chosen``, ...), with ``bias_certified`` and ``mixing`` (of the chosen ε) in
    ``table.attrs``; raises :class:`SLTThermoError` if no candidate is sound.
    ``control_variate=True`` sweeps SGLD-CV (:func:`~slt_thermo.sample_sgld`), whose smaller
    minibatch part of b(ε) lets a larger ε pass the cap.
    """
    import pandas as pd

    beta = _default_beta(target) if beta is None else float(beta)
    batch_size = min(target.n, 256) if batch_size is None else batch_size
    center = jax.tree_util.tree_map(lambda x: np.asarray(x, dtype=np.float32), center)
    if candidates is None:
        candidates = _default_candidates(target, center, beta, gamma, preconditioner)
    candidates = np.asarray(candidates, float)
    nll_center = float(target.nll(center))
    d = _num_params(center)
    rows = []
    for i, eps in enumerate(sorted(candidates)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = sample_sgld(target, [beta], step_size=float(eps), num_chains=num_chains,
                            num_steps=num_steps, num_burnin=num_steps // 4, batch_size=batch_size,
                            key=jax.random.fold_in(key, i), center=center, gamma=gamma,
                            preconditioner=preconditioner, control_variate=control_variate,
                            init=center, keep_params=False, progress=False)
        healthy = bool(s.healthy.values.all())
        row = {"step_size": float(eps), "healthy": healthy, "mala_accept": 0.0, "tau": float("inf"),
               "drift_z": float("nan"), "tau_nll": float("inf"), "drift_z_nll": float("nan"),
               "llc": float("nan"), "llc_se": float("nan"), "bias_minibatch": float("nan"),
               "bias_discretization": float("nan"), "predicted_bias": float("nan")}
        if healthy:
            est = llc_from_samples(s, nll_center, beta=beta, num_params=d, warn=False)
            det = est.details
            dist2 = np.asarray(s["sq_distance"].values[0], float)  # (chain, draw)
            _, _, ess_dist2 = mean_se(dist2)
            row.update(mala_accept=det["mala_accept"], llc=est.value, llc_se=est.stderr,
                       tau=dist2.size / max(ess_dist2, 1e-12), drift_z=_drift_z(dist2),
                       tau_nll=s.nll.size / max(det["ess"], 1e-12), drift_z_nll=det["drift_z"],
                       bias_minibatch=det["bias_minibatch"],
                       bias_discretization=det["bias_discretization"],
                       predicted_bias=det["predicted_bias"])
        row["sound"] = bool(healthy and row["mala_accept"] >= target_accept
                            and row["llc"] - 4 * row["llc_se"] <= d / 2)
        slow_tau = row["tau"] if preconditioner is None else row["tau_nll"]
        row["mixing"] = bool(slow_tau <= (num_steps // 4) / 2 and abs(row["drift_z"]) < 4
                             and abs(row["drift_z_nll"]) < 4)
        rows.append(row)
    table = pd.DataFrame(rows)
    sound = table[table["sound"]]
    if sound.empty:
        raise SLTThermoError(
            "no candidate step size is sound (finite, MALA acceptance >= "
            f"{target_accept}, LLC <= d/2):\n{table.to_string(index=False)}"
        )
    # the bias is judged against the level λ̂ − b of the best-spread sound candidate: at small γ a
    # small ε's own λ̂ is still low after the sweep (too slow), which would make the cap stricter
    level = float((sound["llc"] - sound["predicted_bias"]).max())
    table["small_bias"] = table["predicted_bias"].abs() <= max_bias * abs(level)
    ok = table[table["sound"] & table["small_bias"]]
    certified = not ok.empty
    if certified:  # the largest such ε: it spreads the chains fastest
        row = ok.loc[ok["step_size"].idxmax()]
    else:
        row = sound.loc[sound["step_size"].idxmin()]
        warnings.warn(
            f"sgld_step_size: every sound ε has a predicted ε-bias above {max_bias:.0%} of λ̂; using "
            f"the smallest, {row['step_size']:.3g} (predicted bias {row['predicted_bias']:.3g} on "
            f"λ̂ {row['llc']:.3g}). Consider smaller candidates or a larger batch_size", stacklevel=2,
        )
    chosen = float(row["step_size"])
    if not row["mixing"]:
        warnings.warn(
            f"sgld_step_size: the chosen ε = {chosen:.3g} does not mix within the sweep ({num_steps} "
            f"steps): ‖w − w*‖² has τ = {row['tau']:.0f} draws (nll: {row['tau_nll']:.0f}; limit "
            f"{(num_steps // 4) / 2:g}) and drift z = {row['drift_z']:+.1f} (nll: {row['drift_z_nll']:+.1f}). "
            "The chains may still be spreading from w* along flat directions, so λ̂ is likely too "
            "LOW unless the run is much longer than the sweep. Consider more steps, "
            "preconditioner='rmsprop', or a smaller gamma", stacklevel=2,
        )
    table["chosen"] = table["step_size"] == chosen
    table.attrs.update(bias_certified=certified, mixing=bool(row["mixing"]), llc_level=level)
    return chosen, table


def _default_candidates(target, center, beta, gamma, preconditioner):
    """The sweep's ε grid. Plain SGLD: 11 values from 1e-4/(nβ) to 10/(nβ) (the curvature of βH
    grows like nβ, and so does the largest stable step). RMSprop: G ≈ 1/√h in a direction of
    curvature h (V ≈ E[g²] ≈ h once the chain has spread), so the stable bound is ε ≲ 2/√κ̂ with
    κ̂ = :func:`max_curvature`: 11 values from 1e-3/√κ̂ to 1/√κ̂."""
    if preconditioner is None:
        return np.geomspace(1e-4, 10.0, 11) / (target.n * beta)
    kappa = max_curvature(target, center, beta=beta, gamma=gamma)
    if not (math.isfinite(kappa) and kappa > 0):
        raise SLTThermoError("sgld_step_size: the curvature at `center` is not finite; give `candidates`")
    return np.geomspace(1e-3, 1.0, 11) / math.sqrt(kappa)
