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
START_SCALES = (1e-3, 1e-2, 1e-1)  # nearest_minimum's starts: w* + scale·N(0, I)


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


def nearest_minimum(target, center, *, maxiter: int = 2000) -> dict | None:
    """{nll_min, delta, iterations, params} at ŵ, the lowest minimum of nL_n that L-BFGS reaches
    from w* perturbed by each of START_SCALES (``params``: ŵ in model space; w* itself when
    L-BFGS did not get below nL_n(w*); ``iterations`` summed over the starts).

    Several starts because a singular w* is a saddle of L_n's noise-fitting directions: from
    1e-3 off a true parameter with dead units, L-BFGS stalls where those units are still ~0
    (a deep linear net at n = 4e4: ΔH = 9.95 against the exact 25.35, which the 1e-2 start
    reaches); the largest start stays within the localization's reach (1/√γ ≥ 0.1 for γ ≤ 100).

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
    # nL_n(w) − nL_n(w*) as a sum of per-example differences: in float32, nL_n itself (~1e5 at
    # n = 1e4) rounds by ~1e-2, and L-BFGS's line search, fed those, stopped after a few steps
    # with ΔH a third of the true one (deep linear nets, where the minimum is known exactly)
    ll0 = target.log_likelihood(center)
    vg = jax.jit(jax.value_and_grad(
        lambda tg, v: jnp.sum(ll0 - tg.log_likelihood(tg.to_constrained(unravel(v)))), argnums=1))

    def fun(v):
        val, g = vg(target, jnp.asarray(v, flat.dtype))
        return float(val), np.asarray(g, dtype=float)

    r, iterations = None, 0  # fun is nL_n(w) − nL_n(w*): 0 at w*
    noise = np.random.default_rng(0).standard_normal(flat.size)
    for scale in START_SCALES:
        try:
            with np.errstate(all="ignore"):
                start = np.asarray(flat, dtype=float) + scale * noise
                ri = minimize(fun, start, jac=True, method="L-BFGS-B",
                              options={"maxiter": maxiter, "gtol": 1e-12, "ftol": 1e-15})
        except Exception:  # the user's likelihood failed off w*: no answer rather than no estimate
            return None
        if not (np.all(np.isfinite(ri.jac)) and math.isfinite(float(ri.fun))):  # e.g. NaN gradients of w**k at w = 0
            return None
        iterations += int(ri.nit)
        r = ri if r is None or ri.fun < r.fun else r
    delta = max(-float(r.fun), 0.0)
    w_hat = target.to_constrained(unravel(jnp.asarray(r.x, flat.dtype))) if delta > 0 else center
    return {"nll_min": -float(jnp.sum(ll0)) - delta, "delta": delta, "iterations": iterations,
            "params": w_hat}
