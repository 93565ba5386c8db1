"""SGD trajectories against the samplers (slt_thermo.sgd): the exact 1-D quadratic of REFERENCE
§4.1, the four thermometers on linear regression (isotropic and anisotropic noise), bad input."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import slt_thermo as st
from slt_thermo import models
from slt_thermo.sgd import (
    covariance_matching,
    energy_matching,
    equipartition,
    mandt,
    mean_energy,
    sgd_trajectory,
    stationary,
    thermometers,
)

Z = 4.0


def _quadratic(a=2.0, sigma2=4.0, n=1000):
    """ℓ_i(θ) = aθ²/2 + c_iθ with c_i = ±σ (mean 0, variance σ² exactly): the minibatch gradient
    of L_n is aθ + (mean of B c's), noise variance σ²/B, so SGD is θ ← (1 − ηa)θ − ηξ exactly."""
    c = math.sqrt(sigma2) * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    return st.Target.from_functions(
        lambda p: 0.0 * jnp.sum(p["theta"]), lambda p, d: -(a / 2 * p["theta"][0] ** 2 + d["c"] * p["theta"][0]),
        {"c": jnp.asarray(c)}, init=lambda k: {"theta": jax.random.normal(k, (1,))}, name="sgd_quadratic")


def test_exact_quadratic_stationary_variance_and_temperature():
    """REFERENCE §4.1: a = 2, η = 0.05, σ² = 4, B = 8 → v = ησ²/(Ba(2 − ηa)) = 0.006578947368 and
    nβ_eff = 1/(av) = 76; equipartition (λ = 1/2) and covariance matching read 76, Mandt's
    continuous-time formula 2B/(ησ²) = 80, too cold by exactly 2/(2 − ηa) (its documented bias)."""
    a, eta, s2, B = 2.0, 0.05, 4.0, 8
    target = _quadratic(a, s2)
    traj = sgd_trajectory(target, optax.sgd, schedule=eta, num_steps=4000, batch_size=B, num_runs=256,
                          key=jax.random.PRNGKey(0), progress=False)
    assert traj["theta"].shape == (256, 4000, 1) and not traj.has_beta
    np.testing.assert_allclose(traj["learning_rate"].values, eta)
    tr = stationary(traj, 0.1)  # relaxation time 1/(ηa) = 10 steps
    theta = tr["theta"].values[..., 0].astype(np.float64)
    per_run = theta.var(axis=1)
    v, v_se = theta.var(), per_run.std(ddof=1) / math.sqrt(per_run.size)
    exact_v = eta * s2 / (B * a * (2 - eta * a))
    assert abs(exact_v - 0.006578947368) < 1e-12
    assert abs(v - exact_v) < Z * v_se, (v, v_se)
    assert abs(0.00625 - exact_v) > Z * v_se  # power: the small-η approximation is ruled out
    w = {"theta": jnp.zeros(1)}
    n = target.n
    for th in (covariance_matching(tr, target, w), equipartition(tr, rlct=0.5, nll_star=float(target.nll(w)))):
        assert abs(n * th.beta - 76.0) < Z * n * th.se, (th.method, n * th.beta, n * th.se)
    d = mandt(target, w, learning_rate=eta, batch_size=B)
    assert n * d.beta == pytest.approx(80.0, rel=1e-5) and d.se == pytest.approx(0.0, abs=1e-9)
    assert n * d.beta == pytest.approx(76.0 * 2 / (2 - eta * a), rel=1e-5)


def _regression(scales, n=2000, seed=0):
    """Linear regression y = xᵀw0 + N(0, 1) with x_j ~ N(0, s_j²), and its least-squares w*."""
    model = models.linear_regression(d=len(scales))
    data = model.simulate(jax.random.PRNGKey(seed), n)
    x = np.asarray(data["x"]) * np.asarray(scales)
    y = x @ np.asarray(model.true_params["w"]) + np.random.default_rng(seed).normal(size=n)
    target = st.Target(model, {"x": jnp.asarray(x), "y": jnp.asarray(y)})
    w_star = {"w": jnp.asarray(np.linalg.lstsq(x, y, rcond=None)[0])}
    return target, w_star


LADDER = [0.2, 0.3, 0.45, 0.65, 1.0]


@pytest.fixture(scope="module")
def isotropic():
    """Linear regression with x ~ N(0, I); SGD at η = 0.02, B = 10 from w*; a NUTS ladder
    around its temperature."""
    target, w_star = _regression([1.0, 1.0, 1.0])
    traj = sgd_trajectory(target, optax.sgd, schedule=0.02, num_steps=6000, batch_size=10, num_runs=32,
                          record_every=5, init=w_star, key=jax.random.PRNGKey(1), progress=False)
    ladder = st.sample_nuts(target, LADDER, num_chains=4, num_warmup=300, num_samples=500,
                            key=jax.random.PRNGKey(2), progress=False)
    return target, w_star, stationary(traj, 0.1), ladder


def test_energy_matching_recovers_the_beta_of_a_sampler(isotropic):
    """A sampler is its own test case: full-batch SGLD at β = 0.5 (ε small: its ε-bias of E[βH]
    is ~0.5% of d/2) read by energy matching against the NUTS ladder gives β̂ = 0.5."""
    target, w_star, _, ladder = isotropic
    run = st.sample_sgld(target, [0.5], step_size=2e-5, num_steps=4000, num_burnin=1000, batch_size=target.n,
                         num_chains=32, eval_full_nll_every=2, init=w_star, key=jax.random.PRNGKey(4),
                         progress=False)
    th = energy_matching(run, ladder)
    assert abs(th.beta - 0.5) < Z * th.se, (th.beta, th.se)
    assert th.se < 0.05  # power: a 10% error in β would show


@pytest.mark.slow
def test_annealed_schedule_reads_as_cooling(isotropic):
    """η falling from 0.04 to 0.02 over the first half, then held: β̂(t) by energy matching rises
    from ~0.25 to the constant-η value ~0.5 (Mandt: 2B/(ηn))."""
    from slt_thermo.sgd import cooling_curve

    target, w_star, _, ladder = isotropic
    sched = optax.join_schedules([optax.linear_schedule(0.04, 0.02, 3000), optax.constant_schedule(0.02)], [3000])
    traj = sgd_trajectory(target, optax.sgd, schedule=sched, num_steps=6000, batch_size=10, num_runs=32,
                          record_every=5, init=w_star, key=jax.random.PRNGKey(5), progress=False)
    cool = cooling_curve(traj, ladder, window=200)
    assert cool.sizes["step"] == 6 and np.all(np.diff(cool["learning_rate"].values) <= 1e-9)
    b, se = cool["beta"].values, cool["se"].values
    assert b[-1] - b[1] > Z * math.hypot(se[-1], se[1]), (b, se)  # it cooled
    assert abs(b[-1] - 0.5) < Z * se[-1] + 0.5 * 0.02, (b, se)  # + Mandt's discreteness (ηκ/2 = 1%)


@pytest.mark.slow
def test_langevin_protocol_dissipates_and_jarzynski_recovers_log_z():
    """Annealed MALA from the prior to β = 1 on linear regression (exact log Z): few rungs
    dissipate work (⟨W⟩ − ΔF > 0, well beyond its error), and Jarzynski's log⟨e^{−W}⟩ recovers
    log Z within its error."""
    from slt_thermo.sgd import annealing_work

    model = models.linear_regression(d=3)
    data = model.simulate(jax.random.PRNGKey(0), 200)
    target = st.Target(model, data)
    exact_log_z = -float(model.exact_thermo(data, 1.0).F)
    betas = np.concatenate([[0.0], np.geomspace(1e-3, 1.0, 12)])
    w = annealing_work(target, betas, key=jax.random.PRNGKey(1), num_chains=512, log_z=exact_log_z)
    assert w["dissipated"] > Z * w["dissipated_se"], w
    assert abs(w["jarzynski_log_z"] - exact_log_z) < Z * w["jarzynski_log_z_se"] + 1e-3, w


def test_thermometers_agree_where_regular_and_isotropic(isotropic):
    """x ~ N(0, I): A = C (Fisher noise) are both ∝ I, the SGD law is the tempered posterior at
    β = 2Bσ²/(ηn) = 0.5, and (a)–(d) agree; (d) only up to its discreteness bias 2/(2 − ηκ)."""
    target, w_star, tr, ladder = isotropic
    tab = thermometers(tr, target, w_star=w_star, ladder=ladder, rlct=1.5)
    assert list(tab["thermometer"].values) == ["energy", "equipartition", "covariance", "mandt"]
    b = dict(zip(tab["thermometer"].values, tab["beta"].values))
    se = dict(zip(tab["thermometer"].values, tab["se"].values))
    for m in ("energy", "covariance"):
        assert abs(b["equipartition"] - b[m]) < Z * math.hypot(se["equipartition"], se[m]), (m, b)
    kappa = float(np.mean(np.asarray(target.data["x"]) ** 2))  # per-example curvature ≈ 1
    discreteness = 2 / (2 - 0.02 * kappa)
    for m in ("energy", "equipartition", "covariance"):
        assert abs(b[m] * discreteness - b["mandt"]) < Z * math.hypot(se[m], se["mandt"]) * discreteness, (m, b)
    assert abs(b["mandt"] - 0.5) < 0.05  # the rule's value: 2B/(η n σ_g²), σ_g² ≈ 1
    per = covariance_matching(tr, target, w_star).details
    spread = per["per_direction"] / per["per_direction"].mean()
    assert np.all(np.abs(spread - 1) < Z * per["per_direction_se"] / per["per_direction"].mean())


def test_anisotropic_noise_makes_stiff_directions_hotter():
    """x_j ~ N(0, s_j²), s = (0.5, 1, 2): C = A (Fisher noise) but A is anisotropic, so Σ_SGD ≈
    (η/2B)I instead of ∝ A⁻¹: per eigendirection β̂_j = 2B/(ηnκ_j) falls as 1/κ_j (stiff
    directions are hotter), while the scalar thermometers still agree (2tr(AΣ) = (η/B)tr C)."""
    target, w_star = _regression([0.5, 1.0, 2.0], seed=2)
    traj = sgd_trajectory(target, optax.sgd, schedule=0.02, num_steps=6000, batch_size=10, num_runs=32,
                          record_every=5, init=w_star, key=jax.random.PRNGKey(3), progress=False)
    tr = stationary(traj, 0.2)
    cm = covariance_matching(tr, target, w_star)
    per, per_se, kappa = cm.details["per_direction"], cm.details["per_direction_se"], cm.details["curvatures"]
    assert np.all(np.diff(per) < -Z * np.hypot(per_se[1:], per_se[:-1]))  # κ ascending → β̂_j descending
    predicted = 2 * 10 / (0.02 * kappa)  # β_j = 2B/(η κ_j^H) with κ^H the curvature of H
    assert np.all(np.abs(per - predicted) < Z * per_se + 0.1 * predicted), (per, predicted)
    eq = equipartition(tr, rlct=1.5, nll_star=float(target.nll(w_star)))
    assert abs(eq.beta - cm.beta) < Z * math.hypot(eq.se, cm.se)


def test_schedules_are_recorded_and_momentum_runs():
    target = _quadratic()
    sched = optax.linear_schedule(0.1, 0.01, 100)
    traj = sgd_trajectory(target, functools.partial(optax.sgd, momentum=0.9), schedule=sched, num_steps=200,
                          batch_size=8, num_runs=2, record_every=10, key=jax.random.PRNGKey(0), progress=False)
    steps = 10 * np.arange(1, 21) - 1  # draw k is the point after 10(k + 1) steps: the rate of step 10k + 9
    np.testing.assert_allclose(traj["learning_rate"].values[0], [float(sched(s)) for s in steps], rtol=1e-5)
    bare = sgd_trajectory(target, optax.adam(1e-2), num_steps=20, batch_size=8, num_runs=2,
                          key=jax.random.PRNGKey(0), progress=False)
    assert np.all(np.isnan(bare["learning_rate"].values)) and np.all(np.isfinite(bare["nll"].values))
    e, se = mean_energy(stationary(traj, 0.5))
    assert np.isfinite(e) and se > 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(optimizer=optax.sgd, schedule=0.0), "schedule"),
    (dict(optimizer=optax.sgd, schedule=-1.0), "schedule"),
    (dict(optimizer=optax.sgd), "schedule"),
    (dict(optimizer="sgd", schedule=0.1), "optax"),
    (dict(optimizer=optax.sgd(0.1), schedule=0.1), "not a transformation and a schedule"),
    (dict(optimizer=optax.sgd(0.1), batch_size=5000), "batch_size"),
    (dict(optimizer=optax.sgd(0.1), num_steps=0), "num_steps"),
    (dict(optimizer=optax.sgd(0.1), record_every=50), "record_every"),
])
def test_bad_input_gives_clear_errors(kwargs, match):
    target = _quadratic()
    args = dict(num_steps=10, batch_size=8, key=jax.random.PRNGKey(0), progress=False) | kwargs
    optimizer = args.pop("optimizer")
    with pytest.raises(st.SLTThermoError, match=match):
        sgd_trajectory(target, optimizer, **args)
    with pytest.raises(st.SLTThermoError, match="learning_rate"):
        mandt(target, {"theta": jnp.zeros(1)}, learning_rate=0.0, batch_size=8)


@pytest.mark.slow
def test_llc_along_training_reaches_the_regular_value():
    """λ̂(t) at three checkpoints of an SGD run on linear regression (d = 2): at the last one the
    run sits at the minimum, and λ̂ (with the nearest-minimum correction) reads λ = d/2 = 1.
    γ = 1: at n = 1000 the posterior spread at nβ = n/log n is ~0.08, close to the default
    localization's 1/√100 = 0.1, which truncates it (st.llc warns: λ̂ = 0.66 at the minimum)."""
    from slt_thermo.sgd import llc_along

    model = models.linear_regression(d=2)
    target = st.Target(model, model.simulate(jax.random.PRNGKey(0), 1000))
    traj = sgd_trajectory(target, optax.sgd, schedule=0.05, num_steps=600, batch_size=50, num_runs=2,
                          record_every=20, key=jax.random.PRNGKey(1), progress=False)
    with pytest.warns(UserWarning):  # the first checkpoint is far from a minimum: llc says so
        tab = llc_along(traj, target, key=jax.random.PRNGKey(2), draws=[0, 14, 29], gamma=1.0)
    np.testing.assert_array_equal(tab["step"].values, [20, 300, 600])
    assert np.all(np.diff(tab["nll"].values) <= 0) or tab["nll"].values[-1] < tab["nll"].values[0]
    last = tab.isel(step=-1)
    assert abs(float(last["llc_ref_minimum"]) - 1.0) < Z * float(last["se"]), tab
    assert np.all(np.isfinite(tab["llc"].values)) and np.all(tab["se"].values > 0)
