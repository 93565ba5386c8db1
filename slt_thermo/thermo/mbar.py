"""MBAR (Shirts & Chodera 2008): free energies and expectations at any β from all rungs at once.

REFERENCE §3.4. Given K states with reduced potentials u_k and N_k uncorrelated draws from each,
pooled into x_1..x_N, the free energies f̂_k solve the self-consistent equations

    f̂_i = −log Σ_n exp(−u_i(x_n)) / Σ_k N_k exp(f̂_k − u_k(x_n)),

with f̂_0 = 0 fixing the constant. The weights W_ni = exp(f̂_i − u_i(x_n) − log D_n), with
D_n = Σ_k N_k exp(f̂_k − u_k(x_n)), give ⟨A⟩_i = Σ_n W_ni A(x_n) at any state i, sampled or not.

Solver: three self-consistent iterations from f = 0, then Newton's method with a backtracking
(Armijo) line search on the convex objective of Shirts & Chodera / Zhang et al.,

    L(f) = Σ_n log Σ_k N_k exp(f_k − u_k(x_n)) − Σ_k N_k f_k,   ∇_k L = N_k (Σ_n W_nk − 1),

in float64 and log space (scipy.special.logsumexp), until max_k |Σ_n W_nk − 1| < ``tol``.

Errors: the asymptotic covariance of Shirts & Chodera App. D, eq. D4 (pymbar's "svd-ew"),
Θ = W^T (I_N − W diag(N_k) W^T)^+ W, evaluated through the thin SVD of W so that nothing N × N
is formed: with W_s = UΣV^T (sampled states), I − W diag(N) W^T has pseudo-inverse
P = U (I − M)^+ U^T + (I − UU^T), M = U^T W_s diag(N_s) W_s^T U (K × K), and Θ_ab = w_a^T P w_b
for any two weight columns, so states added later (unsampled β) cost O(NK) each. The
structural zero eigenvalue of I − M (the constant shift of f) is dropped, as pymbar's pinv does.
Expectations use Shirts & Chodera's asymptotic formula (their Sec. III / pymbar
``compute_expectations``): with the column g_n = (A_n − ⟨A⟩) w_n, δ²⟨A⟩ = g^T P g, which is
the shift-invariant form of ⟨A⟩²(Θ_AA + Θ_ii − 2Θ_Ai).

These errors assume uncorrelated draws; the ladder layer (:func:`mbar_ladder`) therefore
subsamples each rung by the statistical inefficiency of its energy.

On a tempered ladder u_k(w) = β_k nL_n(w) (the prior is common to all rungs and cancels; so does
a common localization term of an LLC posterior). Because the reweighted distribution at β is an
exponential family in β, the MBAR curve E(β) = Σ_n w_n(β) H_n is analytic with
dE/dβ = −Var_w(H) < 0: smooth and strictly decreasing at every β, sampled or not, which is
what :func:`beta_at_energy` inverts.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import NamedTuple

import numpy as np
import xarray as xr
from scipy.special import logsumexp

from ..errors import ConvergenceWarning, InvalidArgumentError
from ..results import Samples, ess_mean
from .stats import healthy_draws

__all__ = ["BetaAtEnergy", "LadderMBAR", "MBARResult", "beta_at_energy", "mbar", "mbar_curve", "mbar_ladder"]

_NUM_SCI = 3  # self-consistent iterations before Newton
_ZERO_EIG = 1e-10  # eigenvalues of I − M below this are treated as exactly 0 (disconnected states)


# ============================================================================ core estimator
class MBARResult(NamedTuple):
    """The MBAR solution (Shirts & Chodera 2008); see the module docstring.

    Attributes:
        f: (K,) reduced free energies f̂_k = −log Z_k + log Z_0, so f[0] = 0.
        f_cov: (K, K) asymptotic covariance of ``f`` (of f̂_k − f̂_0; row/column 0 are zero).
        log_weights: (N, K) log W_nk; each column sums (in exp) to 1.
        N_k: (K,) draws per state (0 for unsampled states).
        theta: (K, K) Θ of eq. D4; δ²(f_j − f_i) = Θ_ii + Θ_jj − 2Θ_ij.
        log_denom: (N,) log D_n = log Σ_k N_k exp(f_k − u_k(x_n)), the per-draw mixture density.
        basis, core: U (N × K_s) and (I − M)^+ (K_s × K_s): the factors of P (module docstring),
            kept so that :meth:`expectation` and :meth:`free_energy` give errors at new states.
        iterations: Newton iterations used. converged: whether max|Σ_n W_nk − 1| < tol.
    """

    f: np.ndarray
    f_cov: np.ndarray
    log_weights: np.ndarray
    N_k: np.ndarray
    theta: np.ndarray
    log_denom: np.ndarray
    basis: np.ndarray
    core: np.ndarray
    iterations: int
    converged: bool

    @property
    def f_se(self) -> np.ndarray:
        """(K,) standard error of f̂_k − f̂_0."""
        return np.sqrt(np.clip(np.diag(self.f_cov), 0.0, None))

    @property
    def df_se(self) -> np.ndarray:
        """(K, K) standard error of f̂_j − f̂_i."""
        t = self.theta
        d = np.diag(t)
        return np.sqrt(np.clip(d[:, None] + d[None, :] - 2 * t, 0.0, None))

    def _quad(self, X):
        """x^T P x for each row x of X (G, N)."""
        X = np.ascontiguousarray(X)
        XU = X @ self.basis
        return np.clip(np.einsum("gi,gi->g", XU @ self.core, XU) + np.einsum("gn,gn->g", X, X)
                       - np.einsum("gi,gi->g", XU, XU), 0.0, None)

    def _new_weights(self, u_n):
        u = _as_float_array(u_n, "u_n")
        scalar = u.ndim == 1
        u = np.atleast_2d(u)
        if u.ndim != 2 or u.shape[1] != self.log_denom.size:
            raise InvalidArgumentError(
                f"`u_n` must have shape (N,) or (G, N) with N = {self.log_denom.size} draws, got {np.shape(u_n)}")
        if not np.all(np.isfinite(u)):
            raise InvalidArgumentError("`u_n` must be finite")
        lw = -u - self.log_denom[None, :]
        f = -logsumexp(lw, axis=1)
        return f, np.exp(lw + f[:, None]), scalar

    def free_energy(self, u_n):
        """f̂ (relative to f̂_0) and its standard error at a new state with reduced potential
        ``u_n`` ((N,) over the pooled draws, or (G, N) for G states at once)."""
        f, w, scalar = self._new_weights(u_n)
        w0 = np.exp(self.log_weights[:, 0])
        se = np.sqrt(self._quad(w - w0[None, :]))
        return (float(f[0]), float(se[0])) if scalar else (f, se)

    def expectation(self, A_n, u_n):
        """⟨A⟩ at the state with reduced potential ``u_n`` (sampled or not) and its asymptotic
        standard error (Shirts & Chodera's formula, module docstring).

        ``A_n``: (N,) values of A at the pooled draws (or (G, N)); ``u_n``: (N,) or (G, N).
        Returns (mean, se), floats for 1-D input, (G,) arrays otherwise.
        """
        _, w, scalar = self._new_weights(u_n)
        A = np.atleast_2d(_as_float_array(A_n, "A_n"))
        if A.shape[1] != w.shape[1] or A.shape[0] not in (1, w.shape[0]):
            raise InvalidArgumentError(f"`A_n` must have shape (N,) or (G, N) matching `u_n`, got {np.shape(A_n)}")
        if not np.all(np.isfinite(A)):
            raise InvalidArgumentError("`A_n` must be finite")
        mean = np.einsum("gn,gn->g", w, np.broadcast_to(A, w.shape))
        se = np.sqrt(self._quad((A - mean[:, None]) * w))
        scalar = scalar and np.ndim(A_n) == 1
        return (float(mean[0]), float(se[0])) if scalar else (mean, se)


def _as_float_array(x, name):
    try:
        return np.asarray(x, dtype=float)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"`{name}` must be a numeric array: {e}") from None


def _check_inputs(u_kn, N_k, max_iter, tol):
    u = _as_float_array(u_kn, "u_kn")
    if u.ndim != 2 or u.size == 0:
        raise InvalidArgumentError(f"`u_kn` must be a non-empty 2-D array (K states × N draws), got shape {u.shape}")
    if not np.all(np.isfinite(u)):
        raise InvalidArgumentError("`u_kn` must be finite (drop the unhealthy draws first)")
    Nk = _as_float_array(N_k, "N_k")
    K, N = u.shape
    if Nk.shape != (K,):
        raise InvalidArgumentError(f"`N_k` must have shape (K,) = ({K},) to match `u_kn`, got {Nk.shape}")
    if not np.all(np.isfinite(Nk)) or np.any(Nk < 0) or np.any(Nk != np.round(Nk)):
        raise InvalidArgumentError(f"`N_k` must be non-negative integers, got {Nk}")
    if int(Nk.sum()) != N:
        raise InvalidArgumentError(f"`N_k` must sum to the number of draws N = {N} (columns of `u_kn`), got {int(Nk.sum())}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise InvalidArgumentError(f"`max_iter` must be a positive integer, got {max_iter!r}")
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
        raise InvalidArgumentError(f"`tol` must be a positive float, got {tol!r}")
    return u, Nk.astype(np.int64)


def _solve(u, N, max_iter, tol):
    """Newton on the convex objective over the sampled states (rows of ``u``), f[0] fixed at 0."""
    logN = np.log(N)[:, None]
    Nf = N.astype(float)

    def parts(f):
        ld = logsumexp(f[:, None] - u + logN, axis=0)
        return ld, ld.sum() - Nf @ f

    f = np.zeros(u.shape[0])
    if f.size == 1:
        return f, 0, True
    for _ in range(_NUM_SCI):  # self-consistent iterations: a cheap, safe start
        ld, _ = parts(f)
        f = -logsumexp(-u - ld[None, :], axis=1)
        f -= f[0]
    ld, obj = parts(f)
    for it in range(max_iter + 1):
        W = np.exp(f[:, None] - u - ld[None, :])  # (K_s, N)
        S = W.sum(axis=1)
        if np.max(np.abs(S - 1)) < tol:
            return f, it, True
        if it == max_iter:
            break
        g = Nf * (S - 1)
        H = np.diag(Nf * S) - (Nf[:, None] * (W @ W.T)) * Nf[None, :]
        try:
            step = np.linalg.solve(H[1:, 1:], -g[1:])
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H[1:, 1:], -g[1:], rcond=None)[0]
        step = np.concatenate([[0.0], step])
        slope = g @ step
        t, accepted = 1.0, False
        while t > 1e-12:
            f_new = f + t * step
            ld_new, obj_new = parts(f_new)
            if obj_new <= obj + 1e-4 * t * slope + 1e-13 * abs(obj):
                accepted = True
                break
            t *= 0.5
        if not accepted:  # no descent left at float64 precision: fall back to one self-consistent step
            f_new = -logsumexp(-u - ld[None, :], axis=1)
            f_new -= f_new[0]
            ld_new, obj_new = parts(f_new)
        f, ld, obj = f_new, ld_new, obj_new
    return f, max_iter, False


def mbar(u_kn, N_k, *, max_iter: int = 100, tol: float = 1e-10) -> MBARResult:
    """Solve MBAR for the reduced potentials ``u_kn`` (K states × N pooled draws).

    Args:
        u_kn: (K, N) reduced potential u_k(x_n) of every pooled draw at every state (pymbar's
            layout). The order of the draws does not matter; states with N_k = 0 are unsampled
            states at which f̂ and the weights are wanted.
        N_k: (K,) number of draws from each state; must sum to N.
        max_iter: Newton iterations at most (a :class:`~slt_thermo.ConvergenceWarning` if not converged).
        tol: convergence threshold on max_k |Σ_n W_nk − 1|.

    Returns:
        :class:`MBARResult` with f̂ (f̂_0 = 0), its asymptotic covariance (eq. D4 via SVD), the
        (N, K) log-weights, and :meth:`MBARResult.expectation` / :meth:`MBARResult.free_energy`
        at any further state.
    """
    u, Nk = _check_inputs(u_kn, N_k, max_iter, tol)
    s = np.flatnonzero(Nk > 0)
    f_s, iters, converged = _solve(u[s], Nk[s], max_iter, tol)
    if not converged:
        warnings.warn(f"MBAR did not converge in {max_iter} Newton iterations (tol = {tol:g}); "
                      "the states may not overlap", ConvergenceWarning, stacklevel=2)
    ld = logsumexp(f_s[:, None] - u[s] + np.log(Nk[s])[:, None], axis=0)
    f = -logsumexp(-u - ld[None, :], axis=1)
    shift = f[0]
    f -= shift
    ld -= shift
    logW = (f[:, None] - u - ld[None, :]).T  # (N, K)
    W = np.exp(logW)

    # Θ = W^T P W with P = U (I − M)^+ U^T + (I − U U^T) (module docstring)
    Ws = W[:, s]
    U, sv, _ = np.linalg.svd(Ws, full_matrices=False)
    U = U[:, sv > sv[0] * 1e-12]
    B = U.T @ Ws
    M = (B * Nk[s][None, :]) @ B.T
    lam, Q = np.linalg.eigh(np.eye(M.shape[0]) - M)
    inv = np.zeros_like(lam)
    order = np.argsort(lam)
    keep = order[1:][lam[order[1:]] > _ZERO_EIG]  # drop the structural zero (constant shift of f)
    if keep.size < lam.size - 1 and s.size > 1:
        warnings.warn("MBAR: some states do not overlap with the others (I − W N W^T has more than "
                      "one zero eigenvalue); their free-energy errors are not meaningful", ConvergenceWarning,
                      stacklevel=2)
    inv[keep] = 1.0 / lam[keep]
    core = (Q * inv[None, :]) @ Q.T
    A = U.T @ W
    theta = A.T @ core @ A + W.T @ W - A.T @ A
    theta = 0.5 * (theta + theta.T)
    t0 = theta[:, [0]]
    f_cov = theta - t0 - t0.T + theta[0, 0]
    return MBARResult(f=f, f_cov=f_cov, log_weights=logW, N_k=Nk, theta=theta, log_denom=ld,
                      basis=U, core=core, iterations=int(iters), converged=bool(converged))


# ============================================================================ tempered ladders
class LadderMBAR(NamedTuple):
    """MBAR solved once on a tempered run (:func:`mbar_ladder`); evaluate it with
    :func:`mbar_curve` and invert it with :func:`beta_at_energy`.

    Attributes:
        result: the :class:`MBARResult` over the rungs (ascending β; state 0 = lowest rung).
        betas: (K,) the rungs, ascending.
        energies: (N,) H = nL_n of the kept draws, pooled in rung order.
        inefficiency: (K,) statistical inefficiency g_k = draws/ESS of H at each rung (≥ 1).
        stride: (K,) the thinning applied at each rung (subsampling by g_k, or the one asked).
        n: the data size of the run; log_z0: log ∫φ (0 for a normalized prior).
    """

    result: MBARResult
    betas: np.ndarray
    energies: np.ndarray
    inefficiency: np.ndarray
    stride: np.ndarray
    n: int
    log_z0: float

    @property
    def absolute(self) -> bool:
        """Whether the ladder includes β = 0, so that log_Z is absolute (not relative to β_min)."""
        return bool(self.betas[0] == 0.0)

    def at(self, betas):
        """E, E_se, Var, Var_se, log_Z, log_Z_se at the β's (arrays, in the order given)."""
        b = np.atleast_1d(_as_float_array(betas, "betas"))
        if b.ndim != 1 or b.size == 0 or not np.all(np.isfinite(b)) or np.any(b < 0):
            raise InvalidArgumentError(f"`betas` must be a non-empty 1-D array of finite β >= 0, got {betas!r}")
        H = self.energies
        out = {k: np.empty(b.size) for k in ("E", "E_se", "Var", "Var_se", "log_Z", "log_Z_se")}
        r = self.result
        w0 = np.exp(r.log_weights[:, 0])
        for lo in range(0, b.size, 64):  # chunks keep the (G, N) temporaries small
            bb = b[lo:lo + 64]
            f, w, _ = r._new_weights(bb[:, None] * H[None, :])
            E = w @ H
            dev = H[None, :] - E[:, None]
            V = np.einsum("gn,gn->g", w, dev**2)
            sl = slice(lo, lo + bb.size)
            out["E"][sl] = E
            out["Var"][sl] = V
            out["E_se"][sl] = np.sqrt(r._quad(dev * w))
            out["Var_se"][sl] = np.sqrt(r._quad((dev**2 - V[:, None]) * w))
            out["log_Z"][sl] = -f + self.log_z0
            out["log_Z_se"][sl] = np.sqrt(r._quad(w - w0[None, :]))
        return out

    def energy(self, beta) -> float:
        """E^β[nL_n] by MBAR at one β (no errors): the function :func:`beta_at_energy` inverts."""
        lw = -float(beta) * self.energies - self.result.log_denom
        return float(np.exp(lw - logsumexp(lw)) @ self.energies)


def _thin_indices(num_draws, g):
    """pymbar's subsampling: indices round(i·g), i = 0, 1, … (distinct, < num_draws)."""
    idx = np.unique(np.round(np.arange(0, num_draws / g) * g).astype(int))
    return idx[idx < num_draws]


def mbar_ladder(samples: Samples, *, subsample=True, min_chains: int = 1, log_z0: float = 0.0,
                max_iter: int = 100, tol: float = 1e-10) -> LadderMBAR:
    """Solve MBAR once on a tempered run: u_k(w) = β_k·nL_n(w) for the draws of every rung.

    Only healthy chains are used (:func:`~slt_thermo.thermo.stats.healthy_draws`). MBAR's
    errors assume uncorrelated draws, so by default (``subsample=True``) each rung is thinned by
    the statistical inefficiency g_k = (chains × draws)/ESS of its energy nL_n (ArviZ ESS for
    the mean; u_k is linear in nL_n, so that is the only relevant observable): each chain keeps
    draws round(i·g_k). ``subsample=False`` keeps every draw (the estimates are still
    consistent, but the errors are too small for correlated chains); an integer thins every
    rung by that stride.

    ``log_z0`` = log ∫φ for an unnormalized prior (as in :func:`~slt_thermo.free_energy`).
    """
    if not isinstance(samples, Samples):
        raise InvalidArgumentError(f"`samples` must be slt_thermo.Samples, got {type(samples).__name__}")
    if not (subsample is True or subsample is False
            or (isinstance(subsample, (int, np.integer)) and not isinstance(subsample, bool) and subsample >= 1)):
        raise InvalidArgumentError(f"`subsample` must be True, False or a positive integer stride, got {subsample!r}")
    if not (isinstance(log_z0, (int, float)) and math.isfinite(log_z0)):
        raise InvalidArgumentError(f"`log_z0` must be a finite float, got {log_z0!r}")
    betas = np.asarray(samples.betas, dtype=float)
    draws = healthy_draws(samples, min_chains=min_chains)
    order = np.argsort(betas, kind="stable")
    if np.any(np.diff(betas[order]) == 0):
        raise InvalidArgumentError("`samples` has repeated β rungs; MBAR needs distinct states")
    kept, ineff, stride = [], [], []
    for k in order:
        x = np.asarray(draws[k], dtype=float)
        ess = ess_mean(x) if x.shape[1] >= 4 else float(x.size)
        g = x.size / ess if math.isfinite(ess) and ess > 0 else 1.0
        g = max(g, 1.0)
        ineff.append(g)
        if subsample is True:
            step = g
        elif subsample is False:
            step = 1.0
        else:
            step = float(subsample)
        stride.append(step)
        idx = _thin_indices(x.shape[1], step)
        kept.append(x[:, idx].ravel())
    N_k = np.array([v.size for v in kept])
    H = np.concatenate(kept)
    b = betas[order]
    res = mbar(b[:, None] * H[None, :], N_k, max_iter=max_iter, tol=tol)
    return LadderMBAR(result=res, betas=b, energies=H, inefficiency=np.asarray(ineff),
                      stride=np.asarray(stride), n=samples.n, log_z0=float(log_z0))


def _default_grid(rungs, num_between):
    pieces = [np.linspace(a, b, num_between + 2)[:-1] for a, b in itertools.pairwise(rungs)]
    return np.concatenate(pieces + [rungs[-1:]])


def mbar_curve(samples, betas=None, *, num_between: int = 4, subsample=True, log_z0: float = 0.0) -> xr.Dataset:
    """The MBAR thermodynamic curve of a tempered run over a fine β grid.

    Args:
        samples: a :class:`~slt_thermo.Samples` over a β-ladder (solved with :func:`mbar_ladder`,
            whose ``subsample``/``log_z0`` apply), or an already solved :class:`LadderMBAR`.
        betas: the grid; default the rungs plus ``num_between`` equally spaced points between
            each pair of neighbouring rungs. Points outside [β_min, β_max] are extrapolations
            (allowed; their errors grow fast).

    Returns:
        ``xarray.Dataset`` over ``beta`` with ``E`` = E^β[nL_n], ``E_se``, ``Var`` = Var^β[nL_n],
        ``Var_se``, ``log_Z`` and ``log_Z_se``, and a boolean coordinate ``rung`` (β is a rung).
        ``log_Z`` is log Z(β) = −F(β) when the ladder includes β = 0 (``attrs["absolute"]``,
        normalized prior or ``log_z0`` given); otherwise it is log Z(β) − log Z(β_min), with
        β_min in ``attrs["log_Z_reference_beta"]``. Errors are MBAR's asymptotic ones (module
        docstring). E is smooth and strictly decreasing in β (dE/dβ = −Var).
    """
    fit = samples if isinstance(samples, LadderMBAR) else mbar_ladder(samples, subsample=subsample, log_z0=log_z0)
    if betas is None:
        if isinstance(num_between, bool) or not isinstance(num_between, (int, np.integer)) or num_between < 0:
            raise InvalidArgumentError(f"`num_between` must be a non-negative integer, got {num_between!r}")
        grid = _default_grid(fit.betas, int(num_between)) if fit.betas.size > 1 else fit.betas.copy()
    else:
        grid = np.atleast_1d(_as_float_array(betas, "betas"))
    vals = fit.at(grid)
    rung = np.isin(grid, fit.betas)
    return xr.Dataset(
        {k: ("beta", v) for k, v in vals.items()},
        coords={"beta": grid, "rung": ("beta", rung)},
        attrs={"n": fit.n, "method": "mbar", "absolute": int(fit.absolute),
               "log_Z_reference_beta": float(fit.betas[0]), "num_draws_kept": int(fit.energies.size),
               "log_z0": fit.log_z0},
    )


class BetaAtEnergy(NamedTuple):
    """β̂ with E^β̂[nL_n] = the given energy, and its standard error (floats, or arrays)."""

    beta: float | np.ndarray
    se: float | np.ndarray


def beta_at_energy(source, energy, energy_se=0.0) -> BetaAtEnergy:
    """Invert the MBAR curve: the β̂ at which E^β̂[nL_n] equals ``energy`` (an "energy-matching
    thermometer").

    Args:
        source: a :class:`~slt_thermo.Samples` over a β-ladder, a :class:`LadderMBAR` (solve once
            with :func:`mbar_ladder`, then call this many times), or a curve Dataset from
            :func:`mbar_curve`. With the first two the root is found on the exact MBAR E(β)
            (brentq); with a Dataset, by monotone (PCHIP) interpolation of its grid.
        energy: the measured mean energy Ē (float or array).
        energy_se: its standard error (same shape, or scalar).

    Returns:
        :class:`BetaAtEnergy` (β̂, se). The delta method with dE/dβ = −Var^β[nL_n] gives
        se = √(energy_se² + E_se(β̂)²) / Var^β̂[nL_n], combining the error of Ē with the MBAR
        curve's own error at β̂ (independent). β̂ is searched in [β_min, β_max] of the ladder; an
        energy outside [E(β_max), E(β_min)] raises :class:`~slt_thermo.InvalidArgumentError`.
    """
    e = _as_float_array(energy, "energy")
    es = np.broadcast_to(_as_float_array(energy_se, "energy_se"), e.shape) if np.ndim(energy_se) else \
        np.full(e.shape, float(energy_se))
    if not np.all(np.isfinite(e)):
        raise InvalidArgumentError("`energy` must be finite")
    if not np.all(np.isfinite(es)) or np.any(es < 0):
        raise InvalidArgumentError("`energy_se` must be finite and >= 0")
    scalar = e.ndim == 0
    ef = np.atleast_1d(e).ravel()
    esf = np.atleast_1d(es).ravel()
    if isinstance(source, xr.Dataset):
        beta, E_se, V = _invert_grid(source, ef)
    else:
        if isinstance(source, Samples):
            source = mbar_ladder(source)
        if not isinstance(source, LadderMBAR):
            raise InvalidArgumentError(
                f"`source` must be Samples, a LadderMBAR or an mbar_curve Dataset, got {type(source).__name__}")
        beta = _invert_exact(source, ef)
        vals = source.at(beta)
        E_se, V = vals["E_se"], vals["Var"]
    se = np.sqrt(esf**2 + E_se**2) / V
    if scalar:
        return BetaAtEnergy(float(beta[0]), float(se[0]))
    return BetaAtEnergy(beta.reshape(e.shape), se.reshape(e.shape))


def _range_error(e, lo, hi):
    return InvalidArgumentError(
        f"`energy` = {e:.6g} is outside the ladder's MBAR energy range [{lo:.6g}, {hi:.6g}] "
        "(E at β_max, β_min): extend the ladder to reach it")


def _invert_exact(fit, energies):
    from scipy.optimize import brentq

    b_lo, b_hi = float(fit.betas[0]), float(fit.betas[-1])
    E_hi, E_lo = fit.energy(b_lo), fit.energy(b_hi)
    out = np.empty(energies.size)
    for i, e in enumerate(energies):
        if not E_lo <= e <= E_hi:
            raise _range_error(e, E_lo, E_hi)
        if e == E_hi:
            out[i] = b_lo
        elif e == E_lo:
            out[i] = b_hi
        else:
            out[i] = brentq(lambda b, e=e: fit.energy(b) - e, b_lo, b_hi, xtol=1e-14 * max(b_hi, 1e-300), rtol=1e-12)
    return out


def _invert_grid(curve, energies):
    from scipy.interpolate import PchipInterpolator

    missing = {"E", "E_se", "Var"} - set(curve.data_vars)
    if missing or "beta" not in curve.dims:
        raise InvalidArgumentError(f"`source` Dataset must come from mbar_curve (missing {sorted(missing)})")
    c = curve.sortby("beta")
    b, E = c["beta"].values, c["E"].values
    if b.size < 2 or np.any(np.diff(E) >= 0):
        raise InvalidArgumentError("`source` curve must have >= 2 points with E strictly decreasing in β")
    E_lo, E_hi = float(E[-1]), float(E[0])
    for e in energies:
        if not E_lo <= e <= E_hi:
            raise _range_error(e, E_lo, E_hi)
    beta = PchipInterpolator(-E, b)(-energies)
    E_se = np.interp(beta, b, c["E_se"].values)
    V = PchipInterpolator(b, c["Var"].values)(beta)
    return beta, E_se, V
