"""Thermodynamic integration: the REFERENCE §2.5 quadrature table and TI against exact evidence."""

import math

import jax
import numpy as np
import pytest

import slt_thermo as st
from slt_thermo import exact, models
from slt_thermo.thermo import ladder

C, D = 100.0, 2  # REFERENCE §2.5: Gaussian potential, c = nσ² = 100, d = 2


def gauss(b):
    t = exact.gaussian_thermo(D, 100, 1.0, np.asarray(b))
    return np.asarray(t.E), np.asarray(t.Var)


@pytest.mark.parametrize("name,betas,expected", [
    ("uniform K=20", np.linspace(0, 1, 21), (-8.269766, -3.319271, -5.794518, -3.711389)),
    ("(i/K)^5 K=20", ladder.power(20), (-5.418884, -3.968604, -4.693744, -4.613313)),
    ("(i/K)^5 K=100", ladder.power(100), (-4.762224, -4.474289, -4.618256, -4.615118)),
])
def test_reference_quadrature_table(name, betas, expected):
    E, V = gauss(betas)
    got = [-st.ti_free_energy(betas, E, V, method=m).value
           for m in ("left", "right", "trapezoid", "corrected_trapezoid")]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    exact_logz = -math.log(101)
    assert abs(got[3] - exact_logz) < abs(got[2] - exact_logz)  # the correction helps


def test_discretization_error_estimate_tracks_the_true_error():
    betas = ladder.power(20)
    E, V = gauss(betas)
    est = st.ti_free_energy(betas, E, V)
    true_err = abs(est.value - math.log(101))
    assert 0.5 * true_err < est.details["discretization_error"] < 2 * true_err


def test_ti_needs_beta_zero():
    with pytest.raises(st.InvalidArgumentError, match="betas"):
        st.ti_free_energy([0.1, 1.0], [1.0, 0.5], [1.0, 1.0])


@pytest.fixture(scope="module")
def linreg_ladder_run():
    m = models.linear_regression(d=2)
    data = m.simulate(jax.random.PRNGKey(7), 50)
    run = st.sample_nuts(st.Target(m, data), ladder.power(16), num_chains=4, num_warmup=300,
                         num_samples=600, key=jax.random.PRNGKey(8), progress=False)
    return m, data, run


def test_ti_matches_exact_log_evidence(linreg_ladder_run):
    """F(1) = −log evidence of the conjugate model, within 4 MC standard errors plus the
    reported discretization error — which must itself be smaller than the MC error."""
    m, data, run = linreg_ladder_run
    est = st.free_energy(run)
    truth = float(m.exact_thermo(data, 1.0).F)
    disc = est.details["discretization_error"]
    assert disc < est.stderr
    assert abs(est.value - truth) < 4 * est.stderr + disc, (est, truth)


def test_ti_curve_matches_exact_at_intermediate_beta(linreg_ladder_run):
    m, data, run = linreg_ladder_run
    curve = st.free_energy_curve(run)
    for b in run.betas[[8, 12]]:
        F, se = float(curve["F"].sel(beta=b)), float(curve["F_se"].sel(beta=b))
        assert abs(F - float(m.exact_thermo(data, b).F)) < 4 * se + 0.05 * se


def test_power_ladder_includes_zero_and_one():
    b = ladder.power(16)
    assert b.size == 17 and b[0] == 0 and b[-1] == 1 and np.all(np.diff(b) > 0)
    w = ladder.around_wbic(1000, num=5)
    np.testing.assert_allclose(w[2], 1 / math.log(1000))
    with pytest.raises(st.InvalidArgumentError, match="num"):
        ladder.power(0)


FIXTURES = {  # exact F, E, Var of REFERENCE §2.2: w² (λ = 1/2), w⁴ (λ = 1/4), normal crossing (m = 2)
    "w^2": lambda n, b: exact.monomial_thermo(1, None, n, b),
    "w^4": lambda n, b: exact.monomial_thermo(2, None, n, b),
    "w1^2 w2^2": exact.normal_crossing_thermo,
}


def _quad_error(fixture, n, betas, method):
    t = FIXTURES[fixture](n, np.asarray(betas))
    E, V = np.asarray(t.E), np.asarray(t.Var)
    return st.ti_free_energy(betas, E, V, method=method).value - float(FIXTURES[fixture](n, 1.0).F)


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
@pytest.mark.parametrize("n", [100, 10_000, 10_000_000])
def test_ti_ladder_with_log_rule_is_exact_at_every_n(fixture, n):
    """The n-aware ladder and the log-β rule stay within 1e-3 nats of the closed form up to
    n = 1e7, where the β-rule on a power ladder is off by tens of nats (the F-vs-log n fit
    needs F_n to O(0.01) at every n)."""
    err_log = _quad_error(fixture, n, ladder.ti(n, 24), "log_corrected_trapezoid")
    assert abs(err_log) < 1e-3, err_log
    if n == 10_000_000:
        assert abs(_quad_error(fixture, n, ladder.power(16), "corrected_trapezoid")) > 10


def test_log_rule_discretization_estimate_and_errors():
    n, betas = 10_000, ladder.ti(10_000, 12)  # coarse on purpose: a visible error to estimate
    t = FIXTURES["w^2"](n, betas)
    E, V = np.asarray(t.E), np.asarray(t.Var)
    est = st.ti_free_energy(betas, E, V, E_se=np.full_like(E, 0.1), method="log_corrected_trapezoid")
    true_err = abs(est.value - float(FIXTURES["w^2"](n, 1.0).F))
    assert true_err > 1e-4
    assert 0.2 * true_err < est.details["discretization_error"] < 5 * true_err
    assert np.isfinite(est.stderr) and est.stderr > 0
    # a constant shift of the energy (nL_n(w0)) is integrated exactly: F moves by β_max·c
    shifted = st.ti_free_energy(betas, E + 1e6, V, method="log_corrected_trapezoid").value
    np.testing.assert_allclose(shifted - est.value, 1e6, rtol=1e-12)


def test_ti_ladder_shape_and_errors():
    b = ladder.ti(1000, 8)
    assert b.size == 9 and b[0] == 0 and b[-1] == 1 and np.isclose(b[1], 1e-5)
    with pytest.raises(st.InvalidArgumentError, match="n"):
        ladder.ti(0)
    with pytest.raises(st.InvalidArgumentError, match="low"):
        ladder.ti(100, low=2.0)
