"""Ctrl-C at safe points (issue 24): within :func:`deferred_sigint` a SIGINT is recorded and
raised by :func:`check_interrupt`, which the sampler driver calls between chunks and the
free-energy CLI between the sizes of its sweep."""

from __future__ import annotations

import contextlib
import signal
import threading

_SIGINT = {"pending": False, "owner": False}


def _on_sigint(signum, frame):
    if _SIGINT["pending"]:  # a second Ctrl-C: stop at once (Python's own behaviour)
        raise KeyboardInterrupt
    _SIGINT["pending"] = True


@contextlib.contextmanager
def deferred_sigint():
    """Within: a Ctrl-C (SIGINT) is recorded and raised as ``KeyboardInterrupt`` by the next
    :func:`check_interrupt` (the driver checks before and after every chunk), not wherever the
    interpreter happens to be. Python's own handler raises it at any bytecode, and one raised
    in a garbage-collector callback (jax registers one) or a ``__del__`` is printed as
    "Exception ignored" and lost: a sweep then ran on for minutes after Ctrl-C. A second Ctrl-C
    raises at once. A Ctrl-C still pending when the block ends is raised there. Nests (the
    outermost installs the handler); does nothing off the main thread or when SIGINT has a
    handler other than Python's default (a user's own)."""
    if (_SIGINT["owner"] or threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    _SIGINT.update(pending=False, owner=True)
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _SIGINT["owner"] = False
        pending, _SIGINT["pending"] = _SIGINT["pending"], False
    if pending:
        raise KeyboardInterrupt


def check_interrupt() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C arrived inside :func:`deferred_sigint` since the
    last check (a safe point: between chunks, between the units of a sweep)."""
    if _SIGINT["pending"]:
        _SIGINT["pending"] = False
        raise KeyboardInterrupt
