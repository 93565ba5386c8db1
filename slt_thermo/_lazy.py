"""Packages whose public names load on first use (PEP 562).

``import slt_thermo`` (hence ``slt-thermo --help``) and ``slt_thermo.models`` stay free of jax,
sympy and xarray until something needs them. A package calls :func:`make_lazy` once.
"""

from __future__ import annotations

import importlib
import sys
import types


class _LazyPackage(types.ModuleType):
    """Keeps a lazily loaded *function* that shares its name with a submodule (``st.llc``,
    ``models.monomial``): importing the submodule sets the package attribute of that name to the
    module, which would hide the function (an eager ``from .llc import llc`` used to rebind it)."""

    def __setattr__(self, name, value):
        lazy = self.__dict__.get("_LAZY", {})
        if name in lazy and isinstance(value, types.ModuleType) and hasattr(value, name):
            value = getattr(value, name)
        super().__setattr__(name, value)


def make_lazy(module_name: str, lazy: dict[str, str], submodules=()) -> None:
    """Make the package ``module_name`` load each name of ``lazy`` (name -> submodule defining
    it) and each of its ``submodules`` on first attribute access."""
    module = sys.modules[module_name]
    namespace = module.__dict__

    def __getattr__(name):
        if name in lazy:
            value = getattr(importlib.import_module(f".{lazy[name]}", module_name), name)
            namespace[name] = value
            return value
        if name in submodules:
            return importlib.import_module(f".{name}", module_name)
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(namespace) | set(lazy) | set(submodules))

    namespace.update(_LAZY=lazy, _SUBMODULES=tuple(submodules), __getattr__=__getattr__,
                     __dir__=__dir__)
    module.__class__ = _LazyPackage
