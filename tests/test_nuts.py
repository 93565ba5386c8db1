"""Tempered NUTS/HMC over a β-ladder, checked against exact thermodynamics.

Tolerances: each sampled mean is compared with the exact value within 4 Monte Carlo standard
errors (ArviZ ESS for the mean over the pooled chains), with fixed seeds.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import slt_thermo as st
from slt_thermo import exact, models
from conftest import mean_and_se

Z = 4.0  # tolerance in standard errors


@pytest.fixture(scope="module")
def linreg_run():
    m = models.linear_regression(d=3)
    data = m.simulate(jax.random.PRNGKey(1), 100)
    target = st.Target(m, data)
    betas = np.array([0.0, 0.05, 0.2, 0.5, 1.0])
    run = st.sample_nuts(target, betas, num_chains=4, num_warmup=300, num_samples=600,
                         key=jax.random.PRNGKey(2), progress=False)
    return m, data, run


def test_linear_regression_energy_matches_closed_form(linreg_run):
    m, data, run = linreg_run
    for b in run.betas[1:]:
        exact_E = m.exact_thermo(data, b).E
        mean, se = mean_and_se(run.nll.sel(beta=b).values)
        assert abs(mean - exact_E) < Z * se, (b, mean, exact_E, se)


def test_beta_zero_samples_the_prior(linreg_run):
    """At β = 0 the draws are prior draws: N(0, 1/α) per coordinate (α = 1)."""
    m, data, run = linreg_run
    w = run["w"].sel(beta=0.0).values  # (chain, draw, d)
    for j in range(w.shape[-1]):
        mean, se = mean_and_se(w[..., j])
        assert abs(mean) < Z * se
        sq = (w[..., j] - 0.0) ** 2
        var, se_var = mean_and_se(sq)
        assert abs(var - 1.0 / m.alpha) < Z * se_var


def test_beta_zero_on_a_box_prior_uses_the_jacobian():
    """Uniform prior on [−1, 1]: mean 0, variance 1/3 — only right if the Jacobian is in."""
    t = st.Target.population(models.monomial(1), 1000)
    run = st.sample_nuts(t, [0.0], num_chains=4, num_warmup=200, num_samples=500,
                         key=jax.random.PRNGKey(3), progress=False)
    w = run["w"].values[0, ..., 0]
    mean, se = mean_and_se(w)
    assert abs(mean) < Z * se
    var, se_var = mean_and_se(w**2)
    assert abs(var - 1 / 3) < Z * se_var


@pytest.mark.parametrize("k", [1, 2])
def test_population_monomial_beta_energy_is_lambda(k):
    """β E^β[nK] at β = 1 and 1/log n against the exact 1-D partition function (REFERENCE §2.2a)."""
    n = 1000
    t = st.Target.population(models.monomial(k), n)
    betas = [1 / math.log(n), 1.0]
    run = st.sample_nuts(t, betas, num_chains=4, num_warmup=300, num_samples=800,
                         key=jax.random.PRNGKey(10 + k), progress=False)
    for b in betas:
        truth = b * exact.monomial_thermo(k, 0, n, b).E
        mean, se = mean_and_se(b * run.nll.sel(beta=b, method="nearest").values)
        assert abs(mean - truth) < Z * se, (k, b, mean, truth, se)
        np.testing.assert_allclose(truth, 1 / (2 * k), rtol=1e-6)  # βE = λ up to O(e^{-βn})


def test_fixed_length_hmc_matches_closed_form(linreg_run):
    m, data, _ = linreg_run
    target = st.Target(m, data)
    run = st.sample_hmc(target, [0.3, 1.0], num_chains=4, num_warmup=300, num_samples=600,
                        num_steps=8, key=jax.random.PRNGKey(4), progress=False)
    assert np.all(run["n_steps"].values == 8)
    for b in run.betas:
        mean, se = mean_and_se(run.nll.sel(beta=b).values)
        assert abs(mean - m.exact_thermo(data, b).E) < Z * se


def test_one_compile_for_a_sixteen_rung_ladder():
    """The log-likelihood is traced a fixed number of times per run, independent of the ladder
    length and of the number of chunks; a second ladder of the same length re-traces nothing."""
    m = models.linear_regression(d=2)
    data = m.simulate(jax.random.PRNGKey(0), 30)
    traces = []

    def counting_ll(params, d):
        if isinstance(params["w"], jax.core.Tracer):
            traces.append(1)
        return m.log_likelihood(params, d)

    def count_run(target, betas, key):
        before = len(traces)
        st.sample_nuts(target, betas, num_chains=2, num_warmup=20, num_samples=40,
                       chunk_size=6, key=jax.random.PRNGKey(key), progress=False)  # 10 chunks
        return len(traces) - before

    t16 = st.Target.from_functions(m.log_prior, counting_ll, data, init=m.init)
    c16 = count_run(t16, np.linspace(0.05, 1.0, 16), 1)
    t1 = st.Target.from_functions(m.log_prior, counting_ll, data, init=m.init)
    c1 = count_run(t1, [1.0], 2)
    assert 0 < c16 == c1 < 10  # not one trace per rung, nor per chunk
    assert count_run(t16, np.linspace(0.1, 0.9, 16), 3) == 0  # β is traced, never baked in


def test_same_key_same_numbers_and_chunking_does_not_matter():
    t = st.Target.population(models.monomial(1), 100)
    kw = dict(num_chains=2, num_warmup=30, num_samples=50, key=jax.random.PRNGKey(5), progress=False)
    a = st.sample_nuts(t, [0.5, 1.0], **kw)
    b = st.sample_nuts(t, [0.5, 1.0], **kw)
    c = st.sample_nuts(t, [0.5, 1.0], chunk_size=7, **kw)
    np.testing.assert_array_equal(a.nll.values, b.nll.values)
    np.testing.assert_allclose(a.nll.values, c.nll.values, rtol=1e-5)


def test_non_finite_chains_are_flagged_unhealthy():
    m = models.linear_regression(d=1)
    data = m.simulate(jax.random.PRNGKey(0), 20)

    def ll(params, d):  # NaN where w > 5: a chain started there can never become finite
        out = m.log_likelihood(params, d)
        return jnp.where(params["w"][0] > 5.0, jnp.nan, out)

    t = st.Target.from_functions(m.log_prior, ll, data, init={"w": jnp.zeros(1)})
    init = {"w": jnp.array([[[0.0], [10.0], [0.5]]])}  # (beta=1, chain=3, d=1)
    with pytest.warns(UserWarning, match="unhealthy"):
        run = st.sample_nuts(t, [1.0], num_chains=3, num_warmup=20, num_samples=20, init=init,
                             key=jax.random.PRNGKey(1), progress=False)
    np.testing.assert_array_equal(run.healthy.values, [[True, False, True]])


def test_interrupted_run_keeps_its_draws(monkeypatch):
    from slt_thermo.samplers import run as run_mod

    real = run_mod._run_chunk
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(run_mod, "_run_chunk", flaky)
    t = st.Target.population(models.monomial(1), 100)
    with pytest.warns(UserWarning, match="interrupted"):
        run = st.sample_nuts(t, [1.0], num_chains=2, num_warmup=10, num_samples=40, chunk_size=10,
                             key=jax.random.PRNGKey(0), progress=False)
    assert run.ds.attrs["interrupted"] == 1
    assert run.num_draws == 20  # chunk 1 = warmup, chunks 2-3 = 20 draws, chunk 4 interrupted
    assert np.all(np.isfinite(run.nll.values))


def test_bad_sampler_arguments_name_themselves():
    t = st.Target.population(models.monomial(1), 100)
    key = jax.random.PRNGKey(0)
    base = dict(num_chains=1, num_warmup=1, num_samples=1, key=key, progress=False)
    for bad, name in [({"num_chains": 0}, "num_chains"), ({"num_samples": 0}, "num_samples"),
                      ({"thinning": 0}, "thinning"), ({"max_tree_depth": 0}, "max_tree_depth"),
                      ({"key": 3}, "key")]:
        with pytest.raises(st.InvalidArgumentError, match=name):
            st.sample_nuts(t, [1.0], **{**base, **bad})
    with pytest.raises(st.InvalidArgumentError, match="target"):
        st.sample_nuts("not a target", [1.0], **base)
