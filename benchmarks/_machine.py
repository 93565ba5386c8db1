"""The machine a benchmark ran on, its load and CPU time: shared by every benchmark script
(run as ``python benchmarks/<name>.py``, so this directory is on sys.path)."""

from __future__ import annotations

import os
import platform
import resource
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("jax", "jaxlib", "numpyro", "arviz", "slt-thermo")


def package_version(pkg):
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "not installed"


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_avg():
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def cpu_seconds():
    """User + system CPU time of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def machine_info():
    """Platform, CPU, usable cores, load, JAX backend/devices and package versions."""
    import jax

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "load_avg_1_5_15": load_avg(),
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "jax_device_count": jax.device_count(),
        "x64": bool(jax.config.jax_enable_x64),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        "versions": {p: package_version(p) for p in PACKAGES},
    }
