"""The seams later capabilities stand on: prior draws, traced hyperparameters, observables per
draw, runs without β, one options object, and a resumable driver."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import slt_thermo as st
from slt_thermo import models
from slt_thermo.samplers.mala import MALAConfig
from slt_thermo.samplers.run import _run_chunk, run


@pytest.fixture(scope="module")
def linreg():
    m = models.linear_regression(d=2)
    return m, m.simulate(jax.random.PRNGKey(0), 100)


def _observed(p, data):
    resid = data["y"] - data["x"] @ p["w"]
    return {"w0": p["w"][0], "sq_norm": jnp.sum(p["w"] ** 2), "mse": jnp.mean(resid**2)}


def _scaled_loglik(model):
    """The linear regression likelihood with its noise precision scaled by a traced ``hyper``."""
    def loglik(params, data, hyper):
        resid = data["y"] - data["x"] @ params["w"]
        return 0.5 * jnp.log(hyper["tau"] / (2 * jnp.pi)) - 0.5 * hyper["tau"] * resid**2
    return loglik


def _exact_posterior_mean(data, beta, tau=1.0, alpha=1.0):
    x, y = np.asarray(data["x"], float), np.asarray(data["y"], float)
    prec = alpha * np.eye(x.shape[1]) + beta * tau * x.T @ x
    return np.linalg.solve(prec, beta * tau * x.T @ y), prec


# ----------------------------------------------------------------------------- prior draws
def test_sample_prior_from_model_functions_and_numpyro(linreg):
    m, data = linreg
    t = st.Target(m, data)
    draws = t.sample_prior(jax.random.key(1), (4000,))
    w = np.asarray(draws["w"])
    assert w.shape == (4000, 2)
    se = 1 / np.sqrt(4000)  # prior N(0, 1): mean within 4 se of 0, variance within 4 se of 1
    assert np.all(np.abs(w.mean(0)) < 4 * se)
    assert np.all(np.abs(w.var(0) - 1) < 4 * np.sqrt(2) * se)
    assert jax.tree_util.tree_map(jnp.shape, t.sample_prior(jax.random.key(1), (2, 3))) == {"w": (2, 3, 2)}

    f = st.Target.from_functions(m.log_prior, m.log_likelihood, data, m.init,
                                 sample_prior=m.sample_prior)
    np.testing.assert_array_equal(np.asarray(f.sample_prior(jax.random.key(1), (4000,))["w"]), w)
    g = st.Target.from_functions(m.log_prior, m.log_likelihood, data, m.init)
    with pytest.raises(st.InvalidArgumentError, match="sample_prior"):
        g.sample_prior(jax.random.key(1))

    def numpyro_model(x, y=None):
        s = numpyro.sample("s", dist.HalfNormal(2.0))
        w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([2]))
        with numpyro.plate("data", x.shape[0]):
            numpyro.sample("y", dist.Normal(x @ w, s), obs=y)

    tn = st.Target.from_numpyro(numpyro_model, data["x"], data["y"])
    d = tn.sample_prior(jax.random.key(2), (4000,))
    s = np.asarray(d["s"])
    # HalfNormal(2): mean 2√(2/π), sd 2√(1 − 2/π)
    assert abs(s.mean() - 2 * np.sqrt(2 / np.pi)) < 4 * 2 * np.sqrt(1 - 2 / np.pi) * se
    assert np.all(np.abs(np.asarray(d["w"]).mean(0)) < 4 * se)


# ----------------------------------------------------------------------------- hyperparameters
def test_hyper_is_traced_and_vmappable(linreg):
    m, data = linreg
    t = st.Target.from_functions(m.log_prior, _scaled_loglik(m), data, m.init, hyper={"tau": 1.0})
    w = {"w": jnp.array([0.3, -0.1])}
    np.testing.assert_allclose(float(t.nll(w)), float(st.Target(m, data).nll(w)), rtol=1e-6)
    taus = jnp.array([0.5, 1.0, 2.0])
    batched = jax.vmap(lambda a: t.with_hyper(tau=a).nll(w))(taus)
    one_by_one = [float(t.with_hyper(tau=float(a)).nll(w)) for a in taus]
    np.testing.assert_allclose(np.asarray(batched), one_by_one, rtol=1e-6)
    with pytest.raises(st.InvalidArgumentError, match="unknown"):
        t.with_hyper(rho=1.0)
    with pytest.raises(st.InvalidArgumentError, match="structure and shapes"):
        t.with_hyper({"tau": jnp.ones(3)})
    with pytest.raises(st.InvalidArgumentError, match="no hyperparameters"):
        st.Target(m, data).with_hyper(tau=1.0)


def test_a_grid_of_five_hyperparameters_compiles_the_chunk_once(linreg):
    m, data = linreg
    t = st.Target.from_functions(m.log_prior, _scaled_loglik(m), data, m.init, hyper={"tau": 1.0})
    opts = st.RunOptions(num_chains=2, num_warmup=50, num_samples=50, progress=False)
    before = _run_chunk._cache_size()
    means = []
    for tau in (0.25, 0.5, 1.0, 2.0, 4.0):
        r = st.sample_nuts(t.with_hyper(tau=tau), [1.0], key=jax.random.key(3), options=opts)
        means.append(float(r.nll.mean()))
    assert _run_chunk._cache_size() - before == 1
    assert len(set(means)) == 5  # the traced value reached the likelihood


# ----------------------------------------------------------------------------- observables
def test_observables_are_recorded_per_draw_by_every_sampler(linreg):
    m, data = linreg
    t = st.Target.from_functions(m.log_prior, m.log_likelihood, data, m.init, observables=_observed)
    assert t.observable_names == ("mse", "sq_norm", "w0")  # sorted, as pytrees order dicts
    key = jax.random.key(4)
    runs = [
        st.sample_nuts(t, [0.5, 1.0], num_chains=2, num_warmup=100, num_samples=50, key=key,
                       progress=False),
        st.sample_sgld(t, [1.0], step_size=1e-3, num_chains=2, num_steps=150, num_burnin=50,
                       batch_size=20, key=key, progress=False),
    ]
    for r in runs:
        assert r.observable_names == ["mse", "sq_norm", "w0"]
        w = r["w"].values  # (beta, chain, draw, 2)
        recomputed = jax.vmap(lambda v: _observed({"w": v}, data))(jnp.asarray(w.reshape(-1, 2)))
        for name in r.observable_names:
            np.testing.assert_allclose(r[name].values.reshape(-1), np.asarray(recomputed[name]),
                                       rtol=1e-5, atol=1e-6)
    chi = st.susceptibility(runs[0], "w0", "sq_norm")  # by name
    assert chi["value"].shape == (2,) and np.all(np.isfinite(chi["value"]))


def test_observables_must_be_named_scalars(linreg):
    m, data = linreg
    bad = [lambda p, d: {"nll": p["w"][0]}, lambda p, d: {"v": p["w"]}, lambda p, d: p["w"]]
    for fn, match in zip(bad, ("collides", "scalar", "dict")):
        with pytest.raises(st.LikelihoodError, match=match):
            st.Target.from_functions(m.log_prior, m.log_likelihood, data, m.init, observables=fn)


# ----------------------------------------------------------------------------- runs without β
def test_a_run_without_beta_round_trips(linreg, tmp_path):
    m, data = linreg
    t = st.Target.from_functions(m.log_prior, m.log_likelihood, data, m.init, observables=_observed)
    opts = st.RunOptions(num_chains=3, num_warmup=20, num_samples=30, progress=False)
    s = run(MALAConfig(20, 1e-3, 0.574, True), t, None, opts, key=jax.random.key(5), sampler="mala")
    assert not s.has_beta and s.nll.dims == ("chain", "draw") and s["w"].dims[:2] == ("chain", "draw")
    assert "no beta axis" in repr(s)
    back = st.load(s.save(tmp_path / "traj.nc"))
    assert not back.has_beta
    for name in ("nll", "w", "w0", "healthy"):
        np.testing.assert_array_equal(back[name].values, s[name].values)
    idata = back.to_arviz()
    assert set(idata["posterior"].data_vars) >= {"w", "nll", "w0"}
    assert len(back.summary()) == 1
    with pytest.raises(st.InvalidArgumentError, match="no β axis"):
        st.free_energy(back)


# ----------------------------------------------------------------------------- options
def test_run_options_and_keywords(linreg):
    m, data = linreg
    t = st.Target(m, data)
    key = jax.random.key(6)
    opts = st.RunOptions(num_chains=2, num_warmup=30, num_samples=20, progress=False)
    a = st.sample_nuts(t, [1.0], key=key, options=opts)
    b = st.sample_nuts(t, [1.0], key=key, num_chains=2, num_warmup=30, num_samples=20, progress=False)
    np.testing.assert_array_equal(a.nll.values, b.nll.values)
    c = st.sample_nuts(t, [1.0], key=key, options=opts, num_samples=10)  # keywords win
    assert c.num_draws == 10
    with pytest.raises(st.InvalidArgumentError, match="num_chains"):
        st.sample_nuts(t, [1.0], key=key, num_warmup=10, num_samples=10)
    with pytest.raises(st.InvalidArgumentError, match="directory path"):
        st.sample_nuts(t, [1.0], key=key, options=opts.replace(checkpoint=123))
    with pytest.raises(st.InvalidArgumentError, match="jax devices"):
        st.sample_nuts(t, [1.0], key=key, options=opts.replace(devices=["cpu"]))
    with pytest.raises(st.InvalidArgumentError, match="RunOptions"):
        st.sample_nuts(t, [1.0], key=key, options={"num_chains": 2})


# ----------------------------------------------------------------------------- resumable runs
def _assert_same_samples(a, b):
    assert set(a.ds.data_vars) == set(b.ds.data_vars)
    for name in a.ds.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


@pytest.mark.parametrize("sampler", ["nuts", "sgld"])
def test_a_run_stopped_and_resumed_gives_the_uninterrupted_numbers(linreg, sampler):
    m, data = linreg
    t = st.Target.from_functions(m.log_prior, m.log_likelihood, data, m.init, observables=_observed)
    key = jax.random.key(7)
    opts = st.RunOptions(num_chains=2, num_warmup=40, num_samples=60, progress=False, chunk_size=15)
    if sampler == "nuts":
        go = lambda o: st.sample_nuts(t, [0.5, 1.0], key=key, options=o)
    else:
        go = lambda o: st.sample_sgld(t, [0.5, 1.0], step_size=1e-3, batch_size=10, key=key,
                                      options=o, preconditioner="rmsprop")
    whole = go(opts)
    part = go(opts.replace(max_chunks=4))  # 60 ticks: warm-up and 20 draws
    assert part.ds.attrs["complete"] == 0 and part.num_draws == 20
    rest = go(opts.replace(resume=part.state))
    assert rest.ds.attrs["complete"] == 1
    _assert_same_samples(whole, rest)
    # a state resumed into another run is refused
    with pytest.raises(st.InvalidArgumentError, match="different run"):
        if sampler == "nuts":
            st.sample_nuts(t, [0.5, 1.0], key=jax.random.key(8), options=opts.replace(resume=part.state))
        else:
            go(opts.replace(resume=part.state, num_samples=61))


def test_the_lazy_package_exposes_every_public_name_and_submodule():
    import slt_thermo

    for name in slt_thermo.__all__ + list(slt_thermo._SUBMODULES):
        assert getattr(slt_thermo, name) is not None, name
    assert callable(slt_thermo.llc) and slt_thermo.thermo.rlct is slt_thermo.rlct
    with pytest.raises(AttributeError):
        slt_thermo.no_such_name
