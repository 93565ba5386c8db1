"""Every public numeric argument checked at the door (issue 24 part 6): 0, negative, NaN, wrong
type, each raising an InvalidArgumentError that names the argument."""

import math

import jax
import pytest

import slt_thermo as st
from slt_thermo import models

M = models.linear_regression(d=2)
T = st.Target(M, M.simulate(jax.random.PRNGKey(0), 50))
K = jax.random.PRNGKey(0)
BASE = {
    "sample_nuts": (lambda **kw: st.sample_nuts(T, [1.0], key=K, progress=False, **kw),
                    dict(num_chains=2, num_warmup=5, num_samples=5)),
    "sample_mala": (lambda **kw: st.sample_mala(T, [1.0], key=K, progress=False, **kw),
                    dict(num_chains=2, num_warmup=5, num_samples=5)),
    "sample_sgld": (lambda **kw: st.sample_sgld(T, [1.0], key=K, progress=False, **kw),
                    dict(num_chains=2, num_steps=20, num_burnin=10, batch_size=10, step_size=1e-4)),
    "llc": (lambda **kw: st.llc(T, M.true_params, key=K, progress=False, **kw),
            dict(num_chains=2, num_steps=100, num_burnin=20, step_size=1e-4)),
}
BAD = [0, -1, math.nan, "x"]
CASES = [(fn, arg, bad) for fn, args in [
    ("sample_nuts", ["num_chains", "num_warmup", "num_samples", "step_size", "max_tree_depth", "target_accept_prob", "gamma"]),
    ("sample_mala", ["num_chains", "num_warmup", "num_samples", "step_size"]),
    ("sample_sgld", ["num_chains", "num_steps", "batch_size", "step_size", "gamma", "friction", "thinning"]),
    ("llc", ["num_chains", "num_steps", "num_burnin", "step_size", "gamma", "friction", "beta", "max_steps"]),
] for arg in args for bad in BAD]


@pytest.mark.parametrize("fn,arg,bad", CASES, ids=[f"{f}-{a}-{b}" for f, a, b in CASES])
def test_bad_numeric_argument_names_itself(fn, arg, bad):
    call, base = BASE[fn]
    if arg in ("num_warmup", "num_burnin", "gamma") and bad == 0:
        pytest.skip("0 is valid here")
    with pytest.raises(st.InvalidArgumentError, match=arg):
        call(**{**base, arg: bad})
