"""TherML's thermodynamics read off σS-posterior samples, with error bars.

With H = ρR + δD + γC, β = 1/σ and Z = ∫ q(θ) e^{−βH} dθ (Alemi & Fischer 2018, §4):

- S = KL(p*‖q) = −β⟨H⟩ − log Z, and independently S = ∫_0^β β' Var_{β'}(H) dβ' (∂S/∂β = βVar H);
- the free energy J = ⟨H⟩ + σS equals −σ log Z (eq. 35): checked with S by the second route;
- fluctuation–response (exact, from one run): ∂⟨A⟩/∂κ_B = −Cov(A, B)/σ for a multiplier κ_B of
  the functional B (plus ⟨B⟩ for A = H), ∂⟨A⟩/∂σ = Cov(A, H)/σ², ∂S/∂κ_B = Cov(H, B)/σ²,
  ∂S/∂σ = −Var(H)/σ³; so the
  Maxwell relations (∂⟨D⟩/∂γ = ∂⟨C⟩/∂δ, ∂S/∂γ = ∂⟨C⟩/∂σ) hold term by term, and what can fail is
  their agreement with finite differences between runs;
- the rate capacity K_D = (∂⟨R⟩/∂σ)_D = [Cov(R, H) − Cov(R, D)Cov(D, H)/Var D]/σ² (eq. 31);
- the first law ρ d⟨R⟩ + δ d⟨D⟩ + γ d⟨C⟩ + σ dS = 0 (eq. 26, with dρ = 0 the paper's form), read
  as a residual between two runs at neighbouring multipliers (:func:`first_law`);
- the second law (eq. 39): annealing from q to p* does work W ≥ ΔF = −log Z on average, and
  ⟨e^{−W}⟩ = Z (Jarzynski) (:func:`second_law`).

Covariance-based quantities take their standard errors from a jackknife over blocks of the chains.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from ..errors import InvalidArgumentError
from ..results import Samples
from ..target import Target
from ..thermo.integration import free_energy_curve, ti_curve
from ..thermo.stats import healthy_draws, mean_se, rung_stats
from ..thermo.work import work_statistics
from .posterior import MULTIPLIERS

FUNCTIONAL_OF = {**MULTIPLIERS, "sigma": "H"}


def _check(run, target) -> dict:
    if not isinstance(run, Samples):
        raise InvalidArgumentError(f"`run` must be slt_thermo.Samples, got {type(run).__name__}")
    if not isinstance(target, Target) or target.hyper is None or set(MULTIPLIERS) - set(target.hyper):
        raise InvalidArgumentError("`target` must be the therml.posterior Target the run sampled")
    missing = {"R", "D", "C"} - set(run.observable_names)
    if missing:
        raise InvalidArgumentError(f"`run` does not record {sorted(missing)}: sample a therml.posterior target")
    return {k: float(v) for k, v in target.hyper.items()}


def _draws(run) -> list[dict]:
    """Per rung, {name: (chain, draw) float64} for H, R, D, C over the healthy chains."""
    per = {name: healthy_draws(run, name) for name in ("nll", "R", "D", "C")}
    return [{"H" if k == "nll" else k: np.asarray(v[i], np.float64) for k, v in per.items()}
            for i in range(run.betas.size)]


def _cov(x, y) -> float:
    x, y = x.ravel(), y.ravel()
    return float(np.mean((x - x.mean()) * (y - y.mean())) * x.size / max(x.size - 1, 1))


def _jackknife(draws: dict, f, blocks_per_chain: int = 4) -> tuple[float, float]:
    """f of the pooled draws, and its jackknife standard error over blocks: each chain cut into
    ``blocks_per_chain`` contiguous blocks (more groups than chains alone give a steadier error for
    ratios of covariances; blocks far longer than the autocorrelation time are nearly independent).
    NaN with fewer than 2 blocks."""
    value = f(draws)
    C, T = next(iter(draws.values())).shape
    k = max(1, min(blocks_per_chain, T // 8))
    size = T // k
    blocks = {name: v[:, :k * size].reshape(C * k, size) for name, v in draws.items()}
    G = C * k
    if G < 2:
        return value, float("nan")
    loo = np.array([f({name: np.delete(v, g, axis=0) for name, v in blocks.items()}) for g in range(G)])
    return value, float(math.sqrt((G - 1) / G * np.sum((loo - loo.mean()) ** 2)))


def response(run: Samples, target: Target, of: str, wrt: str) -> xr.Dataset:
    """∂⟨A⟩/∂κ at every rung, A = ``of`` ∈ {R, D, C, H, S} and κ = ``wrt`` ∈ {rho, delta, gamma,
    sigma}, by the exact fluctuation–response identities (module docstring), ± a jackknife
    standard error over blocks of the chains. Dataset over ``beta``: ``value``, ``se``."""
    _check(run, target)
    if of not in ("R", "D", "C", "H", "S") or wrt not in FUNCTIONAL_OF:
        raise InvalidArgumentError(f"`of` must be R, D, C, H or S and `wrt` one of {sorted(FUNCTIONAL_OF)}, "
                                   f"got {of!r}, {wrt!r}")
    B = FUNCTIONAL_OF[wrt]
    rows = []
    for beta, d in zip(run.betas, _draws(run)):
        if of == "S":
            f = (lambda x: -beta**3 * _cov(x["H"], x["H"])) if wrt == "sigma" else (
                lambda x: beta**2 * _cov(x["H"], x[B]))
        elif wrt == "sigma":
            f = lambda x: beta**2 * _cov(x[of], x["H"])  # noqa: E731
        elif of == "H":  # H depends on its multipliers explicitly: ∂⟨H⟩/∂κ_B = ⟨B⟩ − Cov(H, B)/σ
            f = lambda x: float(x[B].mean()) - beta * _cov(x["H"], x[B])  # noqa: E731
        else:
            f = lambda x: -beta * _cov(x[of], x[B])  # noqa: E731
        rows.append(_jackknife(d, f))
    v, se = np.array(rows).T
    return xr.Dataset({"value": ("beta", v), "se": ("beta", se)}, coords={"beta": run.betas},
                      attrs={"of": of, "wrt": wrt})


def table(run: Samples, target: Target) -> xr.Dataset:
    """R, D, C, H, log Z, S (two routes), J, −σ log Z and the rate capacity K_D at every rung of a
    σS-posterior run, with standard errors. The ladder must start at β = 0 (TI).

    Variables over ``beta`` (also ``sigma`` = 1/β): ``R``, ``D``, ``C``, ``H`` (means) and
    ``*_se``; ``log_Z``, ``log_Z_se`` (TI, :func:`~slt_thermo.free_energy_curve`); ``S`` =
    −β⟨H⟩ − log Z and ``S_fluct`` = ∫_0^β β'Var(H)dβ' (trapezoid over the rungs; its ``_se`` from
    the variances' errors); ``J`` = ⟨H⟩ + σ·S_fluct and ``minus_sigma_log_Z`` (equal in exact
    arithmetic: ``J_z`` is their difference in standard errors); ``K_D`` (rate capacity) and its
    jackknife ``K_D_se`` (blocks of the chains). NaN at β = 0 where σ = ∞ makes a quantity undefined.
    """
    mult = _check(run, target)
    betas = run.betas
    if betas[0] != 0:
        raise InvalidArgumentError("`run`'s ladder must start at β = 0 (σ = ∞, the prior) for log Z and S")
    stats = rung_stats(run)
    F, F_se = ti_curve(betas, stats["E"].values, stats["Var"].values, E_se=stats["E_se"].values,
                       V_se=stats["Var_se"].values)  # free_energy_curve's TI, on the stats at hand
    out = {"H": stats["E"].values, "H_se": stats["E_se"].values}
    draws = _draws(run)
    for name in ("R", "D", "C"):
        m = np.array([mean_se(d[name])[:2] for d in draws])
        out[name], out[f"{name}_se"] = m[:, 0], m[:, 1]
    log_z, log_z_se = -F, F_se
    out.update(log_Z=log_z, log_Z_se=log_z_se)
    out["S"] = -betas * out["H"] - log_z
    out["S_se"] = np.hypot(betas * out["H_se"], log_z_se)
    g = betas * stats["Var"].values
    g_se = betas * stats["Var_se"].values
    db = np.diff(betas)
    out["S_fluct"] = np.concatenate([[0.0], np.cumsum(db * (g[1:] + g[:-1]) / 2)])
    # errors of the rungs' variances are independent: the trapezoid's weights in quadrature
    w = np.zeros((betas.size, betas.size))  # row k: the trapezoid weights of ∫_0^{β_k}
    for k in range(1, betas.size):
        w[k, :k] += db[:k] / 2
        w[k, 1:k + 1] += db[:k] / 2
    out["S_fluct_se"] = np.sqrt((w**2) @ g_se**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.where(betas > 0, 1 / np.where(betas > 0, betas, 1), np.inf)
        out["J"] = np.where(betas > 0, out["H"] + sigma * out["S_fluct"], np.nan)
        out["J_se"] = np.where(betas > 0, np.hypot(out["H_se"], sigma * out["S_fluct_se"]), np.nan)
        out["minus_sigma_log_Z"] = np.where(betas > 0, -sigma * log_z, np.nan)
        out["minus_sigma_log_Z_se"] = np.where(betas > 0, sigma * log_z_se, np.nan)
        out["J_z"] = (out["J"] - out["minus_sigma_log_Z"]) / np.hypot(out["J_se"], out["minus_sigma_log_Z_se"])
    kd = [(_jackknife(d, lambda x, b=b: b**2 * (_cov(x["R"], x["H"]) - _cov(x["R"], x["D"]) * _cov(x["D"], x["H"])
                                           / _cov(x["D"], x["D"])))
           if b > 0 else (np.nan, np.nan)) for b, d in zip(betas, draws)]
    out["K_D"], out["K_D_se"] = np.array(kd, dtype=float).T
    ds = xr.Dataset({k: ("beta", np.asarray(v, np.float64)) for k, v in out.items()},
                    coords={"beta": betas, "sigma": ("beta", sigma)})
    ds.attrs.update(mult, n=run.n)
    return ds


def first_law(run_a: Samples, target_a: Target, run_b: Samples, target_b: Target) -> xr.Dataset:
    """The first law ρ̄ΔR + δ̄ΔD + γ̄ΔC + σΔS = 0 between two runs on one β-ladder whose multipliers
    differ a little (bars: midpoints), at every common β > 0, as ``residual`` ± ``se`` and ``z``.

    Per run, X = ⟨ρ̄R + δ̄D + γ̄C − H⟩ − σ log Z (= ρ̄⟨R⟩ + δ̄⟨D⟩ + γ̄⟨C⟩ + σS), its error from the
    per-draw series (correlations of R, D, C, H included) and TI's log Z error; residual =
    X_b − X_a (independent runs). It vanishes to second order in the step: what it tests is that
    log Z from each run's own ladder changes as ∫⟨B⟩dκ_B says.
    """
    ma, mb = _check(run_a, target_a), _check(run_b, target_b)
    if run_a.betas.shape != run_b.betas.shape or not np.allclose(run_a.betas, run_b.betas):
        raise InvalidArgumentError("the two runs must share one β-ladder")
    bar = {k: (ma[k] + mb[k]) / 2 for k in MULTIPLIERS}
    xs = []
    for run in (run_a, run_b):
        curve = free_energy_curve(run)
        rows = []
        for i, (beta, d) in enumerate(zip(run.betas, _draws(run))):
            if beta <= 0:
                rows.append((np.nan, np.nan))
                continue
            q = bar["rho"] * d["R"] + bar["delta"] * d["D"] + bar["gamma"] * d["C"] - d["H"]
            m, se, _ = mean_se(q)
            sigma = 1 / beta
            rows.append((m + sigma * curve["F"].values[i], math.hypot(se, sigma * curve["F_se"].values[i])))
        xs.append(np.array(rows))
    res = xs[1][:, 0] - xs[0][:, 0]
    se = np.hypot(xs[0][:, 1], xs[1][:, 1])
    return xr.Dataset({"residual": ("beta", res), "se": ("beta", se), "z": ("beta", res / se)},
                      coords={"beta": run_a.betas}, attrs={f"{k}_a": v for k, v in ma.items()}
                      | {f"{k}_b": v for k, v in mb.items()})


def second_law(result, log_z: float | None = None) -> dict:
    """The second law (eq. 39) for annealing from q to p*: the work statistics of an AIS run
    (:func:`slt_thermo.thermo.work.work_statistics`): ⟨W⟩ ± se, ΔF = −log Z, the dissipated work
    ⟨W⟩ − ΔF ≥ 0 and Jarzynski's log⟨e^{−W}⟩ (= log Z)."""
    return work_statistics(result, log_z)


__all__ = ["first_law", "response", "second_law", "table"]
