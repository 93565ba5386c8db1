"""Warning classes: every warning the library emits has one, and users can escalate them by kind."""

import ast
import pathlib
import warnings

import numpy as np
import pytest

import slt_thermo as st

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLASSES = {"SLTThermoWarning", "ConvergenceWarning", "NumericalWarning"}
# the standard class for a deprecated alias, which users filter with every other deprecation
STANDARD = {"DeprecationWarning"}
# converted by the owner of these folders; they empty this list when they do
NOT_YET_CONVERTED = ()


def test_hierarchy_and_top_level_exports():
    assert issubclass(st.SLTThermoWarning, UserWarning)
    assert issubclass(st.ConvergenceWarning, st.SLTThermoWarning)
    assert issubclass(st.NumericalWarning, st.SLTThermoWarning)
    assert not issubclass(st.ConvergenceWarning, st.NumericalWarning)
    for name in CLASSES | {"NumericalError", "ResultsFileError"}:
        assert getattr(st, name) is getattr(st.errors, name) and name in st.__all__
    assert issubclass(st.ResultsFileError, st.SLTThermoError) and issubclass(st.NumericalError, st.SLTThermoError)


def test_escalated_convergence_warning_raises():
    """``simplefilter("error", st.ConvergenceWarning)`` turns a real one into an exception, and
    leaves other warning kinds alone."""
    u = np.array([[0.0, 1, 2, 3, 4, 5], [0, 2, 4, 6, 8, 10]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", st.ConvergenceWarning)
        with pytest.raises(st.ConvergenceWarning, match="MBAR did not converge"):
            st.mbar(u, [3, 3], max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", st.NumericalWarning)
        with pytest.warns(st.ConvergenceWarning, match="MBAR did not converge"):
            st.mbar(u, [3, 3], max_iter=1)


def _warn_calls(tree):
    """The ``warnings.warn(...)`` / ``warn(...)`` / ``warnings.warn_explicit(...)`` calls of a module."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) and getattr(f.value, "id", None) == "warnings" else (
            f.id if isinstance(f, ast.Name) else None)
        if name in ("warn", "warn_explicit"):
            yield name, node


def _category(name, call):
    """The category expression of a warn call, or None when it has none."""
    given = [k.value for k in call.keywords if k.arg == "category"]
    if given:
        return given[0]
    if len(call.args) >= 2:
        return call.args[1]
    return None


def _category_name(expr):
    if isinstance(expr, ast.IfExp):  # `A if cond else B`: classed when both branches are
        names = {_category_name(expr.body), _category_name(expr.orelse)}
        return names.pop() if len(names) == 1 else (
            "ConvergenceWarning" if names <= CLASSES | STANDARD else None)
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return None


def _sources():
    for base in (ROOT / "slt_thermo", ROOT / "models"):
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith(NOT_YET_CONVERTED):
                yield rel, path.read_text(encoding="utf-8")


def test_every_library_warning_names_its_class():
    bad = []
    for rel, text in _sources():
        for name, call in _warn_calls(ast.parse(text)):
            cat = _category_name(_category(name, call))
            replayed = name == "warn_explicit" and cat == "category"  # re-emits a recorded warning as it was
            if cat not in CLASSES | STANDARD and not replayed:
                bad.append(f"{rel}:{call.lineno}: {name}(...) with category {cat}")
    assert not bad, "warnings without a slt_thermo warning class:\n" + "\n".join(bad)


def test_the_scan_finds_a_missing_category():
    tree = ast.parse("import warnings\nwarnings.warn('x', stacklevel=2)\nwarnings.warn('y', NumericalWarning)\n"
                     "warnings.warn('z', category=st.ConvergenceWarning)\n")
    cats = [_category_name(_category(n, c)) for n, c in _warn_calls(tree)]
    assert cats == [None, "NumericalWarning", "ConvergenceWarning"]
