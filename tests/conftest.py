import math

import numpy as np
import pytest


def mean_and_se(x):
    """Mean of a (chain, draw) array and its Monte Carlo standard error (ArviZ's ESS for the mean)."""
    from slt_thermo.results import ess_mean

    x = np.asarray(x, dtype=float)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(ess_mean(x)))


@pytest.fixture(scope="session")
def keys():
    import jax

    return lambda i: jax.random.PRNGKey(i)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop jax's compiled executables after each test module. The whole default run compiles
    thousands of them, each with its own code mappings; at ~92% of the run the process passed
    the kernel's map limit (vm.max_map_count = 65530) and XLA segfaulted while compiling."""
    yield
    import jax

    jax.clear_caches()
