"""``slt-thermo iso``: Gao & Chaudhari's iso-classification on TherML's Appendix-B toy at σ = 0: the
process that holds the classification loss C while the rate R and the distortion D trade, the
transfer between two tasks at constant C beside fine-tuning and training from scratch, and
(``--surface``) the equilibrium surface F(λ, γ) with its concavity and envelope checks
(slt_thermo.therml; the science is there, this is parsing, printing and plotting)."""

from __future__ import annotations

import os
import time

from . import _report as R
from ._args import Formatter, UsageError, _finite_float, add_out, int_at_least, positive_float

HELP = "Gao & Chaudhari's iso-classification on the TherML toy: C held while R and D trade; transfer"

finite_float = _finite_float(lambda v: True, "a finite number")

ISO_COLUMNS = ("lam", "gam", "R", "D", "C", "F", "dC_dlam", "dC_dgam")
TRANSFER_COLUMNS = ("t", "lam", "gam", "R", "D", "C", "F", "accuracy", "accuracy_target", "dC_dlam", "dC_dgam",
                    "dC_dt", "capped", "C_finetune", "accuracy_finetune", "accuracy_target_finetune")
SURFACE_ROUNDS = 3  # therml.equilibrium_surface's warm-start rounds (as in tests/test_therml.py)


def add_parser(sub):
    """The ``iso`` subparser."""
    p = sub.add_parser(
        "iso", help=HELP, formatter_class=Formatter,
        description="Gao & Chaudhari (\"A Free-Energy Principle for Representation Learning\", ICML 2020) on "
                    "TherML's Appendix-B toy and its 154-parameter model, at σ = 0. With the rate's weight 1, "
                    "F(λ, γ) = min_θ R + λD + γC is concave, D = ∂F/∂λ and C = ∂F/∂γ. The iso-classification "
                    "process moves the multipliers along λ̇ = −α∂C/∂γ, γ̇ = α∂C/∂λ (eq. 31), θ re-equilibrated "
                    "by Adam after every step, so C stays put while R and D trade (dR = −λdD, Remark 10). The "
                    "transfer (eq. 32) moves from a source task to its mirror image along t ∈ [0, 1] with "
                    "λ̇ = k and γ chosen to hold C, beside fine-tuning (multipliers held) and training from "
                    "scratch on the target. --surface adds the 3 × 3 equilibrium surface around (λ, γ) and "
                    "its concavity and envelope checks. About a minute on a laptop CPU.")
    g = p.add_argument_group("iso-classification process (eq. 31)")
    g.add_argument("--lam", type=positive_float, default=1.0, help="start λ (the distortion's multiplier)")
    g.add_argument("--gam", type=positive_float, default=1.0, help="start γ (the classification loss's multiplier)")
    g.add_argument("--alpha", type=positive_float, default=0.01, help="Euler step α of (λ̇, γ̇) = α(−∂C/∂γ, ∂C/∂λ)")
    g.add_argument("--steps", type=int_at_least(1), default=10, help="Euler steps of the process")
    g.add_argument("--h", type=positive_float, default=0.05,
                   help="finite-difference step of ∂C/∂λ, ∂C/∂γ (smaller than λ and γ)")
    g.add_argument("--equilibration", type=int_at_least(10), default=2000,
                   help="Adam steps that re-equilibrate θ after every move (and per finite difference)")
    g.add_argument("--init-steps", type=int_at_least(1), default=20000, help="Adam steps of the start's equilibrium")
    g = p.add_argument_group("transfer (eq. 32)")
    g.add_argument("--no-transfer", action="store_true", help="skip the transfer")
    g.add_argument("--transfer-lam", type=positive_float, default=1.0, help="the transfer's start λ")
    g.add_argument("--transfer-gam", type=positive_float, default=0.5,
                   help="the transfer's start γ (where C has room to move: not near the model's best C)")
    g.add_argument("--transfer-k", type=finite_float, default=-0.5,
                   help="λ̇ = k per unit t (negative: the distortion's weight falls, freeing capacity)")
    g.add_argument("--transfer-steps", type=int_at_least(1), default=20, help="steps of t from 0 to 1")
    g.add_argument("--transfer-equilibration", type=int_at_least(10), default=500,
                   help="Adam steps per equilibration of the transfer")
    g.add_argument("--transfer-init-steps", type=int_at_least(1), default=10000,
                   help="Adam steps of the transfer's start on the source task (and of training from scratch)")
    g = p.add_argument_group("equilibrium surface")
    g.add_argument("--surface", action="store_true",
                   help="also the 3 × 3 surface F(λ, γ) around (--lam, --gam) and its checks (~30 s more)")
    g.add_argument("--surface-step", type=positive_float, default=0.25,
                   help="grid spacing of the surface (smaller than --lam and --gam)")
    g.add_argument("--surface-steps", type=int_at_least(10), default=6000,
                   help="Adam steps per grid point and warm-start round")
    g = p.add_argument_group("toy")
    g.add_argument("--n", type=int_at_least(1), default=50, help="training examples of the toy (and per task)")
    g.add_argument("--seed", type=int_at_least(0), default=0,
                   help="PRNG seed: the toy's data from seed, θ's initializations from seed + 1")
    add_out(p)
    return p


def _check(args):
    """Usage errors the library would raise later, named by their argument (nothing is written)."""
    if args.h >= min(args.lam, args.gam):
        raise UsageError("--h", f"must be smaller than --lam ({args.lam:g}) and --gam ({args.gam:g}), got {args.h:g}")
    if args.surface and args.surface_step >= min(args.lam, args.gam):
        raise UsageError("--surface-step", f"must be smaller than --lam ({args.lam:g}) and --gam ({args.gam:g}) so "
                                           f"the grid stays at multipliers > 0, got {args.surface_step:g}")


def _rows(table, columns) -> list[dict]:
    return [{"step": int(s), **{k: float(table[k].values[i]) for k in columns}}
            for i, s in enumerate(table["step"].values)]


def run(args, argv) -> int:
    """Run the process, the transfer and (optionally) the surface; tabulate, plot, write the results directory."""
    _check(args)
    import jax

    from .. import therml
    from ..io import write_json
    from ._common import meta, results_dir

    data_key, key = jax.random.PRNGKey(args.seed), jax.random.PRNGKey(args.seed + 1)
    toy = therml.toy(args.n, key=data_key)
    model = therml.Model()
    print(f"TherML toy (Appendix B): n = {args.n}, I(x; y) = {toy.mutual_information():.3f} nats; "
          f"{model.num_params} parameters; σ = 0 (Adam)")
    summary = meta(argv, "iso")
    summary.update(n=args.n, seed=args.seed, num_params=model.num_params, wall_time_s={})

    print(f"iso-classification: from (λ, γ) = ({args.lam:g}, {args.gam:g}), {args.steps} steps of α = {args.alpha:g}, "
          f"h = {args.h:g}, {args.equilibration} Adam steps per equilibration", flush=True)
    t0 = time.perf_counter()
    iso = therml.iso_classification(model, toy.data, lam=args.lam, gam=args.gam, key=key, num_steps=args.steps,
                                    alpha=args.alpha, h=args.h, equilibration=args.equilibration,
                                    init_steps=args.init_steps)
    summary["wall_time_s"]["iso"] = time.perf_counter() - t0
    summary["iso"] = {"rows": _rows(iso.table, ISO_COLUMNS), "init_steps": args.init_steps,
                      **{k: float(v) for k, v in iso.table.attrs.items()}}

    summary["transfer"] = None
    if not args.no_transfer:
        print(f"transfer: source → mirrored target in {args.transfer_steps} steps of t, from (λ, γ) = "
              f"({args.transfer_lam:g}, {args.transfer_gam:g}), k = {args.transfer_k:g}, "
              f"{args.transfer_equilibration} Adam steps per equilibration", flush=True)
        source, target, _, _ = therml.tasks(args.n, key=data_key)
        t0 = time.perf_counter()
        tr = therml.iso_transfer(model, source, target, lam=args.transfer_lam, gam=args.transfer_gam,
                                 k=args.transfer_k, key=key, num_steps=args.transfer_steps,
                                 equilibration=args.transfer_equilibration, init_steps=args.transfer_init_steps)
        summary["wall_time_s"]["transfer"] = time.perf_counter() - t0
        summary["transfer"] = {"rows": _rows(tr.table, TRANSFER_COLUMNS), "init_steps": args.transfer_init_steps,
                               **{k: float(v) for k, v in tr.table.attrs.items()}}

    summary["surface"] = None
    if args.surface:
        s = args.surface_step
        lams, gams = [args.lam - s, args.lam, args.lam + s], [args.gam - s, args.gam, args.gam + s]
        print(f"equilibrium surface: λ ∈ {{{', '.join(f'{v:g}' for v in lams)}}} × γ ∈ "
              f"{{{', '.join(f'{v:g}' for v in gams)}}}, {args.surface_steps} Adam steps, {SURFACE_ROUNDS} warm-start "
              "rounds", flush=True)
        t0 = time.perf_counter()
        ds = therml.equilibrium_surface(model, toy.data, lams, gams, key=key, num_steps=args.surface_steps,
                                        rounds=SURFACE_ROUNDS)
        summary["wall_time_s"]["surface"] = time.perf_counter() - t0
        summary["surface"] = {"lam": ds["lam"].values.tolist(), "gam": ds["gam"].values.tolist(),
                              **{k: ds[k].values.tolist() for k in ("F", "R", "D", "C", "F_err")},
                              "checks": therml.surface_checks(ds), "num_steps": args.surface_steps,
                              "rounds": SURFACE_ROUNDS}

    outdir = results_dir(args, "iso", f"n{args.n}")
    summary["files"] = {"summary": "summary.json", "plots": []}
    if not args.no_plots:
        summary["files"]["plots"] = plots(summary, outdir)
    write_json(os.path.join(outdir, "summary.json"), summary)
    print_report(summary, outdir)
    return 0


# ------------------------------------------------------------------------------ plots
def _save(fig, outdir, name):
    from ..plotting import save

    fig.tight_layout()
    save(fig, os.path.join(outdir, name))
    return name


def _figure(size, ncols):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols)


def _col(rows, k):
    import numpy as np

    return np.array([np.nan if r[k] is None else r[k] for r in rows], dtype=float)


def plot_iso(iso: dict, outdir: str) -> str:
    """The process: R against D (with Remark 10's slope −λ), the (λ, γ) path, the changes of C, D, R
    and F along the steps: iso_process.png."""
    rows = iso["rows"]
    step, lam, gam = _col(rows, "step"), _col(rows, "lam"), _col(rows, "gam")
    Rr, D, C, F = (_col(rows, k) for k in ("R", "D", "C", "F"))
    fig, ax = _figure((12, 3.2), 4)
    ax[0].plot(D, Rr, "o-", ms=4)
    ax[0].plot(D[0], Rr[0], "ks", ms=6, label="start")
    ax[0].plot(D, Rr[0] - lam[0] * (D - D[0]), "k--", lw=1, label="slope −λ₀ (dR = −λdD)")
    ax[0].set_xlabel("D"), ax[0].set_ylabel("R"), ax[0].set_title("R against D along the process")
    ax[0].legend(fontsize=7)
    ax[1].plot(lam, gam, "o-", ms=4)
    ax[1].plot(lam[0], gam[0], "ks", ms=6)
    ax[1].set_xlabel("λ"), ax[1].set_ylabel("γ"), ax[1].set_title("the (λ, γ) path")
    ax[2].axhspan(-iso["C_eq_err"], iso["C_eq_err"], color="0.85", label="± C's equilibration error")
    for y, lab in ((C - C[0], "C − C₀"), (D - D[0], "D − D₀"), (Rr - Rr[0], "R − R₀")):
        ax[2].plot(step, y, "o-", ms=3, label=lab)
    ax[2].set_xlabel("step"), ax[2].set_title("C held, R and D trade"), ax[2].legend(fontsize=7)
    ax[3].plot(step, F, "o-", ms=3)
    ax[3].set_xlabel("step"), ax[3].set_title("F = R + λD + γC")
    return _save(fig, outdir, "iso_process.png")


def plot_transfer(tr: dict, outdir: str) -> str:
    """The transfer: C(t) of the transfer and of fine-tuning with training from scratch as markers, the
    multipliers along t, the accuracy on the target: iso_transfer.png."""
    import numpy as np

    rows = tr["rows"]
    t, lam, gam, C, Cft = (_col(rows, k) for k in ("t", "lam", "gam", "C", "C_finetune"))
    acc, acc_ft, capped = _col(rows, "accuracy_target"), _col(rows, "accuracy_target_finetune"), _col(rows, "capped")
    cap = capped > 0
    fig, ax = _figure((12, 3.4), 3)
    ax[0].plot(t, C, "o-", ms=3, label="iso-classification transfer")
    ax[0].plot(t, Cft, "s--", ms=3, label="fine-tuning (λ, γ held)")
    ax[0].axhline(C[0], color="k", lw=0.8, ls=":")
    if cap.any():
        ax[0].plot(t[cap], C[cap], "o", mfc="none", mec="r", ms=8, label="capped γ step")
    ax[0].plot([1.0], [tr["scratch_C"]], "*", ms=11, label="scratch (final λ, γ)")
    ax[0].plot([1.0], [tr["scratch_C_start"]], "X", ms=8, label="scratch (start λ, γ)")
    ax[0].set_xlabel("t"), ax[0].set_ylabel("C"), ax[0].set_title("C along the transfer"), ax[0].legend(fontsize=7)
    ax[1].plot(t, gam, "o-", ms=3, label="γ")
    ax[1].plot(t, lam, "s-", ms=3, label="λ")
    if cap.any():
        ax[1].plot(t[cap], gam[cap], "o", mfc="none", mec="r", ms=8)
    ax[1].set_yscale("log")
    ax[1].set_xlabel("t"), ax[1].set_title("the multipliers"), ax[1].legend(fontsize=7)
    ax[2].plot(t, acc, "o-", ms=3, label="transfer")
    ax[2].plot(t, acc_ft, "s--", ms=3, label="fine-tuning")
    ax[2].plot([1.0], [tr["scratch_accuracy"]], "*", ms=11, label="scratch (final λ, γ)")
    ax[2].set_ylim(min(0.5, np.nanmin(acc)), 1.0)
    ax[2].set_xlabel("t"), ax[2].set_title("accuracy on the target task"), ax[2].legend(fontsize=7)
    return _save(fig, outdir, "iso_transfer.png")


def plot_surface(sf: dict, outdir: str) -> str:
    """The slopes of the surface: D against λ per γ and C against γ per λ (both falling: F is
    concave), each beside F's central difference at the middle point (the envelope theorem):
    iso_surface.png."""
    import numpy as np

    F, D, C = (np.array(sf[k]) for k in ("F", "D", "C"))
    lam, gam = np.array(sf["lam"]), np.array(sf["gam"])
    fig, ax = _figure((8, 3.2), 2)
    for j, g in enumerate(gam):
        line, = ax[0].plot(lam, D[:, j], "o-", label=f"D, γ = {g:g}")
        ax[0].plot(lam[1], (F[2, j] - F[0, j]) / (lam[2] - lam[0]), "x", ms=9, color=line.get_color())
    for i, lm in enumerate(lam):
        line, = ax[1].plot(gam, C[i, :], "o-", label=f"C, λ = {lm:g}")
        ax[1].plot(gam[1], (F[i, 2] - F[i, 0]) / (gam[2] - gam[0]), "x", ms=9, color=line.get_color())
    ax[0].plot([], [], "kx", label="∂F/∂λ (central difference)")
    ax[1].plot([], [], "kx", label="∂F/∂γ (central difference)")
    ax[0].set_xlabel("λ"), ax[0].set_title("D = ∂F/∂λ"), ax[0].legend(fontsize=7)
    ax[1].set_xlabel("γ"), ax[1].set_title("C = ∂F/∂γ"), ax[1].legend(fontsize=7)
    return _save(fig, outdir, "iso_surface.png")


def plots(s: dict, outdir: str) -> list[str]:
    """iso_process.png, and iso_transfer.png / iso_surface.png where those ran."""
    names = [plot_iso(s["iso"], outdir)]
    if s.get("transfer"):
        names.append(plot_transfer(s["transfer"], outdir))
    if s.get("surface"):
        names.append(plot_surface(s["surface"], outdir))
    return names


def show(s: dict, outdir: str, *, redraw: bool) -> None:
    """``slt-thermo show`` of an iso directory."""
    if redraw:
        s["files"]["plots"] = plots(s, outdir)
    print_report(s, outdir)


# ------------------------------------------------------------------------------ report
def print_report(s: dict, outdir: str) -> None:
    """The process's table and its drift against the changes; the transfer's table against fine-tuning
    and scratch; the surface's checks."""
    iso = s["iso"]
    rows = iso["rows"]
    print(f"\niso-classification (eq. 31), α = {iso['alpha']:g}, h = {iso['h']:g}")
    print(f"{'step':>4} {'λ':>8} {'γ':>8} {'R':>10} {'D':>10} {'C':>10} {'C − C₀':>10} {'F':>10}")
    for r in rows:
        print(f"{r['step']:4d} {r['lam']:8.4f} {r['gam']:8.4f} {r['R']:10.4f} {r['D']:10.4f} {r['C']:10.5f} "
              f"{r['C'] - rows[0]['C']:+10.5f} {r['F']:10.4f}")
    first, last = rows[0], rows[-1]
    drift = max(abs(r["C"] - first["C"]) for r in rows)
    remark10 = -sum((a["lam"] + b["lam"]) / 2 * (b["D"] - a["D"]) for a, b in zip(rows, rows[1:]))
    print(f"\nC drifted by at most {drift:.4g} while D changed by {last['D'] - first['D']:+.4g} and R by "
          f"{last['R'] - first['R']:+.4g} (ratio |ΔD|/max|C − C₀| = "
          f"{abs(last['D'] - first['D']) / drift if drift > 0 else float('inf'):.3g})")
    print(f"Remark 10: ΔR = {last['R'] - first['R']:+.4g} against −∫λ dD = {remark10:+.4g}")
    print(f"equilibration errors (how far one more equilibration moves each): R {iso['R_eq_err']:.2g}, "
          f"D {iso['D_eq_err']:.2g}, C {iso['C_eq_err']:.2g}")
    if iso["C_eq_err"] >= drift and drift > 0:
        R.say("C's drift is within its equilibration error: the process held C as well as the equilibrations "
              "can tell.")
    elif max(iso["R_eq_err"], iso["D_eq_err"]) > abs(last["D"] - first["D"]):
        R.say("warning: one more equilibration moves R or D by more than the process did: the end point is not "
              "settled (a change of representation?); try a smaller --alpha or more --equilibration.")

    tr = s.get("transfer")
    if tr:
        rows = tr["rows"]
        c0 = rows[0]["C"]
        print(f"\ntransfer (eq. 32) from the source task to its mirror image, k = {tr['k']:g}")
        print(f"{'t':>5} {'λ':>7} {'γ':>9} {'C':>9} {'acc target':>10} {'capped':>6}   {'C fine-tune':>11} "
              f"{'acc target':>10}")
        for r in rows:
            print(f"{r['t']:5.2f} {r['lam']:7.3f} {r['gam']:9.3f} {r['C']:9.4f} {r['accuracy_target']:10.3f} "
                  f"{'yes' if r['capped'] else '':>6}   {r['C_finetune']:11.4f} {r['accuracy_target_finetune']:10.3f}")
        Cs, Cft = [r["C"] for r in rows], [r["C_finetune"] for r in rows]
        ncap = sum(1 for r in rows if r["capped"])
        print(f"\ntransfer:     C within [{min(Cs):.3f}, {max(Cs):.3f}] around C₀ = {c0:.3f} (max |C − C₀| = "
              f"{max(abs(c - c0) for c in Cs):.3f}; one more equilibration at the end moves C by {tr['C_eq_err']:.2g}); "
              f"target accuracy {rows[-1]['accuracy_target']:.3f}; {ncap} of {len(rows) - 1} γ steps capped")
        print(f"fine-tuning:  C within [{min(Cft):.3f}, {max(Cft):.3f}] (max |C − C₀| = "
              f"{max(abs(c - c0) for c in Cft):.3f}), ends at {Cft[-1]:.3f}; target accuracy "
              f"{rows[-1]['accuracy_target_finetune']:.3f}")
        print(f"from scratch: C = {tr['scratch_C']:.3f}, accuracy {tr['scratch_accuracy']:.3f} at the final (λ, γ) = "
              f"({rows[-1]['lam']:.3g}, {rows[-1]['gam']:.3g}); C = {tr['scratch_C_start']:.3f}, accuracy "
              f"{tr['scratch_accuracy_start']:.3f} at the start's")
        if ncap:
            R.say("A capped step (γ clipped to [γ/2, 2γ], or ∂C/∂γ ≥ 0) does not hold C at that step; the "
                  "Newton corrector pulls C back at the next ones.")

    sf = s.get("surface")
    if sf:
        c = sf["checks"]
        print(f"\nequilibrium surface F(λ, γ) = min R + λD + γC ({sf['num_steps']} Adam steps, {sf['rounds']} "
              "warm-start rounds)")
        print(f"{'λ':>6} {'γ':>6} {'F':>10} {'R':>10} {'D':>10} {'C':>9} {'F residual':>11}")
        for i, lm in enumerate(sf["lam"]):
            for j, g in enumerate(sf["gam"]):
                print(f"{lm:6g} {g:6g} {sf['F'][i][j]:10.4f} {sf['R'][i][j]:10.4f} {sf['D'][i][j]:10.4f} "
                      f"{sf['C'][i][j]:9.4f} {sf['F_err'][i][j]:11.2g}")
        for name, key, what in (("concave", "concavity", "largest 2nd difference / Hessian eigenvalue of F"),
                                ("D = ∂F/∂λ", "envelope_D", "largest |∂F/∂λ − D|"),
                                ("C = ∂F/∂γ", "envelope_C", "largest |∂F/∂γ − C|")):
            tol = c[f"{key}_tol"]
            ok = "holds" if c[key] <= tol else "FAILS"
            print(f"  {name:<10} {ok:<6} {what} = {c[key]:+.3g}  (tolerance {tol:.3g})")
        R.say("A failed envelope check usually means a grid point sits across a kink of F (a change of "
              "representation between neighbouring points) or a point stuck in a worse local minimum.")
    w = s.get("wall_time_s") or {}
    if w:
        print("\ntook " + ", ".join(f"{k} {v:.1f} s" for k, v in w.items()))
    R.print_files(s, outdir)
