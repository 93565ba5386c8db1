"""``slt-thermo free-energy``: F(β) over nested datasets of each size n by thermodynamic
integration, and λ̂, m̂ from the fit of F_n against log n."""

from __future__ import annotations

import os
import time

from . import _report as R
from ._args import (
    Formatter,
    UsageError,
    add_model_options,
    add_out,
    add_sampler_options,
    int_list,
    ladder,
)
from ._common import meta, resolve_model, results_dir, truth, truth_json

HELP = "the free energy F over (n, β) and λ̂, m̂ from F_n vs log n"


def add_parser(sub):
    """The ``free-energy`` subparser."""
    p = sub.add_parser(
        "free-energy", help=HELP, formatter_class=Formatter,
        description="Thermodynamic integration of E^β[nL_n] from β = 0 to 1 on nested datasets of "
                    "each size n (st.free_energy_vs_n): F(β) for every n, and the fit "
                    "F_n ≈ nL_n(w0) + λ log n − (m−1) log log n + c, which gives λ̂ and m̂.",
        epilog="examples:\n  slt-thermo free-energy\n"
               "  slt-thermo free-energy --model monomial --param k=1,1 --n 100,300,1000,3000 --betas 16\n"
               "  slt-thermo free-energy --model linear_regression --param d=2 --n 100,300,1000   # exact F_n too\n"
               "  slt-thermo free-energy --population --n 100,300,1000,3000,10000 --betas 48     # no data noise",
    )
    add_model_options(p, n_help="increasing dataset sizes, at least 3",
                      n_kwargs=dict(type=int_list, default=[100, 300, 1000, 3000], metavar="N1,N2,..."))
    g = add_sampler_options(p, chains=4, warmup=200, samples=250)
    g.add_argument("--betas", type=ladder, default=24, metavar="K|B0,B1,...",
                   help="K: st.ladder.ti(max n, K), β = 0 and K geometric rungs from 0.01/max n to 1 "
                        "(integrated in log β: accurate at every n); or an explicit list from 0 to 1")
    p.add_argument("--resume", metavar="DIR",
                   help="crash-safe sweep: each finished n is written to DIR as it completes; run the same "
                        "command with the same --resume DIR again to continue a killed sweep (same numbers)")
    add_out(p)
    return p


def _sources(args, obj, desc, key):
    """(target for each n, data, key, origin text, name) from the model, the Target or --population."""
    import jax

    from ..target import Target

    ns = args.n
    if isinstance(obj, Target):
        if args.population:
            raise UsageError("--population", "needs a Model with a `kl` method, not a Target")
        if ns[-1] > obj.n:
            raise UsageError("--n", f"the model file's Target has n = {obj.n} examples; the largest n "
                                    f"must not exceed it, got {ns[-1]}")

        def source(n):
            return Target(obj.model, jax.tree_util.tree_map(lambda a: a[:n], obj.data))
        return source, None, key, "nested subsets of the Target's own data", obj.name
    name = getattr(obj, "name", desc["slug"])
    if args.population:
        if not callable(getattr(obj, "kl", None)):
            raise UsageError("--population", f"{getattr(obj, 'name', 'this model')} has no population potential `kl`")

        def source(n):
            return Target.population(obj, n)
        return source, None, key, "the population potential nK(w)", name
    key, sub = jax.random.split(key)
    data = obj.simulate(sub, ns[-1])
    return obj, data, key, f"nested subsets of one simulated dataset (seed {args.seed})", name


def run(args, argv) -> int:
    """Sample every (n, β), integrate, fit, write the results directory and print the report."""
    import jax
    import numpy as np

    import slt_thermo as st

    from .. import sweeps
    from ..io import write_json, write_netcdf
    from ..results import clean_attrs
    from ..samplers.interrupts import deferred_sigint

    obj, desc = resolve_model(args.model, args.param)
    ns = args.n
    betas = st.ladder.ti(ns[-1], args.betas) if isinstance(args.betas, int) else np.asarray(args.betas)
    source, data, key, origin, name = _sources(args, obj, desc, jax.random.PRNGKey(args.seed))
    lam, m = truth(obj)
    print(f"{name}: F(β) over n = {', '.join(map(str, ns))} ({origin})\nNUTS on {len(betas)} β from 0 to 1 × "
          f"{args.chains} chains ({args.warmup} warmup + {args.samples} draws) per n …", flush=True)
    t0 = time.perf_counter()
    current = []  # the n being sampled (and "done" once it is)
    try:
        with deferred_sigint():  # Ctrl-C: acted on between chunks, never lost (see _unit_sampler)
            ds = st.free_energy_vs_n(source, ns, betas, key=key, data=data, sampler=_unit_sampler(current),
                                     num_chains=args.chains, num_warmup=args.warmup, num_samples=args.samples,
                                     keep_params=False, checkpoint=args.resume)
    except KeyboardInterrupt:
        _interrupted(args, argv, desc, name, origin, ns, current, time.perf_counter() - t0)
        raise  # slt-thermo prints "interrupted" and exits with 130
    wall = time.perf_counter() - t0
    exact_F = sweeps.exact_free_energies(obj, data, ns)
    if lam is not None:
        ds.attrs["true_rlct"] = str(lam)
    if m is not None:
        ds.attrs["true_multiplicity"] = int(m)
    ds.attrs["target"] = name

    summary = meta(argv, "free-energy")
    summary.update(
        model={"name": name, **desc, **truth_json(lam, m)}, data=origin, seed=args.seed,
        sampler="nuts",
        settings={"chains": args.chains, "warmup": args.warmup, "samples": args.samples,
                  "betas": [float(b) for b in betas]},
        ns=ns, F_n=[float(v) for v in ds["F_n"].values],
        F_n_se=[float(v) for v in ds["F_se"].isel(beta=-1).values],
        nll_true=[float(v) for v in ds["nll_true"].values],
        F_n_disc=sweeps.discretization_errors(ds),
        F_n_exact=exact_F,
        fit={k: ds.attrs[k] for k in ("lambda_hat", "lambda_se", "m_hat", "m_se", "fit_reduced_chi2")},
        fit_fixed_m=sweeps.fit_fixed_m(ds, m),
        wall_time_s=wall,
    )
    outdir = results_dir(args, "free-energy", desc["slug"])
    ds.attrs = clean_attrs(ds.attrs)  # netCDF has no booleans (e.g. the fit's m_fixed)
    write_netcdf(os.path.join(outdir, "free_energy.nc"), ds)
    summary["files"] = {"samples": "free_energy.nc", "summary": "summary.json",
                        "plots": [] if args.no_plots else plots(ds, outdir)}
    write_json(os.path.join(outdir, "summary.json"), summary)
    print_report(summary, outdir)
    return 0


CHUNK_WORK = 200_000  # n × β × chains × ticks per compiled chunk: about 2 s of NUTS on 2 CPU cores


def _unit_sampler(current: list):
    """st.sample_nuts for one n of the sweep, in short chunks: sample_nuts answers a Ctrl-C with
    the draws it has (attrs interrupted = 1), which free_energy_vs_n refuses by raising
    KeyboardInterrupt (so its "returning the draws" warning is muted here), and a Ctrl-C is
    acted on when the chunk running ends, so chunks are
    kept to about CHUNK_WORK: the driver's default (5% of the run) took 70 s per chunk at
    n = 3000 (25 β × 4 chains, warm-up, 2 busy cores). The chunk size does not change the draws
    (tick t's key is fold_in(key, t)) nor the --resume files' fingerprints, which hold the
    name sample_nuts (kept here) and the sweep's own arguments. ``current`` gets the n sampled,
    then "done"."""
    import functools
    import math
    import warnings

    import slt_thermo as st

    from ..samplers.interrupts import check_interrupt

    @functools.wraps(st.sample_nuts)
    def sample_nuts(target, betas, **kwargs):
        check_interrupt()  # a Ctrl-C between two n
        current[:] = [target.n]
        ticks = kwargs["num_warmup"] + kwargs["num_samples"]
        chunk = max(1, min(ticks, math.ceil(ticks / 20), 250,  # the driver's default, then at most
                           CHUNK_WORK // (target.n * len(betas) * kwargs["num_chains"])))  # CHUNK_WORK
        with warnings.catch_warnings():  # not "returning the draws": the sweep stops
            warnings.filterwarnings("ignore", "sampling interrupted", st.ConvergenceWarning)
            run = st.sample_nuts(target, betas, chunk_size=chunk, **kwargs)
        if not run.ds.attrs.get("interrupted"):  # else free_energy_vs_n raises KeyboardInterrupt
            current.append("done")
        return run
    return sample_nuts


def _interrupted(args, argv, desc, name, origin, ns, current, wall) -> None:
    """After a Ctrl-C: a results directory whose summary.json says so (``interrupted``: true, the
    n being sampled, the sizes finished before it, where they are kept) and one line on stderr."""
    import sys

    from ..io import write_json

    at, done = (current[0], len(current) > 1) if current else (None, False)
    finished = ns[:ns.index(at) + done] if at in ns else []
    if args.resume:
        kept = f"kept in {args.resume}: the same command continues the sweep"
    else:
        kept = "lost: run with --resume DIR to keep the finished sizes across an interruption"
    where = "before sampling" if at is None else f"{'after' if done else 'while'} sampling n = {at}"
    summary = meta(argv, "free-energy")
    summary.update(model={"name": name, **desc}, data=origin, seed=args.seed, sampler="nuts", ns=ns,
                   interrupted=True, interrupted_at_n=at, ns_finished=finished, resume=args.resume,
                   wall_time_s=wall, files={"summary": "summary.json"},
                   message=f"interrupted {where}; {len(finished)} of {len(ns)} sizes finished ({kept})")
    try:
        outdir = results_dir(args, "free-energy", desc["slug"])
        write_json(os.path.join(outdir, "summary.json"), summary)
    except (OSError, UsageError) as err:  # the interrupt matters more than its record
        print(f"(could not record the interrupted run: {err})", file=sys.stderr)
        outdir = None
    print(f"free-energy: {summary['message']}" + (f"; summary in {outdir}" if outdir else ""), file=sys.stderr,
          flush=True)


def plots(ds, outdir):
    """Draw the free-energy figures into ``outdir``; return their file names."""
    from .. import plotting

    names = []
    for name, fn in (("free_energy.png", plotting.free_energy),
                     ("free_energy_vs_n.png", plotting.free_energy_vs_n),
                     ("specific_heat.png", plotting.specific_heat)):
        fn(ds, path=os.path.join(outdir, name))
        names.append(name)
    return names


def show(s: dict, outdir: str, *, redraw: bool) -> None:
    """``slt-thermo show`` of a free-energy directory: header, plots redrawn from the netCDF, report."""
    from ..io import read_netcdf

    print(f"{s['model']['name']}: F(β) over n = {', '.join(map(str, s['ns']))} ({s.get('data', '')})")
    if s.get("interrupted"):
        print(s["message"])
        return
    if redraw:
        s["files"]["plots"] = plots(read_netcdf(os.path.join(outdir, s["files"]["samples"])), outdir)
    print_report(s, outdir)


def print_report(s: dict, outdir: str) -> None:
    """The free-energy tables: F_n per n (beside the exact F_n when known), the fits, files."""
    lam, lam_f, m = s["model"].get("rlct"), s["model"].get("rlct_float"), s["model"].get("multiplicity")
    known = all(v is not None for v in s["nll_true"])
    exact = s.get("F_n_exact")
    disc = s.get("F_n_disc") or [None] * len(s["ns"])
    print(f"\n{'n':>8} {'F_n = −log Z_n':>16} {'± MC err':>9} {'± disc':>7}"
          + (f" {'exact F_n':>12} {'z':>5}" if exact else "")
          + (f" {'nL_n(w0)':>12} {'F_n − nL_n(w0)':>15}" if known else ""))
    for i, n in enumerate(s["ns"]):
        line = f"{n:8d} {s['F_n'][i]:16.3f} {s['F_n_se'][i]:9.3f} {R.num(disc[i], '7.3f')}"
        if exact:
            line += f" {exact[i]:12.3f} {R.z(s['F_n'][i], s['F_n_se'][i], exact[i]):>5}"
        if known:
            line += f" {s['nll_true'][i]:12.3f} {s['F_n'][i] - s['nll_true'][i]:15.3f}"
        print(line)
    print("(MC err: Monte Carlo standard error; disc: Richardson estimate of the TI discretization error)")
    bad = [n for n, d, e in zip(s["ns"], disc, s["F_n_se"]) if d is not None and e and d > max(2 * e, 0.05)]
    if bad:
        print(f"check: the ladder is too coarse for n = {', '.join(map(str, bad))} (discretization error > "
              "2 MC errors): use more rungs, e.g. --betas 32")
    f = s["fit"]
    print("\nfit F_n ≈ nL_n(w0) + λ log n − (m−1) log log n + c" + ("" if known else " + a·n"))
    lam_text = R.exact_text(lam, lam_f, "?")
    print(f"  λ̂ = {R.pm(f['lambda_hat'], f['lambda_se'])}   exact λ = {lam_text}   "
          f"z = {R.z(f['lambda_hat'], f['lambda_se'], lam_f) or '-'}")
    print(f"  m̂ = {R.pm(f['m_hat'], f['m_se'])}   exact m = {'?' if m is None else m}")
    g = s.get("fit_fixed_m")
    if g:
        print(f"  with m fixed at the exact m = {g['m']}: λ̂ = {R.pm(g['lambda_hat'], g['lambda_se'])}   "
              f"z = {R.z(g['lambda_hat'], g['lambda_se'], lam_f) or '-'}")
    if "population" not in s.get("data", ""):
        print("  (F_n − nL_n(w0) also holds a random, data-dependent O(1) term that the MC errors do not "
              "count; --population removes it)")
    print(f"\nsampling took {s['wall_time_s']:.1f} s")
    R.print_files(s, outdir)
