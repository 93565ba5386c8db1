"""Does population annealing's error bar cover its error? (issue 24, part 5)

Bayesian linear regressions with exact log Z (``models.linear_regression(d)``, n examples,
``model.exact_thermo``) at several dimensions d; ``--seeds`` independent single-run
``population_annealing`` calls per d (the library's defaults: adaptive ladder at weight ESS 0.5,
two HMC trajectories per rung, systematic resampling) with R particles. For every run it records
the error of log Ẑ against the exact log Z and three candidate error bars:

- ``within``: the reported one (``log_z_se`` of a single run): the delta method under perfect
  mixing, sqrt(Σ_l (1/ESS_l − 1/R));
- ``family``: sqrt((ρ_t − 1)/R), ρ_t = R Σ_j ν_j² over the final population's Eve families
  (ν_j: the weight descended from initial particle j; Chan & Lai 2013's form of the asymptotic
  variance, Wang, Machta & Katzgraber 2015's ρ_t ≈ ρ_f): it sees the genealogy collapse the delta
  method cannot;
- ``reported``: ``log_z_se``, what the library reports (since issue 24: the larger of the two).

``--fixed-sweeps`` turns off the sweeps' doubling (``anneal.MAX_SWEEP_FACTOR = 1``), as before
issue 24.

Per d it prints the bias (mean error ± its se over seeds), the spread of the errors, and each
candidate's coverage (fraction of runs with |error| ≤ 2 se) and its mean against the spread.
The goal of issue 24: coverage ≥ 90% and the bias within its error at every d.

    python benchmarks/pa_coverage.py                      # d = 5, 20, 50; 20 seeds; R = 512
    python benchmarks/pa_coverage.py --dims 5 --seeds 4   # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from _machine import load_avg, machine_info

RESULTS = Path(__file__).resolve().parent / "results" / "pa_coverage.json"
CANDIDATES = ("within", "family", "reported")


def run_dim(d: int, n: int, seeds: int, R: int, mcmc_steps: int) -> list[dict]:
    import jax

    import slt_thermo as st
    from slt_thermo import models

    m = models.linear_regression(d)
    data = m.simulate(jax.random.PRNGKey(1000 + d), n)
    target = st.Target(m, data)
    log_z = -float(m.exact_thermo(data, 1.0).F)
    rows = []
    for seed in range(seeds):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = st.population_annealing(target, num_particles=R, key=jax.random.PRNGKey(seed),
                                        mcmc_steps=mcmc_steps, progress=False)
        lz = r.log_z
        rho_t = float(r.rungs["rho_t"].values[0, -1])
        se = {"within": float(r.rungs["log_z_se_within"].values[-1]),
              "family": math.sqrt(max(rho_t - 1.0, 0.0) / R), "reported": lz.stderr}
        rows.append({"d": d, "n": n, "seed": seed, "R": R, "mcmc_steps": mcmc_steps, "log_z": lz.value,
                     "log_z_exact": log_z, "error": lz.value - log_z, "se": se, "rho_t": rho_t,
                     "families_eff": float(r.rungs["families_eff"].values[0, -1]),
                     "num_rungs": int(r.betas.size), "grad_evals": int(r.attrs["grad_evals"]),
                     "sweeps_last": int(r.rungs["sweeps"].values[0, -1]),
                     "acceptance_final": float(r.rungs["acceptance_rate"].values[0, -1]),
                     "wall_s": time.perf_counter() - t0})
        print(f"d={d} seed={seed}: error {rows[-1]['error']:+.3f}, se within {se['within']:.3f} "
              f"family {se['family']:.3f} (ρ_t {rho_t:.0f}), {rows[-1]['num_rungs']} rungs, "
              f"{rows[-1]['wall_s']:.0f} s", flush=True)
    return rows


def summary(rows: list[dict]) -> dict:
    out = {}
    for d in sorted({r["d"] for r in rows}):
        rs = [r for r in rows if r["d"] == d]
        err = np.array([r["error"] for r in rs])
        s = {"seeds": len(rs), "bias": float(err.mean()), "bias_se": float(err.std(ddof=1) / math.sqrt(len(rs))),
             "spread": float(err.std(ddof=1)), "rho_t_median": float(np.median([r["rho_t"] for r in rs]))}
        for c in CANDIDATES:
            se = np.array([r["se"][c] for r in rs])
            s[f"coverage_{c}"] = float(np.mean(np.abs(err) <= 2 * se))
            s[f"mean_se_{c}"] = float(se.mean())
        s["grad_evals_median"] = float(np.median([r["grad_evals"] for r in rs]))
        s["sweeps_last_median"] = float(np.median([r["sweeps_last"] for r in rs]))
        out[str(d)] = s
    return out


def print_summary(summ: dict) -> None:
    print(f"\n{'d':>3s} {'seeds':>5s} {'bias ± se':>16s} {'spread':>7s} {'ρ_t':>6s} {'sweeps':>6s} {'grads':>8s}  "
          + "  ".join(f"{c + ': cover, se':>20s}" for c in CANDIDATES))
    for d, s in summ.items():
        print(f"{d:>3s} {s['seeds']:5d} {s['bias']:+8.3f} ± {s['bias_se']:.3f} {s['spread']:7.3f} "
              f"{s['rho_t_median']:6.0f} {s['sweeps_last_median']:6.0f} {s['grad_evals_median']:8.3g}  " + "  ".join(
                  f"{s[f'coverage_{c}']:>12.0%}, {s[f'mean_se_{c}']:.3f}" for c in CANDIDATES))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dims", type=int, nargs="+", default=[5, 20, 50])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--particles", type=int, default=512)
    p.add_argument("--mcmc-steps", type=int, default=2)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--fixed-sweeps", action="store_true", help="no doubling of the sweeps (before issue 24)")
    p.add_argument("--json", type=Path, default=RESULTS)
    p.add_argument("--from-json", type=Path, default=None, help="re-print saved results; runs nothing")
    args = p.parse_args(argv)
    if args.from_json:
        print_summary(summary(json.loads(args.from_json.read_text())["rows"]))
        return 0
    if args.fixed_sweeps:
        from slt_thermo.samplers.population import anneal

        anneal.MAX_SWEEP_FACTOR = 1
    rows = []
    partial = Path(str(args.json) + ".partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    for d in args.dims:
        rows += run_dim(d, args.n, args.seeds, args.particles, args.mcmc_steps)
        partial.write_text(json.dumps({"argv": sys.argv, "rows": rows}))
    summ = summary(rows)
    print_summary(summ)
    args.json.write_text(json.dumps({"machine": machine_info(), "load_avg": load_avg(), "argv": sys.argv,
                                     "rows": rows, "summary": summ}, indent=1))
    partial.unlink(missing_ok=True)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
