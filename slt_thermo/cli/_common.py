"""What rlct, free-energy and llc share: the model and target from --model/--param, the results
directory and the summary's metadata. Library calls only; jax is imported inside functions."""

from __future__ import annotations

import datetime as _dt
import os

from ._args import UsageError


def resolve_model(spec: str, params: list[tuple[str, object]]):
    """(model or target, description dict) for ``--model``/``--param``: :func:`slt_thermo.models.load`
    with its errors as one-line usage errors naming --model or --param."""
    from .. import models
    from ..errors import InvalidArgumentError, SLTThermoError

    given = dict(params)
    try:
        obj = models.load(spec, **given)
    except InvalidArgumentError as err:
        cause = err.__cause__
        user_code = cause is not None and not isinstance(cause, SLTThermoError)
        if user_code and os.environ.get("SLT_THERMO_DEBUG"):
            raise cause from None
        argument = "--param" if getattr(err, "argument", "spec") == "params" else "--model"
        hint = " (set SLT_THERMO_DEBUG=1 for the traceback)" if user_code else ""
        raise UsageError(argument, f"{err}{hint}") from None
    if spec in models.ZOO:
        return obj, {"spec": spec, "params": {**models.ZOO[spec].defaults, **given}, "slug": spec}
    return obj, {"spec": spec, "params": given, "slug": models.split_spec(spec)[1]}


def truth(obj):
    """(λ as Fraction or None, m or None) of a model or target's model."""
    from .._utils import known_rlct

    return known_rlct(obj)


def truth_json(lam, m):
    """The summary's rlct / rlct_float / multiplicity fields."""
    return {"rlct": None if lam is None else str(lam), "rlct_float": None if lam is None else float(lam),
            "multiplicity": m}


def make_target(obj, n, seed, population, default_n=1000):
    """(Target, where its data came from) from a model (simulated data or nK(w)) or a Target."""
    import jax

    from ..target import Target

    if isinstance(obj, Target):
        if n is not None and n != obj.n:
            raise UsageError("--n", f"the model file returned a Target with its own data (n = {obj.n}); "
                                    "drop --n or return a Model")
        if population:
            raise UsageError("--population", "needs a Model with a `kl` method, not a Target")
        return obj, "the Target's own data"
    n = default_n if n is None else n
    if population:
        return Target.population(obj, n), "the population potential nK(w)"
    data = obj.simulate(jax.random.PRNGKey(seed), n)
    return Target(obj, data), f"simulated from the true parameters (seed {seed})"


_TARGETS: dict = {}  # in-process reuse of zoo targets, so repeated runs hit JAX's compile cache


def cached_target(args, default_n=1000):
    """(target, model description, data origin) for rlct and llc. Zoo targets are memoized on the
    arguments that define them: a Target's static part is hashed by identity, so reusing the
    object lets a second run in the same process (tests, notebooks) skip compilation."""
    from ..models import ZOO

    key = None
    if args.model in ZOO:
        params = {**ZOO[args.model].defaults, **dict(args.param)}
        try:
            key = (args.model, tuple(sorted(params.items())), args.n or default_n, args.seed, args.population)
            hash(key)
        except TypeError:
            key = None
    if key is not None and key in _TARGETS:
        return _TARGETS[key]
    obj, desc = resolve_model(args.model, args.param)
    target, origin = make_target(obj, args.n, args.seed, args.population, default_n)
    if key is not None:
        if len(_TARGETS) >= 4:
            _TARGETS.pop(next(iter(_TARGETS)))
        _TARGETS[key] = (target, desc, origin)
    return target, desc, origin


def results_dir(args, command: str, slug: str) -> str:
    """A new results directory under ``--out`` (:func:`slt_thermo.io.new_results_dir`)."""
    from ..errors import InvalidArgumentError
    from ..io import new_results_dir

    try:
        return new_results_dir(args.out, command, slug)
    except InvalidArgumentError as err:
        raise UsageError("--out", str(err)) from None


def meta(argv, command):
    """The summary's command, argv, creation time and slt_thermo version."""
    from .._utils import package_version

    return {"command": command, "argv": ["slt-thermo"] + list(argv),
            "created": _dt.datetime.now().isoformat(timespec="seconds"), "slt_thermo_version": package_version()}
