"""Target.from_numpyro: observed sites → likelihood, latent sites → prior (+ Jacobian)."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import slt_thermo as st
from slt_thermo import models
from conftest import mean_and_se


def regression(x, y=None):
    w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("y", dist.Normal(x @ w, 1.0), obs=y)


def test_matches_the_zoo_model_it_mirrors():
    m = models.linear_regression(d=2)
    data = m.simulate(jax.random.PRNGKey(0), 25)
    t = st.Target.from_numpyro(regression, data["x"], data["y"])
    ref = st.Target(m, data)
    w = {"w": jnp.array([0.4, -1.1])}
    assert t.n == 25
    np.testing.assert_allclose(np.asarray(t.log_likelihood(w)), np.asarray(ref.log_likelihood(w)), rtol=1e-5)
    np.testing.assert_allclose(float(t.log_prior(w)), float(ref.log_prior(w)), rtol=1e-5)


def scale_model(y=None):
    s = numpyro.sample("s", dist.LogNormal(0.0, 0.5))
    with numpyro.plate("data", 30):
        numpyro.sample("y", dist.Normal(0.0, s), obs=y)


def test_constrained_site_samples_its_prior_at_beta_zero():
    """A positive latent (LogNormal(0, 0.5)) at β = 0: the mean of log s must be 0 and its
    variance 0.25 — only true if the log-Jacobian of the exp transform is included."""
    y = jax.random.normal(jax.random.PRNGKey(1), (30,))
    t = st.Target.from_numpyro(scale_model, y)
    assert t.support["s"] is not None
    run = st.sample_nuts(t, [0.0], num_chains=4, num_warmup=200, num_samples=500,
                         key=jax.random.PRNGKey(2), progress=False)
    logs = np.log(run["s"].values[0])
    mean, se = mean_and_se(logs)
    assert abs(mean) < 4 * se
    var, se_var = mean_and_se(logs**2)
    assert abs(var - 0.25) < 4 * se_var


def test_rejects_models_without_observations():
    def prior_only():
        numpyro.sample("w", dist.Normal(0.0, 1.0))

    with pytest.raises(st.InvalidArgumentError, match="observed"):
        st.Target.from_numpyro(prior_only)
