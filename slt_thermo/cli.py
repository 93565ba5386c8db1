"""The ``slt-thermo`` command: the user's front door.

    slt-thermo rlct                      # λ̂ of an embedded default model, with error bars and plots
    slt-thermo rlct --model reduced_rank --param M=3 --param N=3 --param H=2 --param r=1
    slt-thermo rlct --model my_model.py:make_model --param width=4
    slt-thermo free-energy --model monomial --param k=1,2 --n 100,300,1000,3000
    slt-thermo llc                       # local learning coefficient λ̂(w*) by SGLD, with diagnostics
    slt-thermo llc --model my_net.py:make_model --center trained.npz
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
LLC_DEFAULT_N = 10_000
LLC_ACCEPT = 0.9  # --step-size auto halves ε until the run's mean MALA acceptance reaches this
LLC_MAX_HALVINGS = 4
# why the zoo's true_params is a point where the local λ equals the global (exact) λ
LLC_TRUTH = {
    "reduced_rank": "w* = true_params is the most singular true point (the units beyond rank r are dead, "
                    "in- and out-weights zero), where the local λ is the global (Aoyagi) λ",
    "deep_linear": "w* = true_params is the most singular true point (the units beyond rank r are dead, "
                   "in- and out-weights zero), where the local λ is the global (Aoyagi) λ",
    "linear_regression": "a regular model: the local λ is d/2 at every point",
    "monomial": "w* = 0, where all the hyperplanes of the true set cross: the local λ there is the global λ",
    "tanh_net": "w* = 0 (a = b = 0), the most singular true point: the local λ there is the global λ",
    "gaussian_mixture": "w* = (a, b) = (0, 0), where the two branches of the true set cross",
}


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


def _nonnegative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def _step_size(text):
    """``--step-size``: auto (curvature rule), sweep (st.sgld_step_size) or a positive number."""
    word = text.strip().lower()
    if word in ("auto", "sweep"):
        return word
    try:
        return _positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be auto, sweep or a positive number, got {text!r}") from None


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
    """``--betas``: an integer K (st.ladder.ti(max n, K): β = 0 and K geometric rungs from
    0.01/max n to 1) or an explicit comma-separated list from 0 to 1."""
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
                   help="K: st.ladder.ti(max n, K), β = 0 and K geometric rungs from 0.01/max n to 1 "
                        "(integrated in log β: accurate at every n); or an explicit list from 0 to 1")
    _add_out(p)
    p.set_defaults(func=cmd_free_energy)

    p = sub.add_parser(
        "llc", help="estimate the local learning coefficient λ(w*) by SGLD, with diagnostics",
        formatter_class=_Formatter,
        description="The local learning coefficient at a point w* (Lau et al., arXiv:2308.12108), "
                    "st.llc: λ̂(w*) = β(E[nL_n(w)] − nL_n(w*)), the expectation over the localized "
                    "posterior ∝ φ(w) exp(−βnL_n(w) − γ/2‖w − w*‖²) at β = 1/log n, sampled by SGLD "
                    "chains started at w*. Prints λ̂ ± its Monte Carlo error beside the exact λ where it "
                    "applies, per-chain values and the diagnostics that say when to distrust it (R-hat, "
                    "ESS, MALA acceptance of the step size, predicted ε-bias, drift, non-finite chains). w* defaults to the "
                    "model's true_params (every zoo model has it; for the zoo it is a point where the "
                    "local λ is the global λ); for your own model without one, give --center FILE.npz. "
                    "On data, a true parameter is not a minimum of L_n, which lowers λ̂(w*) by about "
                    "β·ΔH, ΔH = nL_n(w*) − nL_n(ŵ) with ŵ the minimum nearest w*: the table shows λ̂ + β·ΔH "
                    "too. "
                    f"Run bare, it uses {DEFAULT_MODEL}({_fmt_params(ZOO[DEFAULT_MODEL][0])}), "
                    f"n = {LLC_DEFAULT_N}.",
        epilog="examples:\n  slt-thermo llc\n"
               "  slt-thermo llc --model deep_linear --param widths=3,4,3 --param r=1 --steps 4000\n"
               "  slt-thermo llc --model my_net.py:make_model --center trained.npz --batch-size 256\n"
               "     (trained.npz: np.savez('trained.npz', **params), one array per parameter name)",
    )
    _add_model_options(p, n_help=f"dataset size (default {LLC_DEFAULT_N}; fixed by your data if FUNC returns "
                                 "a Target)",
                       n_kwargs=dict(type=_int_at_least(2), default=None, metavar="N"))
    g = p.add_argument_group("LLC")
    g.add_argument("--center", default=None, metavar="FILE.npz",
                   help="w*, the point whose LLC is estimated: an .npz with one array per parameter, keyed "
                        "by the parameter names (nested names joined by '/'), e.g. np.savez(FILE, **params) "
                        "(default: the model's true_params)")
    g.add_argument("--beta", type=_positive_float, default=None, help="inverse temperature (default 1/log n)")
    g.add_argument("--gamma", type=_nonnegative_float, default=100.0,
                   help="localization strength γ (0: none, only sensible with a compact prior)")
    g.add_argument("--step-size", type=_step_size, default="auto", metavar="auto|sweep|EPS",
                   help="SGLD step size ε. auto: ε = 1/(4κ̂), κ̂ the largest curvature of the localized "
                        "log density at w* (power iteration on the full data), an eighth of the Langevin "
                        "stability limit 2/κ̂; while the run's MALA acceptance is < 0.9, its predicted ε-bias "
                        "exceeds 5%% of λ̂ or a chain goes non-finite, ε is halved and the run repeated (at most "
                        "4 times); sweep: st.sgld_step_size, a sweep of 11 step sizes scored by MALA acceptance, "
                        "predicted ε-bias and mixing (minutes); or a number")
    g.add_argument("--chains", type=_int_at_least(1), default=8, help="SGLD chains, all started at w*")
    g.add_argument("--steps", type=_int_at_least(2), default=2000, help="SGLD steps per chain, burn-in included")
    g.add_argument("--burnin", type=_int_at_least(0), default=400, help="steps discarded at the start of each chain")
    g.add_argument("--batch-size", type=_int_at_least(1), default=None,
                   help="minibatch size B of the gradients (default n: full-data gradients; minibatch "
                        "gradient noise heats the chains and biases λ̂ upward, most where B ≪ nβ)")
    g.add_argument("--thinning", type=_int_at_least(1), default=10, metavar="K",
                   help="keep every K-th step after burn-in: nL_n on the full data and the MALA check are "
                        "evaluated there (consecutive SGLD steps are strongly correlated, so little is lost)")
    g.add_argument("--preconditioner", choices=("none", "rmsprop"), default="none",
                   help="SGLD preconditioner (rmsprop needs --step-size EPS or sweep)")
    g.add_argument("--control-variate", action="store_true",
                   help="SGLD-CV: control-variate the minibatch gradient at w* (less minibatch-noise "
                        "bias on noisy data when the chains stay near w*; needs data, not --population; "
                        "helps most with --batch-size B ≪ n)")
    g.add_argument("--check-equilibration", action="store_true",
                   help="also run chains//2 chains started hot (at β/16) and compare their λ̂ with the "
                        "chains started at w* over the second half: a gap means neither has equilibrated")
    _add_out(p)
    p.set_defaults(func=cmd_llc)

    p = sub.add_parser("models", help="list the model zoo with exact λ and m", formatter_class=_Formatter,
                       description="The zoo: each model's default parameters, exact learning "
                                   "coefficient λ and multiplicity m (slt_thermo.exact).")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("show", help="re-print and re-plot a saved run", formatter_class=_Formatter,
                       description="Re-print the table of a results directory written by `slt-thermo "
                                   "rlct`, `slt-thermo free-energy` or `slt-thermo llc`, and redraw its "
                                   "plots from the saved netCDF.")
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="a directory written by rlct, free-energy or llc")
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


def _make_target(obj, n, seed, population, default_n=1000):
    import jax

    from .target import Target

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


def _cached_target(args, default_n=1000):
    """(target, model description, data origin) for rlct and llc. Zoo targets are memoized on the
    arguments that define them: a Target's static part is hashed by identity, so reusing the
    object lets a second run in the same process (tests, notebooks) skip compilation."""
    key = None
    if args.model in ZOO:
        params = {**ZOO[args.model][0], **dict(args.param)}
        try:
            key = (args.model, tuple(sorted(params.items())), args.n or default_n, args.seed, args.population)
            hash(key)
        except TypeError:
            key = None
    if key is not None and key in _TARGETS:
        return _TARGETS[key]
    obj, desc = resolve_model(args.model, args.param)
    target, origin = _make_target(obj, args.n, args.seed, args.population, default_n)
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
    betas = st.ladder.ti(ns[-1], args.betas) if isinstance(args.betas, int) else np.asarray(args.betas)
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
    from .results import clean_attrs

    ds.attrs = clean_attrs(ds.attrs)  # netCDF has no booleans (e.g. the fit's m_fixed)
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
    """λ̂ with the exact m held fixed (st.thermo.fit_free_energy(..., m=m)): far tighter than
    fitting λ and m together when m is known."""
    nll = ds["nll_true"].values
    if m is None or not np.all(np.isfinite(nll)):
        return None
    from .thermo import fit_free_energy

    fit = fit_free_energy(ds["n"].values, ds["F_n"].values, ds["F_se"].isel(beta=-1).values, nll, m=int(m))
    return {"m": int(m), "lambda_hat": fit["lambda_hat"], "lambda_se": fit["lambda_se"],
            "reduced_chi2": fit["fit_reduced_chi2"]}


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


# ------------------------------------------------------------------------------------ llc
def cmd_llc(args, argv) -> int:
    import jax

    import slt_thermo as st
    from .llc import PREDICTED_BIAS, predicted_bias_too_large

    if args.burnin >= args.steps:
        raise UsageError("--burnin", f"must be smaller than --steps ({args.steps}), got {args.burnin}")
    draws = (args.steps - args.burnin) // args.thinning
    if draws < 8:
        raise UsageError("--steps", f"(steps − burnin) // thinning = {draws} kept draws per chain; at least 8 "
                                    "are needed (R-hat, drift test): take more --steps")
    preconditioner = None if args.preconditioner == "none" else args.preconditioner
    if preconditioner and args.step_size == "auto":
        raise UsageError("--step-size", "auto (ε = 1/(4κ̂)) is for plain SGLD; with --preconditioner rmsprop "
                                        "give --step-size EPS or --step-size sweep")
    target, desc, origin = _cached_target(args, default_n=LLC_DEFAULT_N)
    n = target.n
    batch = n if args.batch_size is None else args.batch_size
    if batch > n and not target.is_population:
        raise UsageError("--batch-size", f"must be <= n = {n}, got {batch}")
    if args.control_variate and target.is_population:
        raise UsageError("--control-variate", "population targets have exact gradients: nothing to control")
    center, center_text = _llc_center(args, target)
    d = int(sum(np.size(x) for x in jax.tree_util.tree_leaves(center)))
    beta = 1 / math.log(n) if args.beta is None else args.beta
    nll_center = float(target.nll(center))
    lam, m = _truth(target)
    truth = _llc_truth(args, lam, center_text)

    summary = _meta(args, argv, "llc")
    summary.update(
        model={"name": target.name, **desc, **_truth_json(lam, m)}, n=n, data=origin, seed=args.seed,
        center=center_text, num_params=d, nll_center=nll_center, truth=truth,
        settings={"beta": beta, "beta_rule": "1/log n" if args.beta is None else "--beta", "gamma": args.gamma,
                  "chains": args.chains, "steps": args.steps, "burnin": args.burnin, "thinning": args.thinning,
                  "batch_size": batch, "preconditioner": args.preconditioner,
                  "control_variate": args.control_variate, "check_equilibration": args.check_equilibration},
    )
    for line in _llc_setup_lines(summary)[:2]:
        print(line, flush=True)

    from .errors import SLTThermoError

    key_step, key_run = jax.random.split(jax.random.PRNGKey(args.seed + 1))
    caught = []
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        step = _llc_step_size(args, target, center, beta, batch, preconditioner, key_step)
        summary["settings"].update(step_size=step["step_size"], step_rule=step["rule"])
        summary["step_size"] = step
        print(_llc_setup_lines(summary)[2], flush=True)
        summary["nearest_minimum"] = None if target.is_population else _nearest_minimum(target, center)
        print(_llc_setup_lines(summary)[3] + " …", flush=True)
    caught += _unique_warnings(rec)
    t0 = time.perf_counter()
    attempts = []
    while True:  # auto: the curvature grows away from a singular w*; halve ε until the run accepts it
        last = step["rule"] != "auto" or step["halvings"] >= LLC_MAX_HALVINGS
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            try:
                est = st.llc(target, center, key=key_run, beta=beta, step_size=step["step_size"], gamma=args.gamma,
                             num_chains=args.chains, num_steps=args.steps, num_burnin=args.burnin,
                             batch_size=batch, preconditioner=preconditioner, eval_full_nll_every=args.thinning,
                             control_variate=args.control_variate,
                             check_equilibration=args.check_equilibration, progress=True)
                acc, bad = est.details["mala_accept"], est.details["unhealthy"]
                bias = est.details["predicted_bias"]
            except SLTThermoError:
                if last:
                    raise
                est, acc, bad, bias = None, float("nan"), args.chains, float("nan")
        attempts.append({"step_size": step["step_size"], "mala_accept": acc, "unhealthy": bad,
                         "predicted_bias": bias})
        small_bias = est is not None and not predicted_bias_too_large(bias, est.value)
        passed = bad == 0 and acc >= LLC_ACCEPT and small_bias
        if last or passed:
            break
        why = (f"{bad} chain(s) went non-finite" if bad else f"MALA acceptance {acc:.3f} < {LLC_ACCEPT}"
               if acc < LLC_ACCEPT else f"predicted ε-bias {bias:+.3g} > {PREDICTED_BIAS:.0%} of λ̂")
        step = _auto_step(step["kappa"], step["halvings"] + 1)
        print(f"{why}: halving ε to {step['step_size']:.3g} and running again …", flush=True)
    wall = time.perf_counter() - t0
    if step["rule"] == "auto":
        step = _auto_step(step["kappa"], step["halvings"], passed)
    step["attempts"] = attempts
    summary["step_size"] = step
    summary["settings"].update(step_size=step["step_size"])
    caught += _unique_warnings(rec)
    det = est.details
    samples = det["samples"]
    samples.ds.attrs["target"] = target.name
    summary.update(
        llc={"value": est.value, "stderr": est.stderr, "text": str(est)},
        per_chain=det["per_chain"],
        diagnostics={"rhat": det["rhat"], "ess": det["ess"], "mala_accept": det["mala_accept"],
                     "drift_z": det["drift_z"], "predicted_bias": det.get("predicted_bias"),
                     "bias_minibatch": det.get("bias_minibatch"),
                     "gamma_sensitivity": det.get("gamma_sensitivity"),
                     "gamma_sensitivity_se": det.get("gamma_sensitivity_se"),
                     "equilibration_z": det.get("equilibration_z"),
                     "cold_start_llc": det.get("cold_start_llc"), "hot_start_llc": det.get("hot_start_llc"),
                     "unhealthy": det["unhealthy"], "chains": args.chains,
                     "draws": int(samples.ds.sizes["draw"]), "nll_kind": det.get("nll_kind")},
        problems=det["problems"], warnings=caught, wall_time_s=wall,
    )
    nm = summary["nearest_minimum"]
    if nm is not None:  # λ̂ with nL_n referenced to its minimum ŵ near w* instead of nL_n(w*)
        summary["llc_ref_minimum"] = {"value": est.value + beta * nm["delta"], "stderr": est.stderr}
    outdir = new_results_dir(args.out, "llc", desc["slug"])
    samples.save(os.path.join(outdir, "samples.nc"))
    summary["files"] = {"samples": "samples.nc", "summary": "summary.json",
                        "plots": [] if args.no_plots else _llc_plots(samples, summary, outdir)}
    _write_json(os.path.join(outdir, "summary.json"), summary)
    print_llc_report(summary, outdir)
    return 0


def _say(text, width=100):
    import textwrap

    print(textwrap.fill(text, width=width, subsequent_indent="  ", break_on_hyphens=False))


def _ljust(text, width):
    """str.ljust by displayed width: combining marks (the hat of λ̂) take no column."""
    import unicodedata

    shown = sum(not unicodedata.combining(c) for c in text)
    return text + " " * max(0, width - shown)


def _unique_warnings(records):
    out = []
    for w in records:
        text = str(w.message).splitlines()[0] if str(w.message) else w.category.__name__
        if issubclass(w.category, (DeprecationWarning, FutureWarning)) or text in out:
            continue
        out.append(text)
    return out


def _leaf_names(tree):
    """('W1', 'W2'), or 'a/b' for nested containers: the names the .npz of --center must use."""
    import jax

    def part(k):
        for attr in ("key", "idx", "name"):
            if hasattr(k, attr):
                return str(getattr(k, attr))
        return str(k)

    paths, treedef = jax.tree_util.tree_flatten_with_path(tree)
    return ["/".join(part(k) for k in path) or "arr_0" for path, _ in paths], [x for _, x in paths], treedef


def _llc_center(args, target):
    """(w* as a params pytree, a description) from --center or the model's true_params."""
    import jax

    model = target.model
    if args.center is None:
        w0 = getattr(model, "true_params", None)
        if w0 is None:
            hint = ""
            try:
                names, _, _ = _leaf_names(target.init(jax.random.PRNGKey(0)))
                hint = f"; keys = the parameter names: {', '.join(names)}"
            except Exception:
                pass
            raise UsageError("--center", f"{target.name} has no true_params to use as w*; pass --center FILE.npz "
                                         f"with the point w* (np.savez(FILE, **params){hint})")
        center, text = w0, "the model's true_params"
    else:
        center, text = _load_center(args.center, target), args.center
    center = jax.tree_util.tree_map(lambda x: np.asarray(x, dtype=np.float32), center)
    where = "true_params" if args.center is None else args.center
    try:
        lp = float(target.log_prior(center))
        h = float(target.nll(center))
        u = target.to_unconstrained(center)
        inside = all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree_util.tree_leaves(u))
    except Exception as err:
        raise UsageError("--center", f"w* ({where}) does not fit the model: {type(err).__name__}: {err}") from None
    if not (math.isfinite(lp) and inside):
        raise UsageError("--center", f"w* ({where}) is not inside the prior's support (on its boundary the "
                                     "sampler's unconstrained coordinates are infinite); the LLC needs an interior "
                                     "point: pass one with --center FILE.npz")
    if not math.isfinite(h):
        raise UsageError("--center", f"nL_n(w*) is not finite at w* ({where})")
    return center, text


def _load_center(path, target):
    import jax

    if not os.path.isfile(path):
        raise UsageError("--center", f"no such file {path!r}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: np.asarray(f[k]) for k in f.files}
    except Exception as err:
        raise UsageError("--center", f"cannot read {path!r} as an .npz: {err}") from None
    if not arrays:
        raise UsageError("--center", f"{path!r} holds no arrays")
    try:
        template = target.init(jax.random.PRNGKey(0))
    except Exception:
        return arrays  # no init to take the structure from: a flat dict of the saved arrays
    names, leaves, treedef = _leaf_names(template)
    if len(names) == 1 and len(arrays) == 1:
        arrays = {names[0]: next(iter(arrays.values()))}
    if set(arrays) != set(names):
        raise UsageError("--center", f"{path} has arrays {', '.join(sorted(arrays))}; the model's parameters are "
                                     f"{', '.join(names)} (save with np.savez(FILE, **params))")
    out = []
    for name, leaf in zip(names, leaves):
        a = arrays[name]
        if a.shape != np.shape(leaf):
            raise UsageError("--center", f"{name} in {path} has shape {a.shape}; the model's {name} has shape "
                                         f"{np.shape(leaf)}")
        out.append(a.astype(np.float32))
    return jax.tree_util.tree_unflatten(treedef, out)


def _llc_truth(args, lam, center_text):
    """Whether the exact (global) λ is the local λ at w*: {'applies', 'note'}."""
    if lam is None:
        return {"applies": False, "note": "exact λ unknown for this model"}
    if args.center is not None:
        return {"applies": False,
                "note": f"the model's global λ = {lam} is the local λ only at the most singular true points "
                        "(elsewhere in the true set the local λ is larger); at a w* of your own it is a "
                        "reference, not the answer: no z"}
    if args.model in ZOO:
        return {"applies": True, "note": LLC_TRUTH.get(args.model, "")}
    return {"applies": True,
            "note": "your model's rlct at its true_params: it is the local λ there only if true_params is a "
                    "most singular point of the true set"}


def _auto_step(kappa, halvings, ok=None):
    """``ok``: whether the last run passed (finite, MALA acceptance >= LLC_ACCEPT, predicted ε-bias
    <= PREDICTED_BIAS of λ̂)."""
    from .llc import PREDICTED_BIAS

    rule = "1/(4κ̂)" + (f"/2^{halvings}" if halvings else "")
    text = f"auto: ε = {rule}, κ̂ = {kappa:.4g} the largest curvature of the localized log density at w*"
    if halvings:
        text += (f"; halved {halvings}× until the run's MALA acceptance was >= {LLC_ACCEPT} and its predicted "
                 f"ε-bias <= {PREDICTED_BIAS:.0%} of λ̂" if ok is None or ok
                 else f"; halved {halvings}× (MALA acceptance or predicted ε-bias still failing)")
    return {"step_size": 1 / (4 * kappa) / 2**halvings, "rule": "auto", "kappa": kappa, "halvings": halvings,
            "text": text, "short": f"auto: {rule}, κ̂ = {kappa:.4g}"}


def _llc_step_size(args, target, center, beta, batch, preconditioner, key):
    import slt_thermo as st
    from .llc import PREDICTED_BIAS

    if args.step_size == "auto":
        kappa = st.max_curvature(target, center, beta=beta, gamma=args.gamma)
        if not (math.isfinite(kappa) and kappa > 0):
            raise UsageError("--step-size", "auto could not estimate the curvature at w* (non-finite Hessian); "
                                            "give --step-size EPS")
        return _auto_step(kappa, 0)
    if args.step_size == "sweep":
        print("picking ε by st.sgld_step_size (11 step sizes × 8 chains × 2000 steps: minutes) …", flush=True)
        eps, table = st.sgld_step_size(target, center, key=key, beta=beta, gamma=args.gamma, batch_size=batch,
                                       preconditioner=preconditioner, control_variate=args.control_variate)
        certified = bool(table.attrs.get("bias_certified"))
        return {"step_size": float(eps), "rule": "sweep", "bias_certified": certified,
                "table": table.to_dict(orient="records"), "short": "sweep: st.sgld_step_size",
                "text": "st.sgld_step_size sweep: " + (
                    f"the largest sound ε with predicted ε-bias <= {PREDICTED_BIAS:.0%}" if certified
                    else f"the smallest sound ε (predicted ε-bias above {PREDICTED_BIAS:.0%} everywhere)") + (
                    "" if table.attrs.get("mixing", True) else "; it did not mix within the sweep (λ̂ likely too low)")}
    return {"step_size": float(args.step_size), "rule": "given", "text": "given by --step-size",
            "short": "given by --step-size"}


def _nearest_minimum(target, center, maxiter=300):
    """nL_n at ŵ, the minimum of L_n that L-BFGS reaches from w* (None when too large or failed).
    The LLC assumes w* minimizes L_n; if it does not, λ̂ is lower by about β(nL_n(w*) − nL_n(ŵ))."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from scipy.optimize import minimize

    flat, unravel = ravel_pytree(target.to_unconstrained(center))
    if flat.size > 100_000:
        return None
    vg = jax.jit(jax.value_and_grad(lambda tg, v: tg.nll(tg.to_constrained(unravel(v))), argnums=1))

    def fun(v):
        val, g = vg(target, jnp.asarray(v, flat.dtype))
        return float(val), np.asarray(g, dtype=float)

    h0 = float(target.nll(center))
    try:
        with np.errstate(all="ignore"):
            # start a hair off w*: at a saddle of L_n (∇L_n(w*) = 0, e.g. w* = 0 in a tanh net) L-BFGS
            # would not move at all
            start = np.asarray(flat, dtype=float) + 1e-3 * np.random.default_rng(0).standard_normal(flat.size)
            r = minimize(fun, start, jac=True, method="L-BFGS-B",
                         options={"maxiter": maxiter, "gtol": 1e-12, "ftol": 1e-15})
        h = float(r.fun)
    except Exception:
        return None
    if not np.all(np.isfinite(r.jac)):  # e.g. NaN gradients of w**k at w = 0: no answer
        return None
    if not math.isfinite(h):
        return None
    h = min(h, h0)
    return {"nll_min": h, "delta": h0 - h, "iterations": int(r.nit)}


def _show_ref(s):
    """Whether λ̂ + β·ΔH (nL_n referenced to its minimum near w*) differs enough to be shown."""
    nm, e = s.get("nearest_minimum"), s.get("llc") or {}
    if nm is None or e.get("value") is None:
        return False
    return s["settings"]["beta"] * nm["delta"] > 0.1 * (e.get("stderr") or 0)


def _llc_plots(samples, s, outdir):
    from . import plotting

    truth = s["model"]["rlct"] if s["truth"]["applies"] else None
    ref = s.get("llc_ref_minimum")
    lines = {} if not _show_ref(s) else {
        f"$\\hat\\lambda$ + β·ΔH = {ref['value']:.3f} (nL$_n$ from its minimum ŵ)": ref["value"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plotting.llc_traces(samples, s["nll_center"], beta=s["settings"]["beta"], truth=truth,
                            estimate=(s["llc"]["value"], s["llc"]["stderr"]), lines=lines,
                            path=os.path.join(outdir, "llc_traces.png"))
    return ["llc_traces.png"]


def _llc_setup_lines(s):
    st_ = s["settings"]
    beta = (f"β = 1/log n = {st_['beta']:.4g}" if st_.get("beta_rule") == "1/log n" else f"β = {st_['beta']:.4g}")
    batch = st_["batch_size"]
    grads = "full-data gradients" if batch >= s["n"] else f"minibatches of {batch}"
    if "population" in s.get("data", ""):
        grads = "exact gradients of nK(w)"
    kept = (st_["steps"] - st_["burnin"]) // st_["thinning"]
    thin = "" if st_["thinning"] == 1 else f", every {st_['thinning']}th step kept"
    step = s.get("step_size") or {}
    lines = [
        f"{s['model']['name']}, n = {s['n']} ({s['data']})",
        f"w* = {s['center']} ({s['num_params']} parameters), nL_n(w*) = {s['nll_center']:.6g}",
        f"step size {st_.get('step_size', float('nan')):.3g}: {step.get('text', '')}",
        f"SGLD: {st_['chains']} chains from w* × ({st_['burnin']} burn-in + {kept} kept draws{thin}), {beta}, "
        f"γ = {st_['gamma']:g}, {grads}"
        + ("" if st_.get("preconditioner", "none") == "none" else f", {st_['preconditioner']} preconditioner"),
    ]
    return lines


def print_llc_report(s: dict, outdir: str) -> None:
    from .llc import DRIFT_Z, EQUILIBRATION_Z, GAMMA_SENSITIVITY, PREDICTED_BIAS

    lam, lam_f, m = s["model"].get("rlct"), s["model"].get("rlct_float"), s["model"].get("multiplicity")
    truth = s["truth"]
    e = s["llc"]
    value, se = e["value"], e["stderr"]
    beta = s["settings"]["beta"]
    exact = "—" if lam is None else (lam if "/" not in lam else f"{lam} = {lam_f:.4g}")
    if lam is not None and not truth["applies"]:
        exact = f"({exact})"
    zlam = lam_f if truth["applies"] else None
    print(f"\n{'':<28} {'estimate':>16}   {'exact λ':<12} {'z':>6}")
    print(f"{_ljust('LLC λ̂(w*)', 28)} {_pm(value, se):>16}   {exact:<12} {_z(value, se, zlam):>6}")
    nm = s.get("nearest_minimum")
    if _show_ref(s):
        shifted = value + beta * nm["delta"]
        print(f"{_ljust('λ̂ + β·ΔH (ΔH: see below)', 28)} {_pm(shifted, se):>16}   {exact:<12} "
              f"{_z(shifted, se, zlam):>6}")
    pc = [v for v in s.get("per_chain") or [] if v is not None]
    if pc:
        print(f"per chain: {' '.join(f'{v:.3g}' for v in pc)}")
    print()
    if lam is not None:
        _say(f"exact λ = {lam}, m = {m} (slt_thermo.exact): {truth['note']}")
        if truth["applies"]:
            _say("z = (λ̂ − λ)/se counts the Monte Carlo error only, not the finite-n and ε-bias of the estimator")
            best = value + beta * nm["delta"] if nm is not None and value is not None else value
            if value is not None and se and abs(best - lam_f) > 4 * se:
                _say("λ̂ is off λ by more than 4 Monte Carlo errors. At finite n the LLC is biased: a localization "
                      "γ that is strong next to the curvature nβ·L_n'' truncates the singular directions (λ̂ low: "
                      "try a smaller --gamma with more --steps, or a larger --n); the step size biases it (compare "
                      "a smaller --step-size); minibatch noise heats it (λ̂ high)")
    else:
        _say(truth["note"])
    if _show_ref(s):
        _say(f"ΔH = nL_n(w*) − nL_n(ŵ) = {nm['delta']:.4g}, ŵ the minimum of L_n that L-BFGS reaches from w*: the "
             f"LLC assumes w* minimizes L_n; here λ̂(w*) is lowered by about β·ΔH = {beta * nm['delta']:.3g}")
    elif nm is not None:
        _say(f"ΔH = nL_n(w*) − nL_n(ŵ) = {nm['delta']:.3g}, ŵ the minimum of L_n that L-BFGS reaches from w*: "
             "negligible next to the Monte Carlo error")
    dg = s["diagnostics"]
    step = s.get("step_size") or {}
    print(f"\n{'diagnostic':<26} {'value':>10}   healthy when")
    rows = [
        ("R-hat of nL_n", _num(dg.get("rhat"), "10.3f"), "< 1.05 (chains agree)"),
        ("ESS of nL_n", _num(dg.get("ess"), "10.0f"), f"of {dg['chains'] * dg['draws']} draws"),
        ("MALA acceptance of ε", _num(dg.get("mala_accept"), "10.3f"),
         f">= {LLC_ACCEPT:g} (small ε-bias; < 0.5: ε too large)"),
        ("predicted ε-bias of λ̂", _num(dg.get("predicted_bias"), "+10.3g"),
         f"< {PREDICTED_BIAS:.0%} of λ̂ (SGLD's first-order bias: minibatch noise + discretization)"),
        ("drift z (2nd vs 1st half)", _num(dg.get("drift_z"), "+10.1f"),
         f"|z| < {DRIFT_Z:g} (burn-in long enough)"),
        ("dλ̂/dlog γ", _num(dg.get("gamma_sensitivity"), "+10.3g"),
         f"|·| < {GAMMA_SENSITIVITY:.0%} of λ̂ (the localization γ hardly shapes λ̂)"),
        *([("cold vs hot start z", _num(dg["equilibration_z"], "+10.1f"),
            f"|z| < {EQUILIBRATION_Z:g} (λ̂ of chains from w* {dg['cold_start_llc']:.3g}, from a hot start "
            f"{dg['hot_start_llc']:.3g}, second halves)")] if dg.get("equilibration_z") is not None else []),
        ("unhealthy chains", f"{dg['unhealthy']} of {dg['chains']}", "0 (non-finite chains are excluded)"),
        ("step size ε", f"{s['settings']['step_size']:10.3g}", step.get("short", step.get("text", ""))),
    ]
    for name, val, when in rows:
        print(f"{_ljust(name, 26)} {val:>10}   {when}")
    if s["settings"]["batch_size"] < s["n"]:
        part = dg.get("bias_minibatch")
        size = "" if part is None or not math.isfinite(part) else f" (predicted {part:+.3g} of the ε-bias above)"
        _say(f"note: minibatch gradients (B = {s['settings']['batch_size']}) add noise that heats the chains and "
             f"biases λ̂ upward{size}, which the MALA check does not see; a larger --batch-size or a smaller "
             "--step-size shrinks it")
    if s.get("warnings"):
        print("\nwarnings:")
        for w in s["warnings"]:
            print(f"  {w}")
    else:
        print("\nwarnings: none")
    if s.get("wall_time_s") is not None:
        print(f"\nSGLD took {s['wall_time_s']:.1f} s")
    files = [s["files"]["samples"], s["files"]["summary"]] + s["files"]["plots"]
    print(f"results: {outdir}{os.sep} ({', '.join(files)})")


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
    elif command == "llc":
        for line in _llc_setup_lines(s):
            print(line)
        if not args.no_plots:
            s["files"]["plots"] = _llc_plots(st.load(os.path.join(d, s["files"]["samples"])), s, d)
        print_llc_report(s, d)
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
