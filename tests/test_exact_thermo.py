"""Exact thermodynamics of the REFERENCE §2.2 fixtures: tables, quadrature, derivatives, TI."""

import math

import mpmath
import numpy as np
import pytest
from scipy import integrate

from slt_thermo import exact
from slt_thermo.errors import InvalidArgumentError

LOGN = math.log(1000.0)

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def five_point(f, x, h):
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def check_derivatives(thermo_at, beta, rel=1e-8):
    """E = dF/dβ and Var = −dE/dβ by 5-point finite differences (error ~ h⁴ + ε/h)."""
    h = 1e-3 * beta
    t = thermo_at(beta)
    assert five_point(lambda b: thermo_at(b).F, beta, h) == pytest.approx(t.E, rel=rel)
    assert -five_point(lambda b: thermo_at(b).E, beta, h) == pytest.approx(t.Var, rel=rel)


def moments_to_thermo(Z, Z1, Z2):
    """(F, E, Var) from Z = ∫φe^{−βH}, Z1 = ∫φHe^{−βH}, Z2 = ∫φH²e^{−βH}."""
    E = Z1 / Z
    return -math.log(Z), E, Z2 / Z - E * E


def assert_thermo_close(got, ref, rel):
    for name, g, r in zip(("F", "E", "Var"), got, ref):
        assert g == pytest.approx(r, rel=rel), name


# ---------------------------------------------------------------------------------------------
# (a) 1-D monomial
# ---------------------------------------------------------------------------------------------

TABLE_2A = [  # k, beta, F, E[nK], βE = β²Var  (n = 1000, flat prior)
    (1, 1.0, 3.5746598771, 0.5, 0.5),
    (1, 1 / LOGN, 2.6083375102, 3.4538776395, 0.5),
    (2, 1.0, 1.8252106562, 0.25, 0.25),
    (2, 1 / LOGN, 1.3420494727, 1.7269388197, 0.25),
    (3, 1.0, 1.2263185806, 1 / 6, 1 / 6),
    (3, 1 / LOGN, 0.9042111250, 1.1512925465, 1 / 6),
]


@pytest.mark.parametrize("k,beta,F,E,bE", TABLE_2A)
def test_table_2a(k, beta, F, E, bE):
    t = exact.monomial_thermo(k, None, 1000, beta)
    assert round(t.F, 10) == F
    assert round(t.E, 10) == round(E, 10)
    assert round(beta * t.E, 10) == round(bE, 10)
    assert round(beta**2 * t.Var, 10) == round(bE, 10)


@pytest.mark.parametrize(
    "k,h,E,F", [(1, 1, 1.0, 6.9077552790), (2, 1, 0.5, None), (1, 2, 1.5, 10.0769500480)]
)
def test_table_2a_prior_exponent(k, h, E, F):
    t = exact.monomial_thermo(k, h, 1000, 1.0)
    assert round(t.E, 10) == E
    if F is not None:
        assert round(t.F, 10) == F
    # table 1.b [NUM]: E^{β=1}[nK] = λ = (h+1)/(2k) to 10 digits
    assert round(t.E, 10) == float(exact.rlct_monomial([k], [h]).lam)


def test_monomial_asymptotic_form():
    for k, h in [(1, 0), (2, 0), (3, 2), (1, 0.5)]:
        lam = (h + 1) / (2 * k)
        for a in (200.0, 1e4):
            t = exact.monomial_thermo(k, h, a, 1.0)
            assert t.F == pytest.approx(lam * math.log(a) - math.lgamma(1 + lam), rel=1e-13)
            assert t.E == pytest.approx(lam, rel=1e-12)
            assert t.Var == pytest.approx(lam, rel=1e-12)


def monomial_quadrature(k, h, n, beta):
    with mpmath.workdps(30):
        a, h = mpmath.mpf(n) * beta, mpmath.mpf(h or 0)
        scale = a ** (-mpmath.mpf(1) / (2 * k))
        pts = [0] + [p for p in (scale, 4 * scale, 16 * scale) if p < 1] + [1]

        def moment(j):
            return mpmath.quad(lambda w: (h + 1) * w**h * (n * w ** (2 * k)) ** j
                               * mpmath.exp(-a * w ** (2 * k)), pts)

        return tuple(float(v) for v in moments_to_thermo(*(moment(j) for j in range(3))))


@pytest.mark.parametrize(
    "k,h,n,beta",
    [(1, None, 1000, 1.0), (1, 0, 1000, 1 / LOGN), (2, 1, 50, 0.3), (3, 2, 1e5, 0.01),
     (1, 0.5, 20, 1e-4), (2, 0, 1.0, 1.0), (2, 0, 1.0, 1.5), (1, 3, 7, 0.1)],
)
def test_monomial_matches_quadrature(k, h, n, beta):
    assert_thermo_close(exact.monomial_thermo(k, h, n, beta), monomial_quadrature(k, h, n, beta),
                        rel=1e-8)


@pytest.mark.parametrize("k,h,n,beta", [(1, 0, 1000, 1.0), (2, 1, 50, 0.3), (3, 0.5, 10, 0.05),
                                        (1, 2, 1.0, 1.2)])
def test_monomial_derivatives(k, h, n, beta):
    check_derivatives(lambda b: exact.monomial_thermo(k, h, n, b), beta)


def test_monomial_beta_zero_and_arrays():
    t0 = exact.monomial_thermo(2, 1, 100, 0.0)  # s = 1/2
    assert t0.F == 0.0
    assert t0.E == pytest.approx(100 * (1 / 2) / (3 / 2), rel=1e-15)
    assert t0.Var == pytest.approx(100**2 * ((1 / 2) / (5 / 2) - (1 / 3) ** 2), rel=1e-14)
    betas = np.array([[0.0, 1e-6, 0.0099], [0.0101, 0.5, 2.0]])  # both sides of a = 1
    t = exact.monomial_thermo(2, 1, 100, betas)
    assert isinstance(t.F, np.ndarray) and t.F.shape == betas.shape
    for idx in np.ndindex(betas.shape):
        assert exact.monomial_thermo(2, 1, 100, float(betas[idx])) == tuple(x[idx] for x in t)
    assert np.all(np.diff(t.F.ravel()) > 0) and np.all(np.diff(t.E.ravel()) < 0)
    # F is accurate in relative terms near β = 0: F ≈ β E(0)
    assert exact.monomial_thermo(2, 1, 100, 1e-12).F == pytest.approx(1e-12 * t0.E, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# (b) 2-D normal crossing (m = 2)
# ---------------------------------------------------------------------------------------------

TABLE_2B = [  # beta, F, E, βE, β²Var  (n = 1000)
    (1.0, 2.0849896216, 0.3872765084, 0.3872765084, 0.3745699229),
    (1 / LOGN, 1.3643817009, 2.4583259721, 0.3558791348, 0.3351083110),
]


@pytest.mark.parametrize("beta,F,E,bE,b2V", TABLE_2B)
def test_table_2b(beta, F, E, bE, b2V):
    t = exact.normal_crossing_thermo(1000, beta)
    assert round(t.F, 10) == F
    assert round(t.E, 10) == E
    assert round(beta * t.E, 10) == bE
    assert round(beta**2 * t.Var, 10) == b2V


def test_normal_crossing_closed_form_asymptotics():
    # REFERENCE 2.2(b): up to e^{−a} terms, with s = log(βn) + γ_E + 2 log 2
    for n, beta in [(1000, 1.0), (1000, 1 / LOGN), (1e6, 0.5)]:
        s = math.log(beta * n) + 0.5772156649015329 + 2 * math.log(2)
        t = exact.normal_crossing_thermo(n, beta)
        assert t.F == pytest.approx(0.5 * math.log(beta * n) - math.log(s)
                                    + math.log(4 / math.sqrt(math.pi)), rel=1e-12)
        assert beta * t.E == pytest.approx(0.5 - 1 / s, rel=1e-12)
        assert beta**2 * t.Var == pytest.approx(0.5 - 1 / s - 1 / s**2, rel=1e-12)
    # the constant γ_E/2 + log 2 of ∫_0^x erf(u)/u du = log x + γ_E/2 + log 2 − O(e^{−x²})
    with mpmath.workdps(30):
        x = mpmath.mpf(12)
        G = mpmath.quad(lambda u: mpmath.erf(u) / u, [0, 1, x])
        assert abs(G - mpmath.log(x) - mpmath.mpf("0.98175501301071")) < 1e-13


def normal_crossing_quadrature(n, beta):
    a = n * beta

    def inner(x):
        scale = 1 / (math.sqrt(a) * x) if x else math.inf  # width of e^{-a x² y²} in y
        pts = [p for p in (scale, 4 * scale) if 0 < p < 1]

        def f(y):
            K = x * x * y * y
            return np.array([1.0, n * K, (n * K) ** 2]) * math.exp(-a * K)

        return integrate.quad_vec(f, 0, 1, epsabs=0, epsrel=1e-13, points=pts or None)[0]

    pts = [1 / math.sqrt(a)] if a > 1 else None
    Z, Z1, Z2 = integrate.quad_vec(inner, 0, 1, epsabs=0, epsrel=1e-12, points=pts)[0]
    return moments_to_thermo(Z, Z1, Z2)


@pytest.mark.parametrize("n,beta", [(1000, 1.0), (1000, 1 / LOGN), (10, 0.3), (1e5, 0.02),
                                    (3, 0.01)])
def test_normal_crossing_matches_2d_quadrature(n, beta):
    assert_thermo_close(exact.normal_crossing_thermo(n, beta), normal_crossing_quadrature(n, beta),
                        rel=1e-8)


@pytest.mark.parametrize("n,beta", [(1000, 1.0), (1000, 1 / LOGN), (10, 0.3)])
def test_normal_crossing_derivatives(n, beta):
    check_derivatives(lambda b: exact.normal_crossing_thermo(n, b), beta)


def test_normal_crossing_beta_zero_and_arrays():
    t0 = exact.normal_crossing_thermo(30, 0.0)
    assert t0.F == 0.0
    assert t0.E == pytest.approx(30 / 9, rel=1e-15)
    assert t0.Var == pytest.approx(900 * (1 / 25 - 1 / 81), rel=1e-14)
    t = exact.normal_crossing_thermo(30, [0.0, 0.1, 1.0])
    assert t.E.shape == (3,) and t.E[2] == exact.normal_crossing_thermo(30, 1.0).E


# ---------------------------------------------------------------------------------------------
# (c) Gaussian potential
# ---------------------------------------------------------------------------------------------


def test_table_2c():
    n, d = 1000, 3
    t = exact.gaussian_thermo(d, n, 1.0, 1.0)
    assert (round(t.F, 10), round(t.E, 10), round(t.Var, 10)) == (10.3631321690, 1.4985014985,
                                                                  1.4970044940)
    b = 1 / LOGN
    t = exact.gaussian_thermo(d, n, 1.0, b)
    assert round(t.F, 10) == 7.4729918267
    assert round(t.E, 10) == 10.2905483289  # also the 2.3 WBIC test value
    assert round(b * t.E, 10) == 1.4897094517
    assert round(b * b * t.Var, 10) == 1.4794895003


@pytest.mark.parametrize("n,sigma2,beta", [(1000, 1.0, 1.0), (7, 0.3, 0.2), (50, 2.0, 1 / LOGN)])
def test_gaussian_matches_quadrature(n, sigma2, beta):
    sd = math.sqrt(sigma2)

    def moment(j):
        f = (lambda w: math.exp(-0.5 * w * w / sigma2) / math.sqrt(2 * math.pi * sigma2)
             * (0.5 * n * w * w) ** j * math.exp(-0.5 * beta * n * w * w))
        return integrate.quad(f, -40 * sd, 40 * sd, points=[0], epsabs=0, epsrel=1e-13,
                              limit=200)[0]

    one_d = moments_to_thermo(*(moment(j) for j in range(3)))
    for d in (1, 2, 5):  # H and φ factorize over coordinates: F, E, Var add up
        assert_thermo_close(exact.gaussian_thermo(d, n, sigma2, beta),
                            [d * v for v in one_d], rel=1e-8)


@pytest.mark.parametrize("beta", [1.0, 1 / LOGN, 0.01])
def test_gaussian_derivatives(beta):
    check_derivatives(lambda b: exact.gaussian_thermo(3, 1000, 1.0, b), beta)


# ---------------------------------------------------------------------------------------------
# (d) Bayesian linear regression
# ---------------------------------------------------------------------------------------------

X_TOY, Y_TOY = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 2.0])


def test_table_2d_partial():
    t1 = exact.linear_regression_thermo(X_TOY, Y_TOY, 1.0, 1.0, 1.0)
    assert (round(t1.E, 10), round(t1.Var, 10)) == (3.4212600441, 0.4714074074)
    tw = exact.linear_regression_thermo(X_TOY, Y_TOY, 1.0, 1.0, 1 / math.log(3))
    assert round(1 / math.log(3), 10) == 0.9102392266
    assert round(tw.Var, 10) == 0.5654619784
    t5 = exact.linear_regression_thermo(X_TOY, Y_TOY, 1.0, 1.0, 0.5)
    assert (round(t5.E, 10), round(t5.Var, 10)) == (3.8779093496, 1.7675781250)


def test_wbic_toy_value():
    wbic = exact.linear_regression_wbic(X_TOY, Y_TOY, 1.0, 1.0)
    assert wbic == exact.linear_regression_thermo(X_TOY, Y_TOY, 1.0, 1.0, 1 / math.log(3)).E
    assert round(wbic, 10) == 3.4676035727  # computed here; REFERENCE leaves it blank
    # WBIC lies between E^1 and E^{1/2} since E^β decreases in β
    assert 3.4212600441 < wbic < 3.8779093496


def regression_quadrature(X, y, sigma2, alpha, beta):
    n = y.size

    def H(w):
        r = y - X * w
        return 0.5 * n * math.log(2 * math.pi * sigma2) + float(r @ r) / (2 * sigma2)

    def moment(j):
        f = (lambda w: math.sqrt(alpha / (2 * math.pi)) * math.exp(-0.5 * alpha * w * w)
             * H(w) ** j * math.exp(-beta * H(w)))
        return integrate.quad(f, -30, 30, points=[0, float(X @ y / (X @ X))], epsabs=0,
                              epsrel=1e-13, limit=200)[0]

    return moments_to_thermo(*(moment(j) for j in range(3)))


@pytest.mark.parametrize("beta", [1.0, 1 / math.log(3), 0.5, 0.05, 2.0])
def test_regression_matches_quadrature(beta):
    assert_thermo_close(exact.linear_regression_thermo(X_TOY, Y_TOY, 1.0, 1.0, beta),
                        regression_quadrature(X_TOY, Y_TOY, 1.0, 1.0, beta), rel=1e-8)


def test_regression_matches_quadrature_other_data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=8)
    y = 0.7 * X + rng.normal(scale=0.5, size=8)
    for beta in (1.0, 0.3):
        assert_thermo_close(exact.linear_regression_thermo(X, y, 0.25, 2.0, beta),
                            regression_quadrature(X, y, 0.25, 2.0, beta), rel=1e-8)


def test_regression_ti_identity():
    # −∫_0^1 E^β[nL_n] dβ = log Z(1), i.e. ∫_0^1 E dβ = F(1)
    F1 = exact.linear_regression_thermo(X_TOY, Y_TOY, 1.0, 1.0, 1.0).F
    ti, _ = integrate.quad(lambda b: exact.linear_regression_thermo(X_TOY, Y_TOY, 1.0, 1.0, b).E,
                           0, 1, epsabs=0, epsrel=1e-13)
    assert ti == pytest.approx(F1, rel=1e-11)
    assert round(F1, 10) == 4.5775073668
    for beta in (1.0, 1 / math.log(3), 0.5):
        check_derivatives(lambda b: exact.linear_regression_thermo(X_TOY, Y_TOY, 1.0, 1.0, b), beta)


def test_regression_reference_log_z_formula_multivariate():
    rng = np.random.default_rng(7)
    n, d, sigma2, alpha = 12, 3, 0.7, 1.3
    X = rng.normal(size=(n, d))
    y = X @ np.array([1.0, 0.0, -0.5]) + rng.normal(scale=0.8, size=n)
    for beta in (1.0, 0.37):
        A = alpha * np.eye(d) + beta / sigma2 * X.T @ X
        b = beta / sigma2 * X.T @ y
        Ainv = np.linalg.inv(A)
        e = y - X @ (Ainv @ b)
        logZ = (-0.5 * n * beta * math.log(2 * math.pi * sigma2)
                - 0.5 * np.linalg.slogdet(A / alpha)[1] - beta / (2 * sigma2) * y @ y
                + 0.5 * b @ Ainv @ b)
        E = 0.5 * n * math.log(2 * math.pi * sigma2) + (e @ e + np.trace(X @ Ainv @ X.T)) / (
            2 * sigma2)
        V = (4 * e @ X @ Ainv @ X.T @ e + 2 * np.trace((Ainv @ X.T @ X) @ (Ainv @ X.T @ X))) / (
            4 * sigma2**2)
        assert_thermo_close(exact.linear_regression_thermo(X, y, sigma2, alpha, beta),
                            (-logZ, E, V), rel=1e-12)
        check_derivatives(lambda bb: exact.linear_regression_thermo(X, y, sigma2, alpha, bb), beta)


def test_regression_beta_zero_and_arrays():
    t0 = exact.linear_regression_thermo(X_TOY, Y_TOY, 1.0, 1.0, 0.0)
    assert t0.F == 0.0
    t = exact.linear_regression_thermo(X_TOY, Y_TOY, 1.0, 1.0, np.array([0.0, 0.5, 1.0]))
    assert t.F.shape == (3,) and t.F[0] == 0.0 and t.E[1] == pytest.approx(3.8779093496, abs=1e-10)
    # X given as (n, 1) is the same as (n,)
    assert exact.linear_regression_thermo(X_TOY[:, None], Y_TOY, 1.0, 1.0, 0.5) == \
        exact.linear_regression_thermo(X_TOY, Y_TOY, 1.0, 1.0, 0.5)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: exact.monomial_thermo(0, None, 10, 1.0), "k"),
        (lambda: exact.monomial_thermo(1.5, None, 10, 1.0), "k"),
        (lambda: exact.monomial_thermo(1, -1, 10, 1.0), "h"),
        (lambda: exact.monomial_thermo(1, None, 0, 1.0), "n"),
        (lambda: exact.monomial_thermo(1, None, 10, -0.1), "beta"),
        (lambda: exact.monomial_thermo(1, None, 10, [1.0, np.nan]), "beta"),
        (lambda: exact.normal_crossing_thermo(-5, 1.0), "n"),
        (lambda: exact.gaussian_thermo(0, 10, 1.0, 1.0), "d"),
        (lambda: exact.gaussian_thermo(2, 10, 0.0, 1.0), "sigma2"),
        (lambda: exact.linear_regression_thermo(X_TOY, Y_TOY[:2], 1.0, 1.0, 1.0), "X"),
        (lambda: exact.linear_regression_thermo(X_TOY, Y_TOY, 1.0, -1.0, 1.0), "alpha"),
        (lambda: exact.linear_regression_thermo(X_TOY, Y_TOY, 0.0, 1.0, 1.0), "sigma2"),
        (lambda: exact.linear_regression_thermo(X_TOY, [], 1.0, 1.0, 1.0), "y"),
        (lambda: exact.linear_regression_thermo([1.0, np.inf, 2.0], Y_TOY, 1.0, 1.0, 1.0),
         "finite"),
        (lambda: exact.linear_regression_wbic([1.0], [1.0], 1.0, 1.0), "n >= 2"),
    ],
)
def test_thermo_rejects_bad_input(call, match):
    with pytest.raises(InvalidArgumentError, match=match):
        call()
