"""The ``slt-thermo`` command: the user's front door.

    slt-thermo rlct                      # λ̂ of an embedded default model, with error bars and plots
    slt-thermo rlct --model reduced_rank --param M=3 --param N=3 --param H=2 --param r=1
    slt-thermo rlct --model my_model.py:make_model --param width=4
    slt-thermo free-energy --model monomial --param k=1,2 --n 100,300,1000,3000
    slt-thermo llc                       # local learning coefficient λ̂(w*) by SGLD, with diagnostics
    slt-thermo llc --model my_net.py:make_model --center trained.npz
    slt-thermo therml                    # TherML's σS posterior on its toy: R, D, C, S, J vs σ
    slt-thermo iso                       # Gao & Chaudhari's iso-classification process and transfer
    slt-thermo sgd                       # SGD against tempered posteriors: β̂ four ways
    slt-thermo models                    # the zoo, with exact λ and m
    slt-thermo show results/rlct-…       # re-print and re-plot a saved run
    slt-thermo demo                      # tempered NUTS on linear regression vs the exact E^β[nL_n]

Every run writes a new results directory (netCDF samples, JSON summary, PNG plots) under
``--out`` (default ``results/``) and never overwrites an earlier one. Bad arguments give a
one-line error that names the argument (exit code 2), never a traceback.

One module per command, listed in ``COMMANDS``. A command module exports ``add_parser(subparsers)``
(its subparser), ``run(args, argv) -> int`` (the exit code) and, if it writes a results directory,
``print_report(summary, outdir)`` and ``show(summary, outdir, *, redraw)`` for ``slt-thermo show``.
A new command is one module and one line in ``COMMANDS``. Command modules import jax and the
library inside ``run``, so building the parser (``--help``) stays light.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from ._args import Parser, UsageError

# command name -> module of this package, in the order `slt-thermo --help` lists them
COMMANDS = {
    "rlct": "rlct",
    "free-energy": "free_energy",
    "llc": "llc",
    "models": "models",
    "show": "show",
    "therml": "therml",
    "iso": "iso",
    "sgd": "sgd",
    "demo": "demo",
}

__all__ = ["COMMANDS", "UsageError", "build_parser", "command_module", "main"]


def command_module(name: str):
    """The module implementing command ``name`` (a key of ``COMMANDS``)."""
    return importlib.import_module(f".{COMMANDS[name]}", __name__)


def build_parser() -> argparse.ArgumentParser:
    """The ``slt-thermo`` parser, with one subparser per registered command."""
    parser = Parser(
        prog="slt-thermo", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Thermodynamics of Bayesian learning (singular learning theory) in JAX: "
                    "tempered posteriors, learning coefficients (RLCT λ), free energies.",
        epilog="Start with `slt-thermo rlct` (about a minute on a laptop CPU). "
               "Every command has --help.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        command_module(name).add_parser(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``slt-thermo`` console script; returns the exit code."""
    from ._report import one_line_warning

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    prog = f"slt-thermo {args.command}"
    from ..errors import SLTThermoError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.showwarning = one_line_warning
        try:
            return command_module(args.command).run(args, argv)
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
