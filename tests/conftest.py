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
