"""Exceptions raised by slt_thermo.

Every error the toolkit raises on purpose derives from :class:`SLTThermoError`, so users can
catch them all at once. Bad input raises a subclass that also derives from the matching builtin
(``ValueError``), with a message that names the offending argument and says how to fix it.
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
