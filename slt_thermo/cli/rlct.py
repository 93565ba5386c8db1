"""``slt-thermo rlct``: λ̂ by every method on a ladder of β around 1/log n, with WBIC."""

from __future__ import annotations

import math
import os
import warnings

from . import _report as R
from ._args import (
    DEFAULT_MODEL,
    Formatter,
    UsageError,
    add_model_options,
    add_out,
    add_sampler_options,
    int_at_least,
    positive_float,
)
from ._common import cached_target, meta, results_dir, truth, truth_json

RLCT_METHODS = ("two_temperature", "ols", "specific_heat")
HELP = "estimate the learning coefficient λ of a model"


def add_parser(sub):
    """The ``rlct`` subparser."""
    from ..models import ZOO

    p = sub.add_parser(
        "rlct", help=HELP, formatter_class=Formatter,
        description="Sample the tempered posteriors p^β(w|D_n) on a ladder of β around 1/log n and "
                    "estimate λ by every method (two-temperature, OLS of E^β[nL_n] on 1/β, specific "
                    "heat), with error bars beside the exact λ when known; also WBIC. Run bare, it "
                    f"uses {DEFAULT_MODEL}({R.fmt_params(ZOO[DEFAULT_MODEL].defaults)}), n = 1000.",
        epilog="examples:\n  slt-thermo rlct\n"
               "  slt-thermo rlct --model reduced_rank --param M=3 --param N=3 --param H=2 --param r=1\n"
               "  slt-thermo rlct --model monomial --param k=1,1 --n 3000\n"
               "  slt-thermo rlct --model my_model.py:make_model",
    )
    add_model_options(p, n_help="dataset size (default 1000; fixed by your data if FUNC returns a Target)",
                      n_kwargs=dict(type=int_at_least(2), default=None, metavar="N"))
    g = add_sampler_options(p, chains=4, warmup=500, samples=1000)
    g.add_argument("--sampler", choices=("nuts", "sgld"), default="nuts", help="the sampler")
    g.add_argument("--num-betas", type=int_at_least(2), default=5,
                   help="rungs of the ladder st.ladder.around_wbic(n, num) in [1/(2 log n), 2/log n]")
    g.add_argument("--step-size", type=positive_float, default=1e-4, help="SGLD step size")
    g.add_argument("--batch-size", type=int_at_least(1), default=None,
                   help="SGLD minibatch size (default min(n, 100))")
    add_out(p)
    return p


def _sample(args, target, origin, betas, key):
    """Run the chosen sampler over the ladder, saying what it does."""
    import slt_thermo as st

    n = target.n
    if args.sampler == "sgld":
        batch = args.batch_size or min(n, 100)
        if batch > n:
            raise UsageError("--batch-size", f"must be <= n = {n}, got {batch}")
        how = (f"SGLD (step size {args.step_size:g}, batch {batch}): {len(betas)} β × {args.chains} chains "
               f"({args.warmup} burn-in + {args.samples} steps each)")
        print(f"{target.name}, n = {n} ({origin})\n{how} …", flush=True)
        # full-data energies per draw: the specific heat needs Var of nL_n, not of its estimate
        return st.sample_sgld(target, betas, step_size=args.step_size, num_chains=args.chains,
                              num_steps=args.warmup + args.samples, num_burnin=args.warmup,
                              batch_size=batch, key=key, eval_full_nll_every=1)
    how = (f"NUTS: {len(betas)} β in [{betas[0]:.4g}, {betas[-1]:.4g}] around 1/log n = "
           f"{1 / math.log(n):.4g}, {args.chains} chains × ({args.warmup} warmup + {args.samples} draws)")
    print(f"{target.name}, n = {n} ({origin})\n{how} …", flush=True)
    return st.sample_nuts(target, betas, num_chains=args.chains, num_warmup=args.warmup,
                          num_samples=args.samples, key=key)


def _estimates(samples):
    """λ̂ by every method and WBIC, each {'value', 'stderr', 'text'} or with the 'error' that stopped it."""
    import slt_thermo as st

    from ..errors import SLTThermoError

    estimates = {}
    for method in RLCT_METHODS:
        try:
            est = st.rlct(samples, method=method)
            estimates[method] = {"value": est.value, "stderr": est.stderr, "text": str(est)}
        except SLTThermoError as err:
            estimates[method] = {"value": None, "stderr": None, "text": "—", "error": str(err)}
    try:
        w = st.wbic(samples)
        wbic = {"value": w.value, "stderr": w.stderr, "text": str(w), "beta": w.details["beta"]}
    except SLTThermoError as err:
        wbic = {"value": None, "stderr": None, "text": "—", "error": str(err)}
    return estimates, wbic


def run(args, argv) -> int:
    """Sample, estimate, write the results directory and print the report."""
    import jax

    import slt_thermo as st

    from ..io import write_json

    target, desc, origin = cached_target(args)
    n = target.n
    betas = st.ladder.around_wbic(n, num=args.num_betas)
    lam, m = truth(target)
    samples = _sample(args, target, origin, betas, jax.random.PRNGKey(args.seed + 1))
    estimates, wbic = _estimates(samples)

    summary = meta(argv, "rlct")
    summary.update(
        model={"name": target.name, **desc, **truth_json(lam, m)},
        n=n, data=origin, sampler=args.sampler, seed=args.seed,
        settings={"chains": args.chains, "warmup": args.warmup, "samples": args.samples,
                  "betas": [float(b) for b in betas],
                  **({"step_size": args.step_size, "batch_size": args.batch_size or min(n, 100)}
                     if args.sampler == "sgld" else {})},
        estimates=estimates, wbic=wbic, nll_true=_nll_true(target),
        per_beta=_per_beta(samples), wall_time_s=float(samples.ds.attrs.get("wall_time_s", float("nan"))),
    )
    outdir = results_dir(args, "rlct", desc["slug"])
    samples.save(os.path.join(outdir, "samples.nc"))
    summary["files"] = {"samples": "samples.nc", "summary": "summary.json",
                        "plots": [] if args.no_plots else plots(samples, outdir)}
    write_json(os.path.join(outdir, "summary.json"), summary)
    print_report(summary, outdir)
    return 0


def _nll_true(target):
    w0 = getattr(target.model, "true_params", None)
    if w0 is None or target.is_population:
        return None
    try:
        return float(target.nll(w0))
    except Exception:
        return None


def _per_beta(samples):
    from ..thermo import rung_stats

    stats = rung_stats(samples)
    table = samples.summary()
    rows = []
    for i, b in enumerate(samples.betas):
        row = {"beta": float(b), "E": float(stats["E"].values[i]), "E_se": float(stats["E_se"].values[i]),
               "Var": float(stats["Var"].values[i]), "healthy_chains": int(stats["chains"].values[i]),
               "specific_heat": float(b**2 * stats["Var"].values[i]),
               "specific_heat_se": float(b**2 * stats["Var_se"].values[i])}
        t = table.iloc[i]
        for col in ("nll_rhat", "nll_ess_bulk", "divergences", "acceptance_rate"):
            if col in table.columns:
                row[col] = float(t[col])
        rows.append(row)
    return rows


def plots(samples, outdir):
    """Draw the rlct figures into ``outdir``; return their file names."""
    from .. import plotting

    names = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the estimators already warned once
        for name, fn in (("energy_vs_inverse_beta.png", plotting.energy_vs_inverse_beta),
                         ("specific_heat.png", plotting.specific_heat),
                         ("traces.png", plotting.traces)):
            fn(samples, path=os.path.join(outdir, name))
            names.append(name)
        if samples.betas[0] == 0:
            plotting.free_energy(samples, path=os.path.join(outdir, "free_energy.png"))
            names.append("free_energy.png")
    return names


def show(s: dict, outdir: str, *, redraw: bool) -> None:
    """``slt-thermo show`` of an rlct directory: header, plots redrawn from samples.nc, report."""
    import slt_thermo as st

    print(f"{s['model']['name']}, n = {s['n']} ({s.get('data', '')}), sampler {s['sampler']}")
    if redraw:
        s["files"]["plots"] = plots(st.load(os.path.join(outdir, s["files"]["samples"])), outdir)
    print_report(s, outdir)


def print_report(s: dict, outdir: str) -> None:
    """The rlct tables: E^β[nL_n] per β, λ̂ by method beside the exact λ, WBIC, checks, files."""
    lam, lam_f, m = s["model"].get("rlct"), s["model"].get("rlct_float"), s["model"].get("multiplicity")
    n = s["n"]
    print(f"\n{'β':>9} {'E^β[nL_n]':>14} {'± MC err':>9} {'C(β)':>8} {'R-hat':>6} {'ESS':>6} {'div':>4}")
    for r in s["per_beta"]:
        rhat, ess, div = r.get("nll_rhat"), r.get("nll_ess_bulk"), r.get("divergences")
        print(f"{r['beta']:9.4f} {r['E']:14.3f} {r['E_se']:9.3f} {r['specific_heat']:8.3f} "
              f"{R.num(rhat, '6.3f')} {R.num(ess, '6.0f')} {R.num(div, '4.0f')}")
    exact = R.exact_text(lam, lam_f, "?")
    print(f"\n{'λ̂ by method':<18} {'estimate':>16}   {'exact λ':<12} {'z':>5}")
    for method in RLCT_METHODS:
        e = s["estimates"].get(method, {})
        print(f"{method:<17} {e.get('text', '—'):>16}   {exact:<12} {R.z(e.get('value'), e.get('stderr'), lam_f):>5}")
        if e.get("error"):
            print(f"  ({method} failed: {e['error']})")
    if lam is not None:
        print(f"exact: λ = {lam}, m = {m} (slt_thermo.exact); z = (λ̂ − λ)/error")
        if m is not None and m > 1:
            bias = (m - 1) / math.log(n / math.log(n))
            print(f"note: m = {m} > 1 biases every finite-n estimate low by about (m−1)/log(βn) ≈ {bias:.2f}")
    else:
        print("exact λ unknown for this model")
    w = s["wbic"]
    line = f"\nWBIC = E^β[nL_n] at β = 1/log n: {w.get('text', '—')}"
    if s.get("nll_true") is not None and lam_f is not None:
        line += f"   (nL_n(w0) + λ log n = {s['nll_true'] + lam_f * math.log(n):.3f})"
    print(line)
    rhats = [r.get("nll_rhat") for r in s["per_beta"] if r.get("nll_rhat") is not None]
    divs = sum(int(r.get("divergences") or 0) for r in s["per_beta"])
    unhealthy = sum(s["settings"]["chains"] - r["healthy_chains"] for r in s["per_beta"])
    if (rhats and max(rhats) > 1.05) or divs or unhealthy:
        print(f"check: max R-hat {max(rhats) if rhats else float('nan'):.3f}, {divs} divergences, "
              f"{unhealthy} unhealthy chains: consider more --warmup/--samples")
    if s.get("wall_time_s") is not None:
        print(f"\n{s['sampler']} sampling took {s['wall_time_s']:.1f} s")
    R.print_files(s, outdir)
