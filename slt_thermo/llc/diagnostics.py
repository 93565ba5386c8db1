"""λ̂ from a localized run and the diagnostics that say when to distrust it.

λ̂ = β (E[nL_n] − nL_n(w*)) over the draws of one localized run at one β (Lau et al.,
arXiv:2308.12108), with: per-chain λ̂, R-hat and ESS of the nll trace, the mean MALA
acceptance of Langevin moves of the run's step (discretization check), SGLD's predicted
first-order ε-bias, the count of non-finite chains (excluded, never averaged), first-/second-half
drift tests of nL_n (burn-in) and of ‖w − w*‖² (mixing), the sensitivity dλ̂/dlog γ to the
localization, and the cold-vs-hot-start comparison of :func:`~slt_thermo.llc`'s
``check_equilibration``. Pure functions of :class:`~slt_thermo.Samples`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .._utils import check_samples, positive_int, real_scalar
from ..errors import ConvergenceWarning, InvalidArgumentError, NumericalWarning
from ..results import Estimate, Samples, rhat
from ..thermo.stats import healthy_draws, mean_se

# llc warns when SGLD's predicted ε-bias exceeds this fraction of λ̂ (and 2 standard errors)
PREDICTED_BIAS = 0.05
# llc warns when |dλ̂/d log γ| exceeds this fraction of λ̂ (beyond 2 standard errors)
GAMMA_SENSITIVITY = 0.1
# llc warns when the second half of the draws differs from the first by more (in se), for nL_n
# and for ‖w − w*‖²: burn-in too short, or chains still spreading from w*
DRIFT_Z = 4.0
# check_equilibration: llc warns when the cold- and hot-started chains' second halves differ by more
EQUILIBRATION_Z = 4.0


def drift_z(x) -> float:
    """z-score of (second-half mean − first-half mean) of a (chain, draw) trace."""
    h = x.shape[1] // 2
    if h < 4:
        return float("nan")
    m1, s1, _ = mean_se(x[:, :h])
    m2, s2, _ = mean_se(x[:, h:])
    return (m2 - m1) / math.sqrt(s1**2 + s2**2) if s1 + s2 > 0 else 0.0


def predicted_bias_too_large(bias: float, value: float, *, floor: float = 0.0) -> bool:
    """Whether SGLD's predicted ε-bias ``bias`` of the estimate ``value`` exceeds PREDICTED_BIAS of
    the bias-free level value − bias (and ``floor``, e.g. the Monte Carlo error); NaN: no."""
    return abs(bias) > max(PREDICTED_BIAS * abs(value - bias), floor)


def gamma_sensitivity(nll, sq_distance, *, beta: float, gamma: float) -> tuple[float, float]:
    """dλ̂/d log γ from the draws of one localized run: −(βγ/2) Cov(nL_n, ‖w − w*‖²).

    The localized density ∝ exp(−βH − γ/2‖w − w*‖²) gives ∂E[H]/∂γ = −Cov(H, ‖w − w*‖²)/2
    (the same identity as the specific heat's ∂E/∂β = −Var H). A λ̂ that moves with γ is shaped
    by the localization, not by L_n alone: the localization truncates every direction whose
    posterior spread at this nβ exceeds 1/√γ, which lowers λ̂ below λ(w*) (it vanishes as
    n → ∞ at fixed γ, but slowly for high-order directions; measurements in
    ``benchmarks/README.md``). ``nll`` and ``sq_distance`` are (chain, draw) arrays; the
    minibatch nll of SGLD is an unbiased stand-in for H here (its noise is independent of the
    position). Returns (value, standard error), the error from the spread of the per-chain
    covariances (NaN with one chain).
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


def llc_from_samples(samples: Samples, nll_center: float, *, beta: float | None = None,
                     num_params: int | None = None, warn: bool = True,
                     hot_start: Samples | None = None) -> Estimate:
    """λ̂ = β (E[nL_n] − nL_n(w*)) from a localized run at one β, with its diagnostics.

    ``num_params`` (d) enables the bound check: a learning coefficient never exceeds d/2, so
    λ̂ > d/2 (beyond 4 standard errors) means the chains left the basin of w* — almost always
    a step size too large for the curvature at w*. ``hot_start``: a second run of the same
    posterior whose chains started spread beyond it (:func:`~slt_thermo.llc`'s
    ``check_equilibration``); λ̂ stays the first run's, and the two runs' second halves are
    compared (``details["equilibration_z"]``, warning above EQUILIBRATION_Z). ``warn=False``
    only records the problems in ``details["problems"]``.
    """
    check_samples(samples)
    nll_center = real_scalar(nll_center, "nll_center")
    beta = float(samples.betas[0]) if beta is None else real_scalar(beta, "beta", minimum=0.0)
    if num_params is not None:
        num_params = positive_int(num_params, "num_params")
    if hot_start is not None:
        check_samples(hot_start, "hot_start")
    unhealthy = int((~samples.healthy.values[0]).sum())
    x = healthy_draws(samples, min_chains=1)[0]  # (chain, draw); warns if chains were dropped
    mean, se, ess = mean_se(x)
    value = beta * (mean - nll_center)
    attrs = samples.ds.attrs
    d = dict(per_chain=(beta * (x.mean(axis=1) - nll_center)).tolist(),
             rhat=rhat(x) if x.shape[0] >= 2 else float("nan"), ess=ess, unhealthy=unhealthy,
             beta=beta, n=samples.n, nll_center=nll_center, gamma=attrs.get("gamma"),
             step_size=attrs.get("step_size"), batch_size=attrs.get("batch_size"),
             nll_kind=attrs.get("nll_kind"))
    d["mala_accept"], d["mala_checks"] = _checked_mean(samples, "mala_accept")
    # SGLD's predicted first-order ε-bias of λ̂ (in units of β_run·H, like the stats)
    to_beta = beta / float(samples.betas[0])
    d["bias_minibatch"] = _checked_mean(samples, "minibatch_excess")[0] * to_beta
    d["bias_discretization"] = _checked_mean(samples, "discretization_excess")[0] * to_beta
    d["predicted_bias"] = d["bias_minibatch"] + d["bias_discretization"]
    d["drift_z"] = drift_z(x)
    d["drift_z_distance"] = d["gamma_sensitivity"] = d["gamma_sensitivity_se"] = float("nan")
    if "sq_distance" in samples:  # the slow observable ‖w − w*‖²: drift and dλ̂/dlog γ
        dist2 = np.asarray(samples["sq_distance"].values[0][samples.healthy.values[0]], float)
        d["drift_z_distance"] = drift_z(dist2)
        if d["gamma"]:
            d["gamma_sensitivity"], d["gamma_sensitivity_se"] = gamma_sensitivity(
                x, dist2, beta=beta, gamma=float(d["gamma"]))
    if hot_start is not None:
        d.update(_equilibration_check(x, healthy_draws(hot_start, min_chains=1)[0], beta, nll_center))
        d["hot_start_samples"] = hot_start
    d["problems"] = _problems(d, value, beta * se, num_params)
    if warn:
        for p in d["problems"]:
            warnings.warn(f"llc: {p}", NumericalWarning if "non-finite" in p else ConvergenceWarning, stacklevel=3)
    d["samples"] = samples
    d["diagnostics"] = _diagnostics_line(d, x.shape)
    return Estimate(value, beta * se, method="llc", details=d)


def _problems(d: dict, value: float, se: float, num_params: int | None) -> list[str]:
    """The warnings a run's diagnostics ``d`` call for (λ̂ = ``value`` ± ``se``)."""
    out = []
    bias, sens, sens_se = d["predicted_bias"], d["gamma_sensitivity"], d["gamma_sensitivity_se"]
    if d["unhealthy"]:
        out.append(f"{d['unhealthy']} chain(s) went non-finite and were excluded: step size too large?")
    if d["mala_accept"] < 0.5:
        out.append(f"MALA acceptance {d['mala_accept']:.2f} < 0.5: the step size is too large for this posterior")
    if d["rhat"] > 1.05:
        out.append(f"R-hat of nll {d['rhat']:.3f} > 1.05: chains disagree (burn-in too short or step too small)")
    if predicted_bias_too_large(bias, value, floor=2 * se):
        out.append(
            f"SGLD's predicted ε-bias is {bias:+.3g} ({100 * bias / abs(value - bias):.0f}% of λ̂; "
            f"minibatch noise {d['bias_minibatch']:+.3g}, discretization {d['bias_discretization']:+.3g}): "
            "a smaller step_size (the minibatch part also shrinks with a larger batch_size)")
    if abs(d["drift_z"]) > DRIFT_Z:
        out.append(f"nll drifts between halves (z = {d['drift_z']:.1f}): burn-in too short")
    if abs(d["drift_z_distance"]) > DRIFT_Z:
        out.append(f"‖w − w*‖² drifts between halves (z = {d['drift_z_distance']:.1f}): the chains are still "
                   "spreading from w*, λ̂ is likely too low (step too small or run too short)")
    if abs(sens) - 2 * sens_se > GAMMA_SENSITIVITY * abs(value):
        out.append(
            f"λ̂ depends on the localization: dλ̂/d log γ = {sens:+.3g} ± {sens_se:.2g} "
            f"({100 * abs(sens) / abs(value):.0f}% of λ̂ per e-fold of γ): γ/2‖w − w*‖² holds directions "
            f"whose posterior spread at this nβ exceeds 1/√γ = {1 / math.sqrt(float(d['gamma'])):.2g} (high-order "
            "singular directions, e.g. the dead units of deep nets), so λ̂ is "
            + ("below" if sens < 0 else "above") + " λ(w*); a smaller gamma (with more steps) moves it "
            "toward λ(w*)")
    if "equilibration_z" in d and abs(d["equilibration_z"]) > EQUILIBRATION_Z:
        out.append(
            f"chains started at w* and chains started hot disagree over the second half of the "
            f"run: λ̂ {d['cold_start_llc']:.3g} vs {d['hot_start_llc']:.3g} (z = "
            f"{d['equilibration_z']:+.1f}). Neither has equilibrated; the localized value "
            "likely lies between them: run longer (or a larger γ)")
    if value < 0:
        out.append("negative LLC: w* is not a local minimum, or SGLD found lower loss nearby")
    if num_params is not None and value - 4 * se > num_params / 2:
        out.append(f"LLC {value:.3g} exceeds d/2 = {num_params / 2:g}, impossible for a learning "
                   "coefficient: the chains left w*'s basin (step size too large?)")
    return out


def _diagnostics_line(d: dict, shape) -> str:
    """The one-line summary an Estimate's repr prints."""
    equil = (f"cold/hot start λ̂ {d['cold_start_llc']:.3g}/{d['hot_start_llc']:.3g} "
             f"(z {d['equilibration_z']:+.1f}) | " if "equilibration_z" in d else "")
    return (
        f"chains {shape[0]} (+{d['unhealthy']} unhealthy) | draws {shape[1]} | R-hat {d['rhat']:.3f} | "
        f"ESS {d['ess']:.0f} | MALA acc {d['mala_accept']:.2f} | ε-bias {d['predicted_bias']:+.3g} | "
        f"drift z {d['drift_z']:+.1f} (‖w−w*‖² {d['drift_z_distance']:+.1f}) | "
        f"dλ̂/dlog γ {d['gamma_sensitivity']:+.3g} ± {d['gamma_sensitivity_se']:.2g} | " + equil
        + f"ε {d['step_size']} γ {d['gamma']} β {d['beta']:.4g} n {d['n']}"
        + ("" if not d["problems"] else " | WARN: " + "; ".join(d["problems"]))
    )


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


def _checked_mean(samples: Samples, name: str) -> tuple[float, int]:
    """Mean of a per-draw diagnostic over the healthy chains' checked draws (NaN elsewhere)."""
    if name not in samples:
        return float("nan"), 0
    a = samples[name].values[0][samples.healthy.values[0]]
    a = a[np.isfinite(a)]
    return (float(a.mean()) if a.size else float("nan")), int(a.size)
