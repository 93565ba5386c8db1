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
@pytest.mark.slow
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


def test_a_killed_sampler_run_continues_from_its_checkpoint(tmp_path):
    """RunOptions(checkpoint=DIR): the state after every chunk on disk; a run killed after two
    chunks, started again with the same directory, ends with the uninterrupted numbers."""
    model = models.linear_regression(d=2)
    target = st.Target(model, model.simulate(jax.random.PRNGKey(0), 50))
    kw = dict(step_size=1e-3, num_steps=400, num_burnin=100, batch_size=10, num_chains=2, progress=False,
              chunk_size=50)
    whole = st.sample_sgld(target, [0.5, 1.0], key=jax.random.PRNGKey(1), **kw)
    ck = str(tmp_path / "run")
    first = st.sample_sgld(target, [0.5, 1.0], key=jax.random.PRNGKey(1),
                           options=st.RunOptions(checkpoint=ck, max_chunks=2), **kw)  # "killed" after 2 chunks
    assert first.num_draws < whole.num_draws and os.listdir(ck) == ["state.pkl"]
    done = st.sample_sgld(target, [0.5, 1.0], key=jax.random.PRNGKey(1), options=st.RunOptions(checkpoint=ck), **kw)
    np.testing.assert_array_equal(done["nll"].values, whole["nll"].values)
    np.testing.assert_array_equal(done["w"].values, whole["w"].values)
    with pytest.raises(st.InvalidArgumentError, match="different run"):  # another run's directory
        st.sample_sgld(target, [0.5, 1.0], key=jax.random.PRNGKey(2), options=st.RunOptions(checkpoint=ck), **kw)
    with pytest.raises(st.InvalidArgumentError, match="different run"):  # the same run but another ε
        st.sample_sgld(target, [0.5, 1.0], key=jax.random.PRNGKey(1), options=st.RunOptions(checkpoint=ck),
                       **{**kw, "step_size": 2e-3})
    with open(os.path.join(ck, "state.pkl"), "r+b") as f:  # a damaged file is refused, not loaded
        f.seek(200)
        f.write(b"\x00\x01\x02")
    with pytest.raises(st.InvalidArgumentError, match="damaged"):
        st.sample_sgld(target, [0.5, 1.0], key=jax.random.PRNGKey(1), options=st.RunOptions(checkpoint=ck), **kw)


def test_population_annealing_continues_from_its_checkpoint(tmp_path):
    """The state after every rung on disk: a PA run stopped after 3 rungs and started again with
    the same directory gives the uninterrupted log Z."""
    model = models.linear_regression(d=2)
    target = st.Target(model, model.simulate(jax.random.PRNGKey(0), 50))
    kw = dict(betas=st.ladder.power(8), num_particles=32, num_runs=2, progress=False)
    whole = st.population_annealing(target, key=jax.random.PRNGKey(1), **kw)
    ck = str(tmp_path / "pa")
    st.population_annealing(target, key=jax.random.PRNGKey(1), options=st.RunOptions(checkpoint=ck, max_chunks=3),
                            **kw)
    done = st.population_annealing(target, key=jax.random.PRNGKey(1), options=st.RunOptions(checkpoint=ck), **kw)
    np.testing.assert_array_equal(done.rungs["log_z"].values, whole.rungs["log_z"].values)


@pytest.mark.slow  # CI budget (13–27 s each on 2 cores)
def test_a_killed_llc_continues_from_its_checkpoint(tmp_path, monkeypatch):
    """st.llc(checkpoint=DIR): each SGLD run of the call checkpoints per chunk; a call killed
    mid-run and started again with the same directory gives the uninterrupted λ̂, and runs only
    the chunks it had not finished."""
    from slt_thermo.samplers import run as run_module

    model = models.linear_regression(d=2)
    target = st.Target(model, model.simulate(jax.random.PRNGKey(0), 200))
    center = model.true_params
    kw = dict(key=jax.random.PRNGKey(3), num_chains=2, num_steps=400, num_burnin=100, gamma=1.0,
              progress=False)
    whole = st.llc(target, center, **kw)

    real_advance, calls = run_module.advance, {"n": 0, "kill_at": 5}

    def advance(*args, **kwargs):  # a process killed during its sixth chunk
        if calls["n"] == calls["kill_at"]:
            raise RuntimeError("killed")
        calls["n"] += 1
        return real_advance(*args, **kwargs)

    monkeypatch.setattr(run_module, "advance", advance)
    ck = tmp_path / "llc"
    with pytest.raises(RuntimeError, match="killed"):
        st.llc(target, center, checkpoint=ck, **kw)
    assert os.listdir(ck) == ["attempt-0"]
    calls.update(n=0, kill_at=None)
    resumed = st.llc(target, center, checkpoint=ck, **kw)
    assert resumed.value == whole.value and resumed.stderr == whole.stderr
    resumed_chunks, calls["n"] = calls["n"], 0
    st.llc(target, center, **kw)
    assert resumed_chunks == calls["n"] - 5  # it ran only the chunks the killed call had not
    calls["n"] = 0
    st.llc(target, center, checkpoint=ck, **kw)  # a finished run is reread, not rerun
    assert calls["n"] == 0
