"""Target: densities, the unconstrained map, population mode, and input validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import slt_thermo as st
from slt_thermo import models


def linreg_data(n=20, d=2, seed=0):
    m = models.linear_regression(d=d)
    return m, m.simulate(jax.random.PRNGKey(seed), n)


def test_nll_is_full_negative_log_likelihood_with_normalizers():
    m, data = linreg_data()
    t = st.Target(m, data)
    w = {"w": jnp.array([0.3, -0.2])}
    resid = np.asarray(data["y"]) - np.asarray(data["x"]) @ np.array([0.3, -0.2])
    expected = 0.5 * np.sum(resid**2) + 0.5 * 20 * np.log(2 * np.pi)
    np.testing.assert_allclose(float(t.nll(w)), expected, rtol=1e-5)
    assert t.log_likelihood(w).shape == (20,)
    assert t.n == 20


def test_nll_batch_is_unbiased_over_a_partition():
    m, data = linreg_data(n=12)
    t = st.Target(m, data)
    w = {"w": jnp.array([0.5, 1.0])}
    batches = np.arange(12).reshape(4, 3)
    mean_batch = np.mean([float(t.nll_batch(w, idx)) for idx in batches])
    np.testing.assert_allclose(mean_batch, float(t.nll(w)), rtol=1e-5)


def test_log_density_tempers_likelihood_only_and_localizes():
    m, data = linreg_data()
    t = st.Target(m, data)
    w = {"w": jnp.array([0.1, 0.2])}
    c = {"w": jnp.array([1.0, 0.0])}
    lp, nll = float(t.log_prior(w)), float(t.nll(w))
    np.testing.assert_allclose(float(t.log_density(w, 0.0)), lp, rtol=1e-6)
    np.testing.assert_allclose(float(t.log_density(w, 0.3)), lp - 0.3 * nll, rtol=1e-6)
    loc = float(t.log_density(w, 0.3, center=c, gamma=2.0))
    np.testing.assert_allclose(loc, lp - 0.3 * nll - 0.5 * 2.0 * (0.81 + 0.04), rtol=1e-6)


def test_unconstrained_density_carries_the_jacobian():
    """At β = 0 the pushed-forward prior density must integrate to one in u-space."""
    m = models.monomial(1)
    t = st.Target.population(m, 10)
    u = jnp.linspace(-30.0, 30.0, 60001)
    logp = jax.vmap(lambda x: t.log_density_unconstrained({"w": x[None]}, 0.0))(u)
    mass = np.trapezoid(np.exp(np.asarray(logp, dtype=float)), np.asarray(u, dtype=float))
    np.testing.assert_allclose(mass, 1.0, rtol=1e-4)
    w = {"w": jnp.array([0.37])}
    back = t.to_constrained(t.to_unconstrained(w))
    np.testing.assert_allclose(np.asarray(back["w"]), [0.37], rtol=1e-5)


def test_population_mode_energy_is_n_times_K():
    m = models.monomial((1, 1))
    t = st.Target.population(m, 1000)
    w = {"w": jnp.array([0.5, 0.2])}
    np.testing.assert_allclose(float(t.nll(w)), 1000 * (0.25 * 0.04), rtol=1e-6)
    assert t.is_population


def test_population_K_matches_large_sample_likelihood_ratio():
    """For every zoo model, K(w) = E_q[log p(y|x,w0) − log p(y|x,w)]: check kl() against a
    Monte Carlo average over 200k simulated examples, within 5 standard errors."""
    zoo = [
        models.monomial((1, 2)),
        models.linear_regression(3),
        models.reduced_rank(3, 2, 2, 1),
        models.deep_linear((2, 3, 2), 1),
        models.tanh_net(2),
        models.gaussian_mixture(),
    ]
    for i, m in enumerate(zoo):
        key_w, key_d = jax.random.split(jax.random.PRNGKey(100 + i))
        w = jax.tree_util.tree_map(lambda x: 0.5 * x, m.init(key_w))
        data = m.simulate(key_d, 200_000)
        diff = np.asarray(m.log_likelihood(m.true_params, data) - m.log_likelihood(w, data), dtype=float)
        se = diff.std() / np.sqrt(diff.size)
        assert abs(diff.mean() - float(m.kl(w))) < 5 * se + 1e-6, m.name


def test_from_functions_and_init_pytree():
    m, data = linreg_data()
    t = st.Target.from_functions(m.log_prior, m.log_likelihood, data, init={"w": jnp.zeros(2)})
    w = {"w": jnp.array([0.3, -0.2])}
    np.testing.assert_allclose(float(t.nll(w)), float(st.Target(m, data).nll(w)), rtol=1e-6)
    assert t.init(jax.random.PRNGKey(0))["w"].shape == (2,)


def test_target_is_a_pytree_with_data_leaves():
    m, data = linreg_data()
    t = st.Target(m, data)
    leaves = jax.tree_util.tree_leaves(t)
    assert len(leaves) == 2
    f = jax.jit(lambda tt, w: tt.nll(w))
    w = {"w": jnp.array([0.3, -0.2])}
    np.testing.assert_allclose(float(f(t, w)), float(t.nll(w)), rtol=1e-6)


# ------------------------------------------------------------------ validation
def test_inconsistent_leading_axes():
    m, data = linreg_data()
    bad = {"x": data["x"], "y": data["y"][:-1]}
    with pytest.raises(st.DataError, match=r"data\['y'\].*|leading axis"):
        st.Target(m, bad)


def test_non_finite_data_names_the_leaf():
    m, data = linreg_data()
    bad = {"x": data["x"], "y": data["y"].at[3].set(jnp.nan)}
    with pytest.raises(st.DataError, match=r"data\['y'\]"):
        st.Target(m, bad)


def test_empty_data_is_n_below_one():
    m, data = linreg_data()
    with pytest.raises(st.DataError, match="n = 0"):
        st.Target(m, {"x": data["x"][:0], "y": data["y"][:0]})


def test_log_likelihood_of_wrong_shape():
    m, data = linreg_data()
    summed = lambda p, d: jnp.sum(m.log_likelihood(p, d))
    with pytest.raises(st.LikelihoodError, match="log_likelihood"):
        st.Target.from_functions(m.log_prior, summed, data, init=m.init)


def test_log_likelihood_non_finite_at_init():
    m, data = linreg_data()
    nan_ll = lambda p, d: m.log_likelihood(p, d) * jnp.nan
    with pytest.raises(st.LikelihoodError, match="log_likelihood.*non-finite"):
        st.Target.from_functions(m.log_prior, nan_ll, data, init=m.init)


def test_negative_beta_is_rejected():
    m, data = linreg_data()
    t = st.Target(m, data)
    with pytest.raises(st.InvalidArgumentError, match="beta"):
        t.log_density(m.true_params, -0.5)
    with pytest.raises(st.InvalidArgumentError, match="betas"):
        st.sample_nuts(t, [0.5, -0.1], num_chains=1, num_warmup=1, num_samples=1,
                       key=jax.random.PRNGKey(0), progress=False)


def test_n_below_one_is_rejected():
    m = models.monomial(1)
    with pytest.raises(st.InvalidArgumentError, match="`n`"):
        st.Target.population(m, 0)
    with pytest.raises(st.InvalidArgumentError, match="`n`"):
        m.simulate(jax.random.PRNGKey(0), 0)


def test_errors_share_one_base():
    for cls in (st.DataError, st.LikelihoodError, st.InvalidArgumentError, st.TooFewHealthyChainsError):
        assert issubclass(cls, st.SLTThermoError)
