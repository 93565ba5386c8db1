"""Exact σS-posterior thermodynamics of a :class:`~slt_thermo.therml.Model` with 1 or 2 free
parameters, by quadrature on a regular grid: the truth the samplers and :mod:`.laws` are tested
against (the same model code, the others frozen at ``base``)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import logsumexp

from ..errors import InvalidArgumentError
from .model import Model
from .posterior import _check_data, multipliers


class Grid:
    """R, D, C of a :class:`~slt_thermo.therml.Model` with 1 or 2 free parameters on a regular
    grid of ±``half_width`` (default 8 prior standard deviations), ``num`` points per axis,
    evaluated once; :meth:`thermo` then gives the exact thermodynamics at any multipliers and β
    (a Riemann sum of a smooth integrand that vanishes at the edges: spectrally accurate once the
    grid resolves the posterior; float64 on the host from float32 functionals)."""

    def __init__(self, model: Model, data, *, half_width: float | None = None, num: int = 401):
        if not isinstance(model, Model) or model.free is None or model.num_params > 2:
            raise InvalidArgumentError("`model` must be a therml.Model with 1 or 2 free parameters")
        data = _check_data(data)
        half_width = 8 * model.prior_scale if half_width is None else float(half_width)
        axis = np.linspace(-half_width, half_width, num)
        grids = np.meshgrid(*([axis] * model.num_params), indexing="ij")
        theta = np.stack([g.ravel() for g in grids], axis=1).astype(np.float32)
        self.log_cell = model.num_params * math.log(axis[1] - axis[0])

        @jax.jit
        def functionals(th):
            f = jax.vmap(lambda t: {k: v.sum() for k, v in model.functionals({"theta": t}, data).items()})(th)
            return f["R"], f["D"], f["C"]

        parts = [functionals(jnp.asarray(theta[i:i + 65536])) for i in range(0, theta.shape[0], 65536)]
        self.values = {k: np.concatenate([np.asarray(p[j], np.float64) for p in parts])
                       for j, k in enumerate(("R", "D", "C"))}
        s2 = model.prior_scale**2
        self.log_q = (-0.5 * np.sum(theta.astype(np.float64) ** 2, axis=1) / s2
                      - 0.5 * model.num_params * math.log(2 * math.pi * s2))

    def thermo(self, betas, *, rho=1.0, delta=1.0, gamma=1.0) -> dict:
        """log Z, ⟨R⟩, ⟨D⟩, ⟨C⟩, ⟨H⟩, S = −β⟨H⟩ − log Z and ``cov_A_B`` (A, B ∈ {R, D, C, H}) at
        each β in ``betas``: a dict of arrays over ``betas``."""
        mult = multipliers(rho, delta, gamma)
        vals = dict(self.values)
        vals["H"] = mult["rho"] * vals["R"] + mult["delta"] * vals["D"] + mult["gamma"] * vals["C"]
        names = list(vals)
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i:]]
        out = {k: [] for k in ("log_Z", *names, "S", *(f"cov_{a}_{b}" for a, b in pairs))}
        for beta in np.asarray(betas, np.float64):
            logw = self.log_q - beta * vals["H"]
            norm = logsumexp(logw)
            p = np.exp(logw - norm)
            means = {k: float(p @ v) for k, v in vals.items()}
            out["log_Z"].append(float(norm + self.log_cell))
            for k, m in means.items():
                out[k].append(m)
            out["S"].append(-beta * means["H"] - out["log_Z"][-1])
            for a, b in pairs:
                out[f"cov_{a}_{b}"].append(float(p @ ((vals[a] - means[a]) * (vals[b] - means[b]))))
        return {k: np.asarray(v) for k, v in out.items()}


def quadrature(model: Model, data, betas, *, rho=1.0, delta=1.0, gamma=1.0, half_width: float | None = None,
               num: int = 401) -> dict:
    """:meth:`Grid.thermo` of a fresh :class:`Grid` (see there): exact log Z, ⟨R⟩, ⟨D⟩, ⟨C⟩, ⟨H⟩,
    S and covariances at each β of ``betas``, for a model with 1 or 2 free parameters."""
    return Grid(model, data, half_width=half_width, num=num).thermo(betas, rho=rho, delta=delta, gamma=gamma)
