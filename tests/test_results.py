"""Samples: layout, accumulators, summary, ArviZ export and the netCDF round trip."""

import jax
import numpy as np
import pytest
import xarray as xr

import slt_thermo as st
from slt_thermo import models


@pytest.fixture(scope="module")
def run():
    m = models.linear_regression(d=2)
    data = m.simulate(jax.random.PRNGKey(0), 15)
    t = st.Target(m, data)
    return t, st.sample_nuts(t, [0.25, 1.0], num_chains=3, num_warmup=50, num_samples=80,
                             thinning=2, key=jax.random.PRNGKey(1), progress=False)


def test_layout(run):
    _, s = run
    assert dict(s.ds.sizes)["beta"] == 2 and s.ds.sizes["chain"] == 3 and s.ds.sizes["draw"] == 80
    assert s["w"].dims == ("beta", "chain", "draw", "w_dim_0")
    for name in ("diverging", "acceptance_rate", "step_size", "n_steps", "tree_depth", "energy", "lp"):
        assert s[name].dims == ("beta", "chain", "draw")
    assert s.healthy.dims == ("beta", "chain") and s.healthy.values.all()
    assert s.n == 15 and s.ds.attrs["thinning"] == 2


def test_pointwise_accumulators_equal_the_draws_they_summarize(run):
    """Recompute per-example log-likelihoods from the kept draws: the running mean, M2 and
    log-sum-exp must agree with the batch statistics (no draws × n matrix is ever stored)."""
    t, s = run
    w = s["w"].values  # (beta, chain, draw, d)
    ll = np.asarray(jax.vmap(jax.vmap(jax.vmap(lambda x: t.log_likelihood({"w": x}))))(w), dtype=float)
    np.testing.assert_allclose(s["loglik_mean"].values, ll.mean(axis=2), rtol=1e-4, atol=1e-4)
    m2 = ((ll - ll.mean(axis=2, keepdims=True)) ** 2).sum(axis=2)
    np.testing.assert_allclose(s["loglik_m2"].values, m2, rtol=1e-3, atol=1e-3)
    from scipy.special import logsumexp
    np.testing.assert_allclose(s["loglik_logsumexp"].values, logsumexp(ll, axis=2), rtol=1e-4)
    np.testing.assert_allclose(s.nll.values, -ll.sum(axis=3), rtol=1e-4)


def test_save_load_round_trip_unchanged(run, tmp_path):
    _, s = run
    path = s.save(tmp_path / "run.nc")
    back = st.load(path)
    xr.testing.assert_identical(s.ds, back.ds)
    assert back.healthy.dtype == bool


def test_load_missing_file(tmp_path):
    with pytest.raises(st.ResultsFileError, match="nope.nc.*no such file"):
        st.load(tmp_path / "nope.nc")


def test_summary_and_arviz(run):
    _, s = run
    table = s.summary()
    assert list(table.index) == [0.25, 1.0]
    assert (table["nll_rhat"] < 1.1).all() and (table["nll_ess_bulk"] > 20).all()
    idata = s.to_arviz(beta=1.0)
    post = idata["posterior"]
    assert post["w"].shape == (3, 80, 2) and "nll" in post
    with pytest.raises(st.InvalidArgumentError, match="beta"):
        s.to_arviz()


def test_estimate_prints_value_and_error():
    assert str(st.Estimate(0.51234, 0.0111)) == "0.512 ± 0.011"
