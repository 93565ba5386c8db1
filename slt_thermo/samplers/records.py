"""What a run records, named: parameter and observable names, the run's metadata (attrs) and
the (β, chain, draw) dataset built from the chunks' draws. Host-side (numpy/xarray) only."""

from __future__ import annotations

import jax
import numpy as np
import xarray as xr

from .._utils import known_rlct, package_version
from ..errors import InvalidArgumentError
from ..io import param_names
from ..results import RESERVED


def leaf_names(tree) -> list[str]:
    """The parameters' variable names in Samples (:func:`slt_thermo.io.param_names`), checked
    against the variables every Samples has."""
    names = param_names(tree)
    for name in names:
        if name in RESERVED:
            raise InvalidArgumentError(
                f"parameter name `{name}` collides with a Samples variable; rename it"
            )
    return names


def check_names(names, observable_names):
    clash = set(names) & set(observable_names)
    if clash:
        raise InvalidArgumentError(f"observable name(s) {sorted(clash)} collide with parameter names")


def run_meta(target, sampler, options, gamma, center, names, beta_axis, attrs) -> dict:
    meta = {
        "n": target.n,
        "target": target.name,
        "population": target.is_population,
        "sampler": sampler,
        "num_warmup": options.num_warmup,
        "num_samples": options.num_samples,
        "thinning": options.thinning,
        "gamma": gamma,
        "localized": center is not None,
        "param_names": ",".join(names if options.keep_params else []),
        "observable_names": ",".join(target.observable_names),
        "beta_axis": beta_axis,
        "slt_thermo_version": package_version(),
    }
    for attr, value in zip(("rlct", "multiplicity"), known_rlct(target.model)):
        if value is not None:
            meta[f"true_{attr}"] = str(value)
    meta.update(attrs or {})
    return meta


def to_dataset(records, betas, C, names, plan, healthy, acc) -> xr.Dataset:
    B = betas.size
    cat = {}
    if records:
        cat = jax.tree_util.tree_map(lambda *xs: np.concatenate(xs, axis=0), *records)
    S = cat["nll"].shape[0] if records else 0

    def grid(a):  # (S, BC, ...) -> (B, C, S, ...)
        a = np.asarray(a).reshape((S, B, C) + a.shape[2:])
        return np.moveaxis(a, 0, 2)

    coords = {"beta": betas, "chain": np.arange(C), "draw": np.arange(S)}
    data_vars = {}
    if records:
        data_vars["nll"] = (("beta", "chain", "draw"), grid(cat["nll"]))
        for k, v in cat.items():
            if k in ("nll", "params"):
                continue
            data_vars[k] = (("beta", "chain", "draw"), grid(v))
        if plan.keep_params:
            for name, leaf in zip(names, jax.tree_util.tree_leaves(cat["params"])):
                g = grid(leaf)
                dims = ("beta", "chain", "draw") + tuple(f"{name}_dim_{i}" for i in range(g.ndim - 3))
                data_vars[name] = (dims, g)
    else:
        data_vars["nll"] = (("beta", "chain", "draw"), np.zeros((B, C, 0)))
    data_vars["healthy"] = (("beta", "chain"), healthy.reshape(B, C))
    if plan.keep_pointwise:
        for name, arr in zip(("loglik_mean", "loglik_m2", "loglik_logsumexp"), acc[:3]):
            a = np.asarray(arr)
            data_vars[name] = (("beta", "chain", "example"), a.reshape((B, C, a.shape[-1])))
    return xr.Dataset(data_vars, coords=coords)
