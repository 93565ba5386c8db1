"""Minibatch gradients of the tempered log density, and control variates for them.

The pieces every stochastic-gradient method needs (SGLD samples with them; SGD trains with them),
kept apart from any one algorithm, in the style of blackjax's ``sgmcmc/gradients.py``: small pure
functions of a :class:`~slt_thermo.Target` that return *gradient functions* with one signature,

    grad_fn(u, beta, idx) -> ((logp, nll), grad)

``u`` a position in the sampler's unconstrained space (a params pytree), β traced, ``idx`` the
minibatch's example indices (shape (B,), drawn by the caller); ``logp`` the minibatch estimate of
the tempered (localized) log density log φ − βĤ_B − (γ/2)‖w − w*‖² + log|J| at ``u``, ``nll`` the
minibatch energy Ĥ_B(w) = (n/B) Σ_{i∈B} −log p(y_i|x_i, w), ``grad`` = ∇_u logp, a pytree
shaped like ``u``. Population targets ignore ``idx`` (their H is exact). Wrappers
(:func:`control_variates`) take a grad_fn and return one, so they compose.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from ..target import Target

GradFn = Callable  # (u, beta, idx) -> ((logp, nll), grad)


def grad_estimator(target: Target, center=None, gamma=0.0) -> GradFn:
    """The plain minibatch gradient estimator of the tempered (localized) log density.

    Returns ``grad_fn(u, beta, idx) -> ((logp, nll), grad)`` (module docstring) with ``grad`` =
    ∇_u [log φ(w) − β Ĥ_B(w) − (γ/2)‖w − center‖² + log|∂w/∂u|], w = ``target.to_constrained(u)``:
    the prior, localization and Jacobian terms exact, the energy H = nL_n replaced by its
    unbiased minibatch estimate Ĥ_B over the examples ``idx`` (Robbins & Monro 1951; Welling &
    Teh 2011). Unbiased for the full-data gradient when ``idx`` is drawn uniformly (with
    replacement), exact when ``idx`` covers every example once. ``center`` (model space) and
    ``gamma`` localize as in :meth:`Target.log_density`; both may be traced. ``nll`` comes with
    the gradient for free (the same forward pass), so samplers can record it.
    """

    def logdensity(u, beta, idx):
        nll = target.nll_batch(target.to_constrained(u), idx)
        return target.log_density_unconstrained(u, beta, center, gamma, idx), nll

    return jax.value_and_grad(logdensity, has_aux=True)


def chain_gradients(target: Target, center=None, gamma=0.0, control_variate: bool = False):
    """What a stochastic-gradient Langevin kernel needs: (``grad_fn`` of :func:`grad_estimator`,
    control-variated at the center with ``control_variate`` (SGLD-CV); ``recorded_nll`` of
    :func:`nll_control_variate`; the center in unconstrained space, or None without a control
    variate)."""
    grad_fn, u_star = grad_estimator(target, center, gamma), None
    if control_variate:  # SGLD-CV (Baker et al. 2019), see control_variates
        u_star = target.to_unconstrained(center)
        grad_fn = control_variates(grad_fn, target, u_star)
    return grad_fn, nll_control_variate(target, center), u_star


def batch_indices(key, n: int, batch_size: int, shape: tuple = ()):
    """Example indices of one gradient estimate, shaped ``shape + (batch_size,)``: every example
    once when ``batch_size`` = n (the exact full-data gradient, no noise), else drawn uniformly
    with replacement (unbiased). Drawing n examples with replacement would leave a bootstrap's
    gradient noise — n·Var_i(∇ℓ_i) per step — on a run that asked for full data."""
    if batch_size == n:
        return jnp.broadcast_to(jnp.arange(n), shape + (n,))
    return jax.random.randint(key, shape + (batch_size,), 0, n)


def full_nll_grad(target: Target, u):
    """∇_u H at ``u`` on the full data (H = nL_n, the untempered energy; no prior, no
    localization): one full-data gradient pass, what a control variate pays once at its
    reference point."""
    return jax.grad(lambda v: target.nll(target.to_constrained(v)))(u)


def control_variates(grad_fn: GradFn, target: Target, reference) -> GradFn:
    """Wrap ``grad_fn`` with the control variate of SGLD-CV (Baker, Fearnhead, Fox & Nemeth 2019).

    ``reference`` is the point u* in the unconstrained space (``target.to_unconstrained(w_star)``,
    typically a mode or the LLC's center). The returned grad_fn gives

        ∇βĤ_B(u) − β∇Ĥ_B(u*) + β∇H(u*)      (plus the exact prior / localization / Jacobian terms)

    on the same minibatch ``idx``, with ∇H(u*) on the full data computed once, when the wrapper is
    built. It has the plain estimator's mean (the two middle terms cancel in expectation), but its
    noise comes from the per-example differences ∇ℓ_i(u) − ∇ℓ_i(u*), which vanish as u → u*: near
    the reference the minibatch noise shrinks with the distance instead of staying at the spread
    of the per-example gradients at u* (what heats SGLD on noisy data). At u = u* the estimate is
    the full-data gradient exactly. Costs one more minibatch gradient per call. ``logp`` and
    ``nll`` are passed through from ``grad_fn`` unchanged (see :func:`nll_control_variate` for
    the energy's own control variate).
    """
    nll_at = lambda v, idx: target.nll_batch(target.to_constrained(v), idx)
    batch_nll_grad = jax.grad(nll_at)
    full_grad_star = full_nll_grad(target, reference)

    def cv_grad_fn(u, beta, idx):
        (logp, nll), g = grad_fn(u, beta, idx)
        g_star = batch_nll_grad(reference, idx)
        g = jax.tree_util.tree_map(lambda a, b, c: a + beta * (b - c), g, g_star, full_grad_star)
        return (logp, nll), g

    return cv_grad_fn


def nll_control_variate(target: Target, center) -> Callable:
    """The control variate of the minibatch energy at ``center`` w* (model space):
    ``fn(nll, idx) -> Ĥ_B(w) − Ĥ_B(w*) + H(w*)``, given Ĥ_B(w) = ``nll`` on the minibatch ``idx``.

    Same mean as Ĥ_B(w), far less noise near w*, since the per-example losses at w and w* nearly
    cancel example by example; Ĥ_B(w*) is a gather from the per-example losses at w*, computed
    once (n values). With no ``center``, or a population target (exact H, no minibatch noise),
    ``fn`` returns ``nll`` unchanged."""
    if center is None or target.is_population:
        return lambda nll, idx: nll
    n = target.n
    nll_center_i = -target.log_likelihood(center)  # (n,)
    nll_center = jnp.sum(nll_center_i)

    def fn(nll, idx):
        return nll - (n / idx.shape[0]) * jnp.sum(nll_center_i[idx]) + nll_center

    return fn
