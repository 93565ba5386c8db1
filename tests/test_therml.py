"""TherML's σS posterior (slt_thermo.therml): the Appendix-B toy and model exactly, the posterior
as a Target, and its thermodynamics from samples against quadrature on a 2-parameter version of
the same model."""

import math

import jax
import numpy as np
import pytest

import slt_thermo as st
from slt_thermo import therml
from slt_thermo.therml.model import NOISE_SHAPES, PARAM_SHAPES, tables
from slt_thermo.therml.quadrature import Grid

Z = 4.0


@pytest.fixture(scope="module")
def toy():
    return therml.toy(50, key=jax.random.PRNGKey(0))


def test_toy_is_exact(toy):
    assert abs(toy.mutual_information() - 0.5) < 1e-8
    assert toy.p_xy.shape == (30, 2) and abs(toy.p_xy.sum() - 1) < 1e-12 and (toy.p_xy > 0).all()
    assert abs(toy.p_xy[:, 1].sum() - 0.7) < 1e-12  # P(y = 1) = P(z = 1)
    assert toy.data["x"].shape == (50,) and toy.data["x"].max() < 30 and set(np.unique(toy.data["y"])) <= {0, 1}
    inf = toy.infinite_data()
    assert inf["x"].shape == (60,) and abs(inf["weight"].sum() - 50) < 1e-4
    # the data follow p(x, y): 20 000 draws, chi-square-like check on the label frequency
    big = therml.toy(20_000, key=jax.random.PRNGKey(1))
    f = big.data["y"].mean()
    assert abs(f - 0.7) < Z * math.sqrt(0.21 / 20_000)


def _naive(params, x, y):
    """R, D, C by explicit loops over examples and latent values (numpy float64)."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    g = np.arange(30) / 29
    R = D = C = 0.0
    for xn, yn in zip(x, y):
        enc = np.array([-(p["enc_w"][i] * g[xn] - p["enc_b"][i]) ** 2 for i in range(30)])
        e = np.exp(enc - enc.max())
        e /= e.sum()
        qz = np.exp(p["marginal"] - p["marginal"].max())
        qz /= qz.sum()
        for i in range(30):
            dec = np.array([-(p["dec_w"][i] * g[j] - p["dec_b"][i]) ** 2 for j in range(30)])
            log_qx = dec[xn] - dec.max() - math.log(np.exp(dec - dec.max()).sum())
            cls = np.array([-(p["cls_w"][c] * g[i] - p["cls_b"][c]) ** 2 for c in range(2)])
            log_qy = cls[yn] - cls.max() - math.log(np.exp(cls - cls.max()).sum())
            R += e[i] * (math.log(e[i]) - math.log(qz[i]))
            D -= e[i] * log_qx
            C -= e[i] * log_qy
    return R, D, C


def test_functionals_match_a_naive_loop_and_their_bounds(toy):
    m = therml.Model()
    x, y = toy.data["x"], toy.data["y"]
    counts_x = np.bincount(x, minlength=30) / x.size
    h_x = -sum(p * math.log(p) for p in counts_x if p > 0)
    h_y_given_x = 0.0
    for j in range(30):
        ys = y[x == j]
        for c in (0, 1):
            pc = (ys == c).mean() if ys.size else 0
            h_y_given_x -= ys.size / x.size * (pc * math.log(pc) if pc > 0 else 0)
    for seed in range(3):
        params = m.init(jax.random.PRNGKey(seed), scale=3.0)
        f = {k: float(v.sum()) for k, v in m.functionals(params, toy.data).items()}
        R, D, C = _naive(params, x, y)
        assert f["R"] == pytest.approx(R, rel=1e-4, abs=1e-3)
        assert f["D"] == pytest.approx(D, rel=1e-5) and f["C"] == pytest.approx(C, rel=1e-5)
        assert f["R"] >= 0 and f["D"] >= 0 and f["C"] >= 0
        # variational bounds: R + D ≥ −Σ log q(x_n) ≥ n·H_emp(X); C ≥ n·H_emp(Y|X)
        assert f["R"] + f["D"] >= x.size * h_x - 1e-3 and f["C"] >= x.size * h_y_given_x - 1e-3
    t = tables(params)
    for k, axis in (("log_e", 1), ("log_dec", 1), ("log_cls", 1)):
        np.testing.assert_allclose(np.exp(t[k]).sum(axis=axis), 1.0, rtol=1e-5)
    assert m.num_params == sum(math.prod(s) for s in PARAM_SHAPES.values()) == 154


def test_encoder_noise_is_information_dropout_averaged_over_fixed_draws(toy):
    """184 parameters; α = 0 gives the noiseless model; D and C are the averages over the noise
    draws of the noiseless formulas with the activations scaled by exp(α_x ξ); R is the KL of the
    averaged encoder, below the average of the per-draw KLs (convexity); the average converges as
    the number of draws grows."""
    m = therml.Model(encoder_noise=True, noise_draws=8)
    assert m.num_params == 184 and m.noise.shape == (8, 30)
    x, y = toy.data["x"], toy.data["y"]
    plain = therml.Model().init(jax.random.PRNGKey(4), scale=2.0)
    f0 = {k: float(v.sum()) for k, v in therml.Model().functionals(plain, toy.data).items()}
    f = {k: float(v.sum()) for k, v in m.functionals({**plain, "enc_alpha": np.zeros(30)}, toy.data).items()}
    for k in f0:
        assert f[k] == pytest.approx(f0[k], rel=1e-5), k
    alpha = 0.5 * np.asarray(jax.random.normal(jax.random.PRNGKey(5), (30,)))
    f = {k: float(v.sum()) for k, v in m.functionals({**plain, "enc_alpha": alpha}, toy.data).items()}
    g = np.arange(30) / 29
    xi = np.asarray(m.noise, np.float64)
    D = C = 0.0
    e_bar = np.zeros((x.size, 30))
    kls = 0.0
    qz = np.exp(np.asarray(plain["marginal"], np.float64))
    qz /= qz.sum()
    for s in range(xi.shape[0]):  # per noise draw: the noiseless formulas with scaled activations
        draw = {k: np.asarray(v, np.float64) for k, v in plain.items()}
        for n, xn in enumerate(x):
            enc = -(draw["enc_w"] * g[xn] * np.exp(alpha[xn] * xi[s]) - draw["enc_b"]) ** 2
            log_e = enc - enc.max() - math.log(np.exp(enc - enc.max()).sum())
            e = np.exp(log_e)
            e_bar[n] += e / xi.shape[0]
            kls += np.sum(e * (log_e - np.log(qz))) / xi.shape[0]
            D += e @ -np.asarray(tables(plain)["log_dec"], np.float64)[:, xn] / xi.shape[0]
            C += e @ -np.asarray(tables(plain)["log_cls"], np.float64)[:, y[n]] / xi.shape[0]
    R = float(np.sum(np.where(e_bar > 0, e_bar * np.log(np.where(e_bar > 0, e_bar, 1) / qz), 0.0)))
    assert f["D"] == pytest.approx(D, rel=1e-4) and f["C"] == pytest.approx(C, rel=1e-4)
    assert f["R"] == pytest.approx(R, rel=1e-4, abs=1e-3) and R < kls
    assert abs(f["D"] - f0["D"]) > 1e-2  # the noise changes the functionals
    # Monte Carlo over the noise: two seeds of 512 draws agree, 8 draws are further off
    big = [{k: float(v.sum()) for k, v in therml.Model(encoder_noise=True, noise_draws=512, noise_seed=s)
            .functionals({**plain, "enc_alpha": alpha}, toy.data).items()} for s in (1, 2)]
    assert abs(big[0]["D"] - big[1]["D"]) < abs(big[0]["D"] - f["D"]) + 0.05 * abs(f["D"] - f0["D"])
    target = therml.posterior(m, toy.data)
    params = target.init(jax.random.PRNGKey(6))
    assert set(params) == set(NOISE_SHAPES) and np.isfinite(float(target.nll(params)))
    g_ = jax.grad(lambda p: target.nll(p))(params)
    assert np.all(np.isfinite(np.asarray(g_["enc_alpha"]))) and float(np.abs(g_["enc_alpha"]).sum()) > 0
    c = therml.channels(params, toy.p_xy, m.noise)
    np.testing.assert_allclose(c["e_z_given_x"].sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(st.InvalidArgumentError, match="noise"):
        tables(params)


def test_posterior_is_a_target_with_traced_multipliers_and_recorded_functionals(toy):
    target = therml.posterior(None, toy.data, delta=2.0, gamma=3.0, population=toy.p_xy)
    assert isinstance(target, st.Target) and target.n == 50
    assert target.observable_names == ("C", "C_pop", "D", "D_pop", "R", "R_pop")
    params = target.init(jax.random.PRNGKey(3))
    obs = {k: float(v) for k, v in target.observables(params).items()}
    assert float(target.nll(params)) == pytest.approx(obs["R"] + 2 * obs["D"] + 3 * obs["C"], rel=1e-5)
    other = target.with_hyper(delta=1.0)
    assert float(other.nll(params)) == pytest.approx(obs["R"] + obs["D"] + 3 * obs["C"], rel=1e-5)
    inf = therml.posterior(None, toy.infinite_data(), population=toy.p_xy)
    o = {k: float(v) for k, v in inf.observables(params).items()}
    assert o["R"] == pytest.approx(o["R_pop"], rel=1e-5) and o["C"] == pytest.approx(o["C_pop"], rel=1e-5)
    np.testing.assert_allclose(therml.betas([2.0, 0.5, 1.0]), [0.0, 0.5, 1.0, 2.0])


@pytest.mark.parametrize("call, match", [
    (lambda d: therml.betas([1.0, 0.0]), "sigmas"),
    (lambda d: therml.betas([-1.0]), "sigmas"),
    (lambda d: therml.posterior(None, d, delta=-1.0), "delta"),
    (lambda d: therml.posterior(None, d, gamma=float("nan")), "gamma"),
    (lambda d: therml.posterior(None, {"x": np.zeros(0, int), "y": np.zeros(0, int)}), "n = 0"),
    (lambda d: therml.posterior(None, {"x": d["x"], "y": d["y"][:3]}), "one length"),
    (lambda d: therml.posterior(None, {"x": d["x"] + 40, "y": d["y"]}), "0..29"),
    (lambda d: therml.posterior("model", d), "therml.Model"),
    (lambda d: therml.toy(0, key=jax.random.PRNGKey(0)), "n"),
    (lambda d: therml.Model(prior_scale=0.0), "prior_scale"),
    (lambda d: therml.Model(free=[0]), "base"),
    (lambda d: therml.Model(encoder_noise=True, noise_draws=0), "noise_draws"),
])
def test_bad_input_gives_clear_errors(toy, call, match):
    with pytest.raises(st.SLTThermoError, match=match):
        call(toy.data)


def test_sigma_zero_objectives_by_adam(toy):
    """The gallery's σ = 0 points: each objective lowers its own loss, the VAE's R + D stays above
    the bound n·H_emp(X), the autoencoder reaches a lower D than the VAE (no rate cost), the VIB
    a far lower C than the objectives without γ."""
    res = therml.optimize(None, toy.data, key=jax.random.PRNGKey(1), num_steps=1500)
    assert res.names == tuple(therml.OBJECTIVES) and res.loss.shape == (1500, len(res.names))
    assert np.all(res.loss[-1] < 0.7 * res.loss[0])
    i = {n: k for k, n in enumerate(res.names)}
    p = np.bincount(toy.data["x"], minlength=30) / toy.n
    n_h_x = -toy.n * sum(q * math.log(q) for q in p if q > 0)
    assert res.R[i["vae"]] + res.D[i["vae"]] >= n_h_x - 1e-3
    assert res.D[i["autoencoder"]] < res.D[i["vae"]]
    assert res.C[i["vib"]] < 0.2 * min(res.C[i["vae"]], res.C[i["autoencoder"]])
    with pytest.raises(st.InvalidArgumentError, match="unknown objective"):
        therml.optimize(None, toy.data, ["nope"], key=jax.random.PRNGKey(0))


@pytest.mark.slow  # CI budget (13–27 s each on 2 cores)
def test_panels_of_a_point(toy, tmp_path):
    params = therml.Model().init(jax.random.PRNGKey(2))
    c = therml.channels(params, toy.p_xy)
    for k in ("p_x", "g_x", "d_x", "q_z", "e_z", "e_z_y0", "e_z_y1"):
        assert c[k].shape == (30,) and abs(c[k].sum() - 1) < 1e-5, k
    for k in ("e_z_given_x", "q_x_given_z", "q_x_given_x"):
        np.testing.assert_allclose(c[k].sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(c["e_z"], 0.3 * c["e_z_y0"] + 0.7 * c["e_z_y1"], atol=1e-6)
    therml.panels(params, toy.p_xy, title="a random point", path=str(tmp_path / "p.png"))
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a σ > 0 point: the channels averaged over posterior draws (the full objective of the gallery)
    model = therml.Model(prior_scale=3.0)
    target = therml.posterior(model, toy.data, rho=0.9, delta=1.0, gamma=1000.0)
    run = st.sample_nuts(target, [2.0], num_chains=2, num_warmup=20, num_samples=10, max_tree_depth=4,
                         key=jax.random.PRNGKey(3), progress=False)
    pc = therml.posterior_channels(run, model, toy.p_xy, 2.0)
    np.testing.assert_allclose(pc["q_x_given_x"].sum(axis=1), 1.0, rtol=1e-5)
    draws = [therml.channels({k: run[k].values[0, c, d] for k in run.param_names}, toy.p_xy)["e_z"]
             for c in range(2) for d in range(10)]
    np.testing.assert_allclose(pc["e_z"], np.mean(draws, axis=0), rtol=1e-4, atol=1e-7)
    therml.panels(None, toy.p_xy, precomputed=pc, title="σ = 0.5", path=str(tmp_path / "q.png"))


# ------------------------------------------------------------------ against quadrature (2 free)
BETAS = np.concatenate([[0.0], np.geomspace(0.004, 1.0, 11)])
RUN = dict(num_chains=8, num_warmup=200, num_samples=300, progress=False)


@pytest.fixture(scope="module")
def small(toy):
    """Appendix B's model with all but two parameters frozen: a base point whose encoder uses two
    latents (z_0 for small x, z_29 for large x; the other 28 switched off) with distinct decoders, so
    that the free encoder bias b^e_0 moves the split and with it R, D and C; the free marginal logit
    π_0 moves R. (A classifier bias would make p* bimodal: −(w z − b)² has two good b; NUTS chains
    then stick to one mode each, R-hat 1.5, and the test fails, as it should.) NUTS over a 12-rung
    σ-ladder; the exact values on a quadrature grid."""
    base = {k: np.array(v) for k, v in therml.Model().init(jax.random.PRNGKey(1)).items()}
    base["enc_w"][:], base["enc_b"][:] = 0.0, 5.0  # logit −25: latent unused
    base["enc_w"][[0, 29]], base["enc_b"][[0, 29]] = 3.0, [0.0, 3.0]
    base["dec_w"][[0, 29]], base["dec_b"][[0, 29]] = 6.0, [1.5, 4.5]  # q(x|z) peaks at x = 1/4, 3/4
    order = sorted(PARAM_SHAPES)  # ravel_pytree's order of the dict's keys
    offset = {k: sum(math.prod(PARAM_SHAPES[j]) for j in order[:order.index(k)]) for k in order}
    model = therml.Model(prior_scale=3.0, free=[offset["enc_b"], offset["marginal"]], base=base)
    target = therml.posterior(model, toy.data)
    run = st.sample_nuts(target, BETAS, key=jax.random.PRNGKey(5), **RUN)
    grid = Grid(model, toy.data)
    return model, target, run, grid


def test_table_matches_quadrature(small):
    model, target, run, grid = small
    exact = grid.thermo(BETAS)
    tab = therml.table(run, target)
    for k in ("R", "D", "C", "H"):
        z = (tab[k].values - exact[k]) / tab[f"{k}_se"].values
        assert np.all(np.abs(z[1:]) < Z), (k, z)
    # TI: Monte Carlo error plus the ladder's discretization
    disc = st.free_energy(run).details["discretization_error"]
    err = np.abs(tab["log_Z"].values - exact["log_Z"])
    assert np.all(err <= Z * tab["log_Z_se"].values + 2 * disc + 1e-6), (err, tab["log_Z_se"].values, disc)
    assert np.all(np.abs(tab["S"].values - exact["S"]) <= Z * tab["S_se"].values + 2 * disc + 1e-6)
    assert np.all(tab["S"].values[1:] > 0) and np.all(np.diff(exact["S"]) > 0)  # KL(p*‖q) grows with β
    assert np.all(np.abs(tab["J_z"].values[1:]) < Z + 2 * disc / tab["J_se"].values[1:]), tab["J_z"].values
    # power: the quantities move far more over the ladder than their errors
    for k in ("R", "D", "C"):
        assert np.ptp(exact[k]) > 10 * tab[f"{k}_se"].values.max(), k


def test_fluctuation_response_matches_quadrature_finite_differences(small):
    model, target, run, grid = small
    h = 1e-3
    for of, wrt in (("C", "gamma"), ("D", "gamma"), ("C", "delta"), ("R", "gamma"), ("H", "delta")):
        got = therml.response(run, target, of, wrt)
        fd = (grid.thermo(BETAS, **{wrt: 1 + h})[of] - grid.thermo(BETAS, **{wrt: 1 - h})[of]) / (2 * h)
        z = (got["value"].values[1:] - fd[1:]) / got["se"].values[1:]
        assert np.all(np.abs(z) < Z), (of, wrt, z)
        assert np.abs(fd[1:]).max() > 3 * got["se"].values[1:].max(), (of, wrt)  # power
    # Maxwell: ∂⟨D⟩/∂γ = ∂⟨C⟩/∂δ, exactly (quadrature); term by term in the fluctuation form
    fd_d_gamma = (grid.thermo(BETAS, gamma=1 + h)["D"] - grid.thermo(BETAS, gamma=1 - h)["D"]) / (2 * h)
    fd_c_delta = (grid.thermo(BETAS, delta=1 + h)["C"] - grid.thermo(BETAS, delta=1 - h)["C"]) / (2 * h)
    np.testing.assert_allclose(fd_d_gamma, fd_c_delta, rtol=1e-3, atol=1e-3)
    # ∂S/∂γ = ∂⟨C⟩/∂σ (both Cov(H, C)/σ²): S's finite difference against the fluctuation value
    got = therml.response(run, target, "S", "gamma")
    fd = (grid.thermo(BETAS, gamma=1 + h)["S"] - grid.thermo(BETAS, gamma=1 - h)["S"]) / (2 * h)
    z = (got["value"].values[1:] - fd[1:]) / got["se"].values[1:]
    assert np.all(np.abs(z) < Z), z


def test_rate_capacity_matches_quadrature(small):
    """K_D = (∂⟨R⟩/∂σ)_D from the fluctuation formula against quadrature covariances."""
    model, target, run, grid = small
    e = grid.thermo(BETAS)
    b = BETAS[1:]
    exact = b**2 * (e["cov_R_H"][1:] - e["cov_R_D"][1:] * e["cov_D_H"][1:] / e["cov_D_D"][1:])
    tab = therml.table(run, target)
    z = (tab["K_D"].values[1:] - exact) / tab["K_D_se"].values[1:]
    assert np.all(np.abs(z) < Z), z


@pytest.mark.slow
def test_first_law_between_neighbouring_multipliers(small):
    """ρ̄ΔR + δ̄ΔD + γ̄ΔC + σΔS = 0 between runs at (δ, γ) = (1, 1) and (1.1, 1.05), each with its own
    TI for S; the exact residual (quadrature) is second order in the step, below the errors."""
    model, target, run, grid = small
    other = target.with_hyper(delta=1.1, gamma=1.05)
    run_b = st.sample_nuts(other, BETAS, key=jax.random.PRNGKey(6), **RUN)
    law = therml.first_law(run, target, run_b, other)
    assert np.all(np.abs(law["z"].values[1:]) < Z), law["z"].values
    a, c = grid.thermo(BETAS), grid.thermo(BETAS, delta=1.1, gamma=1.05)
    sigma = 1 / BETAS[1:]
    terms = np.array([c["R"] - a["R"], 1.05 * (c["D"] - a["D"]), 1.025 * (c["C"] - a["C"])])[:, 1:]
    terms = np.vstack([terms, sigma * (c["S"] - a["S"])[1:]])
    exact = terms.sum(axis=0)
    assert np.all(np.abs(exact) < law["se"].values[1:]), (exact, law["se"].values)
    strong = BETAS[1:] >= 0.1  # power: where σ is small the terms are far above the error, and cancel
    assert np.all(np.abs(terms).max(axis=0)[strong] > 4 * law["se"].values[1:][strong])


@pytest.mark.slow
def test_second_law_from_annealing(small):
    model, target, run, grid = small
    exact = grid.thermo(BETAS)
    res = st.ais(target, betas=BETAS, num_chains=512, key=jax.random.PRNGKey(7), progress=False)
    law = therml.second_law(res)
    assert law["dissipated"] > -Z * law["dissipated_se"]
    assert abs(law["jarzynski_log_z"] - exact["log_Z"][-1]) < Z * res.rungs["log_z_se"].values[-1] + 0.05
    law_exact = therml.second_law(res, log_z=exact["log_Z"][-1])
    assert law_exact["dissipated"] >= -Z * law_exact["work_se"]


# ------------------------------------------------------------------ the full 154-parameter model
@pytest.mark.slow
def test_first_law_and_maxwell_on_the_full_model(toy):
    """The full model (prior N(0, 3²)) at σ = 2, 4, where NUTS chains agree (at σ = 1 they can
    settle in different modes of p*: R-hat 1.3 seen). Three runs: (ρ, δ, γ) = (1, 1, 1), γ = 1.5,
    δ = 1.5. The first law holds between neighbours; the secant (⟨A⟩(κ + h) − ⟨A⟩(κ))/h agrees
    with the fluctuation–response derivative averaged over its two ends (−Cov(A, B)/σ, exact to
    O(h²)); Maxwell: the secants of ⟨D⟩ in γ and of ⟨C⟩ in δ agree."""
    h = 0.5
    model = therml.Model(prior_scale=3.0)
    base = therml.posterior(model, toy.data)
    ladder = therml.betas([2.0, 4.0], ti_rungs=6)
    kw = dict(num_chains=4, num_warmup=200, num_samples=200, max_tree_depth=8, progress=False)
    targets = {"base": base, "gamma": base.with_hyper(gamma=1 + h), "delta": base.with_hyper(delta=1 + h)}
    runs = {k: st.sample_nuts(t, ladder, key=jax.random.PRNGKey(10 + i), **kw) for i, (k, t) in enumerate(targets.items())}
    top = ladder >= 0.25  # σ = 4, 2
    for k, r in runs.items():  # the chains agree (4 × 200 draws: R-hat's own noise is a few %)
        rhat = st.thermo.rung_stats(r)["rhat"].values
        assert np.all(rhat < 1.1), (k, rhat)
    for k in ("gamma", "delta"):
        law = therml.first_law(runs["base"], base, runs[k], targets[k])
        assert np.all(np.abs(law["z"].values[1:]) < Z), (k, law["z"].values)
    tabs = {k: therml.table(r, targets[k]) for k, r in runs.items()}
    secant = {}
    for of, wrt in (("C", "gamma"), ("D", "gamma"), ("C", "delta")):
        s = (tabs[wrt][of].values - tabs["base"][of].values)[top] / h
        s_se = np.hypot(tabs[wrt][f"{of}_se"].values, tabs["base"][f"{of}_se"].values)[top] / h
        ends = [therml.response(runs[k], targets[k], of, wrt) for k in ("base", wrt)]
        fl = (ends[0]["value"].values + ends[1]["value"].values)[top] / 2
        fl_se = np.hypot(ends[0]["se"].values, ends[1]["se"].values)[top] / 2
        z = (s - fl) / np.hypot(s_se, fl_se)
        assert np.all(np.abs(z) < Z), (of, wrt, s, fl, z)
        secant[(of, wrt)] = (s, s_se)
    s, s_se = secant[("C", "gamma")]
    assert np.all(np.abs(s) > 3 * s_se), (s, s_se)  # power: ⟨C⟩ responds to γ far beyond its error
    (a, a_se), (b, b_se) = secant[("D", "gamma")], secant[("C", "delta")]
    assert np.all(np.abs(a - b) < Z * np.hypot(a_se, b_se)), (a, b)


# ------------------------------------------------------------------ Gao & Chaudhari: equilibrium surface, iso-classification
@pytest.mark.slow
def test_equilibrium_surface_is_concave_and_d_c_are_its_slopes(toy):
    """F(λ, γ) = min R + λD + γC on a 3 × 3 grid (Adam, vmapped, three rounds of warm starts from the
    best minimizer found anywhere): concave within the optimizer's residual, and ∂F/∂λ = D, ∂F/∂γ = C
    (the envelope theorem) within the central difference's truncation plus the residual.

    The grid is fine (steps of 0.1) so that no kink of F lies between its points: on the coarser
    {0.75, 1, 1.25}² the central difference of F in λ misses D by 1.86 against a tolerance of 0.96
    (a point there lands in another representation: F's slope jumps between grid points), while
    ∂F/∂γ = C still holds."""
    from slt_thermo.therml.iso import equilibrium_surface, surface_checks

    ds = equilibrium_surface(None, toy.data, [0.9, 1.0, 1.1], [0.9, 1.0, 1.1], key=jax.random.PRNGKey(1),
                             num_steps=6000, rounds=3)
    c = surface_checks(ds)
    assert c["concavity"] <= c["concavity_tol"], c
    assert c["envelope_D"] <= c["envelope_D_tol"], c
    assert c["envelope_C"] <= c["envelope_C_tol"], c
    # power: F moves far more than the errors, and so do the slopes being checked
    assert np.ptp(ds["F"].values) > 20 * max(c["envelope_C_tol"], c["envelope_D_tol"])
    assert np.ptp(ds["D"].values) > 10 * c["envelope_D_tol"] and np.ptp(ds["C"].values) > 10 * c["envelope_C_tol"]


@pytest.mark.slow
def test_iso_classification_keeps_c_while_d_moves(toy):
    """Six steps of λ̇ = −α∂C/∂γ, γ̇ = α∂C/∂λ (α = 0.01): C stays within its error budget while D
    changes by many times it. The budget, from the equilibration error ε of C (how far one more
    equilibration moves it): ε at each end, the finite differences' error ε/h in each derivative
    moving C by ≤ α|∇C|√2·ε/h per step, and the Euler step's second-order drift ½|Δ∇C·Δx| per
    step (read off the table)."""
    from slt_thermo.therml.iso import iso_classification

    iso = iso_classification(None, toy.data, lam=1.0, gam=1.0, key=jax.random.PRNGKey(2), num_steps=6, alpha=0.01,
                             init_steps=20000, equilibration=2000)
    t = iso.table
    C, D = t["C"].values, t["D"].values
    dx = np.stack([np.diff(t["lam"].values), np.diff(t["gam"].values)], axis=1)[1:]
    dg = np.diff(np.stack([t["dC_dlam"].values, t["dC_dgam"].values], axis=1)[1:], axis=0)
    euler = 0.5 * np.abs(np.sum(dg * dx, axis=1)).sum()
    eps, h, alpha = t.attrs["C_eq_err"], t.attrs["h"], t.attrs["alpha"]
    grad = np.hypot(t["dC_dlam"].values[1:], t["dC_dgam"].values[1:])
    tol = 2 * eps + np.sum(alpha * grad * math.sqrt(2) * eps / h) + euler
    assert np.abs(C - C[0]).max() <= tol, (C, tol)
    assert abs(D[-1] - D[0]) > 5 * tol, (D, tol)
    assert np.all(np.isfinite(t["dC_dlam"].values[1:])) and np.all(t["lam"].values[1:] > t["lam"].values[0])
    # along the equilibrium path dF = D dλ + C dγ, so dR + λdD + γdC = 0 step by step (midpoint
    # multipliers): summed over the path, within the equilibration errors of its two ends; and with
    # C held, Remark 10's dR = −λdD, within that budget plus γ|ΔC|
    lam, gam, R = t["lam"].values, t["gam"].values, t["R"].values
    lm, gm = (lam[1:] + lam[:-1]) / 2, (gam[1:] + gam[:-1]) / 2
    budget = 2 * (t.attrs["R_eq_err"] + lam.max() * t.attrs["D_eq_err"] + gam.max() * t.attrs["C_eq_err"])
    envelope = np.sum(np.diff(R) + lm * np.diff(D) + gm * np.diff(C))
    assert abs(envelope) <= budget, (envelope, budget)
    remark10 = np.sum(np.diff(R) + lm * np.diff(D))
    assert abs(remark10) <= budget + gam.max() * abs(C[-1] - C[0]), (remark10, budget)
    assert abs(R[-1] - R[0]) > 4 * budget  # power: the rate moves far more than the budget


@pytest.mark.slow
def test_iso_transfer_holds_c_where_fine_tuning_lets_it_rise():
    """Iso-classification transfer from the toy's source task to its mirror image (eq. 32 with
    k = −0.5, Newton-corrected): C stays near C(0) all along t, while fine-tuning (the multipliers
    held) lets it rise; both end up classifying the target task. Empirical bars: the transfer's
    worst deviation is under half fine-tuning's, its typical one under a quarter, and at most a
    third of the steps needed a capped γ step."""
    src, tgt, _, _ = therml.tasks(50, key=jax.random.PRNGKey(0))
    tr = therml.iso_transfer(None, src, tgt, lam=1.0, gam=0.5, k=-0.5, key=jax.random.PRNGKey(2), num_steps=20,
                             equilibration=500, init_steps=10000)
    t = tr.table
    dev, dev_ft = np.abs(t["C"].values - t["C"].values[0]), np.abs(t["C_finetune"].values - t["C"].values[0])
    assert np.all(np.isfinite(dev)) and t["t"].values[-1] == pytest.approx(1.0)
    assert dev.max() < 0.5 * dev_ft.max(), (dev, dev_ft)
    assert np.median(dev) < 0.25 * np.median(dev_ft), (dev, dev_ft)
    assert t["capped"].values.sum() <= len(dev) / 3
    assert t["accuracy_target"].values[-1] >= t["accuracy_target_finetune"].values[-1] - 0.02
    assert t["accuracy_target"].values[0] < t["accuracy_target"].values[-1]  # the target was learnt
    # the tasks never disagree about a label: the Bayes loss n·H(y|x; t) is the same at every t
    _, _, s_toy, t_toy = therml.tasks(50, key=jax.random.PRNGKey(0))

    def bayes(p):
        cond = p / p.sum(axis=1, keepdims=True)
        return -np.sum(p[p > 0] * np.log(cond[p > 0]))

    losses = [bayes((1 - u) * s_toy.p_xy + u * t_toy.p_xy) for u in np.linspace(0, 1, 11)]
    np.testing.assert_allclose(losses, losses[0], rtol=0.02)


@pytest.mark.slow
def test_iso_classification_at_positive_sigma_against_quadrature(small):
    """The σ > 0 process on the 2-free-parameter model at β = 0.3: the fluctuation–response
    derivatives of ⟨C⟩ agree with quadrature's and with the finite-difference route within their
    errors (and are far more precise than it); the exact ⟨C⟩ along the path stays within the
    budget the derivatives' errors and Euler's second-order term allow, while the exact ⟨D⟩ moves
    by many times that budget."""
    model, target, _, grid = small
    beta, alpha = 0.3, 0.1
    iso = therml.iso_classification_sampled(target, beta=beta, lam=1.0, gam=1.0, key=jax.random.PRNGKey(3),
                                            num_steps=3, alpha=alpha, h=0.1)
    t = iso.table
    lam, gam = t["lam"].values, t["gam"].values
    exact = [grid.thermo([beta], delta=a, gamma=b) for a, b in zip(lam, gam)]
    ex = {"dC_dgam": np.array([-beta * e["cov_C_C"][0] for e in exact]),
          "dC_dlam": np.array([-beta * e["cov_D_C"][0] for e in exact]),
          "C": np.array([e["C"][0] for e in exact]), "D": np.array([e["D"][0] for e in exact])}
    for col in ("dC_dgam", "dC_dlam"):
        fr, se, fd, se_fd = (t[c].values for c in (col, f"{col}_se", f"{col}_fd", f"{col}_fd_se"))
        assert np.all(np.abs(fr - ex[col]) < Z * se), (col, fr, ex[col], se)
        assert np.all(np.abs(fd - ex[col]) < Z * se_fd), (col, fd, ex[col], se_fd)
        assert np.all(np.abs(fr - fd) < Z * np.hypot(se, se_fd)), col
    assert np.mean(t["dC_dgam_fd_se"].values) > 5 * np.mean(t["dC_dgam_se"].values)  # the FR route's precision
    moves = np.stack([np.diff(lam), np.diff(gam)], axis=1)
    grads = np.stack([ex["dC_dlam"], ex["dC_dgam"]], axis=1)
    errs = alpha * (np.abs(grads[:-1, 0]) * Z * t["dC_dgam_se"].values[:-1]
                    + np.abs(grads[:-1, 1]) * Z * t["dC_dlam_se"].values[:-1])
    euler = 0.5 * np.abs(np.sum(np.diff(grads, axis=0) * moves, axis=1))
    tol = np.sum(errs + euler)
    assert np.abs(ex["C"] - ex["C"][0]).max() <= tol, (ex["C"], tol)
    assert abs(ex["D"][-1] - ex["D"][0]) > 5 * tol, (ex["D"], tol)
