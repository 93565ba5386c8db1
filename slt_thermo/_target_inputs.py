"""Checks of what a :class:`~slt_thermo.Target` is built from: PRNG keys, the data, the traced
hyperparameters and the observables a model declares. Each raises a clear error naming the
argument instead of letting a shape or dtype error surface from inside a compiled program."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .errors import DataError, InvalidArgumentError, LikelihoodError


def check_key(key, argname="key"):
    try:
        ok = jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or (
            key.dtype == jnp.uint32 and key.shape[-1:] == (2,)
        )
    except AttributeError:
        ok = False
    if not ok:
        raise InvalidArgumentError(
            f"`{argname}` must be a JAX PRNG key (jax.random.key(0) or jax.random.PRNGKey(0)), "
            f"got {type(key).__name__}"
        )


def _validate_data(data) -> int:
    """Return n, the common leading size of all data leaves; raise DataError if malformed."""
    leaves = jax.tree_util.tree_leaves_with_path(data)
    if not leaves:
        raise DataError("`data` is empty: pass a pytree of arrays with the examples on axis 0")
    sizes = {}
    for path, leaf in leaves:
        name = "data" + jax.tree_util.keystr(path)
        arr = np.asarray(leaf)
        if arr.ndim == 0:
            raise DataError(f"`{name}` is a scalar; every data array needs the examples on axis 0")
        if np.issubdtype(arr.dtype, np.number) and not np.all(np.isfinite(arr)):
            bad = int(np.sum(~np.isfinite(arr)))
            raise DataError(f"`{name}` has {bad} non-finite value(s) (NaN/inf); clean the data")
        sizes[name] = arr.shape[0]
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise DataError(
            f"`data` leaves disagree on the number of examples (leading axis): {listing}"
        )
    n = next(iter(sizes.values()))
    if n < 1:
        raise DataError("`data` has n = 0 examples; n must be >= 1")
    return n


def _as_hyper(hyper):
    """Hyperparameters as a pytree of arrays (floats in the default float dtype), or None.

    Python numbers become arrays so that every value of a sweep has the same abstract type: one
    compiled program serves them all."""
    if hyper is None:
        return None

    def leaf(x):
        if isinstance(x, jax.core.Tracer):
            return x
        a = np.asarray(x)
        if not np.issubdtype(a.dtype, np.number) and a.dtype != bool:
            raise InvalidArgumentError(f"`hyper` leaves must be numbers or arrays, got {x!r}")
        if np.issubdtype(a.dtype, np.floating) or a.dtype.kind in "iu" and np.ndim(x) == 0:
            return jnp.asarray(a, dtype=jnp.result_type(float))
        return jnp.asarray(a)

    return jax.tree_util.tree_map(leaf, hyper)


def _check_observables(out) -> tuple[str, ...]:
    """Names of an observables dict (from ``jax.eval_shape``); each value must be a scalar and
    no name may collide with a variable every Samples has."""
    from .results import RESERVED

    if not isinstance(out, dict):
        raise LikelihoodError(f"`observables` must return a dict of scalars, got {type(out).__name__}")
    for k, v in out.items():
        if not isinstance(k, str) or not k:
            raise LikelihoodError(f"`observables` keys must be non-empty strings, got {k!r}")
        if k in RESERVED:
            raise LikelihoodError(f"observable name `{k}` collides with a Samples variable; rename it")
        if getattr(v, "shape", None) != ():
            raise LikelihoodError(
                f"observable `{k}` must be a scalar per draw, got shape {getattr(v, 'shape', None)}")
    return tuple(out)
