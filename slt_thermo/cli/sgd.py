"""``slt-thermo sgd``: SGD at a grid of (η, B) against NUTS — the thermometers, the distances at the
matched β̂ and λ̂ along training (slt_thermo.sgd; the science is there, this is parsing and printing)."""

from __future__ import annotations

import os
import time

from . import _report as R
from ._args import Formatter, add_model_options, add_out, add_sampler_options, int_at_least, positive_list

HELP = "SGD against tempered posteriors: effective β̂ four ways, distances, λ̂ along training"


def add_parser(sub):
    """The ``sgd`` subparser."""
    p = sub.add_parser(
        "sgd", help=HELP, formatter_class=Formatter,
        description="Does SGD with learning rate η and batch size B sample a tempered posterior p^β, and at "
                    "which β? Constant-step SGD from the minimum w* at every (η, B); its stationary iterates' "
                    "β̂ by energy matching against a NUTS ladder (MBAR), equipartition (λ/(⟨nL_n⟩ − nL_n(w*))), "
                    "covariance matching (regular w* only) and Mandt's 2B/(ηnσ_g²); MMD² (permutation p-value), "
                    "energy distance and sliced W₂² against NUTS draws at the matched β̂; and λ̂ (st.llc) at "
                    "checkpoints of one SGD run from a random start.")
    add_model_options(p, n_help="training examples (default 2000)", n_kwargs={"type": int_at_least(2)})
    p.set_defaults(model="linear_regression")
    g = p.add_argument_group("SGD")
    g.add_argument("--lrs", type=positive_list("learning rates"), default=[0.01, 0.04], metavar="η1,η2,…",
                   help="learning rates")
    g.add_argument("--batch-sizes", type=positive_list("batch sizes"), default=[10.0, 40.0], metavar="B1,B2,…",
                   help="minibatch sizes")
    g.add_argument("--steps", type=int_at_least(10), default=4000, help="SGD steps per run")
    g.add_argument("--runs", type=int_at_least(2), default=8, help="independent SGD runs per setting")
    g.add_argument("--llc-checkpoints", type=int_at_least(0), default=4,
                   help="checkpoints of the training run for λ̂ along training (0: skip)")
    g.add_argument("--llc-gamma", type=float, default=1.0,
                   help="localization γ of the LLC along training (st.llc's default 100 truncates λ̂ at modest n)")
    add_sampler_options(p, chains=4, warmup=300, samples=500)
    add_out(p)
    return p


def run(args, argv) -> int:
    """Compare, print, write the results directory."""
    import jax
    import optax

    from .. import sgd
    from .._utils import known_rlct
    from ..io import write_json
    from ..llc import nearest_minimum
    from ._common import make_target, meta, resolve_model, results_dir

    obj, desc = resolve_model(args.model, args.param)
    target, source = make_target(obj, args.n, args.seed, args.population, default_n=2000)
    model = target.model
    start = getattr(model, "true_params", None) or target.init(jax.random.PRNGKey(args.seed))
    nm = nearest_minimum(target, start)
    w_star = start if nm is None else nm["params"]
    lam, _ = known_rlct(obj)
    print(f"SGD vs samplers: {target.name}, n = {target.n} ({source}); w* = the minimum L-BFGS reaches from the "
          f"true parameters; λ = {lam if lam is not None else 'unknown'}")
    print(f"SGD: η ∈ {args.lrs}, B ∈ {[int(b) for b in args.batch_sizes]}, {args.runs} runs × {args.steps} steps; "
          f"NUTS {args.chains} chains × ({args.warmup} + {args.samples})", flush=True)
    t0 = time.perf_counter()
    ds = sgd.compare(target, w_star, learning_rates=args.lrs, batch_sizes=[int(b) for b in args.batch_sizes],
                     key=jax.random.PRNGKey(args.seed + 1), num_steps=args.steps, num_runs=args.runs,
                     rlct=None if lam is None else float(lam),
                     nuts={"num_chains": args.chains, "num_warmup": args.warmup, "num_samples": args.samples,
                           "progress": False})
    along = None
    if args.llc_checkpoints:
        traj = sgd.sgd_trajectory(target, optax.sgd, schedule=float(max(args.lrs)), num_steps=args.steps,
                                  batch_size=int(min(args.batch_sizes)), num_runs=2, record_every=10,
                                  key=jax.random.PRNGKey(args.seed + 2), progress=False)
        along = sgd.llc_along(traj, target, key=jax.random.PRNGKey(args.seed + 3),
                              num_checkpoints=args.llc_checkpoints, gamma=args.llc_gamma)
    wall = time.perf_counter() - t0
    rows = []
    for i in range(ds.sizes["setting"]):
        row = {"learning_rate": float(ds["learning_rate"].values[i]), "batch_size": int(ds["batch_size"].values[i])}
        for j, m in enumerate(ds["thermometer"].values):
            row[f"beta_{m}"], row[f"beta_{m}_se"] = float(ds["beta"].values[i, j]), float(ds["se"].values[i, j])
        for k in ("energy", "energy_se", "mmd2", "mmd2_se", "mmd_p", "energy_distance", "sliced_w2"):
            row[k] = float(ds[k].values[i])
        rows.append(row)
    summary = meta(argv, "sgd")
    summary.update(model=desc, n=target.n, seed=args.seed, methods=[str(m) for m in ds["thermometer"].values],
                   ladder=ds.attrs["ladder"], rows=rows, rlct=None if lam is None else float(lam),
                   along=None if along is None else {k: along[k].values.tolist()
                                                     for k in ("llc", "llc_ref_minimum", "se", "nll")}
                   | {"step": along["step"].values.tolist(), "gamma": args.llc_gamma},
                   wall_time_s=wall, files={"summary": "summary.json", "plots": []})
    outdir = results_dir(args, "sgd", desc["slug"])
    if not args.no_plots:
        summary["files"]["plots"] = plots(summary, outdir)
    write_json(os.path.join(outdir, "summary.json"), summary)
    print_report(summary, outdir)
    return 0


def plots(s: dict, outdir: str) -> list[str]:
    """β̂ against B/η (the temperature ∝ η/B rule) and λ̂ along training: sgd.png."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..plotting import save

    fig = Figure(figsize=(9, 3.4))
    FigureCanvasAgg(fig)
    ax = fig.subplots(1, 2)
    ratio = np.array([r["batch_size"] / r["learning_rate"] for r in s["rows"]])
    for k, m in enumerate(s["methods"]):
        ax[0].errorbar(ratio * (1 + 0.03 * (k - 1.5)), [r[f"beta_{m}"] for r in s["rows"]],
                       yerr=[2 * r[f"beta_{m}_se"] for r in s["rows"]], fmt="o", capsize=3, label=m)
    ax[0].set_xscale("log")
    ax[0].set_yscale("log")
    ax[0].set_xlabel("B / η")
    ax[0].set_ylabel("β̂")
    ax[0].legend(fontsize=7)
    ax[0].set_title("effective inverse temperature")
    if s.get("along"):
        a = s["along"]
        ax[1].errorbar(a["step"], a["llc_ref_minimum"], yerr=2 * np.asarray(a["se"]), fmt="o-", capsize=3,
                       label="λ̂ + βΔH (nearest minimum)")
        if s.get("rlct") is not None:
            ax[1].axhline(s["rlct"], color="k", ls="--", label="λ")
        ax[1].set_xlabel("SGD step")
        ax[1].set_title("λ̂ along training")
        ax[1].legend(fontsize=7)
    else:
        ax[1].set_axis_off()
    fig.tight_layout()
    save(fig, os.path.join(outdir, "sgd.png"))
    return ["sgd.png"]


def show(s: dict, outdir: str, *, redraw: bool) -> None:
    """``slt-thermo show`` of an sgd directory."""
    if redraw:
        s["files"]["plots"] = plots(s, outdir)
    print_report(s, outdir)


def print_report(s: dict, outdir: str) -> None:
    """The thermometer table per (η, B), the distances, λ̂ along training."""
    methods = s["methods"]
    print(f"\n{'η':>7} {'B':>4} " + " ".join(f"{'β̂ ' + m:>17}" for m in methods) + f" {'nβ̂ (energy)':>13}")
    for r in s["rows"]:
        print(f"{r['learning_rate']:7g} {r['batch_size']:4d} "
              + " ".join(f"{R.pm(r[f'beta_{m}'], r[f'beta_{m}_se']):>17}" for m in methods)
              + f" {s['n'] * r[f'beta_{methods[0]}']:13.4g}")
    print(f"\n{'η':>7} {'B':>4} {'MMD²':>20} {'p':>6} {'energy dist.':>13} {'sliced W₂²':>11}   (SGD vs NUTS at β̂)")
    for r in s["rows"]:
        print(f"{r['learning_rate']:7g} {r['batch_size']:4d} {R.pm(r['mmd2'], r['mmd2_se']):>20} {r['mmd_p']:6.3f} "
              f"{r['energy_distance']:13.3g} {r['sliced_w2']:11.3g}")
    if s.get("along"):
        a = s["along"]
        print(f"\nλ̂ along training (γ = {a['gamma']:g}; λ = {s['rlct'] if s.get('rlct') is not None else '?'}); "
              "λ̂ + βΔH corrects for the checkpoint's height ΔH above the nearest minimum:")
        for step, v, ref, se, h in zip(a["step"], a["llc"], a["llc_ref_minimum"], a["se"], a["nll"]):
            print(f"  step {step:6d}: nL_n = {h:12.5g}   λ̂ = {R.pm(v, se):>18}   λ̂ + βΔH = {R.pm(ref, se)}")
    print()
    R.say("β̂ ∝ B/η where SGD behaves like a tempered posterior (Mandt; Smith & Le). Energy matching assumes "
          "only that SGD's mean energy is that of some p^β; covariance matching needs a regular minimum; "
          "Mandt's formula ignores the O(ηκ) discreteness (too cold by 2/(2 − ηκ)). A small MMD p-value "
          "says the iterates are not draws from p^β̂ even where their energy matches.")
    if s.get("wall_time_s") is not None:
        print(f"\ntook {s['wall_time_s']:.1f} s")
    R.print_files(s, outdir)
