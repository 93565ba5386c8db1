"""Formatting shared by the commands' reports: numbers with error bars, z-scores, wrapped notes,
column alignment by displayed width, and the one-line warnings."""

from __future__ import annotations

import math
import os
import re

from ..models import format_params as fmt_params  # noqa: F401  (how reports and help show parameters)


def pm(value, se):
    """``value ± se`` as :class:`slt_thermo.Estimate` prints it; "—" when there is no value."""
    from ..results import Estimate

    if value is None:
        return "—"
    return str(Estimate(value, se if se is not None else float("nan")))


def num(x, fmt):
    """``format(x, fmt)``, or a right-aligned "-" of the format's width when x is None or not finite."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        width = int(re.match(r"\d+", fmt).group())
        return " " * (width - 1) + "-"
    return format(x, fmt)


def z(value, se, truth):
    """(value − truth)/se as "+1.2", or "" when any part is missing."""
    if value is None or truth is None or not se:
        return ""
    return f"{(value - float(truth)) / se:+.1f}"


def say(text, width=100):
    """Print a note wrapped at ``width``, continuation lines indented."""
    import textwrap

    print(textwrap.fill(text, width=width, subsequent_indent="  ", break_on_hyphens=False))


def ljust(text, width):
    """str.ljust by displayed width: combining marks (the hat of λ̂) take no column."""
    import unicodedata

    shown = sum(not unicodedata.combining(c) for c in text)
    return text + " " * max(0, width - shown)


def exact_text(lam, lam_f, unknown):
    """The exact λ as "3/2 = 1.5" (or "2" for an integer), ``unknown`` when λ is None."""
    return unknown if lam is None else (lam if "/" not in lam else f"{lam} = {lam_f:.4g}")


def print_files(s, outdir):
    """The last line of every report: the results directory and what it holds."""
    files = [f for f in (s["files"].get("samples"), s["files"]["summary"]) if f] + s["files"]["plots"]
    print(f"results: {outdir}{os.sep} ({', '.join(files)})")


def unique_warnings(records):
    """The first lines of recorded warnings, once each, without Deprecation/FutureWarnings."""
    out = []
    for w in records:
        text = str(w.message).splitlines()[0] if str(w.message) else w.category.__name__
        if issubclass(w.category, (DeprecationWarning, FutureWarning)) or text in out:
            continue
        out.append(text)
    return out


def one_line_warning(message, category, filename, lineno, file=None, line=None):
    """``warnings.showwarning`` for the CLI: ``slt-thermo: warning: <first line>``."""
    import sys

    text = str(message).splitlines()[0] if str(message) else category.__name__
    print(f"slt-thermo: warning: {text}", file=sys.stderr if file is None else file)
