"""``slt-thermo show RESULTS_DIR``: re-print and re-plot a saved run, through the report of the
command that wrote it (found in the registry by the summary's ``command``)."""

from __future__ import annotations

import json
import os

from ._args import Formatter, UsageError

HELP = "re-print and re-plot a saved run"


def add_parser(sub):
    """The ``show`` subparser."""
    p = sub.add_parser("show", help=HELP, formatter_class=Formatter,
                       description="Re-print the table of a results directory written by `slt-thermo "
                                   "rlct`, `slt-thermo free-energy` or `slt-thermo llc`, and redraw its "
                                   "plots from the saved netCDF.")
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="a directory written by rlct, free-energy or llc")
    p.add_argument("--no-plots", action="store_true", help="only print")
    return p


def run(args, argv) -> int:
    """Read summary.json and hand it to its command's ``show``."""
    from . import COMMANDS, command_module

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
    module = command_module(command) if command in COMMANDS else None
    if module is None or not hasattr(module, "show"):
        raise UsageError("RESULTS_DIR", f"unknown command {command!r} in {path}")
    module.show(s, d, redraw=not args.no_plots)
    return 0
