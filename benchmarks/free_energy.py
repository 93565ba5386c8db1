"""Free energy F_n = −log Z(1): TI vs population annealing vs AIS vs the exact value.

Problems (both with exact F):

- ``linear_regression`` (d = 10, n = 1000): conjugate Gaussian, F from ``model.exact_thermo``;
- ``normal_crossing``: ``Target.population(models.monomial((1, 1)), n = 1000)``, K = w1²w2²
  (singular, λ = 1/2, m = 2), uniform prior on [−1, 1]², F from
  ``exact.normal_crossing_thermo(n, 1).F`` (the [0, 1]² closed form; the same by symmetry).

Methods, each at several budgets of gradient evaluations (∇ log p^β, the unit of work):

- ``TI``: ``st.sample_nuts`` on the (i/16)^5 ladder (17 rungs, β = 0 included), 4 chains, then
  ``st.free_energy`` (corrected trapezoid). Error bar: the Monte Carlo error ⊕ the estimated
  discretization error. Gradient count: the leapfrog steps of the recorded draws plus
  num_warmup × (mean tree size of the draws) for the warmup, which is not recorded (≈).
- ``PA``: ``population_annealing`` with population-tuned HMC (adaptive ladder, weight ESS 0.9,
  one trajectory per rung), 8 independent runs combined by Machta's weighted average; error bar
  from the spread of the runs. The population size is set from a small pilot run to hit the
  budget. Gradient count exact.
- ``AIS``: ``ais`` with the same kernel on the ladder of the PA pilot run, 8 runs; error bar from
  the spread of the runs. Gradient count exact.

Reported per (problem, method, budget): F̂, its error bar, the error F̂ − F, z = error / error bar,
gradient evaluations and wall time; the headline question is whether |error| ≤ 0.05 nats within
1e6 gradient evaluations, with calibrated error bars (|z| mostly ≤ 2). Prints a table, the machine
(platform, cores, JAX backend) and the load average, and writes
``benchmarks/results/free_energy.json``::

    python benchmarks/free_energy.py            # budgets 1e5 … 3e6 (≈ 20 minutes on 2 busy cores)
    python benchmarks/free_energy.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from _machine import load_avg, machine_info

import slt_thermo as st
from slt_thermo import exact, models
from slt_thermo.samplers.population import ais, population_annealing

RESULTS = Path(__file__).resolve().parent / "results" / "free_energy.json"
NUM_RUNS = 8
PA_SETTINGS = {"mcmc": "hmc", "mcmc_steps": 1, "target_ess": 0.9}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budgets", type=float, nargs="+", default=[1e5, 3e5, 1e6, 3e6],
                   help="gradient-evaluation budgets (default 1e5 3e5 1e6 3e6)")
    p.add_argument("--headline", type=float, default=1e6,
                   help="budget of the |error| <= 0.05 question, repeated for calibration (default 1e6)")
    p.add_argument("--n", type=int, default=1000, help="examples (default 1000)")
    p.add_argument("--d", type=int, default=10, help="regression dimension (default 10)")
    p.add_argument("--repeats", type=int, default=3,
                   help="extra PA seeds at the headline budget, for calibration (default 3)")
    p.add_argument("--methods", nargs="+", default=["TI", "PA", "AIS"])
    p.add_argument("--problems", nargs="+", default=["linear_regression", "normal_crossing"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smoke run: budgets 3e4 1e5, no repeats")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    if a.quick:
        a.budgets, a.repeats, a.headline = [3e4, 1e5], 0, 1e5
    return a


# ----------------------------------------------------------------------------- machine
# ----------------------------------------------------------------------------- problems
def problems(args):
    out = {}
    if "linear_regression" in args.problems:
        m = models.linear_regression(args.d)
        data = m.simulate(jax.random.PRNGKey(args.seed), args.n)
        out["linear_regression"] = {
            "target": st.Target(m, data), "F": float(m.exact_thermo(data, 1.0).F), "init": None,
            "label": f"linear_regression(d={args.d}), n={args.n}"}
    if "normal_crossing" in args.problems:
        target = st.Target.population(models.monomial((1, 1)), args.n)

        def init(key, M, R):  # exact prior draws: uniform on [−1, 1]²
            return {"w": jax.random.uniform(key, (M, R, 2), minval=-1.0, maxval=1.0)}

        out["normal_crossing"] = {
            "target": target, "F": float(exact.normal_crossing_thermo(args.n, 1.0).F), "init": init,
            "label": f"monomial((1,1)) population, n={args.n}"}
    return out


# ----------------------------------------------------------------------------- methods
def _row(method, prob, F_hat, se, grads, wall, **extra):
    err = F_hat - prob["F"]
    return dict(method=method, F_hat=F_hat, stderr=se, F_exact=prob["F"], error=err,
                z=err / se if se > 0 else float("nan"), grad_evals=int(grads), wall_s=wall,
                load_avg=load_avg(), **extra)


def pa_pilot(prob, key):
    """A small PA run: gradient evaluations per particle, and its adaptive ladder."""
    R0 = 128
    init = prob["init"](jax.random.fold_in(key, 1), NUM_RUNS, R0) if prob["init"] else None
    r = population_annealing(prob["target"], num_particles=R0, num_runs=NUM_RUNS, key=key,
                             init_particles=init, progress=False, **PA_SETTINGS)
    return r.attrs["grad_evals"] / (NUM_RUNS * R0), r.betas


def run_pa(prob, budget, key, per_particle):
    R = max(16, int(budget / (NUM_RUNS * per_particle)))
    init = prob["init"](jax.random.fold_in(key, 1), NUM_RUNS, R) if prob["init"] else None
    t = time.perf_counter()
    r = population_annealing(prob["target"], num_particles=R, num_runs=NUM_RUNS, key=key,
                             init_particles=init, progress=False, **PA_SETTINGS)
    wall = time.perf_counter() - t
    F = r.free_energy
    return _row("PA", prob, F.value, F.stderr, r.attrs["grad_evals"], wall, num_particles=R,
                num_runs=NUM_RUNS, num_rungs=int(r.betas.size), stderr_within=F.details["stderr_within"],
                rho_f_runs=r.attrs.get("rho_f_runs"), rho_f_delta=r.attrs["rho_f_delta"],
                rho_t=r.attrs["rho_t"], acceptance_final=float(r.rungs["acceptance_rate"].values[:, -1].mean()))


def run_ais(prob, budget, key, ladder, per_chain):
    N = max(16, int(budget / (NUM_RUNS * per_chain)))
    init = prob["init"](jax.random.fold_in(key, 1), NUM_RUNS, N) if prob["init"] else None
    t = time.perf_counter()
    r = ais(prob["target"], betas=ladder, num_chains=N, num_runs=NUM_RUNS, key=key, init_particles=init,
            mcmc="hmc", mcmc_steps=PA_SETTINGS["mcmc_steps"], progress=False)
    wall = time.perf_counter() - t
    F = r.free_energy
    ess = r.rungs["ess_frac"].values[:, -1]
    return _row("AIS", prob, F.value, F.stderr, r.attrs["grad_evals"], wall, num_chains=N,
                num_runs=NUM_RUNS, num_rungs=int(ladder.size), stderr_within=F.details["stderr_within"],
                final_ess_frac=float(np.mean(ess)))


def ti_pilot(prob, key):
    run = st.sample_nuts(prob["target"], st.ladder.power(16), num_chains=4, num_warmup=100,
                         num_samples=50, key=key, progress=False, keep_params=False,
                         init=_ti_init(prob, key))
    return float(run["n_steps"].values.mean())


def _ti_init(prob, key):
    if prob["init"] is None:
        return None
    w = prob["init"](key, 17, 4)["w"]  # (beta, chain, 2) prior draws as starting points
    return {"w": jnp.clip(w, -0.9, 0.9)}


def run_ti(prob, budget, key, steps_per_draw):
    chains, rungs = 4, 17
    per_draw = chains * rungs * steps_per_draw
    warmup = 200
    samples = int(budget / per_draw) - warmup
    if samples < 50:
        return None
    t = time.perf_counter()
    run = st.sample_nuts(prob["target"], st.ladder.power(16), num_chains=chains, num_warmup=warmup,
                         num_samples=samples, key=key, progress=False, keep_params=False,
                         init=_ti_init(prob, key))
    wall = time.perf_counter() - t
    F = st.free_energy(run)
    ns = run["n_steps"].values  # (beta, chain, draw), sampling only
    grads = float(ns.sum() + warmup * ns.mean(axis=2).sum())
    disc = float(F.details["discretization_error"])
    se = math.hypot(F.stderr, disc)
    return _row("TI", prob, F.value, se, grads, wall, num_samples=samples, num_warmup=warmup,
                num_chains=chains, num_rungs=rungs, stderr_mc=F.stderr, discretization_error=disc,
                grad_evals_note="warmup estimated as num_warmup × mean tree size")


# ----------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    info = machine_info()
    print(f"machine: {info['platform']} | {info['cpu']} | {info['cpu_count']} CPUs "
          f"({info['cpus_usable']} usable) | jax {info['versions']['jax']} backend={info['jax_backend']} "
          f"| load avg {load_avg()}")
    key = jax.random.PRNGKey(args.seed + 1)
    rows = []
    t_all = time.perf_counter()
    for ip, (pname, prob) in enumerate(problems(args).items()):
        print(f"\n{prob['label']}: exact F = {prob['F']:.6f}")
        kp = jax.random.fold_in(key, ip)
        if "PA" in args.methods or "AIS" in args.methods:
            per_particle, ladder = pa_pilot(prob, jax.random.fold_in(kp, 0))
            print(f"  PA pilot: {ladder.size} rungs, {per_particle:.1f} gradients per particle")
        if "TI" in args.methods:
            steps_per_draw = ti_pilot(prob, jax.random.fold_in(kp, 1))
        for i, budget in enumerate(args.budgets):
            kb = jax.random.fold_in(kp, 100 + i)
            for method in args.methods:
                if method == "TI":
                    row = run_ti(prob, budget, jax.random.fold_in(kb, 1), steps_per_draw)
                elif method == "PA":
                    row = run_pa(prob, budget, jax.random.fold_in(kb, 2), per_particle)
                else:
                    row = run_ais(prob, budget, jax.random.fold_in(kb, 3), ladder, per_particle)
                if row is None:
                    print(f"  {method:4s} budget {budget:.0e}: too small for the warmup, skipped")
                    continue
                row.update(problem=pname, budget=budget)
                rows.append(row)
                print(f"  {method:4s} budget {budget:8.0e}  F = {row['F_hat']:12.5f} ± {row['stderr']:.4f}"
                      f"  error {row['error']:+.4f}  z {row['z']:+.2f}  grads {row['grad_evals']:.3g}"
                      f"  {row['wall_s']:.1f}s", flush=True)
        if "PA" in args.methods:
            for rep in range(args.repeats):
                row = run_pa(prob, args.headline, jax.random.fold_in(kp, 1000 + rep), per_particle)
                row.update(problem=pname, budget=args.headline, repeat=rep + 1)
                rows.append(row)
                print(f"  PA   budget {args.headline:8.0e}  F = {row['F_hat']:12.5f} ± {row['stderr']:.4f}"
                      f"  error {row['error']:+.4f}  z {row['z']:+.2f}  grads {row['grad_evals']:.3g}"
                      f"  {row['wall_s']:.1f}s  (repeat {rep + 1})", flush=True)
    total = time.perf_counter() - t_all

    print("\n| problem | method | budget | grad evals | F̂ | ± | error | z | |error| ≤ 0.05 | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        tag = f" (rep {r['repeat']})" if "repeat" in r else ""
        print(f"| {r['problem']} | {r['method']}{tag} | {r['budget']:.0e} | {r['grad_evals']:.3g} | "
              f"{r['F_hat']:.4f} | {r['stderr']:.4f} | {r['error']:+.4f} | {r['z']:+.2f} | "
              f"{'yes' if abs(r['error']) <= 0.05 else 'no'} | {r['wall_s']:.1f} |")
    head = {}
    for r in rows:
        if r["budget"] == args.headline:
            head.setdefault(f"{r['problem']}/{r['method']}", []).append(abs(r["error"]))
    print(f"\nheadline (budget {args.headline:.0e}): max |error| per problem/method: "
          + ", ".join(f"{k} {max(v):.3f} ({'≤' if max(v) <= 0.05 else '>'} 0.05, {len(v)} run(s))"
                      for k, v in head.items()))
    zs = np.array([r["z"] for r in rows if np.isfinite(r["z"])])
    summary = {"num_estimates": int(zs.size), "frac_abs_z_le_2": float(np.mean(np.abs(zs) <= 2)),
               "rms_z": float(np.sqrt(np.mean(zs**2))) if zs.size else None}
    print(f"\ncalibration: {summary['frac_abs_z_le_2']:.0%} of {zs.size} estimates within 2 error bars, "
          f"rms z = {summary['rms_z']:.2f}")
    print(f"total wall time {total:.0f}s, load avg {load_avg()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": info, "load_avg_end": load_avg(), "total_wall_s": total,
               "settings": {"budgets": args.budgets, "n": args.n, "d": args.d, "num_runs": NUM_RUNS,
                            "pa": PA_SETTINGS, "seed": args.seed},
               "calibration": summary, "headline": {"budget": args.headline, "max_abs_error": {
                   k: max(v) for k, v in head.items()}}, "rows": rows}
    args.out.write_text(json.dumps(payload, indent=2, default=float))
    print(f"wrote {args.out}")
    return payload


if __name__ == "__main__":
    main()
