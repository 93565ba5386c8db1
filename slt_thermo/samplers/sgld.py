"""Stochastic-gradient Langevin dynamics (Welling & Teh 2011), optionally RMSprop-preconditioned
(Li et al. 2016) and localized (the LLC posterior of Lau et al., arXiv:2308.12108).

One step, in the sampler's unconstrained space u (identity for unconstrained models):

    Δu = (ε/2) G ∘ ∇_u [log φ − β Ĥ_B − (γ/2)‖w − w*‖² + log|J|] + √ε · N(0, G)

where Ĥ_B = (n/B) Σ_{i∈B} −log p(y_i|x_i, w) is the unbiased minibatch estimate of H = nL_n
(B examples drawn uniformly with replacement each step; every example once when B = n), G = 1
without preconditioning and
G = 1/(√max(V, γ, 1) + δ) under ``"rmsprop"``, V the exponential running average of squared
gradients, started at their mean over 8 minibatches at the initial point and updated during
burn-in only: G is then held fixed, so the recorded draws come from Langevin dynamics with a
constant diagonal mass, whose stationary law is exactly p^β (up to the O(ε) discretization).
pSGLD (Li et al. 2016, and devinterp's RMSprop-SGLD) keeps adapting G and drops the correction
term Γ = ∇·G that a position-dependent G needs; that is biased (on reduced_rank(5, 3, 2, 1) at
n = 1e6 it gave λ̂ 5.2–5.6 against NUTS's 4.30), so it is offered as ``"rmsprop_adaptive"`` only
for comparison with those tools. The floor max(γ, 1) on V (γ: the localization's curvature)
keeps G ≤ 1 and finite at w*, where the gradients of the flat directions vanish: without it a
chain started at w* takes steps of size √(ε/δ) there and runs off (‖w − w*‖² ~ 1e5 on a deep
linear net). The MALA check of an RMSprop run scores the preconditioned proposal, G held fixed.
SGLD has no accept/reject step: its stationary law differs from p^β by O(ε) and by the
minibatch noise, so small steps matter; :func:`~slt_thermo.samplers.mala.langevin_acceptance`
scores ε (recorded as ``mala_accept`` at a bounded number of draws: it costs two full-data
gradient passes, far more than a minibatch step).

Both O(ε) errors are also *predicted*, at the same draws. Near a point where βH is locally
quadratic (Hessian A), the Euler step with constant G, minibatch-gradient covariance C and
injected noise εG has a stationary covariance Σ with tr(AΣ) = d + (ε/4)·tr(G(C + A)) + O(ε²)
(the discrete Lyapunov equation, traced against G⁻¹), so E[βH] exceeds its exact value by

    (ε/8)·tr(G C)  +  (ε/8)·tr(G ∇²βH),

recorded per checked draw as ``minibatch_excess`` (C's diagonal from 64 per-example gradients:
Var(∇βĤ_B) = Var_i(βn∇ℓ_i)/B for batches drawn with replacement) and
``discretization_excess`` (one Hutchinson probe of a minibatch Hessian). For a well-specified
model C ≈ (nβ/B)·∇²βH at the minimum, so with noisy data the minibatch part dominates by nβ/B
(≈ 4 at n = 1e4, B = 256): that bias is invisible to the MALA check, which uses exact gradients.
On noise-free data the residuals, hence C, vanish at w*. Measured on linear_regression (n = 500,
B = 10, plain SGLD): excess 1.03 ± 0.04 vs predicted 1.02 at ε = 1e-4, 0.28 ± 0.03 vs 0.31 at 3e-5
(second-order terms show beyond ~100%: 31.3 vs 23.5 at 2e-3); on deep linear nets at γ = 1
(RMSprop) it tracks λ̂(ε) − NUTS to 10–20% once the ε-bias is several se.

The minibatch part can be removed at its source with a control variate at the center w*
(SGLD-CV, Baker, Fearnhead, Fox & Nemeth 2019, ``control_variate=True``): the gradient of H is
estimated by ∇Ĥ_B(w) − ∇Ĥ_B(w*) + ∇H(w*), whose per-example terms ∇ℓ_i(w) − ∇ℓ_i(w*) vanish as
w → w*, so C shrinks with the posterior's spread around w* instead of staying at the per-example
gradients' spread at w*. On the linear_regression case above (ε = 1e-4) the excess falls from
1.03 ± 0.04 to 0.011 ± 0.021 (predicted 0.034). It costs a second minibatch gradient per step
and helps only where the chains stay near w* and the data are noisy: on noise-free data the
per-example gradients at w* are already zero.

The pieces: the minibatch gradient estimator and its control variates come from
:mod:`~slt_thermo.samplers.gradients` (shared with SGD); the RMSprop preconditioner is an optax
transformation over the params pytree (:func:`rmsprop_preconditioner`, G from
:func:`rmsprop_diagonal`), so a step works leaf by leaf, never flattening the parameters.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from ..errors import InvalidArgumentError
from ..results import Samples
from ..target import Target, sq_distance
from .gradients import batch_indices, chain_gradients
from .mala import langevin_acceptance
from .._utils import positive_int, real_number
from .run import Kernel, RunOptions, all_finite, run
from .underdamped import UnderdampedConfig

PRECONDITIONERS = (None, "rmsprop", "rmsprop_adaptive")
NUM_DIAGNOSTICS = 50  # default cap on the recorded draws per chain that get the MALA check
RMSPROP_WARMUP = 8  # minibatches whose mean squared gradient starts RMSprop's average
DIAGNOSTIC_BUDGET = 0.25  # default cap on the MALA checks' nominal cost, a fraction of the steps'
NOISE_EXAMPLES = 64  # per-example gradients behind each minibatch-noise check


# ------------------------------------------------------------------ the RMSprop preconditioner
class RMSpropState(NamedTuple):
    """State of :func:`rmsprop_preconditioner` (an optax transformation's state)."""

    nu: Any  # V: running average of squared gradients, a pytree shaped like the params
    count: jax.Array  # updates so far; V adapts while count < adapt_steps


def rmsprop_diagonal(state: RMSpropState, eps: float, floor=1.0):
    """The diagonal preconditioner G = 1/(√max(V, floor) + δ) of an :class:`RMSpropState`, a
    pytree shaped like the params (δ = ``eps``). SGLD needs G itself, not only G ∘ gradient: it
    scales both the drift (ε/2) G ∘ g and the noise √(εG) ξ."""
    return jax.tree_util.tree_map(lambda v: 1.0 / (jnp.sqrt(jnp.maximum(v, floor)) + eps), state.nu)


def rmsprop_warm_start(state: RMSpropState, grads) -> RMSpropState:
    """``state`` with V set to the mean squared gradient of ``grads``, a pytree of gradients
    stacked on a leading axis (SGLD: :data:`RMSPROP_WARMUP` minibatches at the initial point), so
    G starts at the gradients' scale instead of at the floor."""
    nu = jax.tree_util.tree_map(lambda g: jnp.mean(g**2, axis=0), grads)
    return state._replace(nu=nu)


def rmsprop_preconditioner(decay: float, eps: float, floor=1.0,
                           adapt_steps: int | None = None) -> optax.GradientTransformation:
    """SGLD's diagonal RMSprop preconditioner, as an optax transformation over params pytrees.

    ``update(g, state)`` sets V ← decay·V + (1 − decay)·g² (leaf-wise) while ``state.count <
    adapt_steps`` and holds V fixed afterwards (``adapt_steps=None``: always adapts, pSGLD), then
    returns (G ∘ g, new state) with G = :func:`rmsprop_diagonal` (new state). Unlike
    ``optax.scale_by_rms`` it floors V at ``floor`` (SGLD: max(γ, 1) with a center, so G ≤ 1 and
    stays finite where gradients vanish; module docstring) and can freeze V, so that the chain
    after burn-in is Langevin dynamics with a constant diagonal mass. ``init`` starts V at zero;
    :func:`rmsprop_warm_start` sets it from gradients. ``floor`` may be traced.
    """

    def init_fn(params):
        return RMSpropState(jax.tree_util.tree_map(jnp.zeros_like, params), jnp.zeros((), jnp.int32))

    def update_fn(updates, state, params=None):
        del params
        nu = jax.tree_util.tree_map(lambda v, g: decay * v + (1 - decay) * g**2, state.nu, updates)
        if adapt_steps is not None:  # frozen after burn-in: a constant mass
            adapting = state.count < adapt_steps
            nu = jax.tree_util.tree_map(lambda new, old: jnp.where(adapting, new, old), nu, state.nu)
        state = RMSpropState(nu, optax.safe_int32_increment(state.count))
        G = rmsprop_diagonal(state, eps, floor)
        return jax.tree_util.tree_map(lambda a, g: a * g, G, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def _normal_like(key, tree):
    """N(0, 1) draws shaped like ``tree``: one draw of all d numbers, cut into the leaves' shapes
    in leaf order (the numbers of a flat draw of d). One PRNG call per step: a key per leaf (a
    threefry call per leaf) made a step 1.25–1.6× slower on 2 CPU cores (DLNs of 3–4 layers)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    if len(leaves) == 1:
        return treedef.unflatten([jax.random.normal(key, leaves[0].shape, leaves[0].dtype)])
    dtype = jnp.result_type(*leaves)
    z = jax.random.normal(key, (sum(x.size for x in leaves),), dtype)
    out, i = [], 0
    for x in leaves:
        out.append(z[i:i + x.size].reshape(x.shape).astype(x.dtype))
        i += x.size
    return treedef.unflatten(out)


# ------------------------------------------------------------------ the kernel
class SGLDState(NamedTuple):
    position: object  # unconstrained params pytree
    precond: object  # the preconditioner's optax state (RMSpropState; optax.EmptyState for G = 1)
    nll: jax.Array  # minibatch estimate of H at `position`
    finite: jax.Array


class SGLDConfig(NamedTuple):
    step_size: float
    batch_size: int
    preconditioner: str | None
    rmsprop_decay: float
    rmsprop_eps: float
    full_nll: bool
    adapt_steps: int | None = None  # RMSprop updates V for this many steps; None: always
    control_variate: bool = False  # SGLD-CV: minibatch gradient control-variated at the center

    # ~90 lines: the kernel's closures (init, step, diagnose) share one gradient estimator and one
    # preconditioner; split apart, each would take them all as arguments
    def build(self, target: Target, center, gamma) -> Kernel:
        n = target.n
        B = self.batch_size
        eps = self.step_size

        # the recorded minibatch nll is control-variated at the center (same mean, less noise)
        sgld_grad, recorded_nll, u_star = chain_gradients(target, center, gamma, self.control_variate)

        rms = self.preconditioner in ("rmsprop", "rmsprop_adaptive")
        if rms:
            # RMSprop: V never below max(γ, 1) (γ: the localization's curvature): at w* the
            # gradients of flat directions vanish (dead units, population targets: all of them),
            # and G = 1/(√V + δ) would blow up to 1/δ there (with γ = 0 a chain at w* = 0 of
            # K = w⁴ jumped to the prior's edge, λ̂ ~ 1e3). So G ≤ 1: never a longer step than
            # plain SGLD's at the same ε
            v_floor = jnp.maximum(gamma, 1.0) if center is not None else 1.0
            precond = rmsprop_preconditioner(self.rmsprop_decay, self.rmsprop_eps, v_floor,
                                             self.adapt_steps)
            diagonal = lambda s: rmsprop_diagonal(s, self.rmsprop_eps, v_floor)
        else:
            precond = optax.identity()
            diagonal = lambda s: None  # G = 1

        def init(key, u, beta):
            if rms:  # warm start: V = mean squared minibatch gradient over RMSPROP_WARMUP batches
                idx = batch_indices(key, n, B, (RMSPROP_WARMUP,))
                (_, nlls), grads = jax.vmap(lambda i: sgld_grad(u, beta, i))(idx)
                pstate = rmsprop_warm_start(precond.init(u), grads)
                nll = recorded_nll(nlls[0], idx[0])
            else:
                idx = batch_indices(key, n, B)
                nll = recorded_nll(target.nll_batch(target.to_constrained(u), idx), idx)
                pstate = precond.init(u)
            return SGLDState(u, pstate, nll, jnp.isfinite(nll))

        def step(key, state, beta):
            k_batch, k_noise = jax.random.split(key)
            idx = batch_indices(k_batch, n, B)
            (logp, nll), grad = sgld_grad(state.position, beta, idx)
            nll = recorded_nll(nll, idx)
            drift, pstate = precond.update(grad, state.precond)  # G ∘ ∇log p, leaf-wise
            G = diagonal(pstate)
            noise = _normal_like(k_noise, state.position)
            if G is None:
                new = jax.tree_util.tree_map(
                    lambda x, d, z: x + 0.5 * eps * d + jnp.sqrt(eps) * z, state.position, drift, noise)
            else:
                new = jax.tree_util.tree_map(
                    lambda x, d, z, g: x + 0.5 * eps * d + jnp.sqrt(eps * g) * z,
                    state.position, drift, noise, G)
            ok = state.finite & all_finite(logp, new)
            new_state = SGLDState(new, pstate, nll, ok)
            return new_state, stats(new_state)

        def diagnose(key, state, beta):  # the next step's proposal (G as it stands), full data
            fn = lambda u: target.log_density_unconstrained(u, beta, center, gamma)
            G = diagonal(state.precond)
            G = None if G is None else ravel_pytree(G)[0]  # a few recorded draws only: flat is fine
            out = {"mala_accept": langevin_acceptance(key, fn, state.position, eps, G)}
            # SGLD's first-order excess of E[βH] (module docstring), split by its two causes
            Gd = jnp.ones_like(ravel_pytree(state.position)[0]) if G is None else G
            k_noise, k_curv = jax.random.split(jax.random.fold_in(key, 1))
            var = minibatch_gradient_variance(target, state.position, beta, B, k_noise, reference=u_star)
            out["minibatch_excess"] = eps / 8 * jnp.sum(Gd * var)
            out["discretization_excess"] = eps / 8 * curvature_trace(
                target, state.position, beta, B, k_curv, Gd)
            return out

        def finite(state):
            return state.finite

        stats = step_stats(target, center, eps)

        return Kernel(init=init, step=step, position=lambda s: s.position,
                      finite=finite, energy=lambda s: s.nll, diagnose=diagnose)


def step_stats(target: Target, center, step_size: float):
    """The per-step records of a Langevin kernel's state: ``step_size`` and, with a center,
    ``sq_distance`` = ‖w − center‖², a slow observable for mixing checks (cheap: O(d))."""

    def stats(state):
        out = {"step_size": jnp.asarray(step_size, state.nll.dtype)}
        if center is not None:
            out["sq_distance"] = sq_distance(target.to_constrained(state.position), center)
        return out

    return stats


def minibatch_gradient_variance(target: Target, u, beta, batch_size: int, key, *,
                                reference=None, num_examples: int = NOISE_EXAMPLES, chunk: int = 16):
    """Per-coordinate variance of SGLD's minibatch gradient of βĤ_B at ``u`` (flat array).

    With B examples drawn uniformly with replacement, Var(∇βĤ_B) = Var_i(βn∇ℓ_i)/B exactly;
    Var_i is estimated (unbiased) from ``num_examples`` random examples, their per-example
    gradients taken ``chunk`` at a time (memory chunk·d, not n·d). With a ``reference`` point u*
    (SGLD-CV), the variance is that of the control-variated gradient: Var_i(βn(∇ℓ_i(u) −
    ∇ℓ_i(u*)))/B. With B = n every example is used once (:func:`batch_indices`), and a population
    target's gradients are exact: the variance is then 0."""
    n = target.n
    if batch_size == n or target.is_population:
        return jnp.zeros_like(ravel_pytree(u)[0])

    def example_grad_at(v, i):  # ∇_v βnℓ_i: the prior, localization and Jacobian terms are exact
        g = jax.grad(lambda x: beta * target.nll_batch(target.to_constrained(x), i[None]))(v)
        return ravel_pytree(g)[0]

    if reference is None:
        example_grad = lambda i: example_grad_at(u, i)
    else:
        example_grad = lambda i: example_grad_at(u, i) - example_grad_at(reference, i)

    idx = jax.random.randint(key, (num_examples // chunk, chunk), 0, n)
    ref = example_grad(idx[0, 0])  # a shift against cancellation in Σg² − (Σg)²/m

    def add(acc, ids):
        g = jax.vmap(example_grad)(ids) - ref
        return (acc[0] + g.sum(0), acc[1] + (g**2).sum(0)), None

    (s1, s2), _ = jax.lax.scan(add, (jnp.zeros_like(ref), jnp.zeros_like(ref)), idx)
    m = idx.size
    return jnp.maximum(s2 - s1**2 / m, 0.0) / (m - 1) / batch_size


def curvature_trace(target: Target, u, beta, batch_size: int, key, weights):
    """Hutchinson estimate of tr(diag(weights) ∇²βH) at ``u`` (unconstrained space): one
    Rademacher probe through the Hessian of a random minibatch's βĤ_B (unbiased for ∇²βH)."""
    k_idx, k_z = jax.random.split(key)
    idx = jax.random.randint(k_idx, (batch_size,), 0, target.n)
    flat, unravel = ravel_pytree(u)
    energy = lambda x: beta * target.nll_batch(target.to_constrained(unravel(x)), idx)
    z = jax.random.rademacher(k_z, flat.shape, flat.dtype)
    hz = jax.jvp(jax.grad(energy), (flat,), (z,))[1]
    return jnp.sum(weights * z * hz)


def sample_sgld(
    target: Target,
    betas,
    *,
    step_size: float,
    key,
    num_steps: int | None = None,
    num_burnin: int | None = None,
    batch_size: int,
    options: RunOptions | None = None,
    num_chains: int | None = None,
    center=None,
    gamma: float = 0.0,
    preconditioner: str | None = None,
    control_variate: bool = False,
    thinning: int | None = None,
    eval_full_nll_every: int | None = None,
    keep_params: bool | None = None,
    init=None,
    rmsprop_decay: float = 0.99,
    rmsprop_eps: float = 1e-8,
    progress: bool | None = None,
    chunk_size: int | None = None,
    devices=None,
    diagnose_every: int | None = None,
    friction: float | None = None,
) -> Samples:
    """SGLD on p^β(w) ∝ φ(w) e^{−βnL_n(w)} (× e^{−γ/2‖w − center‖²}) at every β, vmapped chains.

    ``num_steps`` counts every SGLD step, the first ``num_burnin`` of which are discarded; a draw
    is recorded every ``thinning`` steps after that. ``nll`` in the result is:

    - with ``eval_full_nll_every=None`` (default): the minibatch estimate Ĥ_B of nL_n from the
      gradient pass of the recorded step, i.e. at the point that step started from (unbiased,
      noisier; what devinterp averages), costing nothing extra. With a ``center`` w* (and data,
      not a population target) it is control-variated: Ĥ_B(w) − Ĥ_B(w*) + nL_n(w*) on the same
      minibatch, the per-example losses at w* computed once. Same mean, far less noise, since
      the losses at w and w* nearly cancel example by example (on noisy data the raw Ĥ_B's
      minibatch noise dominates the LLC's standard error and hides drifts);
    - with ``eval_full_nll_every=k``: the full-data nL_n, evaluated every k-th step (a draw is
      recorded every k steps; ``thinning`` must then be 1).

    Every k-th recorded draw, counted back from the last one (k = ``diagnose_every``), also gets
    ``mala_accept``: the probability that exact MALA would accept a Langevin move of this ε from
    that point under the full-data tempered (localized) density, the discretization diagnostic;
    NaN at the other draws (average it with ``np.nanmean``). One check costs two full-data
    gradient passes, nominally 2n/B minibatch steps (2 for population targets), plus 64
    per-example gradients and one minibatch Hessian-vector product for the bias prediction, so
    ``diagnose_every=1`` on a large dataset makes the run many times slower. The default k gives
    K = min(50, max(1, ⌊num_steps / (4 · 2n/B)⌋)) checks per chain: at most 50, and at most a
    quarter of the nominal cost of the SGLD steps (in practice far less: the full-data passes
    vectorize better than minibatch steps), but at least one. The checks draw their random
    numbers apart from the chains': k changes neither the chains nor the values at the draws it
    keeps.

    ``preconditioner="rmsprop"`` adapts a diagonal preconditioner G (module docstring) during the
    ``num_burnin`` steps and holds it fixed afterwards, so the draws target p^β exactly (up to
    O(ε)); its ε is on another scale than plain SGLD's (G ~ 1/√curvature). ``"rmsprop_adaptive"``
    keeps adapting (pSGLD, as devinterp does): biased, for comparisons only.

    The checked draws also get ``minibatch_excess`` and ``discretization_excess``: SGLD's
    predicted first-order excess of E[βH] over its exact value from minibatch noise and from
    the discretization (module docstring; averaged, they are the ε-bias of E[βH]).

    ``control_variate=True`` (SGLD-CV, Baker et al. 2019; needs a ``center`` w* and data) replaces
    the minibatch gradient of H by ∇Ĥ_B(w) − ∇Ĥ_B(w*) + ∇H(w*) (∇H(w*) on the full data, once):
    the same mean, but its noise shrinks with ‖w − w*‖ instead of staying at the per-example
    gradients' spread at w*, which is what heats SGLD on noisy data (the ``minibatch_excess``,
    there ~nβ/B times the discretization part). Costs a second minibatch gradient per step.

    ``friction=c`` runs underdamped Langevin dynamics instead (SGHMC in the BAOAB splitting,
    :mod:`~slt_thermo.samplers.underdamped`): a unit-mass momentum with friction c, time step
    √ε. Flat directions of curvature k then relax in ~√(κ/k) steps instead of ~κ/k (κ the largest
    curvature); c ≈ 2√k of the flattest direction is critical damping there. No preconditioner.

    With a ``center``, every draw also records ``sq_distance`` = ‖w − center‖², a slow observable
    (it follows the flat directions that the minibatch nll hardly sees), for mixing checks.
    """
    real_number(step_size, "step_size")
    options = RunOptions.merge(options, num_chains=num_chains, thinning=thinning,
                               keep_params=keep_params, init=init, progress=progress,
                               chunk_size=chunk_size, devices=devices)
    if num_burnin is None:  # burn-in from the options' warm-up
        num_burnin = options.num_warmup
    if num_steps is None and num_burnin is not None and options.num_samples is not None:
        num_steps = num_burnin + options.num_samples * max(options.thinning, 1)
    if num_steps is None or num_burnin is None:
        raise InvalidArgumentError(
            "give `num_steps` and `num_burnin` (or RunOptions num_warmup = burn-in and num_samples)")
    num_steps = positive_int(num_steps, "num_steps")
    num_burnin = positive_int(num_burnin, "num_burnin", 0)
    if num_burnin >= num_steps:
        raise InvalidArgumentError(
            f"`num_burnin` ({num_burnin}) must be smaller than `num_steps` ({num_steps}): "
            "num_steps counts every step, burn-in included"
        )
    batch_size = positive_int(batch_size, "batch_size")
    if batch_size > target.n and not target.is_population:
        raise InvalidArgumentError(f"`batch_size` ({batch_size}) exceeds the dataset size n = {target.n}")
    if preconditioner not in PRECONDITIONERS:
        raise InvalidArgumentError(f"`preconditioner` must be one of {PRECONDITIONERS}, got {preconditioner!r}")
    if control_variate and (center is None or target.is_population):
        raise InvalidArgumentError(
            "`control_variate=True` control-variates the minibatch gradient at `center`: pass "
            "center=w_star, on a data target (population targets have no minibatch noise)")
    thinning = options.thinning
    if eval_full_nll_every is not None:
        eval_full_nll_every = positive_int(eval_full_nll_every, "eval_full_nll_every")
        if thinning != 1:
            raise InvalidArgumentError("give either `thinning` or `eval_full_nll_every`, not both")
        thinning = eval_full_nll_every
    thinning = positive_int(thinning, "thinning")
    num_samples = (num_steps - num_burnin) // thinning
    if num_samples < 1:
        raise InvalidArgumentError(
            f"no draws: (num_steps − num_burnin) // thinning = {num_samples}; take more steps"
        )
    if diagnose_every is None:
        cost = 2.0 if target.is_population else 2.0 * target.n / batch_size  # in SGLD steps
        checks = int(min(NUM_DIAGNOSTICS, max(1, DIAGNOSTIC_BUDGET * num_steps / cost)))
        diagnose_every = max(1, math.ceil(num_samples / checks))
    diagnose_every = positive_int(diagnose_every, "diagnose_every")
    adapt_steps = num_burnin if preconditioner == "rmsprop" else None
    if friction is None:
        config = SGLDConfig(float(step_size), batch_size, preconditioner, float(rmsprop_decay),
                            float(rmsprop_eps), eval_full_nll_every is not None, adapt_steps,
                            bool(control_variate))
    else:
        real_number(friction, "friction")
        if preconditioner is not None:
            raise InvalidArgumentError("`friction` (underdamped dynamics) takes no `preconditioner`")
        config = UnderdampedConfig(float(step_size), batch_size, float(friction),
                                   eval_full_nll_every is not None, bool(control_variate))
    options = options.replace(num_warmup=num_burnin, num_samples=num_samples, thinning=thinning,
                              keep_pointwise=False)
    return run(
        config, target, betas, options, key=key, center=center, gamma=gamma, sampler="sgld",
        kernel_energy=not config.full_nll, diagnose_every=diagnose_every,
        attrs={"step_size": step_size, "batch_size": batch_size,
               "preconditioner": preconditioner or "none", "control_variate": bool(control_variate),
               "nll_kind": "full" if config.full_nll else "minibatch", "num_steps": num_steps,
               "num_burnin": num_burnin, "diagnose_every": diagnose_every,
               "friction": "none" if friction is None else float(friction)},
    )
