"""SGD runs through ``st.sgd.sgd_trajectory`` against the plain optax loops a user writes, and
the cost of ``st.metrics`` against the number of points N.

    python benchmarks/sgd_vs_samplers.py [--quick] [--steps T] [--out PATH] [--skip-sgd] [--skip-metrics]

1. **SGD throughput** (issue 16): ``optax.sgd(η)`` on ``linear_regression(d=10)`` (10 parameters) and ``deep_linear((10, 10, 10, 10), 4)``
   (300 parameters), n = 10,000, batch B ∈ {32, 128}, R ∈ {1, 8, 64} runs of T steps, every run
   starting from its own point near the true parameters (the same points for every contender) and
   drawing minibatch indices with ``jax.random.randint`` (with replacement, as the library does):

   - ``st``: ``st.sgd.sgd_trajectory(..., num_runs=R, record_every=T)`` (one recorded draw per
     run, so the full-data nL_n that the driver evaluates at every recorded draw, about n/B
     minibatch forwards, is paid once); a separate table gives ``record_every`` ∈ {1, 10, 100, T}
     at R = 8, B = 32;
   - ``loop``: the loop a user writes: one ``jax.jit``-compiled step (``value_and_grad`` of the
     minibatch mean of −``model.log_likelihood``, the key split inside the step) called from a
     Python ``for`` loop, one run after another (R runs = R loops; min(T, 500) steps per run:
     the loop's rate does not depend on T);
   - ``scan``: the same step inside one jitted ``jax.lax.scan`` over T steps (recording the
     minibatch loss), called once per run: the best a careful user does without ``vmap``;
   - ``vmap``: ``jax.jit(jax.vmap(scan))`` over the R runs by hand: no driver, no recording: the
     ceiling of what the driver can reach on this machine.

   - ``st call overhead``: the same ``st`` call with T = 1 (validation, initial states, the
     full-data nL_n of the one draw, building the Samples): the fixed cost of a call.

   Throughput = R × T / wall (SGD steps/s, all runs together), warm: best of ``--reps`` calls
   (the loop and the recording table: ``--reps`` − 1, at least 1) after a first call whose extra
   time is reported as compile time. Ratios are ``st`` over each
   peer measured in the same run.

2. **Metric cost vs N**: ``mmd2_u`` (median heuristic), ``energy_distance``, ``sliced_w2`` (256
   projections), ``ksd_imq`` (scores of N(0, I) given as an array) on x ~ N(0, I₁₀), y ~ N(0.1,
   I₁₀) with N points each, N ∈ {500, 2000, 8000} (``--quick``: 500, 2000); and the permutation
   test of the two-sample ones (100 permutations). Warm wall time (each N compiles anew; the first
   call is not counted). Memory: only the process's peak RSS (``resource.getrusage`` maxrss, a
   high-water mark, so a row shows growth only when it sets a new peak); XLA's buffers are not
   seen by tracemalloc.

Prints the tables and writes ``benchmarks/results/sgd_vs_samplers.json``. Not a timed test: run it
by hand, on an otherwise idle machine if you can (the figures in benchmarks/README.md were not).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _machine import cpu_seconds, load_avg, machine_info

import slt_thermo as st
from slt_thermo import models

RESULTS = Path(__file__).resolve().parent / "results" / "sgd_vs_samplers.json"

MODELS = {  # name: (factory, learning rate)
    "linear_regression(d=10)": (lambda: models.linear_regression(d=10), 1e-2),
    "deep_linear((10,10,10,10), 4)": (lambda: models.deep_linear((10, 10, 10, 10), 4, sigma=2 ** -0.5), 1e-4),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: T = 300, R ∈ {1, 8}, B = 32 only, metrics up to N = 2000")
    p.add_argument("--n", type=int, default=10_000, help="examples (default 10,000)")
    p.add_argument("--steps", type=int, default=None, help="SGD steps per run T (default 2000; quick 300)")
    p.add_argument("--loop-steps", type=int, default=500,
                   help="cap on the Python loop's steps per run (default 500)")
    p.add_argument("--reps", type=int, default=2, help="warm calls per timing, best kept (default 2)")
    p.add_argument("--skip-sgd", action="store_true")
    p.add_argument("--skip-metrics", action="store_true")
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def timed(fn, reps):
    """(first call's seconds, best warm seconds, last result): the difference is the compile (and first-touch) cost."""
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return first, best, out


def maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ============================================================================ 1. SGD throughput
def setup(name, n, seed=0):
    factory, lr = MODELS[name]
    m = factory()
    data = m.simulate(jax.random.PRNGKey(100 + seed), n)
    return m, data, st.Target(m, data), lr


def inits(m, R, seed=1):
    """R starting points: the true parameters plus N(0, 0.1²) on every entry, leading axis R."""
    keys = jax.random.split(jax.random.PRNGKey(seed), R)
    leaves, treedef = jax.tree_util.tree_flatten(jax.tree_util.tree_map(jnp.asarray, m.true_params))
    out = [a[None] + 0.1 * jax.vmap(lambda k, a=a, i=i: jax.random.normal(jax.random.fold_in(k, i), a.shape))(keys)
           for i, a in enumerate(leaves)]
    return jax.tree_util.tree_unflatten(treedef, out)


def user_step(m, data, tx, B):
    """The per-run step a user writes: minibatch mean NLL from the model's log_likelihood."""
    X, Y = data["x"], data["y"]
    n = X.shape[0]

    def loss(p, idx):
        return -jnp.mean(m.log_likelihood(p, {"x": X[idx], "y": Y[idx]}))

    def step(p, s, key):
        key, sub = jax.random.split(key)
        idx = jax.random.randint(sub, (B,), 0, n)
        val, g = jax.value_and_grad(loss)(p, idx)
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s, key, val

    return step


def sgd_row(name, B, R, T, args):
    m, data, target, lr = setup(name, args.n)
    tx = optax.sgd(lr)
    P0 = inits(m, R)
    run0 = lambda r: jax.tree_util.tree_map(lambda a: a[r], P0)
    keys = jax.random.split(jax.random.PRNGKey(7), R)
    step = user_step(m, data, tx, B)
    row = {"model": name, "d": int(sum(np.size(a) for a in jax.tree_util.tree_leaves(m.true_params))),
           "B": B, "R": R, "T": T, "lr": lr}

    # st: the library, one recorded draw per run
    def ours(rec=T, steps=T):
        return st.sgd.sgd_trajectory(target, tx, num_steps=steps, batch_size=B, key=jax.random.PRNGKey(3),
                                     num_runs=R, init=P0, record_every=rec, progress=False).ds["nll"].values
    first, warm, nll = timed(ours, args.reps)
    row["st"] = {"first_s": first, "warm_s": warm, "compile_s": first - warm, "steps_per_s": R * T / warm}
    row["st_finite"] = bool(np.all(np.isfinite(nll)))
    # the same call for one step: what a call costs besides the steps (setup, init, Samples)
    row["st_call_overhead_s"] = timed(lambda: ours(1, 1), args.reps)[1]

    # scan: one jitted lax.scan per run, runs one after another
    @jax.jit
    def train(p, key):
        def body(c, _):
            p, s, key, val = step(*c)
            return (p, s, key), val
        (p, _, _), losses = jax.lax.scan(body, (p, tx.init(p), key), None, length=T)
        return p, losses

    def scan_all():
        return [train(run0(r), keys[r]) for r in range(R)]
    first, warm, out = timed(scan_all, args.reps)
    row["scan"] = {"first_s": first, "warm_s": warm, "compile_s": first - warm, "steps_per_s": R * T / warm}
    row["scan_finite"] = bool(all(np.all(np.isfinite(np.asarray(losses))) for _, losses in out))

    # vmap: the scan vmapped over runs by hand (no driver, no recording)
    vtrain = jax.jit(jax.vmap(train))
    first, warm, _ = timed(lambda: vtrain(P0, keys), args.reps)
    row["vmap"] = {"first_s": first, "warm_s": warm, "compile_s": first - warm, "steps_per_s": R * T / warm}

    # loop: a jitted step in a Python for-loop, one run after another
    jstep = jax.jit(step)
    TL = min(T, args.loop_steps)

    def loop_all():
        out = []
        for r in range(R):
            p, s, key = run0(r), tx.init(run0(r)), keys[r]
            for _ in range(TL):
                p, s, key, val = jstep(p, s, key)
            out.append(jax.block_until_ready(p))
        return out
    first, warm, _ = timed(loop_all, max(1, args.reps - 1))
    row["loop"] = {"first_s": first, "warm_s": warm, "compile_s": first - warm, "steps_per_s": R * TL / warm,
                   "steps_per_run": TL}
    for peer in ("loop", "scan", "vmap"):
        row[f"st_over_{peer}"] = row["st"]["steps_per_s"] / row[peer]["steps_per_s"]
    return row


def record_rows(name, T, args, B=32, R=8):
    """st at R = 8, B = 32 with record_every ∈ {1, 10, 100, T}: what recording costs."""
    m, data, target, lr = setup(name, args.n)
    tx = optax.sgd(lr)
    P0 = inits(m, R)
    rows = []
    for rec in sorted({1, 10, 100, T}):
        if rec > T:
            continue
        fn = lambda: st.sgd.sgd_trajectory(target, tx, num_steps=T, batch_size=B, key=jax.random.PRNGKey(3),
                                           num_runs=R, init=P0, record_every=rec, progress=False).ds["nll"].values
        first, warm, _ = timed(fn, max(1, args.reps - 1))
        rows.append({"model": name, "B": B, "R": R, "T": T, "record_every": rec, "draws": T // rec,
                     "first_s": first, "warm_s": warm, "steps_per_s": R * T / warm})
    for r in rows:
        r["relative_to_record_every_T"] = r["steps_per_s"] / rows[-1]["steps_per_s"]
    return rows


def print_sgd(rows, rec_rows, n):
    print(f"\nSGD steps/s (R runs × T steps / warm wall), optax.sgd, n = {n}; st/peer = ratio of steps/s")
    print("| model | B | R | T | st | loop | scan | vmap by hand | st/loop | st/scan | st/vmap | "
          "st call overhead (ms) | compile s: st / scan / vmap |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        sps = lambda k: f"{r[k]['steps_per_s']:,.0f}"
        print(f"| {r['model']} | {r['B']} | {r['R']} | {r['T']} | {sps('st')} | {sps('loop')} | {sps('scan')} | "
              f"{sps('vmap')} | {r['st_over_loop']:.1f}× | {r['st_over_scan']:.2f}× | {r['st_over_vmap']:.2f}× | "
              f"{1e3 * r['st_call_overhead_s']:.0f} | "
              f"{r['st']['compile_s']:.1f} / {r['scan']['compile_s']:.1f} / {r['vmap']['compile_s']:.1f} |")
    if rec_rows:
        print("\nst with recording: R = 8, B = 32 (each recorded draw evaluates the full-data nL_n)")
        print("| model | T | record_every | draws | steps/s | vs record_every = T |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in rec_rows:
            print(f"| {r['model']} | {r['T']} | {r['record_every']} | {r['draws']} | {r['steps_per_s']:,.0f} | "
                  f"{r['relative_to_record_every_T']:.2f} |")


# ============================================================================ 2. metrics vs N
def metric_rows(Ns, reps):
    rng = np.random.default_rng(0)
    rows = []
    for N in Ns:
        x = rng.normal(size=(N, 10))
        y = rng.normal(size=(N, 10)) + 0.1
        score = -x  # N(0, I)
        k = jax.random.PRNGKey(1)
        calls = [
            ("mmd2_u", lambda: st.metrics.mmd2_u(x, y)),
            ("energy_distance", lambda: st.metrics.energy_distance(x, y)),
            ("sliced_w2", lambda: st.metrics.sliced_w2(x, y, key=k)),
            ("ksd_imq", lambda: st.metrics.ksd_imq(x, score)),
            ("mmd2_u + 100 perms", lambda: st.metrics.mmd2_u(x, y, num_permutations=100, key=k)),
            ("energy_distance + 100 perms", lambda: st.metrics.energy_distance(x, y, num_permutations=100, key=k)),
        ]
        for name, fn in calls:
            before = maxrss_mb()
            first, warm, _ = timed(fn, reps if N <= 2000 else 1)
            rows.append({"metric": name, "N": N, "first_s": first, "warm_s": warm,
                         "maxrss_mb": maxrss_mb(), "maxrss_delta_mb": maxrss_mb() - before})
            print(f"  {name} N = {N}: {warm:.3f} s", file=sys.stderr)
    return rows


def print_metrics(rows):
    Ns = sorted({r["N"] for r in rows})
    names = list(dict.fromkeys(r["metric"] for r in rows))
    get = {(r["metric"], r["N"]): r for r in rows}
    print("\nMetric wall time, warm (s), d = 10, N points in each sample; last column: time ratio between the "
          "two largest N")
    print("| metric | " + " | ".join(f"N = {N}" for N in Ns) + f" | ×{Ns[-1] // Ns[-2]} N → time × |")
    print("|---|" + "---:|" * (len(Ns) + 1))
    for name in names:
        t = [get[(name, N)]["warm_s"] for N in Ns]
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in t) + f" | {t[-1] / t[-2]:.1f} |")
    print("\nPermutation test (100 permutations) / plain call, same N")
    for base in ("mmd2_u", "energy_distance"):
        print(f"  {base}: " + ", ".join(
            f"N = {N}: {get[(base + ' + 100 perms', N)]['warm_s'] / get[(base, N)]['warm_s']:.1f}×" for N in Ns))
    print("\nPeak RSS (MiB, process high-water mark after each call; Δ = growth of the peak during it)")
    print("| metric | " + " | ".join(f"N = {N}" for N in Ns) + " |")
    print("|---|" + "---:|" * len(Ns))
    for name in names:
        print(f"| {name} | " + " | ".join(
            f"{get[(name, N)]['maxrss_mb']:.0f} (Δ{get[(name, N)]['maxrss_delta_mb']:.0f})" for N in Ns) + " |")


# ============================================================================ main
def main(argv=None):
    args = parse_args(argv)
    T = args.steps or (300 if args.quick else 2000)
    batches = (32,) if args.quick else (32, 128)
    runs = (1, 8) if args.quick else (1, 8, 64)
    Ns = (500, 2000) if args.quick else (500, 2000, 8000)
    info = machine_info()
    print(" | ".join(str(v) for v in (info["platform"], info["cpu"], f"{info['cpus_usable']} usable CPUs",
                                     info["jax_backend"], f"jax {info['versions']['jax']}",
                                     f"load {info['load_avg_1_5_15']}")))
    t_start, cpu0, load0 = time.perf_counter(), cpu_seconds(), load_avg()
    rows, rec_rows, mrows = [], [], []
    if not args.skip_sgd:
        for name in MODELS:
            for B in batches:
                for R in runs:
                    rows.append(sgd_row(name, B, R, T, args))
                    r = rows[-1]
                    print(f"{name} B={B} R={R}: st {r['st']['steps_per_s']:,.0f} steps/s, "
                          f"st/loop {r['st_over_loop']:.1f}×, st/scan {r['st_over_scan']:.2f}×", file=sys.stderr)
            rec_rows += record_rows(name, min(T, 500), args)
        print_sgd(rows, rec_rows, args.n)
    if not args.skip_metrics:
        mrows = metric_rows(Ns, args.reps)
        print_metrics(mrows)
    wall = time.perf_counter() - t_start
    print(f"\ntotal {wall:.0f} s wall, {cpu_seconds() - cpu0:.0f} s CPU; load {load0} → {load_avg()}")
    payload = {"benchmark": "sgd_vs_samplers", "command": " ".join(sys.argv),
               "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": info,
               "settings": {"n": args.n, "T": T, "loop_steps": args.loop_steps, "reps": args.reps,
                            "batches": list(batches), "runs": list(runs), "Ns": list(Ns), "quick": args.quick},
               "wall_s": wall, "load_avg_start": load0, "load_avg_end": load_avg(),
               "sgd": rows, "recording": rec_rows, "metrics": mrows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2, default=float))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
