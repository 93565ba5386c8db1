"""RLCT accuracy: λ̂ by every estimator against the exact λ for the zoo, at n = 1e3 and 1e4.

For each model with a known (λ, m) (from slt_thermo.exact) and each n, one dataset is simulated
from the true parameters and NUTS samples the tempered posterior on a 5-rung geometric ladder
around β = 1/log n (rungs 1/(2 log n) … 2/log n, so 1/log n and 2/log n are sampled). From the
same run: two-temperature (β0 = 1, 2), OLS over the 5 rungs, specific heat at 1/log n.

For m > 1 models, the Bayes free energy of the population potential (Target.population) is
computed by population annealing on the n-aware ladder st.ladder.ti(max n) at n = 1e3 … 1e7
and fitted with F_n = λ log n − (m − 1) log log n + c, freely and with the exact m held fixed.
Where the exact F_n is known (w1²w2²) the same fits of the exact values are reported beside:
they are the fit's own finite-n bias (the exact form has log(log n + c)).

Writes benchmarks/results/rlct_accuracy.json and .md, and prints the markdown table.

    python benchmarks/rlct_accuracy.py            # full (n = 1e3, 1e4)
    python benchmarks/rlct_accuracy.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import jax
import numpy as np
from _machine import machine_info

import slt_thermo as st
from slt_thermo import exact, models

CASES = {
    "monomial w^2": lambda: models.monomial(1),
    "monomial w^4": lambda: models.monomial(2),
    "monomial w1^2 w2^4": lambda: models.monomial((1, 2)),
    "monomial w1^2 w2^2 (m=2)": lambda: models.monomial((1, 1)),
    "linear_regression d=4": lambda: models.linear_regression(4),
    "reduced_rank(3,3,2,1)": lambda: models.reduced_rank(3, 3, 2, 1),
    "reduced_rank(4,4,3,1)": lambda: models.reduced_rank(4, 4, 3, 1),
    "deep_linear(2,2,2,2; r=0)": lambda: models.deep_linear((2, 2, 2, 2), 0),
    "tanh_net H=2": lambda: models.tanh_net(2),
    "gaussian_mixture (m=2)": lambda: models.gaussian_mixture(),
}
METHODS = ("two_temperature", "ols", "specific_heat")


def estimate_case(model, n, args, seed):
    data = model.simulate(jax.random.PRNGKey(seed), n)
    target = st.Target(model, data)
    run = st.sample_nuts(target, st.ladder.around_wbic(n, num=5, width=2.0), num_chains=args.chains,
                         num_warmup=args.warmup, num_samples=args.draws,
                         key=jax.random.PRNGKey(seed + 1), progress=False, keep_params=False,
                         max_tree_depth=args.max_tree_depth)
    out = {}
    for method in METHODS:
        est = st.rlct(run, method=method)
        out[method] = {"value": est.value, "stderr": est.stderr}
    out["wall_s"] = run.ds.attrs["wall_time_s"]
    out["max_rhat"] = float(run.summary()["nll_rhat"].max())
    out["divergences"] = int(run["diverging"].values.sum())
    out["mean_tree_depth"] = float(run["tree_depth"].values.mean())
    out["capped_fraction"] = float((run["tree_depth"].values >= args.max_tree_depth).mean())
    return out


EXACT_F = {"monomial w1^2 w2^2 (m=2)": lambda n: float(exact.normal_crossing_thermo(n, 1.0).F)}


def population_reference(model, n, num=2_000_000, min_ess=10_000, seed=0):
    """What each estimator converges to on the *population* potential at this n (no data noise,
    no Monte Carlo): E^β[nK] and Var^β[nK] on the 5 rungs by self-normalized importance
    sampling from ``num`` exact prior draws, then the estimators' own formulas. Separates the
    estimator's finite-n bias (pre-asymptotic corrections, e.g. tanh H = 2's local volume
    exponent is ≈ 0.48 at ε ~ 1e-3, not 2/3) from sampling error. None where the model has no
    prior sampler or the weights degenerate (ESS < ``min_ess``: regular models at large n)."""
    if not callable(getattr(model, "sample_prior", None)) or not callable(getattr(model, "kl", None)):
        return None
    keys = jax.random.split(jax.random.PRNGKey(seed), num)
    K = np.asarray(jax.jit(jax.vmap(lambda k: model.kl(model.sample_prior(k))))(keys), dtype=float)
    betas = st.ladder.around_wbic(n, num=5, width=2.0)
    E, V = [], []
    for b in betas:
        H = n * K
        logw = -b * (H - H.min())
        w = np.exp(logw)
        w /= w.sum()
        if 1 / np.sum(w**2) < min_ess:
            return None
        mu = float(np.sum(w * H))
        E.append(mu)
        V.append(float(np.sum(w * (H - mu) ** 2)))
    E, V = np.array(E), np.array(V)
    b1, b2 = betas[2], betas[4]  # 1/log n and 2/log n
    ols = np.polyfit(1 / betas, E, 1)[0]
    return {"two_temperature": float((E[2] - E[4]) / (1 / b1 - 1 / b2)), "ols": float(ols),
            "specific_heat": float(b1**2 * V[2])}


def combine_replicates(reps):
    """One dataset's λ̂ carries a random O(1/√(log n)) term (the data's fluctuation, not MC
    noise): with R > 1 datasets, report the mean over datasets and its standard error
    sd/√R, which contains both; the per-dataset results are kept."""
    if len(reps) == 1:
        return reps[0]
    out = {"replicates": reps, "wall_s": sum(r["wall_s"] for r in reps)}
    for m in METHODS:
        v = np.array([r[m]["value"] for r in reps])
        out[m] = {"value": float(v.mean()), "stderr": float(v.std(ddof=1) / np.sqrt(v.size)),
                  "dataset_sd": float(v.std(ddof=1)),
                  "mc_stderr_mean": float(np.mean([r[m]["stderr"] for r in reps]))}
    for k in ("max_rhat", "mean_tree_depth", "capped_fraction"):
        out[k] = float(max(r[k] for r in reps)) if k == "max_rhat" else float(np.mean([r[k] for r in reps]))
    out["divergences"] = int(sum(r["divergences"] for r in reps))
    return out


def fit_case(name, model, ns, args, seed):
    t0 = time.perf_counter()
    ds = st.free_energy_vs_n(lambda n: st.Target.population(model, n), ns, st.ladder.ti(max(ns), args.rungs),
                             key=jax.random.PRNGKey(seed), sampler=st.population_annealing,
                             num_particles=args.particles, num_runs=args.runs, progress=False)
    keys = ("lambda_hat", "lambda_se", "m_hat", "m_se", "fit_reduced_chi2")
    F, se = ds["F_n"].values, ds["F_se"].isel(beta=-1).values
    zeros = np.zeros(len(ns))
    out = {k: ds.attrs[k] for k in keys} | {
        "ns": list(map(int, ns)), "F_n": F.tolist(), "F_se": se.tolist(),
        "fixed_m": st.thermo.fit_free_energy(ns, F, se, zeros, m=int(model.multiplicity)),
        "wall_s": time.perf_counter() - t0}
    if name in EXACT_F:
        Fx = np.array([EXACT_F[name](n) for n in ns])
        out["F_exact"] = Fx.tolist()
        out["exact_fit"] = st.thermo.fit_free_energy(ns, Fx, se, zeros)
        out["exact_fixed_m"] = st.thermo.fit_free_energy(ns, Fx, se, zeros, m=int(model.multiplicity))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ns", default="1000,10000", help="comma-separated dataset sizes")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--draws", type=int, default=600)
    p.add_argument("--max-tree-depth", type=int, default=7,
                   help="NUTS depth cap: network posteriors have long scale-symmetry ridges where "
                        "trees reach depth 10 and, vmapped, every chain waits for the deepest")
    p.add_argument("--rungs", type=int, default=24, help="rungs of st.ladder.ti for the F-vs-n fit")
    p.add_argument("--particles", type=int, default=1000, help="PA particles per run (F-vs-n fit)")
    p.add_argument("--runs", type=int, default=4, help="independent PA runs (F-vs-n fit)")
    p.add_argument("--max-n-networks", type=int, default=1000,
                   help="largest n for reduced_rank/deep_linear (NUTS there took ~20 min at n = 1e4 "
                        "on 2 loaded cores)")
    p.add_argument("--fit-ns", default="1000,10000,100000,1000000,10000000",
                   help="sizes for the population F-vs-n fit (its cost does not grow with n)")
    p.add_argument("--replicates", type=int, default=1,
                   help="datasets per (model, n); > 1 reports the mean over datasets ± sd/√R")
    p.add_argument("--cases", default="", help="comma-separated substrings of case names, or one whole name (e.g. 'reduced_rank(4,4,3,1)')")
    p.add_argument("--quick", action="store_true", help="tiny settings, for a smoke run")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = p.parse_args(argv)
    if args.quick:
        args.ns, args.chains, args.warmup, args.draws, args.rungs = "300", 2, 100, 100, 6
        args.particles, args.runs = 100, 2
        args.fit_ns = "300,1000,3000"
    ns = [int(v) for v in args.ns.split(",")]
    fit_ns = [int(v) for v in args.fit_ns.split(",")]
    # case names hold commas ("reduced_rank(4,4,3,1)"): a whole name or substring matches as is
    whole = [c for c in CASES if args.cases and args.cases in c]
    wanted = whole or [c for c in CASES if not args.cases or any(s in c for s in args.cases.split(","))]

    warnings.simplefilter("ignore")
    results = {"machine": machine_info(), "settings": vars(args) | {"ladder": "around_wbic(n, 5, width=2)"},
               "cases": []}
    t0 = time.perf_counter()
    for i, name in enumerate(wanted):
        model = CASES[name]()
        lam, m = float(model.rlct), int(model.multiplicity)
        row = {"case": name, "lambda": lam, "lambda_exact": str(model.rlct), "m": m, "by_n": {}}
        is_network = isinstance(model, models.DeepLinear)
        for n in ns:
            if is_network and n > args.max_n_networks:
                continue  # NUTS on the scale-symmetry ridges of linear nets is slow at large n
            reps = [estimate_case(model, n, args, seed=1000 * i + n % 997 + 7919 * k)
                    for k in range(args.replicates)]
            row["by_n"][n] = combine_replicates(reps)
            ref = population_reference(model, n)
            row["by_n"][n]["population_reference"] = ref and ref | {"lambda": lam}
        if m > 1 and not is_network:
            row["fit"] = fit_case(name, model, fit_ns, args, seed=7 + i)
        results["cases"].append(row)
        results["total_wall_s"] = time.perf_counter() - t0
        write(results, ns, args.out)  # after every case: nothing lost if a long run stops
        print(f"[{time.perf_counter() - t0:7.1f}s] {name} done", flush=True)
    print(write(results, ns, args.out))
    print(f"machine: {results['machine']}")


def write(results, ns, out):
    md = to_markdown(results, ns)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "rlct_accuracy.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    with open(os.path.join(out, "rlct_accuracy.md"), "w") as f:
        f.write(md)
    return md


def _reference(r):
    ref = r.get("population_reference")
    if not ref:
        return "—"
    return " / ".join(f"{ref[m]:.3f}" for m in METHODS) + f" ({100 * (ref['two_temperature'] / ref['lambda'] - 1):+.0f}%)"


def to_markdown(results, ns):
    head = "| model | λ (m) | n | " + " | ".join(METHODS) + " | best rel. err | population finite-n value |\n"
    head += "|---|---|---|" + "---|" * (len(METHODS) + 2) + "\n"
    lines = []
    for row in results["cases"]:
        lam = row["lambda"]
        for n in ns:
            if n not in row["by_n"]:
                continue
            r = row["by_n"][n]
            cells, errs = [], []
            for m in METHODS:
                v, se = r[m]["value"], r[m]["stderr"]
                errs.append(abs(v - lam) / lam)
                cells.append(f"{v:.3f} ± {se:.3f} ({100 * (v - lam) / lam:+.1f}%)")
            reps = f" (mean of {len(r['replicates'])} datasets)" if "replicates" in r else ""
            lines.append(f"| {row['case']} | {row['lambda_exact']} ({row['m']}) | {n}{reps} | "
                         + " | ".join(cells) + f" | {100 * min(errs):.1f}% | {_reference(r)} |")
    fits = [r for r in results["cases"] if "fit" in r]
    text = head + "\n".join(lines) + "\n"
    if fits:
        text += "\nF-vs-n fit on the population potential, F_n = λ log n − (m−1) log log n + c:\n\n"
        text += ("| model | λ (m) | ns | λ̂ | m̂ | λ̂ (m fixed) | same fits of exact F_n | wall |\n"
                 "|---|---|---|---|---|---|---|---|\n")
        for r in fits:
            f, g = r["fit"], r["fit"]["fixed_m"]
            ref = "—"
            if "exact_fit" in f:
                e, ef = f["exact_fit"], f["exact_fixed_m"]
                ref = f"λ̂ {e['lambda_hat']:.3f}, m̂ {e['m_hat']:.2f}; fixed {ef['lambda_hat']:.3f}"
            text += (f"| {r['case']} | {r['lambda_exact']} ({r['m']}) | {f['ns'][0]}–{f['ns'][-1]} | "
                     f"{f['lambda_hat']:.3f} ± {f['lambda_se']:.3f} | {f['m_hat']:.2f} ± {f['m_se']:.2f} | "
                     f"{g['lambda_hat']:.3f} ± {g['lambda_se']:.3f} | {ref} | {f['wall_s']:.0f} s |\n")
    return text


if __name__ == "__main__":
    main()
