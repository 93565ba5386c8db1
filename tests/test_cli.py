"""The `slt-thermo` command: rlct, free-energy, llc, models, show, demo, bring-your-own model, and
one-line errors for bad arguments.

In-process calls (``cli.main([...])``) share JAX's compile cache; sampling sizes are cut with
--chains/--warmup/--samples so the suite stays fast. The fully bare run is a slow test.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import pytest
import xarray as xr

import slt_thermo as st
from slt_thermo import cli, models
from slt_thermo import io as st_io

# subprocesses run outside the checkout, so they import the installed package (the source tree
# lacks slt_thermo.models, which the install maps from models/), as CI's `pytest` does
OUTSIDE = tempfile.gettempdir()

SMALL = ["--chains", "2", "--warmup", "60", "--samples", "80"]
METHODS = ("two_temperature", "ols", "specific_heat")


def call(argv):
    """cli.main(argv) -> exit code, whether it returns or argparse exits."""
    try:
        return cli.main(argv)
    except SystemExit as e:
        return e.code


def only_dirs(path):
    return sorted(p for p in os.listdir(path) if os.path.isdir(os.path.join(path, p)))


def check_rlct_dir(d, *, plots=True):
    run = st.load(os.path.join(d, "samples.nc"))
    with open(os.path.join(d, "summary.json"), encoding="utf-8") as f:
        s = json.load(f)
    assert s["command"] == "rlct" and s["n"] == run.n
    assert np.allclose(run.betas, s["settings"]["betas"])
    for m in METHODS:
        assert math.isfinite(s["estimates"][m]["value"]) and s["estimates"][m]["stderr"] > 0
    pngs = ["energy_vs_inverse_beta.png", "specific_heat.png", "traces.png"]
    assert s["files"]["plots"] == (pngs if plots else [])
    for name in s["files"]["plots"]:
        with open(os.path.join(d, name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    return run, s


# ------------------------------------------------------------------------------------ rlct
def test_rlct_bare_model_table_and_results_dir(tmp_path, capsys):
    out = tmp_path / "res"
    assert cli.main(["rlct", "--out", str(out)] + SMALL) == 0
    text = capsys.readouterr().out
    assert "reduced_rank(M=2, N=2, H=1, r=1), n = 1000" in text
    for m in METHODS:
        line = next(l for l in text.splitlines() if l.startswith(m))
        assert "±" in line and "3/2 = 1.5" in line  # estimate with error bar beside the exact λ
    assert "WBIC" in text and "results:" in text
    (first,) = only_dirs(out)
    run, s = check_rlct_dir(out / first)
    assert run.n == 1000 and run.betas.size == 5 and run.ds.sizes["chain"] == 2
    assert s["model"]["rlct"] == "3/2" and s["model"]["multiplicity"] == 1
    assert np.allclose(run.betas, st.ladder.around_wbic(1000, num=5))
    assert s["estimates"]["ols"]["value"] == pytest.approx(st.rlct(run, method="ols").value)

    # a second identical run makes a NEW directory (and reuses the compiled program)
    t0 = time.perf_counter()
    assert cli.main(["rlct", "--out", str(out)] + SMALL) == 0
    second_wall = time.perf_counter() - t0
    dirs = only_dirs(out)
    assert len(dirs) == 2 and first in dirs
    check_rlct_dir(out / [d for d in dirs if d != first][0])
    capsys.readouterr()

    # show re-prints the same table and redraws the plots
    os.remove(out / first / "traces.png")
    assert cli.main(["show", str(out / first)]) == 0
    shown = capsys.readouterr().out
    for m in METHODS:
        assert next(l for l in shown.splitlines() if l.startswith(m)) == \
            next(l for l in text.splitlines() if l.startswith(m))
    assert (out / first / "traces.png").exists()
    print(f"second in-process run: {second_wall:.1f} s")


def test_results_dirs_never_collide(tmp_path):
    made = {st_io.new_results_dir(str(tmp_path), "rlct", "m") for _ in range(5)}
    assert len(made) == 5 and all(os.path.isdir(d) for d in made)


def test_sgld_is_called_with_the_cli_settings(tmp_path, capsys, monkeypatch):
    from test_plotting import fake_samples

    seen = {}

    def fake_sgld(target, betas, **kwargs):
        seen.update(kwargs, betas=np.asarray(betas), n=target.n)
        return fake_samples(betas, n=target.n)

    monkeypatch.setattr(st, "sample_sgld", fake_sgld, raising=False)
    argv = ["rlct", "--sampler", "sgld", "--step-size", "3e-5", "--batch-size", "50", "--n", "500",
            "--chains", "3", "--warmup", "200", "--samples", "400", "--out", str(tmp_path), "--no-plots"]
    assert cli.main(argv) == 0
    assert seen["step_size"] == 3e-5 and seen["batch_size"] == 50 and seen["num_chains"] == 3
    assert seen["num_steps"] == 600 and seen["num_burnin"] == 200 and seen["n"] == 500
    assert seen["eval_full_nll_every"] == 1  # full-data nL_n per draw, for the specific heat
    assert np.allclose(seen["betas"], st.ladder.around_wbic(500, num=5))
    assert "sgld" in capsys.readouterr().out
    (d,) = only_dirs(tmp_path)
    check_rlct_dir(tmp_path / d, plots=False)


# ------------------------------------------------------------------------------------ llc
LLC_ROWS = ("R-hat of nL_n", "ESS of nL_n", "MALA acceptance of ε", "drift z", "unhealthy chains", "step size ε")


def test_llc_bare_table_results_dir_and_show(tmp_path, capsys):
    """`slt-thermo llc` as a user types it (only the results folder moved): λ̂ at the true
    parameter of reduced_rank(2, 2, 1, 1), n = 1e4, beside λ = 3/2, with its diagnostics."""
    out = tmp_path / "res"
    t0 = time.perf_counter()
    assert cli.main(["llc", "--out", str(out)]) == 0
    wall = time.perf_counter() - t0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert "reduced_rank(M=2, N=2, H=1, r=1), n = 10000" in text
    row = next(l for l in lines if l.startswith("LLC λ̂(w*)"))
    assert "±" in row and "3/2 = 1.5" in row and row.split()[-1][0] in "+-"  # estimate, exact λ, z
    assert next(l for l in lines if l.startswith("λ̂ + β·ΔH"))
    for name in LLC_ROWS:
        assert any(l.startswith(name) for l in lines), name
    assert "auto: 1/(4κ̂)" in text and "warnings:" in text and "results:" in text

    (d,) = only_dirs(out)
    d = out / d
    assert d.name.startswith("llc-reduced_rank-")
    with open(d / "summary.json", encoding="utf-8") as f:
        s = json.load(f)
    assert s["command"] == "llc" and s["n"] == 10000 and s["model"]["rlct"] == "3/2" and s["truth"]["applies"]
    assert s["settings"]["step_rule"] == "auto" and s["settings"]["batch_size"] == 10000
    run = st.load(d / "samples.nc")
    assert s["settings"]["steps"] == "auto" and s["auto"]["converged"]  # --steps auto, the default
    total = (s["settings"]["steps_run"] - 400) // 10  # draws after burn-in; λ̂ keeps the second half
    assert run.n == 10000 and run.ds.sizes["chain"] == 8 and run.ds.sizes["draw"] == total - total // 2
    assert "underdamped Langevin (friction 2)" in text and s["settings"]["gamma"] == 1.0
    beta = 1 / math.log(10000)
    assert s["settings"]["beta"] == pytest.approx(beta)
    nll = run.nll.values[0][run.healthy.values[0]].astype(np.float64)  # a float32 mean of nL_n ≈ 3e4 is off by ~2e-3
    assert s["llc"]["value"] == pytest.approx(beta * (nll.mean() - s["nll_center"]), rel=1e-4)
    assert len(s["per_chain"]) == 8 and s["llc"]["stderr"] > 0
    dg = s["diagnostics"]
    assert dg["unhealthy"] == 0 and dg["mala_accept"] > 0.9 and dg["rhat"] < 1.1 and abs(dg["drift_z"]) < 4
    # seed 0: λ̂(w*) ≈ 0.98 (w* is not a minimum of L_n on this data); referenced to ŵ ≈ 1.54 ± 0.04
    ref = s["llc_ref_minimum"]["value"]
    assert s["nearest_minimum"]["delta"] > 0 and abs(ref - 1.5) < 0.3
    assert s["files"]["plots"] == ["llc_traces.png"]
    with open(d / "llc_traces.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    # show re-prints the table and redraws the plot
    os.remove(d / "llc_traces.png")
    assert cli.main(["show", str(d)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert next(l for l in shown if l.startswith("LLC λ̂(w*)")) == row
    assert (d / "llc_traces.png").stat().st_size > 5_000
    print(f"bare slt-thermo llc in-process: {wall:.1f} s")


def test_llc_command_and_library_give_the_same_estimate(tmp_path, capsys):
    """One LLC policy: `slt-thermo llc` with the defaults and `st.llc(target, center, key=k)` with its
    defaults, on the same model, data (seed s) and key PRNGKey(s + 1), give the same λ̂, ε and ΔH."""
    out = tmp_path / "same"
    assert cli.main(["llc", "--n", "1000", "--steps", "600", "--burnin", "100", "--seed", "3", "--no-plots",
                     "--out", str(out)]) == 0
    capsys.readouterr()
    (d,) = only_dirs(out)
    with open(out / d / "summary.json", encoding="utf-8") as f:
        s = json.load(f)
    m = models.load("reduced_rank")  # the command's default model, with the zoo defaults
    target = st.Target(m, m.simulate(jax.random.PRNGKey(3), 1000))
    est = st.llc(target, m.true_params, key=jax.random.PRNGKey(4), num_steps=600, num_burnin=100,
                 progress=False)
    assert est.value == pytest.approx(s["llc"]["value"], rel=1e-6)
    assert est.stderr == pytest.approx(s["llc"]["stderr"], rel=1e-6)
    assert est.details["step_size_policy"]["step_size"] == pytest.approx(s["settings"]["step_size"], rel=1e-12)
    assert est.details["llc_ref_minimum"] == pytest.approx(s["llc_ref_minimum"]["value"], rel=1e-6)
    # and the command's defaults are the library's
    import inspect

    lib = inspect.signature(st.llc).parameters
    ns = cli.build_parser().parse_args(["llc"])
    for arg, name in [("gamma", "gamma"), ("friction", "friction"), ("steps", "num_steps"),
                      ("max_steps", "max_steps"), ("max_seconds", "max_seconds"), ("chains", "num_chains"),
                      ("burnin", "num_burnin"), ("step_size", "step_size")]:
        assert getattr(ns, arg) == lib[name].default, (arg, getattr(ns, arg), lib[name].default)


def test_therml_usage_errors():
    assert call(["therml", "--sigmas", "0,1"]) == 2


@pytest.mark.slow  # ~2 minutes on 2 cores
def test_therml_table_files_and_show(tmp_path, capsys):
    """`slt-thermo therml` (tiny run): the table per σ, the eq.-35 check, the train/infinite-data
    table, a results directory that `show` re-prints; with the encoder noise (184 parameters)."""
    out = tmp_path / "thr"
    assert cli.main(["therml", "--sigmas", "1,4", "--chains", "2", "--warmup", "30", "--samples", "20",
                     "--ti-rungs", "2", "--encoder-noise", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "184 parameters" in text and "S = KL(p*‖q)" in text and "−σ log Z" in text and "C infinite" in text
    (d,) = only_dirs(out)
    with open(out / d / "summary.json", encoding="utf-8") as f:
        s = json.load(f)
    assert [r["sigma"] for r in s["rows"]] == [1.0, 4.0] and s["files"]["plots"] == ["therml_functionals.png"]
    assert s["encoder_noise"] and s["num_params"] == 184
    assert all(r["S"] > 0 and r["D_pop"] > 0 for r in s["rows"])
    run = st.load(out / d / "samples.nc")
    assert run.betas.size == 5 and {"R", "D", "C", "D_pop"} <= set(run.observable_names) and "enc_alpha" in run
    assert cli.main(["show", str(out / d), "--no-plots"]) == 0
    assert "S = KL(p*‖q)" in capsys.readouterr().out


def test_sgd_usage_errors():
    assert call(["sgd", "--lrs", "0,1"]) == 2
    assert call(["sgd", "--batch-sizes", "ten"]) == 2


@pytest.mark.slow
def test_sgd_table_files_and_show(tmp_path, capsys):
    """`slt-thermo sgd` (tiny run): the thermometer table, the distances, λ̂ along training, a
    results directory that `show` re-prints; bad lists are usage errors."""
    out = tmp_path / "sgd"
    assert cli.main(["sgd", "--lrs", "0.04", "--batch-sizes", "10", "--steps", "300", "--runs", "2",
                     "--chains", "2", "--warmup", "60", "--samples", "60", "--llc-checkpoints", "1",
                     "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "β̂ energy" in text and "MMD²" in text and "λ̂ + βΔH" in text
    (d,) = only_dirs(out)
    with open(out / d / "summary.json", encoding="utf-8") as f:
        s = json.load(f)
    assert s["methods"] == ["energy", "equipartition", "covariance", "mandt"] and len(s["rows"]) == 1
    assert s["rlct"] == 1.5 and s["files"]["plots"] == ["sgd.png"] and len(s["along"]["llc"]) == 1
    assert 0 < s["rows"][0]["beta_energy"] < 10 and 0 <= s["rows"][0]["mmd_p"] <= 1
    assert cli.main(["show", str(out / d), "--no-plots"]) == 0
    assert "β̂ energy" in capsys.readouterr().out
    assert call(["sgd", "--lrs", "0,1"]) == 2


@pytest.mark.slow  # CI budget (13–27 s each on 2 cores)
def test_llc_control_variate_and_equilibration_check(tmp_path, capsys):
    """--control-variate and --check-equilibration reach st.llc: the settings are recorded, the
    hot/cold comparison is a row of the report and a field of summary.json."""
    out = tmp_path / "cv"
    argv = ["llc", "--n", "1000", "--steps", "600", "--burnin", "100", "--batch-size", "100",
            "--step-size", "1e-4", "--control-variate", "--check-equilibration", "--no-plots",
            "--out", str(out)]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert any(l.startswith("cold vs hot start z") for l in text.splitlines()), text
    (d,) = only_dirs(out)
    with open(out / d / "summary.json", encoding="utf-8") as f:
        s = json.load(f)
    assert s["settings"]["control_variate"] and s["settings"]["check_equilibration"]
    dg = s["diagnostics"]
    assert math.isfinite(dg["equilibration_z"]) and dg["cold_start_llc"] > 0 and dg["hot_start_llc"] > 0
    run = st.load(out / d / "samples.nc")
    assert run.ds.attrs["control_variate"] == 1


def test_llc_center_from_npz(tmp_path, capsys):
    from slt_thermo import models

    f = tmp_path / "no_truth.py"
    f.write_text(
        "from slt_thermo import models\n"
        "class NoTruth:\n"
        "    def __init__(self):\n"
        "        self._m = models.reduced_rank(2, 2, 1, 1)\n"
        "    def __getattr__(self, name):\n"
        "        if name == 'true_params':\n"
        "            raise AttributeError(name)\n"
        "        return getattr(self._m, name)\n"
        "def make_model():\n"
        "    return NoTruth()\n"
    )
    out = tmp_path / "o"
    base = ["llc", "--model", f"{f}:make_model", "--n", "300", "--out", str(out)]
    assert call(base) == 2  # no true_params: say what to pass
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "argument --center: " in err and "--center FILE.npz" in err and "W1, W2" in err

    w = {k: np.asarray(v) for k, v in models.reduced_rank(2, 2, 1, 1).true_params.items()}
    np.savez(tmp_path / "bad.npz", A=w["W1"], B=w["W2"])
    assert call(base + ["--center", str(tmp_path / "bad.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has arrays A, B; the model's parameters are W1, W2" in err
    np.savez(tmp_path / "w.npz", **w)
    assert cli.main(base + ["--center", str(tmp_path / "w.npz"), "--step-size", "2e-4", "--chains", "2",
                            "--steps", "300", "--burnin", "100", "--no-plots"]) == 0
    text = capsys.readouterr().out
    row = next(l for l in text.splitlines() if l.startswith("LLC λ̂(w*)"))
    assert "(3/2 = 1.5)" in row and row.rstrip().endswith(")")  # the global λ as a reference, no z
    assert "given by --step-size" in text
    (d,) = only_dirs(out)
    with open(out / d / "summary.json", encoding="utf-8") as fh:
        s = json.load(fh)
    assert s["center"] == str(tmp_path / "w.npz") and not s["truth"]["applies"] and s["n"] == 300
    assert s["settings"]["step_size"] == 2e-4 and s["diagnostics"]["draws"] == 20


# ------------------------------------------------------------------------------------ errors
BAD = [
    (["rlct", "--n", "-5"], "argument --n: must be an integer >= 2, got -5"),
    (["rlct", "--n", "many"], "argument --n"),
    (["rlct", "--chains", "0"], "argument --chains"),
    (["rlct", "--sampler", "mcmc"], "argument --sampler"),
    (["rlct", "--model", "resnet"], "argument --model: unknown model 'resnet'"),
    (["rlct", "--param", "M"], "argument --param: must look like key=value"),
    (["rlct", "--model", "reduced_rank", "--param", "Q=1"], "argument --param: reduced_rank: got an unexpected"),
    (["rlct", "--model", "reduced_rank", "--param", "r=5"], "argument --param: reduced_rank(M=2, N=2, H=1, r=5)"),
    (["rlct", "--model", "deep_linear", "--param", "widths=3,x"], "argument --param"),
    (["rlct", "--model", "no/such/file.py:make"], "argument --model"),
    (["free-energy", "--n", "100,50,300"], "argument --n: must be at least 3 increasing"),
    (["free-energy", "--betas", "0,0.5"], "argument --betas"),
    (["free-energy", "--betas", "1"], "argument --betas"),
    (["llc", "--gamma", "-1"], "argument --gamma: must be a number >= 0, got '-1'"),
    (["llc", "--chains", "0"], "argument --chains: must be an integer >= 1, got 0"),
    (["llc", "--steps", "2000", "--burnin", "3000"], "argument --burnin: must be smaller than --steps (2000)"),
    (["llc", "--steps", "often"], "argument --steps: must be auto or an integer >= 2"),
    (["llc", "--friction", "-1"], "argument --friction: must be auto, none or a positive number"),
    (["llc", "--friction", "2", "--preconditioner", "rmsprop", "--step-size", "1e-4"], "argument --friction: underdamped chains take no --preconditioner"),
    (["llc", "--max-steps", "100"], "argument --max-steps"),
    (["llc", "--step-size", "fast"], "argument --step-size: must be auto, sweep or a positive number"),
    (["llc", "--preconditioner", "adam"], "argument --preconditioner: invalid choice"),
    (["llc", "--preconditioner", "rmsprop"], "argument --step-size: auto (ε = 1/(4κ̂)) is for plain SGLD"),
    (["llc", "--center", "/no/such.npz"], "argument --center: no such file"),
    (["llc", "--population", "--control-variate"], "argument --control-variate: population targets"),
    (["llc", "--model", "gaussian_mixture"], "argument --center: w* (true_params) is not inside the prior's support"),
    (["show", "/no/such/dir"], "argument RESULTS_DIR"),
    (["frobnicate"], "argument COMMAND: invalid choice"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_arguments_are_one_line(argv, message, capsys, tmp_path):
    assert call(argv + ([] if argv[0] in ("show", "frobnicate") else ["--out", str(tmp_path)])) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("slt-thermo") and ": error: " in err and message in err, err
    assert "Traceback" not in err and captured.out == ""
    assert not os.listdir(tmp_path)  # nothing written


def test_bad_argument_in_a_subprocess():
    p = subprocess.run([sys.executable, "-m", "slt_thermo", "rlct", "--n", "-5"],
                       capture_output=True, text=True, timeout=120, cwd=OUTSIDE)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert "argument --n" in p.stderr and p.stdout == ""


def test_library_errors_are_one_line(tmp_path, capsys):
    # --population needs the model's kl: the library's SLTThermoError is reported, not raised
    model_file = tmp_path / "m.py"
    model_file.write_text(
        "from slt_thermo import models\n"
        "class NoKL:\n"
        "    def __init__(self):\n"
        "        self._m = models.linear_regression(2)\n"
        "    def __getattr__(self, name):\n"
        "        if name == 'kl':\n"
        "            raise AttributeError(name)\n"
        "        return getattr(self._m, name)\n"
        "def make_model():\n"
        "    return NoKL()\n"
    )
    assert call(["rlct", "--model", f"{model_file}:make_model", "--population", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "kl" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------ your own model
def fake_nuts(monkeypatch):
    """Replace NUTS by synthetic draws: for tests of the CLI's plumbing, not of sampling."""
    from test_plotting import fake_samples

    calls = []

    def sample_nuts(target, betas, **kwargs):
        calls.append(dict(kwargs, target=target, betas=np.asarray(betas)))
        s = fake_samples(betas, n=target.n, draws=kwargs["num_samples"], chains=kwargs["num_chains"])
        s.ds.attrs["target"] = target.name
        return s

    monkeypatch.setattr(st, "sample_nuts", sample_nuts)
    return calls


def test_bring_your_own_model(tmp_path, capsys, monkeypatch):
    calls = fake_nuts(monkeypatch)
    f = tmp_path / "my_model.py"
    f.write_text(
        "import jax\n"
        "import slt_thermo as st\n"
        "from slt_thermo import models\n"
        "def make_model(k=2):\n"
        "    return models.monomial(k=k)\n"
        "def make_target(n=50):\n"
        "    m = models.monomial(k=1)\n"
        "    return st.Target(m, m.simulate(jax.random.PRNGKey(0), n))\n"
        "def make_nothing():\n"
        "    return 42\n"
        "def make_broken():\n"
        "    raise RuntimeError('boom')\n"
    )
    out = str(tmp_path / "o")
    assert cli.main(["rlct", "--model", f"{f}:make_model", "--param", "k=1", "--n", "300", "--out", out,
                     "--no-plots", "--chains", "2", "--warmup", "60", "--samples", "60"]) == 0
    text = capsys.readouterr().out
    assert "monomial(k=(1,), h=(0,)), n = 300" in text and "1/2" in text
    (call_,) = calls
    assert call_["target"].model.k == (1,) and call_["target"].n == 300 and call_["num_chains"] == 2
    (d,) = only_dirs(out)
    _, s = check_rlct_dir(os.path.join(out, d), plots=False)
    assert d.startswith("rlct-make_model-") and s["model"]["params"] == {"k": 1}

    for argv, message in [
        ([f"{f}:make_target", "--n", "100"], "argument --n: the model file returned a Target"),
        ([f"{f}:make_nothing"], "returned int; it must return a slt_thermo.Target or a Model"),
        ([f"{f}:make_broken"], "make_broken() raised RuntimeError: boom"),
        ([f"{f}:make_model", "--param", "j=1"], "argument --param: my_model.py:make_model: got an unexpected"),
        ([f"{f}:absent"], "has no function 'absent'"),
    ]:
        assert call(["rlct", "--model"] + argv + ["--out", out]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err, err


# ------------------------------------------------------------------------------------ other commands
def test_models_lists_the_zoo_with_exact_lambda(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    for name in models.ZOO:
        assert name in out
    line = next(l for l in out.splitlines() if l.startswith("reduced_rank"))
    assert "M=2, N=2, H=1, r=1" in line and " 3/2 " in line


def test_help_everywhere(capsys):
    for argv in ([], ["--help"], ["rlct", "--help"], ["free-energy", "--help"], ["llc", "--help"],
                 ["models", "--help"], ["show", "--help"], ["demo", "--help"]):
        assert call(argv) == 0
        assert "usage: slt-thermo" in capsys.readouterr().out


def test_llc_help_quotes_the_library_thresholds(capsys):
    """The llc help is built without importing jax (fast --help), so it spells the thresholds of
    slt_thermo.llc as literals: they must say what the constants are."""
    from slt_thermo.cli.llc import LLC_ACCEPT
    from slt_thermo.llc import HOT_START_HEAT, PREDICTED_BIAS

    assert call(["llc", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"exceeds {PREDICTED_BIAS:.0%} of λ̂" in text
    assert f"MALA acceptance is < {LLC_ACCEPT:g}" in text
    assert f"started hot (at β/{HOT_START_HEAT:g})" in text


def test_free_energy_command_and_show(tmp_path, capsys, monkeypatch):
    # the sampling inside free_energy_vs_n is faked (tested in test_estimators and the notebook);
    # this checks the command's plumbing: data, exact column, tables, files, show
    fake_nuts(monkeypatch)
    run_free_energy(tmp_path, capsys)


@pytest.mark.slow
def test_free_energy_command_for_real(tmp_path, capsys):
    s = run_free_energy(tmp_path, capsys)
    for F, se, exact in zip(s["F_n"], s["F_n_se"], s["F_n_exact"]):
        assert abs(F - exact) < 5 * se + 0.5


def run_free_energy(tmp_path, capsys):
    out = tmp_path / "fe"
    argv = ["free-energy", "--model", "linear_regression", "--param", "d=1", "--n", "20,40,80",
            "--betas", "4", "--chains", "2", "--warmup", "60", "--samples", "60", "--out", str(out),
            "--resume", str(tmp_path / "units")]
    assert cli.main(argv) == 0
    assert len(list((tmp_path / "units").glob("unit-*.nc"))) == 3  # each n saved as it finished
    text = capsys.readouterr().out
    assert "exact F_n" in text and "λ̂ =" in text and "m̂ =" in text
    (d,) = only_dirs(out)
    d = out / d
    with open(d / "summary.json", encoding="utf-8") as f:
        s = json.load(f)
    assert s["ns"] == [20, 40, 80] and len(s["F_n_exact"]) == 3 and s["model"]["rlct"] == "1/2"
    with xr.open_dataset(d / "free_energy.nc", engine="h5netcdf") as ds:
        assert ds["F"].shape == (3, 5) and np.allclose(ds["F_n"].values, s["F_n"])
    for name in ("free_energy.png", "free_energy_vs_n.png", "specific_heat.png"):
        assert (d / name).stat().st_size > 5_000
    assert cli.main(["show", str(d), "--no-plots"]) == 0
    shown = capsys.readouterr().out
    assert "exact F_n" in shown and s["argv"][1] == "free-energy"
    assert cli.main(argv) == 0  # the same command again: every n read back from --resume
    capsys.readouterr()
    (d2,) = [x for x in only_dirs(out) if out / x != d]
    with open(out / d2 / "summary.json", encoding="utf-8") as f:
        assert json.load(f)["F_n"] == s["F_n"]
    return s


def test_demo_prints_energy_per_beta(capsys):
    assert cli.main(["demo", "--n", "50", "--d", "2", "--num-betas", "3", "--chains", "2",
                     "--warmup", "100", "--samples", "100"]) == 0
    out = capsys.readouterr().out
    assert "E^β[nL_n] sampled" in out and "exact" in out
    rows = [line for line in out.splitlines() if line[:9].strip().replace(".", "").isdigit()]
    assert len(rows) == 3


@pytest.mark.slow
def test_rlct_fully_bare_is_accurate_and_quick(tmp_path, capsys, monkeypatch):
    """`slt-thermo rlct` exactly as a user types it (only the results folder moved)."""
    monkeypatch.chdir(tmp_path)
    from slt_thermo.cli import _common

    _common._TARGETS.clear()
    t0 = time.perf_counter()
    assert cli.main(["rlct"]) == 0
    wall = time.perf_counter() - t0
    capsys.readouterr()
    (d,) = only_dirs(tmp_path / "results")
    _, s = check_rlct_dir(tmp_path / "results" / d)
    for m in METHODS:
        e = s["estimates"][m]
        assert abs(e["value"] - 1.5) < 4 * e["stderr"], (m, e)
    print(f"bare slt-thermo rlct: {wall:.1f} s")
    assert wall < 240  # < 2 min on an idle 2-core CPU; headroom for a shared machine


# ------------------------------------------------------------------------------------ nested parameters as --center
NESTED_MODEL = '''
import jax
import jax.numpy as jnp

from slt_thermo import models


class TwoLayer(models.Model):
    """y = out · tanh(W x + b) + N(0, 1), parameters {"layer1": {"W", "b"}, "out"}; no true_params."""

    def __init__(self, h=2):
        self.h, self.name = h, f"two_layer(h={h})"
        self.truth = {"layer1": {"W": 0.5 * jnp.ones((h, 1)), "b": jnp.zeros(h)}, "out": jnp.ones(h)}

    def log_prior(self, p):
        leaves = jax.tree_util.tree_leaves(p)
        return sum(-0.5 * jnp.sum(x**2) - 0.5 * x.size * jnp.log(2 * jnp.pi) for x in leaves)

    def init(self, key):
        return jax.tree_util.tree_map(lambda x: 0.1 * jnp.ones_like(x), self.truth)

    def predict(self, p, x):
        return jnp.tanh(x @ p["layer1"]["W"].T + p["layer1"]["b"]) @ p["out"]

    def log_likelihood(self, p, data):
        r = data["y"] - self.predict(p, data["x"])
        return -0.5 * r**2 - 0.5 * jnp.log(2 * jnp.pi)

    def simulate(self, key, n):
        kx, ky = jax.random.split(key)
        x = jax.random.normal(kx, (n, 1))
        return {"x": x, "y": self.predict(self.truth, x) + jax.random.normal(ky, (n,))}


def make_model(h=2):
    return TwoLayer(h)
'''
LLC_SMALL = ["--n", "200", "--step-size", "1e-3", "--chains", "2", "--steps", "300", "--burnin", "100",
             "--no-plots"]


def nested_model_file(tmp_path):
    f = tmp_path / "two_layer.py"
    f.write_text(NESTED_MODEL)
    return f"{f}:make_model"


def nll_at(spec, point, n=200, seed=0):
    """nL_n(point) on the data the CLI simulates for --model spec --n n --seed seed."""
    import jax

    model = models.load(spec)
    return float(st.Target(model, model.simulate(jax.random.PRNGKey(seed), n)).nll(point))


def llc_summary(out):
    (d,) = only_dirs(out)
    with open(out / d / "summary.json", encoding="utf-8") as fh:
        return json.load(fh)


def test_nested_center_saved_by_save_params_loads(tmp_path, capsys):
    """A nested parameter pytree saved with slt_thermo.io.save_params is a valid --center: names
    join nested keys with '.', and every array lands on its own leaf (b and out share a shape)."""
    spec = nested_model_file(tmp_path)
    out = tmp_path / "o"
    assert call(["llc", "--model", spec, "--out", str(out)] + LLC_SMALL) == 2  # no true_params: the hint
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "layer1.W, layer1.b, out" in err and "save_params" in err

    point = {"layer1": {"W": np.array([[0.4], [-0.3]]), "b": np.array([0.2, -0.1])}, "out": np.array([0.9, 1.1])}
    path = st_io.save_params(tmp_path / "w.npz", point)
    with np.load(path) as f:
        assert sorted(f.files) == ["layer1.W", "layer1.b", "out"]
    assert cli.main(["llc", "--model", spec, "--center", str(path), "--out", str(out)] + LLC_SMALL) == 0
    text = capsys.readouterr().out
    assert "w* = " + str(path) + " (6 parameters)" in text and "LLC λ̂(w*)" in text
    s = llc_summary(out)
    assert s["nll_center"] == pytest.approx(nll_at(spec, point), rel=1e-5)
    assert s["num_params"] == 6 and math.isfinite(s["llc"]["value"])


def test_nested_center_read_from_a_samples_file_loads(tmp_path, capsys):
    """A draw read back from the samples file of `slt-thermo rlct` (parameter variables named
    'layer1.W', …) saved with np.savez under those names is a valid --center of `slt-thermo llc`."""
    spec = nested_model_file(tmp_path)
    rl = tmp_path / "rlct"
    assert cli.main(["rlct", "--model", spec, "--n", "200", "--num-betas", "2", "--chains", "2", "--warmup", "30",
                     "--samples", "30", "--no-plots", "--out", str(rl)]) == 0
    capsys.readouterr()
    (d,) = only_dirs(rl)
    run = st.load(rl / d / "samples.nc")
    assert sorted(run.param_names) == ["layer1.W", "layer1.b", "out"]
    draw = {name: run.ds[name].values[-1, 0, -1] for name in run.param_names}
    np.savez(tmp_path / "draw.npz", **draw)

    out = tmp_path / "llc"
    assert cli.main(["llc", "--model", spec, "--center", str(tmp_path / "draw.npz"), "--out", str(out)]
                    + LLC_SMALL) == 0
    capsys.readouterr()
    s = llc_summary(out)
    point = {"layer1": {"W": draw["layer1.W"], "b": draw["layer1.b"]}, "out": draw["out"]}
    assert s["nll_center"] == pytest.approx(nll_at(spec, point), rel=1e-5)


# ------------------------------------------------------------------------------------ --help stays light
HELP_PROBE = '''
import importlib.util, json, sys, time, types
t0 = time.perf_counter()
# the package's own __init__ imports jax (the library API); stand it in, to measure the cli alone
spec = importlib.util.find_spec("slt_thermo")
stub = types.ModuleType("slt_thermo")
stub.__path__ = list(spec.submodule_search_locations)
sys.modules["slt_thermo"] = stub
from slt_thermo import cli
for argv in ([], ["--help"], ["rlct", "--help"], ["free-energy", "--help"], ["llc", "--help"],
             ["models", "--help"], ["show", "--help"], ["demo", "--help"]):
    try:
        cli.main(argv)
    except SystemExit:
        pass
heavy = [m for m in ("jax", "numpy", "scipy", "sympy", "xarray", "matplotlib", "slt_thermo.target",
                     "slt_thermo.llc", "slt_thermo.results", "slt_thermo.samplers") if m in sys.modules]
print(json.dumps({"heavy": heavy, "seconds": time.perf_counter() - t0}), file=sys.stderr)
'''


def test_cli_help_imports_no_jax():
    """Building every parser and printing every --help imports neither jax nor any of slt_thermo's
    jax-importing modules (measured with the package __init__ stood in; see the next test)."""
    p = subprocess.run([sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, timeout=120, cwd=OUTSIDE)
    assert p.returncode == 0, p.stderr
    probe = json.loads(p.stderr.strip().splitlines()[-1])
    assert probe["heavy"] == [] and probe["seconds"] < 1.0, probe
    assert p.stdout.count("usage: slt-thermo") == 8


def test_import_slt_thermo_cli_imports_no_jax():
    """`import slt_thermo.cli` (hence `slt-thermo --help`) imports no jax: slt_thermo's __init__
    loads the library API lazily; and `st.llc` stays the function after its module is imported."""
    code = ("import sys, slt_thermo.cli; print('jax' in sys.modules); "
            "import slt_thermo as st, slt_thermo.llc; print(callable(st.llc) and st.llc.__module__)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=OUTSIDE)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["False", "slt_thermo.llc.api"]
