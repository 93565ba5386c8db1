"""Distances between two sample sets: MMD, energy distance, sliced Wasserstein-2, and the kernel
Stein discrepancy of one sample set against a score (REFERENCE §4.2).

They answer "how far is this sample (an SGD trajectory, a short chain, a cheap sampler) from that
one, or from p^β itself?". Every O(N²) sum runs jitted over blocks of ``block_size`` rows, so no
N × N matrix is ever built (N = 20,000 holds a block_size × N slab at a time); each block is summed
on the device in the default float (float32 unless x64 is on) and the blocks are summed on the host
in float64. Squared distances are taken coordinate by coordinate for d ≤ 16 and by the
|a|² + |b|² − 2a·b expansion, at full matmul precision, above; the points are centred first.

Inputs are ``(N, d)`` arrays (``(N,)`` means d = 1), parameter pytrees whose leaves carry a leading
draw axis, or :class:`~slt_thermo.Samples` with one β rung (see :func:`as_points`). All metrics are
squared quantities (MMD², energy distance, SW₂², W₂², KSD²) and are returned on the host: they are
evaluation tools, not differentiable losses.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._utils import check_beta, positive_int
from .errors import InvalidArgumentError, NumericalWarning

DIRECT_MAX_DIM = 16       # up to this d, squared distances are summed coordinate by coordinate
MEDIAN_MAX_POINTS = 2000  # the median heuristic looks at most at this many (evenly spaced) points
_HIGHEST = jax.lax.Precision.HIGHEST  # no TF32/bf16 matmuls on GPUs: the sums must be float32-exact


class TwoSampleResult(NamedTuple):
    """A two-sample statistic (MMD²_u or energy distance) with its errors.

    - ``value``: the unbiased estimate;
    - ``stderr``: its first-order (Hoeffding) standard error, √(4Var f(X)/m + 4Var g(Y)/n) with
      f, g the leave-one-out kernel means; meaningful when the distributions differ — under the
      null the statistic is degenerate, stderr ≈ 0, and the permutation p-value is the test;
    - ``p_value``: (1 + #{permuted ≥ observed})/(1 + P), NaN without permutations;
    - ``lengthscale``: the Gaussian kernel's ℓ (NaN for the energy distance).

    ``float(result)`` is the value.
    """

    value: float
    stderr: float
    p_value: float
    lengthscale: float

    def __float__(self):
        return float(self.value)


# ------------------------------------------------------------------------------ inputs
def as_points(obj, name: str = "x") -> np.ndarray:
    """``obj`` as an (N, d) float64 array of points, one row per draw.

    - an array: (N, d) as is, (N,) as (N, 1); other ranks are refused (reshape a (chain, draw, d)
      array with ``.reshape(-1, d)``);
    - a mapping or NamedTuple of arrays (a parameter pytree with a leading draw axis on every leaf):
      each leaf flattened to (N, -1) and concatenated in ``jax.tree_util`` leaf order — the order
      of ``jax.flatten_util.ravel_pytree``, hence of :func:`tempered_score`;
    - :class:`~slt_thermo.Samples` with one β rung (or none, as for SGD): its kept parameters, in
      the same leaf order, chains and draws pooled; unhealthy chains are dropped with a warning.
      Pick a rung of a ladder first with ``samples.sel_beta(beta)``.

    Raises :class:`InvalidArgumentError` for empty, non-finite or wrongly shaped input.
    """
    from .results import Samples

    if isinstance(obj, Samples):
        pts = _samples_points(obj, name)
    elif isinstance(obj, Mapping) or (isinstance(obj, tuple) and hasattr(obj, "_fields")):
        leaves = [np.asarray(a, dtype=np.float64) for a in jax.tree_util.tree_leaves(obj)]
        if not leaves or any(a.ndim == 0 for a in leaves) or len({a.shape[0] for a in leaves}) != 1:
            raise InvalidArgumentError(
                f"`{name}`: a parameter pytree needs array leaves sharing one leading draw axis")
        pts = np.concatenate([a.reshape(a.shape[0], -1) for a in leaves], axis=1)
    else:
        try:
            pts = np.asarray(obj, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"`{name}` must be an (N, d) array, a parameter pytree or "
                                       f"Samples, got {type(obj).__name__}") from None
        if pts.ndim == 1:
            pts = pts[:, None]
        if pts.ndim != 2:
            raise InvalidArgumentError(f"`{name}` must have shape (N,) or (N, d), got {pts.shape}; "
                                       "pool chains first, e.g. x.reshape(-1, d)")
    if pts.shape[0] == 0 or pts.shape[1] == 0:
        raise InvalidArgumentError(f"`{name}` is empty (shape {pts.shape})")
    if not np.all(np.isfinite(pts)):
        raise InvalidArgumentError(f"`{name}` has {int(np.sum(~np.isfinite(pts)))} non-finite value(s)")
    return pts


def _samples_points(samples, name):
    names = samples.param_names
    if not names:
        raise InvalidArgumentError(f"`{name}` kept no parameters: sample with keep_params=True")
    healthy = np.asarray(samples.healthy.values, bool)
    lead = ("chain", "draw")
    if samples.has_beta:
        if samples.ds.sizes["beta"] != 1:
            raise InvalidArgumentError(f"`{name}` holds {samples.ds.sizes['beta']} β rungs; compare one "
                                       "at a time: samples.sel_beta(beta)")
        healthy, lead = healthy[0], ("beta",) + lead
    parts = [np.asarray(samples.ds[k].transpose(*lead, ...).values, np.float64) for k in names]
    if samples.has_beta:
        parts = [p[0] for p in parts]
    if not healthy.any():
        raise InvalidArgumentError(f"`{name}` has no healthy chain")
    if not healthy.all():
        warnings.warn(f"`{name}`: dropping {int((~healthy).sum())} unhealthy chain(s)", NumericalWarning, stacklevel=4)
    parts = [p[healthy] for p in parts]
    return np.concatenate([p.reshape(p.shape[0] * p.shape[1], -1) for p in parts], axis=1)


def _pair(x, y, min_points):
    x, y = as_points(x, "x"), as_points(y, "y")
    if x.shape[1] != y.shape[1]:
        raise InvalidArgumentError(f"`x` and `y` live in different dimensions: d = {x.shape[1]} vs {y.shape[1]}")
    for name, a in (("x", x), ("y", y)):
        if a.shape[0] < min_points:
            raise InvalidArgumentError(f"`{name}` has {a.shape[0]} point(s); this metric needs >= {min_points}")
    return x, y


def _float():
    return jax.dtypes.canonicalize_dtype(jnp.float64)  # float32 unless x64 is enabled


def _block(n, block_size):
    return min(positive_int(block_size, "block_size"), n)


def _pad_rows(a, nb, b):
    return jnp.pad(a, ((0, nb * b - a.shape[0]),) + ((0, 0),) * (a.ndim - 1)).reshape((nb, b) + a.shape[1:])


def median_distance(x) -> float:
    """The median heuristic: the median pairwise Euclidean distance of ``x`` (Gretton et al. 2012).

    Uses at most :data:`MEDIAN_MAX_POINTS` evenly spaced rows (deterministic, no key); if the median
    is 0 (many repeated draws, as from rejecting samplers) the median of the positive distances is
    used, and 1.0 if all points coincide.
    """
    from scipy.spatial.distance import pdist

    x = as_points(x)
    if x.shape[0] > MEDIAN_MAX_POINTS:
        x = x[np.linspace(0, x.shape[0] - 1, MEDIAN_MAX_POINTS).astype(int)]
    dist = pdist(x) if x.shape[0] > 1 else np.zeros(0)
    med = float(np.median(dist)) if dist.size else 0.0
    if med == 0.0:
        pos = dist[dist > 0]
        med = float(np.median(pos)) if pos.size else 1.0
    return med


# ------------------------------------------------------------------------------ blocked kernels
def _sqdist(a, b, w=None):
    """Σ_k w_k (a_ik − b_jk)², shape (len(a), len(b)); w = 1 when None."""
    d = a.shape[1]
    if d <= DIRECT_MAX_DIM:
        out = jnp.zeros((a.shape[0], b.shape[0]), a.dtype)
        for k in range(d):
            diff = a[:, k, None] - b[None, :, k]
            out = out + (diff * diff if w is None else w[k] * diff * diff)
        return out
    aw = a if w is None else a * w
    bw = b if w is None else b * w
    ab = jnp.matmul(aw, b.T, precision=_HIGHEST)
    return jnp.maximum(jnp.sum(aw * a, 1)[:, None] + jnp.sum(bw * b, 1)[None, :] - 2 * ab, 0.0)


@functools.partial(jax.jit, static_argnames=("energy", "block"))
def _two_sample_sums(z, labels, inv_2l2, *, energy, block):
    """One pass over the pooled kernel matrix K (rows in blocks). For each label column u (0/1):
    uᵀKu and uᵀK1; also 1ᵀK1, and per row K1 and (Ku₀) for the standard error."""
    n = z.shape[0]
    nb = -(-n // block)
    mask = jnp.ones(n, z.dtype)

    def one(args):
        zb, lb, mb = args
        sq = _sqdist(zb, z)
        k = -jnp.sqrt(sq) if energy else jnp.exp(-sq * inv_2l2)
        r = jnp.sum(k, 1) * mb
        ku = jnp.matmul(k, labels, precision=_HIGHEST)
        return jnp.sum(ku * lb, 0), jnp.sum(r[:, None] * lb, 0), jnp.sum(r), r, ku[:, 0]

    quad, lin, tot, r, ku0 = jax.lax.map(one, (_pad_rows(z, nb, block), _pad_rows(labels, nb, block),
                                               _pad_rows(mask, nb, block)))
    return quad, lin, tot, r.reshape(-1)[:n], ku0.reshape(-1)[:n]


def _two_sample(x, y, *, energy, lengthscale, num_permutations, key, block_size):
    m, n = x.shape[0], y.shape[0]
    z = np.concatenate([x, y])
    z = jnp.asarray(z - z.mean(0), _float())
    base = jnp.concatenate([jnp.ones(m, z.dtype), jnp.zeros(n, z.dtype)])
    labels = base[:, None]
    if num_permutations:
        perms = jax.vmap(lambda k: jax.random.permutation(k, base))(jax.random.split(key, num_permutations))
        labels = jnp.concatenate([labels, perms.T], axis=1)
    block = _block(m + n, block_size)
    inv_2l2 = 0.0 if energy else 1.0 / (2.0 * lengthscale**2)
    quad, lin, tot, r, ku0 = (np.asarray(a, np.float64) for a in
                              _two_sample_sums(z, labels, jnp.asarray(inv_2l2, z.dtype), energy=energy, block=block))
    kdiag = 0.0 if energy else 1.0
    quad, lin, tot = quad.sum(0), lin.sum(0), tot.sum()
    sxx, sxy = quad - m * kdiag, lin - quad
    syy = tot - 2 * lin + quad - n * kdiag
    stat = sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * sxy / (m * n)
    kx, ky = ku0, r - ku0                  # per row: kernel sums over the x and over the y points
    f = (kx[:m] - kdiag) / (m - 1) - ky[:m] / n
    g = (ky[m:] - kdiag) / (n - 1) - kx[m:] / m
    se = math.sqrt(4 * f.var(ddof=1) / m + 4 * g.var(ddof=1) / n)
    p = (1 + np.sum(stat[1:] >= stat[0])) / (1 + num_permutations) if num_permutations else float("nan")
    return TwoSampleResult(float(stat[0]), se, float(p), float("nan") if energy else float(lengthscale))


def _check_permutations(num_permutations, key):
    num_permutations = positive_int(num_permutations, "num_permutations", minimum=0)
    if num_permutations and key is None:
        raise InvalidArgumentError("`key` is needed for a permutation test (num_permutations > 0)")
    return num_permutations


# ------------------------------------------------------------------------------ the metrics
def mmd2_u(x, y, *, lengthscale=None, num_permutations: int = 0, key=None,
           block_size: int = 1024) -> TwoSampleResult:
    """Unbiased squared maximum mean discrepancy between the laws of ``x`` and ``y`` (Gretton et
    al., JMLR 2012), with the Gaussian kernel k(a, b) = exp(−|a − b|²/(2ℓ²)):

        MMD²_u = Σ_{i≠j} k(x_i,x_j)/(m(m−1)) + Σ_{i≠j} k(y_i,y_j)/(n(n−1)) − 2 Σ_{i,j} k(x_i,y_j)/(mn).

    Zero in expectation iff the laws agree (characteristic kernel); it can be slightly negative.
    ``lengthscale`` ℓ defaults to the median heuristic on the pooled sample (:func:`median_distance`);
    fix it to compare several MMDs on one scale. With ``num_permutations`` P > 0 (and a ``key``)
    the labels are permuted P times and the p-value (1 + #{MMD²_perm ≥ MMD²_obs})/(1 + P) is
    returned, whose minimum is 1/(1 + P). All permutations share one blocked pass over the pooled
    kernel matrix (cost O((m+n)²(d + P))). Needs m, n ≥ 2. Returns a :class:`TwoSampleResult`.
    """
    x, y = _pair(x, y, 2)
    num_permutations = _check_permutations(num_permutations, key)
    if lengthscale is None:
        lengthscale = median_distance(np.concatenate([x, y]))
    else:
        try:
            ell = float(lengthscale)
        except (TypeError, ValueError):
            ell = float("nan")
        if not (math.isfinite(ell) and ell > 0):
            raise InvalidArgumentError(f"`lengthscale` must be a positive number or None, got {lengthscale!r}")
        lengthscale = ell
    return _two_sample(x, y, energy=False, lengthscale=float(lengthscale), num_permutations=num_permutations,
                       key=key, block_size=block_size)


def energy_distance(x, y, *, num_permutations: int = 0, key=None, block_size: int = 1024) -> TwoSampleResult:
    """Energy distance E = 2E|X − Y| − E|X − X'| − E|Y − Y'| (Székely & Rizzo 2013), estimated
    without bias: the within terms are U-statistics (means over i ≠ j, divided by m(m−1) and
    n(n−1)) and the cross term the mean over all m·n pairs.

    E ≥ 0 with equality iff the laws agree; it is MMD² with the kernel −|a − b| (so the estimator,
    standard error and permutation test are those of :func:`mmd2_u`), and needs no bandwidth.
    Needs m, n ≥ 2. Returns a :class:`TwoSampleResult` (``lengthscale`` NaN).
    """
    x, y = _pair(x, y, 2)
    num_permutations = _check_permutations(num_permutations, key)
    return _two_sample(x, y, energy=True, lengthscale=None, num_permutations=num_permutations, key=key,
                       block_size=block_size)


@jax.jit
def _w2_projected(x, y, theta, ix, iy, w):
    """W₂² between the empirical laws of x·θ and y·θ for each column θ of ``theta``."""
    px = jnp.sort(jnp.matmul(theta.T, x.T, precision=_HIGHEST), axis=-1)  # (P, m): XLA sorts rows fastest
    py = jnp.sort(jnp.matmul(theta.T, y.T, precision=_HIGHEST), axis=-1)
    diff = px[:, ix] - py[:, iy]
    return jnp.sum(w * diff * diff, axis=-1)


def _quantile_grid(m, n):
    """The merged grid of the two empirical quantile functions: on each interval between
    consecutive points of {i/m} ∪ {j/n} both are constant, so ∫₀¹ (F⁻¹ − G⁻¹)² is a finite sum."""
    t = np.sort(np.concatenate([np.arange(1, m + 1) / m, np.arange(1, n + 1) / n]))
    w = np.diff(t, prepend=0.0)
    mid = t - w / 2
    ix = np.minimum((mid * m).astype(int), m - 1)
    iy = np.minimum((mid * n).astype(int), n - 1)
    keep = w > 0
    return ix[keep], iy[keep], w[keep]


def _sliced(x, y, theta):
    mu = np.concatenate([x, y]).mean(0)
    ix, iy, w = _quantile_grid(x.shape[0], y.shape[0])
    dt = _float()
    chunk = max(1, min(theta.shape[1], 2**22 // len(w)))  # bound the (grid, projections) slab
    out = [np.asarray(_w2_projected(jnp.asarray(x - mu, dt), jnp.asarray(y - mu, dt),
                                    jnp.asarray(theta[:, i:i + chunk], dt), jnp.asarray(ix), jnp.asarray(iy),
                                    jnp.asarray(w, dt)), np.float64)
           for i in range(0, theta.shape[1], chunk)]
    return np.concatenate(out)


def w2_1d(x, y) -> float:
    """Squared 2-Wasserstein distance W₂² between the empirical laws of two 1-D samples:
    ∫₀¹ (F⁻¹(t) − G⁻¹(t))² dt with the empirical quantile functions, exact.

    With equal sizes this is (1/N)Σ(x_(i) − y_(i))² on the sorted samples; with unequal sizes the
    integral is summed exactly over the merged grid {i/m} ∪ {j/n} (no interpolation). Note the
    square: W₂ itself is ``math.sqrt(w2_1d(x, y))``.
    """
    x, y = _pair(x, y, 1)
    if x.shape[1] != 1:
        raise InvalidArgumentError(f"`x` and `y` must be 1-D (shape (N,) or (N, 1)), got d = {x.shape[1]}")
    return float(_sliced(x, y, np.ones((1, 1)))[0])


def sliced_w2(x, y, *, key, num_projections: int = 256) -> float:
    """Sliced squared 2-Wasserstein distance SW₂² = ∫_{S^{d−1}} W₂²(θ#μ, θ#ν) dσ(θ) (Rabin et al.
    2011; Bonneel et al. 2015), estimated by the mean over ``num_projections`` directions θ drawn
    uniformly on the sphere with ``key``, each 1-D W₂² exact as in :func:`w2_1d` (sorted projections
    for equal sizes, the merged quantile grid for unequal ones).

    SW₂² ≤ W₂²; for two Gaussians N(0, I), N(μ, I) it is |μ|²/d. Cost O(P (m+n)(d + log(m+n))).
    """
    x, y = _pair(x, y, 1)
    num_projections = positive_int(num_projections, "num_projections")
    if key is None:
        raise InvalidArgumentError("`key` (a jax.random key) is needed to draw the projections")
    theta = np.asarray(jax.random.normal(key, (x.shape[1], num_projections)), np.float64)
    theta /= np.linalg.norm(theta, axis=0, keepdims=True)
    return float(_sliced(x, y, theta).mean())


# ------------------------------------------------------------------------------ Stein discrepancy
def tempered_score(target, beta, *, center=None, gamma: float = 0.0):
    """The full-batch score of the tempered (optionally localized) posterior on flat vectors:
    w ↦ ∇_w [log φ(w) − β nL_n(w) − (γ/2)|w − w*|²], in model space.

    Flat vectors follow ``jax.flatten_util.ravel_pytree`` of the target's parameters, the order of
    :func:`as_points`. Use it as the ``score`` of :func:`ksd_imq`. Parameters on a constrained
    support (positive, simplex) have no score on all of R^d; KSD is then not meaningful there.
    """
    from jax.flatten_util import ravel_pytree

    from .target import Target

    if not isinstance(target, Target):
        raise InvalidArgumentError(f"`target` must be an slt_thermo.Target, got {type(target).__name__}")
    beta = check_beta(beta)
    _, unravel = ravel_pytree(target.init(jax.random.PRNGKey(0)))
    return jax.grad(lambda w: target.log_density(unravel(w), beta, center, gamma))


def _cross(xb, x, sb, s, a):
    """Σ_k a_k (x_ik − x_jk)(s_ik − s_jk): (Λ⁻¹u)·(s(x_i) − s(x_j)), shape (len(xb), len(x))."""
    d = x.shape[1]
    if d <= DIRECT_MAX_DIM:
        out = jnp.zeros((xb.shape[0], x.shape[0]), x.dtype)
        for k in range(d):
            out = out + a[k] * (xb[:, k, None] - x[None, :, k]) * (sb[:, k, None] - s[None, :, k])
        return out
    xa, xba = x * a, xb * a
    mm = functools.partial(jnp.matmul, precision=_HIGHEST)
    return (jnp.sum(xba * sb, 1)[:, None] + jnp.sum(xa * s, 1)[None, :] - mm(xba, s.T) - mm(sb, xa.T))


@functools.partial(jax.jit, static_argnames=("block",))
def _ksd_sum(x, s, a, c2, b, *, block):
    n = x.shape[0]
    nb = -(-n // block)

    def one(args):
        xb, sb, mb = args
        q = c2 + _sqdist(xb, x, a)
        qb = q**b
        k0 = (-4 * b * (b - 1) * qb / (q * q) * _sqdist(xb, x, a * a)
              - 2 * b * qb / q * (jnp.sum(a) + _cross(xb, x, sb, s, a))
              + qb * jnp.matmul(sb, s.T, precision=_HIGHEST))
        return jnp.sum(jnp.sum(k0, 1) * mb)

    mask = jnp.ones(n, x.dtype)
    return jax.lax.map(one, (_pad_rows(x, nb, block), _pad_rows(s, nb, block), _pad_rows(mask, nb, block)))


def _inverse_scale(preconditioner, x):
    """a = diag Λ⁻¹ from the preconditioner (None, "med", "sclmed" or Λ's diagonal)."""
    d = x.shape[1]
    if preconditioner is None:
        return np.ones(d)
    if isinstance(preconditioner, str):
        if preconditioner not in ("med", "sclmed"):
            raise InvalidArgumentError(f"`preconditioner` must be None, 'med', 'sclmed' or a (d,) array, "
                                       f"got {preconditioner!r}")
        ell2 = median_distance(x) ** 2
        if preconditioner == "sclmed":
            ell2 /= math.log(max(min(x.shape[0], MEDIAN_MAX_POINTS), 3))
        return np.full(d, 1.0 / ell2)
    lam = np.broadcast_to(np.asarray(preconditioner, np.float64), (d,)) if np.ndim(preconditioner) == 0 \
        else np.asarray(preconditioner, np.float64)
    if lam.shape != (d,) or not np.all(np.isfinite(lam) & (lam > 0)):
        raise InvalidArgumentError(f"`preconditioner` as an array must be {d} positive finite numbers "
                                   f"(the diagonal of Λ), got shape {lam.shape}")
    return 1.0 / lam


def ksd_imq(x, score, *, c: float = 1.0, b: float = -0.5, preconditioner=None, beta=None,
            block_size: int = 1024) -> float:
    """Squared kernel Stein discrepancy of the points ``x`` against the law with score s = ∇log p,
    V-statistic KSD² = (1/N²) Σ_{i,j} k0(x_i, x_j) (Gorham & Mackey 2017; Liu et al. 2016).

    Only the score is needed, not samples of p, so it measures directly how far sampler or SGD
    output is from p^β. The base kernel is IMQ, k(x,y) = (c² + |x − y|²_Λ)^b with b ∈ (−1, 0) and
    |u|²_Λ = uᵀΛ⁻¹u, and the Stein kernel, with u = x − y, q = c² + |u|²_Λ, A = Λ⁻¹:

        k0 = ∇_x·∇_y k + ∇_x k·s(y) + ∇_y k·s(x) + k s(x)·s(y)
           = −4b(b−1) q^{b−2}|Au|² − 2b q^{b−1} (tr A + Au·(s(x) − s(y))) + q^b s(x)·s(y).

    For N(0, I), c = 1, b = −1/2: k0(x, x) = d + |x|².

    - ``score``: an (N, d) array of scores at ``x``; a JAX-traceable callable x_i ↦ s(x_i) on flat
      (d,) vectors (mapped over the rows), e.g. :func:`tempered_score`; or a Target with ``beta``.
    - ``preconditioner``: Λ's diagonal as a (d,) array (or a scalar): distances are measured in
      units of √Λ per coordinate, like a per-coordinate lengthscale; "med": Λ = ℓ²I with ℓ the
      median pairwise distance of ``x``; "sclmed": Λ = ℓ²/log N · I (Riabiz et al. 2022, Stein
      thinning). Large-n posteriors have |s| = O(nβ) and a width O(1/√(nβ)): without a
      preconditioner of that scale the KSD is dominated by s(x)·s(y) and reads only the mean.
      KSD values are comparable only under the same (c, b, Λ): fix Λ as an array to compare sets.
    """
    from .target import Target

    x = as_points(x, "x")
    N, d = x.shape
    if isinstance(score, Target):
        if beta is None:
            raise InvalidArgumentError("`beta` is needed when `score` is a Target")
        score = tempered_score(score, beta)
    dt = _float()
    if callable(score):
        s = np.asarray(jax.lax.map(score, jnp.asarray(x, dt), batch_size=min(N, 256)), np.float64)
    else:
        s = np.asarray(score, np.float64)
        s = s[:, None] if s.ndim == 1 else s
    if s.shape != (N, d):
        raise InvalidArgumentError(f"`score` must give one (d,) score per point: shape {(N, d)}, got {s.shape}")
    if not np.all(np.isfinite(s)):
        raise InvalidArgumentError(f"`score` has {int(np.sum(~np.isfinite(s)))} non-finite value(s)")
    if not (math.isfinite(c) and c > 0 and -1 < b < 0):
        raise InvalidArgumentError(f"IMQ kernel needs c > 0 and b in (-1, 0), got c = {c!r}, b = {b!r}")
    a = _inverse_scale(preconditioner, x)
    block = _block(N, block_size)
    sums = _ksd_sum(jnp.asarray(x - x.mean(0), dt), jnp.asarray(s, dt), jnp.asarray(a, dt),
                    jnp.asarray(c * c, dt), jnp.asarray(b, dt), block=block)
    return float(np.asarray(sums, np.float64).sum() / N**2)


__all__ = ["TwoSampleResult", "as_points", "energy_distance", "ksd_imq", "median_distance", "mmd2_u",
           "sliced_w2", "tempered_score", "w2_1d"]
