"""TherML's σ-ladder on the full model: NUTS vs SGLD vs population annealing (issue 15).

Workload: Alemi & Fischer's Appendix B toy (``therml.toy(50)``, n = 50 training examples) and the
full encoder/decoder/classifier model (``therml.Model(prior_scale=3.0)``, 154 parameters), the σS
posterior ``therml.posterior`` on the ladder ``therml.betas(sigmas, ti_rungs=8)`` (β = 0, eight
TI rungs below 1/σ_max, then β = 1/σ; default σ ∈ {1, 2, 4}: 12 rungs). Every sampler covers the
whole ladder in one call, twice: at (ρ, δ, γ) = (1, 1, 1) ("a") and at the neighbour γ = 1.05
("b", ``target.with_hyper``; the multipliers are traced, so "b" reuses "a"'s compiled program).

Per sampler and σ: ⟨H⟩ ± se (H = ρR + δD + γC = ``nll``), the ESS of H, ESS/s, R-hat, and the
first-law residual ρ̄ΔR + δ̄ΔD + γ̄ΔC + σΔS between "a" and "b" ± se and z (it vanishes to second
order in the step: |z| ≲ 3 is what a healthy run gives).

- NUTS: ``st.sample_nuts`` (diagonal mass, target accept 0.8, ``--nuts-depth``: every (β, chain)
  pair runs in lockstep in one vmapped program, so a step costs the largest tree of the batch, and
  the default depth 10 made one step cost ~470 leapfrogs here: see the printed lockstep
  efficiency). ESS: ArviZ bulk ESS of H over the healthy chains; R-hat: ArviZ rank-normalized
  split R-hat. First law: ``therml.first_law`` (log Z by TI over the ladder).
- SGLD: ``st.sample_sgld`` with the RMSprop preconditioner adapted in the burn-in and then held
  fixed (so the draws target p^β up to O(ε)), minibatches of ``--sgld-batch`` (with replacement),
  full-data H recorded every ``--sgld-every`` steps. One ε serves all β of a call (it is a
  compile-time constant, so an ε per β would mean a compile per β); RMSprop's G ≈ 1/√curvature is
  adapted per (β, chain), which is what lets one ε serve β from 0 to 1. ε = c/√κ̂ (``--sgld-c``,
  default 0.3; ``--sgld-eps`` to fix it), κ̂ = ``llc.step_size.max_curvature`` of −log p^β at a
  prior draw at β = β_max (the scale of ``sgld_step_size``'s RMSprop candidates; that sweep
  itself is for localized LLC runs and does not apply). SGLD has no accept step: its
  discretization and minibatch bias are reported as ⟨H⟩_SGLD − ⟨H⟩_NUTS in NUTS's se, beside the
  run's own MALA-acceptance check and predicted first-order excess of ⟨βH⟩.
- PA: ``st.population_annealing`` (HMC moves, ``--pa-steps`` per rung, ``--pa-runs`` independent
  runs) on a FIXED ladder that contains every rung of the ladder above, each interval cut into
  ``--pa-refine`` pieces (geometric; linear from β = 0): the 12-rung ladder alone collapses the
  importance weights at σ ≤ 4 (Δβ²Var H ≈ 10), which biased log Z by ~2 nats in a trial. PA's
  result holds the final population only (one β) as Samples, so ``first_law``/``table`` do not
  apply: the first law is computed from its per-rung log Z and weighted ⟨R⟩, ⟨D⟩, ⟨C⟩, ⟨H⟩
  (``rungs``: ``log_z``, ``obs_mean``, ``E``), X = ρ̄⟨R⟩ + δ̄⟨D⟩ + γ̄⟨C⟩ − ⟨H⟩ − σ log Z per
  run (the point value from the runs' combined values, Machta's weights; its se from the spread
  of the per-run X over the ``--pa-runs`` runs), residual X_b − X_a, se of both runs in
  quadrature. "ESS of H" for PA: Var(H)/se(⟨H⟩)², se from the spread of the runs (few degrees of
  freedom: a rough number); no R-hat (there are no chains).

Wall times are end to end per call INCLUDING compilation (run "a" compiles; run "b" reuses the
program, so a − b ≈ compile) and, for SGLD, the κ̂ estimate; ESS/s = ESS of run "a" / wall of run
"a". Prints a table and writes ``benchmarks/results/therml.json``::

    python benchmarks/therml.py --quick    # smoke run, ~2-3 minutes on 2 cores
    python benchmarks/therml.py            # ~6 minutes on 2 shared cores
    python benchmarks/therml.py --sigmas 0.5 1 2 4 8 --samplers nuts pa
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np
from _machine import cpu_seconds, load_avg, machine_info

import slt_thermo as st
from slt_thermo import therml
from slt_thermo.llc.step_size import max_curvature
from slt_thermo.results import ess_bulk, rhat
from slt_thermo.thermo.stats import healthy_draws, mean_se

RESULTS = Path(__file__).resolve().parent / "results" / "therml.json"
SAMPLERS = ("nuts", "sgld", "pa")


# ----------------------------------------------------------------------------- options
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sigmas", type=float, nargs="+", default=[1.0, 2.0, 4.0],
                   help="temperatures σ of the ladder (default 1 2 4)")
    p.add_argument("--ti-rungs", type=int, default=8, help="TI rungs below 1/σ_max (default 8)")
    p.add_argument("--n", type=int, default=50, help="training examples of the toy (default 50)")
    p.add_argument("--prior-scale", type=float, default=3.0, help="prior N(0, s²) (default 3)")
    p.add_argument("--gamma-b", type=float, default=1.05, help="γ of the neighbour run (default 1.05)")
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    p.add_argument("--chains", type=int, default=4, help="chains per β, NUTS and SGLD (default 4)")
    p.add_argument("--nuts-warmup", type=int, default=200, help="NUTS warmup (default 200)")
    p.add_argument("--nuts-draws", type=int, default=200, help="NUTS draws per chain (default 200)")
    p.add_argument("--nuts-depth", type=int, default=6, help="NUTS max_tree_depth (default 6)")
    p.add_argument("--sgld-steps", type=int, default=12000, help="SGLD steps incl. burn-in (default 12000)")
    p.add_argument("--sgld-burnin", type=int, default=3000, help="SGLD burn-in (default 3000)")
    p.add_argument("--sgld-every", type=int, default=9, help="full-data H every k steps (default 9)")
    p.add_argument("--sgld-batch", type=int, default=10, help="SGLD minibatch (default 10 = n/5)")
    p.add_argument("--sgld-c", type=float, default=0.3, help="ε = c/√κ̂ (default 0.3)")
    p.add_argument("--sgld-eps", type=float, default=None, help="fix ε instead of c/√κ̂")
    p.add_argument("--pa-particles", type=int, default=128, help="PA particles per run (default 128)")
    p.add_argument("--pa-runs", type=int, default=4, help="independent PA runs, >= 2 (default 4)")
    p.add_argument("--pa-refine", type=int, default=6, help="PA rungs per ladder interval (default 6)")
    p.add_argument("--pa-steps", type=int, default=2, help="HMC trajectories per PA rung (default 2)")
    p.add_argument("--seed", type=int, default=0, help="data seed; sampler keys derive from it")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2 chains, NUTS 30+30 (depth 4), SGLD 2000 steps, PA 64 × 2 runs")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})")
    a = p.parse_args(argv)
    if a.quick:
        a.chains, a.nuts_warmup, a.nuts_draws, a.nuts_depth = 2, 30, 30, 4
        a.sgld_steps, a.sgld_burnin, a.sgld_every = 2000, 500, 10
        a.pa_particles, a.pa_runs, a.pa_refine = 64, 2, 3
    if a.pa_runs < 2:
        p.error("--pa-runs must be >= 2 (the first law's se for PA is the spread of the runs)")
    return a


def machine_line(m):
    v = m["versions"]
    return (f"{m['platform']} | {m['cpu']} | {m['cpu_count']} CPUs ({m['cpus_usable']} usable) | "
            f"jax {v['jax']} (jaxlib {v['jaxlib']}) backend={m['jax_backend']} | arviz {v['arviz']} | "
            f"slt-thermo {v['slt-thermo']} | python {m['python']} | load avg {m['load_avg_1_5_15']}")


def refine(betas, m):
    """``betas`` (from 0) with each interval cut into ``m`` pieces: linear from 0, geometric after;
    every rung of ``betas`` is kept exactly."""
    out = [betas[0]]
    for lo, hi in zip(betas[:-1], betas[1:]):
        inner = np.linspace(lo, hi, m + 1) if lo == 0 else np.geomspace(lo, hi, m + 1)
        out.extend(inner[1:-1].tolist() + [hi])
    return np.asarray(out, np.float64)


# ----------------------------------------------------------------------------- per-rung numbers
def chain_rows(run, wall):
    """Per β of a Samples run: ⟨H⟩, se, bulk ESS, R-hat, ESS/s over the healthy chains."""
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the sampler already warned about unhealthy chains
        draws = healthy_draws(run, "nll")
    for x in draws:
        m, se, _ = mean_se(x)
        ess = ess_bulk(x) if x.shape[1] >= 4 else float("nan")
        rows.append({"H": m, "H_se": se, "ess": ess, "ess_per_s": ess / wall,
                     "rhat": rhat(x) if x.shape[0] >= 2 else float("nan"), "chains": int(x.shape[0])})
    return rows


def first_law_rows(run_a, target_a, run_b, target_b):
    law = therml.first_law(run_a, target_a, run_b, target_b)
    return [{"residual": float(r), "residual_se": float(s), "z": float(z)}
            for r, s, z in zip(law["residual"].values, law["se"].values, law["z"].values)]


def pa_x(res, bar, idx):
    """X = ρ̄⟨R⟩ + δ̄⟨D⟩ + γ̄⟨C⟩ − ⟨H⟩ − σ log Z at the rungs ``idx`` of a PA result: (value from the
    runs' combined values, se from the spread of the per-run values)."""
    rg = res.rungs
    b = rg["beta"].values[idx]
    sigma = 1.0 / b

    def x(obs, E, log_z):  # obs (..., observable) over rg.observable
        o = {name: obs[..., i] for i, name in enumerate(rg["observable"].values)}
        return bar["rho"] * o["R"] + bar["delta"] * o["D"] + bar["gamma"] * o["C"] - E - sigma * log_z

    value = x(rg["obs_mean"].values[idx], rg["E"].values[idx], rg["log_z"].values[idx])
    per_run = x(rg["obs_mean_run"].values[:, idx], rg["E_run"].values[:, idx], rg["log_z_run"].values[:, idx])
    M = per_run.shape[0]
    return value, per_run.std(axis=0, ddof=1) / math.sqrt(M)


def pa_first_law_rows(res_a, mult_a, res_b, mult_b, idx):
    bar = {k: (mult_a[k] + mult_b[k]) / 2 for k in ("rho", "delta", "gamma")}
    xa, sa = pa_x(res_a, bar, idx)
    xb, sb = pa_x(res_b, bar, idx)
    r, s = xb - xa, np.hypot(sa, sb)
    return [{"residual": float(a), "residual_se": float(b), "z": float(a / b)} for a, b in zip(r, s)]


def pa_rows(res, idx, wall):
    rg = res.rungs
    rows = []
    for i in idx:
        H, se, var = float(rg["E"].values[i]), float(rg["E_se"].values[i]), float(rg["Var"].values[i])
        ess = var / se**2 if se > 0 else float("nan")
        rows.append({"H": H, "H_se": se, "ess": ess, "ess_per_s": ess / wall, "rhat": float("nan"),
                     "families_eff_min": float(rg["families_eff"].values[:, i].min()),
                     "acceptance": float(np.nanmean(rg["acceptance_rate"].values[:, i]))})
    return rows


# ----------------------------------------------------------------------------- samplers
def timed(fn):
    t, c = time.perf_counter(), cpu_seconds()
    out = fn()
    return out, time.perf_counter() - t, cpu_seconds() - c


def run_nuts(targets, betas, args, key):
    kw = dict(num_chains=args.chains, num_warmup=args.nuts_warmup, num_samples=args.nuts_draws,
              max_tree_depth=args.nuts_depth, keep_params=False, keep_pointwise=False, progress=False)
    runs, walls, cpus = [], [], []
    for j, tg in enumerate(targets):
        r, w, c = timed(lambda: st.sample_nuts(tg, betas, key=jax.random.fold_in(key, j), **kw))
        runs.append(r), walls.append(w), cpus.append(c)
        print(f"  NUTS run {'ab'[j]}: {w:.1f} s", flush=True)
    ns = runs[0]["n_steps"].values  # (beta, chain, draw)
    mx = ns.max(axis=(0, 1))
    extra = {"n_steps_mean_per_beta": ns.mean(axis=(1, 2)).tolist(),
             "n_steps_max_per_beta": ns.max(axis=(1, 2)).tolist(),
             "lockstep_efficiency": float(ns.mean(axis=(0, 1)).sum() / mx.sum()),
             "divergences": int(runs[0]["diverging"].values.sum()),
             "step_size_mean_per_beta": runs[0]["step_size"].values.mean(axis=(1, 2)).tolist(),
             "settings": kw | {"dense_mass": False, "target_accept_prob": 0.8}}
    return runs, walls, cpus, extra


def run_sgld(targets, betas, args, key):
    kappa = None

    def eps_rule():
        nonlocal kappa
        if args.sgld_eps is not None:
            return args.sgld_eps
        p0 = targets[0].sample_prior(jax.random.fold_in(key, 99))
        kappa = max_curvature(targets[0], p0, beta=float(betas[-1]), gamma=0.0)
        return args.sgld_c / math.sqrt(kappa)

    eps, t_eps, c_eps = timed(eps_rule)
    kw = dict(step_size=eps, batch_size=args.sgld_batch, num_chains=args.chains, num_steps=args.sgld_steps,
              num_burnin=args.sgld_burnin, eval_full_nll_every=args.sgld_every, preconditioner="rmsprop",
              keep_params=False, progress=False)
    runs, walls, cpus = [], [], []
    for j, tg in enumerate(targets):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r, w, c = timed(lambda: st.sample_sgld(tg, betas, key=jax.random.fold_in(key, j), **kw))
        for wn in caught:
            print(f"  warning: {wn.message}")
        if j == 0:
            w, c = w + t_eps, c + c_eps  # run a pays for the step-size rule
        runs.append(r), walls.append(w), cpus.append(c)
        print(f"  SGLD run {'ab'[j]}: {w:.1f} s (ε = {eps:.4g})", flush=True)
    r = runs[0]
    mean = lambda name: np.nanmean(r[name].values, axis=(1, 2)).tolist()  # noqa: E731
    extra = {"step_size": eps, "kappa_hat": kappa, "step_rule": (
                 f"fixed ε = {args.sgld_eps}" if args.sgld_eps is not None else
                 f"ε = {args.sgld_c}/√κ̂, κ̂ = max_curvature at a prior draw, β = {betas[-1]:.4g}"),
             "step_rule_s": t_eps, "mala_accept_per_beta": mean("mala_accept"),
             "predicted_excess_betaH_per_beta": (np.asarray(mean("minibatch_excess"))
                                                 + np.asarray(mean("discretization_excess"))).tolist(),
             "unhealthy_pairs": [int((~x.healthy.values).sum()) for x in runs],
             "settings": {k: v for k, v in kw.items() if k != "step_size"}}
    return runs, walls, cpus, extra


def run_pa(targets, ladder, args, key):
    kw = dict(num_particles=args.pa_particles, num_runs=args.pa_runs, betas=ladder, mcmc="hmc",
              mcmc_steps=args.pa_steps, progress=False)
    res, walls, cpus = [], [], []
    for j, tg in enumerate(targets):
        r, w, c = timed(lambda: st.population_annealing(tg, key=jax.random.fold_in(key, j), **kw))
        res.append(r), walls.append(w), cpus.append(c)
        print(f"  PA run {'ab'[j]}: {w:.1f} s ({r.attrs['grad_evals']:.3g} gradient evaluations)", flush=True)
    rg = res[0].rungs
    extra = {"num_rungs": int(ladder.size), "grad_evals": [int(r.attrs["grad_evals"]) for r in res],
             "min_weight_ess_frac": [float(np.nanmin(r.rungs["ess_frac"].values)) for r in res],
             "log_z_final": [[r.log_z.value, r.log_z.stderr] for r in res],
             "acceptance_mean": float(np.nanmean(rg["acceptance_rate"].values)),
             "settings": {k: v for k, v in kw.items() if k != "betas"} | {"ladder": ladder.tolist()}}
    return res, walls, cpus, extra


# ----------------------------------------------------------------------------- report
def fmt(x, spec):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        width = spec.split(".")[0]
        return format("—", f">{width}" if width else "")
    return format(x, spec)


def print_report(res):
    cfg = res["config"]
    print(f"machine: {machine_line(res['machine'])}")
    print(f"workload: therml toy n = {cfg['n']}, full model ({cfg['num_params']} parameters, prior N(0, "
          f"{cfg['prior_scale']}²)), {len(cfg['betas'])}-rung ladder (σ = {cfg['sigmas']} + "
          f"{cfg['ti_rungs']} TI rungs + β = 0), runs a: (ρ, δ, γ) = (1, 1, 1), b: γ = {cfg['gamma_b']}")
    print()
    hdr = (f"{'sampler':7} {'σ':>4} | {'⟨H⟩':>8} {'±se':>6} {'ESS':>6} {'ESS/s':>6} {'R-hat':>5} | "
           f"{'1st-law res':>11} {'±se':>6} {'z':>5} | {'ΔH vs NUTS':>10} {'/NUTS se':>8}")
    print(hdr)
    print("-" * len(hdr))
    for name in cfg["samplers"]:
        s = res[name]
        for i, sigma in enumerate(cfg["sigmas_report"]):
            r, fl = s["per_sigma"][i], s["first_law"][i]
            d = s.get("vs_nuts", [None] * len(cfg["sigmas_report"]))[i] or {}
            print(f"{name.upper():7} {sigma:4g} | {r['H']:8.2f} {fmt(r['H_se'], '6.2f')} {fmt(r['ess'], '6.0f')} "
                  f"{fmt(r['ess_per_s'], '6.2f')} {fmt(r['rhat'], '5.2f')} | {fl['residual']:11.3f} "
                  f"{fmt(fl['residual_se'], '6.3f')} {fmt(fl['z'], '5.2f')} | {fmt(d.get('diff'), '10.2f')} "
                  f"{fmt(d.get('diff_in_nuts_se'), '8.1f')}")
    print()
    print(f"{'':34}" + "".join(f"{n.upper():>12}" for n in cfg["samplers"]))
    rows = [("wall run a, incl. compile (s)", "wall_a", ".1f"), ("wall run b, warm (s)", "wall_b", ".1f"),
            ("≈ compile (a − b) (s)", "compile_est", ".1f"), ("CPU time a + b (s)", "cpu_total", ".1f"),
            ("ESS of H, min over σ", "ess_min", ".0f"), ("ESS/s (min σ ESS / wall a)", "ess_per_s_min", ".2f"),
            ("max |first-law z| over σ", "max_abs_z", ".2f"), ("max R-hat over σ", "max_rhat", ".2f")]
    for label, key, spec in rows:
        print(f"{label:34}" + "".join(f"{fmt(res[n]['summary'][key], spec):>12}" for n in cfg["samplers"]))
    print()
    if "nuts" in res:
        e = res["nuts"]["extra"]
        print(f"NUTS: lockstep efficiency {e['lockstep_efficiency']:.2f} (mean/max leapfrog steps over the "
              f"vmapped (β, chain) batch), mean leapfrog steps per β {np.round(e['n_steps_mean_per_beta'], 1).tolist()}, "
              f"divergences {e['divergences']}")
    if "sgld" in res:
        e = res["sgld"]["extra"]
        k = res["config"]["report_index"]
        print(f"SGLD: {e['step_rule']} → ε = {e['step_size']:.4g}; MALA acceptance at σ "
              f"{cfg['sigmas_report']}: {np.round(np.asarray(e['mala_accept_per_beta'])[k], 3).tolist()}; "
              f"predicted excess of ⟨βH⟩: {np.round(np.asarray(e['predicted_excess_betaH_per_beta'])[k], 3).tolist()}; "
              f"unhealthy (β, chain) pairs a/b: {e['unhealthy_pairs']}")
    if "pa" in res:
        e = res["pa"]["extra"]
        print(f"PA: {e['num_rungs']}-rung fixed ladder (every interval × {cfg['pa_refine']}), min weight ESS "
              f"fraction a/b {np.round(e['min_weight_ess_frac'], 2).tolist()}, HMC acceptance "
              f"{e['acceptance_mean']:.2f}, log Z(β_max) a/b {[f'{v:.2f} ± {s:.2f}' for v, s in e['log_z_final']]}; "
              f"effective families at σ {cfg['sigmas_report']}: "
              f"{[round(r['families_eff_min'], 1) for r in res['pa']['per_sigma']]}")
    for note in res["notes"]:
        print(f"note: {note}")
    print(f"load average: start {res['machine']['load_avg_1_5_15']}, end {res['load_avg_end']}")


def summarize(s):
    ps, fl = s["per_sigma"], s["first_law"]
    ess = [r["ess"] for r in ps]
    rh = [r["rhat"] for r in ps if math.isfinite(r["rhat"])]
    return {"wall_a": s["wall_s"][0], "wall_b": s["wall_s"][1], "compile_est": s["wall_s"][0] - s["wall_s"][1],
            "cpu_total": sum(s["cpu_s"]), "ess_min": float(np.nanmin(ess)),
            "ess_per_s_min": float(np.nanmin(ess) / s["wall_s"][0]),
            "max_abs_z": float(np.nanmax(np.abs([r["z"] for r in fl]))),
            "max_rhat": float(max(rh)) if rh else float("nan")}


# ----------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    machine = machine_info()
    print(f"machine: {machine_line(machine)}", flush=True)
    toy = therml.toy(args.n, key=jax.random.PRNGKey(args.seed))
    target_a = therml.posterior(therml.Model(prior_scale=args.prior_scale), toy.data)
    target_b = target_a.with_hyper(gamma=args.gamma_b)
    targets = (target_a, target_b)
    mult = [{k: float(v) for k, v in t.hyper.items()} for t in targets]
    betas = therml.betas(args.sigmas, ti_rungs=args.ti_rungs)
    sigmas_report = sorted(args.sigmas)
    k_report = [int(np.argmin(np.abs(betas - 1 / s))) for s in sigmas_report]
    num_params = int(sum(np.size(x) for x in jax.tree_util.tree_leaves(target_a.init(jax.random.PRNGKey(0)))))
    print(f"ladder: {len(betas)} rungs, β = {np.round(betas, 5).tolist()}", flush=True)
    key = jax.random.PRNGKey(args.seed + 1)

    res = {"benchmark": "therml", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
           "machine": machine,
           "config": {"n": args.n, "num_params": num_params, "prior_scale": args.prior_scale,
                      "sigmas": args.sigmas, "sigmas_report": sigmas_report, "report_index": k_report,
                      "ti_rungs": args.ti_rungs, "betas": betas.tolist(), "gamma_b": args.gamma_b,
                      "multipliers": mult, "samplers": args.samplers, "quick": args.quick, "seed": args.seed,
                      "pa_refine": args.pa_refine}}
    for i, name in enumerate(args.samplers):
        k = jax.random.fold_in(key, i)
        print(f"{name.upper()} ...", flush=True)
        if name == "pa":
            ladder = refine(betas, args.pa_refine)
            idx = [int(np.argmin(np.abs(ladder - betas[j]))) for j in k_report]
            out, walls, cpus, extra = run_pa(targets, ladder, args, k)
            per_sigma = pa_rows(out[0], idx, walls[0])
            law = pa_first_law_rows(out[0], mult[0], out[1], mult[1], idx)
            route = "PA's per-rung log Z and weighted ⟨R⟩, ⟨D⟩, ⟨C⟩, ⟨H⟩ (benchmark helper pa_x)"
        else:
            runner = run_nuts if name == "nuts" else run_sgld
            out, walls, cpus, extra = runner(targets, betas, args, k)
            rows = chain_rows(out[0], walls[0])
            per_sigma = [rows[j] for j in k_report]
            law_all = first_law_rows(out[0], target_a, out[1], target_b)
            law = [law_all[j] for j in k_report]
            extra["first_law_all_betas"] = law_all
            extra["per_beta"] = rows
            route = "therml.first_law on the two runs' Samples (log Z by TI over the ladder)"
        res[name] = {"wall_s": walls, "cpu_s": cpus, "per_sigma": per_sigma, "first_law": law,
                     "first_law_route": route, "extra": extra}
        res[name]["summary"] = summarize(res[name])
        del out
    if "nuts" in res:
        nuts_ps = res["nuts"]["per_sigma"]
        for name in ("sgld", "pa"):
            if name in res:
                res[name]["vs_nuts"] = [
                    {"diff": r["H"] - q["H"], "diff_in_nuts_se": (r["H"] - q["H"]) / q["H_se"],
                     "z": (r["H"] - q["H"]) / math.hypot(r["H_se"], q["H_se"])}
                    for r, q in zip(res[name]["per_sigma"], nuts_ps)]
    res["load_avg_end"] = load_avg()
    res["notes"] = [
        "Wall times include compilation: run a compiles, run b (γ = %g, traced) reuses it; ESS/s = ESS "
        "of run a / wall of run a. One shared machine: wall times move with the other job's load." % args.gamma_b,
        "ESS: ArviZ bulk ESS of H over the healthy chains (NUTS, SGLD); PA: Var(H)/se(⟨H⟩)², se from "
        "the spread of its %d runs. R-hat: ArviZ rank split R-hat (NUTS, SGLD)." % args.pa_runs,
        "First law: NUTS/SGLD by therml.first_law; PA from its rungs (log Z, weighted ⟨R⟩, ⟨D⟩, ⟨C⟩, "
        "⟨H⟩), se from the spread of the runs.",
        "ΔH vs NUTS: ⟨H⟩ − ⟨H⟩_NUTS and that in NUTS's se; meaningful only where NUTS has mixed (R-hat ≈ 1).",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, default=float))
    print()
    print_report(res)
    print(f"\nwrote {args.out}")
    return res


if __name__ == "__main__":
    main()
