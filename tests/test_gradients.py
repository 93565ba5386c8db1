"""The shared minibatch-gradient pieces (samplers/gradients.py) and SGLD's RMSprop preconditioner
as an optax transformation over params pytrees."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree
from numpyro.distributions import constraints

import slt_thermo as st
from slt_thermo.samplers.gradients import (
    control_variates,
    full_nll_grad,
    grad_estimator,
    nll_control_variate,
)
from slt_thermo.samplers.sgld import (
    RMSpropState,
    SGLDConfig,
    rmsprop_diagonal,
    rmsprop_preconditioner,
    rmsprop_warm_start,
)

N = 40


def _nested_target():
    """y = x·w + b + N(0, s²) with params {"lin": {"w": (3,), "b": ()}, "s": ()}, s > 0 (a
    constrained leaf, so the Jacobian term is exercised), a nested dict."""
    kx, ke = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, (N, 3))
    y = x @ jnp.array([1.0, -0.5, 0.25]) + 0.3 + 0.7 * jax.random.normal(ke, (N,))

    def log_prior(p):
        return (-0.5 * jnp.sum(p["lin"]["w"] ** 2) - 0.5 * p["lin"]["b"] ** 2
                - p["s"])  # Exp(1) on s

    def log_likelihood(p, data):
        xx, yy = data
        r = yy - xx @ p["lin"]["w"] - p["lin"]["b"]
        return -0.5 * (r / p["s"]) ** 2 - jnp.log(p["s"]) - 0.5 * jnp.log(2 * jnp.pi)

    init = {"lin": {"w": jnp.zeros(3), "b": jnp.zeros(())}, "s": jnp.ones(())}
    support = {"lin": {"w": constraints.real, "b": constraints.real}, "s": constraints.positive}
    return st.Target.from_functions(log_prior, log_likelihood, (x, y), init, support=support)


@pytest.fixture(scope="module")
def setup():
    t = _nested_target()
    center = {"lin": {"w": jnp.array([0.9, -0.4, 0.3]), "b": jnp.asarray(0.25)}, "s": jnp.asarray(0.8)}
    u = t.to_unconstrained({"lin": {"w": jnp.array([0.5, 0.1, -0.2]), "b": jnp.asarray(-0.1)},
                            "s": jnp.asarray(1.3)})
    return t, center, u


def _close(a, b, rtol=2e-5, atol=1e-4):
    np.testing.assert_allclose(ravel_pytree(a)[0], ravel_pytree(b)[0], rtol=rtol, atol=atol)


def test_estimator_on_all_examples_is_the_full_gradient(setup):
    t, center, u = setup
    beta, gamma = 0.7, 3.0
    grad_fn = grad_estimator(t, center, gamma)
    (logp, nll), g = grad_fn(u, beta, jnp.arange(N))
    full = lambda v: t.log_density_unconstrained(v, beta, center, gamma)
    logp_full, g_full = jax.value_and_grad(full)(u)
    assert jax.tree_util.tree_structure(g) == jax.tree_util.tree_structure(u)
    _close(g, g_full)
    np.testing.assert_allclose(logp, logp_full, rtol=1e-5)
    np.testing.assert_allclose(nll, t.nll(t.to_constrained(u)), rtol=1e-5)


def test_estimator_is_unbiased(setup):
    """The mean over all n single-example batches is the full-data gradient."""
    t, center, u = setup
    beta, gamma = 0.7, 3.0
    grad_fn = grad_estimator(t, center, gamma)
    (_, nlls), gs = jax.vmap(lambda i: grad_fn(u, beta, i[None]))(jnp.arange(N))
    g_full = jax.grad(lambda v: t.log_density_unconstrained(v, beta, center, gamma))(u)
    _close(jax.tree_util.tree_map(lambda a: a.mean(0), gs), g_full)
    np.testing.assert_allclose(nlls.mean(), t.nll(t.to_constrained(u)), rtol=1e-5)
    per_example = jax.vmap(lambda g: ravel_pytree(g)[0])(gs)
    assert float(jnp.min(jnp.std(per_example[:, :4], axis=0))) > 0  # single examples differ


def test_control_variate_is_exact_at_the_reference_and_unbiased_elsewhere(setup):
    t, center, u = setup
    beta, gamma = 0.7, 3.0
    u_star = t.to_unconstrained(center)
    plain = grad_estimator(t, center, gamma)
    cv = control_variates(plain, t, u_star)
    full = jax.grad(lambda v: t.log_density_unconstrained(v, beta, center, gamma))
    # at u = u*: the full-data gradient whatever the minibatch
    for idx in (jnp.array([0, 1, 2]), jnp.array([7]), jnp.array([5, 5, 30, 39])):
        (_, nll), g = cv(u_star, beta, idx)
        _close(g, full(u_star), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(nll, plain(u_star, beta, idx)[0][1])  # aux passed through
    # elsewhere: the plain estimator's mean (the full gradient), but less spread near u*
    gs = jax.vmap(lambda i: cv(u, beta, i[None])[1])(jnp.arange(N))
    _close(jax.tree_util.tree_map(lambda a: a.mean(0), gs), full(u))
    near = jax.tree_util.tree_map(lambda a, b: a + 0.01 * (b - a), u_star, u)
    spread = lambda fn: float(jnp.sum(jnp.var(
        jax.vmap(lambda i: ravel_pytree(fn(near, beta, i[None])[1])[0])(jnp.arange(N)), 0)))
    assert spread(cv) < 1e-2 * spread(plain)
    # the full-data term is ∇H(u*), H untempered, no prior
    _close(full_nll_grad(t, u_star),
           jax.grad(lambda v: t.nll(t.to_constrained(v)))(u_star))


def test_nll_control_variate(setup):
    t, center, u = setup
    fn = nll_control_variate(t, center)
    w = t.to_constrained(u)
    vals = jax.vmap(lambda i: fn(t.nll_batch(w, i[None]), i[None]))(jnp.arange(N))
    np.testing.assert_allclose(vals.mean(), t.nll(w), rtol=1e-5)  # same mean
    at_center = fn(t.nll_batch(center, jnp.array([3, 4])), jnp.array([3, 4]))
    np.testing.assert_allclose(at_center, t.nll(center), rtol=1e-6)  # exact at w*
    assert nll_control_variate(t, None)(1.5, jnp.array([0])) == 1.5


def test_rmsprop_transformation_matches_the_flat_computation():
    """V ← aV + (1 − a)g² while count < adapt_steps, then frozen; G = 1/(√max(V, floor) + δ);
    updates G∘g — on a nested pytree, against the same formulas written on the flat vector."""
    params = {"a": {"b": jnp.zeros((2, 3))}, "c": jnp.zeros(4)}
    flat0, unravel = ravel_pytree(params)
    decay, eps, floor, adapt = 0.9, 1e-8, 0.5, 3
    tx = rmsprop_preconditioner(decay, eps, floor, adapt_steps=adapt)
    assert isinstance(tx, optax.GradientTransformation)
    keys = jax.random.split(jax.random.PRNGKey(0), 6)
    # gradients of mixed scales: some coordinates end below the floor, some above
    scale = jnp.concatenate([jnp.full(5, 0.1), jnp.full(5, 3.0)])
    grads = [unravel(scale * jax.random.normal(k, flat0.shape)) for k in keys]
    warm = jax.tree_util.tree_map(lambda *g: jnp.stack(g), *grads[:2])
    state = rmsprop_warm_start(tx.init(params), warm)
    assert isinstance(state, RMSpropState) and int(state.count) == 0
    V = (ravel_pytree(grads[0])[0] ** 2 + ravel_pytree(grads[1])[0] ** 2) / 2
    np.testing.assert_allclose(ravel_pytree(state.nu)[0], V, rtol=1e-6)
    update = jax.jit(tx.update)
    for t, g in enumerate(grads):
        out, state = update(g, state)
        gf = ravel_pytree(g)[0]
        if t < adapt:
            V = decay * V + (1 - decay) * gf**2
        G = 1 / (np.sqrt(np.maximum(V, floor)) + eps)
        assert jax.tree_util.tree_structure(out) == jax.tree_util.tree_structure(params)
        np.testing.assert_allclose(ravel_pytree(state.nu)[0], V, rtol=1e-6)
        np.testing.assert_allclose(ravel_pytree(rmsprop_diagonal(state, eps, floor))[0], G, rtol=1e-6)
        np.testing.assert_allclose(ravel_pytree(out)[0], G * gf, rtol=1e-6)
        assert int(state.count) == t + 1
    assert np.any(V < floor) and np.any(V > floor)
    # adapt_steps=None keeps adapting (pSGLD)
    tx2 = rmsprop_preconditioner(decay, eps, floor)
    s2 = tx2.init(params)
    for g in grads:
        _, s2 = tx2.update(g, s2)
    V2 = np.zeros_like(flat0)
    for g in grads:
        V2 = decay * V2 + (1 - decay) * ravel_pytree(g)[0] ** 2
    np.testing.assert_allclose(ravel_pytree(s2.nu)[0], V2, rtol=1e-6)
    # an ordinary optax transformation: it chains
    chained = optax.chain(tx2, optax.scale(-0.1))
    out, _ = chained.update(grads[0], chained.init(params))
    np.testing.assert_allclose(ravel_pytree(out)[0],
                               -0.1 * ravel_pytree(tx2.update(grads[0], tx2.init(params))[0])[0])


def test_sgld_step_is_the_flat_formula(setup):
    """One RMSprop-SGLD step on nested params equals the module docstring's update written on the
    flat vector: u' = u + (ε/2)G∘g + √(εG)ξ, V updated first, ξ one flat draw of d normals."""
    t, center, u = setup
    beta, gamma, eps = 0.7, 3.0, 1e-3
    kernel = SGLDConfig(eps, 5, "rmsprop", 0.99, 1e-8, False, 10).build(t, center, gamma)
    s0 = jax.jit(kernel.init)(jax.random.PRNGKey(1), u, beta)
    key = jax.random.PRNGKey(2)
    s1, info = jax.jit(kernel.step)(key, s0, beta)
    k_batch, k_noise = jax.random.split(key)
    idx = jax.random.randint(k_batch, (5,), 0, N)
    g = ravel_pytree(grad_estimator(t, center, gamma)(u, beta, idx)[1])[0]
    flat = ravel_pytree(u)[0]
    V = 0.99 * ravel_pytree(s0.precond.nu)[0] + 0.01 * g**2
    G = 1 / (jnp.sqrt(jnp.maximum(V, max(gamma, 1.0))) + 1e-8)
    xi = jax.random.normal(k_noise, flat.shape)
    expected = flat + 0.5 * eps * G * g + jnp.sqrt(eps * G) * xi
    np.testing.assert_allclose(ravel_pytree(s1.position)[0], expected, rtol=1e-5, atol=1e-6)
    assert jax.tree_util.tree_structure(s1.position) == jax.tree_util.tree_structure(u)
    assert bool(s1.finite) and float(info["step_size"]) == pytest.approx(eps)
    assert "sq_distance" in info


def test_sample_sgld_rmsprop_on_nested_params_keeps_a_pytree_preconditioner(setup):
    t, center, _ = setup
    run = st.sample_sgld(t, [1.0], step_size=1e-3, num_chains=2, num_steps=300, num_burnin=100,
                         batch_size=8, center=center, gamma=1.0, preconditioner="rmsprop",
                         key=jax.random.PRNGKey(3), progress=False)
    assert np.all(np.isfinite(run.nll.values)) and bool(np.all(run.ds["healthy"].values))
    pstate = run.state.kernel.precond
    assert isinstance(pstate, RMSpropState)
    assert jax.tree_util.tree_structure(pstate.nu) == jax.tree_util.tree_structure(center)
    G = rmsprop_diagonal(pstate, 1e-8, 1.0)
    for g, c in zip(jax.tree_util.tree_leaves(G), jax.tree_util.tree_leaves(center)):
        assert g.shape[g.ndim - c.ndim:] == c.shape
        assert np.all((g > 0) & (g <= 1))
    assert np.all(np.asarray(pstate.count) == 300)
