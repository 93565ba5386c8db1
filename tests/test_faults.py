"""Faults a user meets: chains that never moved, disagreeing chains. A number that is wrong must
say so (issue 24): an error bar that covers its error, or infinite, and a ConvergenceWarning."""

import math
import warnings

import jax
import numpy as np
import pytest

import slt_thermo as st
from slt_thermo import models
from slt_thermo.thermo.stats import mean_se


@pytest.fixture(scope="module")
def linreg():
    m = models.linear_regression(d=3)
    data = m.simulate(jax.random.PRNGKey(1), 300)
    return m, data, st.Target(m, data)


def test_stuck_nuts_ladder_free_energy_warns_with_an_infinite_error_bar(linreg):
    """NUTS without warm-up at a step size far too large: every proposal diverges, the chains never
    leave their start, and each rung's energy is a constant. Before issue 24 TI turned that into
    F = 603.7 ± 0.0 against an exact 291.7; now the error bar is infinite and a ConvergenceWarning
    names the stuck chains."""
    m, data, t = linreg
    betas = st.ladder.power(12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = st.sample_nuts(t, betas, num_chains=2, num_warmup=0, num_samples=50, step_size=1e3,
                             max_tree_depth=2, key=jax.random.PRNGKey(0), progress=False)
    with pytest.warns(st.ConvergenceWarning, match="never moved"):
        est = st.free_energy(run)
    assert est.stderr == math.inf, repr(est)
    assert abs(est.value - m.exact_thermo(data, 1.0).F) > 1.0  # wrong, and its error bar says so


def test_disagreeing_chains_widen_the_error_bar():
    """Two chains at different levels (R-hat ≫ 1): the within-chain ESS error alone would be tiny;
    the error bar is at least the chain means' spread, which covers the gap to the pooled truth."""
    rng = np.random.default_rng(0)
    x = np.stack([rng.normal(0.0, 1.0, 2000), rng.normal(5.0, 1.0, 2000)])
    mean, se, _ = mean_se(x)
    assert se >= np.std(x.mean(axis=1), ddof=1) / math.sqrt(2) - 1e-12 and se > 1.0
    well = rng.normal(0.0, 1.0, (4, 2000))  # mixed chains: the ESS error, unchanged
    _, se_well, ess = mean_se(well)
    assert se_well == pytest.approx(well.std(ddof=1) / math.sqrt(ess))


def test_every_sampler_run_ends_with_a_rung_check(linreg):
    """The stuck ladder warns already when the run ends (before any estimator), and the Samples
    carry the per-rung diagnostics; a healthy run carries them without a warning."""
    m, data, t = linreg
    with pytest.warns(st.ConvergenceWarning, match="run check: .*never moved"):
        run = st.sample_nuts(t, [0.5, 1.0], num_chains=2, num_warmup=0, num_samples=50, step_size=1e3,
                             max_tree_depth=2, key=jax.random.PRNGKey(0), progress=False)
    assert list(run.ds.attrs["rung_stuck"]) == [2, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("error", st.ConvergenceWarning)
        good = st.sample_nuts(t, [0.5, 1.0], num_chains=4, num_warmup=300, num_samples=300,
                              key=jax.random.PRNGKey(1), progress=False)
    assert (good.ds.attrs["rung_rhat"] < 1.05).all() and (good.ds.attrs["rung_ess"] >= 100).all()
    assert list(good.ds.attrs["rung_stuck"]) == [0, 0]


def test_llc_says_what_to_do_when_no_step_size_gives_a_run(linreg):
    """Every chain non-finite at the only step size tried: llc raises one error that names the step
    sizes tried and the remedies, not a bare 'only 0 healthy chains'."""
    m, data, t = linreg
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(st.SLTThermoError, match=r"no step size tried \(1e\+06\).*gamma"):
            st.llc(t, m.true_params, key=jax.random.PRNGKey(0), step_size=1e6, num_steps=200, num_burnin=50,
                   progress=False)
