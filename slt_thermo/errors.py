"""Exceptions raised by slt_thermo.

Every error the toolkit raises on purpose derives from :class:`SLTThermoError`, so users can
catch them all at once. Bad input raises a subclass that also derives from the matching builtin
(``ValueError``), with a message that names the offending argument and says how to fix it.

Every warning the toolkit emits is a :class:`SLTThermoWarning` (a ``UserWarning``): a
:class:`ConvergenceWarning` when the sampling may not support the number (R-hat, ESS,
divergences, stuck chains, drift, stalled annealing, a run ending early), a
:class:`NumericalWarning` when numbers went bad (non-finite energies, dropped chains or
particles, precision loss). Filter or escalate them by kind, e.g. turn convergence problems
into errors with::

    warnings.simplefilter("error", slt_thermo.ConvergenceWarning)

or ``pytest -W error::slt_thermo.ConvergenceWarning``. (The interpreter's own ``python -W`` and
``PYTHONWARNINGS`` cannot name them: CPython reads those options before installed packages are
importable and ignores a category it cannot import, saying "invalid module name".)
"""


class SLTThermoError(Exception):
    """Base class of every error raised on purpose by slt_thermo."""


class InvalidArgumentError(SLTThermoError, ValueError):
    """An argument has a bad value (wrong sign, shape, type, ...)."""


class DataError(InvalidArgumentError):
    """The dataset is malformed: mismatched leading axes, non-finite values, empty."""


class LikelihoodError(SLTThermoError, ValueError):
    """The model's log-likelihood or prior is malformed (wrong shape, non-finite at init)."""


class TooFewHealthyChainsError(SLTThermoError):
    """An estimate needs more healthy (finite) chains than the run produced."""


class NumericalError(SLTThermoError):
    """A computation has nothing finite left to go on (e.g. every particle's energy is NaN/inf)."""


class ResultsFileError(SLTThermoError, OSError):
    """A results file cannot be read: missing, truncated, corrupted (checksum mismatch) or not
    one the toolkit wrote. The message names the path and the cause. Also an ``OSError``."""


# ------------------------------------------------------------------------------ warnings
class SLTThermoWarning(UserWarning):
    """Base class of every warning slt_thermo emits."""


class ConvergenceWarning(SLTThermoWarning):
    """The sampling may not support the number: R-hat, ESS, divergences, chains that never
    moved, drift, stalled annealing, a budget or an interrupt ending a run early."""


class NumericalWarning(SLTThermoWarning):
    """Numbers went bad: non-finite energies, dropped chains or particles, precision loss."""
