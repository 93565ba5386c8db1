"""``slt-thermo therml``: TherML's σS posterior on Appendix B's toy, sampled over a σ-ladder, with
R, D, C, S, J per σ and the checks between them (slt_thermo.therml)."""

from __future__ import annotations

import os
import time

from . import _report as R
from ._args import (Formatter, UsageError, add_out, add_sampler_options, int_at_least, nonnegative_float,
                    positive_float, positive_list)

HELP = "TherML's σS posterior on the Appendix-B toy: R, D, C, S, J vs σ with error bars"
DEFAULT_SIGMAS = (0.5, 1.0, 2.0, 4.0, 8.0)


def add_parser(sub):
    """The ``therml`` subparser."""
    p = sub.add_parser(
        "therml", help=HELP, formatter_class=Formatter,
        description="TherML (Alemi & Fischer 2018): the optimal parameter distribution p*(θ) ∝ q(θ) "
                    "exp(−(ρR + δD + γC)/σ) is a tempered posterior with β = 1/σ. On the toy of their "
                    "Appendix B (30 input bins, I(x; y) = 0.5 nats, n examples) and its 154-parameter "
                    "encoder/decoder/classifier, one NUTS run over the σ-ladder (plus rungs near β = 0 for "
                    "thermodynamic integration) gives ⟨R⟩, ⟨D⟩, ⟨C⟩, S = KL(p*‖q), J = ⟨H⟩ + σS against "
                    "−σ log Z (eq. 35) and the rate capacity K_D per σ, with Monte Carlo errors, and the "
                    "same functionals on the infinite-data distribution (the generalization gap).")
    g = p.add_argument_group("TherML")
    g.add_argument("--sigmas", type=positive_list("temperatures"), default=list(DEFAULT_SIGMAS), metavar="S1,S2,…",
                   help="temperatures σ > 0")
    g.add_argument("--n", type=int_at_least(1), default=50, help="training examples drawn from the toy")
    g.add_argument("--rho", type=nonnegative_float, default=1.0, help="multiplier ρ of the rate R")
    g.add_argument("--delta", type=nonnegative_float, default=1.0, help="multiplier δ of the distortion D")
    g.add_argument("--gamma", type=nonnegative_float, default=1.0, help="multiplier γ of the classification error C")
    g.add_argument("--prior-scale", type=positive_float, default=3.0, help="q(θ) = N(0, scale²) per parameter")
    g.add_argument("--encoder-noise", action="store_true",
                   help="add the 30 information-dropout noise parameters α(x) (184 parameters; the encoder "
                        "is averaged over 16 fixed noise draws)")
    g.add_argument("--ti-rungs", type=int_at_least(0), default=8,
                   help="extra rungs below the smallest β for thermodynamic integration from β = 0")
    g.add_argument("--seed", type=int_at_least(0), default=0, help="PRNG seed (data and sampler)")
    add_sampler_options(p, chains=4, warmup=300, samples=300)
    add_out(p)
    return p


def run(args, argv) -> int:
    """Sample the σS posterior over the ladder, tabulate, write the results directory."""
    import jax
    import numpy as np

    from .. import therml
    from ..io import write_json
    from ..samplers import sample_nuts
    from ._common import meta, results_dir

    if args.warmup < 1:
        raise UsageError("--warmup", "NUTS needs warmup >= 1 to adapt its step size")
    toy = therml.toy(args.n, key=jax.random.PRNGKey(args.seed))
    model = therml.Model(prior_scale=args.prior_scale, encoder_noise=args.encoder_noise)
    target = therml.posterior(model, toy.data, rho=args.rho,
                              delta=args.delta, gamma=args.gamma, population=toy.p_xy)
    betas = therml.betas(args.sigmas, ti_rungs=args.ti_rungs)
    print(f"TherML toy (Appendix B): n = {args.n}, noise s = {toy.s:.4f} (I(x; y) = {toy.mutual_information():.3f} "
          f"nats); {model.num_params} parameters, q = N(0, {args.prior_scale:g}²); ρ = {args.rho:g}, "
          f"δ = {args.delta:g}, γ = {args.gamma:g}")
    print(f"NUTS: {betas.size} rungs (σ = {', '.join(f'{s:g}' for s in args.sigmas)} and {args.ti_rungs} more "
          f"near β = 0, and β = 0) × {args.chains} chains × ({args.warmup} warmup + {args.samples} draws)", flush=True)
    t0 = time.perf_counter()
    run_ = sample_nuts(target, betas, num_chains=args.chains, num_warmup=args.warmup, num_samples=args.samples,
                       key=jax.random.PRNGKey(args.seed + 1))
    wall = time.perf_counter() - t0
    tab = therml.table(run_, target)
    keep = np.isin(tab["beta"].values, 1.0 / np.asarray(args.sigmas))
    rhat = run_.summary()["nll_rhat"]
    rows = []
    for i in np.flatnonzero(keep)[::-1]:  # by σ, ascending
        row = {"sigma": float(tab["sigma"].values[i]), "beta": float(tab["beta"].values[i])}
        for k in ("R", "D", "C", "S", "J", "minus_sigma_log_Z", "K_D"):
            row[k], row[f"{k}_se"] = float(tab[k].values[i]), float(tab[f"{k}_se"].values[i])
        row["J_z"] = float(tab["J_z"].values[i])
        for k in ("D", "C"):
            pop = run_[f"{k}_pop"].values[i][run_.healthy.values[i]]
            row[f"{k}_pop"] = float(pop.mean())
        row["rhat"] = float(rhat.loc[row["beta"]])
        rows.append(row)
    slug = f"n{args.n}"
    outdir = results_dir(args, "therml", slug)
    run_.save(os.path.join(outdir, "samples.nc"))
    summary = meta(argv, "therml")
    summary.update(n=args.n, seed=args.seed, noise_s=toy.s, multipliers={"rho": args.rho, "delta": args.delta,
                   "gamma": args.gamma}, prior_scale=args.prior_scale, encoder_noise=args.encoder_noise,
                   num_params=model.num_params, betas=betas.tolist(), rows=rows,
                   wall_time_s=wall, files={"samples": "samples.nc", "summary": "summary.json", "plots": []})
    if not args.no_plots:
        summary["files"]["plots"] = plots(summary, outdir)
    write_json(os.path.join(outdir, "summary.json"), summary)
    print_report(summary, outdir)
    return 0


def plots(s: dict, outdir: str) -> list[str]:
    """R, D, C and S against σ with 2-se error bars: therml_functionals.png."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..plotting import _plain_log_ticks, save

    fig = Figure(figsize=(9, 3.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 4)
    sig = np.array([r["sigma"] for r in s["rows"]])
    for ax, k in zip(axes, ("R", "D", "C", "S")):
        ax.errorbar(sig, [r[k] for r in s["rows"]], yerr=[2 * r[f"{k}_se"] for r in s["rows"]], fmt="o-",
                    capsize=3, label="training data")
        if f"{k}_pop" in s["rows"][0]:
            ax.plot(sig, [r[f"{k}_pop"] for r in s["rows"]], "s--", label="infinite data")
            ax.legend(fontsize=7)
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis)
        ax.set_xlabel("σ")
        ax.set_title(f"⟨{k}⟩" if k != "S" else "S = KL(p*‖q)")
    fig.tight_layout()
    save(fig, os.path.join(outdir, "therml_functionals.png"))
    return ["therml_functionals.png"]


def show(s: dict, outdir: str, *, redraw: bool) -> None:
    """``slt-thermo show`` of a therml directory."""
    if redraw:
        s["files"]["plots"] = plots(s, outdir)
    print_report(s, outdir)


def print_report(s: dict, outdir: str) -> None:
    """The table of R, D, C, S, J per σ, the eq.-35 check and the generalization gaps."""
    print(f"\n{'σ':>6} {'⟨R⟩':>14} {'⟨D⟩':>14} {'⟨C⟩':>14} {'S = KL(p*‖q)':>14} {'J = ⟨H⟩+σS':>15} "
          f"{'−σ log Z':>15} {'z':>5} {'K_D':>12} {'R-hat':>6}")
    for r in s["rows"]:
        print(f"{r['sigma']:6g} {R.pm(r['R'], r['R_se']):>14} {R.pm(r['D'], r['D_se']):>14} "
              f"{R.pm(r['C'], r['C_se']):>14} {R.pm(r['S'], r['S_se']):>14} {R.pm(r['J'], r['J_se']):>15} "
              f"{R.pm(r['minus_sigma_log_Z'], r['minus_sigma_log_Z_se']):>15} {r['J_z']:5.1f} "
              f"{R.pm(r['K_D'], r['K_D_se']):>12} {r['rhat']:6.3f}")
    print(f"\n{'σ':>6} {'D train':>10} {'D infinite':>11} {'C train':>10} {'C infinite':>11}   (per example)")
    n = s["n"]
    for r in s["rows"]:
        print(f"{r['sigma']:6g} {r['D'] / n:10.4f} {r['D_pop'] / n:11.4f} {r['C'] / n:10.4f} {r['C_pop'] / n:11.4f}")
    print()
    R.say("J uses S = ∫β Var(H) dβ (the fluctuation route) and −σ log Z uses TI of ⟨H⟩: they agree in exact "
          "arithmetic (eq. 35), so |z| > 4 means the ladder or the sampling is off. R-hat > 1.05: the chains "
          "disagree (p* of this model is multimodal: read every number of that row as provisional).")
    if s.get("wall_time_s") is not None:
        print(f"\nNUTS took {s['wall_time_s']:.1f} s")
    R.print_files(s, outdir)
