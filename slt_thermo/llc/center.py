"""The centre w* of an LLC estimate: its checks, and the minimum of L_n nearest to it.

The LLC (Lau et al.) assumes w* is a local minimum of L_n. A true parameter on finite data is
not one: λ̂(w*) is then lowered by about β·ΔH, ΔH = nL_n(w*) − nL_n(ŵ) with ŵ the minimum
L-BFGS reaches from w* (:func:`nearest_minimum`); :func:`~slt_thermo.llc` reports λ̂ + β·ΔH
beside λ̂.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InvalidArgumentError

# nearest_minimum skips models with more parameters than this (L-BFGS in float64 on the host)
NEAREST_MINIMUM_MAX_PARAMS = 100_000


def check_center(target, center):
    """``center`` as a float32 pytree, checked to be an interior point of the model with a finite
    nL_n. Raises :class:`InvalidArgumentError` saying which check failed."""
    try:
        center = jax.tree_util.tree_map(lambda x: np.asarray(x, dtype=np.float32), center)
        lp = float(target.log_prior(center))
        h = float(target.nll(center))
        u = target.to_unconstrained(center)
        inside = all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree_util.tree_leaves(u))
    except Exception as err:
        raise InvalidArgumentError(f"`center` does not fit the model: {type(err).__name__}: {err}") from err
    if not (math.isfinite(lp) and inside):
        raise InvalidArgumentError(
            "`center` is not inside the prior's support (on its boundary the sampler's unconstrained "
            "coordinates are infinite); the LLC needs an interior point")
    if not math.isfinite(h):
        raise InvalidArgumentError("`center` has a non-finite nL_n; it must be a point of the model")
    return center


def nearest_minimum(target, center, *, maxiter: int = 300) -> dict | None:
    """{nll_min, delta, iterations, params} at ŵ, the minimum of nL_n that L-BFGS reaches from w*
    (``params``: ŵ in model space; w* itself when L-BFGS did not get below nL_n(w*)).

    ``delta`` = ΔH = nL_n(w*) − nL_n(ŵ) ≥ 0. None when the model has more than
    NEAREST_MINIMUM_MAX_PARAMS parameters, for population targets (nK(w) has its minimum at the
    true parameter), or when the optimizer meets non-finite values.
    """
    from jax.flatten_util import ravel_pytree
    from scipy.optimize import minimize

    if getattr(target, "is_population", False):
        return None
    flat, unravel = ravel_pytree(target.to_unconstrained(center))
    if flat.size > NEAREST_MINIMUM_MAX_PARAMS:
        return None
    vg = jax.jit(jax.value_and_grad(lambda tg, v: tg.nll(tg.to_constrained(unravel(v))), argnums=1))

    def fun(v):
        val, g = vg(target, jnp.asarray(v, flat.dtype))
        return float(val), np.asarray(g, dtype=float)

    h0 = float(target.nll(center))
    try:
        with np.errstate(all="ignore"):
            # start a hair off w*: at a saddle of L_n (∇L_n(w*) = 0, e.g. w* = 0 in a tanh net) L-BFGS
            # would not move at all
            start = np.asarray(flat, dtype=float) + 1e-3 * np.random.default_rng(0).standard_normal(flat.size)
            r = minimize(fun, start, jac=True, method="L-BFGS-B",
                         options={"maxiter": maxiter, "gtol": 1e-12, "ftol": 1e-15})
        h = float(r.fun)
    except Exception:  # the user's likelihood failed off w*: no answer rather than no estimate
        return None
    if not (np.all(np.isfinite(r.jac)) and math.isfinite(h)):  # e.g. NaN gradients of w**k at w = 0
        return None
    w_hat = target.to_constrained(unravel(jnp.asarray(r.x, flat.dtype))) if h < h0 else center
    h = min(h, h0)
    return {"nll_min": h, "delta": h0 - h, "iterations": int(r.nit), "params": w_hat}
