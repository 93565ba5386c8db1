"""LLC estimation policy: the default (``slt-thermo llc`` = ``st.llc``'s defaults since issue 23)
against the library's earlier default, each against the exact λ (the RLCT) of zoo models at
w* = true_params. This is the measurement that chose the one default policy.

* cli (the default of both now): plain SGLD on full-data gradients, ε = 1/(4κ̂) (κ̂ the largest
  curvature of the localized log density at w*), halved up to 4 times until the run's MALA
  acceptance is >= 0.9, its predicted ε-bias <= 5% of λ̂ and every chain is finite; 8 chains ×
  2000 steps (400 burn-in), the full-data nL_n every 10th step, γ = 100. Run through the CLI.
* lib (``st.llc``'s default before issue 23, now explicit): RMSprop preconditioner (adapted in
  burn-in, then fixed), ε picked by the ``st.sgld_step_size`` sweep, minibatches of 256, 8 chains
  × 1000 steps (200 burn-in), every step kept with its minibatch nll, γ = 100.

Both see the same data: the CLI simulates ``model.simulate(PRNGKey(seed), n)``
(``slt_thermo.cli._common.make_target``) and this script builds the library's target with that
same function; w* is the model's true_params as float32 arrays (``cli.llc._llc_center``). The
CLI runs as a subprocess (``slt-thermo`` next to this Python, in a temporary working directory,
``--no-plots --out TMP``) and its ``summary.json`` is read back; its wall time includes Python
start-up, imports and compilation, as the library's in-process wall time includes compilation.
λ's SLT meaning at a true parameter on noisy data: λ̂(w*) is expected ~β·ΔH below λ (w* is not a
minimum of L_n); the CLI's summary also records λ̂ + β·ΔH (``llc_ref_minimum``), kept in the JSON.

    python benchmarks/llc_policy.py                          # every case, seed 0 (20-40 min, 2 cores)
    python benchmarks/llc_policy.py --models rr dln543 --seeds 0 1
    python benchmarks/llc_policy.py --from-json /tmp/llc_policy.json   # re-print, runs nothing
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

from _machine import load_avg, machine_info

HERE = Path(__file__).resolve()
N = 10_000

# key: (zoo model, params); params as models.load takes them
CASES = {
    "rr": ("reduced_rank", {}),
    "rr4431": ("reduced_rank", {"M": 4, "N": 4, "H": 3, "r": 1}),
    "dln": ("deep_linear", {}),
    "linreg3": ("linear_regression", {"d": 3}),
    "tanh2": ("tanh_net", {"H": 2}),
    "dln543": ("deep_linear", {"widths": (5, 4, 3), "r": 1}),
    "dln4444": ("deep_linear", {"widths": (4, 4, 4, 4), "r": 2}),
    "dln6545": ("deep_linear", {"widths": (6, 5, 4, 5), "r": 2}),
    "dln3553": ("deep_linear", {"widths": (3, 5, 5, 3), "r": 1}),
}


def _param_arg(key, value):
    """A --param KEY=VALUE argument (tuples as comma lists: widths=5,4,3)."""
    if isinstance(value, (tuple, list)):
        value = ",".join(str(v) for v in value)
    return f"{key}={value}"


def slt_thermo_exe():
    """The ``slt-thermo`` entry point of this Python's environment."""
    exe = Path(sys.executable).parent / "slt-thermo"
    if not exe.exists():
        raise SystemExit(f"no slt-thermo entry point next to {sys.executable}")
    return str(exe)


# ============================================================================ the two policies
def run_cli(name, params, n, seed, timeout):
    """``slt-thermo llc`` in a temporary directory; λ̂, se and its records from summary.json."""
    argv = [slt_thermo_exe(), "llc", "--model", name]
    for k, v in params.items():
        argv += ["--param", _param_arg(k, v)]
    argv += ["--n", str(n), "--seed", str(seed), "--no-plots"]
    with tempfile.TemporaryDirectory(prefix="llc_policy_cli_") as tmp:
        out = os.path.join(tmp, "results")
        t0 = time.perf_counter()
        try:
            r = subprocess.run(argv + ["--out", out], cwd=tmp, capture_output=True, text=True,
                               timeout=timeout, check=False)
        except subprocess.TimeoutExpired as err:
            return {"error": f"timed out after {timeout} s", "argv": argv,
                    "wall_s": time.perf_counter() - t0,
                    "stdout_tail": (err.stdout or b"")[-3000:].decode(errors="replace")
                    if isinstance(err.stdout, bytes) else (err.stdout or "")[-3000:]}
        wall = time.perf_counter() - t0
        found = sorted(glob.glob(os.path.join(out, "**", "summary.json"), recursive=True))
        res = {"argv": argv, "returncode": r.returncode, "wall_s": wall,
               "stdout_tail": r.stdout[-4000:], "stderr_tail": r.stderr[-3000:]}
        if r.returncode != 0 or not found:
            res["error"] = f"exit status {r.returncode}" + ("" if found else ", no summary.json")
            return res
        s = json.loads(Path(found[-1]).read_text())
    d = s.get("diagnostics", {})
    ref = s.get("llc_ref_minimum") or {}
    res.update(
        llc=s["llc"]["value"], llc_se=s["llc"]["stderr"], llc_ref_minimum=ref.get("value"),
        num_params=s.get("num_params"), sampling_wall_s=s.get("wall_time_s"),
        step_size=s.get("step_size"), settings=s.get("settings"),
        nearest_minimum=s.get("nearest_minimum"), problems=s.get("problems", []),
        warnings=s.get("warnings", []), per_chain=s.get("per_chain"),
        rhat=d.get("rhat"), ess=d.get("ess"), mala_accept=d.get("mala_accept"),
        drift_z=d.get("drift_z"), predicted_bias=d.get("predicted_bias"),
        gamma_sensitivity=d.get("gamma_sensitivity"), gamma_sensitivity_se=d.get("gamma_sensitivity_se"),
        unhealthy=d.get("unhealthy"), model=s.get("model"), data=s.get("data"),
        nll_center=s.get("nll_center"),
    )
    return res


def make_lib_target(name, params, n, seed):
    """(target, w*) exactly as ``slt-thermo llc --model name --param ... --n n --seed seed`` builds them."""
    from slt_thermo import models
    from slt_thermo.cli._common import make_target
    from slt_thermo.cli.llc import _llc_center

    model = models.load(name, **params)
    target, _ = make_target(model, n, seed, False)
    center, _ = _llc_center(argparse.Namespace(center=None), target)
    return model, target, center


def run_lib(name, params, n, seed):
    """``st.llc(target, center, key=PRNGKey(seed))`` with the library's pre-issue-23 defaults."""
    import jax
    import numpy as np

    import slt_thermo as st

    t0 = time.perf_counter()
    _, target, center = make_lib_target(name, params, n, seed)
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = st.llc(target, center, key=jax.random.PRNGKey(seed), step_size="sweep",
                     preconditioner="rmsprop", batch_size=min(n, 256), num_steps=1000, num_burnin=200,
                     thinning=1, progress=False)
    wall = time.perf_counter() - t0
    det = est.details
    samples = det.get("samples")
    return {
        "llc": est.value, "llc_se": est.stderr, "wall_s": wall, "setup_s": setup,
        "sampling_wall_s": float(samples.ds.attrs.get("wall_time_s", float("nan"))) if samples is not None
        else None,
        "num_params": int(sum(np.size(x) for x in jax.tree_util.tree_leaves(center))),
        "step_size": det.get("step_size"), "batch_size": det.get("batch_size"),
        "problems": list(det.get("problems", [])),
        "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
        "per_chain": list(det.get("per_chain", [])), "rhat": det.get("rhat"), "ess": det.get("ess"),
        "mala_accept": det.get("mala_accept"), "drift_z": det.get("drift_z"),
        "predicted_bias": det.get("predicted_bias"), "gamma_sensitivity": det.get("gamma_sensitivity"),
        "gamma_sensitivity_se": det.get("gamma_sensitivity_se"), "unhealthy": det.get("unhealthy"),
        "nll_center": det.get("nll_center"),
    }


# ============================================================================ printing
def _f(x, spec):
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def _est(res, lam):
    """'λ̂ ± se | rel % | z' of one policy's result (or its error)."""
    if res is None or "error" in res:
        why = "skipped" if res is None else "FAILED: " + res["error"]
        return f"{why} | – | –"
    v, se = res["llc"], res["llc_se"]
    rel = 100 * (v - lam) / lam
    z = (v - lam) / se if se and se > 0 else float("nan")
    return f"{v:.2f} ± {se:.2f} | {rel:+.0f}% | {_f(z, '+.1f')}"


def _lam_text(row):
    """'3/2 = 1.5', or '6' where λ is a whole number."""
    text, lam = row["lambda_text"], row["lambda"]
    return text if text == f"{lam:g}" else f"{text} = {lam:.3g}"


def shift(row):
    """β·ΔH from the CLI's nearest-minimum record (None without one)."""
    cli = row.get("cli") or {}
    nm, settings = cli.get("nearest_minimum"), cli.get("settings") or {}
    if not nm or "beta" not in settings:
        return None
    return settings["beta"] * nm["delta"]


def print_table(rows):
    print("\n| model | seed | d | λ (exact) | cli λ̂ ± se | rel | (λ̂−λ)/se | lib λ̂ ± se | rel | (λ̂−λ)/se "
          "| cli s | lib s | cli ε | lib ε | β·ΔH | cli +β·ΔH | lib +β·ΔH |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if r.get("skipped"):
            print(f"| {r['model']} | {r['seed']} | – | – | skipped: {r['skipped']} |||||||||")
            continue
        lam, cli, lib = r["lambda"], r.get("cli"), r.get("lib")
        cs = _f(cli.get("wall_s") if cli else None, ".0f")
        ls = _f(lib.get("wall_s") if lib else None, ".0f")
        ce = _f((cli.get("step_size") or {}).get("step_size") if cli and "error" not in cli else None, ".2g")
        le = _f(lib.get("step_size") if lib and "error" not in lib else None, ".2g")
        bdh = shift(r)
        ref = [_f(res["llc"] + bdh, ".2f") if res and "error" not in res and bdh is not None else "–"
               for res in (cli, lib)]
        print(f"| {r['model']} | {r['seed']} | {_f(r.get('d'), 'd')} | {_lam_text(r)} | "
              f"{_est(cli, lam)} | {_est(lib, lam)} | {cs} | {ls} | {ce} | {le} | {_f(bdh, '.2f')} | "
              f"{ref[0]} | {ref[1]} |")
    print("rel = (λ̂ − λ)/λ; (λ̂−λ)/se: the error in units of the estimate's own standard error. "
          "cli s: the subprocess's wall time (start-up, imports, step-size rule, L-BFGS nearest "
          "minimum, sampling); lib s: st.llc's wall time (step-size sweep + sampling, compilation "
          "included). β·ΔH: β(nL_n(w*) − nL_n(ŵ)), ŵ the minimum of L_n nearest w* (from the CLI's "
          "L-BFGS; same data and w* for both policies), what λ̂(w*) lacks because w* is not a "
          "minimum of L_n on noisy data; '+β·ΔH' = λ̂ + β·ΔH")
    for pol in ("cli", "lib"):
        done = [r for r in rows if not r.get("skipped") and r.get(pol) and "error" not in r[pol]]
        if not done:
            continue
        errs = [abs(r[pol]["llc"] - r["lambda"]) / r["lambda"] for r in done]
        zs = [abs(r[pol]["llc"] - r["lambda"]) / r[pol]["llc_se"] for r in done if r[pol]["llc_se"] > 0]
        wall = sum(r[pol]["wall_s"] for r in done)
        print(f"{pol}: {len(done)} runs; mean |rel err| {100 * sum(errs) / len(errs):.0f}%, median "
              f"{100 * sorted(errs)[len(errs) // 2]:.0f}%; within 10% of λ on {sum(e <= 0.1 for e in errs)}"
              f"/{len(done)}; within 2 se on {sum(z <= 2 for z in zs)}/{len(zs)}; total wall {wall:.0f} s")
    for r in rows:
        for pol in ("cli", "lib"):
            res = r.get(pol)
            if not res:
                continue
            notes = [str(x).removeprefix("UserWarning: ").removeprefix("llc: ")
                     for x in list(res.get("problems") or []) + list(res.get("warnings") or [])]
            if "error" in res:
                notes = [res["error"]] + [res.get("stderr_tail", "")[-500:]]
            if pol == "cli" and res.get("step_size", {}).get("halvings"):
                notes.insert(0, f"ε halved {res['step_size']['halvings']}×")
            for note in dict.fromkeys(notes):
                if note:
                    print(f"  {r['model']} seed {r['seed']} {pol}: {note}")


def reprint(path):
    res = json.loads(Path(path).read_text())
    m = res["machine"]
    print(f"{res['timestamp']} | {m['platform']} | {m['cpu']} | {m['cpu_count']} CPUs | "
          f"load avg start {m.get('load_avg_start')}, end {m.get('load_avg_end')} | "
          f"total {res['total_wall_s']:.0f} s")
    print_table(res["rows"])


# ============================================================================ main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", choices=list(CASES), default=list(CASES), metavar="KEY",
                   help=f"the cases to run (default all): {', '.join(CASES)}")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="data and sampler seeds (default 0)")
    p.add_argument("--n", type=int, default=N, help=f"dataset size (default {N})")
    p.add_argument("--policies", nargs="+", choices=("cli", "lib"), default=["cli", "lib"])
    p.add_argument("--cli-timeout", type=float, default=1800.0, help="seconds per CLI run (default 1800)")
    p.add_argument("--json", type=Path, default=Path("/tmp/llc_policy.json"),
                   help="where to write the results (default /tmp/llc_policy.json)")
    p.add_argument("--from-json", type=Path, default=None, metavar="PATH",
                   help="re-print the table of a saved result file; runs nothing")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.from_json:
        return reprint(args.from_json)
    import jax

    import slt_thermo
    from slt_thermo import models

    t_start = time.perf_counter()
    machine = machine_info()
    machine["load_avg_start"] = load_avg()
    machine["slt_thermo_path"] = str(Path(slt_thermo.__file__).parent)
    machine["slt_thermo_exe"] = slt_thermo_exe()
    machine["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    v = machine["versions"]
    print(f"{machine['platform']} | {machine['cpu']} | {machine['cpu_count']} CPUs "
          f"({machine['cpus_usable']} usable) | jax {v['jax']} | slt-thermo {v['slt-thermo']} from "
          f"{machine['slt_thermo_path']} | load avg {machine['load_avg_start']}", flush=True)
    log = lambda s: print(s, file=sys.stderr, flush=True)
    rows = []

    def save():
        out = {"benchmark": "llc_policy", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "command": " ".join([HERE.name] + (sys.argv[1:] if argv is None else list(argv))),
               "machine": machine,
               "settings": {k: (str(x) if isinstance(x, Path) else x) for k, x in vars(args).items()},
               "cases": {k: {"model": m, "params": p} for k, (m, p) in CASES.items()},
               "rows": rows, "total_wall_s": time.perf_counter() - t_start}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1, default=str))

    for key in args.models:
        name, params = CASES[key]
        model = models.load(name, **params)
        try:
            lam = getattr(model, "rlct", None)
            mult = getattr(model, "multiplicity", None)
        except Exception as err:  # noqa: BLE001  (exact λ not known for this model)
            lam, mult = None, None
            log(f"{key}: rlct unavailable ({type(err).__name__}: {err})")
        for seed in args.seeds:
            row = {"model": key, "name": model.name, "zoo": name, "params": params, "seed": seed, "n": args.n}
            if lam is None:
                row["skipped"] = "no exact λ (model.rlct unavailable)"
                rows.append(row)
                log(f"{model.name}: skipped, no exact λ")
                continue
            row.update(lambda_text=str(lam), **{"lambda": float(lam)}, multiplicity=mult,
                       load_before=load_avg())
            log(f"\n{model.name} seed {seed}: λ = {lam} (m = {mult})")
            if "cli" in args.policies:
                row["cli"] = run_cli(name, params, args.n, seed, args.cli_timeout)
                c = row["cli"]
                log(f"  cli  {_est(c, float(lam))}  {c.get('wall_s', float('nan')):.0f} s")
            if "lib" in args.policies:
                try:
                    row["lib"] = run_lib(name, params, args.n, seed)
                except Exception as err:  # noqa: BLE001  (recorded; the other cases go on)
                    row["lib"] = {"error": f"{type(err).__name__}: {err}",
                                  "traceback": traceback.format_exc()[-3000:]}
                jax.clear_caches()  # one process compiles every case: free the old executables
                c = row["lib"]
                log(f"  lib  {_est(c, float(lam))}  {c.get('wall_s', float('nan')):.0f} s")
            row["d"] = next((row[p]["num_params"] for p in ("lib", "cli")
                             if row.get(p) and row[p].get("num_params") is not None), None)
            row["load_after"] = load_avg()
            rows.append(row)
            save()  # partial results survive an interrupted run

    machine["load_avg_end"] = load_avg()
    print_table(rows)
    total = time.perf_counter() - t_start
    print(f"\ntotal wall time {total:.0f} s; load avg start {machine['load_avg_start']}, "
          f"end {machine['load_avg_end']}")
    save()
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
