"""Observables of tempered posteriors: Gibbs and Bayes training errors, WAIC, the functional
variance, the singular fluctuation, specific heat, linear-response susceptibilities and the
thermodynamic dictionary (U, S, F, C).

Scale conventions (REFERENCE §0, §2.6), used throughout:

- the energy is H(w) = nL_n(w) = −Σ_i log p(y_i|x_i,w), the full negative log-likelihood
  (normalizers included), stored per draw as ``nll``;
- *per-sample* quantities (Watanabe's scale) are divided by n: the Gibbs training error
  G_t = E^β[L_n], the Bayes training loss T_n and WAIC = T_n + (β/n)V_n;
- *extensive* quantities are not: the functional variance V_n = Σ_i Var_w[log p(y_i|x_i,w)]
  (variance with ddof = 0, as ArviZ), the specific heat C(β) = β² Var^β[nL_n], the singular
  fluctuation ν̂ = (β/2)V_n;
- ArviZ's scale: elpd_waic = lppd − p_waic = −n·WAIC, deviance = −2·elpd_waic.

Two different "variances" (REFERENCE §2.6): Var^β[nL_n] = Var_w[Σ_i ℓ_i] (specific heat, → λ/β²
at β ∝ 1/log n) and V_n = Σ_i Var_w[ℓ_i] (functional variance, → 2ν/β). They differ by the
cross-covariances between examples, and are kept apart here.

Everything pools the *healthy* chains of each β only. The data-based quantities (T_n, V_n, WAIC,
ν̂) come from the per-example log-likelihood accumulators of :class:`~slt_thermo.Samples`
(Welford mean/M2 and log-sum-exp per (β, chain)), combined exactly across chains, so no
draws × n matrix is ever stored. :func:`waic_from_loglik` does the same from an explicit matrix.

Sources: Watanabe 2010, JMLR 11:3571–3594 (WAIC, singular fluctuation); Watanabe 2010, Neural
Networks 23(1):20–34 (equations of state); AGSLT Ch. 8; ArviZ ``waic`` (ddof = 0 convention).
"""

from __future__ import annotations

import math
import warnings
from typing import Callable

import numpy as np
import xarray as xr
from scipy.special import logsumexp

from .._utils import check_beta, real_array
from ..errors import InvalidArgumentError
from ..results import Samples
from .stats import healthy_draws, mean_se, rung_stats

__all__ = ["observables", "susceptibility", "thermodynamics", "waic_from_loglik"]

_DATA_VARS = ("bayes_training_loss", "functional_variance", "waic", "waic_se", "singular_fluctuation")


def _check_samples(samples):
    if not isinstance(samples, Samples):
        raise InvalidArgumentError(f"`samples` must be slt_thermo.Samples, got {type(samples).__name__}")


def _pointwise(lppd_i: np.ndarray, var_i: np.ndarray, beta: float, n: int) -> dict:
    """T_n, V_n, WAIC (+ its spread over examples), ν̂, elpd_waic, p_waic, deviance from the
    per-example log predictive density lppd_i = log mean_w p(y_i|w) and Var_w[log p(y_i|w)]."""
    T = -float(np.sum(lppd_i)) / n
    V = float(np.sum(var_i))
    waic_i = -lppd_i + beta * var_i  # per-example contribution; WAIC = mean_i waic_i
    waic = T + beta * V / n
    elpd = -n * waic
    return {
        "bayes_training_loss": T,
        "functional_variance": V,
        "waic": waic,
        "waic_se": float(np.std(waic_i) / math.sqrt(n)) if n > 1 else float("nan"),
        "singular_fluctuation": 0.5 * beta * V,
        "lppd": float(np.sum(lppd_i)),
        "elpd_waic": elpd,
        "elpd_waic_se": float(math.sqrt(n) * np.std(waic_i)) if n > 1 else float("nan"),
        "p_waic": beta * V,
        "deviance": -2.0 * elpd,
    }


def waic_from_loglik(loglik, beta: float = 1.0) -> dict:
    """WAIC, Bayes training loss, functional variance and singular fluctuation from an explicit
    draws × n log-likelihood matrix ``loglik[s, i] = log p(y_i|x_i, w_s)``.

    ``loglik`` has shape (draws, n) or (chain, draw, n) (the leading axes are pooled); the draws
    must come from the posterior at inverse temperature ``beta``. With S draws:

    - lppd_i = log (1/S) Σ_s p(y_i|w_s) (log-sum-exp), lppd = Σ_i lppd_i;
    - T_n = −lppd/n (Bayes training loss, per-sample scale);
    - V_n = Σ_i Var_s[log p(y_i|w_s)], variance with **ddof = 0** (ArviZ's and REFERENCE's
      convention; ddof = 1 would give p_waic = 2.0 instead of 1.0 on the REFERENCE toy matrix);
    - WAIC = T_n + (β/n) V_n (Watanabe, per-sample scale); ν̂ = (β/2) V_n;
    - p_waic = β V_n, elpd_waic = lppd − p_waic = −n·WAIC, deviance = −2·elpd_waic (ArviZ's scale;
      at β = 1 exactly ArviZ's ``waic``, whose p_waic is Σ_i Var_s with ddof = 0);
    - waic_se = sd_i(waic_i)/√n and elpd_waic_se = √n·sd_i(waic_i) (ArviZ's ``se``): the spread
      over *examples* (a data-sampling error), not a Monte Carlo error.

    Returns a dict of floats with keys ``bayes_training_loss``, ``functional_variance``,
    ``waic``, ``waic_se``, ``singular_fluctuation``, ``lppd``, ``elpd_waic``, ``elpd_waic_se``,
    ``p_waic``, ``deviance``, plus the pointwise arrays ``lppd_i`` and ``functional_variance_i``.
    Computed in float64.

    Source: REFERENCE §2.6 [NUM toy matrix]; Watanabe 2010, JMLR 11:3571–3594; ArviZ ``waic``.
    """
    x = real_array(loglik, "loglik", finite=False)
    if x.ndim < 2:
        raise InvalidArgumentError(
            f"`loglik` must have shape (draws, n) or (chain, draw, n), got shape {x.shape}"
        )
    x = x.reshape(-1, x.shape[-1])
    S, n = x.shape
    if S < 2 or n < 1:
        raise InvalidArgumentError(f"`loglik` needs >= 2 draws and >= 1 example, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InvalidArgumentError(f"`loglik` has {int(np.sum(~np.isfinite(x)))} non-finite value(s)")
    beta = check_beta(beta)
    if not isinstance(beta, float):
        raise InvalidArgumentError(f"`beta` must be a number, got {beta!r}")
    lppd_i = logsumexp(x, axis=0) - math.log(S)
    var_i = np.var(x, axis=0, ddof=0)
    out = _pointwise(lppd_i, var_i, beta, n)
    out["lppd_i"] = lppd_i
    out["functional_variance_i"] = var_i
    return out


def _num_draws(samples: Samples) -> int:
    return int(samples.ds.attrs.get("num_draws", samples.num_draws))


def _pooled_pointwise(samples: Samples, i: int):
    """lppd_i and Var_w[log p(y_i|w)] (ddof = 0) at rung i, pooling the healthy chains'
    accumulators exactly: Chan's parallel combination of the Welford M2's and a log-sum-exp of
    the per-chain log-sum-exps (every chain has the same count, num_draws)."""
    ok = samples.healthy.values[i].astype(bool)
    mean = np.asarray(samples["loglik_mean"].values[i][ok], dtype=np.float64)  # (c, n)
    m2 = np.asarray(samples["loglik_m2"].values[i][ok], dtype=np.float64)
    lse = np.asarray(samples["loglik_logsumexp"].values[i][ok], dtype=np.float64)
    N = _num_draws(samples)
    total = N * mean.shape[0]
    mu = mean.mean(axis=0)
    M2 = m2.sum(axis=0) + N * np.sum((mean - mu) ** 2, axis=0)
    lppd_i = logsumexp(lse, axis=0) - math.log(total)
    return lppd_i, M2 / total


def observables(samples: Samples) -> xr.Dataset:
    """Per-β observables of a tempered run (healthy chains only), as an ``xarray.Dataset`` over
    ``beta``:

    - ``gibbs_training_error`` G_t = E^β[L_n] = E^β[nL_n]/n and ``gibbs_training_error_se``
      (ESS-based, from :func:`~slt_thermo.thermo.stats.rung_stats`); at β = 1/log n, nG_t is WBIC;
    - ``bayes_training_loss`` T_n = −(1/n) Σ_i log E^β_w[p(y_i|x_i,w)];
    - ``functional_variance`` V_n = Σ_i Var^β_w[log p(y_i|x_i,w)] (ddof = 0);
    - ``waic`` = T_n + (β/n) V_n (Watanabe's per-sample scale; at β = 1, T_n + V_n/n) and
      ``waic_se`` = sd_i(waic_i)/√n, ArviZ's spread over examples (a data-sampling error, not a
      Monte Carlo error);
    - ``singular_fluctuation`` ν̂ = (β/2) V_n (→ ν(β); = d/2 for a regular model);
    - ``specific_heat`` C(β) = β² Var^β[nL_n] and ``specific_heat_se`` (Var with ddof = 1, as in
      ``rung_stats``); C → λ at β ∝ 1/log n;
    - ``chains``: the number of healthy chains pooled.

    T_n, V_n, WAIC and ν̂ come from the per-example accumulators, pooled exactly across healthy
    chains (Chan's parallel M2, log-sum-exp; count = chains × num_draws); they equal
    :func:`waic_from_loglik` on the explicit matrix of the same draws. Population targets (and
    runs with ``keep_pointwise=False``) have no accumulators: those entries are NaN.

    Equations of state (REFERENCE §2.6, [MEM]): E[B_g] − E[B_t] = 2ν/n = (β/n) E[V_n] and
    E[WAIC] = E[B_g] + o(1/n).

    Source: REFERENCE §2.6; Watanabe 2010, JMLR 11:3571–3594; AGSLT Ch. 8.
    """
    _check_samples(samples)
    stats = rung_stats(samples)
    betas = samples.betas
    n = samples.n
    B = betas.size
    out = {
        "gibbs_training_error": stats["E"].values / n,
        "gibbs_training_error_se": stats["E_se"].values / n,
        "specific_heat": betas**2 * stats["Var"].values,
        "specific_heat_se": betas**2 * stats["Var_se"].values,
    }
    data = {k: np.full(B, np.nan) for k in _DATA_VARS}
    has_pointwise = all(k in samples.ds for k in ("loglik_mean", "loglik_m2", "loglik_logsumexp"))
    if has_pointwise and samples["loglik_mean"].sizes.get("example", 0) > 0:
        for i, beta in enumerate(betas):
            lppd_i, var_i = _pooled_pointwise(samples, i)
            vals = _pointwise(lppd_i, var_i, float(beta), n)
            for k in _DATA_VARS:
                data[k][i] = vals[k]
    out.update(data)
    out["chains"] = stats["chains"].values
    order = ["gibbs_training_error", "gibbs_training_error_se", "bayes_training_loss",
             "functional_variance", "waic", "waic_se", "singular_fluctuation", "specific_heat",
             "specific_heat_se", "chains"]
    return xr.Dataset(
        {k: ("beta", np.asarray(out[k])) for k in order},
        coords={"beta": betas},
        attrs={"n": n, "pointwise": int(has_pointwise),
               "scale": "per-sample: gibbs_training_error, bayes_training_loss, waic; "
                        "extensive: functional_variance, singular_fluctuation, specific_heat"},
    )


# --------------------------------------------------------------------------- susceptibilities
def _as_grid(samples: Samples, obs, argname: str) -> np.ndarray:
    """A (beta, chain, draw) float array from a variable name, a DataArray/array or a callable
    ``params_dict -> scalar`` (jax.vmap over the kept parameters, one rung at a time)."""
    shape = (samples.betas.size, samples.ds.sizes["chain"], samples.ds.sizes["draw"])
    if isinstance(obs, str):
        if obs not in samples.ds:
            raise InvalidArgumentError(
                f"`{argname}` {obs!r} is not a variable of the samples; have {sorted(samples.ds.data_vars)}"
            )
        da = samples.ds[obs]
        if set(da.dims) != {"beta", "chain", "draw"}:
            raise InvalidArgumentError(
                f"`{argname}` {obs!r} has dims {da.dims}; it must be one scalar per draw "
                "(beta, chain, draw). Use a callable for a function of vector parameters"
            )
        return np.asarray(da.transpose("beta", "chain", "draw").values, dtype=np.float64)
    if callable(obs):
        return _eval_callable(samples, obs, argname, shape)
    if isinstance(obs, xr.DataArray):
        if set(obs.dims) != {"beta", "chain", "draw"}:
            raise InvalidArgumentError(f"`{argname}` must have dims (beta, chain, draw), got {obs.dims}")
        obs = obs.transpose("beta", "chain", "draw").values
    arr = real_array(obs, argname, finite=False)
    if arr.shape != shape:
        raise InvalidArgumentError(
            f"`{argname}` must have shape (beta, chain, draw) = {shape}, got {arr.shape}"
        )
    healthy = samples.healthy.transpose("beta", "chain").values.astype(bool)  # the rest are dropped anyway
    bad = ~np.isfinite(arr[healthy])
    if bad.any():
        raise InvalidArgumentError(f"`{argname}` has {int(bad.sum())} non-finite value(s) on healthy chains")
    return arr


def _eval_callable(samples: Samples, fn: Callable, argname: str, shape) -> np.ndarray:
    import jax
    import jax.numpy as jnp

    params = samples.params
    if not params:
        raise InvalidArgumentError(
            f"`{argname}` is a callable of the parameters, but these samples kept none; "
            "sample with keep_params=True"
        )
    B, C, S = shape
    f = jax.jit(jax.vmap(fn))
    out = np.empty(shape)
    for i in range(B):
        p = {k: jnp.asarray(v.values[i].reshape((C * S,) + v.shape[3:])) for k, v in params.items()}
        try:
            val = np.asarray(f(p), dtype=np.float64)
        except Exception as err:  # report which argument failed and how it was called
            raise InvalidArgumentError(
                f"`{argname}` failed on the parameters dict {{{', '.join(params)}}} "
                f"(one draw per call, under jax.vmap): {err}"
            ) from err
        if val.shape != (C * S,):
            raise InvalidArgumentError(
                f"`{argname}` must return one scalar per draw; got shape {val.shape[1:]} per draw"
            )
        out[i] = val.reshape(C, S)
    return out


def _healthy_rungs(samples: Samples, arrays: dict) -> list[dict]:
    """Per β, {name: (healthy chain, draw) array} via ``healthy_draws`` (one warning at most)."""
    dims = ("beta", "chain", "draw")
    ds = samples.ds[["nll", "healthy"]].assign({f"_obs_{k}": (dims, v) for k, v in arrays.items()})
    tmp = Samples(ds)
    tmp.ds.attrs = samples.ds.attrs
    per = {}
    for j, k in enumerate(arrays):
        with warnings.catch_warnings():
            if j:
                warnings.simplefilter("ignore")
            per[k] = healthy_draws(tmp, f"_obs_{k}")
    return [{k: per[k][i] for k in arrays} for i in range(samples.betas.size)]


def susceptibility(samples: Samples, observable, conjugate=None) -> xr.Dataset:
    """Exact linear response χ_A(β) = ∂_h E^β_h[A] |_{h=0} of an observable A to the
    perturbation nL_n(w) → nL_n(w) + h·n·O(w) of the energy, per β (healthy chains pooled):

        p^β_h(w) ∝ φ(w) exp(−β(nL_n(w) + h·n·O(w))),    χ_A = −nβ Cov^β(A, O).

    Sign/scale convention: O is on the per-sample scale of L_n (the perturbation adds n·h·O to
    the energy); a positive covariance means A *decreases* as the O-term is switched on.
    ``conjugate`` O defaults to L_n = nll/n, so χ_A = −β Cov^β(A, nL_n) = β · dE^β[A]/dβ
    (since dE^β[A]/dβ = −Cov^β(A, nL_n)). With A = "nll" this is −β Var^β[nL_n] = −C(β)/β.

    ``observable`` and ``conjugate`` may each be the name of a per-draw variable of the samples
    (e.g. ``"nll"``, ``"log_prior"``), an array/DataArray of shape (beta, chain, draw), or a
    callable ``params_dict -> scalar`` evaluated with ``jax.vmap`` on the kept parameters
    (``params_dict`` maps each name of ``samples.param_names`` to one draw's array).

    Returns an ``xarray.Dataset`` over ``beta`` with ``value`` (χ_A), ``se``, ``cov``
    (Cov^β(A, O), ddof = 1, so that ``susceptibility(s, "nll")`` is exactly −β·``rung_stats`` Var)
    and ``ess``.

    Standard error (delta method with ESS): Cov is the mean of z_t = (A_t − Ā)(O_t − Ō), whose
    influence function is z_t − Cov; its Monte Carlo error is sd(z)/√ESS_mean(z) over the pooled
    healthy chains (ArviZ ESS for the mean, as in ``rung_stats``' variance errors; the error of
    the centring means is higher order). se = nβ · that.

    Source: REFERENCE §2.7 [DER]; the specific heat C(β) = β²Var^β[nL_n] = −β² ∂_β E^β[nL_n] is the
    special case A = O = nL_n (per-token susceptibilities: arXiv:2504.18274, App. C.4).
    """
    _check_samples(samples)
    n = samples.n
    A = _as_grid(samples, observable, "observable")
    if conjugate is None:
        O = np.asarray(samples.nll.transpose("beta", "chain", "draw").values, dtype=np.float64) / n
    else:
        O = _as_grid(samples, conjugate, "conjugate")
    rows = {k: [] for k in ("value", "se", "cov", "ess")}
    for beta, r in zip(samples.betas, _healthy_rungs(samples, {"A": A, "O": O})):
        a, o = r["A"], r["O"]
        N = a.size
        z = (a - a.mean()) * (o - o.mean())
        zbar, z_se, ess = mean_se(z)
        cov = zbar * N / max(N - 1, 1)
        rows["value"].append(-n * beta * cov)
        rows["se"].append(n * beta * z_se)
        rows["cov"].append(cov)
        rows["ess"].append(ess)
    return xr.Dataset(
        {k: ("beta", np.asarray(v, dtype=np.float64)) for k, v in rows.items()},
        coords={"beta": samples.betas},
        attrs={"n": n, "convention": "chi = d/dh E_h[A] at h=0 for nL_n -> nL_n + h*n*O; "
                                     "chi = -n*beta*Cov(A, O)"},
    )


# --------------------------------------------------------------------------- thermodynamics
def _free_energy_input(samples: Samples, F):
    B = samples.betas.size
    if F is None:
        from .integration import free_energy_curve

        try:
            curve = free_energy_curve(samples)
        except InvalidArgumentError as err:
            raise InvalidArgumentError(
                f"could not get F(β) by thermodynamic integration ({err}); pass `F` explicitly "
                "(an array over the rungs, or a Dataset with F and F_se)"
            ) from err
        return np.asarray(curve["F"].values, float), np.asarray(curve["F_se"].values, float)
    F_se = None
    if isinstance(F, xr.Dataset):
        if "F" not in F:
            raise InvalidArgumentError("`F` Dataset must have a variable `F` (and optionally `F_se`)")
        F_se = F["F_se"].values if "F_se" in F else None
        F = F["F"]
    if isinstance(F, xr.DataArray) and "beta" in F.coords:
        if F.sizes.get("beta") != B or not np.allclose(F["beta"].values, samples.betas):
            raise InvalidArgumentError("`F` is not on the samples' β ladder")
    F = np.atleast_1d(real_array(F, "F"))
    if F.shape != (B,):
        raise InvalidArgumentError(f"`F` must have one value per rung, shape ({B},), got {F.shape}")
    F_se = np.zeros(B) if F_se is None else real_array(F_se, "F_se", shape=(B,), finite=False, nonnegative=True)
    return F, F_se


def thermodynamics(samples: Samples, F=None) -> xr.Dataset:
    """The thermodynamic dictionary of the tempered posterior p^β(w) ∝ φ(w) e^{−β nL_n(w)} per β
    (healthy chains pooled), as an ``xarray.Dataset`` over ``beta``:

    - ``F`` = −log Z(β) (dimensionless, i.e. β × the physical free energy) and ``F_se``;
    - ``U`` = E^β[nL_n] + (1/β) E^β[−log φ(w)] (internal energy of the Hamiltonian
      nL_n − (1/β) log φ, whose Boltzmann weight at β is the tempered posterior); NaN at β = 0;
    - ``S`` = E^β[−log φ] + β E^β[nL_n] − F = −E^β[log p^β(w)] (the differential entropy of the
      tempered posterior, nats, Lebesgue reference measure); at β = 0, the prior's entropy;
    - ``C`` = β² Var^β[nL_n] (heat capacity = specific heat) and ``C_se``;
    - ingredients ``E_nll`` = E^β[nL_n] and ``E_neg_log_prior`` = E^β[−log φ], with errors.

    Identity: F = βU − S (i.e. F/β = U − TS with T = 1/β). All extensive (not divided by n).
    For population targets nL_n reads nK(w). Forms in terms of K_n (truth known: w0):
    E^β[nK_n] = E^β[nL_n] − nL_n(w0), so U_K = U − nL_n(w0) and S is unchanged with F_K = F −
    β nL_n(w0).

    ``F``: by default ``thermo.integration.free_energy_curve(samples)`` (TI; the ladder must start
    at β = 0). Otherwise an array over the rungs (taken as exact, F_se = 0), an xarray DataArray
    over the same ``beta``, or a Dataset with ``F`` and ``F_se``.

    Standard errors: U_se and the Monte Carlo part of S_se are ESS-based errors of the per-draw
    series nL_n + (−log φ)/β and −log φ + β nL_n (so the correlation of the two terms is
    included); F_se is added in quadrature to S_se.

    Source: REFERENCE §0 (Z, F), §2.2(d) (closed forms used in the tests); AGSLT Ch. 8 ("the
    thermodynamic dictionary").
    """
    _check_samples(samples)
    if "log_prior" not in samples.ds:
        raise InvalidArgumentError("`samples` has no `log_prior` variable; it is needed for U and S")
    F, F_se = _free_energy_input(samples, F)
    stats = rung_stats(samples)
    nll = np.asarray(samples.nll.transpose("beta", "chain", "draw").values, dtype=np.float64)
    lp = np.asarray(samples["log_prior"].transpose("beta", "chain", "draw").values, dtype=np.float64)
    rows = {k: [] for k in ("U", "U_se", "S", "S_se", "E_neg_log_prior", "E_neg_log_prior_se")}
    for i, (beta, r) in enumerate(zip(samples.betas, _healthy_rungs(samples, {"H": nll, "P": -lp}))):
        H, P = r["H"], r["P"]
        p, p_se, _ = mean_se(P)
        s, s_se, _ = mean_se(P + beta * H)
        if beta > 0:
            u, u_se, _ = mean_se(H + P / beta)
        else:
            u, u_se = float("nan"), float("nan")
        rows["U"].append(u)
        rows["U_se"].append(u_se)
        rows["S"].append(s - F[i])
        rows["S_se"].append(math.sqrt(s_se**2 + F_se[i] ** 2))
        rows["E_neg_log_prior"].append(p)
        rows["E_neg_log_prior_se"].append(p_se)
    betas = samples.betas
    out = {
        "F": F, "F_se": F_se,
        "U": rows["U"], "U_se": rows["U_se"],
        "S": rows["S"], "S_se": rows["S_se"],
        "C": betas**2 * stats["Var"].values, "C_se": betas**2 * stats["Var_se"].values,
        "E_nll": stats["E"].values, "E_nll_se": stats["E_se"].values,
        "E_neg_log_prior": rows["E_neg_log_prior"], "E_neg_log_prior_se": rows["E_neg_log_prior_se"],
    }
    return xr.Dataset(
        {k: ("beta", np.asarray(v, dtype=np.float64)) for k, v in out.items()},
        coords={"beta": betas},
        attrs={"n": samples.n, "identity": "F = beta*U - S"},
    )
