"""Newton-polyhedron RLCTs (REFERENCE §1.g): exact LP, multiplicity, non-degeneracy check."""

import itertools
import random
from fractions import Fraction as Fr

import numpy as np
import pytest
import sympy
from scipy import integrate, optimize, special

from slt_thermo import exact
from slt_thermo.errors import InvalidArgumentError
from slt_thermo.exact import newton
from slt_thermo.exact._lp import linprog_exact, rank_exact

w1, w2, w3, w4 = sympy.symbols("w1 w2 w3 w4")

TABLE_1G = [  # K, t*, lam, m
    (w1**2 + w2**2, Fr(1), Fr(1), 1),
    (w1**2 + w2**4, Fr(4, 3), Fr(3, 4), 1),
    (w1**4 + w2**4, Fr(2), Fr(1, 2), 1),
    (w1**2 * w2**2, Fr(2), Fr(1, 2), 2),
    (w1**2 + w2**2 * w3**2, Fr(1), Fr(1), 2),
    (w1**6 + w2**4 + w1**2 * w2**2, Fr(2), Fr(1, 2), 2),
    (w1**2 + w2**6 + w3**6, Fr(6, 5), Fr(5, 6), 1),
]


@pytest.mark.parametrize("K,t_star,lam,m", TABLE_1G)
def test_table_1g(K, t_star, lam, m):
    got = exact.rlct_newton(K)
    assert got == exact.RLCT(lam, m)
    assert type(got.lam) is Fr and got.lam == 1 / t_star


def test_table_1g_degenerate_row_is_refused():
    with pytest.raises(exact.DegenerateError, match="degenerate"):
        exact.rlct_newton((w1 - w2) ** 2)


def test_degenerate_row_true_lambda_from_exact_partition_function():
    # REFERENCE 1.g: Z(a) = √(π/a) erf(√a) − (1 − e^{−a})/a on [0,1]²; its slope
    # −d log Z/d log a tends to the true λ = 1/2, not the Newton value 1.
    def Z(a):
        return np.sqrt(np.pi / a) * special.erf(np.sqrt(a)) - (1 - np.exp(-a)) / a

    val, _ = integrate.dblquad(lambda x, y: np.exp(-10.0 * (x - y) ** 2), 0, 1, 0, 1,
                               epsabs=0, epsrel=1e-12)
    assert val == pytest.approx(Z(10.0), rel=1e-10)

    def slope(a):  # analytic derivative of log Z (the e^{-a} terms are kept)
        s = np.sqrt(a)
        dZ = (-0.5 * np.sqrt(np.pi) * a**-1.5 * special.erf(s) + np.exp(-a) / a
              + (1 - np.exp(-a)) / a**2 - np.exp(-a) / a)
        return -a * dZ / Z(a)

    # the slopes quoted by REFERENCE (0.4701, 0.4972, 0.49997) are those at a = 1e2, 1e4, 1e8
    for a, ref in [(1e2, 0.4701), (1e4, 0.4972), (1e8, 0.49997)]:
        assert round(slope(a), len(str(ref)) - 2) == ref


# ---------------------------------------------------------------------------------------------
# agreement with the sum/product rules and with rlct_monomial
# ---------------------------------------------------------------------------------------------


def test_newton_agrees_with_sum_rule_on_separable_examples():
    mono = exact.rlct_monomial
    cases = [
        (w1**2 + w2**2 * w3**2, [mono([1]), mono([1, 1])]),
        (w1**2 + w2**6 + w3**6, [mono([1]), mono([3]), mono([3])]),
        (w1**2 + w2**4, [mono([1]), mono([2])]),
        (w1**2 * w2**2 + w3**2 * w4**2, [mono([1, 1]), mono([1, 1])]),
        (w1**4 * w2**2 + w3**6, [mono([2, 1]), mono([3])]),
        (w1**2 + w2**2 + w3**2 + w4**2, [exact.rlct_regular(1)] * 4),
    ]
    for K, parts in cases:
        assert exact.rlct_newton(K) == exact.rlct_sum(*parts), K


def test_newton_agrees_with_product_rule_and_monomials():
    for k in itertools.product(range(4), repeat=3):
        if not any(k):
            continue
        K = w1 ** (2 * k[0]) * w2 ** (2 * k[1]) * w3 ** (2 * k[2])
        expected = exact.rlct_product(*[exact.rlct_monomial([kj]) for kj in k if kj])
        # variables fixed so that a missing variable is still a (free) coordinate
        got = exact.rlct_newton(K, variables=[w1, w2, w3])
        assert got == expected == exact.rlct_monomial(k), k


def test_newton_with_prior_exponents_matches_monomial_formula():
    rng = random.Random(0)
    for _ in range(40):
        d = rng.randint(1, 4)
        k = [rng.randint(0, 3) for _ in range(d)]
        if not any(k):
            k[0] = 1
        h = [rng.choice([0, 1, 2, 3, Fr(1, 2)]) for _ in range(d)]
        exps = [tuple(2 * kj for kj in k)]
        assert exact.rlct_newton(exps, h=h) == exact.rlct_monomial(k, h), (k, h)


def test_newton_prior_on_a_sum():
    # K = w1² + w2⁴ with prior ∝ |w1|: sum rule (1 + 1/4, m = 1)
    assert exact.rlct_newton(w1**2 + w2**4, h=[1, 0]) == (Fr(5, 4), 1)
    # prior ∝ w2² on K = w1² + w2²: 1/2 + 3/2
    assert exact.rlct_newton(w1**2 + w2**2, h=[0, 2]) == (Fr(2), 1)
    # ties: w1² w2² with h = (1, 1) gives λ = 1, m = 2
    assert exact.rlct_newton(w1**2 * w2**2, h=[1, 1]) == (Fr(1), 2)


def test_homogeneous_positive_definite_forms():
    # a positive definite form of degree 2q in d variables: λ = d/(2q), m = 1
    assert exact.rlct_newton(w1**2 + w1 * w2 + w2**2) == (Fr(1), 1)
    assert exact.rlct_newton(w1**4 + w1**3 * w2 / 3 + w1**2 * w2**2 + w2**4) == (Fr(1, 2), 1)
    assert exact.rlct_newton(w1**2 * w2**2 + w2**2 * w3**2 + w1**2 * w3**2) == (Fr(3, 4), 1)


def test_input_forms_are_equivalent():
    K = w1**2 + w2**4
    expected = exact.RLCT(Fr(3, 4), 1)
    assert exact.rlct_newton(K) == expected
    assert exact.rlct_newton(sympy.Poly(K, w1, w2)) == expected
    assert exact.rlct_newton([(2, 0), (0, 4)]) == expected
    assert exact.rlct_newton([[2, 0], [0, 4]], variables=[w1, w2]) == expected
    assert exact.rlct_newton(3 * w1**2 + sympy.Rational(1, 7) * w2**4) == expected
    assert exact.rlct_newton(w1**2 + 0.25 * w2**4) == expected
    # the variable order follows `variables` (and h follows it)
    assert exact.rlct_newton(K, variables=[w2, w1], h=[1, 0]) == (Fr(1, 2) + Fr(1, 2), 1)
    assert exact.rlct_newton(K, h=[1, 0]) == (Fr(1) + Fr(1, 4), 1)


def test_default_variable_order_is_natural():
    ws = sympy.symbols("w1:12")
    K = ws[10] ** 2 + ws[1] ** 4  # w11² + w2⁴
    # natural order: (w2, w11), so h = (1, 0) weights w2
    assert exact.rlct_newton(K, h=[1, 0]) == (Fr(1, 2) + Fr(1, 2), 1)


# ---------------------------------------------------------------------------------------------
# non-degeneracy
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "K",
    [
        (w1 - w2) ** 2,
        (w1 - w2**2) ** 2,
        (w1 + w2) ** 2 + w1**4,
        (w1 - w2) ** 2 * w3**2 + w3**4,
        (w1 * w2 - w3 * w4) ** 2 + w1**4,
        (w1**2 + w2**2 - w3**2) ** 2,
        (w1 * w3 + w2 * w4) ** 2,  # reduced-rank regression with M = N = 1, H = 2
    ],
)
def test_degenerate_polynomials_are_refused(K):
    with pytest.raises(exact.DegenerateError, match="singular point in the real torus"):
        exact.rlct_newton(K)


def test_degeneracy_message_names_a_verified_witness():
    with pytest.raises(exact.DegenerateError) as info:
        exact.rlct_newton((w1 - w2) ** 2)
    assert "{w1: 1, w2: 1}" in str(info.value)


def test_complex_but_not_real_torus_singularities_are_accepted():
    # (w1² + w1 w2 + w2²)² is singular only where w2/w1 is a primitive cube root of unity
    assert exact.rlct_newton((w1**2 + w1 * w2 + w2**2) ** 2) == (Fr(1, 2), 1)
    # a face polynomial with irrational but real critical directions that are not zeros
    assert exact.rlct_newton(w1**4 - w1**3 * w2 + w1**2 * w2**2 + w2**4) == (Fr(1, 2), 1)


def test_elimination_certificate_for_positive_dimensional_complex_singularities():
    # each block's face polynomial is singular on a complex curve of the torus with no real
    # point; the elimination polynomial w2² + w2 + 1 (w1 = 1) certifies it. Sum rule: 1/2 + 1/2.
    K = (w1**2 + w1 * w2 + w2**2) ** 2 + (w3**2 + w3 * w4 + w4**2) ** 2
    assert exact.rlct_newton(K) == (Fr(1), 1)


def test_undecided_check_refuses():
    # P = w1² + w1w2 + w2² + w3² is positive definite, so K = P² is in fact non-degenerate
    # (λ = 3/4); but its face polynomial is singular on a complex surface that no coordinate
    # elimination rules out and that has no real point to exhibit: the check cannot decide
    # and refuses rather than guess.
    with pytest.raises(exact.DegenerateError, match="could not certify"):
        exact.rlct_newton((w1**2 + w1 * w2 + w2**2 + w3**2) ** 2)


def test_undecided_is_reported_as_refusal(monkeypatch):
    def undecided(*args, **kwargs):
        raise newton._Undecided

    monkeypatch.setattr(newton, "_torus_singular_point", undecided)
    with pytest.raises(exact.DegenerateError, match="could not certify"):
        exact.rlct_newton(w1**2 + w1 * w2 + w2**2)
    # the sum-of-even-monomials path needs no decision procedure
    assert exact.rlct_newton(w1**2 + w2**4) == (Fr(3, 4), 1)


def test_compact_faces_enumeration():
    exps = [(2, 0), (1, 1), (0, 2), (4, 4)]
    faces = {frozenset(exps[i] for i in f) for f in newton._compact_faces(exps)}
    assert faces == {frozenset({(2, 0)}), frozenset({(0, 2)}),
                     frozenset({(2, 0), (1, 1), (0, 2)})}
    exps = [(2, 0, 0), (0, 2, 0), (0, 0, 2)]
    faces = {frozenset(exps[i] for i in f) for f in newton._compact_faces(exps)}
    assert len(faces) == 7  # the triangle, its 3 edges and 3 vertices


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "K,kwargs,match",
    [
        (sympy.sin(w1), {}, "polynomial"),
        (sympy.sin(w1) + w2**2, {}, "polynomial"),
        (w1**2 + 1 / w2, {}, "polynomial"),
        ([], {}, "empty"),
        (sympy.Integer(0), {}, "K"),
        (sympy.Integer(0) * w1, {"variables": [w1]}, "zero polynomial"),
        (w1**2 + 3, {}, r"K\(0\)"),
        (w1**2 + sympy.Symbol("a") * w2**2, {"variables": [w1, w2]}, "not among the variables"),
        (w1 * w2, {}, "non-negative"),
        (-(w1**2), {}, "non-negative"),
        ("w1**2", {}, "string"),
        (w1**2 + w2**2, {"h": [0]}, "h"),
        (w1**2 + w2**2, {"h": [0, -1]}, r"h\[1\]"),
        ([(2, 0), (0,)], {}, "same length"),
        ([(2, -1)], {}, r"K\[0\]\[1\]"),
        ([(2, 0)], {"variables": [w1]}, "variables"),
        (w1**2, {"variables": "w1"}, "variables"),
        (w1**2 + sympy.I * w2**2, {}, "real coefficients"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(K, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        exact.rlct_newton(K, **kwargs)


# ---------------------------------------------------------------------------------------------
# the exact LP solver
# ---------------------------------------------------------------------------------------------


def test_exact_lp_matches_scipy_on_random_problems():
    rng = np.random.default_rng(1)
    for _ in range(60):
        n, m_ub, m_eq = rng.integers(1, 6), rng.integers(0, 5), rng.integers(0, 3)
        c = rng.integers(-5, 6, n)
        A_ub, b_ub = rng.integers(-4, 5, (m_ub, n)), rng.integers(-3, 8, m_ub)
        A_eq, b_eq = rng.integers(-4, 5, (m_eq, n)), rng.integers(-3, 8, m_eq)
        # a bounding row keeps most problems bounded
        A_ub = np.vstack([A_ub, np.ones((1, n), int)])
        b_ub = np.append(b_ub, 10)
        ref = optimize.linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq if m_eq else None,
                               b_eq=b_eq if m_eq else None, bounds=(0, None), method="highs")
        got = linprog_exact(c.tolist(), A_ub.tolist(), b_ub.tolist(), A_eq.tolist(),
                            b_eq.tolist())
        if ref.status == 2:
            assert got.status == "infeasible"
            continue
        assert ref.status == 0 and got.status == "optimal"
        assert float(got.value) == pytest.approx(ref.fun, abs=1e-9)
        x = got.x
        assert all(xi >= 0 for xi in x)
        assert all(sum(Fr(int(a)) * xi for a, xi in zip(row, x)) <= b for row, b in zip(A_ub, b_ub))
        assert all(sum(Fr(int(a)) * xi for a, xi in zip(row, x)) == b for row, b in zip(A_eq, b_eq))


def test_exact_lp_unbounded_and_degenerate_rows():
    assert linprog_exact([-1, 0], A_ub=[[0, 1]], b_ub=[1]).status == "unbounded"
    res = linprog_exact([1, 1], A_eq=[[1, 1], [2, 2]], b_eq=[1, 2])  # redundant equality
    assert res.status == "optimal" and res.value == 1
    assert linprog_exact([1], A_eq=[[1]], b_eq=[-1]).status == "infeasible"
    assert rank_exact([[1, 2], [2, 4], [0, 1]]) == 2 and rank_exact([]) == 0
