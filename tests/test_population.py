"""Population annealing, AIS and BDMC against the closed forms of REFERENCE §3.1–3.3.

The exact tests replace the MCMC move by perfect transitions (fresh exact draws from p^β) on the
Gaussian fixture 2.2(c) with d = 2, c = nσ² = 100 and the (i/K)^5 ladder, K = 20, where

- H = n|w|²/2 under p^β = N(0, σ²/(1+βc) I) is (c/(1+βc))·Gamma(d/2, 1), so the AIS log weight
  log w = −Σ_k a_k G_k (a_k = Δβ_k c/(1+β_{k−1}c), G_k ~ Gamma(d/2, 1) independent) has cumulants
  κ_j = (−1)^j (d/2)(j−1)! Σ_k a_k^j: the mean, variance and the error of the sample variance;
- PA's log Q_k are independent across rungs, with R·Var(log Ẑ) → ρ_f = 1.136297.

Tolerances are derived from those variances and the number of chains/runs (4–4.5 standard
errors, fixed seeds).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import slt_thermo as st
from slt_thermo import exact, models
from slt_thermo.errors import InvalidArgumentError, SLTThermoError
from slt_thermo.samplers.population import (
    AnnealingStalledError,
    AnnealState,
    ais,
    bdmc,
    population_annealing,
    resample,
)

D, C = 2, 100.0
LADDER = (np.arange(21) / 20.0) ** 5
LOG_Z = -math.log(101.0)
Z = 4.0


def exact_sampler(key, beta, num):
    """Exact draws from p^β for the Gaussian fixture: N(0, σ²/(1 + βc) I), σ² = 1."""
    return {"w": jax.random.normal(key, (num, D)) * jnp.sqrt(1.0 / (1.0 + beta * C))}


@pytest.fixture(scope="module")
def gauss():
    # population potential n|w − w0|²/2 with w0 = 0 and prior N(0, 1): REFERENCE 2.2(c), c = n
    return st.Target.population(models.linear_regression(D, w0=jnp.zeros(D)), 100)


def _scales(betas):
    """H at β_k is s_k·Gamma(d/2, 1) with s_k = c/(1 + β_k c)."""
    return C / (1.0 + np.asarray(betas) * C)


def _cumulants(a, k=D / 2):
    """Mean, variance, 4th cumulant of −Σ a_i G_i with G_i ~ Gamma(k, 1) independent."""
    a = np.asarray(a)
    return -k * np.sum(a), k * np.sum(a**2), 6 * k * np.sum(a**4)


# ------------------------------------------------------------------------------ resampling
@pytest.mark.parametrize("scheme", ["systematic", "multinomial", "residual"])
def test_resampling_is_unbiased(scheme):
    """E[copies of i] = R·w_i for every scheme (mean over many resamplings, binomial error)."""
    w = np.array([0.31, 0.0, 0.02, 0.17, 0.25, 0.005, 0.245])
    w = w / w.sum()
    R, T = w.size, 20000
    keys = jax.random.split(jax.random.PRNGKey(0), T)
    logw = jnp.log(jnp.asarray(w))
    counts = np.asarray(jax.jit(jax.vmap(
        lambda k: jnp.bincount(resample(k, logw, scheme), length=R)))(keys))
    assert np.all(counts.sum(axis=1) == R)
    assert np.all(counts[:, 1] == 0)  # zero weight: never resampled
    se = np.sqrt(R * w * (1 - w) / T)  # multinomial bound; the other schemes vary less
    mean = counts.mean(axis=0)
    ok = w > 0
    assert np.all(np.abs(mean[ok] - R * w[ok]) < 4.5 * se[ok]), (scheme, mean, R * w)
    if scheme != "multinomial":  # both keep ⌊R w_i⌋ copies at least
        assert np.all(counts >= np.floor(R * w) - (scheme == "systematic"))


def test_resample_more_offspring_than_weights():
    idx = resample(jax.random.PRNGKey(1), jnp.log(jnp.array([0.5, 0.5])), "systematic", num=10)
    assert idx.shape == (10,) and int(jnp.sum(idx == 0)) == 5


# ------------------------------------------------------------------------------ AIS / BDMC exact
def test_ais_perfect_transitions_match_closed_form(gauss):
    """E[log w] = −5.418884 (left Riemann sum), Var[log w] = 2.012896 (REFERENCE §3.2)."""
    N = 100_000
    res = ais(gauss, betas=LADDER, num_chains=N, key=jax.random.PRNGKey(2),
              exact_sampler=exact_sampler, progress=False)
    lw = res.log_weights.ravel()
    a = np.diff(LADDER) * _scales(LADDER[:-1])
    mean, var, k4 = _cumulants(a)
    assert mean == pytest.approx(-5.418884, abs=1e-6) and var == pytest.approx(2.012896, abs=1e-6)
    assert abs(lw.mean() - mean) < Z * math.sqrt(var / N)
    se_var = math.sqrt((k4 + 2 * var**2) / N)
    assert abs(lw.var(ddof=1) - var) < Z * se_var
    # E[w] = Z: log mean w is consistent with log Z (delta-method error from the weight ESS)
    assert abs(res.log_z.value - LOG_Z) < Z * res.log_z.stderr
    assert res.rungs["ess"].values[0, -1] < N
    assert res.attrs["grad_evals"] == 0


def test_bdmc_perfect_transitions_sandwich(gauss):
    """Forward mean −5.418884 ≤ log Z = −log 101 ≤ reverse mean −3.968604 (REFERENCE §3.3)."""
    N = 100_000
    theta = exact_sampler(jax.random.PRNGKey(3), 1.0, N)  # exact posterior draws
    res = bdmc(gauss, betas=LADDER, num_chains=N, exact_sample=theta, key=jax.random.PRNGKey(4),
               exact_sampler=exact_sampler, progress=False)
    a_fwd = np.diff(LADDER) * _scales(LADDER[:-1])
    a_rev = np.diff(LADDER) * _scales(LADDER[1:])
    m_f, v_f, _ = _cumulants(a_fwd)
    m_r, v_r, _ = _cumulants(a_rev)
    assert m_r == pytest.approx(-3.968604, abs=1e-6)  # E[−log w_rev]: the right Riemann sum
    assert abs(res.lower.value - m_f) < Z * math.sqrt(v_f / N)
    assert abs(res.upper.value - m_r) < Z * math.sqrt(v_r / N)
    assert res.lower.stderr == pytest.approx(math.sqrt(v_f / N), rel=0.05)
    assert res.upper.stderr == pytest.approx(math.sqrt(v_r / N), rel=0.05)
    assert res.lower.value < LOG_Z < res.upper.value
    assert res.gap == pytest.approx(m_r - m_f, abs=0.03)
    # the log-mean-exp versions are (much tighter) stochastic bounds around log Z
    assert abs(res.lower_lme.value - LOG_Z) < Z * res.lower_lme.stderr + 0.01
    assert abs(res.upper_lme.value - LOG_Z) < Z * res.upper_lme.stderr + 0.01


# ------------------------------------------------------------------------------ PA exact
def test_pa_perfect_mixing_rho_f_and_bias(gauss):
    """R·Var(log Ẑ) → ρ_f = 1.136297 and E[log Ẑ] − log Z ≈ −ρ_f/(2R) (REFERENCE §3.1)."""
    R, M = 100, 4000
    res = population_annealing(gauss, betas=LADDER, num_particles=R, num_runs=M,
                               key=jax.random.PRNGKey(5), exact_sampler=exact_sampler,
                               progress=False)
    s = _scales(LADDER[:-1])
    h = np.diff(LADDER)
    # E[ω²]/E[ω]² − 1 per rung for H = s·Gamma(1, 1) (d = 2): (1+hs)²/(1+2hs) − 1
    rho_f = float(np.sum((1 + h * s) ** 2 / (1 + 2 * h * s) - 1))
    assert rho_f == pytest.approx(1.136297, abs=1e-6)
    lz = res.rungs["log_z_run"].values[:, -1]
    est = R * lz.var(ddof=1)
    assert abs(est - rho_f) < Z * rho_f * math.sqrt(2.5 / M)  # kurtosis-padded chi² error
    se_mean = math.sqrt(rho_f / R / M)
    assert abs((lz.mean() - LOG_Z) - (-rho_f / (2 * R))) < Z * se_mean
    # the within-run delta method estimates ρ_f per run, unbiased under perfect mixing
    assert res.attrs["rho_f_delta"] == pytest.approx(rho_f, rel=0.05)
    assert res.attrs["rho_f_runs"] == pytest.approx(est)
    # Machta's combination log mean_r Ẑ_r removes the bias; its error from the run spread
    assert abs(res.log_z.value - LOG_Z) < Z * res.log_z.stderr
    se_runs = float(res.rungs["log_z_se_runs"].values[-1])
    assert se_runs == pytest.approx(math.sqrt(rho_f / R / M), rel=0.15)
    # the reported error is the larger of the runs' spread and the genealogy's, which counts the
    # resampling's own drift: conservative under perfect mixing (here 1.5×), never below the spread
    assert se_runs <= res.log_z.stderr < 2 * se_runs
    # rungs: log Z(β_k) = −log(1 + β_k c) at every rung; E and Var weighted across runs
    g = exact.gaussian_thermo(D, 100, 1.0, LADDER)
    assert np.all(np.abs(res.rungs["log_z"].values + g.F) < Z * res.rungs["log_z_se"].values + 1e-9)
    assert np.all(np.abs(res.rungs["E"].values - g.E) < Z * res.rungs["E_se"].values)
    np.testing.assert_allclose(res.rungs["Var"].values, g.Var, rtol=0.02)


# ------------------------------------------------------------------------------ PA with MCMC
@pytest.fixture(scope="module")
def linreg():
    m = models.linear_regression(2)
    data = m.simulate(jax.random.PRNGKey(0), 50)
    return m, data, st.Target(m, data)


@pytest.fixture(scope="module")
def pa_linreg(linreg):
    _, _, target = linreg
    return population_annealing(target, num_particles=400, num_runs=4, key=jax.random.PRNGKey(6),
                                mcmc="hmc", mcmc_steps=2, progress=False)


def test_pa_linear_regression_matches_exact_evidence(linreg, pa_linreg):
    m, data, _ = linreg
    res = pa_linreg
    exact_log_z = -m.exact_thermo(data, 1.0).F
    lz = res.log_z
    assert res.betas[0] == 0.0 and res.betas[-1] == 1.0
    assert abs(lz.value - exact_log_z) < 2 * lz.stderr, (lz, exact_log_z)
    assert res.free_energy.value == pytest.approx(-lz.value)
    # per-rung curves against the closed form (β > 0 rungs)
    b = res.betas[1:]
    th = m.exact_thermo(data, b)
    assert np.all(np.abs(res.rungs["log_z"].values[1:] + th.F) < Z * res.rungs["log_z_se"].values[1:] + 0.02)
    assert np.all(np.abs(res.rungs["E"].values[1:] - th.E) < Z * res.rungs["E_se"].values[1:] + 0.05 * np.sqrt(th.Var))
    np.testing.assert_allclose(res.rungs["Var"].values[1:], th.Var, rtol=0.15)
    # the adaptive schedule hit its ESS target (R/2) on every rung but possibly the last
    frac = res.rungs["ess_frac"].values[:, 1:-1]
    assert np.all(np.min(frac, axis=0) == pytest.approx(0.5, abs=0.01))
    assert int(res.rungs["grad_evals"].sum()) == res.attrs["grad_evals"] > 0


def test_pa_final_population_is_samples(linreg, pa_linreg):
    _, data, _ = linreg
    s = pa_linreg.samples
    assert isinstance(s, st.Samples)
    assert s.betas.tolist() == [1.0] and s.ds.sizes["chain"] == 4 * 400 and s.num_draws == 1
    assert s["w"].shape == (1, 1600, 1, 2)
    assert bool(s.healthy.values.all())
    # posterior mean of w at β = 1 (conjugate): A⁻¹ Xᵀy
    X, y = np.asarray(data["x"]), np.asarray(data["y"])
    mean = np.linalg.solve(np.eye(2) + X.T @ X, X.T @ y)
    sd = np.sqrt(np.diag(np.linalg.inv(np.eye(2) + X.T @ X)))
    got = s["w"].values[0, :, 0].mean(axis=0)
    assert np.all(np.abs(got - mean) < 0.25 * sd)
    fam = pa_linreg.rungs["families"].values
    assert np.all(np.diff(fam, axis=1) <= 0)  # families only die out
    assert np.all(pa_linreg.rungs["families_eff"].values <= fam + 1e-6)


def test_adaptive_schedule_stops_at_the_cap(linreg, pa_linreg):
    _, _, target = linreg
    with pytest.raises(AnnealingStalledError, match="max_rungs") as err:
        # the settings of `pa_linreg` (same compiled program), but ESS 0.9 and at most 3 rungs
        population_annealing(target, num_particles=400, num_runs=4, max_rungs=3, target_ess=0.9,
                             mcmc_steps=1, key=jax.random.PRNGKey(7), progress=False)
    assert isinstance(err.value, SLTThermoError)
    part = err.value.partial
    assert part is not None and part.betas.size == 4 and part.betas[-1] < 1.0


def test_delta_beta_underflow_stops_with_an_error(linreg, monkeypatch):
    """An energy gap no representable Δβ can bridge (1e300 nats) makes the bisection return 0,
    and the driver then stops with AnnealingStalledError (carrying the partial result) instead
    of looping at a fixed β."""
    from slt_thermo.samplers.population import anneal as pa

    assert pa._next_dbeta(np.array([[0.0, 1e300, 1.0, 2.0]]), 0.5, 1.0, 0.9) == 0.0
    _, _, target = linreg
    calls = []

    def stalls_on_the_second_rung(H, beta, beta_max, target_ess):
        calls.append(beta)
        return 0.0 if len(calls) > 1 else 1e-3

    monkeypatch.setattr(pa, "_next_dbeta", stalls_on_the_second_rung)
    with pytest.raises(AnnealingStalledError, match="underflowed") as err:
        population_annealing(target, num_particles=400, num_runs=4, target_ess=0.9, mcmc_steps=1,
                             key=jax.random.PRNGKey(7), progress=False)
    assert len(calls) == 2 and err.value.partial is not None
    np.testing.assert_allclose(err.value.partial.betas, [0.0, 1e-3])


def test_needs_exact_prior_draws():
    """A model without sample_prior (its init is not a prior draw) needs init_particles."""
    target = st.Target.from_functions(  # a user's model: its init is not a prior draw
        log_prior=lambda p: -0.5 * jnp.sum(p["w"] ** 2),
        log_likelihood=lambda p, d: -0.5 * (d["y"] - p["w"][0]) ** 2,
        data={"y": jnp.zeros(10)}, init=lambda key: {"w": jnp.zeros(2)})
    with pytest.raises(InvalidArgumentError, match="init_particles"):
        population_annealing(target, num_particles=16, key=jax.random.PRNGKey(0), progress=False)
    wrong = {"w": jnp.zeros((15, 2))}
    with pytest.raises(InvalidArgumentError, match="init_particles"):
        population_annealing(target, num_particles=16, key=jax.random.PRNGKey(0), progress=False,
                             init_particles=wrong)


def test_monomial_prior_draws_are_exact():
    """|w| = U^{1/(h+1)} has density (h+1)|w|^h: E|w| = (h+1)/(h+2), and signs are symmetric."""
    model = models.monomial((1, 2), h=(0, 2))
    w = jax.vmap(model.sample_prior)(jax.random.split(jax.random.PRNGKey(0), 20_000))["w"]
    w = np.asarray(w)
    assert np.all(np.abs(w) <= 1)
    expected = np.array([1 / 2, 3 / 4])
    se = np.abs(w).std(axis=0) / np.sqrt(w.shape[0])
    np.testing.assert_array_less(np.abs(np.abs(w).mean(axis=0) - expected), 4 * se)
    assert np.all(np.abs(w.mean(axis=0)) < 4 * w.std(axis=0) / np.sqrt(w.shape[0]))


@pytest.mark.parametrize("kwargs, match", [
    ({"mcmc": "gibbs"}, "mcmc"),
    ({"resampling": "stratified"}, "resampling"),
    ({"betas": [0.0, 0.5, 0.3, 1.0]}, "betas"),
    ({"target_ess": 1.5}, "target_ess"),
    ({"num_particles": 1}, "num_particles"),
])
def test_bad_arguments(linreg, kwargs, match):
    _, _, target = linreg
    args = {"num_particles": 8, "key": jax.random.PRNGKey(0), "progress": False}
    args.update(kwargs)
    with pytest.raises(InvalidArgumentError, match=match):
        population_annealing(target, **args)


# ------------------------------------------------------------------------------ prior draws, observables
LOG_2PI = math.log(2 * math.pi)


def _ff_log_prior(p):  # N(0, I): the prior of models.linear_regression(2) (α = 1)
    return -0.5 * jnp.sum(p["w"] ** 2) - 0.5 * p["w"].size * LOG_2PI


def _ff_log_likelihood(p, d):  # y = xᵀw + N(0, 1), normalizers included (σ = 1)
    return -0.5 * (d["y"] - d["x"] @ p["w"]) ** 2 - 0.5 * LOG_2PI


def _ff_observables(p, d):
    return {"w0": p["w"][0], "w_sq": jnp.sum(p["w"] ** 2)}


def _numpyro_regression(x, y=None):  # the same model and prior as numpyro
    w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("y", dist.Normal(x @ w, 1.0), obs=y)


@pytest.fixture(scope="module")
def theta_linreg():
    """models.linear_regression(2) on data simulated from θ* ~ prior (an exact posterior draw,
    for BDMC's reverse pass): (model, θ*, data, exact log Z)."""
    m = models.linear_regression(2)
    theta = m.sample_prior(jax.random.PRNGKey(13))
    data = m.simulate(jax.random.PRNGKey(14), 50, params=theta)
    return m, theta, data, -float(m.exact_thermo(data, 1.0).F)


def _linreg_target(kind, data):
    if kind == "numpyro":
        return st.Target.from_numpyro(_numpyro_regression, data["x"], data["y"])
    # init is not a prior draw: the prior draws must come from sample_prior=
    return st.Target.from_functions(
        _ff_log_prior, _ff_log_likelihood, data, init=lambda key: {"w": jnp.zeros(2)},
        sample_prior=lambda key: {"w": jax.random.normal(key, (2,))}, observables=_ff_observables)


@pytest.fixture(scope="module")
def ff_target(theta_linreg):
    return _linreg_target("from_functions", theta_linreg[2])


@pytest.fixture(scope="module")
def pa_ff(ff_target):
    return population_annealing(ff_target, num_particles=400, num_runs=8, key=jax.random.PRNGKey(20),
                                progress=False)


def _exact_linreg_moments(data, beta):
    """E^β[w_0], E^β[‖w‖²], their standard deviations and Cov^β(H, ·) = −d/dβ E^β[·] for the
    conjugate posterior N(m_β, A_β⁻¹), A_β = I + β XᵀX, m_β = β A_β⁻¹Xᵀy (σ = α = 1)."""
    X, y = np.asarray(data["x"], float), np.asarray(data["y"], float)
    G = X.T @ X
    Ai = np.linalg.inv(np.eye(2) + beta * G)
    m = beta * Ai @ X.T @ y
    dm = Ai @ (X.T @ y - G @ m)
    mean = np.array([m[0], m @ m + np.trace(Ai)])
    sd = np.sqrt([Ai[0, 0], 2 * np.trace(Ai @ Ai) + 4 * m @ Ai @ m])
    cov_h = -np.array([dm[0], 2 * m @ dm - np.trace(Ai @ G @ Ai)])
    return mean, sd, cov_h


def test_pa_from_functions_prior_draws_match_exact_evidence(theta_linreg, pa_ff):
    """No init_particles: the prior draws come from from_functions(sample_prior=...)."""
    lz, exact_log_z = pa_ff.log_z, theta_linreg[3]
    assert lz.details["stderr_within"] > 0 and pa_ff.attrs["complete"] == 1
    assert abs(lz.value - exact_log_z) < Z * lz.stderr, (lz, exact_log_z)


def test_pa_reports_observables_per_rung_and_particle(theta_linreg, pa_ff, pa_linreg):
    _, _, data, _ = theta_linreg
    r = pa_ff.rungs
    assert r["observable"].values.tolist() == ["w0", "w_sq"]
    assert r["quantity"].values.tolist() == ["nll", "w0", "w_sq"]
    assert r["obs_mean_run"].dims == ("run", "beta", "observable") and r.sizes["run"] == 8
    # the final population carries each observable per particle, equal to its recomputation
    s = pa_ff.samples
    assert s.observable_names == ["w0", "w_sq"]
    w = s["w"].values.astype(float)
    np.testing.assert_allclose(s["w0"].values, w[..., 0], rtol=1e-6)
    np.testing.assert_allclose(s["w_sq"].values, np.sum(w**2, axis=-1), rtol=1e-5)
    # weighted means at every rung against the conjugate posterior, within their errors
    for i, beta in enumerate(pa_ff.betas):
        mean, sd, cov_h = _exact_linreg_moments(data, beta)
        got, se = r["obs_mean"].values[i], r["obs_mean_se"].values[i]
        assert np.all(se > 0) and np.all(np.abs(got - mean) < Z * se + 0.05 * sd), (beta, got, mean, se)
        cov = r["obs_cov"].values[i]
        np.testing.assert_allclose(cov, cov.T)
        # Cov^β(H, A) = −dE^β[A]/dβ: the correlation within 0.1 of the exact one
        corr, exact_corr = cov[0, 1:] / np.sqrt(cov[0, 0] * np.diag(cov)[1:]), cov_h / np.sqrt(r["Var"].values[i]) / sd
        assert np.all(np.abs(corr - exact_corr) < 0.1), (beta, corr, exact_corr)
    np.testing.assert_allclose(r["obs_cov"].sel(quantity="nll", quantity2="nll").values, r["Var"].values,
                               rtol=1e-6)
    # no observables declared: nothing reported
    assert "obs_mean" not in pa_linreg.rungs and pa_linreg.samples.observable_names == []


def test_needs_exact_prior_draws_names_every_way_to_give_them():
    target = st.Target.from_functions(
        log_prior=lambda p: -0.5 * jnp.sum(p["w"] ** 2),
        log_likelihood=lambda p, d: -0.5 * (d["y"] - p["w"][0]) ** 2,
        data={"y": jnp.zeros(10)}, init=lambda key: {"w": jnp.zeros(2)})
    for f, kw in ((population_annealing, {"num_particles": 16}),
                  (ais, {"num_chains": 16, "betas": LADDER})):
        with pytest.raises(InvalidArgumentError, match="sample_prior=") as err:
            f(target, key=jax.random.PRNGKey(0), progress=False, **kw)
        assert "init_particles=" in str(err.value)


# ------------------------------------------------------------------------------ options, resumption
def _assert_same_run(a, b):
    np.testing.assert_array_equal(a.betas, b.betas)
    for name in ("log_z", "log_z_run", "E", "Var", "log_z_se", "E_se"):
        np.testing.assert_array_equal(a.rungs[name].values, b.rungs[name].values, err_msg=name)
    for name in ("w", "nll"):
        np.testing.assert_array_equal(a.samples[name].values, b.samples[name].values, err_msg=name)
    np.testing.assert_array_equal(np.asarray(a.state.particles.u), np.asarray(b.state.particles.u))


def _stop_and_resume(f, target, kwargs, stops=(3, 2)):
    """Run in pieces of ``stops`` rungs, then to the end, each call resuming the last state."""
    res = f(target, **kwargs, options=st.RunOptions(max_chunks=stops[0], progress=False))
    assert isinstance(res.state, AnnealState) and res.state.k == stops[0]
    assert res.attrs["complete"] == 0 and res.betas.size == stops[0] + 1
    for k in stops[1:]:
        res = f(target, **kwargs, options=st.RunOptions(max_chunks=k, resume=res.state, progress=False))
    res = f(target, **kwargs, options=st.RunOptions(resume=res.state), progress=False)
    assert res.attrs["complete"] == 1
    return res


def test_pa_fixed_ladder_resumes_exactly(linreg):
    _, _, target = linreg
    kwargs = {"betas": st.ladder.power(8), "num_particles": 400, "num_runs": 4,
              "key": jax.random.PRNGKey(17)}
    full = population_annealing(target, progress=False, **kwargs)
    assert full.attrs["complete"] == 1 and full.state.k == 8
    _assert_same_run(full, _stop_and_resume(population_annealing, target, kwargs))
    # a state resumes only into its own run
    with pytest.raises(InvalidArgumentError, match="different run"):
        population_annealing(target, **{**kwargs, "key": jax.random.PRNGKey(18)}, progress=False,
                             options=st.RunOptions(resume=full.state))


def test_pa_adaptive_ladder_resumes_exactly(linreg, pa_linreg):
    """The settings and key of `pa_linreg` (same compiled program), in pieces."""
    _, _, target = linreg
    kwargs = {"num_particles": 400, "num_runs": 4, "key": jax.random.PRNGKey(6), "mcmc": "hmc",
              "mcmc_steps": 2}
    _assert_same_run(pa_linreg, _stop_and_resume(population_annealing, target, kwargs, stops=(2, 1, 2)))


def test_ais_resumes_exactly(linreg):
    _, _, target = linreg
    kwargs = {"betas": st.ladder.power(8), "num_chains": 200, "num_runs": 2,
              "key": jax.random.PRNGKey(19)}
    full = ais(target, progress=False, **kwargs)
    res = _stop_and_resume(ais, target, kwargs)
    _assert_same_run(full, res)
    np.testing.assert_array_equal(full.log_weights, res.log_weights)


def test_run_options(gauss):
    """options.init / progress are read; the keywords win; bdmc runs whole."""
    init = {"w": jax.random.normal(jax.random.PRNGKey(30), (2, 64, D))}
    args = {"betas": LADDER, "num_particles": 64, "num_runs": 2, "exact_sampler": exact_sampler,
            "key": jax.random.PRNGKey(31)}
    by_kw = population_annealing(gauss, init_particles=init, progress=False, **args)
    by_opt = population_annealing(gauss, options=st.RunOptions(init=init, progress=False), **args)
    np.testing.assert_array_equal(by_kw.rungs["log_z"].values, by_opt.rungs["log_z"].values)
    other = st.RunOptions(init={"w": jnp.zeros((2, 64, D))}, progress=False)
    wins = population_annealing(gauss, init_particles=init, options=other, **args)
    np.testing.assert_array_equal(by_kw.rungs["log_z"].values, wins.rungs["log_z"].values)
    with pytest.raises(InvalidArgumentError, match="bdmc"):
        bdmc(gauss, betas=LADDER, num_chains=16, exact_sample={"w": jnp.zeros(D)}, key=jax.random.PRNGKey(0),
             exact_sampler=exact_sampler, options=st.RunOptions(max_chunks=2, progress=False))
    with pytest.raises(InvalidArgumentError, match="resume"):
        ais(gauss, betas=LADDER, num_chains=16, key=jax.random.PRNGKey(0), exact_sampler=exact_sampler,
            options=st.RunOptions(resume=by_kw.samples, progress=False))
    with pytest.raises(InvalidArgumentError, match="device"):  # one CPU device here (tests/test_parallel.py: 4)
        population_annealing(gauss, num_particles=16, key=jax.random.PRNGKey(0),
                             options=st.RunOptions(devices=len(jax.devices()) + 1, progress=False))
    with pytest.raises(InvalidArgumentError, match="directory path"):
        population_annealing(gauss, num_particles=16, key=jax.random.PRNGKey(0),
                             options=st.RunOptions(checkpoint=123, progress=False))
    with pytest.raises(InvalidArgumentError, match="chunk_size"):  # refused, not silently ignored
        population_annealing(gauss, num_particles=16, key=jax.random.PRNGKey(0),
                             options=st.RunOptions(chunk_size=10, progress=False))


# ------------------------------------------------------------------------------ non-finite energies
def _nan_target(where):
    """The regression of ``_ff_log_likelihood`` with a log-likelihood that is NaN where
    ``where(w)`` (finite at the init w = (−0.5, 0), which Target validates)."""
    X = jax.random.normal(jax.random.PRNGKey(40), (20, 2))
    data = {"x": X, "y": X @ jnp.array([-0.5, 0.3])}

    def log_likelihood(p, d):
        return jnp.where(where(p["w"]), jnp.nan, _ff_log_likelihood(p, d))

    return st.Target.from_functions(
        _ff_log_prior, log_likelihood, data, init=lambda key: {"w": jnp.array([-0.5, 0.0])},
        sample_prior=lambda key: {"w": jax.random.normal(key, (2,))})


NAN_LADDER = np.array([0.0, 0.1, 0.4, 1.0])


def test_pa_and_ais_count_and_drop_non_finite_particles():
    """NaN on half of parameter space (w_0 > 0): about half of the prior draws are dropped at
    β_0, counted per rung and in attrs, with a NumericalWarning; what is left is finite."""
    target = _nan_target(lambda w: w[0] > 0)
    R, M = 64, 2
    with pytest.warns(st.NumericalWarning, match="non-finite particle energies") as rec:
        pa = population_annealing(target, num_particles=R, num_runs=M, betas=NAN_LADDER, mcmc_steps=1,
                                  key=jax.random.PRNGKey(41), progress=False)
    assert not any(issubclass(w.category, st.ConvergenceWarning) for w in rec)
    counts = pa.rungs["num_nonfinite"]
    assert counts.dims == ("run", "beta") and counts.dtype.kind == "i"
    assert np.all((counts.values[:, 0] > R // 4) & (counts.values[:, 0] < 3 * R // 4))
    assert np.all(counts.values[:, 1:] == 0)  # resampled away; the moves reject NaN proposals
    assert pa.attrs["num_nonfinite"] == int(counts.values.sum())
    assert pa.log_z.details["num_nonfinite"] == pa.attrs["num_nonfinite"]
    assert np.isfinite(pa.log_z.value) and np.isfinite(pa.log_z.stderr)
    assert np.all(pa.samples["w"].values[..., 0] <= 0) and pa.samples.healthy.values.all()

    with pytest.warns(st.NumericalWarning, match="ais: .* non-finite particle energies"):
        res = ais(target, betas=NAN_LADDER, num_chains=R, mcmc_steps=1, key=jax.random.PRNGKey(42),
                  progress=False)
    counts = res.rungs["num_nonfinite"].values
    assert counts[0, 0] > R // 4 and np.all(counts == counts[:, :1])  # AIS keeps them, at weight 0
    assert np.sum(np.isneginf(res.log_weights)) == counts[0, -1]
    assert np.isfinite(res.log_z.value)

    with pytest.warns(st.NumericalWarning, match="ais: "):  # BDMC: its forward AIS pass
        both = bdmc(target, betas=NAN_LADDER, num_chains=R, exact_sample={"w": jnp.array([-0.5, 0.3])},
                    mcmc_steps=1, key=jax.random.PRNGKey(44), progress=False)
    dropped = int(np.sum(np.isneginf(both.forward.log_weights)))
    assert dropped > 0 and both.lower.details["num_nonfinite"] == dropped
    assert both.lower.value == -np.inf  # still a lower bound; the count says why it is useless
    assert both.upper.details["num_nonfinite"] == 0 and np.isfinite(both.upper.value)


@pytest.mark.parametrize("method", ["population_annealing", "population_annealing_adaptive", "ais"])
def test_no_finite_particle_raises(method):
    """NaN wherever the prior draws land (everywhere but the init point): a clear error."""
    target = _nan_target(lambda w: jnp.any(w != jnp.array([-0.5, 0.0])))
    key = jax.random.PRNGKey(43)
    with pytest.raises(st.NumericalError, match="every particle of run 0 has a non-finite energy"):
        if method == "ais":
            ais(target, betas=NAN_LADDER, num_chains=16, key=key, progress=False)
        else:
            betas = None if method.endswith("adaptive") else NAN_LADDER
            population_annealing(target, num_particles=16, betas=betas, key=key, progress=False)


# ------------------------------------------------------------------------------ slow
@pytest.mark.slow
def test_pa_agrees_with_thermodynamic_integration(linreg, pa_linreg):
    """PA's F and TI's F (NUTS on a (i/16)^5 ladder) agree within their combined errors."""
    m, data, target = linreg
    run = st.sample_nuts(target, st.ladder.power(16), num_chains=4, num_warmup=400, num_samples=1000,
                         key=jax.random.PRNGKey(8), progress=False)
    ti = st.free_energy(run)
    pa = pa_linreg.free_energy
    err = math.hypot(ti.stderr + ti.details["discretization_error"], pa.stderr)
    assert abs(ti.value - pa.value) < Z * err, (ti, pa)
    assert abs(ti.value - m.exact_thermo(data, 1.0).F) < Z * (ti.stderr + ti.details["discretization_error"])


@pytest.mark.slow
@pytest.mark.parametrize("mcmc", ["mala", "nuts"])
def test_pa_other_kernels_match_exact_evidence(linreg, mcmc):
    m, data, target = linreg
    res = population_annealing(target, num_particles=400, num_runs=8, key=jax.random.PRNGKey(9),
                               mcmc=mcmc, mcmc_steps=3, target_ess=0.7, progress=False)
    exact_log_z = -m.exact_thermo(data, 1.0).F
    assert abs(res.log_z.value - exact_log_z) < Z * res.log_z.stderr, res.log_z


@pytest.mark.slow
def test_pa_with_a_kernel_config(linreg):
    """Any sampler config works as the move (its own warmup runs at the start of each rung)."""
    from slt_thermo.samplers.nuts import HMCConfig

    m, data, target = linreg
    cfg = HMCConfig("HMC", 10, 10, False, 0.8, 4, 0.5)
    res = population_annealing(target, num_particles=400, num_runs=8, key=jax.random.PRNGKey(10),
                               mcmc=cfg, mcmc_steps=20, progress=False)
    assert abs(res.log_z.value + m.exact_thermo(data, 1.0).F) < Z * res.log_z.stderr + 0.05


@pytest.mark.slow
def test_pa_singular_normal_crossing():
    """K = w1²w2² (m = 2), n = 1000: F matches the closed form of REFERENCE 2.2(b)."""
    n, R, M = 1000, 1000, 8
    target = st.Target.population(models.monomial((1, 1)), n)
    init = {"w": jax.random.uniform(jax.random.PRNGKey(11), (M, R, 2), minval=-1.0, maxval=1.0)}
    res = population_annealing(target, num_particles=R, num_runs=M, init_particles=init,
                               key=jax.random.PRNGKey(12), mcmc_steps=4, target_ess=0.7,
                               progress=False)
    F = exact.normal_crossing_thermo(n, 1.0).F
    assert abs(res.free_energy.value - F) < Z * res.free_energy.stderr, (res.free_energy, F)


@pytest.mark.slow
def test_ais_and_bdmc_with_hmc_bracket_the_evidence(linreg):
    """Simulated data from θ* ~ prior: forward AIS ≤ log Z ≤ reverse AIS from θ* (stochastically)."""
    m, _, _ = linreg
    theta = m.sample_prior(jax.random.PRNGKey(13))
    data = m.simulate(jax.random.PRNGKey(14), 50, params=theta)
    target = st.Target(m, data)
    exact_log_z = -m.exact_thermo(data, 1.0).F
    res = bdmc(target, betas=st.ladder.power(40), num_chains=1000, exact_sample=theta,
               key=jax.random.PRNGKey(15), mcmc_steps=2, progress=False)
    assert res.lower.value - Z * res.lower.stderr < exact_log_z < res.upper.value + Z * res.upper.stderr
    assert res.lower.value < res.upper.value
    fwd = ais(target, betas=st.ladder.power(40), num_chains=2000, key=jax.random.PRNGKey(16),
              mcmc_steps=2, progress=False)
    assert abs(fwd.log_z.value - exact_log_z) < Z * fwd.log_z.stderr + 0.05


@pytest.mark.slow
@pytest.mark.parametrize("kind, method", [("numpyro", "pa"), ("from_functions", "ais"),
                                          ("numpyro", "ais"), ("from_functions", "bdmc"),
                                          ("numpyro", "bdmc")])
def test_prior_draws_from_the_target_give_the_exact_evidence(theta_linreg, kind, method):
    """No init_particles: the prior draws come from from_functions(sample_prior=...) or from the
    numpyro model's priors. Same model and prior as models.linear_regression(2): its exact log Z."""
    _, theta, data, exact_log_z = theta_linreg
    target = _linreg_target(kind, data)
    key = jax.random.PRNGKey(21)
    if method == "bdmc":
        res = bdmc(target, betas=st.ladder.power(40), num_chains=1000, exact_sample=theta, key=key,
                   progress=False)
        assert res.lower.value - Z * res.lower.stderr < exact_log_z < res.upper.value + Z * res.upper.stderr
        assert res.lower.value < res.upper.value
        return
    if method == "pa":
        res = population_annealing(target, num_particles=400, num_runs=8, key=key, progress=False)
    else:
        res = ais(target, betas=st.ladder.power(40), num_chains=400, num_runs=8, key=key, progress=False)
    assert abs(res.log_z.value - exact_log_z) < Z * res.log_z.stderr, (res.log_z, exact_log_z)


@pytest.mark.slow
def test_pa_observable_agrees_with_nuts(ff_target, pa_ff):
    """E[‖w‖²] and E[w_0] at β = 1: PA's weighted mean against NUTS's recorded observable."""
    from conftest import mean_and_se

    run = st.sample_nuts(ff_target, [1.0], num_chains=4, num_warmup=500, num_samples=2000,
                         key=jax.random.PRNGKey(23), progress=False)
    for name in ("w0", "w_sq"):
        m, se = mean_and_se(run[name].values[0])
        pa = pa_ff.rungs["obs_mean"].sel(observable=name).values[-1]
        pa_se = pa_ff.rungs["obs_mean_se"].sel(observable=name).values[-1]
        assert abs(pa - m) < Z * math.hypot(se, pa_se), (name, pa, pa_se, m, se)


def test_pa_doubles_its_sweeps_while_families_collapse(monkeypatch):
    """One HMC trajectory per rung is too little on a 5-D linear regression: the families die
    faster than the weights alone predict (ρ_t − 1 > 1.5 ρ_f), so the sweeps double from rung to
    rung (never more than 8× mcmc_steps, never fewer than given) and the error bar is the
    genealogy's when that is larger; held at 1× (MAX_SWEEP_FACTOR = 1) the run warns."""
    from slt_thermo.samplers.population import anneal

    m = models.linear_regression(5)
    t = st.Target(m, m.simulate(jax.random.PRNGKey(0), 300))
    kw = dict(num_particles=128, mcmc_steps=1, key=jax.random.PRNGKey(1), progress=False)
    r = population_annealing(t, **kw)
    sweeps = r.rungs["sweeps"].values[0, 1:]
    assert sweeps[0] == 1 and 1 < sweeps.max() <= 8 and np.all(np.diff(sweeps) >= 0), sweeps
    se = r.rungs[["log_z_se", "log_z_se_within", "log_z_se_family"]].isel(beta=-1)
    assert float(se["log_z_se"]) == max(float(se["log_z_se_within"]), float(se["log_z_se_family"]))
    monkeypatch.setattr(anneal, "MAX_SWEEP_FACTOR", 1)
    with pytest.warns(st.ConvergenceWarning, match="families collapsed"):
        fixed = population_annealing(t, **kw)
    assert np.all(fixed.rungs["sweeps"].values[0, 1:] == 1)
