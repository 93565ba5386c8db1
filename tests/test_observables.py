"""thermo.observables: WAIC and friends (REFERENCE §2.6), susceptibilities (§2.7) and the
thermodynamic dictionary, against the REFERENCE toy matrix, explicit log-likelihood matrices of
the same draws, and the closed forms of Bayesian linear regression (§2.2(d)).

Statistical comparisons use the estimators' own standard errors (4 SE; 3 SE over datasets in
the slow equation-of-state test) and fixed seeds.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import slt_thermo as st
from slt_thermo import models
from slt_thermo.thermo.stats import mean_se
from slt_thermo.thermo.observables import (
    observables,
    susceptibility,
    thermodynamics,
    waic_from_loglik,
)

D, N = 2, 50
BETAS = [0.0, 0.3, 1.0]


# ----------------------------------------------------------------------------- closed forms
def gaussian_posterior(data, beta, sigma2=1.0, alpha=1.0):
    """Tempered posterior of linear regression, N(m_β, A_β⁻¹) (REFERENCE §2.2(d))."""
    X = np.asarray(data["x"], float)
    y = np.asarray(data["y"], float)
    A = alpha * np.eye(X.shape[1]) + beta * X.T @ X / sigma2
    Ainv = np.linalg.inv(A)
    m = Ainv @ (beta * X.T @ y / sigma2)
    return X, y, m, Ainv


def exact_neg_log_prior(data, beta, alpha=1.0):
    """E^β[−log φ] = (d/2) log(2π/α) + (α/2)(|m_β|² + tr A_β⁻¹) for the N(0, α⁻¹I) prior."""
    X, _, m, Ainv = gaussian_posterior(data, beta, alpha=alpha)
    d = X.shape[1]
    return 0.5 * d * math.log(2 * math.pi / alpha) + 0.5 * alpha * (m @ m + np.trace(Ainv))


def exact_pointwise(data, beta, sigma2=1.0, alpha=1.0):
    """T_n and V_n in closed form: y_i − x_i·w ~ N(r_i, s_i) under the posterior, so
    log E_w p(y_i|w) = log N(y_i; x_i·m_β, σ² + s_i) and Var_w[log p] = (2s_i² + 4r_i²s_i)/(4σ⁴)."""
    X, y, m, Ainv = gaussian_posterior(data, beta, sigma2, alpha)
    r = y - X @ m
    s = np.einsum("ij,jk,ik->i", X, Ainv, X)
    lppd = -0.5 * np.log(2 * np.pi * (sigma2 + s)) - 0.5 * r**2 / (sigma2 + s)
    V = np.sum(2 * s**2 + 4 * r**2 * s) / (4 * sigma2**2)
    return -lppd.mean(), V


def explicit_loglik(run, target, i):
    """The draws × n log-likelihood matrix of rung i's healthy chains, recomputed from params."""
    ok = run.healthy.values[i]
    w = run["w"].values[i][ok].reshape(-1, D)
    return np.asarray(jax.vmap(target.log_likelihood)({"w": jnp.asarray(w)}))


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def linreg():
    m = models.linear_regression(d=D)
    data = m.simulate(jax.random.PRNGKey(11), N)
    target = st.Target(m, data)
    run = st.sample_nuts(target, BETAS, num_chains=4, num_warmup=300, num_samples=1000,
                         key=jax.random.PRNGKey(12), progress=False)
    assert run.healthy.values.all()
    return m, data, target, run


def with_unhealthy(run, beta_index=0, chain=0):
    ds = run.ds.copy(deep=True)
    ds["healthy"][beta_index, chain] = False
    return st.Samples(ds)


def drop_chain(run, chain):
    keep = [c for c in range(run.ds.sizes["chain"]) if c != chain]
    ds = run.ds.isel(chain=keep).copy(deep=True)
    ds = ds.assign_coords(chain=np.arange(len(keep)))
    return st.Samples(ds)


# ----------------------------------------------------------------------------- REFERENCE toy
def test_waic_toy_matrix_matches_reference():
    r = waic_from_loglik(np.array([[-1.0, -2.0], [-3.0, -2.0]]))
    np.testing.assert_allclose(r["lppd_i"], [-1.5662191695, -2.0], atol=1e-10)
    assert abs(r["bayes_training_loss"] - 1.7831095848) < 1e-10
    assert abs(r["functional_variance"] - 1.0) < 1e-10
    assert abs(r["waic"] - 2.2831095848) < 1e-10
    assert abs(r["elpd_waic"] - (-4.5662191695)) < 1e-10
    assert abs(r["deviance"] - 9.1324383390) < 1e-10
    # ddof = 0 (ArviZ/REFERENCE): p_waic = 1.0; ddof = 1 would give 2.0 — not mixed here
    assert abs(r["p_waic"] - 1.0) < 1e-10
    assert abs(r["singular_fluctuation"] - 0.5) < 1e-10
    assert abs(r["lppd"] - r["elpd_waic"] - r["p_waic"]) < 1e-12


def test_waic_matches_arviz_and_pools_chain_axis():
    az = pytest.importorskip("arviz")
    rng = np.random.default_rng(0)
    ll = rng.normal(-1.0, 0.3, size=(3, 200, 7))
    ours = waic_from_loglik(ll)
    assert ours["functional_variance"] == pytest.approx(waic_from_loglik(ll.reshape(600, 7))["functional_variance"])
    idata = az.from_dict(posterior={"a": np.zeros((3, 200))}, log_likelihood={"y": ll})
    ref = az.waic(idata)
    assert ours["elpd_waic"] == pytest.approx(float(ref["elpd_waic"]), rel=1e-12)
    assert ours["p_waic"] == pytest.approx(float(ref["p_waic"]), rel=1e-12)
    assert ours["elpd_waic_se"] == pytest.approx(float(ref["se"]), rel=1e-10)


def test_waic_tempered_scale():
    ll = np.array([[-1.0, -2.0], [-3.0, -2.0]])
    r = waic_from_loglik(ll, beta=0.5)
    assert r["waic"] == pytest.approx(1.7831095848 + 0.5 * 1.0 / 2, abs=1e-10)
    assert r["singular_fluctuation"] == pytest.approx(0.25)
    assert r["elpd_waic"] == pytest.approx(-2 * r["waic"])


def test_waic_bad_input():
    with pytest.raises(st.InvalidArgumentError, match="loglik"):
        waic_from_loglik(np.zeros(5))
    with pytest.raises(st.InvalidArgumentError, match="non-finite"):
        waic_from_loglik(np.array([[0.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(st.InvalidArgumentError, match="beta"):
        waic_from_loglik(np.zeros((3, 2)), beta=-1)


# ----------------------------------------------------------------------------- accumulators
def test_observables_equal_explicit_matrix(linreg):
    """The pooled accumulators (Chan M2, log-sum-exp over chains) give exactly what
    waic_from_loglik gives on the explicit matrix of the same draws (float32 accumulators)."""
    _, _, target, run = linreg
    obs = observables(run)
    for i, beta in enumerate(run.betas):
        ref = waic_from_loglik(explicit_loglik(run, target, i), beta=beta)
        for k in ("bayes_training_loss", "functional_variance", "waic", "singular_fluctuation"):
            got = float(obs[k].values[i])
            assert got == pytest.approx(ref[k], rel=1e-4, abs=1e-6), (beta, k, got, ref[k])
    np.testing.assert_allclose(obs["gibbs_training_error"].values,
                               run.nll.values.mean(axis=(1, 2)) / N, rtol=1e-6)


@pytest.mark.parametrize("rung,chain", [(0, 0), (2, 1)])
def test_unhealthy_chain_is_excluded(linreg, rung, chain):
    _, _, _, run = linreg
    bad = with_unhealthy(run, beta_index=rung, chain=chain)
    with pytest.warns(UserWarning, match="unhealthy"):
        got = observables(bad)
    want = observables(drop_chain(run, chain))
    full = observables(run)
    keys = ("gibbs_training_error", "gibbs_training_error_se", "bayes_training_loss",
            "functional_variance", "waic", "singular_fluctuation", "specific_heat")
    for k in keys:
        assert float(got[k].values[rung]) == pytest.approx(float(want[k].values[rung]), rel=1e-10), k
        others = [i for i in range(len(BETAS)) if i != rung]  # the other rungs keep all chains
        np.testing.assert_array_equal(got[k].values[others], full[k].values[others])
    assert int(got["chains"].values[rung]) == 3
    with pytest.warns(UserWarning, match="unhealthy"):
        chi = susceptibility(bad, "nll")
    assert float(chi["value"][rung]) == pytest.approx(float(susceptibility(drop_chain(run, chain), "nll")["value"][rung]), rel=1e-10)


def test_population_target_has_nan_data_entries():
    m = models.linear_regression(d=1)
    run = st.sample_nuts(st.Target.population(m, 100), [1.0], num_chains=2, num_warmup=100,
                         num_samples=100, key=jax.random.PRNGKey(0), progress=False)
    obs = observables(run)
    assert np.isnan(obs["waic"].values).all() and np.isnan(obs["functional_variance"].values).all()
    assert np.isfinite(obs["specific_heat"].values).all()


# ----------------------------------------------------------------------------- against closed forms
def test_gibbs_training_error_and_specific_heat_match_exact(linreg):
    m, data, _, run = linreg
    obs = observables(run)
    for i, beta in enumerate(run.betas):
        ex = m.exact_thermo(data, float(beta))
        g, g_se = float(obs["gibbs_training_error"][i]), float(obs["gibbs_training_error_se"][i])
        assert abs(g - float(ex.E) / N) < 4 * g_se, (beta, g, float(ex.E) / N, g_se)
        if beta > 0:
            c, c_se = float(obs["specific_heat"][i]), float(obs["specific_heat_se"][i])
            assert abs(c - beta**2 * float(ex.Var)) < 4 * c_se, (beta, c, beta**2 * float(ex.Var), c_se)


def test_pointwise_observables_match_closed_form(linreg):
    """T_n and V_n (from the accumulators) against their Gaussian closed forms, within 4 Monte
    Carlo SE. The SEs are delta-method ones on the explicit matrix of the same draws, with
    ArviZ's ESS: V_n is the mean of v_t = Σ_i (ℓ_it − ℓ̄_i)², and T_n = −(1/n)Σ_i log p̄_i has
    influence series τ_t = −(1/n) Σ_i p_it / p̄_i."""
    _, data, target, run = linreg
    obs = observables(run)
    C = run.ds.sizes["chain"]
    for i, beta in enumerate(run.betas):
        T, V = exact_pointwise(data, float(beta))
        ll = explicit_loglik(run, target, i).reshape(C, -1, N)
        _, V_se, _ = mean_se(((ll - ll.mean(axis=(0, 1))) ** 2).sum(axis=-1))
        p = np.exp(ll - ll.max(axis=(0, 1)))
        _, T_se, _ = mean_se(-(p / p.mean(axis=(0, 1))).sum(axis=-1) / N)
        got_T, got_V = float(obs["bayes_training_loss"][i]), float(obs["functional_variance"][i])
        assert abs(got_T - T) < 4 * T_se, (beta, got_T, T, T_se)
        assert abs(got_V - V) < 4 * V_se, (beta, got_V, V, V_se)


def test_susceptibility_of_nll_is_minus_beta_var(linreg):
    m, data, _, run = linreg
    chi = susceptibility(run, "nll")
    stats = st.thermo.rung_stats(run)
    np.testing.assert_allclose(chi["value"].values, -run.betas * stats["Var"].values, rtol=1e-9, atol=1e-12)
    # same through a DataArray and an explicit conjugate
    chi2 = susceptibility(run, run["nll"], conjugate=run["nll"] / N)
    np.testing.assert_allclose(chi2["value"].values, chi["value"].values, rtol=1e-6)  # float32 nll/N
    for i, beta in enumerate(run.betas):
        if beta == 0:
            continue
        want = -beta * float(m.exact_thermo(data, float(beta)).Var)
        assert abs(float(chi["value"][i]) - want) < 4 * float(chi["se"][i]), (beta, float(chi["value"][i]), want)


def test_susceptibility_of_params_callable(linreg):
    """A = w_0: χ = −β Cov(w_0, nL_n) = β ∂_β m_β = β (A_β⁻¹ Xᵀe/σ²)_0 (Gaussian posterior);
    with conjugate O = w_0 as well: χ = −nβ Var(w_0) = −nβ (A_β⁻¹)_00."""
    _, data, _, run = linreg
    chi = susceptibility(run, lambda p: p["w"][0])
    chi_oo = susceptibility(run, lambda p: p["w"][0], conjugate=lambda p: p["w"][0])
    for i, beta in enumerate(run.betas):
        if beta == 0:
            continue
        X, y, mb, Ainv = gaussian_posterior(data, float(beta))
        want = beta * (Ainv @ X.T @ (y - X @ mb))[0]
        assert abs(float(chi["value"][i]) - want) < 4 * float(chi["se"][i]), (beta, float(chi["value"][i]), want)
        want_oo = -N * beta * Ainv[0, 0]
        assert abs(float(chi_oo["value"][i]) - want_oo) < 4 * float(chi_oo["se"][i])


def test_susceptibility_bad_input(linreg):
    _, _, _, run = linreg
    with pytest.raises(st.InvalidArgumentError, match="observable"):
        susceptibility(run, "nope")
    with pytest.raises(st.InvalidArgumentError, match="observable"):
        susceptibility(run, "w")  # vector per draw: needs a callable
    with pytest.raises(st.InvalidArgumentError, match="scalar"):
        susceptibility(run, lambda p: p["w"])


# ----------------------------------------------------------------------------- thermodynamics
def test_thermodynamics_definitions_and_closed_form(linreg):
    m, data, _, run = linreg
    F_exact = np.array([float(m.exact_thermo(data, float(b)).F) for b in run.betas])
    th = thermodynamics(run, F=F_exact)
    stats = st.thermo.rung_stats(run)
    P = -run["log_prior"].values.mean(axis=(1, 2))
    E = stats["E"].values
    b = run.betas
    np.testing.assert_allclose(th["E_nll"].values, E)
    np.testing.assert_allclose(th["S"].values, P + b * E - F_exact, rtol=1e-6)
    np.testing.assert_allclose(th["U"].values[1:], E[1:] + P[1:] / b[1:], rtol=1e-6)
    assert np.isnan(th["U"].values[0])
    np.testing.assert_allclose((b * th["U"] - th["S"]).values[1:], F_exact[1:], rtol=1e-6)
    np.testing.assert_allclose(th["C"].values, b**2 * stats["Var"].values)
    for i, beta in enumerate(b):
        ex = m.exact_thermo(data, float(beta))
        P_ex = exact_neg_log_prior(data, float(beta))
        S_ex = P_ex + beta * float(ex.E) - float(ex.F)
        # the entropy of the Gaussian posterior N(m_β, A_β⁻¹) checks the closed forms themselves
        _, _, _, Ainv = gaussian_posterior(data, float(beta))
        assert S_ex == pytest.approx(0.5 * np.linalg.slogdet(2 * np.pi * np.e * Ainv)[1], abs=1e-6)
        assert abs(float(th["S"][i]) - S_ex) < 4 * float(th["S_se"][i]), (beta, float(th["S"][i]), S_ex)
        assert abs(float(th["E_neg_log_prior"][i]) - P_ex) < 4 * float(th["E_neg_log_prior_se"][i])
        if beta > 0:
            U_ex = float(ex.E) + P_ex / beta
            assert abs(float(th["U"][i]) - U_ex) < 4 * float(th["U_se"][i]), (beta, float(th["U"][i]), U_ex)


def test_thermodynamics_default_F_is_the_ti_curve(linreg):
    _, _, _, run = linreg
    curve = st.free_energy_curve(run)
    th = thermodynamics(run)
    np.testing.assert_allclose(th["F"].values, curve["F"].values)
    np.testing.assert_allclose(th["F_se"].values, curve["F_se"].values)
    th2 = thermodynamics(run, F=curve)
    np.testing.assert_allclose(th2["S_se"].values, th["S_se"].values)
    with pytest.raises(st.InvalidArgumentError, match="F"):
        thermodynamics(run, F=[1.0, 2.0])


# ----------------------------------------------------------------------------- equations of state
@pytest.mark.slow
def test_equations_of_state_regular_model():
    """Linear regression (regular: ν = λ = d/2) at β = 1 over 24 replicated datasets, n = 200:

    - mean ν̂ = (β/2)V_n within 3 SE (over datasets) of d/2;
    - mean of the MC ν̂ minus its per-dataset closed form within 3 SE of 0;
    - E[WAIC] − E[B_g] = o(1/n): the mean of n[(WAIC − S_emp) − (B_g − S)] within 3 SE of 0,
      with B_g from the Gaussian predictive N(x·m, σ² + xᵀA⁻¹x) (exact in y, 20 000 x-draws),
      S = ½ log 2πeσ² the entropy of q and S_emp = −(1/n)Σ log q(y_i|x_i) (E[S_emp] = S): the
      centring removes the O(1/√n) data noise common to WAIC and the empirical entropy.
    """
    d, n, reps = 2, 200, 24
    m = models.linear_regression(d=d)
    w0 = np.asarray(m.true_params["w"], float)
    S = 0.5 * math.log(2 * math.pi * math.e)
    xs = np.random.default_rng(0).normal(size=(20000, d))
    nus, nu_err, gaps = [], [], []
    for r in range(reps):
        data = m.simulate(jax.random.PRNGKey(100 + r), n)
        run = st.sample_nuts(st.Target(m, data), [1.0], num_chains=4, num_warmup=300,
                             num_samples=1000, key=jax.random.PRNGKey(500 + r), progress=False)
        obs = observables(run)
        nu = float(obs["singular_fluctuation"][0])
        waic = float(obs["waic"][0])
        X, y, mb, Ainv = gaussian_posterior(data, 1.0)
        _, V_ex = exact_pointwise(data, 1.0)
        sx = np.einsum("ij,jk,ik->i", xs, Ainv, xs)
        dl = xs @ (w0 - mb)
        Bg = np.mean(0.5 * np.log(2 * np.pi * (1 + sx)) + 0.5 * (1 + dl**2) / (1 + sx))
        S_emp = np.mean(0.5 * math.log(2 * math.pi) + 0.5 * (y - X @ w0) ** 2)
        nus.append(nu)
        nu_err.append(nu - 0.5 * V_ex)
        gaps.append(n * ((waic - S_emp) - (Bg - S)))

    def z(x, target):
        x = np.asarray(x)
        return (x.mean() - target) / (x.std(ddof=1) / math.sqrt(x.size))

    assert abs(z(nus, d / 2)) < 3, (np.mean(nus), np.std(nus))
    assert abs(z(nu_err, 0.0)) < 3, (np.mean(nu_err), np.std(nu_err))
    assert abs(z(gaps, 0.0)) < 3, (np.mean(gaps), np.std(gaps))
