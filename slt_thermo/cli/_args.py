"""What every command's parser shares: argument types, the one-line-error parser, the help
formatter and the model / sampler / output option groups.

Imports nothing heavy: building the parser (and so ``--help``) must not import jax.
"""

from __future__ import annotations

import argparse
import ast
import math

DEFAULT_MODEL = "reduced_rank"
DEFAULT_OUT = "results"


class UsageError(Exception):
    """A bad command-line argument: reported as one line naming it, exit code 2."""

    def __init__(self, argument, message):
        super().__init__(f"argument {argument}: {message}" if argument else message)


class Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage block) and exit with code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows an option's default, unless it is None, False or empty (said in the help instead)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or not action.option_strings or default is argparse.SUPPRESS
                or default is None or default is False or default == []):
            return text
        return text + " (default: %(default)s)"


# ------------------------------------------------------------------------------ argument types
def int_at_least(minimum):
    """An argparse type: an integer >= ``minimum``."""
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


def _finite_float(ok, words):
    """An argparse type: a finite number for which ``ok(value)`` holds, else "must be <words>"."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {words}, got {text!r}") from None
        if not (ok(value) and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be {words}, got {text!r}")
        return value

    parse.__name__ = words
    return parse


positive_float = _finite_float(lambda v: v > 0, "a positive number")
nonnegative_float = _finite_float(lambda v: v >= 0, "a number >= 0")


def positive_list(words: str):
    """An argparse type: comma-separated finite numbers > 0 (``words`` names them in errors),
    sorted and deduplicated."""
    def parse(text):
        try:
            values = [float(t) for t in text.split(",") if t.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be comma-separated {words} > 0, got {text!r}") from None
        if not values or any(not (math.isfinite(v) and v > 0) for v in values):
            raise argparse.ArgumentTypeError(f"must be comma-separated {words} > 0, got {text!r}")
        return sorted(set(values))

    parse.__name__ = f"comma-separated {words}"
    return parse


def int_list(text):
    """``--n`` of free-energy: at least 3 increasing dataset sizes >= 2, comma-separated."""
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers like 100,300,1000, got {text!r}") from None
    if len(values) < 3 or any(v < 2 for v in values) or any(b <= a for a, b in zip(values, values[1:])):
        raise argparse.ArgumentTypeError(
            f"must be at least 3 increasing dataset sizes >= 2, like 100,300,1000,3000; got {text!r}"
        )
    return values


def ladder(text):
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


def param(text):
    """``--param KEY=VALUE``: (key, value), the value a Python literal if it parses as one
    (``widths=3,2,3`` → a tuple), true/false/none in any case, else the string."""
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


# ------------------------------------------------------------------------------ option groups
def add_model_options(p, *, n_help, n_kwargs):
    """--model, --param, --n, --seed, --population."""
    g = p.add_argument_group("model")
    g.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME|FILE.py:FUNC",
                   help="a zoo model (see `slt-thermo models`) or your own: a Python file and a function "
                        "in it returning a Model (log_prior, log_likelihood, init, simulate) or a Target")
    g.add_argument("--param", action="append", type=param, default=[], metavar="KEY=VALUE",
                   help="a model parameter, repeatable: --param M=3 --param widths=3,2,3 (zoo defaults: "
                        "`slt-thermo models`); passed as keyword arguments to your function")
    g.add_argument("--n", help=n_help, **n_kwargs)
    g.add_argument("--seed", type=int_at_least(0), default=0, help="PRNG seed (data and sampler)")
    g.add_argument("--population", action="store_true",
                   help="use the population potential nK(w) instead of a simulated dataset "
                        "(zoo models; the noise-free thermodynamics of Target.population)")


def add_sampler_options(p, *, chains, warmup, samples):
    """--chains, --warmup, --samples; returns the group for the command's own sampler options."""
    g = p.add_argument_group("sampler")
    g.add_argument("--chains", type=int_at_least(1), default=chains, help="chains per β")
    g.add_argument("--warmup", type=int_at_least(0), default=warmup,
                   help="warmup (NUTS) or burn-in (SGLD) steps per chain")
    g.add_argument("--samples", type=int_at_least(4), default=samples, help="kept draws per chain")
    return g


def add_out(p):
    """--out, --no-plots."""
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help="parent folder of the results directories (a new one per run)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
