"""Metrics between sample sets (REFERENCE §4.2): closed forms, tolerances from the estimators'
own standard errors (fixed seeds), blocking, inputs."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from scipy.stats import chi2

import slt_thermo as st
from slt_thermo import metrics

Z = 4.0  # tolerance in standard errors


def gauss_mmd2(ell, d, mu1, s1, mu2, s2):
    """REFERENCE §4.2: MMD² between N(μ1, s1²I_d) and N(μ2, s2²I_d), Gaussian kernel of length ℓ."""
    dmu2 = float(np.sum((np.asarray(mu1) - np.asarray(mu2)) ** 2))
    t = ell**2 + s1**2 + s2**2
    return ((ell**2 / (ell**2 + 2 * s1**2)) ** (d / 2) + (ell**2 / (ell**2 + 2 * s2**2)) ** (d / 2)
            - 2 * (ell**2 / t) ** (d / 2) * math.exp(-dmu2 / (2 * t)))


def abs_normal_mean(m, s):
    """E|N(m, s²)|."""
    return s * math.sqrt(2 / math.pi) * math.exp(-m * m / (2 * s * s)) + m * math.erf(m / (s * math.sqrt(2)))


def brute(x, y, kernel):
    """Unblocked float64 U-statistic MMD² (kernel on an (·, ·, d) difference array)."""
    kxx, kyy, kxy = (kernel(a[:, None] - b[None]) for a, b in ((x, x), (y, y), (x, y)))
    m, n = len(x), len(y)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.mean())


# ------------------------------------------------------------------------------ MMD
def test_mmd_closed_form_and_estimate():
    exact = 2 / 3 - (2 / 3) * math.exp(-1 / 6)
    assert gauss_mmd2(1.0, 2, [0, 0], 1, [1, 0], 1) == pytest.approx(exact, abs=1e-12)
    assert exact == pytest.approx(0.1023455167, abs=1e-10)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2)) + [1.0, 0.0]
    r = metrics.mmd2_u(x, y, lengthscale=1.0)
    assert isinstance(r, metrics.TwoSampleResult) and math.isnan(r.p_value) and r.lengthscale == 1.0
    assert 0 < r.stderr < 0.02
    assert abs(r.value - exact) < Z * r.stderr
    assert float(r) == r.value


def test_mmd_stderr_matches_replicates():
    """The Hoeffding standard error agrees with the spread over independent replicates."""
    vals, ses = [], []
    for seed in range(12):
        rng = np.random.default_rng(10 + seed)
        r = metrics.mmd2_u(rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + [1.0, 0.0], lengthscale=1.0)
        vals.append(r.value)
        ses.append(r.stderr)
    sd = np.std(vals, ddof=1)
    # 11(sd/σ)² is χ²₁₁ for normal replicates: accept its central 99.9%
    lo, hi = np.sqrt(chi2.ppf([0.0005, 0.9995], len(vals) - 1) / (len(vals) - 1))
    assert lo < sd / np.mean(ses) < hi
    exact = gauss_mmd2(1.0, 2, [0, 0], 1, [1, 0], 1)
    assert abs(np.mean(vals) - exact) < Z * sd / math.sqrt(len(vals))


def test_mmd_null_and_permutation_p_values():
    vals = []
    for seed in range(6):  # one distribution twice: the unbiased MMD² averages to 0
        rng = np.random.default_rng(100 + seed)
        vals.append(metrics.mmd2_u(rng.normal(size=(300, 2)), rng.normal(size=(300, 2)), lengthscale=1.0).value)
    assert abs(np.mean(vals)) < Z * np.std(vals, ddof=1) / math.sqrt(len(vals))
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(300, 2)), rng.normal(size=(300, 2))
    same = metrics.mmd2_u(x, y, num_permutations=99, key=jax.random.key(0))
    assert same.p_value > 0.01
    assert same.lengthscale == pytest.approx(metrics.median_distance(np.concatenate([x, y])))
    far = metrics.mmd2_u(x, y + [1.0, 0.0], num_permutations=99, key=jax.random.key(0))
    assert far.p_value == pytest.approx(1 / 100)
    # the observed statistic does not depend on the permutations that ride along
    assert far.value == pytest.approx(metrics.mmd2_u(x, y + [1.0, 0.0], lengthscale=far.lengthscale).value,
                                      rel=1e-5)


# ------------------------------------------------------------------------------ energy distance
def test_energy_distance_closed_form():
    exact = 2 * abs_normal_mean(1.0, math.sqrt(2)) - 4 / math.sqrt(math.pi)
    assert exact == pytest.approx(0.5418065793, abs=1e-9)
    rng = np.random.default_rng(2)
    r = metrics.energy_distance(rng.normal(size=2000), rng.normal(size=2000) + 1)
    assert math.isnan(r.lengthscale) and 0 < r.stderr < 0.05
    assert abs(r.value - exact) < Z * r.stderr


# ------------------------------------------------------------------------------ Wasserstein
def test_sliced_w2_gaussians():
    vals = []
    for seed in range(6):
        rng = np.random.default_rng(200 + seed)
        vals.append(metrics.sliced_w2(rng.normal(size=(1000, 2)), rng.normal(size=(1000, 2)) + [1.0, 0.0],
                                      key=jax.random.key(seed), num_projections=128))
    assert abs(np.mean(vals) - 0.5) < Z * np.std(vals, ddof=1) / math.sqrt(len(vals))


def test_w2_1d_gaussians_and_exact_cases():
    vals = []  # (the empirical W₂² is biased up by O(log log N/N) ≈ 0.01 here, well inside the error)
    for seed in range(12):
        rng = np.random.default_rng(300 + seed)
        vals.append(metrics.w2_1d(rng.normal(size=2000), 1 + 2 * rng.normal(size=2000)))
    assert abs(np.mean(vals) - 2.0) < Z * np.std(vals, ddof=1) / math.sqrt(len(vals))
    # equal sizes: the mean squared difference of sorted samples
    x, y = np.array([3.0, 0.0, 1.0]), np.array([2.0, 5.0, -1.0])
    assert metrics.w2_1d(x, y) == pytest.approx(((0 + 1) ** 2 + (1 - 2) ** 2 + (3 - 5) ** 2) / 3, rel=1e-6)
    # unequal sizes: exact on the merged quantile grid; {0, 1} vs {0, 0.5, 1}:
    # F⁻¹ = 0 on (0, ½], 1 on (½, 1]; G⁻¹ = 0, ½, 1 on thirds -> (1/6)(½)² + (1/6)(½)² = 1/12
    assert metrics.w2_1d([0.0, 1.0], [0.0, 0.5, 1.0]) == pytest.approx(1 / 12, rel=1e-6)
    # a translation by c gives exactly c² and projections of equal sets give 0
    assert metrics.w2_1d(x, x + 0.5) == pytest.approx(0.25, rel=1e-5)
    pts = np.random.default_rng(0).normal(size=(50, 3))
    assert metrics.sliced_w2(pts, pts[::-1], key=jax.random.key(0)) == pytest.approx(0.0, abs=1e-10)


# ------------------------------------------------------------------------------ KSD
def test_ksd_exact_values():
    assert metrics.ksd_imq(np.array([[1.0, 2.0]]), np.array([[-1.0, -2.0]])) == pytest.approx(7.0, rel=1e-6)
    assert metrics.ksd_imq(np.array([0.0, 1.0]), lambda v: -v) == pytest.approx(0.4848349571, abs=1e-6)
    # Λ = λI measures distances in units of √λ: with u = x/√λ and the score √λ·s of the rescaled
    # law, every term of k0 scales alike, k0_Λ(x, y) = k0_I(u, v)/λ
    x = np.random.default_rng(0).normal(size=(40, 2))
    lam = 4.0
    a = metrics.ksd_imq(x, lambda v: -v, preconditioner=np.full(2, lam))
    u = x / math.sqrt(lam)
    b = metrics.ksd_imq(u, -x * math.sqrt(lam))
    assert a == pytest.approx(b / lam, rel=1e-5)
    assert metrics.ksd_imq(x, -x, preconditioner="med") > 0


def test_ksd_separates_right_and_wrong_samples():
    rng = np.random.default_rng(4)
    n = 500
    good = metrics.ksd_imq(rng.normal(size=n), lambda v: -v)
    bad = metrics.ksd_imq(rng.normal(size=n) + 1, lambda v: -v)
    assert good < 10 / n  # E KSD²_V = E k0(x, x)/N = (1 + E x²)/N = 2/N for exact draws
    assert bad > 20 * good


def linreg_target(n=20):
    """w = {"a": (1,), "b": (2,)}, prior N(0, I), y_i ~ N(a, 1): b sees only its prior."""
    y = jnp.asarray(np.random.default_rng(5).normal(size=n) + 0.7)

    def log_prior(p):
        return -0.5 * (jnp.sum(p["a"] ** 2) + jnp.sum(p["b"] ** 2))

    def log_likelihood(p, data):
        return -0.5 * (data - p["a"][0]) ** 2 - 0.5 * math.log(2 * math.pi)

    init = {"a": jnp.zeros(1), "b": jnp.zeros(2)}
    return st.Target.from_functions(log_prior, log_likelihood, y, init), np.asarray(y)


def test_tempered_score_and_ksd_of_the_tempered_posterior():
    target, y = linreg_target()
    beta = 0.5
    score = metrics.tempered_score(target, beta)
    w = jnp.array([0.3, -1.0, 2.0])  # (a, b0, b1) in ravel_pytree order
    expected = [-0.3 + beta * np.sum(y - 0.3), 1.0, -2.0]
    np.testing.assert_allclose(np.asarray(score(w)), expected, rtol=1e-5)
    # exact draws of p^β: a ~ N(βΣy/(1+βn), 1/(1+βn)), b ~ N(0, I)
    prec = 1 + beta * len(y)
    rng = np.random.default_rng(6)
    draws = {"a": beta * y.sum() / prec + rng.normal(size=(400, 1)) / math.sqrt(prec), "b": rng.normal(size=(400, 2))}
    pts = metrics.as_points(draws)
    assert pts.shape == (400, 3)
    good = metrics.ksd_imq(draws, score, preconditioner="med")
    off = dict(draws, a=draws["a"] + 1 / math.sqrt(prec))  # a shifted by one posterior sd
    bad = metrics.ksd_imq(off, target, beta=beta, preconditioner="med")
    assert bad > 5 * good


# ------------------------------------------------------------------------------ blocking, inputs
def test_blocking_equals_the_unblocked_float64_sums():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(37, 3)), rng.normal(size=(23, 3)) + 0.3
    ref_mmd = brute(x, y, lambda u: np.exp(-np.sum(u**2, -1) / 2))
    ref_energy = brute(x, y, lambda u: -np.sqrt(np.sum(u**2, -1)))
    for block in (7, 1024):  # 7 does not divide 60 or 37
        assert metrics.mmd2_u(x, y, lengthscale=1.0, block_size=block).value == pytest.approx(ref_mmd, abs=1e-6)
        assert metrics.energy_distance(x, y, block_size=block).value == pytest.approx(ref_energy, abs=1e-5)
    # KSD against N(0, I): the V-statistic from the explicit Stein kernel matrix
    u = x[:, None] - x[None]
    q = 1 + np.sum(u**2, -1)
    s = -x
    k0 = (-3 * q**-2.5 * np.sum(u**2, -1) + q**-1.5 * (3 + np.sum(u * (s[:, None] - s[None]), -1))
          + q**-0.5 * (s @ s.T))
    for block in (5, 1024):
        assert metrics.ksd_imq(x, s, block_size=block) == pytest.approx(k0.mean(), abs=1e-6)
    # the matmul path (d > 16) agrees with the coordinate path and the brute force
    xw, yw = rng.normal(size=(30, 20)), rng.normal(size=(25, 20)) + 0.2
    ref = brute(xw, yw, lambda u: np.exp(-np.sum(u**2, -1) / (2 * 16.0)))
    assert metrics.mmd2_u(xw, yw, lengthscale=4.0, block_size=8).value == pytest.approx(ref, abs=1e-5)


def test_inputs_points_pytrees_and_samples():
    np.testing.assert_array_equal(metrics.as_points([1.0, 2.0]), [[1.0], [2.0]])
    tree = {"b": np.ones((5, 2, 2)), "a": np.zeros(5)}
    pts = metrics.as_points(tree)
    assert pts.shape == (5, 5) and np.all(pts[:, 0] == 0) and np.all(pts[:, 1:] == 1)  # "a" first
    # a Samples with one rung: healthy chains pooled, leaf order, unhealthy chains dropped
    w = np.arange(1 * 3 * 4 * 2, dtype=float).reshape(1, 3, 4, 2)
    ds = xr.Dataset({"nll": (("beta", "chain", "draw"), np.zeros((1, 3, 4))),
                     "healthy": (("beta", "chain"), np.array([[True, False, True]])),
                     "w": (("beta", "chain", "draw", "w_dim_0"), w)},
                    coords={"beta": [1.0]}, attrs={"n": 10, "param_names": "w"})
    with pytest.warns(UserWarning, match="unhealthy"):
        pts = metrics.as_points(st.Samples(ds))
    np.testing.assert_array_equal(pts, np.concatenate([w[0, 0], w[0, 2]]))
    two = xr.concat([ds, ds.assign_coords(beta=[0.5])], dim="beta")
    with pytest.raises(st.InvalidArgumentError, match="sel_beta"):
        metrics.as_points(st.Samples(two))


@pytest.mark.parametrize("call", [
    lambda: metrics.mmd2_u(np.zeros((5, 2)), np.zeros((5, 3))),          # mismatched d
    lambda: metrics.mmd2_u(np.zeros((0, 2)), np.zeros((5, 2))),          # empty
    lambda: metrics.mmd2_u(np.zeros((1, 2)), np.zeros((5, 2))),          # too few for a U-statistic
    lambda: metrics.energy_distance([0.0, np.nan], [1.0, 2.0]),           # non-finite
    lambda: metrics.sliced_w2(np.zeros((2, 2, 2)), np.zeros((2, 2)), key=jax.random.key(0)),  # ndim
    lambda: metrics.w2_1d(np.zeros((3, 2)), np.zeros((3, 2))),            # not 1-D
    lambda: metrics.sliced_w2(np.zeros((3, 2)), np.zeros((3, 2)), key=None),
    lambda: metrics.mmd2_u(np.zeros(5), np.ones(5), lengthscale=-1.0),
    lambda: metrics.mmd2_u(np.zeros(5), np.ones(5), num_permutations=10),  # no key
    lambda: metrics.ksd_imq(np.zeros((4, 2)), np.zeros((4, 3))),          # score shape
    lambda: metrics.ksd_imq(np.zeros((4, 2)), lambda v: v / 0.0),         # non-finite score
    lambda: metrics.ksd_imq(np.ones((4, 2)), -np.ones((4, 2)), preconditioner="bogus"),
    lambda: metrics.ksd_imq(np.ones((4, 2)), -np.ones((4, 2)), b=-1.5),
    lambda: metrics.ksd_imq(np.ones((4, 2)), -np.ones((4, 2)), block_size=0),
])
def test_bad_input_raises(call):
    with pytest.raises(st.InvalidArgumentError):
        call()


def test_lazy_submodule():
    assert st.metrics.mmd2_u is metrics.mmd2_u
