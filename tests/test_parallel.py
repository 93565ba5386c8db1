"""Sharded runs (slt_thermo.parallel): the (β × chain) axis split over 4 forced host devices
gives the one-device numbers (same key) and really lives on 4 devices. Runs in a subprocess:
the device count is fixed when jax first initializes."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import pytest

import slt_thermo as st

SCRIPT = textwrap.dedent("""
    import json, os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax, numpy as np, optax
    import slt_thermo as st
    from slt_thermo import models, parallel
    from slt_thermo.sgd import sgd_trajectory
    assert len(jax.devices()) == 4
    m = models.linear_regression(d=3)
    t = st.Target(m, m.simulate(jax.random.PRNGKey(0), 100))
    out = {}
    def compare(name, one, four, state):
        a, b = np.asarray(one, float), np.asarray(four, float)
        out[name] = {"max_diff": float(np.abs(a - b).max()), "scale": float(np.abs(a).max()),
                     "devices": len(parallel.devices_of(state))}
    kw = dict(num_chains=2, num_warmup=50, num_samples=50, progress=False)
    a = st.sample_nuts(t, [0.5, 1.0], key=jax.random.PRNGKey(1), **kw)
    b = st.sample_nuts(t, [0.5, 1.0], key=jax.random.PRNGKey(1), devices=4, **kw)
    compare("nuts", a["nll"].values, b["nll"].values, b.state.kernel)
    kw = dict(step_size=1e-4, num_steps=200, num_burnin=100, batch_size=20, num_chains=2, progress=False)
    a = st.sample_sgld(t, [0.5, 1.0], key=jax.random.PRNGKey(2), **kw)
    b = st.sample_sgld(t, [0.5, 1.0], key=jax.random.PRNGKey(2), devices=jax.devices(), **kw)
    compare("sgld", a["nll"].values, b["nll"].values, b.state.kernel)
    w = m.true_params
    kw = dict(num_chains=4, num_steps=300, num_burnin=100, progress=False)
    a = st.llc(t, w, key=jax.random.PRNGKey(3), **kw)
    b = st.llc(t, w, key=jax.random.PRNGKey(3), devices=4, **kw)
    compare("llc", [a.value, a.stderr], [b.value, b.stderr], b.details["samples"].state.kernel)
    kw = dict(num_steps=100, batch_size=10, num_runs=8, progress=False)
    a = sgd_trajectory(t, optax.sgd(0.01), key=jax.random.PRNGKey(4), **kw)
    b = sgd_trajectory(t, optax.sgd(0.01), key=jax.random.PRNGKey(4), devices=4, **kw)
    compare("sgd", a["nll"].values, b["nll"].values, b.state.kernel)
    kw = dict(betas=st.ladder.power(6), num_particles=64, num_runs=2, progress=False)
    a = st.population_annealing(t, key=jax.random.PRNGKey(5), **kw)
    b = st.population_annealing(t, key=jax.random.PRNGKey(5), options=st.RunOptions(devices=4), **kw)
    compare("pa", a.rungs["log_z"].values, b.rungs["log_z"].values, b.state.particles)
    try:
        st.sample_nuts(t, [0.5], key=jax.random.PRNGKey(1), devices=4, num_chains=3, num_warmup=5, num_samples=5,
                       progress=False)
    except st.InvalidArgumentError as err:
        out["indivisible"] = str(err)
    print("RESULT" + json.dumps(out))
""")


@pytest.mark.slow
def test_sharded_runs_match_one_device(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")][0]
    out = json.loads(line[len("RESULT"):])
    for name in ("nuts", "sgld", "llc", "sgd", "pa"):
        r = out[name]
        assert r["devices"] == 4, (name, r)
        # the same program on sharded data: equal up to float reassociation (NUTS's trees and PA's
        # resampling amplify the last bits over many steps; SGLD and SGD are exact)
        assert r["max_diff"] <= 1e-4 * max(r["scale"], 1.0), (name, r)
    assert "multiple of the 4 devices" in out["indivisible"]


def test_devices_errors_in_process():
    from slt_thermo import models

    m = models.linear_regression(d=2)
    t = st.Target(m, m.simulate(jax.random.PRNGKey(0), 20))
    n = len(jax.devices())
    with pytest.raises(st.InvalidArgumentError, match="device"):
        st.sample_nuts(t, [1.0], key=jax.random.PRNGKey(0), devices=n + 1, num_chains=2, num_warmup=2,
                       num_samples=2, progress=False)
    with pytest.raises(st.InvalidArgumentError, match="devices"):
        st.sample_nuts(t, [1.0], key=jax.random.PRNGKey(0), devices="gpu", num_chains=2, num_warmup=2,
                       num_samples=2, progress=False)


WORKER = textwrap.dedent("""
    import os, sys
    mode, out = sys.argv[1], sys.argv[2]
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import jax
    if mode != "single":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address="127.0.0.1:" + sys.argv[3], num_processes=2,
                                   process_id=int(mode))
    import numpy as np
    import slt_thermo as st
    from slt_thermo import models
    m = models.linear_regression(d=3)
    t = st.Target(m, m.simulate(jax.random.PRNGKey(0), 100))
    devices = None if mode == "single" else jax.devices()  # multi-host: all 4 devices of both processes
    r = st.sample_nuts(t, [0.5, 1.0], key=jax.random.PRNGKey(1), devices=devices, num_chains=2, num_warmup=50,
                       num_samples=50, progress=False)
    if jax.process_index() == 0:  # every process holds the gathered result; process 0 writes it
        np.save(out, r["nll"].values)
    print("OK", jax.process_count(), len(jax.devices()))
""")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_run_matches_one_process(tmp_path):
    """jax.distributed on 127.0.0.1: two processes × 2 CPU devices run one sharded NUTS ladder; the
    result (gathered on every process, written by process 0) equals the one-process run."""
    import numpy as np

    env = dict(os.environ, JAX_PLATFORMS="cpu")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, str(script), str(i), str(tmp_path / "multi.npy"), port],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
             for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and "OK 2 4" in out, err[-3000:]
    single = subprocess.run([sys.executable, str(script), "single", str(tmp_path / "single.npy")],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    a, b = np.load(tmp_path / "single.npy"), np.load(tmp_path / "multi.npy")
    assert a.shape == b.shape == (2, 2, 50)
    assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max()


def test_parameter_draws_are_dropped_beyond_the_memory_budget(monkeypatch):
    """keep_params=None keeps the parameter draws only within PARAMS_BUDGET_BYTES, and says so;
    the energies are recorded either way; keep_params=True insists."""
    from slt_thermo import models
    from slt_thermo.samplers import run as run_mod

    m = models.linear_regression(d=3)
    t = st.Target(m, m.simulate(jax.random.PRNGKey(0), 20))
    kw = dict(num_chains=2, num_warmup=5, num_samples=10, progress=False)
    r = st.sample_nuts(t, [1.0], key=jax.random.PRNGKey(0), **kw)
    assert "w" in r and run_mod.params_bytes(m.true_params, 20) == 20 * 3 * r["w"].dtype.itemsize
    monkeypatch.setattr(run_mod, "PARAMS_BUDGET_BYTES", 100)
    with pytest.warns(UserWarning, match="not recording the parameter draws"):
        r = st.sample_nuts(t, [1.0], key=jax.random.PRNGKey(0), **kw)
    assert "w" not in r and r["nll"].shape == (1, 2, 10)
    assert "w" in st.sample_nuts(t, [1.0], key=jax.random.PRNGKey(0), keep_params=True, **kw)


def test_mixed_precision_likelihood():
    """with_precision("bfloat16"): the likelihood computed in bf16 (values returned in f32, so
    sums and chain states stay f32): close to, but not equal to, the f32 values; None restores."""
    import numpy as np

    from slt_thermo import models

    m = models.linear_regression(d=3)
    t = st.Target(m, m.simulate(jax.random.PRNGKey(0), 1000))
    low = t.with_precision("bfloat16")
    w = m.true_params
    ll, ll_low = np.asarray(t.log_likelihood(w)), np.asarray(low.log_likelihood(w))
    assert ll_low.dtype == ll.dtype
    err = np.abs(ll_low - ll)
    # bf16 keeps 8 significant bits: the residual r = y − x·w (|r| ≤ S = |y| + Σ|x_j w_j|) is off by
    # δ ≤ 3·2⁻⁸S after three roundings, so ½(r + δ)² − ½r² ≤ 3·2⁻⁸S² + small ≤ 2⁻⁵(1 + S²)
    x, y = np.asarray(t.data["x"]), np.asarray(t.data["y"])
    S = np.abs(y) + np.abs(x) @ np.abs(np.asarray(w["w"]))
    assert err.max() > 0 and np.all(err <= 2**-5 * (1 + S**2))
    assert float(low.with_precision(None).nll(w)) == float(t.nll(w))
    g = jax.grad(lambda p: low.nll(p))(w)["w"]
    assert g.dtype == jax.numpy.result_type(float) and np.all(np.isfinite(np.asarray(g)))
    with pytest.raises(st.InvalidArgumentError, match="floating"):
        t.with_precision("int8")
