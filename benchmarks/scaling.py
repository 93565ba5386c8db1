"""Scaling (issue 18): throughput against the number of devices, peak memory against the number
of parameters d, the accuracy cost of mixed precision, and (``--gpu``) throughput against d as a
fraction of the device's roofline.

    python benchmarks/scaling.py [--quick] [--skip-devices] [--skip-memory] [--skip-precision]
    python benchmarks/scaling.py --gpu [--gpu-budget-s 300]      # on a machine with a GPU only

1. **Devices (CPU)**: for k ∈ {1, 2, 4} (``--quick``: {1, 4}) forced host devices (``XLA_FLAGS=
   --xla_force_host_platform_device_count=k``, which must be set before jax is imported, so one
   fresh subprocess per k), ``st.sample_sgld`` (B = 64) and ``st.sample_nuts`` on
   ``deep_linear((8, 8, 8, 8), 2)`` (192 parameters, n = 1000, started at the true parameters) with
   the same 16 (β × chain) pairs at every k (2 β × 8 chains), k = 1 the plain run and k > 1
   ``devices=k``. Warm timing: the second call with the same arguments (the first call's extra
   time is reported as compile time). Steps/s = pairs × steps / warm wall; speed-up against
   k = 1; the largest difference of the recorded nL_n from the k = 1 run (same key: the same
   numbers up to float reassociation, which NUTS's long trajectories amplify during warm-up, so
   its draws separate; hence also E[nL_n] per β against k = 1's, z in joint MCSE) and how many
   devices the final state lives on. The forced
   host devices share the same physical cores, so on a 2-core machine the speed-up is bounded
   by 2 at best: on CPU the table shows that the sharded program runs and matches; the GPU
   section is the measurement that counts.
2. **Memory vs d**: deep linear nets (w, w, w, w) with d = 3w² ≈ 1e2 … 1e5 (``--quick``: 1e4 only),
   a short SGLD run (1 β × 4 chains, 250 recorded draws; B = 64, n = 1000). One fresh subprocess
   per size runs ``keep_params=False`` (streaming: energies only) and then ``keep_params=True``;
   the process's peak RSS (``getrusage`` maxrss, a high-water mark) after each, against
   ``params_bytes`` of the recording (β × chains × draws × d × 4 bytes; what the default
   ``keep_params=None`` keeps as long as it is under ``PARAMS_BUDGET_BYTES`` = 1 GiB).
3. **Mixed precision**: ``linear_regression(d=3)``, n = 1000, NUTS at β = 1, float32 against
   ``target.with_precision("bfloat16")``: E^β[nL_n] ± MCSE (ArviZ bulk ESS) against the closed form
   (``exact_thermo``), the bf16 chain's draws re-evaluated in float32 (the shift of the sampled
   distribution, apart from the error of evaluating nL_n in bf16), and the warm wall-time ratio
   (on CPU bf16 is emulated and usually not faster). Then the same comparison on
   ``deep_linear((4, 4, 4), 2)`` (no closed form: f32 against bf16), not in ``--quick``.
4. **GPU** (``--gpu``; runs nothing else): deep linear nets (w, w, w, w) with w ∈ {128, 512, 2048,
   4096, 8192, 16384, 32768} (``--gpu-widths``) until the device runs out of memory (caught: the
   last size that ran is the largest that fits) or the time budget ``--gpu-budget-s`` (default
   300 s) runs out (a run predicted, from the last size's seconds per FLOP, to take more than
   40% of what is left is skipped; for w > n the DLN's cost is the w³ matrix chain): SGLD
   (8 chains, B = 256, n = 1024) in float32 and with bf16 likelihood, NUTS (8 chains, full data,
   max_tree_depth 6): steps/s, FLOPs per step from XLA's ``cost_analysis`` of the vmapped gradient
   (SGLD: the minibatch gradient of all chains; NUTS: full-data gradients × the mean leapfrog
   steps per draw), achieved FLOP/s as a fraction of the device's peak (a table keyed by
   ``device_kind``: FP32 non-tensor, TF32 and BF16 dense tensor peaks; JAX's default matmul
   precision on NVIDIA GPUs may use TF32, so both fractions are printed), and the device's peak
   memory (``memory_stats()["peak_bytes_in_use"]``, a process high-water mark: the sizes grow,
   so each row's value is that size's peak). Fails with a clear message if JAX sees no GPU.
   ``--gpu-on-cpu`` (hidden) runs the same code on CPU with tiny sizes and a nominal peak, and a
   simulated out-of-memory error past the last size, to test the code path.

Prints markdown tables and writes ``benchmarks/results/scaling.json`` (``--gpu``:
``scaling_gpu.json``). Not a timed test: run it by hand, on an otherwise idle machine if you can.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

if "--gpu" in sys.argv:  # before jax is imported: let the largest size use most of the device
    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.92")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _machine import cpu_seconds, load_avg, machine_info  # noqa: E402

import slt_thermo as st  # noqa: E402
from slt_thermo import models, parallel  # noqa: E402
from slt_thermo.results import ess_bulk, rhat  # noqa: E402
from slt_thermo.samplers import run as run_mod  # noqa: E402

HERE = Path(__file__).resolve()
RESULTS = HERE.parent / "results" / "scaling.json"
RESULTS_GPU = HERE.parent / "results" / "scaling_gpu.json"

# device_kind substring (first match wins) -> dense peak TFLOP/s: FP32 (non-tensor), TF32, BF16
PEAKS_TFLOPS = {
    "H100 PCIe": {"fp32": 51.0, "tf32": 378.0, "bf16": 756.0},
    "H100": {"fp32": 67.0, "tf32": 495.0, "bf16": 989.0},  # SXM
    "H200": {"fp32": 67.0, "tf32": 495.0, "bf16": 989.0},  # same compute as H100 SXM
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0},
    "L4": {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0},
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke run (about 2 min on 2 cores): k ∈ {1, 4}, shorter runs, memory at d = 1e4 only, "
                        "no DLN precision row")
    p.add_argument("--devices", default=None, help="forced host device counts (default 1,2,4; quick 1,4)")
    p.add_argument("--skip-devices", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-precision", action="store_true")
    p.add_argument("--gpu", action="store_true", help="run the GPU section only (needs a GPU visible to JAX)")
    p.add_argument("--gpu-budget-s", type=float, default=300.0,
                   help="wall-time budget of the GPU section; sizes stop growing when it runs out (default 300)")
    p.add_argument("--gpu-widths", default=None,
                   help="DLN widths w to try with --gpu (default 128,512,2048,4096,8192,16384,32768)")
    p.add_argument("--gpu-on-cpu", action="store_true", help=argparse.SUPPRESS)  # test of the --gpu path
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: one subprocess's job (JSON)
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


def timed(fn):
    """(first call's seconds, second call's seconds, second result): warm = the second call."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    return first, time.perf_counter() - t0, out


def maxrss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def num_params(tree):
    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(tree)))


def dln_target(widths, r, n, seed=0):
    m = models.deep_linear(tuple(widths), r)
    data = m.simulate(jax.random.PRNGKey(100 + seed), n)
    return m, data, st.Target(m, data)


def run_worker(job, env_extra=None, timeout=900):
    """Run this script with ``--worker job`` in a fresh process; its RESULT line as a dict."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", **(env_extra or {}))
    proc = subprocess.run([sys.executable, str(HERE), "--worker", json.dumps(job)], capture_output=True,
                          text=True, env=env, timeout=timeout)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"worker {job} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT"):])


def worker_main(job):
    kind = job["kind"]
    out = {"devices": worker_devices, "memory": worker_memory}[kind](job)
    print("RESULT" + json.dumps(out, default=float))


# ============================================================================ 1. devices (CPU)
DEV_WIDTHS, DEV_R, DEV_N = (8, 8, 8, 8), 2, 1000
DEV_BETAS, DEV_CHAINS = (0.5, 1.0), 8


def worker_devices(job):
    k = job["k"]
    assert len(jax.devices()) == k, (k, jax.devices())
    m, data, t = dln_target(DEV_WIDTHS, DEV_R, DEV_N)
    devices = None if k == 1 else k
    out = {"k": k, "d": num_params(m.true_params), "device_kind": jax.devices()[0].device_kind}
    T, burn = job["sgld_steps"], job["sgld_steps"] // 2
    pairs = len(DEV_BETAS) * DEV_CHAINS

    def sgld():
        return st.sample_sgld(t, list(DEV_BETAS), key=jax.random.PRNGKey(1), num_chains=DEV_CHAINS, step_size=1e-5,
                              num_steps=T, num_burnin=burn, batch_size=64, init=m.true_params, devices=devices,
                              keep_params=False, progress=False)
    first, warm, r = timed(sgld)
    nll = np.asarray(r["nll"].values, float)
    out["sgld"] = {"steps": T, "first_s": first, "warm_s": warm, "compile_s": first - warm,
                   "steps_per_s": pairs * T / warm, "nll": nll.tolist(), "finite": bool(np.isfinite(nll).all()),
                   "state_devices": len(parallel.devices_of(r.state.kernel))}
    W = S = job["nuts_steps"]

    def nuts():
        return st.sample_nuts(t, list(DEV_BETAS), key=jax.random.PRNGKey(2), num_chains=DEV_CHAINS, num_warmup=W,
                              num_samples=S, max_tree_depth=5, init=m.true_params, devices=devices,
                              keep_params=False, progress=False)
    first, warm, r = timed(nuts)
    nll = np.asarray(r["nll"].values, float)
    leap = float(np.mean(r["n_steps"].values))
    out["nuts"] = {"warmup": W, "samples": S, "first_s": first, "warm_s": warm, "compile_s": first - warm,
                   "steps_per_s": pairs * (W + S) / warm, "mean_leapfrogs": leap,
                   "grads_per_s": pairs * (W + S) * leap / warm,  # warm-up tree sizes taken as the draws'
                   "nll": nll.tolist(), "finite": bool(np.isfinite(nll).all()),
                   "state_devices": len(parallel.devices_of(r.state.kernel))}
    return out


def devices_section(args):
    ks = [int(x) for x in (args.devices or ("1,4" if args.quick else "1,2,4")).split(",")]
    job = {"kind": "devices", "sgld_steps": 1000 if args.quick else 2000, "nuts_steps": 30 if args.quick else 60}
    rows = []
    for k in ks:
        flags = (os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={k}").strip()
        t0 = time.perf_counter()
        rows.append(run_worker(dict(job, k=k), {"XLA_FLAGS": flags}))
        rows[-1]["process_s"] = time.perf_counter() - t0
        print(f"  devices k = {k}: SGLD {rows[-1]['sgld']['steps_per_s']:,.0f} steps/s, "
              f"NUTS {rows[-1]['nuts']['steps_per_s']:,.0f} steps/s ({rows[-1]['process_s']:.0f} s)", file=sys.stderr)
    ref = rows[0]
    for row in rows:
        for s in ("sgld", "nuts"):
            a, b = np.asarray(ref[s]["nll"]), np.asarray(row[s]["nll"])
            row[s]["speedup"] = row[s]["steps_per_s"] / ref[s]["steps_per_s"]
            row[s]["max_abs_diff_vs_k1"] = float(np.abs(a - b).max())
            row[s]["max_rel_diff_vs_k1"] = float(np.abs(a - b).max() / np.abs(a).max())
            row[s]["first_draw_max_rel_diff"] = float(np.abs(a - b)[..., 0].max() / np.abs(a).max())
            # the same distribution whatever the draws: E[nL_n] at each β against k = 1's, in joint se
            row[s]["mean_diff_z"] = []
            for i in range(a.shape[0]):
                ea, eb = energy_stats(a[i]), energy_stats(b[i])
                se = math.hypot(ea["se"], eb["se"])
                row[s]["mean_diff_z"].append((eb["mean"] - ea["mean"]) / se if se > 0 else 0.0)
    for row in rows:  # the arrays were for the comparison only
        for s in ("sgld", "nuts"):
            row[s]["nll_mean"] = float(np.mean(row[s].pop("nll")))
    return {"widths": DEV_WIDTHS, "r": DEV_R, "n": DEV_N, "betas": DEV_BETAS, "chains": DEV_CHAINS,
            "sgld": {"batch_size": 64, "step_size": 1e-5, "steps": job["sgld_steps"]},
            "nuts": {"warmup": job["nuts_steps"], "samples": job["nuts_steps"], "max_tree_depth": 5},
            "rows": rows}


def print_devices(res):
    print(f"\nDevices (CPU, forced host devices sharing the machine's cores): deep_linear({res['widths']}, "
          f"{res['r']}), d = {res['rows'][0]['d']}, n = {res['n']}, {len(res['betas'])} β × {res['chains']} chains; "
          f"SGLD B = 64, {res['sgld']['steps']} steps; NUTS {res['nuts']['warmup']} + {res['nuts']['samples']}, "
          "max_tree_depth 5. Steps/s = (β × chain) pairs × steps / warm wall.")
    print("| sampler | k devices | state on | steps/s | speed-up vs k = 1 | warm s | compile s | "
          "max |ΔnL_n| vs k = 1 (relative) | at the first draw (relative) | ΔE[nL_n] vs k = 1, z per β |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---|")
    for s, name in (("sgld", "SGLD"), ("nuts", "NUTS")):
        for row in res["rows"]:
            x = row[s]
            extra = f" ({x['grads_per_s']:,.0f} grad/s)" if s == "nuts" else ""
            print(f"| {name} | {row['k']} | {x['state_devices']} | {x['steps_per_s']:,.0f}{extra} | "
                  f"{x['speedup']:.2f}× | {x['warm_s']:.2f} | {x['compile_s']:.1f} | "
                  f"{x['max_abs_diff_vs_k1']:.3g} ({x['max_rel_diff_vs_k1']:.1e}) | "
                  f"{x['first_draw_max_rel_diff']:.1e} | {' / '.join(f'{z:+.1f}' for z in x['mean_diff_z'])} |")


# ============================================================================ 2. memory vs d
MEM_CHAINS, MEM_DRAWS, MEM_BURN, MEM_N = 4, 250, 50, 1000


def worker_memory(job):
    w = job["w"]
    m, data, t = dln_target((w, w, w, w), 2, MEM_N)
    d = num_params(m.true_params)
    out = {"w": w, "d": d, "rss_start_mib": maxrss_mib()}
    records = MEM_CHAINS * MEM_DRAWS
    out["params_bytes"] = run_mod.params_bytes(m.true_params, records)
    out["default_keeps"] = out["params_bytes"] <= run_mod.PARAMS_BUDGET_BYTES
    for keep in (False, True):  # streaming first: the peak is a high-water mark
        t0 = time.perf_counter()
        r = st.sample_sgld(t, [1.0], key=jax.random.PRNGKey(1), num_chains=MEM_CHAINS, step_size=1e-6,
                           num_steps=MEM_BURN + MEM_DRAWS, num_burnin=MEM_BURN, batch_size=64, init=m.true_params,
                           keep_params=keep, progress=False)
        held = sum(r[v].values.nbytes for v in m.layers) if keep else 0
        # the per-chunk draws that samples.state (the run's state, kept for resume) still holds
        in_state = state_bytes([rec.get("params", {}) for rec in r.state.records])
        out["keep" if keep else "stream"] = {"peak_rss_mib": maxrss_mib(), "wall_s": time.perf_counter() - t0,
                                             "held_param_bytes": int(held), "state_param_bytes": int(in_state),
                                             "has_params": all(v in r.ds for v in m.layers)}
        del r
    return out


def state_bytes(tree):
    """Bytes of the numpy arrays in ``tree``, a view counted as the whole array it views (once)."""
    seen = {}
    for x in jax.tree_util.tree_leaves(tree):
        x = np.asarray(x)
        base = x.base if isinstance(x.base, np.ndarray) else x
        seen[id(base)] = base.nbytes
    return int(sum(seen.values()))


def memory_section(args):
    widths = (58,) if args.quick else (6, 18, 58, 183)
    rows = []
    for w in widths:
        t0 = time.perf_counter()
        rows.append(run_worker({"kind": "memory", "w": w}))
        rows[-1]["process_s"] = time.perf_counter() - t0
        r = rows[-1]
        print(f"  memory d = {r['d']}: stream {r['stream']['peak_rss_mib']:.0f} MiB, keep {r['keep']['peak_rss_mib']:.0f}"
              f" MiB ({r['process_s']:.0f} s)", file=sys.stderr)
    return {"chains": MEM_CHAINS, "draws": MEM_DRAWS, "burnin": MEM_BURN, "n": MEM_N, "batch_size": 64, "rows": rows}


def print_memory(res):
    print(f"\nPeak RSS vs d: SGLD, 1 β × {res['chains']} chains × {res['draws']} draws ({res['burnin']} burn-in), "
          f"B = 64, n = {res['n']}, deep_linear((w, w, w, w), 2); one process per size, keep_params=False then "
          "True (peak RSS is a high-water mark). params_bytes = the recording of the parameters (what the default "
          "keeps up to 1 GiB).")
    print("| w | d | params_bytes (MiB) | default keeps | RSS before (MiB) | peak, streaming (MiB) | "
          "peak, keep_params=True (MiB) | keep − streaming (MiB) | (keep − streaming) / params_bytes | "
          "draws held by the Samples: dataset + samples.state (MiB) |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for r in res["rows"]:
        pb = r["params_bytes"] / 2**20
        diff = r["keep"]["peak_rss_mib"] - r["stream"]["peak_rss_mib"]
        ratio = f"{diff / pb:.2f}" if pb >= 10 else "– (below RSS noise)"
        print(f"| {r['w']} | {r['d']:,} | {pb:.2f} | {'yes' if r['default_keeps'] else 'no'} | "
              f"{r['rss_start_mib']:.0f} | {r['stream']['peak_rss_mib']:.0f} | {r['keep']['peak_rss_mib']:.0f} | "
              f"{diff:.0f} | {ratio} | {r['keep']['held_param_bytes'] / 2**20:.1f} + "
              f"{r['keep']['state_param_bytes'] / 2**20:.1f} |")


# ============================================================================ 3. mixed precision
def energy_stats(nll):
    """Mean, MCSE (sd / sqrt(bulk ESS)), ESS and R-hat of draws shaped (chain, draw)."""
    ess = ess_bulk(nll)
    return {"mean": float(nll.mean()), "se": float(nll.std(ddof=1) / math.sqrt(max(ess, 1.0))), "ess": float(ess),
            "rhat": float(rhat(nll))}


def reevaluate(t, samples, names, betas_index=0):
    """The float32 nL_n of every recorded draw of ``samples`` at its first β: (chain, draw)."""
    draws = {v: jnp.asarray(samples[v].values[betas_index]) for v in names}
    C, S = next(iter(draws.values())).shape[:2]
    flat = {v: a.reshape((C * S,) + a.shape[2:]) for v, a in draws.items()}
    return np.asarray(jax.lax.map(t.nll, flat, batch_size=256), float).reshape(C, S)


def precision_case(label, t, names, beta, kw, exact=None):
    rows = {}
    for prec in ("float32", "bfloat16"):
        tt = t if prec == "float32" else t.with_precision(prec)
        first, warm, r = timed(lambda tt=tt: st.sample_nuts(tt, [beta], key=jax.random.PRNGKey(3), keep_params=True,
                                                            progress=False, **kw))
        nll = np.asarray(r["nll"].values[0], float)
        row = {"first_s": first, "warm_s": warm, **energy_stats(nll),
               "mean_leapfrogs": float(np.mean(r["n_steps"].values))}
        f32 = reevaluate(t, r, names)  # the draws' nL_n in float32
        row["f32_eval"] = energy_stats(f32)
        row["eval_error_mean"] = float(np.mean(nll - f32))  # E[nL_n in this precision − in float32] on its draws
        if exact is not None:
            row["z"] = (row["mean"] - exact) / row["se"]
            row["f32_eval"]["z"] = (row["f32_eval"]["mean"] - exact) / row["f32_eval"]["se"]
        rows[prec] = row
        print(f"  precision {label} {prec}: {row['mean']:.3f} ± {row['se']:.3f} ({warm:.1f} s warm)", file=sys.stderr)
    a, b = rows["float32"], rows["bfloat16"]
    diff = {"bf16_minus_f32": b["mean"] - a["mean"], "se": math.hypot(a["se"], b["se"]),
            "shift_f32_eval": b["f32_eval"]["mean"] - a["mean"], "shift_se": math.hypot(a["se"], b["f32_eval"]["se"]),
            "warm_ratio_bf16_over_f32": b["warm_s"] / a["warm_s"],
            "per_leapfrog_ratio_bf16_over_f32": (b["warm_s"] / b["mean_leapfrogs"]) / (a["warm_s"] / a["mean_leapfrogs"])}
    return {"model": label, "beta": beta, "exact_E": exact, "settings": {k: v for k, v in kw.items() if k != "init"},
            "rows": rows, "diff": diff}


def precision_section(args):
    cases = []
    m = models.linear_regression(d=3)
    data = m.simulate(jax.random.PRNGKey(0), 1000)
    t = st.Target(m, data)
    exact = float(np.asarray(m.exact_thermo(data, 1.0).E))
    kw = dict(num_chains=4 if args.quick else 8, num_warmup=300 if args.quick else 500,
              num_samples=500 if args.quick else 2000)
    cases.append(precision_case("linear_regression(d=3), n = 1000", t, ["w"], 1.0, kw, exact))
    if not args.quick:
        m, data, t = dln_target((4, 4, 4), 2, 1000)
        kw = dict(num_chains=4, num_warmup=300, num_samples=500, max_tree_depth=6, init=m.true_params)
        cases.append(precision_case("deep_linear((4, 4, 4), 2), n = 1000", t, m.layers, 1.0, kw))
    return cases


def print_precision(cases):
    print("\nMixed precision: NUTS at β = 1, float32 vs target.with_precision('bfloat16') (likelihood in bf16, "
          "chain state, prior and sums in f32); E[nL_n] ± MCSE; 'f32 re-eval' = the same draws' nL_n in float32")
    print("| model | precision | chains × draws | E[nL_n] ± se | exact | z | f32 re-eval ± se | z (re-eval) | "
          "bf16 − f32 (se) | warm s | compile s |")
    print("|---|---|---|---|---:|---:|---|---:|---|---:|---:|")
    for c in cases:
        s = c["settings"]
        for prec, r in c["rows"].items():
            ex = f"{c['exact_E']:.3f}" if c["exact_E"] is not None else "–"
            z = f"{r['z']:+.1f}" if "z" in r else "–"
            zr = f"{r['f32_eval']['z']:+.1f}" if "z" in r["f32_eval"] else "–"
            d = c["diff"]
            dd = "" if prec == "float32" else f"{d['bf16_minus_f32']:+.3f} ({d['se']:.3f})"
            print(f"| {c['model']} | {prec} | {s['num_chains']} × {s['num_samples']} | {r['mean']:.3f} ± {r['se']:.3f} "
                  f"| {ex} | {z} | {r['f32_eval']['mean']:.3f} ± {r['f32_eval']['se']:.3f} | {zr} | {dd} | "
                  f"{r['warm_s']:.2f} | {r['first_s'] - r['warm_s']:.1f} |")
        print(f"  {c['model']}: bf16 / f32 warm wall time {c['diff']['warm_ratio_bf16_over_f32']:.2f}× "
              f"(per leapfrog {c['diff']['per_leapfrog_ratio_bf16_over_f32']:.2f}×; mean leapfrogs per draw "
              f"{c['rows']['float32']['mean_leapfrogs']:.1f} / {c['rows']['bfloat16']['mean_leapfrogs']:.1f}); "
              f"sampled-distribution shift (bf16 draws in f32 − f32) {c['diff']['shift_f32_eval']:+.3f} "
              f"± {c['diff']['shift_se']:.3f}; bf16 evaluation error on its draws "
              f"{c['rows']['bfloat16']['eval_error_mean']:+.3f}")


# ============================================================================ 4. GPU
def peak_for(device_kind):
    for key, peaks in PEAKS_TFLOPS.items():
        if key.lower() in device_kind.lower():
            return key, peaks
    return None, None


def flops_of(fn, *args):
    """XLA's FLOP count of ``jax.jit(fn)(*args)`` (compiled, not run); None if unavailable."""
    try:
        cost = jax.jit(fn).lower(*args).compile().cost_analysis()
        if isinstance(cost, (list, tuple)):
            cost = cost[0]
        f = float(cost.get("flops", float("nan")))
        return f if f > 0 and math.isfinite(f) else None
    except Exception as err:  # cost analysis is a best-effort estimate
        print(f"  cost_analysis failed: {err!r:.200}", file=sys.stderr)
        return None


def grad_flops(m, t, chains, batch, beta=1.0):
    """FLOPs of one vmapped gradient of the (minibatch, if ``batch``) potential for ``chains`` chains."""
    P = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct((chains,) + a.shape, jnp.result_type(a)),
                               m.true_params)  # shapes only: nothing is allocated
    x, y = t.data["x"], t.data["y"]
    if batch is not None:
        x, y = x[:batch], y[:batch]
    scale = t.n / x.shape[0]

    def pot(p):
        return -beta * scale * jnp.sum(t.model.log_likelihood(p, {"x": x, "y": y})) - m.log_prior(p)

    return flops_of(jax.vmap(jax.grad(pot)), P)


def is_oom(err):
    s = str(err)
    return "RESOURCE_EXHAUSTED" in s or "out of memory" in s.lower() or "OOM" in s


def device_memory(dev):
    try:
        stats = dev.memory_stats() or {}
    except Exception:
        stats = {}
    return {"peak_bytes_in_use": stats.get("peak_bytes_in_use"), "bytes_limit": stats.get("bytes_limit"),
            "peak_rss_mib": maxrss_mib()}


def gpu_section(args):
    on_cpu = args.gpu_on_cpu
    if on_cpu:
        dev = jax.devices("cpu")[0]
        widths, n, chains, batch = [4, 8, 16], 64, 4, 16
        fake_oom_at = 16  # exercises the out-of-memory path
        peaks_name, peaks = "nominal CPU peak (test only)", {"fp32": 0.05, "tf32": 0.05, "bf16": 0.05}
        target_s, min_steps, nuts_depth = 0.3, 4, 4
        print("--gpu-on-cpu: a test of the --gpu code path on CPU; its numbers mean nothing", file=sys.stderr)
    else:
        try:
            gpus = jax.devices("gpu")
        except RuntimeError:
            gpus = []
        if not gpus:
            raise SystemExit(
                f"--gpu: JAX sees no GPU (backend {jax.default_backend()!r}, devices {jax.devices()}). Install a "
                "CUDA build of jaxlib (pip install 'jax[cuda12]') and check CUDA_VISIBLE_DEVICES / nvidia-smi; "
                "the CPU sections run without --gpu.")
        dev = gpus[0]
        widths, n, chains, batch = [128, 512, 2048, 4096, 8192, 16384, 32768], 1024, 8, 256
        if args.gpu_widths:
            widths = [int(x) for x in args.gpu_widths.split(",")]
        fake_oom_at = None
        peaks_name, peaks = peak_for(dev.device_kind)
        target_s, min_steps, nuts_depth = 3.0, 4, 6
    budget_end = time.perf_counter() + args.gpu_budget_s
    print(f"GPU section on {dev.device_kind} ({dev.platform}); peaks: {peaks_name} {peaks}", file=sys.stderr)
    rows, stop, s_per_flop, compile_s = [], None, {}, {}

    def left():
        return budget_end - time.perf_counter()

    for w in widths:
        row = {"w": w}
        try:
            if fake_oom_at is not None and w >= fake_oom_at:
                raise RuntimeError("RESOURCE_EXHAUSTED: simulated out of memory (--gpu-on-cpu)")
            with jax.default_device(dev):
                m, data, t = dln_target((w, w, w, w), 2, n)
                row["d"] = d = num_params(m.true_params)
                row["flops_sgld_step"] = fs = grad_flops(m, t, chains, batch)
                row["flops_grad_full"] = fg = grad_flops(m, t, chains, None)  # all chains, one leapfrog
                eps = 1e-3 / (n * w)  # ~ 1/(1000 κ) at the true parameters: finite, not tuned
                for prec in ("float32", "bfloat16"):
                    tt = t if prec == "float32" else t.with_precision(prec)
                    key = "sgld_" + prec
                    pred = s_per_flop.get(key, 0.0) * (fs or 0.0)  # predicted seconds per step
                    steps = 200 if not pred else int(min(2000, max(min_steps, target_s / pred)))
                    if pred * steps * 2 + compile_s.get(key, 0.0) > 0.4 * left():
                        row[key] = {"skipped": "time budget"}
                        continue

                    def sgld(tt=tt, steps=steps):
                        return st.sample_sgld(tt, [1.0], key=jax.random.PRNGKey(1), num_chains=chains, step_size=eps,
                                              num_steps=steps, num_burnin=steps // 2, batch_size=batch,
                                              init=m.true_params, keep_params=False, progress=False)
                    first, warm, r = timed(sgld)
                    x = {"steps": steps, "first_s": first, "warm_s": warm, "steps_per_s": steps / warm,
                         "finite": float(np.isfinite(np.asarray(r["nll"].values)).mean())}
                    compile_s[key] = max(compile_s.get(key, 0.0), first - warm)
                    if fs:
                        s_per_flop[key] = warm / steps / fs
                        x["flops_per_s"] = fs * steps / warm
                    row[key] = x
                    print(f"  w = {w} (d = {d:,}) SGLD {prec}: {x['steps_per_s']:,.1f} steps/s", file=sys.stderr)
                lf = rows[-1]["nuts"].get("mean_leapfrogs", 2 ** nuts_depth) if rows and "nuts" in rows[-1] \
                    else 2 ** nuts_depth
                pred = s_per_flop.get("nuts", 0.0) * (fg or 0.0) * lf  # predicted seconds per NUTS step
                W = 50 if not pred else int(min(200, max(min_steps, target_s / pred / 2)))
                if pred * 2 * W * 2 + compile_s.get("nuts", 0.0) > 0.4 * left():
                    row["nuts"] = {"skipped": "time budget"}
                else:
                    def nuts(W=W):
                        return st.sample_nuts(t, [1.0], key=jax.random.PRNGKey(2), num_chains=chains, num_warmup=W,
                                              num_samples=W, max_tree_depth=nuts_depth, init=m.true_params,
                                              keep_params=False, keep_pointwise=False, progress=False)
                    first, warm, r = timed(nuts)
                    leap = float(np.mean(r["n_steps"].values))
                    x = {"warmup": W, "samples": W, "first_s": first, "warm_s": warm, "steps_per_s": 2 * W / warm,
                         "mean_leapfrogs": leap, "grads_per_s": 2 * W * leap / warm,
                         "finite": float(np.isfinite(np.asarray(r["nll"].values)).mean())}
                    compile_s["nuts"] = max(compile_s.get("nuts", 0.0), first - warm)
                    if fg:
                        s_per_flop["nuts"] = warm / (2 * W * leap) / fg
                        x["flops_per_s"] = fg * 2 * W * leap / warm  # warm-up tree sizes taken as the draws'
                    row["nuts"] = x
                    print(f"  w = {w} NUTS: {x['steps_per_s']:,.1f} steps/s, {leap:.1f} leapfrogs/step",
                          file=sys.stderr)
                row["memory"] = device_memory(dev)
        except Exception as err:
            row["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"
            stop = "out of memory" if is_oom(err) else "error"
            row["memory"] = device_memory(dev)
            rows.append(row)
            print(f"  w = {w}: {stop}: {row['error']}", file=sys.stderr)
            break
        rows.append(row)
        if all("skipped" in row.get(k, {}) for k in ("sgld_float32", "sgld_bfloat16", "nuts")):
            stop = "time budget"
            break
        if left() <= 0:
            stop = "time budget"
            break
    if peaks:
        for row in rows:
            for key, peak in (("sgld_float32", "fp32"), ("sgld_bfloat16", "bf16"), ("nuts", "fp32")):
                x = row.get(key, {})
                if "flops_per_s" in x:
                    x["roofline_fraction"] = x["flops_per_s"] / (peaks[peak] * 1e12)
                    if peak == "fp32":
                        x["roofline_fraction_tf32"] = x["flops_per_s"] / (peaks["tf32"] * 1e12)
    fitted = [r for r in rows if "error" not in r]
    return {"device_kind": dev.device_kind, "platform": dev.platform, "on_cpu_test": on_cpu, "peaks_key": peaks_name,
            "peaks_tflops": peaks, "n": n, "chains": chains, "batch_size": batch, "nuts_max_tree_depth": nuts_depth,
            "stopped_by": stop or "largest size tried", "largest_w": fitted[-1]["w"] if fitted else None,
            "largest_d": fitted[-1].get("d") if fitted else None, "rows": rows}


def print_gpu(res):
    print(f"\nGPU throughput vs d on {res['device_kind']}: deep_linear((w, w, w, w), 2), n = {res['n']}, "
          f"{res['chains']} chains at β = 1; SGLD B = {res['batch_size']}; NUTS full data, max_tree_depth "
          f"{res['nuts_max_tree_depth']}. Roofline: {res['peaks_key']} {res['peaks_tflops']} TFLOP/s; fraction = "
          "FLOPs per step (XLA cost_analysis of the vmapped gradient) × steps/s / peak (fp32 | tf32; bf16 rows: "
          f"bf16). Stopped by: {res['stopped_by']} (largest w that ran: {res['largest_w']}, d = {res['largest_d']}).")
    print(f"| w | d | sampler | steps/s ({res['chains']} chains in lockstep) | GFLOP per step | achieved TFLOP/s | "
          "fraction of peak (fp32 / tf32; bf16) | peak memory (GiB) |")
    print("|---:|---:|---|---:|---:|---:|---|---:|")
    for row in res["rows"]:
        mem = row.get("memory", {}).get("peak_bytes_in_use")
        mem_s = f"{mem / 2**30:.2f}" if mem else f"RSS {row.get('memory', {}).get('peak_rss_mib', 0):.0f} MiB"
        if "error" in row:
            print(f"| {row['w']} | {row.get('d', '–')} | – | {row['error'][:80]} | | | | {mem_s} |")
            continue
        for key, name, fkey in (("sgld_float32", "SGLD f32", "flops_sgld_step"),
                                ("sgld_bfloat16", "SGLD bf16 lik.", "flops_sgld_step"), ("nuts", "NUTS f32", None)):
            x = row.get(key, {})
            if "skipped" in x or not x:
                print(f"| {row['w']} | {row['d']:,} | {name} | skipped ({x.get('skipped', '')}) | | | | {mem_s} |")
                continue
            f = row[fkey] if fkey else (row["flops_grad_full"] or 0) * x["mean_leapfrogs"] or None
            frac = x.get("roofline_fraction")
            frac_s = "–" if frac is None else (f"{frac:.3f} / {x['roofline_fraction_tf32']:.3f}"
                                              if "roofline_fraction_tf32" in x else f"{frac:.3f}")
            extra = f" ({x['mean_leapfrogs']:.1f} leapfrogs)" if key == "nuts" else ""
            print(f"| {row['w']} | {row['d']:,} | {name} | {x['steps_per_s']:,.1f}{extra} | "
                  f"{(f or float('nan')) / 1e9:.3g} | {x.get('flops_per_s', float('nan')) / 1e12:.3g} | {frac_s} | "
                  f"{mem_s} |")


# ============================================================================ main
def header(info):
    print(" | ".join(str(v) for v in (info["platform"], info["cpu"], f"{info['cpus_usable']} usable CPUs",
                                     info["jax_backend"], f"jax {info['versions']['jax']}",
                                     f"load {info['load_avg_1_5_15']}")))


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker_main(json.loads(args.worker))
    info = machine_info()
    header(info)
    t_start, cpu0, load0 = time.perf_counter(), cpu_seconds(), load_avg()
    payload = {"benchmark": "scaling", "command": " ".join(sys.argv), "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "machine": info, "quick": args.quick}
    if args.gpu or args.gpu_on_cpu:
        payload["gpu"] = res = gpu_section(args)
        print_gpu(res)
        out = args.out or RESULTS_GPU
    else:
        if not args.skip_devices:
            payload["devices"] = res = devices_section(args)
            print_devices(res)
        if not args.skip_memory:
            payload["memory"] = res = memory_section(args)
            print_memory(res)
        if not args.skip_precision:
            payload["precision"] = res = precision_section(args)
            print_precision(res)
        out = args.out or RESULTS
    wall = time.perf_counter() - t_start
    payload.update(wall_s=wall, cpu_s=cpu_seconds() - cpu0, load_avg_start=load0, load_avg_end=load_avg())
    print(f"\ntotal {wall:.0f} s wall, {cpu_seconds() - cpu0:.0f} s CPU (this process; workers not counted); "
          f"load {load0} → {load_avg()}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, default=float))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
