"""Every public numeric argument checked at the door (issue 24 part 6): 0, negative, NaN, wrong
type, each raising an InvalidArgumentError that names the argument."""

import math
import re
import warnings

import jax
import numpy as np
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
BAD = [0, -1, math.nan, "x", None, [1.0, 2.0]]
NONE_MEANS_DEFAULT = {("sample_nuts", "step_size"), ("sample_mala", "step_size"), ("sample_sgld", "friction"),
                      ("llc", "friction"), ("llc", "beta"), ("sample_sgld", "thinning"),
                      ("llc", "step_size")}  # llc: None is the step-size sweep (before issue 23)
CASES = [(fn, arg, bad) for fn, args in [
    ("sample_nuts", ["num_chains", "num_warmup", "num_samples", "step_size", "max_tree_depth", "target_accept_prob", "gamma"]),
    ("sample_mala", ["num_chains", "num_warmup", "num_samples", "step_size"]),
    ("sample_sgld", ["num_chains", "num_steps", "batch_size", "step_size", "gamma", "friction", "thinning"]),
    ("llc", ["num_chains", "num_steps", "num_burnin", "step_size", "gamma", "friction", "beta", "max_steps"]),
] for arg in args for bad in BAD]


@pytest.mark.parametrize("fn,arg,bad", CASES, ids=[f"{f}-{a}-{b!r}" for f, a, b in CASES])
def test_bad_numeric_argument_names_itself(fn, arg, bad):
    call, base = BASE[fn]
    if arg in ("num_warmup", "num_burnin", "gamma") and isinstance(bad, int) and bad == 0:
        pytest.skip("0 is valid here")
    if bad is None and (fn, arg) in NONE_MEANS_DEFAULT:
        pytest.skip("None means the default here")
    with pytest.raises(st.InvalidArgumentError, match=arg):
        call(**{**base, arg: bad})


# ------------------------------------------------------------------------------ the estimators
@pytest.fixture(scope="module")
def runs():
    """One tiny tempered run (3 rungs from β = 0, 2 chains × 50 draws, ~5 s) that every estimator
    case reads, and its β = 1 rung alone as the localized run of llc_from_samples."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a run this short is unconverged by design
        s = st.sample_mala(T, [0.0, 1 / math.log(T.n), 1.0], num_chains=2, num_warmup=50, num_samples=50,
                           key=jax.random.PRNGKey(1), progress=False)
    return s, st.Samples(s.ds.isel(beta=[2]))


def _grid(value):  # an array of the samples' (beta, chain, draw) shape
    return lambda s: np.full((s.betas.size, s.ds.sizes["chain"], s.ds.sizes["draw"]), value)


def _wrong_grid(s):  # 2-D where (beta, chain, draw) is expected
    return np.zeros((s.betas.size, s.ds.sizes["chain"] * s.ds.sizes["draw"]))


E_BASE = {  # fn -> (call(runs, **kw), valid keyword arguments); a bad value may be a function of the run
    "free_energy": lambda r, **kw: st.free_energy(**{"samples": r[0], **kw}),
    "free_energy_curve": lambda r, **kw: st.free_energy_curve(**{"samples": r[0], **kw}),
    "rlct": lambda r, **kw: st.rlct(**{"samples": r[0], **kw}),
    "wbic": lambda r, **kw: st.wbic(**{"samples": r[0], **kw}),
    "observables": lambda r, **kw: st.observables(**{"samples": r[0], **kw}),
    "susceptibility": lambda r, **kw: st.susceptibility(**{"samples": r[0], "observable": "nll", **kw}),
    "thermodynamics": lambda r, **kw: st.thermodynamics(**{"samples": r[0], **kw}),
    "llc_from_samples": lambda r, **kw: st.llc_from_samples(**{"samples": r[1], "nll_center": 60.0, "warn": False,
                                                               **kw}),
    "mbar_curve": lambda r, **kw: st.mbar_curve(**{"samples": r[0], **kw}),
    "ti_free_energy": lambda r, **kw: st.ti_free_energy(**{"betas": [0, .5, 1], "E": [3., 2., 1.],
                                                           "V": [1., 1., 1.], **kw}),
    "waic_from_loglik": lambda r, **kw: st.waic_from_loglik(**{"loglik": [[0., 1., 2.]] * 4, **kw}),
}
NAN, INF = math.nan, math.inf
E_BAD = {  # (fn, arg) -> bad values
    **{(f, "samples"): [None, "x", 3, lambda s: s.ds] for f in (
        "free_energy", "free_energy_curve", "rlct", "wbic", "observables", "susceptibility", "thermodynamics",
        "llc_from_samples", "mbar_curve")},
    **{(f, "method"): ["bogus", None, 3, ["ols"]] for f in ("free_energy", "free_energy_curve", "rlct",
                                                            "ti_free_energy")},
    **{(f, "log_z0"): [NAN, INF, "x", None, [1.0, 2.0]] for f in ("free_energy", "free_energy_curve",
                                                                   "ti_free_energy")},
    ("rlct", "beta0"): [(NAN, 2.0), (0, 2.0), (-1, 2.0), (1.0, 1.0), (1.0, INF), "x", None, 1.0, (1.0,),
                        (1.0, 2.0, 3.0), (1.0, "x")],
    ("rlct", "beta"): [0, -1, NAN, INF, "x", [0.1, 0.2]],
    ("rlct", "betas"): [(NAN, 1.0), (0.1, NAN), (-1, 1.0), (1.0, 0.5), "x", 1.0, (1.0,)],
    ("susceptibility", "observable"): ["bogus", "w", None, 3, _wrong_grid, _grid(NAN), {"a": 1}, ["x"] * 3],
    ("susceptibility", "conjugate"): ["bogus", 3, _wrong_grid, _grid(INF), {"a": 1}],
    ("thermodynamics", "F"): ["x", [[0.0] * 3] * 2, [NAN, 1, 2], [1, 2], {"a": 1}],
    ("llc_from_samples", "nll_center"): [NAN, INF, "x", None, [1.0, 2.0]],
    ("llc_from_samples", "beta"): [0, -1, NAN, INF, "x"],
    ("llc_from_samples", "num_params"): [0, -1, NAN, "x", 2.5],
    ("llc_from_samples", "hot_start"): ["x", 3, lambda s: s.ds],
    ("ti_free_energy", "betas"): [[0, NAN, 1], [0, .5, INF], [[0, .5, 1]], "x", [0, -.5, 1]],
    ("ti_free_energy", "E"): [[3, NAN, 1], [[3, 2, 1]], "x", [3, 2]],
    ("ti_free_energy", "V"): [[1, NAN, 1], [[1, 1, 1]], "x", [1, 1], [1, -1, 1]],
    **{("ti_free_energy", a): [[[1, 1, 1]], "x", [1, 1], [1, -1, 1]] for a in ("E_se", "V_se")},  # NaN: unknown
    ("waic_from_loglik", "loglik"): ["x", None, [[1, "a"]], [0., 1., 2.]],
    ("waic_from_loglik", "beta"): [-1, NAN, "x", None, [1.0, 2.0]],
    ("mbar_curve", "betas"): [[NAN], [[0.1]], "x", [-1.0]],
    ("mbar_curve", "num_between"): [-1, NAN, "x", 2.5],
}
E_CASES = [(f, a, i) for (f, a), bads in E_BAD.items() for i in range(len(bads))]


def _case_id(f, a, i):
    bad = E_BAD[f, a][i]
    return f"{f}-{a}-" + (getattr(bad, "__name__", "fn") if callable(bad) else repr(bad)[:24])


@pytest.mark.parametrize("fn,arg,i", E_CASES, ids=[_case_id(*c) for c in E_CASES])
def test_bad_estimator_argument_names_itself(runs, fn, arg, i):
    """Every public estimator refuses a bad argument (wrong type, NaN, inf, negative, out of range,
    wrong shape, an unknown choice) at the door, with an InvalidArgumentError that names it."""
    bad = E_BAD[fn, arg][i]
    if callable(bad):
        bad = bad(runs[1] if fn == "llc_from_samples" else runs[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny run's convergence warnings are not the point here
        with pytest.raises(st.InvalidArgumentError, match=re.escape(f"`{arg}`")):
            E_BASE[fn](runs, **{arg: bad})


@pytest.mark.parametrize("fn", sorted(E_BASE))
def test_estimators_accept_the_base_arguments(runs, fn):
    """The base call of each estimator case is valid, so each bad-value case tests one argument."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        E_BASE[fn](runs)
