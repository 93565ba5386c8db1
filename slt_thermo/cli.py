"""The ``slt-thermo`` command: the user's front door.

    slt-thermo rlct                      # λ̂ of an embedded default model, with error bars and plots
    slt-thermo rlct --model reduced_rank --param M=3 --param N=3 --param H=2 --param r=1
    slt-thermo rlct --model my_model.py:make_model --param width=4
    slt-thermo free-energy --model monomial --param k=1,2 --n 100,300,1000,3000
    slt-thermo models                    # the zoo, with exact λ and m
    slt-thermo show results/rlct-…       # re-print and re-plot a saved run
    slt-thermo demo                      # tempered NUTS on linear regression vs the exact E^β[nL_n]

Every run writes a new results directory (netCDF samples, JSON summary, PNG plots) under
``--out`` (default ``results/``) and never overwrites an earlier one. Bad arguments give a
one-line error that names the argument (exit code 2), never a traceback.
"""

from __future__ import annotations

import argparse
import ast
import datetime as _dt
import importlib.util
import inspect
import json
import math
import os
import re
import sys
import time
import warnings
from fractions import Fraction

import numpy as np

# ------------------------------------------------------------------------------------ the zoo
# name -> (default parameters, one-line description). The defaults are what `--model NAME`
# gives without `--param`; user parameters override them one by one.
ZOO = {
    "monomial": ({"k": (1, 2)}, "y = x·Π w_j^k_j + noise on [−1,1]^d; λ = min_j (h_j+1)/(2k_j)"),
    "linear_regression": ({"d": 3}, "Bayesian linear regression (regular, exact evidence); λ = d/2"),
    "reduced_rank": ({"M": 2, "N": 2, "H": 1, "r": 1}, "y = BAx + noise, true BA of rank r (Aoyagi–Watanabe)"),
    "deep_linear": ({"widths": (2, 2, 2), "r": 1}, "deep linear net W_L⋯W_1 x, true product of rank r"),
    "tanh_net": ({"H": 2}, "Σ_h a_h tanh(b_h x), true f ≡ 0"),
    "gaussian_mixture": ({"C": 2.0}, "(1−a)N(0,1) + aN(b,1), truth N(0,1); m = 2"),
}
DEFAULT_MODEL = "reduced_rank"
RLCT_METHODS = ("two_temperature", "ols", "specific_heat")
DEFAULT_OUT = "results"


class UsageError(Exception):
    """A bad command-line argument: reported as one line naming it, exit code 2."""

    def __init__(self, argument, message):
        super().__init__(f"argument {argument}: {message}" if argument else message)


# ------------------------------------------------------------------------------------ argparse
class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage block) and exit with code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows an option's default, unless it is None, False or empty (said in the help instead)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or not action.option_strings or default is argparse.SUPPRESS
                or default is None or default is False or default == []):
            return text
        return text + " (default: %(default)s)"


def _int_at_least(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _int_list(text):
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers like 100,300,1000, got {text!r}") from None
    if len(values) < 3 or any(v < 2 for v in values) or any(b <= a for a, b in zip(values, values[1:])):
        raise argparse.ArgumentTypeError(
            f"must be at least 3 increasing dataset sizes >= 2, like 100,300,1000,3000; got {text!r}"
        )
    return values


def _ladder(text):
    """``--betas``: an integer K (the power ladder st.ladder.power(K), K+1 rungs from 0 to 1) or
    an explicit comma-separated list from 0 to 1."""
    text = text.replace(" ", "")
    if "," not in text:
        try:
            k = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a number of rungs (e.g. 12) or a list from 0 to 1 (e.g. 0,0.01,0.1,1), got {text!r}"
            ) from None
        if k < 2:
            raise argparse.ArgumentTypeError(f"needs at least 2 rungs, got {k}")
        return k
    try:
        values = [float(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be numbers separated by commas, got {text!r}") from None
    if len(values) < 3 or values[0] != 0 or values[-1] != 1 or any(b <= a for a, b in zip(values, values[1:])):
        raise argparse.ArgumentTypeError(
            f"an explicit ladder must increase from 0 to 1 with at least 3 rungs, got {text!r}"
        )
    return values


def _param(text):
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"must look like key=value (e.g. M=3 or widths=3,2,3), got {text!r}")
    value = value.strip()
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = {"true": True, "false": False, "none": None}.get(value.lower(), value)
    if isinstance(parsed, list):
        parsed = tuple(parsed)
    return key, parsed


def _add_model_options(p, *, n_help, n_kwargs):
    g = p.add_argument_group("model")
    g.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME|FILE.py:FUNC",
                   help="a zoo model (see `slt-thermo models`) or your own: a Python file and a function "
                        "in it returning a Model (log_prior, log_likelihood, init, simulate) or a Target")
    g.add_argument("--param", action="append", type=_param, default=[], metavar="KEY=VALUE",
                   help="a model parameter, repeatable: --param M=3 --param widths=3,2,3 (zoo defaults: "
                        "`slt-thermo models`); passed as keyword arguments to your function")
    g.add_argument("--n", help=n_help, **n_kwargs)
    g.add_argument("--seed", type=_int_at_least(0), default=0, help="PRNG seed (data and sampler)")
    g.add_argument("--population", action="store_true",
                   help="use the population potential nK(w) instead of a simulated dataset "
                        "(zoo models; the noise-free thermodynamics of Target.population)")


def _add_sampler_options(p, *, chains, warmup, samples):
    g = p.add_argument_group("sampler")
    g.add_argument("--chains", type=_int_at_least(1), default=chains, help="chains per β")
    g.add_argument("--warmup", type=_int_at_least(0), default=warmup,
                   help="warmup (NUTS) or burn-in (SGLD) steps per chain")
    g.add_argument("--samples", type=_int_at_least(4), default=samples, help="kept draws per chain")
    return g


def _add_out(p):
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help="parent folder of the results directories (a new one per run)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="slt-thermo", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Thermodynamics of Bayesian learning (singular learning theory) in JAX: "
                    "tempered posteriors, learning coefficients (RLCT λ), free energies.",
        epilog="Start with `slt-thermo rlct` (about a minute on a laptop CPU). "
               "Every command has --help.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "rlct", help="estimate the learning coefficient λ of a model", formatter_class=_Formatter,
        description="Sample the tempered posteriors p^β(w|D_n) on a ladder of β around 1/log n and "
                    "estimate λ by every method (two-temperature, OLS of E^β[nL_n] on 1/β, specific "
                    "heat), with error bars beside the exact λ when known; also WBIC. Run bare, it "
                    f"uses {DEFAULT_MODEL}({_fmt_params(ZOO[DEFAULT_MODEL][0])}), n = 1000.",
        epilog="examples:\n  slt-thermo rlct\n"
               "  slt-thermo rlct --model reduced_rank --param M=3 --param N=3 --param H=2 --param r=1\n"
               "  slt-thermo rlct --model monomial --param k=1,1 --n 3000\n"
               "  slt-thermo rlct --model my_model.py:make_model",
    )
    _add_model_options(p, n_help="dataset size (default 1000; fixed by your data if FUNC returns a Target)",
                       n_kwargs=dict(type=_int_at_least(2), default=None, metavar="N"))
    g = _add_sampler_options(p, chains=4, warmup=500, samples=1000)
    g.add_argument("--sampler", choices=("nuts", "sgld"), default="nuts", help="the sampler")
    g.add_argument("--num-betas", type=_int_at_least(2), default=5,
                   help="rungs of the ladder st.ladder.around_wbic(n, num) in [1/(2 log n), 2/log n]")
    g.add_argument("--step-size", type=_positive_float, default=1e-4, help="SGLD step size")
    g.add_argument("--batch-size", type=_int_at_least(1), default=None,
                   help="SGLD minibatch size (default min(n, 100))")
    _add_out(p)
    p.set_defaults(func=cmd_rlct)

    p = sub.add_parser(
        "free-energy", help="the free energy F over (n, β) and λ̂, m̂ from F_n vs log n",
        formatter_class=_Formatter,
        description="Thermodynamic integration of E^β[nL_n] from β = 0 to 1 on nested datasets of "
                    "each size n (st.free_energy_vs_n): F(β) for every n, and the fit "
                    "F_n ≈ nL_n(w0) + λ log n − (m−1) log log n + c, which gives λ̂ and m̂.",
        epilog="examples:\n  slt-thermo free-energy\n"
               "  slt-thermo free-energy --model monomial --param k=1,1 --n 100,300,1000,3000 --betas 16\n"
               "  slt-thermo free-energy --model linear_regression --param d=2 --n 100,300,1000   # exact F_n too\n"
               "  slt-thermo free-energy --population --n 100,300,1000,3000,10000 --betas 48     # no data noise",
    )
    _add_model_options(p, n_help="increasing dataset sizes, at least 3",
                       n_kwargs=dict(type=_int_list, default=[100, 300, 1000, 3000], metavar="N1,N2,..."))
    g = _add_sampler_options(p, chains=4, warmup=200, samples=250)
    g.add_argument("--betas", type=_ladder, default=24, metavar="K|B0,B1,...",
                   help="K: the power ladder st.ladder.power(K) (K+1 rungs, β = 0 … 1); or an explicit "
                        "list from 0 to 1")
    _add_out(p)
    p.set_defaults(func=cmd_free_energy)

    p = sub.add_parser("models", help="list the model zoo with exact λ and m", formatter_class=_Formatter,
                       description="The zoo: each model's default parameters, exact learning "
                                   "coefficient λ and multiplicity m (slt_thermo.exact).")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("show", help="re-print and re-plot a saved run", formatter_class=_Formatter,
                       description="Re-print the table of a results directory written by `slt-thermo "
                                   "rlct` or `slt-thermo free-energy`, and redraw its plots from the "
                                   "saved netCDF.")
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="a directory written by rlct or free-energy")
    p.add_argument("--no-plots", action="store_true", help="only print")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "demo", help="tempered NUTS on linear regression against the exact E^β[nL_n]",
        formatter_class=_Formatter,
        description="A small tempered NUTS run on Bayesian linear regression, whose tempered evidence "
                    "is exact: prints E^β[nL_n] per β beside the closed form.")
    p.add_argument("--n", type=_int_at_least(2), default=200, help="dataset size")
    p.add_argument("--d", type=_int_at_least(1), default=3, help="number of parameters")
    p.add_argument("--num-betas", type=_int_at_least(1), default=8, help="rungs of the β ladder")
    p.add_argument("--chains", type=_int_at_least(1), default=4, help="chains per β")
    p.add_argument("--warmup", type=_int_at_least(1), default=300, help="warmup steps per chain")
    p.add_argument("--samples", type=_int_at_least(4), default=500, help="draws per chain")
    p.add_argument("--seed", type=_int_at_least(0), default=0, help="PRNG seed")
    p.set_defaults(func=cmd_demo)
    return parser


# ------------------------------------------------------------------------------------ models
def _fmt_value(v):
    if isinstance(v, tuple):
        return ",".join(_fmt_value(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _fmt_params(params: dict) -> str:
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in params.items())


def _call_with_params(fn, params: dict, label: str, argument: str):
    """Call ``fn(**params)``, turning a signature mismatch into a one-line usage error."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        try:
            sig.bind(**params)
        except TypeError as err:
            takes = ", ".join(
                str(p).replace(" ", "") for p in sig.parameters.values()
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            )
            raise UsageError(argument, f"{label}: {err} (it takes {takes})") from None
    from .errors import SLTThermoError

    try:
        return fn(**params)
    except SLTThermoError as err:
        raise UsageError(argument, f"{label}({_fmt_params(params)}): {err}") from None
    except Exception as err:  # the user's own code: still one line, naming where it came from
        if os.environ.get("SLT_THERMO_DEBUG"):
            raise
        raise UsageError(argument, f"{label}({_fmt_params(params)}) raised {type(err).__name__}: {err} "
                                   "(set SLT_THERMO_DEBUG=1 for the traceback)") from None


def _load_user_function(spec: str):
    path, sep, func = spec.rpartition(":")
    if not sep or not path:
        path, func = spec, "make_model"
    if not os.path.isfile(path):
        raise UsageError("--model", f"{spec!r} is neither a zoo model ({', '.join(ZOO)}) nor an existing "
                                    "FILE.py[:FUNC]")
    name = "_slt_thermo_user_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    try:
        mod_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        mod_spec.loader.exec_module(module)
    except Exception as err:
        if os.environ.get("SLT_THERMO_DEBUG"):
            raise
        raise UsageError("--model", f"importing {path} raised {type(err).__name__}: {err} "
                                    "(set SLT_THERMO_DEBUG=1 for the traceback)") from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise UsageError("--model", f"{path} has no function {func!r}")
    return fn, f"{os.path.basename(path)}:{func}", func


def resolve_model(spec: str, params: list[tuple[str, object]]):
    """(model or target, description dict) for ``--model``/``--param``."""
    from . import models
    from .target import Target

    given = dict(params)
    if spec in ZOO:
        defaults = ZOO[spec][0]
        merged = {**defaults, **given}
        obj = _call_with_params(getattr(models, spec), merged, spec, "--param" if given else "--model")
        return obj, {"spec": spec, "params": merged, "slug": spec}
    if spec.replace("_", "").isalnum() and not spec.endswith(".py"):
        raise UsageError("--model", f"unknown model {spec!r}; choose one of {', '.join(ZOO)} "
                                    "(`slt-thermo models`) or give FILE.py:FUNC")
    fn, label, func = _load_user_function(spec)
    obj = _call_with_params(fn, given, label, "--param" if given else "--model")
    if not isinstance(obj, Target):
        missing = [a for a in ("log_prior", "log_likelihood", "init", "simulate")
                   if not callable(getattr(obj, a, None))]
        if missing:
            raise UsageError("--model", f"{label} returned {type(obj).__name__}; it must return a "
                                        f"slt_thermo.Target or a Model with {', '.join(missing)}")
    return obj, {"spec": spec, "params": given, "slug": func}


def _truth(obj):
    """(λ as Fraction or None, m or None) of a model or target's model."""
    model = getattr(obj, "model", obj)
    try:
        lam, m = getattr(model, "rlct", None), getattr(model, "multiplicity", None)
    except Exception:
        return None, None
    if lam is not None:
        lam = Fraction(lam)
    return lam, (None if m is None else int(m))


def _make_target(obj, n, seed, population):
    import jax

    from .target import Target

    if isinstance(obj, Target):
        if n is not None and n != obj.n:
            raise UsageError("--n", f"the model file returned a Target with its own data (n = {obj.n}); "
                                    "drop --n or return a Model")
        if population:
            raise UsageError("--population", "needs a Model with a `kl` method, not a Target")
        return obj, "the Target's own data"
    n = 1000 if n is None else n
    if population:
        return Target.population(obj, n), "the population potential nK(w)"
    data = obj.simulate(jax.random.PRNGKey(seed), n)
    return Target(obj, data), f"simulated from the true parameters (seed {seed})"


_TARGETS: dict = {}  # in-process reuse of zoo targets, so repeated runs hit JAX's compile cache


def _cached_target(args):
    """(target, model description, data origin) for rlct. Zoo targets are memoized on the
    arguments that define them: a Target's static part is hashed by identity, so reusing the
    object lets a second run in the same process (tests, notebooks) skip compilation."""
    key = None
    if args.model in ZOO:
        params = {**ZOO[args.model][0], **dict(args.param)}
        try:
            key = (args.model, tuple(sorted(params.items())), args.n, args.seed, args.population)
            hash(key)
        except TypeError:
            key = None
    if key is not None and key in _TARGETS:
        return _TARGETS[key]
    obj, desc = resolve_model(args.model, args.param)
    target, origin = _make_target(obj, args.n, args.seed, args.population)
    if key is not None:
        if len(_TARGETS) >= 4:
            _TARGETS.pop(next(iter(_TARGETS)))
        _TARGETS[key] = (target, desc, origin)
    return target, desc, origin


# ------------------------------------------------------------------------------------ results dir
def new_results_dir(parent: str, command: str, slug: str) -> str:
    """A fresh directory parent/command-slug-YYYYmmdd-HHMMSS[-k]; never an existing one."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", slug) or "model"
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as err:
        raise UsageError("--out", f"cannot create {parent!r}: {err.strerror}") from None
    base = os.path.join(parent, f"{command}-{slug}-{stamp}")
    for k in range(1, 10_000):
        path = base if k == 1 else f"{base}-{k}"
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
        except OSError as err:
            raise UsageError("--out", f"cannot create {path!r}: {err.strerror}") from None
    raise UsageError("--out", f"too many results directories named {base}-*")


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (Fraction, set)):
        return str(x) if isinstance(x, Fraction) else sorted(x)
    return str(x)


def _clean_floats(obj):
    """NaN/inf → None, recursively, so the JSON is strict."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_floats(v) for v in obj]
    return obj


def _write_json(path, obj):
    obj = json.loads(json.dumps(obj, default=_jsonable))
    with open(path, "w", encoding="utf-8") as f:
        json.dump(_clean_floats(obj), f, indent=2, ensure_ascii=False, allow_nan=False)
        f.write("\n")


def _truth_json(lam, m):
    return {"rlct": None if lam is None else str(lam), "rlct_float": None if lam is None else float(lam),
            "multiplicity": m}


def _meta(args, argv, command):
    from .samplers.run import _version

    return {"command": command, "argv": ["slt-thermo"] + list(argv), "created": _dt.datetime.now().isoformat(timespec="seconds"),
            "slt_thermo_version": _version()}


# ------------------------------------------------------------------------------------ rlct
def cmd_rlct(args, argv) -> int:
    import jax

    import slt_thermo as st

    from .errors import SLTThermoError

    target, desc, origin = _cached_target(args)
    n = target.n
    betas = st.ladder.around_wbic(n, num=args.num_betas)
    lam, m = _truth(target)
    key = jax.random.PRNGKey(args.seed + 1)
    if args.sampler == "sgld":
        sample_sgld = getattr(st, "sample_sgld", None)
        if sample_sgld is None:
            raise UsageError("--sampler", "sgld sampler not available yet")
        batch = args.batch_size or min(n, 100)
        if batch > n:
            raise UsageError("--batch-size", f"must be <= n = {n}, got {batch}")
        how = (f"SGLD (step size {args.step_size:g}, batch {batch}): {len(betas)} β × {args.chains} chains "
               f"({args.warmup} burn-in + {args.samples} steps each)")
        print(f"{target.name}, n = {n} ({origin})\n{how} …", flush=True)
        extra = {}
        try:  # full-data energies per draw: the specific heat needs Var of nL_n, not of its estimate
            if "eval_full_nll_every" in inspect.signature(sample_sgld).parameters:
                extra["eval_full_nll_every"] = 1
        except (TypeError, ValueError):
            pass
        run = sample_sgld(target, betas, step_size=args.step_size, num_chains=args.chains,
                          num_steps=args.warmup + args.samples, num_burnin=args.warmup,
                          batch_size=batch, key=key, **extra)
    else:
        how = (f"NUTS: {len(betas)} β in [{betas[0]:.4g}, {betas[-1]:.4g}] around 1/log n = "
               f"{1 / math.log(n):.4g}, {args.chains} chains × ({args.warmup} warmup + {args.samples} draws)")
        print(f"{target.name}, n = {n} ({origin})\n{how} …", flush=True)
        run = st.sample_nuts(target, betas, num_chains=args.chains, num_warmup=args.warmup,
                             num_samples=args.samples, key=key)

    estimates = {}
    for method in RLCT_METHODS:
        try:
            est = st.rlct(run, method=method)
            estimates[method] = {"value": est.value, "stderr": est.stderr, "text": str(est)}
        except SLTThermoError as err:
            estimates[method] = {"value": None, "stderr": None, "text": "—", "error": str(err)}
    try:
        w = st.wbic(run)
        wbic = {"value": w.value, "stderr": w.stderr, "text": str(w), "beta": w.details["beta"]}
    except SLTThermoError as err:
        wbic = {"value": None, "stderr": None, "text": "—", "error": str(err)}
    nll_true = _nll_true(target)

    summary = _meta(args, argv, "rlct")
    summary.update(
        model={"name": target.name, **desc, **_truth_json(lam, m)},
        n=n, data=origin, sampler=args.sampler, seed=args.seed,
        settings={"chains": args.chains, "warmup": args.warmup, "samples": args.samples,
                  "betas": [float(b) for b in betas],
                  **({"step_size": args.step_size, "batch_size": args.batch_size or min(n, 100)}
                     if args.sampler == "sgld" else {})},
        estimates=estimates, wbic=wbic, nll_true=nll_true,
        per_beta=_per_beta(run), wall_time_s=float(run.ds.attrs.get("wall_time_s", float("nan"))),
    )
    outdir = new_results_dir(args.out, "rlct", desc["slug"])
    run.save(os.path.join(outdir, "samples.nc"))
    summary["files"] = {"samples": "samples.nc", "summary": "summary.json",
                        "plots": [] if args.no_plots else _rlct_plots(run, outdir)}
    _write_json(os.path.join(outdir, "summary.json"), summary)
    print_rlct_report(summary, outdir)
    return 0


def _nll_true(target):
    w0 = getattr(target.model, "true_params", None)
    if w0 is None or target.is_population:
        return None
    try:
        return float(target.nll(w0))
    except Exception:
        return None


def _per_beta(run):
    from .thermo import rung_stats

    stats = rung_stats(run)
    table = run.summary()
    rows = []
    for i, b in enumerate(run.betas):
        row = {"beta": float(b), "E": float(stats["E"].values[i]), "E_se": float(stats["E_se"].values[i]),
               "Var": float(stats["Var"].values[i]), "healthy_chains": int(stats["chains"].values[i]),
               "specific_heat": float(b**2 * stats["Var"].values[i]),
               "specific_heat_se": float(b**2 * stats["Var_se"].values[i])}
        t = table.iloc[i]
        for col in ("nll_rhat", "nll_ess_bulk", "divergences", "acceptance_rate"):
            if col in table.columns:
                row[col] = float(t[col])
        rows.append(row)
    return rows


def _rlct_plots(run, outdir):
    from . import plotting

    plots = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the estimators already warned once
        for name, fn in (("energy_vs_inverse_beta.png", plotting.energy_vs_inverse_beta),
                         ("specific_heat.png", plotting.specific_heat),
                         ("traces.png", plotting.traces)):
            fn(run, path=os.path.join(outdir, name))
            plots.append(name)
        if run.betas[0] == 0:
            plotting.free_energy(run, path=os.path.join(outdir, "free_energy.png"))
            plots.append("free_energy.png")
    return plots


def _z(value, se, truth):
    if value is None or truth is None or not se:
        return ""
    return f"{(value - float(truth)) / se:+.1f}"


def print_rlct_report(s: dict, outdir: str) -> None:
    lam = s["model"].get("rlct")
    lam_f = s["model"].get("rlct_float")
    m = s["model"].get("multiplicity")
    n = s["n"]
    print(f"\n{'β':>9} {'E^β[nL_n]':>14} {'± MC err':>9} {'C(β)':>8} {'R-hat':>6} {'ESS':>6} {'div':>4}")
    for r in s["per_beta"]:
        rhat, ess, div = r.get("nll_rhat"), r.get("nll_ess_bulk"), r.get("divergences")
        print(f"{r['beta']:9.4f} {r['E']:14.3f} {r['E_se']:9.3f} {r['specific_heat']:8.3f} "
              f"{_num(rhat, '6.3f')} {_num(ess, '6.0f')} {_num(div, '4.0f')}")
    exact = "?" if lam is None else (lam if "/" not in lam else f"{lam} = {lam_f:.4g}")
    print(f"\n{'λ̂ by method':<18} {'estimate':>16}   {'exact λ':<12} {'z':>5}")
    for method in RLCT_METHODS:
        e = s["estimates"].get(method, {})
        print(f"{method:<17} {e.get('text', '—'):>16}   {exact:<12} {_z(e.get('value'), e.get('stderr'), lam_f):>5}")
        if e.get("error"):
            print(f"  ({method} failed: {e['error']})")
    if lam is not None:
        print(f"exact: λ = {lam}, m = {m} (slt_thermo.exact); z = (λ̂ − λ)/error")
        if m is not None and m > 1:
            bias = (m - 1) / math.log(n / math.log(n))
            print(f"note: m = {m} > 1 biases every finite-n estimate low by about (m−1)/log(βn) ≈ {bias:.2f}")
    else:
        print("exact λ unknown for this model")
    w = s["wbic"]
    line = f"\nWBIC = E^β[nL_n] at β = 1/log n: {w.get('text', '—')}"
    if s.get("nll_true") is not None and lam_f is not None:
        line += f"   (nL_n(w0) + λ log n = {s['nll_true'] + lam_f * math.log(n):.3f})"
    print(line)
    rhats = [r.get("nll_rhat") for r in s["per_beta"] if r.get("nll_rhat") is not None]
    divs = sum(int(r.get("divergences") or 0) for r in s["per_beta"])
    unhealthy = sum(s["settings"]["chains"] - r["healthy_chains"] for r in s["per_beta"])
    if (rhats and max(rhats) > 1.05) or divs or unhealthy:
        print(f"check: max R-hat {max(rhats) if rhats else float('nan'):.3f}, {divs} divergences, "
              f"{unhealthy} unhealthy chains: consider more --warmup/--samples")
    if s.get("wall_time_s") is not None:
        print(f"\n{s['sampler']} sampling took {s['wall_time_s']:.1f} s")
    files = [s["files"]["samples"], s["files"]["summary"]] + s["files"]["plots"]
    print(f"results: {outdir}{os.sep} ({', '.join(files)})")


def _num(x, fmt):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        width = int(re.match(r"\d+", fmt).group())
        return " " * (width - 1) + "-"
    return format(x, fmt)


# ------------------------------------------------------------------------------------ free energy
def cmd_free_energy(args, argv) -> int:
    import jax

    import slt_thermo as st

    from .target import Target

    obj, desc = resolve_model(args.model, args.param)
    ns = args.n
    betas = st.ladder.power(args.betas) if isinstance(args.betas, int) else np.asarray(args.betas)
    key = jax.random.PRNGKey(args.seed)
    data = None
    if isinstance(obj, Target):
        if args.population:
            raise UsageError("--population", "needs a Model with a `kl` method, not a Target")
        if ns[-1] > obj.n:
            raise UsageError("--n", f"the model file's Target has n = {obj.n} examples; the largest n "
                                    f"must not exceed it, got {ns[-1]}")
        full = obj

        def source(n):
            return Target(full.model, jax.tree_util.tree_map(lambda a: a[:n], full.data))
        origin = "nested subsets of the Target's own data"
        name = full.name
    elif args.population:
        if not callable(getattr(obj, "kl", None)):
            raise UsageError("--population", f"{getattr(obj, 'name', 'this model')} has no population potential `kl`")

        def source(n):
            return Target.population(obj, n)
        origin = "the population potential nK(w)"
        name = getattr(obj, "name", desc["slug"])
    else:
        source = obj
        origin = f"nested subsets of one simulated dataset (seed {args.seed})"
        name = getattr(obj, "name", desc["slug"])
        key, sub = jax.random.split(key)
        data = obj.simulate(sub, ns[-1])
    lam, m = _truth(obj)
    print(f"{name}: F(β) over n = {', '.join(map(str, ns))} ({origin})\nNUTS on {len(betas)} β from 0 to 1 × "
          f"{args.chains} chains ({args.warmup} warmup + {args.samples} draws) per n …", flush=True)
    t0 = time.perf_counter()
    ds = st.free_energy_vs_n(source, ns, betas, key=key, data=data, sampler=st.sample_nuts, num_chains=args.chains,
                             num_warmup=args.warmup, num_samples=args.samples, keep_params=False)
    wall = time.perf_counter() - t0
    exact_F = _exact_free_energies(obj, data, ns)
    if lam is not None:
        ds.attrs["true_rlct"] = str(lam)
    if m is not None:
        ds.attrs["true_multiplicity"] = int(m)
    ds.attrs["target"] = name

    summary = _meta(args, argv, "free-energy")
    summary.update(
        model={"name": name, **desc, **_truth_json(lam, m)}, data=origin, seed=args.seed,
        sampler="nuts",
        settings={"chains": args.chains, "warmup": args.warmup, "samples": args.samples,
                  "betas": [float(b) for b in betas]},
        ns=ns, F_n=[float(v) for v in ds["F_n"].values],
        F_n_se=[float(v) for v in ds["F_se"].isel(beta=-1).values],
        nll_true=[float(v) for v in ds["nll_true"].values],
        F_n_disc=_discretization_errors(ds),
        F_n_exact=exact_F,
        fit={k: ds.attrs[k] for k in ("lambda_hat", "lambda_se", "m_hat", "m_se", "fit_reduced_chi2")},
        fit_fixed_m=_fit_fixed_m(ds, m),
        wall_time_s=wall,
    )
    outdir = new_results_dir(args.out, "free-energy", desc["slug"])
    ds.to_netcdf(os.path.join(outdir, "free_energy.nc"), engine="h5netcdf")
    summary["files"] = {"samples": "free_energy.nc", "summary": "summary.json",
                        "plots": [] if args.no_plots else _free_energy_plots(ds, outdir)}
    _write_json(os.path.join(outdir, "summary.json"), summary)
    print_free_energy_report(summary, outdir)
    return 0


def _exact_free_energies(model, data, ns):
    """F_n = −log Z_n in closed form on each nested subset, for models that know it
    (``exact_thermo(data, beta)``, e.g. linear regression); else None."""
    import jax

    exact = getattr(model, "exact_thermo", None)
    if data is None or not callable(exact):
        return None
    try:
        return [float(exact(jax.tree_util.tree_map(lambda a, n=n: a[:n], data), 1.0).F) for n in ns]
    except Exception:
        return None


def _discretization_errors(ds):
    """Per n, the TI discretization error of F_n (Richardson: the same rule on every other rung)."""
    import slt_thermo as st

    betas = ds["beta"].values
    return [float(st.ti_free_energy(betas, ds["E"].values[i], ds["Var"].values[i])
                  .details["discretization_error"]) for i in range(ds.sizes["n"])]


def _fit_fixed_m(ds, m):
    """λ̂ from F_n − nL_n(w0) + (m − 1) log log n = λ log n + c with the exact m held fixed
    (weighted least squares): far tighter than fitting λ and m together when m is known."""
    nll = ds["nll_true"].values
    if m is None or not np.all(np.isfinite(nll)):
        return None
    ns = ds["n"].values.astype(float)
    y = ds["F_n"].values - nll + (m - 1) * np.log(np.log(ns))
    se = np.maximum(ds["F_se"].isel(beta=-1).values, 1e-9)
    w = 1 / se**2
    X = np.stack([np.log(ns), np.ones_like(ns)], axis=1)
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    coef = cov @ (X.T @ (w * y))
    dof = len(ns) - 2
    chi2 = float(np.sum(w * (y - X @ coef) ** 2) / dof) if dof > 0 else float("nan")
    scale = max(1.0, chi2) if math.isfinite(chi2) else 1.0
    return {"m": int(m), "lambda_hat": float(coef[0]), "lambda_se": float(math.sqrt(cov[0, 0] * scale)),
            "reduced_chi2": chi2}


def _free_energy_plots(ds, outdir):
    from . import plotting

    plots = []
    for name, fn in (("free_energy.png", plotting.free_energy),
                     ("free_energy_vs_n.png", plotting.free_energy_vs_n),
                     ("specific_heat.png", plotting.specific_heat)):
        fn(ds, path=os.path.join(outdir, name))
        plots.append(name)
    return plots


def print_free_energy_report(s: dict, outdir: str) -> None:
    lam, lam_f, m = s["model"].get("rlct"), s["model"].get("rlct_float"), s["model"].get("multiplicity")
    known = all(v is not None for v in s["nll_true"])
    exact = s.get("F_n_exact")
    disc = s.get("F_n_disc") or [None] * len(s["ns"])
    print(f"\n{'n':>8} {'F_n = −log Z_n':>16} {'± MC err':>9} {'± disc':>7}"
          + (f" {'exact F_n':>12} {'z':>5}" if exact else "")
          + (f" {'nL_n(w0)':>12} {'F_n − nL_n(w0)':>15}" if known else ""))
    for i, n in enumerate(s["ns"]):
        line = f"{n:8d} {s['F_n'][i]:16.3f} {s['F_n_se'][i]:9.3f} {_num(disc[i], '7.3f')}"
        if exact:
            line += f" {exact[i]:12.3f} {_z(s['F_n'][i], s['F_n_se'][i], exact[i]):>5}"
        if known:
            line += f" {s['nll_true'][i]:12.3f} {s['F_n'][i] - s['nll_true'][i]:15.3f}"
        print(line)
    print("(MC err: Monte Carlo standard error; disc: Richardson estimate of the TI discretization error)")
    bad = [n for n, d, e in zip(s["ns"], disc, s["F_n_se"]) if d is not None and e and d > max(2 * e, 0.05)]
    if bad:
        print(f"check: the ladder is too coarse for n = {', '.join(map(str, bad))} (discretization error > "
              "2 MC errors): use more rungs, e.g. --betas 32")
    f = s["fit"]
    print("\nfit F_n ≈ nL_n(w0) + λ log n − (m−1) log log n + c" + ("" if known else " + a·n"))
    lam_text = "?" if lam is None else (lam if "/" not in lam else f"{lam} = {lam_f:.4g}")
    print(f"  λ̂ = {_pm(f['lambda_hat'], f['lambda_se'])}   exact λ = {lam_text}   z = {_z(f['lambda_hat'], f['lambda_se'], lam_f) or '-'}")
    print(f"  m̂ = {_pm(f['m_hat'], f['m_se'])}   exact m = {'?' if m is None else m}")
    g = s.get("fit_fixed_m")
    if g:
        print(f"  with m fixed at the exact m = {g['m']}: λ̂ = {_pm(g['lambda_hat'], g['lambda_se'])}   "
              f"z = {_z(g['lambda_hat'], g['lambda_se'], lam_f) or '-'}")
    if "population" not in s.get("data", ""):
        print("  (F_n − nL_n(w0) also holds a random, data-dependent O(1) term that the MC errors do not "
              "count; --population removes it)")
    print(f"\nsampling took {s['wall_time_s']:.1f} s")
    files = [s["files"]["samples"], s["files"]["summary"]] + s["files"]["plots"]
    print(f"results: {outdir}{os.sep} ({', '.join(files)})")


def _pm(value, se):
    from .results import Estimate

    if value is None:
        return "—"
    return str(Estimate(value, se if se is not None else float("nan")))


# ------------------------------------------------------------------------------------ models, show
def cmd_models(args, argv) -> int:
    from . import models

    print(f"{'name':<18} {'default --param':<22} {'λ':>6} {'m':>3}  {'parameters':<38} description")
    for name, (defaults, text) in ZOO.items():
        fn = getattr(models, name)
        model = fn(**defaults)
        lam, m = _truth(model)
        sig = ", ".join(p for p in inspect.signature(fn).parameters)
        print(f"{name:<18} {_fmt_params(defaults):<22} {str(lam):>6} {str(m):>3}  {sig:<38} {text}")
    print("\nuse: slt-thermo rlct --model NAME --param KEY=VALUE ...  (tuples as widths=3,2,3)")
    print("     or your own: --model FILE.py:FUNC, FUNC(**params) returning a Model or a Target")
    return 0


def cmd_show(args, argv) -> int:
    import slt_thermo as st

    d = args.results_dir
    path = os.path.join(d, "summary.json")
    if not os.path.isdir(d):
        raise UsageError("RESULTS_DIR", f"{d!r} is not a directory")
    if not os.path.isfile(path):
        raise UsageError("RESULTS_DIR", f"{d!r} has no summary.json; is it a slt-thermo results directory?")
    try:
        with open(path, encoding="utf-8") as f:
            s = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise UsageError("RESULTS_DIR", f"cannot read {path}: {err}") from None
    command = s.get("command")
    print(f"{' '.join(s.get('argv', ['slt-thermo', command]))}   ({s.get('created', '?')})")
    if command == "rlct":
        print(f"{s['model']['name']}, n = {s['n']} ({s.get('data', '')}), sampler {s['sampler']}")
        nc = os.path.join(d, s["files"]["samples"])
        if not args.no_plots:
            s["files"]["plots"] = _rlct_plots(st.load(nc), d)
        print_rlct_report(s, d)
    elif command == "free-energy":
        import xarray as xr

        print(f"{s['model']['name']}: F(β) over n = {', '.join(map(str, s['ns']))} ({s.get('data', '')})")
        nc = os.path.join(d, s["files"]["samples"])
        if not args.no_plots:
            with xr.open_dataset(nc, engine="h5netcdf") as ds:
                ds = ds.load()
            s["files"]["plots"] = _free_energy_plots(ds, d)
        print_free_energy_report(s, d)
    else:
        raise UsageError("RESULTS_DIR", f"unknown command {command!r} in {path}")
    return 0


# ------------------------------------------------------------------------------------ demo
def cmd_demo(args, argv) -> int:
    import jax

    import slt_thermo as st
    from slt_thermo import models

    model = models.linear_regression(d=args.d)
    data = model.simulate(jax.random.PRNGKey(args.seed), args.n)
    target = st.Target(model, data)
    betas = np.round(np.geomspace(1 / math.log(args.n) / 4, 1.0, args.num_betas), 6)
    print(f"{model.name}, n = {args.n}: tempered NUTS on {len(betas)} β × {args.chains} chains "
          f"({args.warmup} warmup + {args.samples} draws each), one compiled program")
    run = st.sample_nuts(target, betas, num_chains=args.chains, num_warmup=args.warmup,
                         num_samples=args.samples, key=jax.random.PRNGKey(args.seed + 1))
    table = run.summary()
    print(f"\n{'beta':>9} {'E^β[nL_n] sampled':>22} {'exact':>12} {'z':>6} {'R-hat':>6} {'ESS':>6}")
    for b in run.betas:
        row = table.loc[b]
        exact_E = model.exact_thermo(data, b).E
        z = (row.nll_mean - exact_E) / row.nll_mcse
        print(f"{b:9.4f} {row.nll_mean:13.3f} ± {row.nll_mcse:6.3f} {exact_E:12.3f} {z:6.2f} "
              f"{row.nll_rhat:6.3f} {row.nll_ess_bulk:6.0f}")
    print(f"\nwall time {run.ds.attrs['wall_time_s']:.1f} s; exact λ = d/2 = {model.rlct}")
    return 0


# ------------------------------------------------------------------------------------ main
def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    text = str(message).splitlines()[0] if str(message) else category.__name__
    print(f"slt-thermo: warning: {text}", file=sys.stderr if file is None else file)


def main(argv=None) -> int:
    """Entry point of the ``slt-thermo`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    prog = f"slt-thermo {args.command}"
    from .errors import SLTThermoError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.showwarning = _one_line_warning
        try:
            return args.func(args, argv)
        except UsageError as err:
            print(f"{prog}: error: {err} (see `{prog} --help`)", file=sys.stderr)
            return 2
        except SLTThermoError as err:
            print(f"{prog}: error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
