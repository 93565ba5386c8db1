"""The model zoo (installed as ``slt_thermo.models``): models with known learning coefficients.

Each model has ``log_prior``, ``log_likelihood`` (one value per example), ``init(key)``,
``simulate(key, n)``, ``true_params``, the population potential ``kl(params)`` and, from
:mod:`slt_thermo.exact`, its ``rlct`` (a Fraction) and ``multiplicity``.

``ZOO`` lists the zoo with default parameters and a one-line description; ``load(spec, **params)``
resolves a zoo name or a user's ``FILE.py:FUNC``. The model classes are imported on first use
(PEP 562), so ``ZOO`` and ``load``'s argument checks cost no jax import.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import sys
from typing import TYPE_CHECKING, NamedTuple

from slt_thermo._lazy import make_lazy
from slt_thermo.errors import InvalidArgumentError, SLTThermoError

if TYPE_CHECKING:
    from .base import GaussianRegression, Model
    from .linear import (
        DeepLinear,
        LinearRegression,
        ReducedRank,
        deep_linear,
        linear_regression,
        reduced_rank,
    )
    from .mixture import GaussianMixture, gaussian_mixture
    from .monomial import Monomial, monomial
    from .tanh import TanhNet, tanh_net

# name -> the submodule defining it; imported on first attribute access
_LAZY = {
    "GaussianRegression": "base", "Model": "base",
    "DeepLinear": "linear", "LinearRegression": "linear", "ReducedRank": "linear",
    "deep_linear": "linear", "linear_regression": "linear", "reduced_rank": "linear",
    "GaussianMixture": "mixture", "gaussian_mixture": "mixture",
    "Monomial": "monomial", "monomial": "monomial",
    "TanhNet": "tanh", "tanh_net": "tanh",
}
_SUBMODULES = ("base", "linear", "mixture", "monomial", "tanh")

__all__ = [
    "ZOO",
    "DeepLinear",
    "GaussianMixture",
    "GaussianRegression",
    "LinearRegression",
    "Model",
    "Monomial",
    "ReducedRank",
    "TanhNet",
    "ZooEntry",
    "deep_linear",
    "format_params",
    "gaussian_mixture",
    "linear_regression",
    "load",
    "monomial",
    "reduced_rank",
    "split_spec",
    "tanh_net",
]


make_lazy(__name__, _LAZY, _SUBMODULES)


class ZooEntry(NamedTuple):
    """A zoo model's default parameters (what ``load(name)`` uses unless overridden) and its
    one-line description."""

    defaults: dict
    description: str


ZOO = {
    "monomial": ZooEntry({"k": (1, 2)}, "y = x·Π w_j^k_j + noise on [−1,1]^d; λ = min_j (h_j+1)/(2k_j)"),
    "linear_regression": ZooEntry({"d": 3}, "Bayesian linear regression (regular, exact evidence); λ = d/2"),
    "reduced_rank": ZooEntry({"M": 2, "N": 2, "H": 1, "r": 1}, "y = BAx + noise, true BA of rank r (Aoyagi–Watanabe)"),
    "deep_linear": ZooEntry({"widths": (2, 2, 2), "r": 1}, "deep linear net W_L⋯W_1 x, true product of rank r"),
    "tanh_net": ZooEntry({"H": 2}, "Σ_h a_h tanh(b_h x), true f ≡ 0"),
    "gaussian_mixture": ZooEntry({"C": 2.0}, "(1−a)N(0,1) + aN(b,1), truth N(0,1); m = 2"),
}

_MODEL_METHODS = ("log_prior", "log_likelihood", "init", "simulate")


# ------------------------------------------------------------------------------ load
def _fmt_value(v):
    if isinstance(v, tuple):
        return ",".join(_fmt_value(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def format_params(params: dict) -> str:
    """``{"M": 2, "widths": (3, 2)}`` → ``"M=2, widths=3,2"``: parameters as ``--param`` spells them."""
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in params.items())


def _error(message: str, argument: str) -> InvalidArgumentError:
    err = InvalidArgumentError(message)
    err.argument = argument  # which argument of load() is at fault: "spec" or "params"
    return err


def split_spec(spec: str) -> tuple[str, str]:
    """``"FILE.py:FUNC"`` → ``("FILE.py", "FUNC")``; a bare ``"FILE.py"`` means ``FUNC = make_model``."""
    path, sep, func = spec.rpartition(":")
    if not sep or not path:
        path, func = spec, "make_model"
    return path, func


def _load_function(spec: str):
    path, func = split_spec(spec)
    if not os.path.isfile(path):
        raise _error(f"{spec!r} is neither a zoo model ({', '.join(ZOO)}) nor an existing FILE.py[:FUNC]", "spec")
    name = "_slt_thermo_user_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    try:
        mod_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        mod_spec.loader.exec_module(module)
    except Exception as err:
        raise _error(f"importing {path} raised {type(err).__name__}: {err}", "spec") from err
    fn = getattr(module, func, None)
    if not callable(fn):
        raise _error(f"{path} has no function {func!r}", "spec")
    return fn, f"{os.path.basename(path)}:{func}"


def _call_with_params(fn, params: dict, label: str, argument: str):
    """``fn(**params)``; a signature mismatch, a library error or an exception of the user's code
    becomes one InvalidArgumentError naming ``label`` and the parameters."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        try:
            sig.bind(**params)
        except TypeError as err:
            takes = ", ".join(str(p).replace(" ", "") for p in sig.parameters.values()
                              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
            raise _error(f"{label}: {err} (it takes {takes})", argument) from None
    try:
        return fn(**params)
    except SLTThermoError as err:
        raise _error(f"{label}({format_params(params)}): {err}", argument) from err
    except Exception as err:  # the user's own code: the original exception is the __cause__
        raise _error(f"{label}({format_params(params)}) raised {type(err).__name__}: {err}", argument) from err


def load(spec: str, /, **params):
    """The model (or Target) that ``spec`` names, built with ``params``.

    ``spec`` is a zoo name (see ``ZOO``; its default parameters are merged under ``params``) or
    ``"FILE.py:FUNC"`` (the file is imported and ``FUNC(**params)`` called; a bare ``FILE.py``
    calls ``make_model``), which must return a Model (``log_prior``, ``log_likelihood``, ``init``,
    ``simulate``) or a :class:`slt_thermo.Target`.

    Raises :class:`~slt_thermo.errors.InvalidArgumentError` for an unknown name, a missing file or
    function, parameters the function does not take or rejects, an exception in the user's code
    (kept as ``__cause__``) or a result that is no model. Its ``argument`` attribute says which
    argument is at fault: ``"spec"`` or ``"params"`` (errors of the call are blamed on
    ``params`` when any were given).
    """
    argument = "params" if params else "spec"
    if spec in ZOO:
        merged = {**ZOO[spec].defaults, **params}
        return _call_with_params(getattr(sys.modules[__name__], spec), merged, spec, argument)
    if spec.replace("_", "").isalnum() and not spec.endswith(".py"):
        raise _error(f"unknown model {spec!r}; choose one of {', '.join(ZOO)} (`slt-thermo models`) or give "
                     "FILE.py:FUNC", "spec")
    fn, label = _load_function(spec)
    obj = _call_with_params(fn, params, label, argument)
    target_module = sys.modules.get("slt_thermo.target")  # a Target exists only if its module was imported
    if target_module is None or not isinstance(obj, target_module.Target):
        missing = [a for a in _MODEL_METHODS if not callable(getattr(obj, a, None))]
        if missing:
            raise _error(f"{label} returned {type(obj).__name__}; it must return a slt_thermo.Target or a Model "
                         f"with {', '.join(missing)}", "spec")
    return obj
