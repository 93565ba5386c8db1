"""Exact RLCTs: REFERENCE §1.0–§1.f tables, reproduced as exact Fractions."""

import itertools
from fractions import Fraction as Fr

import pytest

from slt_thermo import exact
from slt_thermo.errors import InvalidArgumentError, SLTThermoError
from slt_thermo.exact.networks import _dln_subset

# ---------------------------------------------------------------------------------------------
# types, regular models
# ---------------------------------------------------------------------------------------------


def test_rlct_is_a_namedtuple_of_fraction_and_int():
    r = exact.rlct_regular(3)
    assert r == exact.RLCT(Fr(3, 2), 1)
    assert type(r.lam) is Fr and type(r.m) is int
    assert r._fields == ("lam", "m")


@pytest.mark.parametrize("d", [0, 1, 2, 7, 10])
def test_rlct_regular(d):
    assert exact.rlct_regular(d) == (Fr(d, 2), 1)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", None, True])
def test_rlct_regular_rejects_bad_d(bad):
    with pytest.raises(InvalidArgumentError, match="d"):
        exact.rlct_regular(bad)


# ---------------------------------------------------------------------------------------------
# 1.b monomials
# ---------------------------------------------------------------------------------------------

TABLE_1B = [  # (k, h, lam, m): K = Π w_j^{2 k_j}, prior ∝ Π |w_j|^{h_j}
    ((1,), None, Fr(1, 2), 1),
    ((2,), None, Fr(1, 4), 1),
    ((1, 1), None, Fr(1, 2), 2),
    ((1, 2), None, Fr(1, 4), 1),
    ((2, 2), None, Fr(1, 4), 2),
    ((1, 1, 1), None, Fr(1, 2), 3),
    ((1, 1), (1, 0), Fr(1, 2), 1),
    ((1,), (1,), Fr(1), 1),
    ((1,), (2,), Fr(3, 2), 1),
    ((2,), (1,), Fr(1, 2), 1),
]


@pytest.mark.parametrize("k,h,lam,m", TABLE_1B)
def test_table_1b(k, h, lam, m):
    assert exact.rlct_monomial(k, h) == exact.RLCT(lam, m)


@pytest.mark.parametrize(
    "p,expected",
    [((0, 1), Fr(1, 2)), ((1, 1), Fr(1, 2)), ((0, 2), Fr(1, 4)), ((1, 2), Fr(1, 4)),
     ((2, 2), Fr(1, 4)), ((0, 3), Fr(1, 6))],
)
def test_devinterp_crosscheck(p, expected):
    # devinterp: f(x) = x w1^p1 w2^p2, flat prior, K ∝ w1^{2p1} w2^{2p2}, λ = 1/(2 max p)
    lam = exact.rlct_monomial(p).lam
    assert lam == expected == Fr(1, 2 * max(p))
    if p == (0, 3):
        assert abs(float(lam) - 0.166) < 1e-3  # stored as 0.166 in devinterp


def test_monomial_fractional_prior_exponent():
    assert exact.rlct_monomial([2, 1], [Fr(1, 2), 0]) == (Fr(3, 8), 1)
    assert exact.rlct_monomial([0, 3], [5, 2]) == (Fr(1, 2), 1)  # k_1 = 0: h_1 is irrelevant


@pytest.mark.parametrize(
    "k,h,match",
    [([], None, "k"), ([0, 0], None, "k"), ([1, -1], None, r"k\[1\]"), ([1.5], None, r"k\[0\]"),
     ("11", None, "k"), ([1, 1], [0], "h"), ([1], [-1], r"h\[0\]"), ([1], [0.5], r"h\[0\]")],
)
def test_monomial_rejects_bad_input(k, h, match):
    with pytest.raises(InvalidArgumentError, match=match):
        exact.rlct_monomial(k, h)


# ---------------------------------------------------------------------------------------------
# 1.0 sum and product rules
# ---------------------------------------------------------------------------------------------


def test_sum_rule_reference_example():
    # w1² + w2² w3²: 1/2 + 1/2 = 1, m = 1 + 2 − 1 = 2
    assert exact.rlct_sum(exact.rlct_monomial([1]), exact.rlct_monomial([1, 1])) == (Fr(1), 2)


def test_sum_rule_of_regular_blocks_is_regular():
    for a, b in itertools.product(range(4), repeat=2):
        assert exact.rlct_sum(exact.rlct_regular(a), exact.rlct_regular(b)) == exact.rlct_regular(
            a + b
        )


def test_product_rule_matches_monomials():
    # w1^{2a} · w2^{2b}: the product of two 1-D monomials is a 2-D monomial
    for a, b in itertools.product(range(1, 4), repeat=2):
        prod = exact.rlct_product(exact.rlct_monomial([a]), exact.rlct_monomial([b]))
        assert prod == exact.rlct_monomial([a, b])
    # three blocks, with a tie between two of them
    parts = [exact.rlct_monomial([1, 1]), exact.rlct_monomial([2]), exact.rlct_monomial([1])]
    assert exact.rlct_product(*parts) == (Fr(1, 4), 1)
    assert exact.rlct_product(parts[0], parts[2]) == exact.rlct_monomial([1, 1, 1])


def test_sum_and_product_accept_pairs_and_validate():
    assert exact.rlct_sum((Fr(1, 2), 1), (1, 1)) == (Fr(3, 2), 1)
    assert exact.rlct_product((Fr(1, 2), 2)) == (Fr(1, 2), 2)
    with pytest.raises(InvalidArgumentError):
        exact.rlct_sum()
    with pytest.raises(InvalidArgumentError):
        exact.rlct_product()
    with pytest.raises(InvalidArgumentError, match=r"parts\[1\]\.m"):
        exact.rlct_sum((Fr(1, 2), 1), (Fr(1, 2), 0))
    with pytest.raises(InvalidArgumentError, match=r"parts\[0\]\.lam"):
        exact.rlct_product((0.5, 1))
    with pytest.raises(InvalidArgumentError, match=r"parts\[0\]"):
        exact.rlct_sum(3)


# ---------------------------------------------------------------------------------------------
# 1.c reduced-rank regression
# ---------------------------------------------------------------------------------------------

TABLE_1C = [  # (M, N, H, r), lam, m, d/2
    ((1, 1, 1, 0), Fr(1, 2), 2, Fr(1)),
    ((2, 2, 1, 0), Fr(1), 2, Fr(2)),
    ((2, 2, 2, 0), Fr(3, 2), 1, Fr(4)),
    ((3, 3, 1, 0), Fr(3, 2), 2, Fr(3)),
    ((3, 3, 2, 0), Fr(5, 2), 1, Fr(6)),
    ((3, 3, 3, 0), Fr(7, 2), 2, Fr(9)),
    ((5, 5, 3, 0), Fr(13, 2), 2, Fr(15)),
    ((5, 5, 4, 0), Fr(8), 1, Fr(20)),
    ((4, 8, 3, 0), Fr(6), 1, Fr(18)),
    ((8, 4, 3, 0), Fr(6), 1, Fr(18)),
    ((3, 4, 8, 0), Fr(6), 1, Fr(28)),
    ((1, 1, 3, 0), Fr(1, 2), 1, Fr(3)),
    ((3, 3, 2, 1), Fr(7, 2), 2, Fr(6)),
    ((4, 4, 3, 1), Fr(6), 1, Fr(12)),
    ((4, 4, 3, 2), Fr(7), 2, Fr(12)),
    ((5, 3, 2, 1), Fr(9, 2), 1, Fr(8)),
    ((6, 6, 3, 3), Fr(27, 2), 1, Fr(18)),
    ((6, 6, 6, 3), Fr(17), 2, Fr(36)),
]


@pytest.mark.parametrize("args,lam,m,half_d", TABLE_1C)
def test_table_1c(args, lam, m, half_d):
    M, N, H, r = args
    assert exact.rlct_rrr(M, N, H, r) == exact.RLCT(lam, m)
    assert Fr(H * (M + N), 2) == half_d
    assert lam < half_d


def test_rrr_cases_are_exhaustive_and_exclusive():
    for M, N, H in itertools.product(range(1, 9), repeat=3):
        for r in range(min(M, N, H) + 1):
            case1 = N + r <= M + H and M + r <= N + H and H + r <= M + N
            others = [M + H < N + r, N + H < M + r, M + N < H + r]
            assert case1 + sum(others) == 1


def test_rrr_full_hidden_rank():
    # r = H: λ = H(M + N − H)/2 (suswei/RLCT)
    for M, N, H in itertools.product(range(1, 7), repeat=3):
        if H <= min(M, N):
            assert exact.rlct_rrr(M, N, H, H).lam == Fr(H * (M + N - H), 2)


def test_rrr_equals_dln_with_one_hidden_layer():
    # REFERENCE 1.c [NUM]: 1,808 cases, λ and m
    count = 0
    for M, N, H in itertools.product(range(1, 9), repeat=3):
        for r in range(min(M, N, H) + 1):
            assert exact.rlct_rrr(M, N, H, r) == exact.rlct_dln((M, H, N), r), (M, N, H, r)
            count += 1
    assert count == 1808


@pytest.mark.parametrize(
    "args,match",
    [((0, 1, 1, 0), "M"), ((1, 0, 1, 0), "N"), ((1, 1, -2, 0), "H"), ((1, 1, 1, -1), "r"),
     ((2, 3, 1, 2), "r"), ((2.5, 3, 1, 0), "M")],
)
def test_rrr_rejects_bad_input(args, match):
    with pytest.raises(InvalidArgumentError, match=match):
        exact.rlct_rrr(*args)


# ---------------------------------------------------------------------------------------------
# 1.d deep linear networks
# ---------------------------------------------------------------------------------------------

TABLE_1D = [  # widths, r, ell, lam, m, d/2
    ([1, 1, 1, 1], 0, 3, Fr(1, 2), 3, Fr(3, 2)),
    ([2, 2, 2, 2], 0, 3, Fr(3, 2), 3, Fr(6)),
    ([3, 3, 3, 3], 0, 3, Fr(3), 1, Fr(27, 2)),
    ([3, 3, 3, 3], 1, 3, Fr(4), 3, Fr(27, 2)),
    ([4, 4, 4, 4], 0, 3, Fr(11, 2), 3, Fr(24)),
    ([4, 4, 4, 4], 2, 3, Fr(15, 2), 3, Fr(24)),
    ([3, 2, 3, 2], 1, 3, Fr(5, 2), 1, Fr(9)),
    ([10, 20, 20, 10], 0, 3, Fr(50), 1, Fr(400)),
    ([6, 5, 4, 3, 2], 0, 2, Fr(3), 2, Fr(34)),
    ([5, 5, 5, 5, 5, 5], 0, 5, Fr(15, 2), 1, Fr(125, 2)),
]

# REFERENCE 1.d "Status of m": m = a(ℓ−a)+1 is [CODE]; assert it only where it is confirmed
# independently (the monomial row) or where ℓ < 3.
M_CONFIRMED = {(1, 1, 1, 1): "monomial w1²w2²w3²", (6, 5, 4, 3, 2): "ℓ = 2"}


@pytest.mark.parametrize("widths,r,ell,lam,m,half_d", TABLE_1D)
def test_table_1d(widths, r, ell, lam, m, half_d):
    got = exact.rlct_dln(widths, r)
    assert got.lam == lam
    assert len(_dln_subset([w - r for w in widths])) - 1 == ell
    assert Fr(sum(a * b for a, b in zip(widths, widths[1:])), 2) == half_d
    if tuple(widths) in M_CONFIRMED:
        assert got.m == m


@pytest.mark.parametrize("L", [2, 3, 4, 5])
def test_dln_width_one_is_monomial(L):
    # K = (w1 ··· wL)²: λ = 1/2, m = L
    assert exact.rlct_dln([1] * (L + 1), 0) == (Fr(1, 2), L) == exact.rlct_monomial([1] * L)


def test_dln_single_layer_is_regular():
    for M, N in itertools.product(range(1, 6), repeat=2):
        for r in range(min(M, N) + 1):
            assert exact.rlct_dln([M, N], r) == exact.rlct_regular(M * N)


def test_dln_is_symmetric_under_reversal():
    # the model W_L ··· W_1 and its transpose have the same K up to relabelling
    for widths in itertools.product(range(1, 5), repeat=4):
        for r in range(min(widths) + 1):
            assert exact.rlct_dln(widths, r) == exact.rlct_dln(widths[::-1], r)


@pytest.mark.parametrize(
    "widths,r,match",
    [([3], 0, "widths"), ([], 0, "widths"), ([2, 0, 2], 0, r"widths\[1\]"), ([2, 3], 3, "r"),
     ([2, 3], -1, "r"), (5, 0, "widths")],
)
def test_dln_rejects_bad_input(widths, r, match):
    with pytest.raises(InvalidArgumentError, match=match):
        exact.rlct_dln(widths, r)


# ---------------------------------------------------------------------------------------------
# 1.e tanh networks, 1.f Gaussian mixtures
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("H,lam,m", [(1, Fr(1, 2), 2), (2, Fr(2, 3), 1), (4, Fr(1), 2)])
def test_tanh_reference_values(H, lam, m):
    assert exact.rlct_tanh(H) == (lam, m)


def test_tanh_formula_and_growth():
    prev = Fr(0)
    for H in range(1, 50):
        r = exact.rlct_tanh(H)
        assert r.lam > prev and r.lam < Fr(2 * H, 2)  # increasing, below d/2 = H
        prev = r.lam
        assert r.m == (2 if H in {1, 4, 9, 16, 25, 36, 49} else 1)
    with pytest.raises(InvalidArgumentError, match="H"):
        exact.rlct_tanh(0)


def test_tanh_one_unit_is_the_monomial_a2b2():
    assert exact.rlct_tanh(1) == exact.rlct_monomial([1, 1])


def test_gaussian_mixture_case1():
    assert exact.rlct_gaussian_mixture() == exact.rlct_gaussian_mixture(1) == (Fr(1, 2), 2)
    # K ~ a² b² / 2 near the origin: the monomial of table 1.b
    assert exact.rlct_gaussian_mixture(1) == exact.rlct_monomial([1, 1])


def test_gaussian_mixture_bad_case():
    for bad in (0, 3, "1", True):
        with pytest.raises(InvalidArgumentError, match="case"):
            exact.rlct_gaussian_mixture(bad)


def test_public_surface():
    assert sorted(exact.__all__) == sorted([
        "RLCT", "DegenerateError", "rlct_regular", "rlct_monomial", "rlct_sum", "rlct_product",
        "rlct_newton", "rlct_rrr", "rlct_dln", "rlct_tanh", "rlct_gaussian_mixture", "Thermo",
        "monomial_thermo", "normal_crossing_thermo", "gaussian_thermo",
        "linear_regression_thermo", "linear_regression_wbic"])
    assert all(getattr(exact, name).__doc__ for name in exact.__all__)


def test_exact_modules_do_not_import_jax():
    # the exact subpackage is pure numpy/scipy/sympy/mpmath (the parent package may use JAX)
    import ast
    import pathlib

    files = sorted(pathlib.Path(exact.__file__).parent.glob("*.py"))
    assert len(files) >= 5
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] in {"jax", "jaxlib", "numpyro"} for n in names), path


def test_errors_share_the_package_base_class():
    assert issubclass(exact.DegenerateError, SLTThermoError)
    assert issubclass(InvalidArgumentError, ValueError)
