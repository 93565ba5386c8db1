"""The equilibrium surface and the iso-classification process (Gao & Chaudhari, "A Free-Energy
Principle for Representation Learning", ICML 2020) on TherML's model, at σ = 0.

With the rate's multiplier fixed to 1, the free energy F(λ, γ) = min_θ R + λD + γC is a minimum of
functions affine in (λ, γ), hence concave, and by the envelope theorem D = ∂F/∂λ and C = ∂F/∂γ at
the minimizer. (The paper's λ is TherML's δ.) Moving (λ, γ) along

    λ̇ = −α ∂C/∂γ,   γ̇ = α ∂C/∂λ          (Remark 7, eq. 31)

keeps dC = C_λλ̇ + C_γγ̇ = 0: an *iso-classification* process, along which dF = Ddλ + Cdγ gives
dR = −λdD (Remark 10). The derivatives of the equilibrium C come from finite differences: θ is
re-equilibrated at (λ ± h, γ) and (λ, γ ± h); every move of (λ, γ) is followed by equilibration
with Adam under the schedule η(t) = η_max (t/T)²(1 − t/T)^5. The whole process (N steps, each five
vmapped equilibrations) is one compiled ``lax.scan``.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from .._target_inputs import check_key
from .._utils import positive_int
from ..errors import ConvergenceWarning, InvalidArgumentError
from .model import Model
from .posterior import _check_data


def _objective(model, data):
    def values(params, lam, gam):
        f = {k: v.sum() for k, v in model.functionals(params, data).items()}
        return f["R"] + lam * f["D"] + gam * f["C"], f

    return values


def _descend(opt, values, num_steps: int, trace: bool = False):
    """params, *multipliers -> params after ``num_steps`` steps of the optax ``opt`` on the
    objective ``values(params, *multipliers)[0]`` (R + λD + γC; and, with ``trace``, the objective
    after every step)."""
    grad = jax.grad(lambda p, *m: values(p, *m)[0])

    def run(params, *m):
        def step(carry, _):
            p, s = carry
            updates, s = opt.update(grad(p, *m), s, p)
            p = optax.apply_updates(p, updates)
            return (p, s), (values(p, *m)[0] if trace else None)

        (p, _), out = jax.lax.scan(step, (params, opt.init(params)), None, length=num_steps)
        return (p, out) if trace else p

    return run


def _equilibrate(values, num_steps: int, eta_max: float):
    """params, *multipliers -> params after ``num_steps`` Adam steps on the objective ``values``
    (R + λD + γC) with the schedule η(t) = η_max (t/T)²(1 − t/T)^5 (zero at both ends: the last
    steps settle)."""
    T = num_steps
    return _descend(optax.adam(lambda t: eta_max * (t / T) ** 2 * (1 - t / T) ** 5), values, T)


def _check_numbers(positive=(), signed=(), **values):
    """Each of ``values`` a finite number, >= 0 (any sign for the names in ``signed``, > 0 for
    those in ``positive``): the multipliers and step sizes of the processes."""
    for name, v in values.items():
        bound = "" if name in signed else " > 0" if name in positive else " >= 0"
        if not (isinstance(v, (int, float)) and np.isfinite(v)) or (name not in signed and v < 0) \
                or (name in positive and v == 0):
            raise InvalidArgumentError(f"`{name}` must be a finite number{bound}, got {v!r}")


def equilibrium_surface(model: Model | None, data, lambdas, gammas, *, key, init=None, num_steps: int = 4000,
                        learning_rate: float = 0.01, rounds: int = 2) -> xr.Dataset:
    """F, R, D, C at the minimizer of R + λD + γC over a (λ, γ) grid: Adam, vmapped over the grid
    points, all started from one equilibrium at the grid's centre (or ``init``), then ``rounds``
    times restarted, each point from the best of all the points' minimizers at its own (λ, γ)
    (the paper's warm starts: the model has many local minima, and a point stuck in a worse one
    breaks the concavity of F that the global minimum guarantees).

    Returns a Dataset over (``lam``, ``gam``) with ``F``, ``R``, ``D``, ``C`` and ``F_err``: the
    decrease of the objective over the last 10% of the steps, the optimization's own residual
    error (a point still descending is not at its minimum); attrs carry the grid's checks
    (:func:`surface_checks`)."""
    model = Model() if model is None else model
    data = jax.tree_util.tree_map(jnp.asarray, _check_data(data))
    check_key(key)
    num_steps = positive_int(num_steps, "num_steps", 10)
    rounds = positive_int(rounds, "rounds", 0)
    lam = np.atleast_1d(np.asarray(lambdas, np.float32))
    gam = np.atleast_1d(np.asarray(gammas, np.float32))
    if lam.ndim != 1 or gam.ndim != 1 or not (np.all(np.isfinite(lam)) and np.all(np.isfinite(gam))) \
            or np.any(lam < 0) or np.any(gam < 0):
        raise InvalidArgumentError("`lambdas` and `gammas` must be 1-D lists of finite multipliers >= 0")
    values = _objective(model, data)
    descend = _descend(optax.adam(learning_rate), values, num_steps, trace=True)

    p0 = model.init(key) if init is None else jax.tree_util.tree_map(jnp.asarray, init)
    if init is None:
        p0, _ = jax.jit(descend)(p0, jnp.float32(np.median(lam)), jnp.float32(np.median(gam)))
    L, G = np.meshgrid(lam, gam, indexing="ij")
    Lj, Gj = jnp.asarray(L.ravel()), jnp.asarray(G.ravel())
    run = jax.jit(jax.vmap(descend, in_axes=(None, 0, 0)))
    params, trace = run(p0, Lj, Gj)
    rerun = jax.jit(jax.vmap(descend))
    for _ in range(rounds):  # warm starts: every point restarts from the best minimizer found anywhere
        cand = jax.vmap(lambda lm, gm: jax.vmap(lambda p: values(p, lm, gm)[0])(params))(Lj, Gj)  # (point, cand)
        best = jnp.argmin(cand, axis=1)
        params, trace = rerun(jax.tree_util.tree_map(lambda a: a[best], params), Lj, Gj)
    F, f = jax.vmap(values)(params, jnp.asarray(L.ravel()), jnp.asarray(G.ravel()))
    tail = max(1, num_steps // 10)
    err = np.asarray(trace[:, -tail - 1] - trace[:, -1], np.float64)
    shape = L.shape
    ds = xr.Dataset({"F": (("lam", "gam"), np.asarray(F, np.float64).reshape(shape)),
                     **{k: (("lam", "gam"), np.asarray(f[k], np.float64).reshape(shape)) for k in ("R", "D", "C")},
                     "F_err": (("lam", "gam"), np.maximum(err, 0).reshape(shape))},
                    coords={"lam": lam.astype(np.float64), "gam": gam.astype(np.float64)})
    return ds


def surface_checks(ds: xr.Dataset) -> dict:
    """The paper's identities on an equilibrium surface, as numbers to compare with the error:

    - ``concavity``: the largest second difference of F along λ, along γ and of the 2×2 Hessian's
      largest eigenvalue at interior points (≤ 0 for a concave F), against ``tolerance`` = 4 ×
      the largest optimization residual F_err divided by the squared step;
    - ``envelope_D``, ``envelope_C``: the largest |∂F/∂λ − D| and |∂F/∂γ − C| by central
      differences at interior points, with the central-difference truncation estimate
      (h²/6 |F'''| from the grid) plus the residuals' share as ``envelope_*_tol``."""
    F, D, C, err = (ds[k].values for k in ("F", "D", "C", "F_err"))
    lam, gam = ds["lam"].values, ds["gam"].values
    if lam.size < 3 or gam.size < 3:
        raise InvalidArgumentError("the checks need at least 3 × 3 grid points")
    hl, hg = np.diff(lam), np.diff(gam)
    if not (np.allclose(hl, hl[0]) and np.allclose(hg, hg[0])):
        raise InvalidArgumentError("the checks need an evenly spaced grid")
    hl, hg = hl[0], hg[0]
    e = err.max()
    d2l = (F[2:, 1:-1] - 2 * F[1:-1, 1:-1] + F[:-2, 1:-1]) / hl**2
    d2g = (F[1:-1, 2:] - 2 * F[1:-1, 1:-1] + F[1:-1, :-2]) / hg**2
    dlg = (F[2:, 2:] - F[2:, :-2] - F[:-2, 2:] + F[:-2, :-2]) / (4 * hl * hg)
    top = (d2l + d2g) / 2 + np.sqrt(((d2l - d2g) / 2) ** 2 + dlg**2)  # the Hessian's larger eigenvalue
    dFl = (F[2:, 1:-1] - F[:-2, 1:-1]) / (2 * hl)
    dFg = (F[1:-1, 2:] - F[1:-1, :-2]) / (2 * hg)
    # truncation of the central difference: h²/6 |F'''| ≈ h²/6 |second difference of ∂F/∂λ| / h²
    third_l = np.abs(np.diff(D, 2, axis=0)).max() / 6 if lam.size >= 3 else 0.0
    third_g = np.abs(np.diff(C, 2, axis=1)).max() / 6 if gam.size >= 3 else 0.0
    return {"concavity": float(max(d2l.max(), d2g.max(), top.max())),
            "concavity_tol": float(4 * e / min(hl, hg) ** 2),
            "envelope_D": float(np.abs(dFl - D[1:-1, 1:-1]).max()),
            "envelope_D_tol": float(third_l + 2 * e / hl),
            "envelope_C": float(np.abs(dFg - C[1:-1, 1:-1]).max()),
            "envelope_C_tol": float(third_g + 2 * e / hg)}


class IsoProcess(NamedTuple):
    """An iso-classification run: per step (N + 1 rows, the start first) the multipliers
    ``lam``, ``gam``, the functionals ``R``, ``D``, ``C``, ``F`` at equilibrium, the finite-difference
    derivatives ``dC_dlam``, ``dC_dgam``; attrs ``R_eq_err``, ``D_eq_err``, ``C_eq_err``: how much one
    more equilibration still moves each, the larger of the start's and the end's (the
    equilibration error of every row);
    ``params`` the final equilibrium."""

    table: xr.Dataset
    params: dict


def iso_classification(model: Model | None, data, *, lam: float, gam: float, key, num_steps: int = 20,
                       alpha: float = 0.01, h: float = 0.05, equilibration: int = 500, eta_max: float = 2.0,
                       init=None, init_steps: int = 4000, settle_rounds: int = 8) -> IsoProcess:
    """The iso-classification process from (λ, γ) = (``lam``, ``gam``): ``num_steps`` Euler steps of
    λ̇ = −α ∂C/∂γ, γ̇ = α ∂C/∂λ (finite differences of step ``h`` in the multipliers, each
    re-equilibrated from the current θ), each followed by ``equilibration`` Adam steps with the
    schedule η(t) = η_max (t/T)²(1 − t/T)^5. θ starts from ``init`` or from ``init_steps`` of
    Adam (constant rate 0.01) on a draw of the model's init, then ``settle_rounds`` scheduled
    equilibrations (a start still relaxing shows up in the first steps and in ``*_eq_err``)."""
    model = Model() if model is None else model
    data = jax.tree_util.tree_map(jnp.asarray, _check_data(data))
    check_key(key)
    num_steps = positive_int(num_steps, "num_steps")
    equilibration = positive_int(equilibration, "equilibration", 10)
    settle_rounds = positive_int(settle_rounds, "settle_rounds", 0)
    _check_numbers(positive=("h", "eta_max"), lam=lam, gam=gam, alpha=alpha, h=h, eta_max=eta_max)
    if h >= min(lam, gam) and min(lam, gam) > 0:
        raise InvalidArgumentError(f"`h` ({h}) must be smaller than λ and γ so the differences stay in range")
    values = _objective(model, data)
    eq = _equilibrate(values, equilibration, float(eta_max))
    if init is None:
        p0 = jax.jit(_descend(optax.adam(0.01), values, init_steps))(model.init(key), jnp.float32(lam),
                                                                     jnp.float32(gam))
    else:
        p0 = jax.tree_util.tree_map(jnp.asarray, init)
    settle = jax.jit(eq)
    for _ in range(settle_rounds):  # one scheduled equilibration does not settle a fresh start
        p0 = settle(p0, jnp.float32(lam), jnp.float32(gam))
    offsets = jnp.array([[h, 0.0], [-h, 0.0], [0.0, h], [0.0, -h]], jnp.float32)

    def c_of(p, lm, gm):
        return values(p, lm, gm)[1]["C"]

    def one(carry, _):
        p, lm, gm = carry
        pts = jnp.stack([lm, gm]) + offsets
        ps = jax.vmap(eq, in_axes=(None, 0, 0))(p, pts[:, 0], pts[:, 1])
        cs = jax.vmap(c_of)(ps, pts[:, 0], pts[:, 1])
        dl, dg = (cs[0] - cs[1]) / (2 * h), (cs[2] - cs[3]) / (2 * h)
        lm2, gm2 = lm - alpha * dg, gm + alpha * dl
        p2 = eq(p, lm2, gm2)
        F, f = values(p2, lm2, gm2)
        return (p2, lm2, gm2), jnp.stack([lm2, gm2, f["R"], f["D"], f["C"], F, dl, dg])

    F0, f0 = values(p0, lam, gam)
    (p_end, _, _), rows = jax.jit(lambda p: jax.lax.scan(one, (p, jnp.float32(lam), jnp.float32(gam)), None,
                                                         length=num_steps))(p0)
    first = np.array([lam, gam, f0["R"], f0["D"], f0["C"], F0, np.nan, np.nan], np.float64)
    rows = np.vstack([first, np.asarray(rows, np.float64)])
    names = ("lam", "gam", "R", "D", "C", "F", "dC_dlam", "dC_dgam")
    # the equilibration error: how far one more equilibration still moves R, D, C, at the start
    # and at the end (the larger of the two)
    eq_err = {}
    for p, row in ((p0, rows[0]), (p_end, rows[-1])):
        lm_, gm_ = jnp.float32(row[0]), jnp.float32(row[1])
        again = values(settle(p, lm_, gm_), lm_, gm_)[1]
        for j, k in enumerate(("R", "D", "C")):
            eq_err[f"{k}_eq_err"] = max(eq_err.get(f"{k}_eq_err", 0.0), float(abs(float(again[k]) - row[2 + j])))
    moved = abs(rows[-1, 3] - rows[0, 3])
    if not moved > eq_err["D_eq_err"]:
        warnings.warn(
            f"iso_classification: D moved by {moved:.3g} along the process, no more than its equilibration "
            f"error {eq_err['D_eq_err']:.3g} (C's: {eq_err['C_eq_err']:.3g}): the equilibria are not settled "
            "enough to show the process; take more `equilibration` steps or a smaller `alpha`",
            ConvergenceWarning, stacklevel=2)
    table = xr.Dataset({k: ("step", rows[:, j]) for j, k in enumerate(names)},
                       coords={"step": np.arange(num_steps + 1)}, attrs={"alpha": alpha, "h": h, "equilibration": equilibration, "eta_max": eta_max, **eq_err})
    return IsoProcess(table, p_end)


__all__ = ["IsoProcess", "equilibrium_surface", "iso_classification", "surface_checks"]
