"""Resampling: offspring indices for weighted particles, one function per scheme.

Every scheme draws ``num`` indices whose expected count for particle i is num·w_i; they differ in
the variance of the counts (systematic < residual < multinomial).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ...errors import InvalidArgumentError

SCHEMES = ("systematic", "multinomial", "residual")


def _cdf(w):
    c = jnp.cumsum(w)
    return c / c[-1]


def _systematic(key, w, num):
    """One uniform U, stratified positions (U + j)/num on the weight CDF."""
    N, dt = w.shape[0], w.dtype
    u = (jax.random.uniform(key, dtype=dt) + jnp.arange(num, dtype=dt)) / num
    return jnp.clip(jnp.searchsorted(_cdf(w), u, side="right"), 0, N - 1)


def _multinomial(key, w, num):
    """``num`` independent draws from the weights."""
    N, dt = w.shape[0], w.dtype
    u = jax.random.uniform(key, (num,), dtype=dt)
    return jnp.clip(jnp.searchsorted(_cdf(w), u, side="right"), 0, N - 1)


def _residual(key, w, num):
    """⌊num·w_i⌋ copies of particle i, then multinomial draws on the remainders."""
    N, dt = w.shape[0], w.dtype
    nw = num * w
    counts = jnp.floor(nw).astype(jnp.int32)
    det = jnp.repeat(jnp.arange(N), counts, total_repeat_length=num)
    res = nw - counts
    total = jnp.sum(res)
    cdf = jnp.cumsum(res) / jnp.where(total > 0, total, 1.0)
    u = jax.random.uniform(key, (num,), dtype=dt)
    extra = jnp.clip(jnp.searchsorted(cdf, u, side="right"), 0, N - 1)
    return jnp.where(jnp.arange(num) < jnp.sum(counts), det, extra)


_SCHEME_FNS = {"systematic": _systematic, "multinomial": _multinomial, "residual": _residual}


def _resample_w(key, w, num, scheme):
    """Indices of ``num`` offspring drawn from normalized weights ``w`` (static scheme)."""
    if scheme not in _SCHEME_FNS:
        raise InvalidArgumentError(f"`resampling` must be one of {SCHEMES}, got {scheme!r}")
    return _SCHEME_FNS[scheme](key, w, num)


def resample(key, log_weights, scheme: str = "systematic", num: int | None = None):
    """Offspring indices for (unnormalized) ``log_weights``: ``num`` (default: as many as
    weights) indices whose expected count for particle i is num·w_i, for every scheme.

    - ``"systematic"``: one uniform, stratified positions (U + j)/num on the weight CDF;
    - ``"multinomial"``: num independent draws;
    - ``"residual"``: ⌊num·w_i⌋ copies, then multinomial on the remainders.
    """
    if scheme not in SCHEMES:
        raise InvalidArgumentError(f"`scheme` must be one of {SCHEMES}, got {scheme!r}")
    lw = jnp.asarray(log_weights)
    if lw.ndim != 1 or lw.shape[0] < 1:
        raise InvalidArgumentError(f"`log_weights` must be 1-D and non-empty, got shape {lw.shape}")
    num = lw.shape[0] if num is None else int(num)
    return _resample_w(key, _normalize(lw), num, scheme)


def _normalize(log_weights):
    """Normalized weights of unnormalized log weights (NaN counts as weight 0)."""
    lw = jnp.where(jnp.isnan(log_weights), -jnp.inf, log_weights)
    return jnp.exp(lw - jax.nn.logsumexp(lw))
