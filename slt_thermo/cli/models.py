"""``slt-thermo models``: the zoo, with default parameters, exact λ and m."""

from __future__ import annotations

from ._args import Formatter

HELP = "list the model zoo with exact λ and m"


def add_parser(sub):
    """The ``models`` subparser."""
    return sub.add_parser("models", help=HELP, formatter_class=Formatter,
                          description="The zoo: each model's default parameters, exact learning "
                                      "coefficient λ and multiplicity m (slt_thermo.exact).")


def run(args, argv) -> int:
    """Print the zoo table (each model built with its defaults, for its λ and m)."""
    import inspect

    from .. import models
    from ._common import truth
    from ._report import fmt_params

    print(f"{'name':<18} {'default --param':<22} {'λ':>6} {'m':>3}  {'parameters':<38} description")
    for name, (defaults, text) in models.ZOO.items():
        fn = getattr(models, name)
        lam, m = truth(models.load(name))
        sig = ", ".join(p for p in inspect.signature(fn).parameters)
        print(f"{name:<18} {fmt_params(defaults):<22} {lam!s:>6} {m!s:>3}  {sig:<38} {text}")
    print("\nuse: slt-thermo rlct --model NAME --param KEY=VALUE ...  (tuples as widths=3,2,3)")
    print("     or your own: --model FILE.py:FUNC, FUNC(**params) returning a Model or a Target")
    return 0
