"""Faults a user meets: chains that never moved, disagreeing chains, a log-likelihood that is NaN
on part of parameter space, a process killed while it saves, a Ctrl-C during a sweep. A number
that is wrong must say so (issue 24): an error bar that covers its error, or infinite, and a
ConvergenceWarning; bad chains counted, warned about and left out, or a clear error; a file that
is complete or absent; a Ctrl-C acted on within seconds."""

import math
import os
import time
import warnings

import jax
import numpy as np
import pytest

import slt_thermo as st
from slt_thermo import models
from slt_thermo.thermo.stats import mean_se


@pytest.fixture(scope="module")
def linreg():
    m = models.linear_regression(d=3)
    data = m.simulate(jax.random.PRNGKey(1), 300)
    return m, data, st.Target(m, data)


def test_stuck_nuts_ladder_free_energy_warns_with_an_infinite_error_bar(linreg):
    """NUTS without warm-up at a step size far too large: every proposal diverges, the chains never
    leave their start, and each rung's energy is a constant. Before issue 24 TI turned that into
    F = 603.7 ± 0.0 against an exact 291.7; now the error bar is infinite and a ConvergenceWarning
    names the stuck chains."""
    m, data, t = linreg
    betas = st.ladder.power(12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = st.sample_nuts(t, betas, num_chains=2, num_warmup=0, num_samples=50, step_size=1e3,
                             max_tree_depth=2, key=jax.random.PRNGKey(0), progress=False)
    with pytest.warns(st.ConvergenceWarning, match="never moved"):
        est = st.free_energy(run)
    assert est.stderr == math.inf, repr(est)
    assert abs(est.value - m.exact_thermo(data, 1.0).F) > 1.0  # wrong, and its error bar says so


def test_disagreeing_chains_widen_the_error_bar():
    """Two chains at different levels (R-hat ≫ 1): the within-chain ESS error alone would be tiny;
    the error bar is at least the chain means' spread, which covers the gap to the pooled truth."""
    rng = np.random.default_rng(0)
    x = np.stack([rng.normal(0.0, 1.0, 2000), rng.normal(5.0, 1.0, 2000)])
    mean, se, _ = mean_se(x)
    assert se >= np.std(x.mean(axis=1), ddof=1) / math.sqrt(2) - 1e-12 and se > 1.0
    well = rng.normal(0.0, 1.0, (4, 2000))  # mixed chains: the ESS error, unchanged
    _, se_well, ess = mean_se(well)
    assert se_well == pytest.approx(well.std(ddof=1) / math.sqrt(ess))


def test_every_sampler_run_ends_with_a_rung_check(linreg):
    """The stuck ladder warns already when the run ends (before any estimator), and the Samples
    carry the per-rung diagnostics; a healthy run carries them without a warning."""
    m, data, t = linreg
    with pytest.warns(st.ConvergenceWarning, match="run check: .*never moved"):
        run = st.sample_nuts(t, [0.5, 1.0], num_chains=2, num_warmup=0, num_samples=50, step_size=1e3,
                             max_tree_depth=2, key=jax.random.PRNGKey(0), progress=False)
    assert list(run.ds.attrs["rung_stuck"]) == [2, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("error", st.ConvergenceWarning)
        good = st.sample_nuts(t, [0.5, 1.0], num_chains=4, num_warmup=300, num_samples=300,
                              key=jax.random.PRNGKey(1), progress=False)
    assert (good.ds.attrs["rung_rhat"] < 1.05).all() and (good.ds.attrs["rung_ess"] >= 100).all()
    assert list(good.ds.attrs["rung_stuck"]) == [0, 0]


def test_llc_says_what_to_do_when_no_step_size_gives_a_run(linreg):
    """Every chain non-finite at the only step size tried: llc raises one error that names the step
    sizes tried and the remedies, not a bare 'only 0 healthy chains'."""
    m, data, t = linreg
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(st.SLTThermoError, match=r"no step size tried \(1e\+06\).*gamma"):
            st.llc(t, m.true_params, key=jax.random.PRNGKey(0), step_size=1e6, num_steps=200, num_burnin=50,
                   progress=False)


# ------------------------------------------------------------------------------ NaN regions
NAN_CUT = 1.0  # the log-likelihood is NaN where w_0 > 1: 16% of the prior's mass, where chains go
NAN_BETAS = [0.0, 0.5, 1.0]
NAN_LADDER = np.linspace(0.0, 1.0, 5) ** 3
EXACT_DRAW = {"w": np.array([-0.5, 0.3], np.float32)}  # BDMC's exact sample (the true w)


def _nan_target(nan_where):
    """(model, data, target): 2-D linear regression (w_true = (−0.5, 0.3), n = 20, prior
    N(0, I), exact F) with a log-likelihood that is NaN where ``nan_where(w)``."""
    import jax.numpy as jnp

    m = models.linear_regression(d=2, w0=[-0.5, 0.3])
    data = m.simulate(jax.random.PRNGKey(3), 20)

    def log_likelihood(p, d):
        return jnp.where(nan_where(p["w"]), jnp.nan, m.log_likelihood(p, d))

    return m, data, st.Target.from_functions(m.log_prior, log_likelihood, data, init={"w": jnp.zeros(2)},
                                             sample_prior=m.sample_prior)


def _recorded(fn):
    """(fn(), [(category, message)] of every warning it emitted)."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = fn()
    return out, [(w.category, str(w.message)) for w in rec]


def _has(rec, category, pattern):
    import re

    return any(issubclass(c, category) and re.search(pattern, msg) for c, msg in rec)


def _excludes_unhealthy(run):
    """st.free_energy of the run, checked to ignore the unhealthy chains: garbage in their nll
    changes nothing."""
    est, rec = _recorded(lambda: st.free_energy(run))
    bad = ~run.healthy.values
    assert _has(rec, st.NumericalWarning, f"excluding {int(bad.sum())} unhealthy"), rec
    ds = run.ds.copy(deep=True)
    ds["nll"].values[bad] = 1e6
    again, _ = _recorded(lambda: st.free_energy(st.Samples(ds)))
    assert np.isfinite(est.value) and again.value == est.value and again.stderr == est.stderr
    return est


MH = {  # Metropolis-Hastings samplers: a NaN proposal is rejected, like one of energy +inf
    "nuts": lambda t, **kw: st.sample_nuts(t, NAN_BETAS, num_warmup=60, num_samples=60, **kw),
    "hmc": lambda t, **kw: st.sample_hmc(t, NAN_BETAS, num_warmup=60, num_samples=60, num_steps=4, **kw),
    "mala": lambda t, **kw: st.sample_mala(t, NAN_BETAS, num_warmup=60, num_samples=60, step_size=0.1, **kw),
}
SGLD = {  # no accept/reject: a chain that steps into the region goes non-finite. Full batches (n =
    # 20): minibatch noise widens the underdamped chains (sd of w_0 at β = 1: 0.35 at batch 10,
    # exact 0.19), which would carry them into the region at β = 1 as well
    "sgld": lambda t, **kw: st.sample_sgld(t, NAN_BETAS, step_size=0.02, num_steps=150, num_burnin=50,
                                           batch_size=20, **kw),
    "sgld_underdamped": lambda t, **kw: st.sample_sgld(t, NAN_BETAS, step_size=0.02, num_steps=150,
                                                       num_burnin=50, batch_size=20, friction=2.0, **kw),
}


@pytest.mark.parametrize("sampler", sorted(MH))
def test_mh_samplers_never_enter_a_nan_region_and_drop_chains_started_in_it(sampler):
    """NaN where w_0 > 1. The chains started at 0 reach the region's edge at β = 0 (the prior) and
    stay out of it (every recorded w_0 ≤ 1: NaN is zero density); the chain started inside at
    w = (3, 0) is marked unhealthy at every β, a NumericalWarning counts it, and the free energy
    is finite and leaves it out."""
    m, data, t = _nan_target(lambda w: w[0] > NAN_CUT)
    B, C = len(NAN_BETAS), 3
    init = {"w": np.zeros((B, C, 2), np.float32)}
    init["w"][:, -1, 0] = 3.0
    run, rec = _recorded(lambda: MH[sampler](t, num_chains=C, init=init, key=jax.random.PRNGKey(4),
                                             progress=False))
    assert _has(rec, st.NumericalWarning, f"{B} of {B * C} .*unhealthy"), rec
    np.testing.assert_array_equal(run.healthy.values, [[True, True, False]] * B)
    ok = run.healthy.values
    w0 = run["w"].values[..., 0]
    assert np.isfinite(run.nll.values[ok]).all() and np.all(w0[ok] <= NAN_CUT)
    assert w0[0][ok[0]].max() > 0.5  # the prior rung did go near the region
    if sampler != "mala":  # NUTS/HMC count the rejected NaN trajectories as divergences
        assert run["diverging"].values[0][ok[0]].sum() > 0
    _excludes_unhealthy(run)


@pytest.mark.parametrize("sampler", sorted(SGLD))
def test_sgld_chains_that_step_into_a_nan_region_are_marked_and_excluded(sampler):
    """NaN where w_0 > 1: at β = 0 the (overdamped or underdamped) Langevin chains wander into it
    and go non-finite; each chain with a non-finite draw is unhealthy, the run warns with the
    count, and the free energy leaves them out (finite) or, where a rung kept no healthy chain,
    raises TooFewHealthyChainsError."""
    m, data, t = _nan_target(lambda w: w[0] > NAN_CUT)
    run, rec = _recorded(lambda: SGLD[sampler](t, num_chains=4, key=jax.random.PRNGKey(2), progress=False))
    healthy = run.healthy.values
    bad = int((~healthy).sum())
    assert bad > 0 and _has(rec, st.NumericalWarning, f"{bad} of {healthy.size} .*unhealthy"), rec
    went_bad = ~np.isfinite(run.nll.values).all(axis=-1) | ~np.isfinite(run["w"].values).all(axis=(-2, -1))
    assert not np.any(healthy & went_bad)  # every chain with a non-finite draw is marked
    assert healthy[1:].all() and np.isfinite(run.nll.values[1:]).all()  # β ≥ 0.5: far from the region
    if healthy[0].any():
        _excludes_unhealthy(run)
    else:
        with pytest.raises(st.TooFewHealthyChainsError, match="beta = 0"):
            _recorded(lambda: st.free_energy(run))


@pytest.mark.parametrize("method", ["population_annealing", "ais", "bdmc"])
def test_annealers_drop_particles_in_a_nan_region_and_stay_right(method):
    """NaN where w_0 > 1 (16% of the prior draws): population annealing and AIS give those
    particles zero weight, count them (rungs num_nonfinite) with a NumericalWarning, and their
    log Z at β = 1 still agrees with the exact one (the posterior lies far from the region);
    BDMC's lower bound is −inf with the count that says why, its upper bound is finite."""
    m, data, t = _nan_target(lambda w: w[0] > NAN_CUT)
    exact = -m.exact_thermo(data, 1.0).F
    kw = dict(betas=NAN_LADDER, key=jax.random.PRNGKey(5), progress=False)
    if method == "population_annealing":
        pa, rec = _recorded(lambda: st.population_annealing(t, num_particles=64, num_runs=4, **kw))
        assert _has(rec, st.NumericalWarning, "population_annealing: .*non-finite particle energies"), rec
        counts = pa.rungs["num_nonfinite"].values
        assert np.all(counts[:, 0] > 2) and np.all(counts[:, 1:] == 0) and pa.attrs["num_nonfinite"] == counts.sum()
        assert np.all(pa.samples["w"].values[..., 0] <= NAN_CUT) and pa.samples.healthy.values.all()
        assert abs(pa.log_z.value - exact) < 4 * pa.log_z.stderr + 0.05, (pa.log_z, exact)
    elif method == "ais":
        res, rec = _recorded(lambda: st.ais(t, num_chains=128, **kw))
        assert _has(rec, st.NumericalWarning, "ais: .*non-finite particle energies"), rec
        counts = res.rungs["num_nonfinite"].values
        assert counts[0, 0] > 5 and np.sum(np.isneginf(res.log_weights)) == counts[0, -1]
        assert np.isfinite(res.log_z.value) and abs(res.log_z.value - exact) < 4 * res.log_z.stderr + 0.1
    else:
        both, rec = _recorded(lambda: st.bdmc(t, num_chains=32, exact_sample=EXACT_DRAW, **kw))
        assert _has(rec, st.NumericalWarning, "ais: .*non-finite"), rec
        assert both.lower.value == -np.inf and both.lower.details["num_nonfinite"] > 0
        assert np.isfinite(both.upper.value) and both.upper.details["num_nonfinite"] == 0


NOTHING_FINITE = {
    **MH, **SGLD,
    "population_annealing": lambda t, **kw: st.population_annealing(t, betas=NAN_LADDER, num_particles=16, **kw),
    "ais": lambda t, **kw: st.ais(t, betas=NAN_LADDER, num_chains=16, **kw),
    "bdmc": lambda t, **kw: st.bdmc(t, betas=NAN_LADDER, num_chains=16, exact_sample=EXACT_DRAW, **kw),
}


@pytest.mark.parametrize("sampler", sorted(NOTHING_FINITE))
def test_nothing_finite_but_the_start_is_never_a_silent_number(sampler):
    """NaN everywhere but the start w = 0: the MH chains never move (a ConvergenceWarning and an
    infinite error bar), the SGLD chains all go non-finite (the free energy raises
    TooFewHealthyChainsError), the annealers raise NumericalError: never a plain number."""
    import jax.numpy as jnp

    _, _, t = _nan_target(lambda w: jnp.any(w != 0))
    kw = dict(key=jax.random.PRNGKey(8), progress=False)
    if sampler in MH:
        run, rec = _recorded(lambda: NOTHING_FINITE[sampler](t, num_chains=2, **kw))
        assert run.healthy.values.all() and _has(rec, st.ConvergenceWarning, "never moved"), rec
        est, rec = _recorded(lambda: st.free_energy(run))
        assert est.stderr == math.inf and _has(rec, st.ConvergenceWarning, "never moved"), (est, rec)
    elif sampler in SGLD:
        run, rec = _recorded(lambda: NOTHING_FINITE[sampler](t, num_chains=2, **kw))
        assert not run.healthy.values.any() and _has(rec, st.NumericalWarning, "6 of 6 .*unhealthy"), rec
        with pytest.raises(st.TooFewHealthyChainsError):
            _recorded(lambda: st.free_energy(run))
    else:
        with pytest.raises(st.NumericalError, match="non-finite energy"):
            _recorded(lambda: NOTHING_FINITE[sampler](t, **kw))


# ------------------------------------------------------------------------------ SIGKILL during a save
SAVER = r"""
import numpy as np, xarray as xr
from slt_thermo.results import Samples

def make_samples(k):  # the k-th Samples the child writes: ~25 MB, every value a function of k
    rng = np.random.default_rng(k)
    B, C, D, P = 4, 8, 2000, 48
    ds = xr.Dataset({"nll": (("beta", "chain", "draw"), rng.normal(size=(B, C, D)) + k),
                     "w": (("beta", "chain", "draw", "w_dim"), rng.normal(size=(B, C, D, P))),
                     "healthy": (("beta", "chain"), np.ones((B, C), bool))},
                    coords={"beta": np.linspace(0.25, 1.0, B)}, attrs={"iteration": k})
    return Samples(ds)

if __name__ == "__main__":
    import sys
    k = 0
    while True:  # save, again and again, to the same final path
        s = make_samples(k)
        print(f"writing {k}", flush=True)
        s.save(sys.argv[1])
        print(f"saved {k}", flush=True)
        k += 1
"""


def test_sigkill_during_save_never_leaves_a_partial_file(tmp_path):
    """A process that saves Samples to one path over and over is SIGKILLed at random moments
    while it writes. The final path then holds a complete, checksummed file that loads to exactly
    one of the Samples written (or, killed during the first write, does not exist); a leftover
    temporary file is a hidden ``.samples.tmp-<pid>-….nc`` that no ``*.nc`` pattern picks up and
    that loads, if at all, only as complete numbers or raises ResultsFileError."""
    import glob
    import random
    import re
    import signal
    import subprocess
    import sys

    import xarray as xr

    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    helpers = {}
    exec(SAVER.replace('if __name__ == "__main__":', "if False:"), helpers)
    make_samples = helpers["make_samples"]

    def check(path, lo, hi):
        """``path`` loads completely as make_samples(k) for some lo <= k <= hi."""
        s = st.load(path)
        k = int(s.ds.attrs["iteration"])
        assert lo <= k <= hi, (path, k, lo, hi)
        xr.testing.assert_identical(s.ds.drop_attrs(), make_samples(k).ds.drop_attrs())

    rng, mid_write = random.Random(0), 0
    for trial in range(6):
        d = tmp_path / f"trial{trial}"
        d.mkdir()
        final = d / "samples.nc"
        child = subprocess.Popen([sys.executable, str(script), str(final)], stdout=subprocess.PIPE, text=True)
        try:
            target = trial // 2  # kill during the first, second or third write
            for line in child.stdout:
                if line.strip() == f"writing {target}":
                    break
            time.sleep(rng.uniform(0.0, 0.08))  # a write takes ~0.07 s (25 MB), the next starts ~0.05 s later
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait(30)
            child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        names = sorted(os.listdir(d))
        temps = [n for n in names if n != "samples.nc"]
        assert all(re.fullmatch(rf"\.samples\.tmp-{child.pid}-[0-9a-f]{{8}}\.nc", n) for n in temps), names
        listed = [os.path.basename(p) for p in glob.glob(str(d / "*.nc"))]  # hidden names excluded
        assert listed == (["samples.nc"] if final.exists() else [])
        mid_write += bool(temps)
        if final.exists():
            check(final, max(0, target - 1), target + 5)
        else:
            assert target == 0
        for n in temps:  # what the killed writer left: complete numbers or a clear error
            try:
                check(d / n, target, target + 5)
            except st.ResultsFileError:
                pass
    assert mid_write >= 2  # the kills did land inside writes



# ------------------------------------------------------------------------------ Ctrl-C
def _sampling_with_a_ctrl_c_at(chunk, t, monkeypatch, **kw):
    """sample_nuts on t (2 β × 2 chains, 50 warm-up ticks + 200 draws in chunks of 25) where a
    Ctrl-C arrives during chunk ``chunk`` (1-based) while a finalizer runs, the way jax's
    garbage-collector callback met the Ctrl-C of a real sweep (issue 24)."""
    import signal

    from slt_thermo.samplers import run as run_mod

    class Finalizer:
        def __del__(self):  # Python's own handler would raise here: "Exception ignored", lost
            signal.raise_signal(signal.SIGINT)

    real, calls = run_mod.advance, []

    def advance(*args, **kwargs):
        calls.append(1)
        if len(calls) == chunk:
            Finalizer()
        return real(*args, **kwargs)

    monkeypatch.setattr(run_mod, "advance", advance)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own (nohup'd runs ignore SIGINT)
    try:
        return st.sample_nuts(t, [0.5, 1.0], num_chains=2, num_warmup=50, num_samples=200, chunk_size=25,
                              key=jax.random.PRNGKey(0), progress=False, **kw), calls
    finally:
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
        signal.signal(signal.SIGINT, before)


def test_ctrl_c_inside_a_finalizer_ends_the_run_after_its_chunk(linreg, monkeypatch):
    """The Ctrl-C is not lost: the run stops when the chunk it arrived in ends (the 3rd: ticks
    50-74, the first 25 draws) and returns those draws, marked interrupted, with a
    ConvergenceWarning; during warm-up (no draws yet) it raises KeyboardInterrupt."""
    with pytest.warns(st.ConvergenceWarning, match="sampling interrupted; returning the 25 draws"):
        run, calls = _sampling_with_a_ctrl_c_at(3, linreg[2], monkeypatch)
    assert len(calls) == 3 and run.ds.attrs["interrupted"] == 1 and run.ds.attrs["complete"] == 0
    assert run.num_draws == 25 and np.isfinite(run.nll.values).all()
    with pytest.raises(KeyboardInterrupt):
        _sampling_with_a_ctrl_c_at(1, linreg[2], monkeypatch)


CLI_WITH_MARKS = r"""
import sys
from slt_thermo.samplers import run as run_mod
real = run_mod.advance
def advance(run_, state, *args, **kwargs):  # tell the test when draws are being recorded
    state = real(run_, state, *args, **kwargs)
    if state.records:
        print(f"@@ sampling n={run_.target.n}", file=sys.stderr, flush=True)
    return state
run_mod.advance = advance
from slt_thermo.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_ctrl_c_stops_a_free_energy_sweep_within_seconds(tmp_path):
    """`slt-thermo free-energy` (cli.main in a subprocess that marks recorded chunks on stderr)
    gets SIGINT while it samples n = 40, after n = 20 finished. Before issue 24 sample_nuts
    returned the draws so far, the sweep saved them as a finished n and went on (and a Ctrl-C
    raised in jax's gc callback was lost: a sweep ran on for minutes). Now: exit 130 within
    seconds, no traceback, a summary.json saying where it stopped, n = 20 kept for --resume and
    no half-sampled n = 40 saved as finished."""
    import json
    import signal
    import subprocess
    import sys
    import threading

    from slt_thermo import cli

    out, units = tmp_path / "out", tmp_path / "units"
    argv = ["free-energy", "--model", "linear_regression", "--param", "d=1", "--n", "20,40,80", "--betas", "4",
            "--chains", "2", "--warmup", "20", "--samples", "3000", "--out", str(out), "--resume", str(units),
            "--no-plots"]
    child = subprocess.Popen([sys.executable, "-c", CLI_WITH_MARKS, *argv], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,  # a shell's Ctrl-C, even where ours is ignored
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    stdout = []
    threading.Thread(target=lambda: stdout.extend(child.stdout), daemon=True).start()
    stderr, sent = [], None
    try:
        for line in child.stderr:
            stderr.append(line)
            if line.startswith("@@ sampling n=40"):
                sent = time.perf_counter()
                child.send_signal(signal.SIGINT)
                break
        assert sent is not None, "".join(stdout + stderr)
        stderr.extend(child.stderr)
        child.wait(60)
    finally:
        child.kill()
        child.wait()
    waited = time.perf_counter() - sent
    text = "".join(stdout + stderr)
    assert child.returncode == 130 and waited < 10, (child.returncode, waited, text)
    assert "Traceback" not in text and "Exception ignored" not in text, text
    assert "slt-thermo free-energy: interrupted" in text
    assert "interrupted while sampling n = 40; 1 of 3 sizes finished" in text, text
    assert [p.name for p in units.glob("unit-*.nc")] == ["unit-000-n20.nc"]
    (d,) = list(out.iterdir())
    s = json.loads((d / "summary.json").read_text(encoding="utf-8"))
    assert s["interrupted"] is True and s["interrupted_at_n"] == 40 and s["ns_finished"] == [20]
    assert s["resume"] == str(units) and s["command"] == "free-energy"
    assert cli.main(["show", str(d), "--no-plots"]) == 0  # shows what happened, no KeyError
