"""Sweeps that survive a crash: free_energy_vs_n with a checkpoint directory writes each finished
n as it completes; a sweep killed after k units resumes to the uninterrupted result."""

import functools
import os

import jax
import numpy as np
import pytest

import slt_thermo as st
from slt_thermo import models


@pytest.mark.filterwarnings("ignore:n = .*R-hat")  # tiny runs: the point is the bookkeeping
def test_killed_sweep_resumes_to_the_same_result(tmp_path):
    model = models.linear_regression(d=2)
    ns, betas = [20, 40, 80], st.ladder.power(6)
    kw = dict(num_chains=2, num_warmup=40, num_samples=40, progress=False)
    whole = st.free_energy_vs_n(model, ns, betas, key=jax.random.PRNGKey(0), **kw)

    calls = {"n": 0}

    @functools.wraps(st.sample_nuts)
    def dies_after_two(*args, **kwargs):  # the same sampler, killed at its third unit
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        calls["n"] += 1
        return st.sample_nuts(*args, **kwargs)

    ck = str(tmp_path / "sweep")
    with pytest.raises(KeyboardInterrupt):
        st.free_energy_vs_n(model, ns, betas, key=jax.random.PRNGKey(0), sampler=dies_after_two, checkpoint=ck, **kw)
    assert sorted(os.listdir(ck)) == ["unit-000-n20.nc", "unit-001-n40.nc"]  # no partial file
    resumed = st.free_energy_vs_n(model, ns, betas, key=jax.random.PRNGKey(0), checkpoint=ck, **kw)
    assert len(os.listdir(ck)) == 3
    for k in ("F", "F_se", "E", "Var", "nll_true"):
        np.testing.assert_allclose(resumed[k].values, whole[k].values, rtol=1e-6, err_msg=k)
    assert resumed.attrs["lambda_hat"] == pytest.approx(whole.attrs["lambda_hat"], rel=1e-6)
    # a finished sweep rereads every unit and samples nothing
    again = st.free_energy_vs_n(model, ns, betas, key=jax.random.PRNGKey(0), sampler=dies_after_two,
                                checkpoint=ck, **kw)
    np.testing.assert_allclose(again["F"].values, whole["F"].values, rtol=1e-6)
    # another sweep (other key) in the same directory is refused, not silently mixed in
    with pytest.raises(st.InvalidArgumentError, match="different sweep"):
        st.free_energy_vs_n(model, ns, betas, key=jax.random.PRNGKey(1), checkpoint=ck, **kw)
