"""The zoo: truths come from slt_thermo.exact, simulate/init/prior behave."""

from fractions import Fraction

import jax
import numpy as np
import pytest

import slt_thermo as st
from slt_thermo import exact, models


def test_truths_come_from_exact():
    assert models.monomial((1, 2)).rlct == Fraction(1, 4)
    assert models.monomial((1, 1)).multiplicity == 2
    assert models.monomial(1, h=1).rlct == Fraction(1)
    assert models.linear_regression(4).rlct == Fraction(2)
    rrr = models.reduced_rank(3, 3, 2, 1)
    assert (rrr.rlct, rrr.multiplicity) == tuple(exact.rlct_rrr(3, 3, 2, 1))
    dln = models.deep_linear((3, 2, 3, 2), 1)
    assert (dln.rlct, dln.multiplicity) == tuple(exact.rlct_dln((3, 2, 3, 2), 1))
    assert models.tanh_net(2).rlct == Fraction(2, 3)
    assert (models.gaussian_mixture().rlct, models.gaussian_mixture().multiplicity) == (Fraction(1, 2), 2)


@pytest.mark.parametrize("make", [
    lambda: models.monomial((1, 2), h=(0, 1)),
    lambda: models.linear_regression(3),
    lambda: models.reduced_rank(4, 3, 2, 1),
    lambda: models.deep_linear((2, 3, 3, 2), 1),
    lambda: models.tanh_net(3),
    lambda: models.gaussian_mixture(),
])
def test_protocol(make):
    m = make()
    data = m.simulate(jax.random.PRNGKey(0), 7)
    t = st.Target(m, data)  # validates shapes and finiteness at init
    assert t.log_likelihood(m.init(jax.random.PRNGKey(1))).shape == (7,)
    assert np.isfinite(float(m.log_prior(m.true_params))) or isinstance(m, models.Monomial)
    assert float(m.kl(m.true_params)) == pytest.approx(0.0, abs=1e-6)


def test_deep_linear_truth_has_rank_r():
    m = models.deep_linear((4, 5, 3, 4), 2)
    assert np.linalg.matrix_rank(np.asarray(m.product(m.true_params)), tol=1e-5) == 2


def test_bad_model_arguments():
    with pytest.raises(st.InvalidArgumentError, match="k"):
        models.monomial((0, 0))
    with pytest.raises(st.InvalidArgumentError, match="`r`"):
        models.reduced_rank(2, 2, 2, 3)
    with pytest.raises(st.InvalidArgumentError, match="widths"):
        models.deep_linear((3,), 0)
    with pytest.raises(st.InvalidArgumentError, match="sigma"):
        models.linear_regression(2, sigma=-1)
