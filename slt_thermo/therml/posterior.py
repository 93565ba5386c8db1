"""TherML's σS posterior as a :class:`~slt_thermo.Target`.

Alemi & Fischer's optimal parameter distribution is a Gibbs distribution,

    p*(θ) = q(θ) exp(−(ρR + δD + γC)/σ) / Z(ρ, δ, γ, σ),

so it is a tempered posterior with prior q, energy H(θ) = ρR + δD + γC (a sum over the training
examples: the per-example "log-likelihood" is −(ρ r_n + δ d_n + γ c_n)) and inverse temperature
β = 1/σ. One sampler run over a β-ladder covers a σ-ladder; ρ, δ, γ are traced hyperparameters
(``target.with_hyper(delta=…)`` reuses every compiled program), and R, D, C are recorded per draw
as observables (with ``population=p_xy`` also their infinite-data versions ``R_pop``, ``D_pop``,
``C_pop``: n times the expectations under p(x, y)).
"""

from __future__ import annotations

import math

import numpy as np

from .._utils import positive_int
from ..errors import DataError, InvalidArgumentError
from ..target import Target
from .model import FUNCTIONALS, Model
from .toy import NUM_BINS

MULTIPLIERS = {"rho": "R", "delta": "D", "gamma": "C"}  # the multiplier of each functional


def _check_data(data) -> dict:
    if not isinstance(data, dict) or not {"x", "y"} <= set(data):
        raise DataError("`data` must be a dict with integer arrays 'x' (inputs 0..29) and 'y' (labels 0/1)")
    x, y = np.asarray(data["x"]), np.asarray(data["y"])
    w = np.asarray(data.get("weight", np.ones(x.shape, np.float32)), dtype=np.float32)
    if x.ndim != 1 or x.shape != y.shape or w.shape != x.shape:
        raise DataError(f"`data` 'x', 'y' (and 'weight') must be 1-D of one length, got {x.shape}, "
                        f"{y.shape}, {w.shape}")
    if x.size == 0:
        raise DataError("`data` has n = 0 examples")
    if not (np.issubdtype(x.dtype, np.integer) and np.issubdtype(y.dtype, np.integer)):
        raise DataError("`data` 'x' and 'y' must be integer arrays (bin and label indices)")
    if x.min() < 0 or x.max() >= NUM_BINS or y.min() < 0 or y.max() > 1:
        raise DataError(f"`data` 'x' must lie in 0..{NUM_BINS - 1} and 'y' in {{0, 1}}")
    if not (np.all(np.isfinite(w)) and np.all(w >= 0)):
        raise DataError("`data` 'weight' must be finite and >= 0")
    return {"x": x.astype(np.int32), "y": y.astype(np.int32), "weight": w}


def multipliers(rho=1.0, delta=1.0, gamma=1.0) -> dict:
    """{rho, delta, gamma} as floats, each checked finite and >= 0."""
    out = {}
    for name, value in (("rho", rho), ("delta", delta), ("gamma", gamma)):
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"`{name}` must be a number, got {value!r}") from None
        if not (math.isfinite(v) and v >= 0):
            raise InvalidArgumentError(f"`{name}` must be finite and >= 0, got {value!r}")
        out[name] = v
    return out


def betas(sigmas, *, include_zero: bool = True, ti_rungs: int = 0) -> np.ndarray:
    """The β-ladder (ascending) of temperatures ``sigmas`` (each > 0): β = 1/σ, with β = 0 (the
    prior, σ = ∞) prepended for thermodynamic integration unless ``include_zero=False``, and
    ``ti_rungs`` more rungs geometric in [β_min/200, β_min) where ⟨H⟩ changes fastest (TI needs
    them when the smallest requested β is far from 0)."""
    s = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise InvalidArgumentError(f"`sigmas` must be finite temperatures > 0, got {sigmas!r}")
    ti_rungs = positive_int(ti_rungs, "ti_rungs", 0)
    b = np.unique(1.0 / s)  # finite and > 0: the σ are
    if ti_rungs:
        b = np.unique(np.concatenate([np.geomspace(b[0] / 200, b[0], ti_rungs + 1)[:-1], b]))
    return np.concatenate([[0.0], b]) if include_zero else b


def posterior(model: Model | None, data, *, rho=1.0, delta=1.0, gamma=1.0, population=None,
              name: str = "therml") -> Target:
    """The σS posterior p*(θ) ∝ q(θ) exp(−(ρR + δD + γC)/σ) on ``data`` as a Target (β = 1/σ).

    Args:
        model: a :class:`~slt_thermo.therml.Model` (default: Appendix B's, prior N(0, 10²)).
        data: ``{"x", "y", "weight"}`` (``Toy.data`` or ``Toy.infinite_data()``).
        rho, delta, gamma: the multipliers of R, D, C (>= 0), traced: change them with
            ``target.with_hyper(delta=…)`` without recompiling.
        population: optional exact joint p(x, y) (30 × 2, ``Toy.p_xy``): also record the
            infinite-data R_pop, D_pop, C_pop per draw (n·E_p of r, d, c, n the summed weight).
    """
    model = Model() if model is None else model
    if not isinstance(model, Model):
        raise InvalidArgumentError(f"`model` must be a slt_thermo.therml.Model, got {type(model).__name__}")
    data = _check_data(data)
    hyper = multipliers(rho, delta, gamma)
    pop = None
    if population is not None:
        p = np.asarray(population, dtype=np.float64)
        if p.shape != (NUM_BINS, 2) or not np.all(p >= 0) or abs(p.sum() - 1) > 1e-6:
            raise InvalidArgumentError(f"`population` must be a ({NUM_BINS}, 2) probability table, got shape {p.shape}")
        x, y = np.meshgrid(np.arange(NUM_BINS), np.arange(2), indexing="ij")
        pop = {"x": x.ravel().astype(np.int32), "y": y.ravel().astype(np.int32),
               "weight": (float(data["weight"].sum()) * p.ravel()).astype(np.float32)}

    def log_likelihood(params, d, h):
        f = model.functionals(params, d)
        return -(h["rho"] * f["R"] + h["delta"] * f["D"] + h["gamma"] * f["C"])

    def observables(params, d):
        out = {k: v.sum() for k, v in model.functionals(params, d).items()}
        if pop is not None:
            out.update({f"{k}_pop": v.sum() for k, v in model.functionals(params, pop).items()})
        return out

    return Target.from_functions(model.log_prior, log_likelihood, data, init=model.init, name=name,
                                 sample_prior=model.sample_prior, observables=observables, hyper=hyper)


__all__ = ["FUNCTIONALS", "MULTIPLIERS", "betas", "multipliers", "posterior"]
