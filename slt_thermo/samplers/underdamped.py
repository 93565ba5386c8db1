"""Stochastic-gradient underdamped Langevin dynamics (SGHMC, Chen, Fox & Guestrin 2014), in the
BAOAB splitting of Leimkuhler & Matthews (2013): ``sample_sgld(..., friction=c)``.

The state carries a momentum p (unit mass) beside the position u. With time step h = √ε (ε is
SGLD's step size: one BAOAB step from p = 0 moves u by (ε/2)∇log p, as one SGLD step does) and
a = e^{−ch}, one step is

    p ← p + (h/2) ĝ(u);  u ← u + (h/2) p;  p ← a·p + √(1 − a²)·ξ;  u ← u + (h/2) p;
    p ← p + (h/2) ĝ(u),

ĝ the minibatch (or full-data) gradient of the tempered, localized log density, one gradient pass
per step (the last kick's gradient is the next step's first).

Why: overdamped Langevin (SGLD) relaxes a direction of curvature k in ~κ/k steps, κ the largest
curvature (which caps ε at ~1/κ), so the flat directions of a singular model's localized
posterior take ~κ/γ steps (10⁵–10⁶ on modest deep linear networks). Underdamped dynamics with a
friction near critical for the flattest direction, c ≈ 2√k_min, relax them in ~√(κ/k_min)
steps. And BAOAB samples the position marginal of a quadratic potential *exactly* at every
stable step (h√κ < 2), so λ̂ — a function of positions only — carries no first-order
discretization bias (``discretization_excess`` is recorded as 0; the MALA check at ε = h² still
scores the step on the full, non-quadratic density).

Minibatch gradient noise (covariance C) enters the momentum as a kick h·noise per step and is
dissipated at rate 2ch per step: the momentum's temperature rises by h·C/(2c) per coordinate,
and E[βH] by ≈ h·tr(C)/(4c) (``minibatch_excess``) — 2/(ch) times SGLD's (ε/8)·tr(C) at the same
ε. Underdamped dynamics therefore want full-data gradients (``st.llc``'s default) or a control
variate. blackjax's ``sghmc`` is the Euler scheme, refreshes the momentum at every call and
knows nothing of the localization, the records or the MALA check, so this kernel is written
here on the same gradient estimators as SGLD.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..target import Target
from .gradients import batch_indices, chain_gradients
from .mala import langevin_acceptance
from .run import Kernel, all_finite


class UnderdampedState(NamedTuple):
    position: object  # unconstrained params pytree
    momentum: object  # shaped like position (unit mass)
    grad: object  # ∇ log p̂ at position (the minibatch of the last kick)
    nll: jax.Array  # minibatch estimate of H at `position`
    finite: jax.Array


class UnderdampedConfig(NamedTuple):
    step_size: float  # ε = h²
    batch_size: int
    friction: float  # c
    full_nll: bool
    control_variate: bool = False

    def build(self, target: Target, center, gamma) -> Kernel:
        from .sgld import _normal_like, minibatch_gradient_variance, step_stats  # sgld imports this module

        n, B = target.n, self.batch_size
        h = math.sqrt(self.step_size)
        a = math.exp(-self.friction * h)
        kick = jax.tree_util.tree_map
        grad_fn, recorded_nll, u_star = chain_gradients(target, center, gamma, self.control_variate)
        stats = step_stats(target, center, self.step_size)

        def gradient(key, u, beta):
            idx = batch_indices(key, n, B)
            (logp, nll), g = grad_fn(u, beta, idx)
            return logp, recorded_nll(nll, idx), g

        def init(key, u, beta):
            k_grad, k_p = jax.random.split(key)
            _, nll, g = gradient(k_grad, u, beta)
            return UnderdampedState(u, _normal_like(k_p, u), g, nll, jnp.isfinite(nll))

        def step(key, state, beta):
            k_batch, k_noise = jax.random.split(key)
            p = kick(lambda p, g: p + 0.5 * h * g, state.momentum, state.grad)  # B
            u = kick(lambda u, p: u + 0.5 * h * p, state.position, p)  # A
            p = kick(lambda p, z: a * p + math.sqrt(1 - a * a) * z, p, _normal_like(k_noise, p))  # O
            u = kick(lambda u, p: u + 0.5 * h * p, u, p)  # A
            logp, nll, g = gradient(k_batch, u, beta)
            p = kick(lambda p, g: p + 0.5 * h * g, p, g)  # B
            ok = state.finite & all_finite(logp, (u, p))
            new = UnderdampedState(u, p, g, nll, ok)
            return new, stats(new)

        def diagnose(key, state, beta):  # the MALA check of a Langevin move of ε = h², full data
            fn = lambda u: target.log_density_unconstrained(u, beta, center, gamma)
            out = {"mala_accept": langevin_acceptance(key, fn, state.position, self.step_size)}
            var = minibatch_gradient_variance(target, state.position, beta, B, jax.random.fold_in(key, 1),
                                              reference=u_star)
            out["minibatch_excess"] = h / (4 * self.friction) * jnp.sum(var)
            out["discretization_excess"] = jnp.zeros((), state.nll.dtype)  # BAOAB: exact on quadratics
            return out

        return Kernel(init=init, step=step, position=lambda s: s.position, finite=lambda s: s.finite,
                      energy=lambda s: s.nll, diagnose=diagnose)
