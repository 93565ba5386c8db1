"""TherML's σ = 0 points: the parameters minimizing ρR + δD + γC, one optax run per objective,
vmapped over objectives (Alemi & Fischer's Figs. 3–8: VIB, autoencoders, VAE, β-VAE, the
semi-supervised VAE). σ > 0 is sampling (:func:`~slt_thermo.therml.posterior`), not this."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._target_inputs import check_key
from .._utils import positive_int
from ..errors import InvalidArgumentError
from .model import Model
from .posterior import _check_data, multipliers

# the σ = 0 objectives of the paper's gallery as (ρ, δ, γ); names as in its figures
OBJECTIVES = {
    "vib": (0.1, 0.0, 1.0),            # variational information bottleneck: ρR + C
    "autoencoder": (0.0, 1.0, 0.0),    # deterministic autoencoder: D alone
    "vae": (1.0, 1.0, 0.0),            # R + D
    "beta_vae": (0.5, 1.0, 0.0),       # β-VAE with β = 0.5: βR + D
    "ssvae": (1.0, 1.0, 1.0),          # semi-supervised VAE: R + D + C
}


class Optimized(NamedTuple):
    """Minimizers of ρR + δD + γC per objective: ``params`` (a pytree with a leading objective
    axis), ``names``, ``multipliers`` (K, 3) as (ρ, δ, γ), the final ``R``, ``D``, ``C`` (K,) on
    the training data and the ``loss`` trace (num_steps, K)."""

    params: dict
    names: tuple
    multipliers: np.ndarray
    R: np.ndarray
    D: np.ndarray
    C: np.ndarray
    loss: np.ndarray


def optimize(model: Model | None, data, objectives=None, *, key, num_steps: int = 5000,
             learning_rate: float = 0.01) -> Optimized:
    """Minimize ρR + δD + γC (σ = 0) with Adam for each objective at once (vmapped; the
    multipliers are traced, so one compile serves every objective). ``objectives``: names of
    :data:`OBJECTIVES` or a dict name -> (ρ, δ, γ) (default: all of :data:`OBJECTIVES`). Every
    objective starts from the same draw of the model's ``init``."""
    import optax

    model = Model() if model is None else model
    data = _check_data(data)
    check_key(key)
    num_steps = positive_int(num_steps, "num_steps")
    if objectives is None:
        objectives = OBJECTIVES
    if not isinstance(objectives, dict):
        unknown = [o for o in objectives if o not in OBJECTIVES]
        if unknown:
            raise InvalidArgumentError(f"unknown objective(s) {unknown}; known: {sorted(OBJECTIVES)}")
        objectives = {o: OBJECTIVES[o] for o in objectives}
    names = tuple(objectives)
    mult = np.array([[multipliers(*objectives[k])[m] for m in ("rho", "delta", "gamma")] for k in names],
                    np.float32)
    opt = optax.adam(learning_rate)
    jdata = jax.tree_util.tree_map(jnp.asarray, data)

    def loss(params, m):
        f = model.functionals(params, jdata)
        return m[0] * f["R"].sum() + m[1] * f["D"].sum() + m[2] * f["C"].sum()

    def one(m):
        p0 = model.init(key)

        def step(carry, _):
            p, s = carry
            value, g = jax.value_and_grad(loss)(p, m)
            updates, s = opt.update(g, s, p)
            return (optax.apply_updates(p, updates), s), value

        (p, _), trace = jax.lax.scan(step, (p0, opt.init(p0)), None, length=num_steps)
        return p, trace

    params, trace = jax.jit(jax.vmap(one))(jnp.asarray(mult))
    f = jax.vmap(lambda p: {k: v.sum() for k, v in model.functionals(p, jdata).items()})(params)
    return Optimized(params=params, names=names, multipliers=mult, R=np.asarray(f["R"]),
                     D=np.asarray(f["D"]), C=np.asarray(f["C"]), loss=np.asarray(trace).T)
