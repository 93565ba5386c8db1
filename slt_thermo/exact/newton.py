"""RLCT of a non-degenerate polynomial from its Newton polyhedron (REFERENCE §1.g).

For K(w) = Σ_α c_α w^α ≥ 0 near 0 with K(0) = 0, the Newton polyhedron is
Γ₊ = conv{α : c_α ≠ 0} + R^d_{≥0}. With prior φ ∝ Π_j |w_j|^{h_j} (φ flat: h = 0) and
v = h + 1, the τ-distance is t* = min{t : t·v ∈ Γ₊}; for non-degenerate K, λ = 1/t* and m is
the codimension of the smallest face of Γ₊ that contains p = t*·v.

Everything here is exact: t* is the value of a linear program solved in rational arithmetic
(:mod:`._lp`), certified by strong duality (the primal and dual optima coincide), and m is the
dimension of the normal cone of Γ₊ at p (= the codimension of the smallest face through p),
found by a further exact LP that exposes the implicit equalities of that cone.
"""

from __future__ import annotations

import itertools
import numbers
import re
from fractions import Fraction
from typing import Sequence

import sympy

from ..errors import InvalidArgumentError, SLTThermoError
from ._lp import linprog_exact, rank_exact
from .rlct import RLCT, _prior_exponents

__all__ = ["DegenerateError", "rlct_newton"]


class DegenerateError(SLTThermoError):
    """K is degenerate with respect to its Newton polyhedron (or could not be certified
    non-degenerate), so the Newton-polyhedron formula for (λ, m) does not apply."""


# ---------------------------------------------------------------------------------------------
# input parsing
# ---------------------------------------------------------------------------------------------


def _natural_key(sym) -> tuple:
    parts = re.split(r"(\d+)", str(sym))
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def _parse(K, variables) -> tuple[list[sympy.Symbol], dict[tuple[int, ...], sympy.Expr]]:
    """Return (variables, {exponent tuple: non-zero real sympy coefficient})."""
    if isinstance(K, (str, bytes)):
        raise InvalidArgumentError(
            "K must be a sympy polynomial or a list of exponent tuples, not a string; "
            "build it with sympy.symbols, e.g. w1, w2 = sympy.symbols('w1 w2')"
        )
    if isinstance(K, (list, tuple)) and not isinstance(K, sympy.Basic):
        return _parse_exponents(K, variables)
    if isinstance(K, sympy.Poly):
        gens = list(K.gens) if variables is None else _check_variables(variables, None)
        expr = K.as_expr()
    else:
        try:
            expr = sympy.sympify(K, strict=True)
        except (sympy.SympifyError, TypeError):
            raise InvalidArgumentError(
                f"K must be a sympy polynomial or a list of exponent tuples, got {K!r}"
            ) from None
        if not isinstance(expr, sympy.Expr):
            raise InvalidArgumentError(f"K must be a sympy polynomial expression, got {K!r}")
        if variables is None:
            gens = sorted(expr.free_symbols, key=_natural_key)
        else:
            gens = _check_variables(variables, None)
    if not gens:
        raise InvalidArgumentError(f"K must depend on at least one variable, got K = {expr}")
    extra = expr.free_symbols - set(gens)
    if extra:
        raise InvalidArgumentError(
            f"K contains symbols {sorted(map(str, extra))} that are not among the variables "
            f"{[str(g) for g in gens]}; coefficients must be numbers"
        )
    if not expr.is_polynomial(*gens):
        raise InvalidArgumentError(
            f"K must be a polynomial in {[str(g) for g in gens]}, got K = {expr} "
            "(the Newton-polyhedron method needs a polynomial; expand analytic K first)"
        )
    expr = sympy.expand(expr)
    if expr.has(sympy.Float):  # floats -> exact rationals (by their decimal representation)
        expr = sympy.nsimplify(expr, rational=True)
    poly = sympy.Poly(expr, *gens)
    terms = {}
    for monom, coeff in poly.terms():
        if coeff == 0:
            continue
        if coeff.is_real is not True:
            raise InvalidArgumentError(
                f"K must have real coefficients, got coefficient {coeff} of {monom}"
            )
        terms[tuple(int(e) for e in monom)] = coeff
    if not terms:
        raise InvalidArgumentError("K is the zero polynomial; K must be non-zero")
    return gens, terms


def _check_variables(variables, d):
    if isinstance(variables, (str, bytes)) or not isinstance(variables, Sequence):
        try:
            variables = list(variables)
        except TypeError:
            raise InvalidArgumentError(
                f"variables must be a sequence of sympy symbols, got {variables!r}"
            ) from None
    variables = list(variables)
    if not variables or not all(isinstance(v, sympy.Symbol) for v in variables):
        raise InvalidArgumentError(
            f"variables must be a non-empty sequence of sympy symbols, got {variables!r}"
        )
    if len(set(variables)) != len(variables):
        raise InvalidArgumentError(f"variables must be distinct, got {variables!r}")
    if d is not None and len(variables) != d:
        raise InvalidArgumentError(
            f"variables must have one symbol per exponent coordinate ({d}), got {len(variables)}"
        )
    return variables


def _parse_exponents(K, variables):
    if len(K) == 0:
        raise InvalidArgumentError("K is an empty exponent list; give at least one exponent")
    exps = []
    for i, alpha in enumerate(K):
        if isinstance(alpha, (str, bytes)) or not isinstance(alpha, Sequence):
            raise InvalidArgumentError(f"K[{i}] must be a tuple of non-negative integers")
        row = []
        for j, e in enumerate(alpha):
            if isinstance(e, bool) or not isinstance(e, numbers.Integral) or e < 0:
                raise InvalidArgumentError(f"K[{i}][{j}] must be a non-negative integer, got {e!r}")
            row.append(int(e))
        exps.append(tuple(row))
    d = len(exps[0])
    if d == 0 or any(len(a) != d for a in exps):
        raise InvalidArgumentError("all exponent tuples in K must have the same length >= 1")
    if variables is None:
        gens = list(sympy.symbols(f"w1:{d + 1}"))
    else:
        gens = _check_variables(variables, d)
    return gens, {a: sympy.Integer(1) for a in exps}


# ---------------------------------------------------------------------------------------------
# exact LPs on the Newton polyhedron
# ---------------------------------------------------------------------------------------------


def _tau_distance(exps: list[tuple[int, ...]], v: list[Fraction]) -> tuple[Fraction, list]:
    """t* = min{t : t v ∈ conv(exps) + R^d_{≥0}}, certified by primal = dual (exact LPs)."""
    d = len(v)
    # dual: max z s.t. z ≤ <c, α> for all α, <c, v> = 1, c ≥ 0, z ≥ 0 (variables c_1..c_d, z)
    dual = linprog_exact(
        c=[0] * d + [-1],
        A_ub=[[-a for a in alpha] + [1] for alpha in exps],
        b_ub=[0] * len(exps),
        A_eq=[list(v) + [0]],
        b_eq=[1],
    )
    # primal: min t s.t. Σ μ_α α_j − t v_j ≤ 0, Σ μ_α = 1, μ ≥ 0, t ≥ 0
    primal = linprog_exact(
        c=[0] * len(exps) + [1],
        A_ub=[[alpha[j] for alpha in exps] + [-v[j]] for j in range(d)],
        b_ub=[0] * d,
        A_eq=[[1] * len(exps) + [0]],
        b_eq=[1],
    )
    if dual.status != "optimal" or primal.status != "optimal" or -dual.value != primal.value:
        raise SLTThermoError(  # pragma: no cover - would be a bug in the exact LP solver
            f"exact LP certificate failed: primal {primal}, dual {dual}"
        )
    return primal.value, dual.x[:d]


def _normal_cone_dim(exps, p: list[Fraction]) -> int:
    """dim of the normal cone N(p) = {c ≥ 0 : <c, α − p> ≥ 0 ∀α}, i.e. the codimension of the
    smallest face of Γ₊ containing p.

    LP: maximize Σ s_i with g_i(c) ≥ s_i, 0 ≤ s_i ≤ 1, where g ranges over the constraints
    c_j ≥ 0 and <c, α − p> ≥ 0. Because N(p) is a cone, the optimum sets s_i = 1 exactly for
    the constraints that are not implicit equalities; dim N(p) = d − rank(implicit equalities).
    """
    d = len(p)
    rows = [[Fraction(int(j == i)) for j in range(d)] for i in range(d)]
    rows += [[Fraction(a) - pj for a, pj in zip(alpha, p)] for alpha in exps]
    k = len(rows)
    A_ub, b_ub = [], []
    for i, g in enumerate(rows):  # s_i − g_i(c) ≤ 0
        A_ub.append([-x for x in g] + [Fraction(int(j == i)) for j in range(k)])
        b_ub.append(0)
    for i in range(k):  # s_i ≤ 1
        A_ub.append([0] * d + [int(j == i) for j in range(k)])
        b_ub.append(1)
    res = linprog_exact(c=[0] * d + [-1] * k, A_ub=A_ub, b_ub=b_ub)
    if res.status != "optimal":  # pragma: no cover - the LP is feasible (s = 0) and bounded
        raise SLTThermoError(f"normal-cone LP failed: {res.status}")
    implicit = [rows[i] for i in range(k) if res.x[d + i] == 0]
    return d - rank_exact(implicit)


def _face_closure(exps, T: frozenset):
    """Smallest compact face of Γ₊ containing the exponents T (indices into exps).

    Compact faces are the argmin sets F_c = {α : <c, α> minimal} with c > 0. LP over c ≥ 1 (any
    c > 0 rescales into it): <c, α_t − α_t0> = 0 on T, <c, α − α_t0> ≥ s_α ≥ 0 elsewhere,
    s_α ≤ 1, maximize Σ s_α; the face is T ∪ {α : s_α = 0}. Returns (face, c) or None when T
    lies in no compact face.
    """
    d = len(exps[0])
    T = sorted(T)
    t0 = exps[T[0]]
    others = [i for i in range(len(exps)) if i not in T]
    k = len(others)
    # variables: c' = c − 1 ≥ 0 (d of them), then s (k of them)
    A_eq, b_eq = [], []
    for t in T[1:]:
        diff = [a - b for a, b in zip(exps[t], t0)]
        A_eq.append(diff + [0] * k)
        b_eq.append(-sum(diff))
    A_ub, b_ub = [], []
    for col, i in enumerate(others):
        diff = [a - b for a, b in zip(exps[i], t0)]
        A_ub.append([-x for x in diff] + [int(j == col) for j in range(k)])
        b_ub.append(sum(diff))
        A_ub.append([0] * d + [int(j == col) for j in range(k)])
        b_ub.append(1)
    res = linprog_exact(c=[0] * d + [-1] * k, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq)
    if res.status != "optimal":
        return None
    face = frozenset(T) | frozenset(i for col, i in enumerate(others) if res.x[d + col] == 0)
    c = [x + 1 for x in res.x[:d]]
    return face, c


def _compact_faces(exps):
    """All compact faces of Γ₊ (as frozensets of exponent indices) with a positive normal each.

    Breadth-first: start from the smallest faces through each exponent, then close every face
    F with each further exponent β (the smallest face containing F ∪ {β}). Every compact face
    G is reached along a maximal chain of faces inside G, so the enumeration is complete.
    """
    faces = {}
    queue = []
    for i in range(len(exps)):
        got = _face_closure(exps, frozenset([i]))
        if got is not None and got[0] not in faces:
            faces[got[0]] = got[1]
            queue.append(got[0])
    while queue:
        F = queue.pop()
        for i in range(len(exps)):
            if i in F:
                continue
            got = _face_closure(exps, F | {i})
            if got is not None and got[0] not in faces:
                faces[got[0]] = got[1]
                queue.append(got[0])
    return faces


# ---------------------------------------------------------------------------------------------
# non-degeneracy: singular points of face polynomials in the real torus
# ---------------------------------------------------------------------------------------------

_TRIAL_VALUES = [sympy.Integer(1), sympy.Integer(-1), sympy.Integer(2), sympy.Integer(-2),
                 sympy.Rational(1, 2), sympy.Integer(3)]


class _Undecided(Exception):
    pass


def _is_real_nonzero(val) -> bool | None:
    val = sympy.nsimplify(val) if isinstance(val, sympy.Float) else val
    real, zero = val.is_real, val.is_zero
    if real is None or zero is None:
        real = sympy.simplify(sympy.im(val)).is_zero
        zero = sympy.simplify(val).is_zero
    if real is None or zero is None:
        return None
    return bool(real and not zero)


def _some_coordinate_has_no_real_value(eqs, rest, y) -> bool:
    """True if, for some coordinate x, the ideal of the system (with y·Π rest − 1) contains a
    univariate polynomial p(x) without non-zero real roots (exact Sturm count): then the system
    has no solution in the real torus."""
    for x in rest:
        others = [s for s in rest if s != x]
        G = sympy.groebner(eqs + [y * sympy.Mul(*rest) - 1], y, *others, x, order="lex")
        for g in G.exprs:
            if g.free_symbols == {x}:
                p = sympy.Poly(g, x)
                n_real = p.count_roots()  # distinct real roots (Sturm), exact
                if n_real == p.count_roots(0, 0):  # none, or only x = 0
                    return True
    return False


def _torus_singular_point(face_terms: dict, gens: list):
    """A real point w ∈ (R∖{0})^d with K_γ(w) = 0 and ∇K_γ(w) = 0, None if there is provably
    none, or raise _Undecided.

    The face polynomial K_γ is quasi-homogeneous for a positive weight vector c of its face
    (one exists because the face is compact), so the real orbits t ↦ (t^{c_j} w_j), t > 0, map
    singular points to singular points and let us fix the first variable to ±1. Dividing by the
    common monomial factor does not change the torus singular points.
    """
    d = len(gens)
    low = [min(a[j] for a in face_terms) for j in range(d)]
    reduced = {tuple(a[j] - low[j] for j in range(d)): c for a, c in face_terms.items()}
    used = [j for j in range(d) if any(a[j] for a in reduced)]
    if not used:  # a single monomial: no zero in the torus
        return None
    if all(c.is_positive for c in reduced.values()) and all(
        a[j] % 2 == 0 for a in reduced for j in range(d)
    ):  # a positive combination of even monomials is > 0 on the torus
        return None
    Q = sum(c * sympy.Mul(*[gens[j] ** a[j] for j in used]) for a, c in reduced.items())
    first, rest = used[0], [gens[j] for j in used[1:]]
    free_default = {gens[j]: sympy.Integer(1) for j in range(d) if j not in used}
    equations = [Q] + [sympy.diff(Q, gens[j]) for j in used]

    def witness(point):
        point = {**free_default, **point}
        if all(sympy.simplify(e.subs(point)) == 0 for e in equations):
            return point
        return None

    undecided = False
    for sign in (sympy.Integer(1), sympy.Integer(-1)):
        eqs = [sympy.expand(e.subs(gens[first], sign)) for e in equations]
        eqs = [e for e in eqs if e != 0]
        if not rest:
            if not eqs:
                return witness({gens[first]: sign})
            continue
        if not eqs:
            return witness({gens[first]: sign, **{s: sympy.Integer(1) for s in rest}})
        y = sympy.Dummy("y")
        G = sympy.groebner(eqs + [y * sympy.Mul(*rest) - 1], *rest, y, order="grevlex")
        if list(G.exprs) == [1]:
            continue  # no complex solution with all coordinates non-zero
        if G.is_zero_dimensional:
            try:
                sols = sympy.solve_poly_system(list(G.exprs), *rest, y)
            except NotImplementedError:
                undecided = True
                continue
            for sol in sols:
                flags = [_is_real_nonzero(val) for val in sol[:-1]]
                if all(f is True for f in flags):
                    pt = witness({gens[first]: sign, **dict(zip(rest, sol[:-1]))})
                    if pt is not None:
                        return pt
                    undecided = True  # pragma: no cover - inconsistent solver output
                elif any(f is None for f in flags):
                    undecided = True
            continue
        # positive-dimensional. (1) Certificate of emptiness: some coordinate's elimination
        # polynomial (lex Gröbner basis with that coordinate last, y keeps all coordinates
        # non-zero) has no non-zero real root.
        if _some_coordinate_has_no_real_value(eqs, rest, y):
            continue
        # (2) look for a real witness on sympy's parametric solutions
        try:
            sols = sympy.solve(eqs, rest, dict=True)
        except NotImplementedError:
            sols = []
        for sol in sols:
            params = sorted(
                {s for s in rest if s not in sol} | set().union(
                    *[val.free_symbols for val in sol.values()]
                ),
                key=str,
            )
            for trial in itertools.product(_TRIAL_VALUES, repeat=len(params)):
                sub = dict(zip(params, trial))
                point = {s: (sol[s].subs(sub) if s in sol else sub[s]) for s in rest}
                if all(_is_real_nonzero(val) is True for val in point.values()):
                    pt = witness({gens[first]: sign, **point})
                    if pt is not None:
                        return pt
        undecided = True
    if undecided:
        raise _Undecided
    return None


def _check_nondegenerate(gens, terms, exps) -> None:
    faces = _compact_faces(exps)
    # K ≥ 0 near 0 forces every vertex monomial to be even with a positive coefficient
    for face in faces:
        if len(face) == 1:
            alpha = exps[next(iter(face))]
            coeff = terms[alpha]
            if any(a % 2 for a in alpha) or not coeff.is_positive:
                mono = sympy.Mul(*[g**a for g, a in zip(gens, alpha)])
                raise InvalidArgumentError(
                    f"K must be non-negative near 0, but its vertex monomial {coeff}*{mono} "
                    "takes negative values on the torus (the Newton method needs K >= 0)"
                )
    if all(c.is_positive for c in terms.values()) and all(a % 2 == 0 for e in exps for a in e):
        return  # every face polynomial is a positive sum of even monomials: > 0 on the torus
    for face in sorted(faces, key=lambda f: (len(f), sorted(f))):
        if len(face) < 2:
            continue
        face_terms = {exps[i]: terms[exps[i]] for i in face}
        K_face = sympy.Add(*[c * sympy.Mul(*[g**a for g, a in zip(gens, al)])
                             for al, c in face_terms.items()])
        try:
            point = _torus_singular_point(face_terms, gens)
        except _Undecided:
            raise DegenerateError(
                f"could not certify that the face polynomial {K_face} has no singular point in "
                "the real torus (sympy could not decide); the Newton-polyhedron formula is "
                "refused rather than risk a wrong lambda"
            ) from None
        if point is not None:
            raise DegenerateError(
                f"K is degenerate: the face polynomial {K_face} has a singular point in the real "
                f"torus at {point}; the Newton value 1/t* is then only an upper bound on lambda"
            )


# ---------------------------------------------------------------------------------------------
# public
# ---------------------------------------------------------------------------------------------


def rlct_newton(K, variables=None, h=None) -> RLCT:
    """RLCT (λ, m) of a non-degenerate polynomial K ≥ 0 from its Newton polyhedron.

    λ = 1/t*, where t* = min{t : t·(h+1) ∈ Γ₊(K)} is the Newton (τ-)distance, and m is the
    codimension of the smallest face of Γ₊ containing t*·(h+1) (a vertex gives m = d, the
    relative interior of a facet m = 1).

    Source: REFERENCE §1.g — Varchenko, Funct. Anal. Appl. 10 (1976); S. Lin, PhD thesis, UC
    Berkeley (2011), Newton-polyhedra chapter (τ-distance, multiplicity); AGSLT §7 [MEM for
    theorem numbers]. Conditions: K is real-analytic (here: a polynomial) with K(0) = 0 and
    K ≥ 0 near 0; K is non-degenerate; the prior is b(w) Π_j |w_j|^{h_j} with b(0) > 0.

    Exactness: t* is computed by an exact rational simplex method and certified by strong
    duality (primal and dual optimal values coincide exactly), so λ is an exact Fraction. m is
    the dimension of the normal cone of Γ₊ at t*·(h+1), also from an exact LP.

    Non-degeneracy check (real version, REFERENCE §1.g): every compact face γ of Γ₊ is
    enumerated (exact LPs), and the face polynomial K_γ is tested for a singular point in the
    real torus (R∖{0})^d, i.e. K_γ = 0 = ∇K_γ. What is decided, and how:

    - K_γ a single monomial, or a positive combination of even monomials: no torus zero
      (certified; this covers every sum of squares of monomials without further work).
    - Otherwise, using the quasi-homogeneity of K_γ one coordinate is fixed to ±1 and a Gröbner
      basis of {K_γ, ∇K_γ, y·Π w_j − 1} is computed with sympy. A basis {1} certifies that no
      complex torus singular point exists. A zero-dimensional system is solved completely
      (sympy.solve_poly_system) and each solution is tested for being real.
    - A positive-dimensional system is certified free of real torus points when, for some
      coordinate x, its elimination ideal contains a polynomial p(x) with no non-zero real root
      (lex Gröbner basis, exact Sturm count). Otherwise sympy's parametric solutions are
      searched for a real witness at a few rational parameter values; a witness is verified by
      exact substitution and proves degeneracy.

    If none of this decides (a positive-dimensional complex singular set with no real witness
    found and no elimination certificate, or a root whose realness sympy cannot determine),
    DegenerateError is raised as a refusal, since non-degeneracy is not certified. Example of
    such a false refusal: K = (w1² + w1w2 + w2² + w3²)², which is non-degenerate (λ = 3/4).

    Not checked: that K ≥ 0 on a whole neighbourhood of 0 (only the necessary condition that
    every vertex monomial of Γ₊ is even with a positive coefficient is enforced). K is tested
    in expanded form (REFERENCE's criterion for K ≥ 0), not through the f_i of a
    representation K = Σ f_i² (Lin's sos-non-degeneracy).

    Parameters
    ----------
    K : sympy expression or sympy.Poly, or a sequence of exponent tuples
        The polynomial. An exponent list such as [(2, 0), (0, 4)] means Σ_α w^α with unit
        coefficients (the generic-coefficient case).
    variables : sequence of sympy.Symbol, optional
        The coordinates w_1..w_d, in the order used by h. Default: the Poly's generators, or
        the free symbols of K sorted naturally by name (w1, w2, ..., w10); for an exponent
        list, w1..wd. Variables that do not occur in K are allowed (they are free directions).
    h : sequence of int or Fraction, optional
        Prior exponents h_j > −1 (prior ∝ Π |w_j|^{h_j}); None means flat.

    Raises
    ------
    InvalidArgumentError
        K is not a polynomial, is zero or empty, has K(0) ≠ 0, symbolic coefficients, or a
        vertex monomial that can be negative; variables or h have the wrong length.
    DegenerateError
        K is degenerate (a witness singular point was found) or could not be certified
        non-degenerate.
    """
    gens, terms = _parse(K, variables)
    d = len(gens)
    v = [hj + 1 for hj in _prior_exponents(h, d)]
    exps = sorted(terms)
    if any(all(a == 0 for a in alpha) for alpha in exps):
        raise InvalidArgumentError(
            f"K must vanish at the origin (K(0) = 0), but it has the constant term "
            f"{terms[tuple([0] * d)]}"
        )
    _check_nondegenerate(gens, terms, exps)
    t_star, _ = _tau_distance(exps, v)
    p = [t_star * vj for vj in v]
    return RLCT(1 / t_star, _normal_cone_dim(exps, p))
