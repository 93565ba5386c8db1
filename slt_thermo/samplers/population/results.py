"""The results of annealing: :class:`AnnealingResult`, :class:`BDMCResult`, and how a run's state
becomes them (the per-rung dataset, the final population as :class:`~slt_thermo.Samples`)."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import jax
import numpy as np
import xarray as xr
from jax.flatten_util import ravel_pytree
from scipy.special import logsumexp as _np_logsumexp

from ...results import Estimate, Samples, clean_attrs
from ..._utils import package_version
from ..records import leaf_names, to_dataset
from ..run import Plan
from .resampling import _normalize, _resample_w
from .rung import _dtype

if TYPE_CHECKING:
    from .anneal import AnnealState, _Ctx


@dataclasses.dataclass
class AnnealingResult:
    """The outcome of :func:`population_annealing` or :func:`ais`.

    Attributes:
        rungs: ``xarray.Dataset`` over the rungs (coordinate ``beta``, the ladder from β_0 = 0)
            and the independent runs (``run``):

            - ``log_z`` (beta): log Ẑ(β) = log mean_r Ẑ_r(β) (Machta's combination; log Z(0) = 0
              for a normalized prior), ``log_z_se`` its standard error: the larger of the
              spread of the runs (num_runs ≥ 2; else ``log_z_se_within``, the delta method,
              perfect mixing) and ``log_z_se_family``, sqrt((ρ_t − 1)/R) from the genealogy
              (Chan & Lai 2013), which sees families lost to moves that mix too little (linear
              regressions, 20 seeds, R = 512: the delta method covered 55–70% of the errors
              within 2 se, the family one 80–100%) and, counting the resampling's own drift,
              runs up to ~1.5× the true error under perfect mixing (conservative);
              ``log_z_se_runs`` the spread of the runs alone (NaN for one run); ``log_z_run``
              (run, beta) per run;
            - ``sweeps`` (run, beta): MCMC sweeps of each rung (population annealing doubles
              them while ρ_t outruns ρ_f, see :func:`~.anneal.family_collapse`);
            - ``E``, ``Var`` (beta): E^β[nL_n] and Var^β[nL_n] weighted by Ẑ_r across runs
              (⟨H⟩ and ⟨H²⟩ weighted separately), so β²·Var is the specific heat; ``E_se``;
              ``E_run``, ``Var_run`` per run;
            - ``ess`` / ``ess_frac`` (run, beta): weight ESS (Σω)²/Σω² of the update into the rung
              (NaN at β_0); ``rho_f_delta`` (run, beta): Σ_{l≤k}(R/ESS_l − 1);
            - ``families`` (surviving families), ``families_eff`` (e^{S_f}), ``rho_t``
              (R Σ ν_i²) per (run, beta); ``acceptance_rate``, ``step_size``, ``grad_evals``;
            - ``num_nonfinite`` (run, beta): particles whose energy is non-finite at the rung
              (after its move; at β_0 the initial ones). They get zero weight: PA resamples them
              away, AIS keeps them at weight 0, and the rung statistics leave them out; the run
              warns (:class:`~slt_thermo.NumericalWarning`) when any were dropped, and raises
              :class:`~slt_thermo.errors.NumericalError` when a run has none finite.
              ``attrs["num_nonfinite"]`` is the sum over runs and rungs;
            - when the target declares observables (coordinate ``observable``, their names):
              ``obs_mean`` (beta, observable), the weighted E^β[A] combined across runs like
              ``E``; ``obs_mean_se`` its standard error like ``E_se`` (family-clustered within a
              run; the spread of the runs when num_runs ≥ 2); ``obs_mean_run``,
              ``obs_mean_se_run`` (run, beta, observable) per run; ``obs_cov`` (beta, quantity,
              quantity2), the weighted covariance matrix of (H, A_1, ..., A_K) over
              ``quantity = ["nll", *names]``, combined across runs like ``Var`` (so
              ``obs_cov[nll, nll]`` is ``Var`` and ``obs_cov[nll, A]`` is Cov^β(H, A) =
              −dE^β[A]/dβ), and ``obs_cov_run`` (run, beta, quantity, quantity2).
        samples: the final population at β_max as :class:`~slt_thermo.Samples` (one β, the
            particles of all runs as chains, one draw), resampled to equal weight, with one
            variable per observable (``samples.observable_names``).
        log_weights: AIS only: the final log weights, (run, chain).
        tuning: the tuning (population mean, preconditioner, step size) used at each rung.
        state: the final :class:`AnnealState` (``RunOptions(resume=result.state)`` continues a
            run stopped by ``RunOptions(max_chunks=k)``; ``attrs["complete"]`` says whether it
            reached β_max).
        attrs: settings and summary numbers (also ``rungs.attrs``).
    """

    rungs: xr.Dataset
    samples: Samples | None = None
    log_weights: np.ndarray | None = None
    tuning: list | None = dataclasses.field(default=None, repr=False)
    state: AnnealState | None = dataclasses.field(default=None, repr=False)

    @property
    def attrs(self) -> dict:
        return dict(self.rungs.attrs)

    @property
    def betas(self) -> np.ndarray:
        return self.rungs["beta"].values

    @property
    def log_z(self) -> Estimate:
        """log Ẑ at the last rung, with its standard error."""
        r = self.rungs.isel(beta=-1)
        details = {k: self.rungs.attrs[k] for k in ("num_runs", "num_particles", "grad_evals",
                                                    "rho_f_runs", "rho_f_delta", "rho_t", "method",
                                                    "num_nonfinite")
                   if k in self.rungs.attrs}
        details.update(beta=float(r["beta"]), stderr_within=float(r["log_z_se_within"]),
                       num_rungs=int(self.rungs.sizes["beta"]))
        return Estimate(float(r["log_z"]), float(r["log_z_se"]), method=self.rungs.attrs["method"],
                        details=details)

    @property
    def free_energy(self) -> Estimate:
        """F(β_max) = −log Z(β_max) as an :class:`~slt_thermo.Estimate`."""
        lz = self.log_z
        return Estimate(-lz.value, lz.stderr, method=lz.method, details=lz.details)

    def __repr__(self):
        a = self.rungs.attrs
        return (f"AnnealingResult({a.get('method')}, {a.get('target')}, {self.rungs.sizes['beta']} rungs, "
                f"{a.get('num_runs')} run(s) × {a.get('num_particles')} particles, log Z = {self.log_z}, "
                f"{a.get('grad_evals')} gradient evaluations)")


@dataclasses.dataclass
class BDMCResult:
    """The BDMC sandwich: ``lower`` ≤ log Z ≤ ``upper`` in expectation.

    - ``lower`` = mean_i log w_i of forward AIS (E ≤ log Z by Jensen; exactly the left Riemann sum
      −Σ Δβ_k E^{β_{k−1}}[H] with perfect transitions);
    - ``upper`` = mean_i (−log w_rev,i) of reverse AIS started from exact posterior samples
      (E ≥ log Z; the right Riemann sum with perfect transitions);
    - ``lower_lme`` = log mean_i w_i and ``upper_lme`` = −log mean_i w_rev,i: tighter stochastic
      bounds (P(lower_lme > log Z + a) ≤ e^{−a}, and symmetrically);
    - ``forward``, ``reverse``: the two :class:`AnnealingResult` (the reverse one anneals β from 1
      to 0, so its ``log_z`` estimates log Z(0)/Z(1) = −log Z).
    """

    lower: Estimate
    upper: Estimate
    lower_lme: Estimate
    upper_lme: Estimate
    forward: AnnealingResult
    reverse: AnnealingResult

    @property
    def gap(self) -> float:
        """upper − lower: bounds the bias of either estimate (and the forward KL + reverse KL)."""
        return self.upper.value - self.lower.value

    def __repr__(self):
        return (f"BDMCResult(lower={self.lower}, upper={self.upper}, gap={self.gap:.4g}, "
                f"lower_lme={self.lower_lme}, upper_lme={self.upper_lme})")


def _bdmc_result(fwd: AnnealingResult, rev: AnnealingResult) -> BDMCResult:
    lw_f = fwd.log_weights.reshape(-1)
    lw_r = rev.log_weights.reshape(-1)
    n_f, n_r = lw_f.size, lw_r.size
    # a chain that met a non-finite energy has log w = −inf: the bound stays a bound (−inf / +inf),
    # and the details count such chains (both passes have warned)
    bad_f, bad_r = int(np.sum(~np.isfinite(lw_f))), int(np.sum(~np.isfinite(lw_r)))
    with np.errstate(invalid="ignore"):  # the spread of a −inf is NaN, said by the count
        sd_f, sd_r = float(np.std(lw_f, ddof=1)), float(np.std(lw_r, ddof=1))
    lower = Estimate(float(np.mean(lw_f)), sd_f / math.sqrt(n_f),
                     method="bdmc/forward_mean_log_w", details={"num_chains": n_f, "num_nonfinite": bad_f})
    upper = Estimate(float(np.mean(-lw_r)), sd_r / math.sqrt(n_r),
                     method="bdmc/reverse_mean_log_w", details={"num_chains": n_r, "num_nonfinite": bad_r})
    lf = fwd.log_z
    lr = rev.log_z
    lower_lme = Estimate(lf.value, lf.stderr, method="bdmc/forward_log_mean_w", details=lf.details)
    upper_lme = Estimate(-lr.value, lr.stderr, method="bdmc/reverse_log_mean_w", details=lr.details)
    return BDMCResult(lower, upper, lower_lme, upper_lme, fwd, rev)


# ============================================================================== the rungs
def rho_f_increments(ess_inc, R):
    """R/ESS − 1 of each rung's weight update, (run, beta) (0 where there was none, at β_0): their
    sum over rungs is ρ_f, R·Var(log Ẑ) under perfect mixing (REFERENCE §3.1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(ess_inc), R / ess_inc - 1.0, 0.0)


def _combine_runs(wr, x_run, var_run):
    """Machta's combination of per-run means ``x_run`` (run, beta, ...) with weights ``wr`` ∝ Ẑ_r
    (run, beta): (mean, standard error); the error is the spread of the runs when there are
    ≥ 2, else the within-run one from ``var_run``."""
    M = wr.shape[0]
    w = wr.reshape(wr.shape + (1,) * (x_run.ndim - 2))
    mean = np.sum(w * x_run, axis=0)
    if M >= 2:
        return mean, np.sqrt(np.sum(w**2 * (x_run - mean) ** 2, axis=0) * M / (M - 1))
    return mean, np.sqrt(np.sum(w**2 * var_run, axis=0))


def _observable_vars(A, wr, names) -> dict:
    """The per-rung observable variables of ``rungs`` (empty when there are none)."""
    if "obs_mean_run" not in A:
        return {}
    mean_run, cov_run = A["obs_mean_run"], A["obs_cov_run"]
    mean, se = _combine_runs(wr, mean_run, A["obs_mean_var_run"])
    m_run = np.concatenate([A["E_run"][..., None], mean_run], axis=-1)  # (run, beta, 1 + K)
    m = np.sum(wr[..., None] * m_run, axis=0)
    dev = m_run - m
    cov = np.sum(wr[..., None, None] * (cov_run + dev[..., :, None] * dev[..., None, :]), axis=0)
    rbo = ("run", "beta", "observable")
    qq = ("quantity", "quantity2")
    return {"obs_mean": (("beta", "observable"), mean), "obs_mean_se": (("beta", "observable"), se),
            "obs_mean_run": (rbo, mean_run), "obs_mean_se_run": (rbo, np.sqrt(A["obs_mean_var_run"])),
            "obs_cov": (("beta",) + qq, cov), "obs_cov_run": (("run", "beta") + qq, cov_run)}


def _rungs_meta(ctx: _Ctx, st: AnnealState, A, rho_f_delta, complete) -> dict:
    """The attributes of ``rungs``: the run's settings and summary numbers."""
    M, R, spec = ctx.num_runs, ctx.spec.num_particles, ctx.spec
    meta = {
        "method": ctx.method, "n": ctx.target.n, "target": ctx.target.name,
        "population": ctx.target.is_population, "num_particles": R, "num_runs": M,
        "mcmc": spec.kind, "resampling": spec.scheme, "precondition": spec.precondition,
        "num_rungs": len(st.ladder), "grad_evals": int(np.sum(A["grad_evals"])),
        "num_nonfinite": int(np.sum(A["nonfinite"])),
        "rho_f_delta": float(np.mean(rho_f_delta[:, -1])), "rho_t": float(np.mean(A["rho_t"][:, -1])),
        "wall_time_s": st.wall_time_s, "complete": complete,
        "observable_names": ",".join(ctx.target.observable_names), "slt_thermo_version": package_version(),
    }
    if M >= 2:
        meta["rho_f_runs"] = float(R * np.var(A["log_z_run"][:, -1], ddof=1))
    meta.update(ctx.attrs)
    return meta


def _rungs_dataset(ctx: _Ctx, st: AnnealState, complete: bool) -> xr.Dataset:
    """The per-rung curves (``result.rungs``) of a state, with the run's attributes."""
    M, R = ctx.num_runs, ctx.spec.num_particles
    A = {k: np.stack(v, axis=1) for k, v in st.cols.items()}  # (run, beta, ...)
    lz = A["log_z_run"]
    # Machta: log mean_r Ẑ_r, weights w_r ∝ Ẑ_r per rung
    log_z = _np_logsumexp(lz, axis=0) - math.log(M)
    wr = np.exp(lz - _np_logsumexp(lz, axis=0))
    se_within = np.sqrt(np.sum(wr**2 * A["var_within"], axis=0))
    # the genealogy's (Chan & Lai 2013; WMK's ρ_t): sees the families that imperfect moves lose
    se_family = np.sqrt(np.sum(wr**2 * np.maximum(A["rho_t"] - 1.0, 0.0) / R, axis=0))
    E_run, Var_run = A["E_run"], A["Var_run"]
    E, E_se = _combine_runs(wr, E_run, A["E_var_run"])
    Var = np.sum(wr * (Var_run + (E_run - E) ** 2), axis=0)
    se_runs = np.std(M * wr, axis=0, ddof=1) / math.sqrt(M) if M >= 2 else np.full(wr.shape[1], np.nan)
    log_z_se = np.maximum(se_runs if M >= 2 else se_within, se_family)
    ess = A["ess"]
    rho_f_delta = np.cumsum(rho_f_increments(A["ess_inc"], R), axis=1)
    names = list(ctx.target.observable_names)
    coords = {"beta": np.asarray(st.ladder), "run": np.arange(M)}
    if "obs_mean_run" in A:
        coords.update(observable=names, quantity=["nll", *names], quantity2=["nll", *names])
    rb = ("run", "beta")
    ds = xr.Dataset(
        {
            "log_z": ("beta", log_z), "log_z_se": ("beta", log_z_se),
            "log_z_se_within": ("beta", se_within), "log_z_se_family": ("beta", se_family),
            "log_z_se_runs": ("beta", se_runs),
            "log_z_run": (rb, lz), "sweeps": (rb, A["sweeps"].astype(np.int64)),
            "E": ("beta", E), "E_se": ("beta", E_se), "Var": ("beta", Var),
            "E_run": (rb, E_run), "Var_run": (rb, Var_run), "E_se_run": (rb, np.sqrt(A["E_var_run"])),
            "ess": (rb, ess), "ess_frac": (rb, ess / R), "rho_f_delta": (rb, rho_f_delta),
            "families": (rb, A["families"]), "families_eff": (rb, A["families_eff"]),
            "rho_t": (rb, A["rho_t"]), "num_nonfinite": (rb, A["nonfinite"].astype(np.int64)),
            "acceptance_rate": (rb, A["acceptance_rate"]), "step_size": (rb, A["step_size"]),
            "grad_evals": (rb, A["grad_evals"]), **_observable_vars(A, wr, names),
        },
        coords=coords,
    )
    ds.attrs = clean_attrs(_rungs_meta(ctx, st, A, rho_f_delta, complete))
    return ds


# ============================================================================== the final population
@jax.jit
def _final_params(target, template, u):
    """Model-space params, log prior and observables (dict) of flat unconstrained particles."""
    _, unravel = ravel_pytree(template)
    params = jax.vmap(lambda uf: target.to_constrained(unravel(uf)))(u)
    lp = jax.vmap(target.log_prior)(params)
    return params, lp, jax.vmap(target.observables)(params)


@jax.jit
def _equalize(keys, logw, u, H):
    """Systematic resampling of weighted particles (per run) to equal weight."""

    def one(key, lw, u, H):
        idx = _resample_w(key, _normalize(lw), u.shape[0], "systematic")
        return u[idx], H[idx]

    return jax.vmap(one)(keys, logw, u, H)


_ONE_DRAW = Plan(num_warmup=0, num_samples=1, thinning=1, chunk=1, keep_params=True,
                 keep_pointwise=False)


def _final_samples(ctx: _Ctx, st: AnnealState, meta: dict):
    """(Samples of the current population at equal weight, AIS's final log weights or None):
    one β, the particles of all runs as chains, one draw, built by the driver's dataset builder."""
    M, R = ctx.num_runs, ctx.spec.num_particles
    u, H = st.particles.u, st.particles.H
    log_weights = None
    if ctx.spec.scheme == "none":
        log_weights = np.asarray(st.particles.logw, np.float64) + st.offset[:, None]
        u, H = _equalize(jax.random.split(ctx.key_final, M), st.particles.logw, u, H)
    MR = M * R
    params, lp, obs = _final_params(ctx.target, ctx.template, u.reshape((MR, -1)).astype(_dtype()))
    names = leaf_names(ctx.template)
    H = np.asarray(H, float).reshape(1, MR)
    record = {"nll": H, "log_prior": np.asarray(lp, float).reshape(1, MR),
              **{k: np.asarray(obs[k]).reshape(1, MR) for k in ctx.target.observable_names},
              "params": jax.tree_util.tree_map(lambda x: np.asarray(x)[None], params)}
    sds = to_dataset((record,), np.array([float(st.ladder[-1])]), MR, names, _ONE_DRAW,
                      np.isfinite(H), None)
    smeta = dict(meta)
    smeta.update(sampler=ctx.method, num_draws=1, num_warmup=0, num_samples=1,
                 param_names=",".join(names), localized=False, gamma=0.0)
    sds.attrs = clean_attrs(smeta)
    return Samples(sds), log_weights


def _collect(ctx: _Ctx, st: AnnealState, complete: bool) -> AnnealingResult:
    """The AnnealingResult of a state (``complete``: whether it reached the end of its ladder)."""
    ds = _rungs_dataset(ctx, st, complete)
    samples, log_weights = _final_samples(ctx, st, dict(ds.attrs))
    return AnnealingResult(ds, samples, log_weights, list(st.tuning), st)
