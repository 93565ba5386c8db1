"""MBAR (REFERENCE §3.4): deterministic identities, the exact Gaussian fixture 2.2(c), a NUTS run."""

import math
import warnings

import numpy as np
import pytest
import xarray as xr
from scipy.optimize import brentq
from scipy.special import expit, logsumexp

import slt_thermo as st
from slt_thermo.thermo.mbar import LadderMBAR, MBARResult, mbar_ladder

D, C = 3, 100.0  # REFERENCE §2.2(c): φ = N(0, I_d), H = n|w|²/2, c = nσ² = 100
BETAS = np.array([0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0])


def gauss_F(b):
    return 0.5 * D * np.log1p(np.asarray(b) * C)  # −log Z(β)


def gauss_E(b):
    return 0.5 * D * C / (1.0 + np.asarray(b) * C)


def gauss_energies(rng, beta, size):
    """Exact draws of H = n|w|²/2 under p^β: w ~ N(0, σ²/(1 + βc) I), so H = c χ²_d / (2(1 + βc))."""
    return C / (2.0 * (1.0 + beta * C)) * rng.chisquare(D, size)


def gauss_samples(seed, chains=4, draws=500, betas=BETAS):
    rng = np.random.default_rng(seed)
    nll = np.stack([gauss_energies(rng, b, (chains, draws)) for b in betas])
    ds = xr.Dataset(
        {"nll": (("beta", "chain", "draw"), nll),
         "healthy": (("beta", "chain"), np.ones((len(betas), chains), bool))},
        coords={"beta": np.asarray(betas, float), "chain": np.arange(chains), "draw": np.arange(draws)},
        attrs={"n": 100},
    )
    return st.Samples(ds)


def gauss_u(seed, n_per=1000):
    rng = np.random.default_rng(seed)
    H = np.concatenate([gauss_energies(rng, b, n_per) for b in BETAS])
    return H, BETAS[:, None] * H[None, :], np.full(BETAS.size, n_per)


# ============================================================================ deterministic
def _toy(rng, N_k, betas):
    """Draws from N(0, 1/(1+β)) states with u_k = β_k x²/2 (any u works for the identities)."""
    x = np.concatenate([rng.normal(size=n) / math.sqrt(1 + b) for n, b in zip(N_k, betas)])
    return x, np.asarray(betas)[:, None] * x[None, :] ** 2 / 2


def test_weights_are_normalized_both_ways():
    rng = np.random.default_rng(0)
    N_k = np.array([40, 0, 60, 25])  # one unsampled state
    _, u = _toy(rng, N_k, [0.0, 0.7, 1.5, 4.0])
    r = st.mbar(u, N_k)
    assert isinstance(r, MBARResult) and r.converged
    W = np.exp(r.log_weights)
    assert W.shape == (N_k.sum(), 4)
    np.testing.assert_allclose(W.sum(axis=0), 1.0, atol=1e-9)
    np.testing.assert_allclose(W @ N_k, 1.0, atol=1e-12)
    assert r.f[0] == 0.0 and r.f_se[0] == 0.0
    # the covariance is symmetric PSD, and δ²(f_j − f_i) agrees between f_cov and Θ
    np.testing.assert_allclose(r.f_cov, r.f_cov.T)
    assert np.linalg.eigvalsh(r.f_cov).min() > -1e-12
    np.testing.assert_allclose(r.df_se[0], r.f_se, atol=1e-12)
    # free_energy at a sampled state's potential reproduces f̂ and its error
    f2, se2 = r.free_energy(u[2])
    assert abs(f2 - r.f[2]) < 1e-10 and abs(se2 - r.f_se[2]) < 1e-10


def test_single_sampled_state_is_exp():
    """One sampled state: f_j − f_i = −log mean_n exp(−(u_j − u_i)(x_n)) exactly (Zwanzig), and
    MBAR's asymptotic error is EXP's delta-method error."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=500)
    betas = np.array([0.0, 0.5, 1.0, 2.0])
    u = betas[:, None] * x[None, :] ** 2 / 2
    r = st.mbar(u, [500, 0, 0, 0])
    exp_f = -np.log(np.mean(np.exp(-(u - u[0])), axis=1))
    np.testing.assert_allclose(r.f, exp_f, atol=1e-12)
    e = np.exp(-(u - u[0]))
    np.testing.assert_allclose(r.f_se, np.sqrt(e.var(axis=1) / (500 * e.mean(axis=1) ** 2)), rtol=1e-8)
    # between two unsampled states: the ratio of their EXP estimates from the sampled state
    assert abs((r.f[3] - r.f[1]) - (logsumexp(-(u[1] - u[0])) - logsumexp(-(u[3] - u[0])))) < 1e-12


def test_two_states_is_bar():
    """Two sampled states: MBAR = BAR (Bennett's implicit equation, solved here with brentq)."""
    rng = np.random.default_rng(2)
    N_k = np.array([300, 200])
    _, u = _toy(rng, N_k, [0.2, 1.3])
    wF = (u[1] - u[0])[: N_k[0]]  # forward work on draws of state 0
    wR = (u[0] - u[1])[N_k[0]:]  # reverse work on draws of state 1
    M = math.log(N_k[0] / N_k[1])

    def bar(df):
        return expit(-(M + wF - df)).sum() - expit(-(-M + wR + df)).sum()

    df = brentq(bar, -50, 50, xtol=1e-14)
    r = st.mbar(u, N_k)
    assert abs(r.f[1] - df) < 1e-9


def test_expectation_at_sampled_and_new_states():
    rng = np.random.default_rng(3)
    N_k = np.array([200, 200])
    x, u = _toy(rng, N_k, [0.0, 1.0])
    r = st.mbar(u, N_k)
    W = np.exp(r.log_weights)
    m, se = r.expectation(x**2, u[1])
    assert abs(m - W[:, 1] @ x**2) < 1e-12 and se > 0
    # vectorized over states; A shared
    ms, ses = r.expectation(x**2, np.stack([u[1], 0.5 * x**2]))
    assert ms.shape == ses.shape == (2,) and abs(ms[0] - m) < 1e-12
    # a shift of A moves the mean and leaves the error (shift-invariant form)
    m2, se2 = r.expectation(x**2 + 7.0, u[1])
    assert abs(m2 - m - 7.0) < 1e-10 and abs(se2 - se) < 1e-10


@pytest.mark.parametrize("u_kn,N_k,match", [
    (np.zeros(5), [5], "u_kn"),                         # not 2-D
    (np.zeros((2, 5)), [2, 2], "sum"),                  # N_k does not sum to N
    (np.zeros((2, 5)), [5], "N_k"),                     # wrong length
    (np.zeros((2, 5)), [6, -1], "N_k"),                 # negative
    (np.zeros((2, 5)), [2.5, 2.5], "N_k"),              # not integers
    (np.array([[0, 1, np.nan], [0, 1, 2.0]]), [1, 2], "finite"),
    (np.array([[0, 1, np.inf], [0, 1, 2.0]]), [1, 2], "finite"),
    ([["a", "b"]], [2], "numeric"),
])
def test_bad_input_raises(u_kn, N_k, match):
    with pytest.raises(st.InvalidArgumentError, match=match):
        st.mbar(u_kn, N_k)


def test_bad_options_and_new_state_shapes_raise():
    r = st.mbar(np.zeros((1, 4)), [4])
    with pytest.raises(st.InvalidArgumentError, match="max_iter"):
        st.mbar(np.zeros((1, 4)), [4], max_iter=0)
    with pytest.raises(st.InvalidArgumentError, match="tol"):
        st.mbar(np.zeros((1, 4)), [4], tol=-1.0)
    with pytest.raises(st.InvalidArgumentError, match="u_n"):
        r.expectation(np.ones(4), np.ones(3))
    with pytest.raises(st.InvalidArgumentError, match="A_n"):
        r.expectation(np.ones(3), np.ones(4))
    with pytest.raises(st.InvalidArgumentError, match="finite"):
        r.free_energy(np.array([0.0, np.nan, 0.0, 0.0]))
    with pytest.raises(st.InvalidArgumentError, match="Samples"):
        mbar_ladder(np.zeros((2, 2, 5)))
    with pytest.raises(st.InvalidArgumentError, match="subsample"):
        mbar_ladder(gauss_samples(0, draws=10), subsample=0)


# ============================================================================ Gaussian fixture 2.2(c)
def test_gaussian_free_energies_match_exact():
    """f̂_k → (d/2) log(1 + β_k c) = −log Z(β_k) (f_0 = 0 at β = 0 with the normalized prior)."""
    _, u, N_k = gauss_u(10)
    r = st.mbar(u, N_k)
    assert r.converged
    z = (r.f[1:] - gauss_F(BETAS[1:])) / r.f_se[1:]
    assert np.all(np.abs(z) < 4), z
    assert np.all(r.f_se[1:] < 0.2)


def test_gaussian_errors_are_calibrated():
    """Over 40 independent data sets the z-scores of f̂(β_max) and of ⟨H⟩ at an unsampled β
    have sd ≈ 1: the D4 covariance and the expectation formula are the right size."""
    zf, ze = [], []
    for seed in range(40):
        H, u, N_k = gauss_u(100 + seed, n_per=150)
        r = st.mbar(u, N_k)
        zf.append((r.f[-1] - gauss_F(1.0)) / r.f_se[-1])
        m, se = r.expectation(H, 0.05 * H)
        ze.append((m - gauss_E(0.05)) / se)
    for z in (np.array(zf), np.array(ze)):
        assert abs(z.mean()) < 0.6 and 0.6 < z.std() < 1.5, (z.mean(), z.std())


def test_curve_on_gaussian_ladder():
    run = gauss_samples(20)
    curve = st.mbar_curve(run)
    b = curve["beta"].values
    assert b.size == BETAS.size + 4 * (BETAS.size - 1)
    assert curve["rung"].values.sum() == BETAS.size and curve.attrs["absolute"]
    E = curve["E"].values
    assert np.all(np.diff(E) < 0) and np.all(curve["Var"].values > 0)
    for name in ("E", "Var", "log_Z"):
        truth = {"E": gauss_E(b), "Var": 0.5 * D * C**2 / (1 + b * C) ** 2, "log_Z": -gauss_F(b)}[name]
        se = curve[f"{name}_se"].values
        ok = se > 0
        z = (curve[name].values[ok] - truth[ok]) / se[ok]
        assert np.all(np.abs(z) < 4), (name, z)
    assert curve["log_Z"].values[0] == 0.0 and curve["log_Z_se"].values[0] == 0.0
    # an unsampled β between rungs, on a chosen grid
    one = st.mbar_curve(run, betas=[0.05])
    assert not one["rung"].values[0]
    assert abs(float(one["E"][0]) - gauss_E(0.05)) < 4 * float(one["E_se"][0])


def test_beta_at_energy_recovers_known_beta():
    fit = mbar_ladder(gauss_samples(30))
    assert isinstance(fit, LadderMBAR) and fit.absolute
    beta_true = 0.05
    est = st.beta_at_energy(fit, gauss_E(beta_true))
    assert abs(est.beta - beta_true) < 4 * est.se and est.se < 0.1 * beta_true
    # the measured energy's error adds in quadrature, scaled by 1/Var
    e_se = 0.3
    est2 = st.beta_at_energy(fit, gauss_E(beta_true), e_se)
    V = fit.at([est.beta])["Var"][0]
    assert abs(est2.se**2 - est.se**2 - (e_se / V) ** 2) < 1e-9
    # vectorized; a curve Dataset (interpolated) agrees with the exact root
    many = st.beta_at_energy(fit, gauss_E(np.array([0.002, 0.05, 0.5])), [0.0, 0.0, 0.0])
    assert many.beta.shape == (3,)
    np.testing.assert_allclose(many.beta[1], est.beta, rtol=1e-9)
    curve = st.mbar_curve(fit, betas=np.geomspace(1e-4, 1.0, 200))
    via = st.beta_at_energy(curve, gauss_E(beta_true))
    assert abs(via.beta - est.beta) < 0.02 * est.se and abs(via.se - est.se) < 0.05 * est.se
    with pytest.raises(st.InvalidArgumentError, match="outside"):
        st.beta_at_energy(fit, 1e6)
    with pytest.raises(st.InvalidArgumentError, match="energy_se"):
        st.beta_at_energy(fit, 10.0, -1.0)


def test_ladder_without_zero_is_relative_and_unhealthy_chains_are_dropped():
    run = gauss_samples(40, betas=BETAS[1:])
    ds = run.ds.copy(deep=True)
    ds["nll"][2, 1, 5] = np.nan
    ds["healthy"][2, 1] = False
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        curve = st.mbar_curve(st.Samples(ds), betas=BETAS[1:])
    assert any("unhealthy" in str(x.message) for x in w)
    assert not curve.attrs["absolute"] and curve.attrs["log_Z_reference_beta"] == BETAS[1]
    rel = -(gauss_F(BETAS[1:]) - gauss_F(BETAS[1]))
    se = curve["log_Z_se"].values
    assert np.all(np.abs(curve["log_Z"].values - rel)[1:] < 4 * se[1:])


def test_subsampling_policy():
    """Correlated chains (an AR(1) energy) are thinned by their statistical inefficiency."""
    run = gauss_samples(50, draws=400)
    ds = run.ds.copy(deep=True)
    x = ds["nll"].values
    ds["nll"].values[:] = np.repeat(x[..., ::4], 4, axis=-1)  # each value 4 times: g ≈ 4
    fit = mbar_ladder(st.Samples(ds))
    assert np.all(fit.inefficiency > 2.5) and np.all(fit.stride == fit.inefficiency)
    assert fit.result.N_k.sum() < 0.5 * x.size
    full = mbar_ladder(st.Samples(ds), subsample=False)
    assert full.result.N_k.sum() == x.size
    assert mbar_ladder(st.Samples(ds), subsample=2).result.N_k.sum() == x.size // 2


# ============================================================================ a NUTS run
@pytest.mark.slow
def test_nuts_linear_regression_log_z_agrees_with_ti_and_exact():
    import jax

    from slt_thermo import models
    from slt_thermo.thermo import ladder

    m = models.linear_regression(d=2)
    data = m.simulate(jax.random.PRNGKey(7), 50)
    run = st.sample_nuts(st.Target(m, data), ladder.power(16), num_chains=4, num_warmup=300,
                         num_samples=600, key=jax.random.PRNGKey(8), progress=False)
    curve = st.mbar_curve(run)
    top = curve.sel(beta=1.0)
    logz, se = float(top["log_Z"]), float(top["log_Z_se"])
    truth = -float(m.exact_thermo(data, 1.0).F)
    assert abs(logz - truth) < 4 * se, (logz, se, truth)
    ti = st.free_energy(run)
    assert abs(logz + ti.value) < 4 * math.hypot(se, ti.stderr) + ti.details["discretization_error"]
    # E(β) at unsampled grid points against the closed form
    mid = curve.where(~curve["rung"], drop=True)
    b = mid["beta"].values[::7]
    E_true = np.asarray(m.exact_thermo(data, b).E)
    assert np.all(np.abs(mid["E"].values[::7] - E_true) < 4 * mid["E_se"].values[::7])
    assert np.all(np.diff(curve["E"].values) < 0)
