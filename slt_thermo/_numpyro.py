"""Read a numpyro model into the pieces a Target needs (prior, per-example likelihood, data)."""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from .errors import InvalidArgumentError, LikelihoodError


class NumpyroParts(NamedTuple):
    log_prior: Callable
    log_likelihood: Callable
    init: Callable
    support: dict
    data: dict
    sample_prior: Callable


def _trace(model_fn, args, kwargs, params=None, data=None, key=None):
    from numpyro import handlers

    m = model_fn
    if data is not None:
        m = handlers.condition(m, data=data)
    if params is not None:
        m = handlers.substitute(m, data=params)
    m = handlers.seed(m, rng_seed=key if key is not None else jax.random.PRNGKey(0))
    return handlers.trace(m).get_trace(*args, **kwargs)


def _sample_sites(tr):
    return {k: s for k, s in tr.items() if s["type"] == "sample"}


def _site_log_prob(site):
    lp = site["fn"].log_prob(site["value"])
    if site.get("scale") is not None:
        lp = site["scale"] * lp
    return lp


def numpyro_parts(model_fn, args, kwargs) -> NumpyroParts:
    """Split `model_fn` into prior (latent sites) and per-example likelihood (observed sites)."""
    if not callable(model_fn):
        raise InvalidArgumentError(f"`model_fn` must be a numpyro model function, got {model_fn!r}")
    tr = _sample_sites(_trace(model_fn, args, kwargs))
    observed = {k: s for k, s in tr.items() if s["is_observed"]}
    latent = {k: s for k, s in tr.items() if not s["is_observed"]}
    if not observed:
        raise InvalidArgumentError(
            "`model_fn` has no observed sites (numpyro.sample(..., obs=y)); nothing to learn from"
        )
    if not latent:
        raise InvalidArgumentError("`model_fn` has no latent sites; there is nothing to sample")
    for k, s in latent.items():
        if s["fn"].support.is_discrete:
            raise InvalidArgumentError(
                f"latent site `{k}` is discrete; NUTS/HMC/SGLD need continuous parameters"
            )
    data = {k: jnp.asarray(s["value"]) for k, s in observed.items()}
    sizes = {k: (v.shape[0] if v.ndim else None) for k, v in data.items()}
    if None in sizes.values() or len(set(sizes.values())) != 1:
        raise InvalidArgumentError(
            f"observed sites must share a leading example axis; got leading sizes {sizes}"
        )
    support = {k: s["fn"].support for k, s in latent.items()}
    shapes = {k: jnp.shape(s["value"]) for k, s in latent.items()}

    def log_prior(params):
        t = _sample_sites(_trace(model_fn, args, kwargs, params=params))
        return sum(jnp.sum(_site_log_prob(t[k])) for k in latent)

    def log_likelihood(params, obs):
        t = _sample_sites(_trace(model_fn, args, kwargs, params=params, data=obs))
        m = jax.tree_util.tree_leaves(obs)[0].shape[0]
        total = 0.0
        for k in observed:
            lp = _site_log_prob(t[k])
            if lp.ndim == 0 or lp.shape[0] != m:
                raise LikelihoodError(
                    f"observed site `{k}` has log_prob shape {lp.shape}; its leading axis must "
                    f"index the {m} examples (use numpyro.plate over the data)"
                )
            total = total + lp.reshape(m, -1).sum(axis=1)
        return total

    def init(key):
        from numpyro.distributions.transforms import biject_to

        keys = jax.random.split(key, len(latent))
        out = {}
        for k, name in zip(keys, latent):
            t = biject_to(support[name])
            u = jax.random.uniform(k, t.inverse_shape(shapes[name]), minval=-2.0, maxval=2.0)
            out[name] = t(u)
        return out

    def sample_prior(key):  # the latent sites run from their priors (observed ones stay observed)
        t = _sample_sites(_trace(model_fn, args, kwargs, key=key))
        return {k: t[k]["value"] for k in latent}

    return NumpyroParts(log_prior, log_likelihood, init, support, data, sample_prior)
