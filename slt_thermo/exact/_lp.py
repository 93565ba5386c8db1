"""A small exact linear-programming solver over the rationals (fractions.Fraction).

Two-phase dense-tableau simplex with Bland's rule, which cannot cycle, so it always terminates
with an exact optimal vertex, a proof of infeasibility (phase-1 optimum > 0) or an unbounded
ray. Sizes in this package are tiny (a few dozen rows and columns), so speed is not a concern;
exactness is.

Problem form::

    minimize    c·x
    subject to  A_ub x ≤ b_ub,  A_eq x = b_eq,  x ≥ 0.
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple, Sequence

__all__ = ["LPResult", "linprog_exact", "rank_exact"]


class LPResult(NamedTuple):
    status: str  # "optimal", "infeasible" or "unbounded"
    x: list[Fraction] | None
    value: Fraction | None


def _pivot(T: list[list[Fraction]], row: int, col: int) -> None:
    pr = T[row]
    inv = 1 / pr[col]
    if inv != 1:
        T[row] = pr = [v * inv for v in pr]
    for i, r in enumerate(T):
        if i != row:
            f = r[col]
            if f:
                T[i] = [a - f * b for a, b in zip(r, pr)]


def _run_simplex(T, basis, cost, allowed) -> str:
    """Minimize cost·x over the tableau T (rows in canonical form w.r.t. ``basis``).

    Bland's rule: the entering column is the lowest-index improving column; ties in the ratio
    test go to the lowest basic-variable index. Returns "optimal" or "unbounded".
    """
    ncols = len(T[0]) - 1
    while True:
        entering = None
        for j in range(ncols):
            if not allowed[j] or j in basis:
                continue
            reduced = cost[j] - sum(cost[b] * T[i][j] for i, b in enumerate(basis))
            if reduced < 0:
                entering = j
                break
        if entering is None:
            return "optimal"
        best = None
        for i, r in enumerate(T):
            a = r[entering]
            if a > 0:
                ratio = r[-1] / a
                if best is None or ratio < best[0] or (ratio == best[0] and basis[i] < best[2]):
                    best = (ratio, i, basis[i])
        if best is None:
            return "unbounded"
        _pivot(T, best[1], entering)
        basis[best[1]] = entering


def linprog_exact(
    c: Sequence,
    A_ub: Sequence[Sequence] = (),
    b_ub: Sequence = (),
    A_eq: Sequence[Sequence] = (),
    b_eq: Sequence = (),
) -> LPResult:
    """Solve min c·x s.t. A_ub x ≤ b_ub, A_eq x = b_eq, x ≥ 0 exactly (all data rational)."""
    n = len(c)
    c = [Fraction(v) for v in c]
    rows = [([Fraction(v) for v in a], Fraction(b), True) for a, b in zip(A_ub, b_ub)]
    rows += [([Fraction(v) for v in a], Fraction(b), False) for a, b in zip(A_eq, b_eq)]
    n_slack = sum(1 for _, _, ub in rows if ub)
    n_rows = len(rows)
    if n_rows == 0:
        if any(v < 0 for v in c):
            return LPResult("unbounded", None, None)
        return LPResult("optimal", [Fraction(0)] * n, Fraction(0))
    ncols = n + n_slack + n_rows  # structural, slack, artificial
    T = []
    slack = n
    for i, (a, b, ub) in enumerate(rows):
        if len(a) != n:
            raise ValueError("constraint row has the wrong length")
        row = a + [Fraction(0)] * (n_slack + n_rows) + [b]
        if ub:
            row[slack] = Fraction(1)
            slack += 1
        if b < 0:
            row = [-v for v in row]
        row[n + n_slack + i] = Fraction(1)
        T.append(row)
    basis = [n + n_slack + i for i in range(n_rows)]
    art = set(basis)
    # phase 1: minimize the sum of the artificial variables
    cost1 = [Fraction(0)] * (n + n_slack) + [Fraction(1)] * n_rows
    _run_simplex(T, basis, cost1, [True] * ncols)
    if sum(T[i][-1] for i, b in enumerate(basis) if b in art) > 0:
        return LPResult("infeasible", None, None)
    # drive the remaining (zero-level) artificial variables out of the basis
    i = 0
    while i < len(T):
        if basis[i] in art:
            col = next((j for j in range(n + n_slack) if T[i][j] != 0), None)
            if col is None:  # redundant equality row
                del T[i]
                del basis[i]
                continue
            _pivot(T, i, col)
            basis[i] = col
        i += 1
    allowed = [j < n + n_slack for j in range(ncols)]
    cost2 = c + [Fraction(0)] * (n_slack + n_rows)
    if not T:
        if any(v < 0 for v in c):
            return LPResult("unbounded", None, None)
        return LPResult("optimal", [Fraction(0)] * n, Fraction(0))
    status = _run_simplex(T, basis, cost2, allowed)
    if status == "unbounded":
        return LPResult("unbounded", None, None)
    x = [Fraction(0)] * ncols
    for i, b in enumerate(basis):
        x[b] = T[i][-1]
    x = x[:n]
    return LPResult("optimal", x, sum((ci * xi for ci, xi in zip(c, x)), Fraction(0)))


def rank_exact(rows: Sequence[Sequence]) -> int:
    """Rank of a rational matrix by exact Gaussian elimination."""
    M = [[Fraction(v) for v in r] for r in rows]
    if not M:
        return 0
    rank, ncols = 0, len(M[0])
    for col in range(ncols):
        piv = next((i for i in range(rank, len(M)) if M[i][col] != 0), None)
        if piv is None:
            continue
        M[rank], M[piv] = M[piv], M[rank]
        p = M[rank]
        for i in range(len(M)):
            if i != rank and M[i][col] != 0:
                f = M[i][col] / p[col]
                M[i] = [a - f * b for a, b in zip(M[i], p)]
        rank += 1
        if rank == len(M):
            break
    return rank
