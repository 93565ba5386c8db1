"""Iso-classification transfer (Gao & Chaudhari 2020, §4, eq. 32) on TherML's model, at σ = 0.

A source task p^s(x, y) and a target task p^t(x, y) on the same inputs are joined by the
interpolation p(x, y; t) = (1 − t) p^s + t p^t (here: the two datasets concatenated, weighted
1 − t and t). Along t from 0 to 1 the multipliers move so that the equilibrium classification loss
C(λ, γ, t) stays where it started:

    λ̇ = k,    γ̇ = −(C_λ λ̇ + C_t) / C_γ        (so that Ċ = C_λ λ̇ + C_γ γ̇ + C_t = 0),

the derivatives of the equilibrium C by central differences (θ re-equilibrated at λe^{±h}, γe^{±h} and
t ± h, the latter clipped to [0, 1]), each move followed by equilibration with Adam under the
schedule η(s) = η_max (s/T)²(1 − s/T)^5. Beside it, for comparison: *fine-tuning* along the same
path of tasks with the multipliers held at their start (the representation simply follows the
data), and *training from scratch* on the target task.

The toy's two tasks (:func:`tasks`), on Appendix B's 30 input bins with its noise s and class
balance P(y = 1) = 0.7: the *source* has its class means at μ = (−3, −1) (the toy moved two units
left: the boundary at h = −2, label 1 to its right), the *target* is its mirror image, μ = (3, 1)
(boundary at h = +2, label 1 to its left). Each has I(x; y) = 0.5 nats, and both label the middle of
the range 1, so no mixture of them disagrees about a label: the Bayes classification loss
n·H(y|x; t) is the same at every t (5.54 nats at n = 50), and holding C constant is feasible. The
encoder must move its split from h = −2 to h = +2. (A pair whose labels conflict where their
inputs overlap, e.g. means shifted by one unit, has a Bayes loss that rises by ~90% mid-way: no
process can hold C there, and the transfer's γ runs away.)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from .._target_inputs import check_key
from .._utils import positive_int
from ..errors import InvalidArgumentError
from .iso import _check_numbers, _descend, _equilibrate
from .model import Model
from .posterior import _check_data
from .toy import TRANSFER_MU, Toy, toy


def tasks(n: int = 50, *, key, infinite: bool = True) -> tuple[dict, dict, Toy, Toy]:
    """The toy's source and target tasks (module docstring) as (source data, target data, source
    Toy, target Toy). ``infinite``: the data are the infinite-data variants (60 cells weighted by
    n·p(x, y): deterministic, the default); else n i.i.d. pairs of each."""
    k_s, k_t = jax.random.split(key)
    src, tgt = toy(n, key=k_s, mu=TRANSFER_MU["source"]), toy(n, key=k_t, mu=TRANSFER_MU["target"])
    if infinite:
        return src.infinite_data(), tgt.infinite_data(), src, tgt
    return src.data, tgt.data, src, tgt


def interpolate(source, target, t: float) -> dict:
    """The dataset of p(x, y; t) = (1 − t)p^s + t p^t: both datasets, weighted 1 − t and t."""
    s, g = _check_data(source), _check_data(target)
    return {"x": np.concatenate([s["x"], g["x"]]), "y": np.concatenate([s["y"], g["y"]]),
            "weight": np.concatenate([(1 - t) * s["weight"], t * g["weight"]]).astype(np.float32)}


def _objective(model, source, target):
    """values(params, λ, γ, t) -> (R + λD + γC, {R, D, C}) on the interpolated task at t (traced)."""
    both = interpolate(source, target, 0.0)
    x, y = jnp.asarray(both["x"]), jnp.asarray(both["y"])
    ns = len(source["x"])
    w_s = jnp.asarray(np.concatenate([source["weight"], np.zeros(len(target["x"]))]), jnp.float32)
    w_t = jnp.asarray(np.concatenate([np.zeros(ns), target["weight"]]), jnp.float32)

    def data_at(t):
        return {"x": x, "y": y, "weight": (1 - t) * w_s + t * w_t}

    def values(params, lm, gm, t):
        f = {k: v.sum() for k, v in model.functionals(params, data_at(t)).items()}
        return f["R"] + lm * f["D"] + gm * f["C"], f

    return values, data_at


class Transfer(NamedTuple):
    """An iso-classification transfer. ``table`` over ``step`` (N + 1 rows, t = 0 first): ``t``,
    ``lam``, ``gam``, ``R``, ``D``, ``C``, ``F`` and ``accuracy`` (on the task at t) and
    ``accuracy_target`` of the transfer; the derivatives ``dC_dlam``, ``dC_dgam``, ``dC_dt``; ``capped``
    (1 where a γ step had to be capped, see :func:`iso_transfer`);
    fine-tuning's ``C_finetune``, ``accuracy_finetune``, ``accuracy_target_finetune`` (the
    multipliers held at the start). attrs: ``C_eq_err`` (how far one more equilibration at the
    end still moves C), ``scratch_C``, ``scratch_accuracy`` (training from scratch on the target
    at the final multipliers) and ``scratch_C_start``, ``scratch_accuracy_start`` (at the start's
    multipliers), ``k``, ``h``, ``equilibration``, ``eta_max``. ``params``: the final θ."""

    table: xr.Dataset
    params: dict


def _capped(gam, new, dc_dgam):
    """``new`` γ clipped to [γ/2, 2γ] (and ``gam`` itself where C_γ ≥ 0 or ``new`` is not finite),
    with a flag saying whether it had to be."""
    ok = (dc_dgam < 0) & jnp.isfinite(new)
    clipped = jnp.where(ok, jnp.clip(new, gam / 2, 2 * gam), gam)
    return clipped, ~ok | (clipped != new)


def iso_transfer(model: Model | None, source, target, *, lam: float, gam: float, key, num_steps: int = 20,
                 k: float = 0.0, h: float = 0.05, equilibration: int = 500, eta_max: float = 2.0,
                 correct: bool = True, init=None, init_steps: int = 4000) -> Transfer:
    """Transfer from ``source`` to ``target`` (datasets ``{"x", "y", "weight"}`` on the same inputs)
    in ``num_steps`` steps of t, keeping the equilibrium C constant (module docstring), starting at
    (λ, γ) = (``lam``, ``gam``) with θ from ``init`` or ``init_steps`` of Adam on the source; ``k``
    is λ̇ (per unit t). Returns a :class:`Transfer` with fine-tuning and training from scratch
    beside the transfer.

    ``correct`` (beyond the paper's Euler steps of eq. 32): after each step, one Newton step on γ
    back to the level set C = C(0), γ ← γ + (C(0) − C)/C_γ, and another equilibration. Euler's
    drift accumulates where the equilibrium C bends (a representation that reorganizes); the
    corrector keeps C where the process should hold it. A γ step that would leave [γ/2, 2γ], or a
    C_γ ≥ 0 (C no longer falls as γ grows: the step's finite differences straddle a change of
    representation), is capped to that range (``capped`` = 1 in the table): C is then not held
    at that step, and the table says so.

    Choose the start where C has room: near the model's best C (large γ) the equilibrium C
    flattens in γ, C_γ → 0 and γ has to run away to hold C; a negative ``k`` (distortion's
    weight falling) frees capacity for the new task and keeps γ's moves small."""
    model = Model() if model is None else model
    source, target = _check_data(source), _check_data(target)
    check_key(key)
    num_steps = positive_int(num_steps, "num_steps")
    equilibration = positive_int(equilibration, "equilibration", 10)
    init_steps = positive_int(init_steps, "init_steps", 1)
    _check_numbers(positive=("h", "eta_max"), signed=("k",), lam=lam, gam=gam, k=k, h=h, eta_max=eta_max)
    if lam <= 0 or gam <= 0 or h >= 0.5:
        raise InvalidArgumentError(f"`lam` and `gam` must be > 0 and `h` (a relative step) < 0.5, got {lam}, {gam}, {h}")
    values, data_at = _objective(model, source, target)
    eq = _equilibrate(values, equilibration, float(eta_max))
    settle = jax.jit(eq)
    train = jax.jit(_descend(optax.adam(0.01), values, init_steps))

    def settled(q, *m):  # one scheduled equilibration does not settle a fresh start
        for _ in range(3):
            q = settle(q, *m)
        return q

    lam0, gam0 = jnp.float32(lam), jnp.float32(gam)
    k_init, k_scratch = jax.random.split(key)
    p0 = train(model.init(k_init), lam0, gam0, 0.0) if init is None else jax.tree_util.tree_map(jnp.asarray, init)
    p0 = settled(p0, lam0, gam0, 0.0)
    dt = 1.0 / num_steps
    c0 = values(p0, lam0, gam0, 0.0)[1]["C"]

    def measure(p, lm, gm, t):
        F, f = values(p, lm, gm, t)
        acc = model.accuracy(p, data_at(t)), model.accuracy(p, data_at(1.0))
        return jnp.stack([f["R"], f["D"], f["C"], F, *acc])

    def one(carry, _):
        p, lm, gm, t = carry
        t_hi, t_lo = jnp.minimum(t + h, 1.0), jnp.maximum(t - h, 0.0)
        up, down = jnp.exp(h), jnp.exp(-h)  # relative steps: λ, γ stay > 0 and the step scales with them
        pts = jnp.stack([jnp.stack([lm * up, gm, t]), jnp.stack([lm * down, gm, t]), jnp.stack([lm, gm * up, t]),
                         jnp.stack([lm, gm * down, t]), jnp.stack([lm, gm, t_hi]), jnp.stack([lm, gm, t_lo])])
        ps = jax.vmap(eq, in_axes=(None, 0, 0, 0))(p, pts[:, 0], pts[:, 1], pts[:, 2])
        cs = jax.vmap(lambda q, a, b, c: values(q, a, b, c)[1]["C"])(ps, pts[:, 0], pts[:, 1], pts[:, 2])
        dl, dg = (cs[0] - cs[1]) / (lm * (up - down)), (cs[2] - cs[3]) / (gm * (up - down))
        dtc = (cs[4] - cs[5]) / (t_hi - t_lo)
        lm2, t2 = lm + k * dt, t + dt
        gm2, cap1 = _capped(gm, gm - (dl * k + dtc) / dg * dt, dg)
        p2 = eq(p, lm2, gm2, t2)
        cap2 = jnp.bool_(False)
        if correct:  # Newton on γ back to the level set C = C(0): removes the Euler steps' drift
            gm3, cap2 = _capped(gm2, gm2 + (c0 - values(p2, lm2, gm2, t2)[1]["C"]) / dg, dg)
            p2, gm2 = eq(p2, lm2, gm3, t2), gm3
        return (p2, lm2, gm2, t2), jnp.concatenate([jnp.stack([t2, lm2, gm2]), measure(p2, lm2, gm2, t2),
                                                    jnp.stack([dl, dg, dtc, cap1 | cap2])])

    def fine_tune(p, _):
        p, t = p
        t2 = t + dt
        p2 = eq(p, lam0, gam0, t2)
        return (p2, t2), measure(p2, lam0, gam0, t2)[jnp.array([2, 4, 5])]

    @jax.jit
    def both(p):
        end, rows = jax.lax.scan(one, (p, lam0, gam0, jnp.float32(0.0)), None, length=num_steps)
        _, ft = jax.lax.scan(fine_tune, (p, jnp.float32(0.0)), None, length=num_steps)
        return end, rows, ft

    (p_end, lm_end, gm_end, _), rows, ft = both(p0)
    m0 = np.asarray(measure(p0, lam0, gam0, 0.0), np.float64)
    rows = np.vstack([np.concatenate([[0.0, lam, gam], m0, [np.nan] * 3, [0.0]]), np.asarray(rows, np.float64)])
    ft = np.vstack([m0[[2, 4, 5]], np.asarray(ft, np.float64)])
    names = ("t", "lam", "gam", "R", "D", "C", "F", "accuracy", "accuracy_target", "dC_dlam", "dC_dgam", "dC_dt",
             "capped")
    again = values(settle(p_end, lm_end, gm_end, 1.0), lm_end, gm_end, 1.0)[1]["C"]
    scratch = {}
    for tag, (lm, gm) in (("", (lm_end, gm_end)), ("_start", (lam0, gam0))):
        q = settled(train(model.init(k_scratch), lm, gm, 1.0), lm, gm, 1.0)
        scratch[f"scratch_C{tag}"] = float(values(q, lm, gm, 1.0)[1]["C"])
        scratch[f"scratch_accuracy{tag}"] = float(model.accuracy(q, data_at(1.0)))
    table = xr.Dataset({**{n: ("step", rows[:, j]) for j, n in enumerate(names)},
                        **{n: ("step", ft[:, j]) for j, n in enumerate(
                            ("C_finetune", "accuracy_finetune", "accuracy_target_finetune"))}},
                       coords={"step": np.arange(num_steps + 1)},
                       attrs={"k": k, "h": h, "equilibration": equilibration, "eta_max": eta_max,
                              "C_eq_err": float(abs(float(again) - rows[-1, 5])), **scratch})
    return Transfer(table, p_end)


__all__ = ["Transfer", "interpolate", "iso_transfer", "tasks"]
