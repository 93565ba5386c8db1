"""``slt-thermo llc``: the local learning coefficient λ̂(w*) by SGLD (st.llc), with its diagnostics.

Parsing, printing and plotting only: the estimate, its step-size policy and the nearest-minimum
correction are :func:`slt_thermo.llc`'s, called with the same defaults, so the command and the
library give the same λ̂ for the same model and seed (sampling key PRNGKey(seed + 1)).
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings

from . import _report as R
from ._args import (
    DEFAULT_MODEL,
    Formatter,
    UsageError,
    add_model_options,
    add_out,
    int_at_least,
    nonnegative_float,
    positive_float,
)
from ._common import cached_target, meta, results_dir, truth, truth_json

LLC_ACCEPT = 0.9  # = slt_thermo.llc.AUTO_ACCEPT, spelled here so that --help needs no jax (a test checks)

HELP = "estimate the local learning coefficient λ(w*) by SGLD, with diagnostics"
LLC_DEFAULT_N = 10_000
# st.llc's defaults, repeated here because `slt-thermo --help` must not import jax (slt_thermo.llc
# does); tests/test_cli.py checks that they are st.llc's
DEFAULT_GAMMA, AUTO_MAX_STEPS = 1.0, 50_000
# why the zoo's true_params is a point where the local λ equals the global (exact) λ
_MOST_SINGULAR_UNITS = ("w* = true_params is the most singular true point (the units beyond rank r are dead, "
                        "in- and out-weights zero), where the local λ is the global (Aoyagi) λ")
LLC_TRUTH = {
    "reduced_rank": _MOST_SINGULAR_UNITS,
    "deep_linear": _MOST_SINGULAR_UNITS,
    "linear_regression": "a regular model: the local λ is d/2 at every point",
    "monomial": "w* = 0, where all the hyperplanes of the true set cross: the local λ there is the global λ",
    "tanh_net": "w* = 0 (a = b = 0), the most singular true point: the local λ there is the global λ",
    "gaussian_mixture": "w* = (a, b) = (0, 0), where the two branches of the true set cross",
}


def _step_size(text):
    """``--step-size``: auto (curvature rule), sweep (st.sgld_step_size) or a positive number."""
    word = text.strip().lower()
    if word in ("auto", "sweep"):
        return word
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be auto, sweep or a positive number, got {text!r}") from None


def _steps(text):
    """``--steps``: auto (run until converged) or an integer ≥ 2."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int_at_least(2)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be auto or an integer >= 2, got {text!r}") from None


def _friction(text):
    """``--friction``: auto (2√max(γ, 1)), none (overdamped SGLD) or a positive number."""
    word = text.strip().lower()
    if word in ("auto", "none"):
        return None if word == "none" else word
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be auto, none or a positive number, got {text!r}") from None


def add_parser(sub):
    """The ``llc`` subparser (long: its help explains every diagnostic the report shows)."""
    from ..models import ZOO

    p = sub.add_parser(
        "llc", help=HELP, formatter_class=Formatter,
        description="The local learning coefficient at a point w* (Lau et al., arXiv:2308.12108), "
                    "st.llc: λ̂(w*) = β(E[nL_n(w)] − nL_n(w*)), the expectation over the localized "
                    "posterior ∝ φ(w) exp(−βnL_n(w) − γ/2‖w − w*‖²) at β = 1/log n, sampled by SGLD "
                    "chains started at w*. Prints λ̂ ± its Monte Carlo error beside the exact λ where it "
                    "applies, per-chain values and the diagnostics that say when to distrust it (R-hat, "
                    "ESS, MALA acceptance of the step size, predicted ε-bias, drift, non-finite chains). w* defaults to the "
                    "model's true_params (every zoo model has it; for the zoo it is a point where the "
                    "local λ is the global λ); for your own model without one, give --center FILE.npz. "
                    "On data, a true parameter is not a minimum of L_n, which lowers λ̂(w*) by about "
                    "β·ΔH, ΔH = nL_n(w*) − nL_n(ŵ) with ŵ the minimum nearest w*: the table shows λ̂ + β·ΔH "
                    "too. "
                    f"Run bare, it uses {DEFAULT_MODEL}({R.fmt_params(ZOO[DEFAULT_MODEL].defaults)}), "
                    f"n = {LLC_DEFAULT_N}.",
        epilog="examples:\n  slt-thermo llc\n"
               "  slt-thermo llc --model deep_linear --param widths=3,4,3 --param r=1 --steps 4000\n"
               "  slt-thermo llc --model my_net.py:make_model --center trained.npz --batch-size 256\n"
               "     (trained.npz: slt_thermo.io.save_params('trained.npz', params), one array per parameter name)",
    )
    add_model_options(p, n_help=f"dataset size (default {LLC_DEFAULT_N}; fixed by your data if FUNC returns "
                                "a Target)",
                      n_kwargs=dict(type=int_at_least(2), default=None, metavar="N"))
    g = p.add_argument_group("LLC")
    g.add_argument("--center", default=None, metavar="FILE.npz",
                   help="w*, the point whose LLC is estimated: an .npz with one array per parameter, keyed "
                        "by the parameter names (nested names joined by '.', as in samples files; '/' is "
                        "accepted too), e.g. slt_thermo.io.save_params(FILE, params) "
                        "(default: the model's true_params)")
    g.add_argument("--beta", type=positive_float, default=None, help="inverse temperature (default 1/log n)")
    g.add_argument("--gamma", type=nonnegative_float, default=DEFAULT_GAMMA,
                   help="localization strength γ (0: none, only sensible with a compact prior; devinterp's "
                        "100 truncates the flat directions of deep nets, dλ̂/dlog γ in the table says how much)")
    g.add_argument("--friction", type=_friction, default="auto", metavar="auto|none|C",
                   help="underdamped Langevin chains with friction C (auto: 2√max(γ, 1), critical damping of "
                        "the flattest localized direction; none with --preconditioner rmsprop); none: "
                        "overdamped SGLD, whose step size, capped by the stiffest direction, leaves flat ones "
                        "unmixed for ~κ/γ steps"),
    g.add_argument("--step-size", type=_step_size, default="auto", metavar="auto|sweep|EPS",
                   help="SGLD step size ε. auto: ε = 1/(4κ̂), κ̂ the largest curvature of the localized "
                        "log density at w* (power iteration on the full data), an eighth of the Langevin "
                        "stability limit 2/κ̂; while the run's MALA acceptance is < 0.9, its predicted ε-bias "
                        "exceeds 5%% of λ̂ or a chain goes non-finite, ε is halved and the run repeated (at most "
                        "4 times); sweep: st.sgld_step_size, a sweep of 11 step sizes scored by MALA acceptance, "
                        "predicted ε-bias and mixing (minutes); or a number")
    g.add_argument("--chains", type=int_at_least(1), default=8, help="SGLD chains, all started at w*")
    g.add_argument("--steps", type=_steps, default="auto", metavar="auto|N",
                   help="steps per chain, burn-in included; auto: blocks of 2000 steps until the second half of "
                        "the draws passes R-hat <= 1.05, |drift z| <= 2 and ESS >= 400, or the budget ends "
                        "(then λ̂ is flagged as unconverged, with the way it is still moving)")
    g.add_argument("--max-steps", type=int_at_least(2000), default=AUTO_MAX_STEPS, metavar="N",
                   help="--steps auto: the budget in steps per chain")
    g.add_argument("--max-seconds", type=positive_float, default=None, metavar="S",
                   help="--steps auto: a wall-clock budget as well")
    g.add_argument("--burnin", type=int_at_least(0), default=400, help="steps discarded at the start of each chain")
    g.add_argument("--batch-size", type=int_at_least(1), default=None,
                   help="minibatch size B of the gradients (default n: full-data gradients; minibatch "
                        "gradient noise heats the chains and biases λ̂ upward, most where B ≪ nβ)")
    g.add_argument("--thinning", type=int_at_least(1), default=10, metavar="K",
                   help="keep every K-th step after burn-in: nL_n on the full data and the MALA check are "
                        "evaluated there (consecutive SGLD steps are strongly correlated, so little is lost)")
    g.add_argument("--preconditioner", choices=("none", "rmsprop"), default="none",
                   help="SGLD preconditioner (rmsprop needs --step-size EPS or sweep)")
    g.add_argument("--control-variate", action="store_true",
                   help="SGLD-CV: control-variate the minibatch gradient at w* (less minibatch-noise "
                        "bias on noisy data when the chains stay near w*; needs data, not --population; "
                        "helps most with --batch-size B ≪ n)")
    g.add_argument("--check-equilibration", action="store_true",
                   help="also run chains//2 chains started hot (at β/16) and compare their λ̂ with the "
                        "chains started at w* over the second half: a gap means neither has equilibrated")
    p.add_argument("--resume", metavar="DIR",
                   help="crash-safe run: the SGLD state is written to DIR after every chunk; run the same "
                        "command with the same --resume DIR again to continue a killed run (same numbers)")
    add_out(p)
    return p


# ------------------------------------------------------------------------------ run
def _check_args(args):
    """Checks that need no model; returns the preconditioner (None for plain SGLD)."""
    if args.steps != "auto":
        if args.burnin >= args.steps:
            raise UsageError("--burnin", f"must be smaller than --steps ({args.steps}), got {args.burnin}")
        draws = (args.steps - args.burnin) // args.thinning
        if draws < 8:
            raise UsageError("--steps", f"(steps − burnin) // thinning = {draws} kept draws per chain; at least 8 "
                                        "are needed (R-hat, drift test): take more --steps")
    elif args.max_seconds is None and args.max_steps < args.burnin + 2000:
        raise UsageError("--max-steps", f"must leave a block of 2000 steps after --burnin {args.burnin}")
    if args.preconditioner != "none" and args.friction not in ("auto", None):
        raise UsageError("--friction", "underdamped chains take no --preconditioner: give --friction none")
    preconditioner = None if args.preconditioner == "none" else args.preconditioner
    if preconditioner and args.step_size == "auto":
        raise UsageError("--step-size", "auto (ε = 1/(4κ̂)) is for plain SGLD; with --preconditioner rmsprop "
                                        "give --step-size EPS or --step-size sweep")
    return preconditioner


def run(args, argv) -> int:
    """Set up w*, run st.llc with the command's settings, write the results and report."""
    import jax

    import slt_thermo as st

    from .._utils import num_params
    from ..errors import SLTThermoError
    from ..io import write_json

    from ..llc.api import resolve_friction

    preconditioner = _check_args(args)
    target, desc, origin = cached_target(args, default_n=LLC_DEFAULT_N)
    n = target.n
    batch = n if args.batch_size is None else args.batch_size
    if batch > n and not target.is_population:
        raise UsageError("--batch-size", f"must be <= n = {n}, got {batch}")
    if args.control_variate and target.is_population:
        raise UsageError("--control-variate", "population targets have exact gradients: nothing to control")
    center, center_text = _llc_center(args, target)
    beta = 1 / math.log(n) if args.beta is None else args.beta
    lam, m = truth(target)

    summary = meta(argv, "llc")
    summary.update(
        model={"name": target.name, **desc, **truth_json(lam, m)}, n=n, data=origin, seed=args.seed,
        center=center_text, num_params=num_params(center),
        nll_center=float(target.nll(center)), truth=_llc_truth(args, lam),
        settings={"beta": beta, "beta_rule": "1/log n" if args.beta is None else "--beta", "gamma": args.gamma,
                  "chains": args.chains, "steps": args.steps, "burnin": args.burnin, "thinning": args.thinning,
                  "friction": args.friction, "max_steps": args.max_steps, "max_seconds": args.max_seconds,
                  "friction_value": resolve_friction(args.friction, args.gamma, preconditioner),
                  "batch_size": batch, "preconditioner": args.preconditioner,
                  "control_variate": args.control_variate, "check_equilibration": args.check_equilibration},
    )
    for i in (0, 1, 3):
        print(setup_lines(summary)[i], flush=True)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        try:
            est = st.llc(target, center, key=jax.random.PRNGKey(args.seed + 1), beta=beta,
                         step_size=args.step_size, gamma=args.gamma, num_chains=args.chains,
                         num_steps=args.steps, num_burnin=args.burnin, batch_size=batch, friction=args.friction,
                         max_steps=args.max_steps, max_seconds=args.max_seconds,
                         preconditioner=preconditioner, control_variate=args.control_variate,
                         check_equilibration=args.check_equilibration, eval_full_nll_every=args.thinning,
                         checkpoint=args.resume)
        except SLTThermoError as err:
            if args.step_size == "auto" and "curvature" in str(err):
                raise UsageError("--step-size", f"{err} with --step-size EPS") from None
            raise
    wall = time.perf_counter() - t0
    step = est.details["step_size_policy"]
    summary["step_size"] = dict(step, **({"text": "given by --step-size", "short": "given by --step-size"}
                                         if step["rule"] == "given" else {}))
    summary["settings"].update(step_size=step["step_size"], step_rule=step["rule"])
    nm = est.details["nearest_minimum"]
    summary["nearest_minimum"] = None if nm is None else {k: v for k, v in nm.items() if k != "params"}
    print(setup_lines(summary)[2], flush=True)
    samples = _record_estimate(summary, est, target, args.chains, R.unique_warnings(rec), wall)
    outdir = results_dir(args, "llc", desc["slug"])
    samples.save(os.path.join(outdir, "samples.nc"))
    summary["files"] = {"samples": "samples.nc", "summary": "summary.json",
                        "plots": [] if args.no_plots else plots(samples, summary, outdir)}
    write_json(os.path.join(outdir, "summary.json"), summary)
    print_report(summary, outdir)
    return 0


def _record_estimate(summary, est, target, chains, caught, wall):
    """Put λ̂, its per-chain values, diagnostics and warnings into the summary; return the samples."""
    det = est.details
    samples = det["samples"]
    samples.ds.attrs["target"] = target.name
    summary.update(
        llc={"value": est.value, "stderr": est.stderr, "text": str(est)},
        per_chain=det["per_chain"],
        diagnostics={"rhat": det["rhat"], "ess": det["ess"], "mala_accept": det["mala_accept"],
                     "drift_z": det["drift_z"], "predicted_bias": det.get("predicted_bias"),
                     "bias_minibatch": det.get("bias_minibatch"),
                     "gamma_sensitivity": det.get("gamma_sensitivity"),
                     "gamma_sensitivity_se": det.get("gamma_sensitivity_se"),
                     "equilibration_z": det.get("equilibration_z"),
                     "cold_start_llc": det.get("cold_start_llc"), "hot_start_llc": det.get("hot_start_llc"),
                     "unhealthy": det["unhealthy"], "chains": chains,
                     "draws": int(samples.ds.sizes["draw"]), "nll_kind": det.get("nll_kind")},
        problems=det["problems"], warnings=caught, wall_time_s=wall,
    )
    if "auto" in det:  # --steps auto: how long the chains ran and whether they converged
        summary["auto"] = {k: v for k, v in det["auto"].items() if k != "checks"}
        summary["settings"]["steps_run"] = det["auto"]["steps"]
    if det["llc_ref_minimum"] is not None:  # λ̂ with nL_n referenced to its minimum ŵ near w*
        summary["llc_ref_minimum"] = {"value": det["llc_ref_minimum"], "stderr": est.stderr}
    return samples


# ------------------------------------------------------------------------------ w*
def _llc_center(args, target):
    """(w* as a params pytree, a description) from --center or the model's true_params, checked by
    slt_thermo.llc.check_center."""
    import jax

    from ..errors import InvalidArgumentError
    from ..llc import check_center

    if args.center is None:
        w0 = getattr(target.model, "true_params", None)
        if w0 is None:
            hint = ""
            try:
                from ..io import param_names

                hint = f"; keys = the parameter names: {', '.join(param_names(target.init(jax.random.PRNGKey(0))))}"
            except Exception:
                pass
            raise UsageError("--center", f"{target.name} has no true_params to use as w*; pass --center FILE.npz "
                                         f"with the point w* (slt_thermo.io.save_params(FILE, params){hint})")
        center, text = w0, "the model's true_params"
    else:
        center, text = _load_center(args.center, target), args.center
    where = "true_params" if args.center is None else args.center
    try:
        center = check_center(target, center)
    except InvalidArgumentError as err:
        raise UsageError("--center", str(err).replace("`center`", f"w* ({where})")) from None
    return center, text


def _load_center(path, target):
    """--center FILE.npz in the structure of the model's parameters (slt_thermo.io.load_params);
    a flat dict of the saved arrays when the model cannot make a template (no init)."""
    import jax

    from ..errors import InvalidArgumentError
    from ..io import load_params

    try:
        template = target.init(jax.random.PRNGKey(0))
    except Exception:
        template = None  # no init to take the structure from: a flat dict of the saved arrays
    try:
        return load_params(path, template)
    except InvalidArgumentError as err:
        raise UsageError("--center", str(err)) from None


def _llc_truth(args, lam):
    """Whether the exact (global) λ is the local λ at w*: {'applies', 'note'}."""
    from ..models import ZOO

    if lam is None:
        return {"applies": False, "note": "exact λ unknown for this model"}
    if args.center is not None:
        return {"applies": False,
                "note": f"the model's global λ = {lam} is the local λ only at the most singular true points "
                        "(elsewhere in the true set the local λ is larger); at a w* of your own it is a "
                        "reference, not the answer: no z"}
    if args.model in ZOO:
        return {"applies": True, "note": LLC_TRUTH.get(args.model, "")}
    return {"applies": True,
            "note": "your model's rlct at its true_params: it is the local λ there only if true_params is a "
                    "most singular point of the true set"}


# ------------------------------------------------------------------------------ report
def _show_ref(s):
    """Whether λ̂ + β·ΔH (nL_n referenced to its minimum near w*) differs enough to be shown."""
    nm, e = s.get("nearest_minimum"), s.get("llc") or {}
    if nm is None or e.get("value") is None:
        return False
    return s["settings"]["beta"] * nm["delta"] > 0.1 * (e.get("stderr") or 0)


def plots(samples, s, outdir):
    """Draw the LLC trace figure into ``outdir``; return its file name in a list."""
    from .. import plotting

    truth_ = s["model"]["rlct"] if s["truth"]["applies"] else None
    ref = s.get("llc_ref_minimum")
    lines = {} if not _show_ref(s) else {
        f"$\\hat\\lambda$ + β·ΔH = {ref['value']:.3f} (nL$_n$ from its minimum ŵ)": ref["value"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plotting.llc_traces(samples, s["nll_center"], beta=s["settings"]["beta"], truth=truth_,
                            estimate=(s["llc"]["value"], s["llc"]["stderr"]), lines=lines,
                            path=os.path.join(outdir, "llc_traces.png"))
    return ["llc_traces.png"]


def setup_lines(s):
    """The four lines that say what is run: model and data, w*, the step size, the SGLD settings."""
    st_ = s["settings"]
    beta = (f"β = 1/log n = {st_['beta']:.4g}" if st_.get("beta_rule") == "1/log n" else f"β = {st_['beta']:.4g}")
    batch = st_["batch_size"]
    grads = "full-data gradients" if batch >= s["n"] else f"minibatches of {batch}"
    if "population" in s.get("data", ""):
        grads = "exact gradients of nK(w)"
    thin = "" if st_["thinning"] == 1 else f", every {st_['thinning']}th step kept"
    if st_["steps"] == "auto":
        run_ = st_.get("steps_run")
        length = (f"{st_['burnin']} burn-in + blocks of 2000 steps until converged, at most {st_['max_steps']}"
                  + ("" if st_.get("max_seconds") is None else f" or {st_['max_seconds']:g} s")
                  + ("" if run_ is None else f"; ran {run_}, the second half kept") + thin)
    else:
        length = f"{st_['burnin']} burn-in + {(st_['steps'] - st_['burnin']) // st_['thinning']} kept draws{thin}"
    friction = st_.get("friction_value")
    dynamics = "SGLD" if friction is None else f"underdamped Langevin (friction {friction:.3g})"
    step = s.get("step_size") or {}
    return [
        f"{s['model']['name']}, n = {s['n']} ({s['data']})",
        f"w* = {s['center']} ({s['num_params']} parameters), nL_n(w*) = {s['nll_center']:.6g}",
        f"step size {st_.get('step_size', float('nan')):.3g}: {step.get('text', '')}",
        f"{dynamics}: {st_['chains']} chains from w* × ({length}), {beta}, "
        f"γ = {st_['gamma']:g}, {grads}"
        + ("" if st_.get("preconditioner", "none") == "none" else f", {st_['preconditioner']} preconditioner"),
    ]


def show(s: dict, outdir: str, *, redraw: bool) -> None:
    """``slt-thermo show`` of an llc directory: setup lines, the plot redrawn, report."""
    import slt_thermo as st

    for line in setup_lines(s):
        print(line)
    if redraw:
        s["files"]["plots"] = plots(st.load(os.path.join(outdir, s["files"]["samples"])), s, outdir)
    print_report(s, outdir)


def print_report(s: dict, outdir: str) -> None:
    """The LLC tables: λ̂ beside the exact λ, notes on the truth and ΔH, diagnostics, files."""
    _print_estimate(s)
    _print_diagnostics(s)
    if s.get("warnings"):
        print("\nwarnings:")
        for w in s["warnings"]:
            print(f"  {w}")
    else:
        print("\nwarnings: none")
    if s.get("wall_time_s") is not None:
        print(f"\nSGLD took {s['wall_time_s']:.1f} s")
    R.print_files(s, outdir)


def _print_estimate(s):
    lam, lam_f, m = s["model"].get("rlct"), s["model"].get("rlct_float"), s["model"].get("multiplicity")
    truth_ = s["truth"]
    value, se = s["llc"]["value"], s["llc"]["stderr"]
    beta = s["settings"]["beta"]
    exact = R.exact_text(lam, lam_f, "—")
    if lam is not None and not truth_["applies"]:
        exact = f"({exact})"
    zlam = lam_f if truth_["applies"] else None
    print(f"\n{'':<28} {'estimate':>16}   {'exact λ':<12} {'z':>6}")
    print(f"{R.ljust('LLC λ̂(w*)', 28)} {R.pm(value, se):>16}   {exact:<12} {R.z(value, se, zlam):>6}")
    nm = s.get("nearest_minimum")
    if _show_ref(s):
        shifted = value + beta * nm["delta"]
        print(f"{R.ljust('λ̂ + β·ΔH (ΔH: see below)', 28)} {R.pm(shifted, se):>16}   {exact:<12} "
              f"{R.z(shifted, se, zlam):>6}")
    pc = [v for v in s.get("per_chain") or [] if v is not None]
    if pc:
        print(f"per chain: {' '.join(f'{v:.3g}' for v in pc)}")
    print()
    if lam is not None:
        R.say(f"exact λ = {lam}, m = {m} (slt_thermo.exact): {truth_['note']}")
        if truth_["applies"]:
            R.say("z = (λ̂ − λ)/se counts the Monte Carlo error only, not the finite-n and ε-bias of the estimator")
            best = value + beta * nm["delta"] if nm is not None and value is not None else value
            if value is not None and se and abs(best - lam_f) > 4 * se:
                R.say("λ̂ is off λ by more than 4 Monte Carlo errors. At finite n the LLC is biased: a localization "
                      "γ that is strong next to the curvature nβ·L_n'' truncates the singular directions (λ̂ low: "
                      "try a smaller --gamma with more --steps, or a larger --n); the step size biases it (compare "
                      "a smaller --step-size); minibatch noise heats it (λ̂ high)")
    else:
        R.say(truth_["note"])
    if _show_ref(s):
        R.say(f"ΔH = nL_n(w*) − nL_n(ŵ) = {nm['delta']:.4g}, ŵ the minimum of L_n that L-BFGS reaches from w*: the "
              f"LLC assumes w* minimizes L_n; here λ̂(w*) is lowered by about β·ΔH = {beta * nm['delta']:.3g}")
    elif nm is not None:
        R.say(f"ΔH = nL_n(w*) − nL_n(ŵ) = {nm['delta']:.3g}, ŵ the minimum of L_n that L-BFGS reaches from w*: "
              "negligible next to the Monte Carlo error")


def _print_diagnostics(s):
    from ..llc import DRIFT_Z, EQUILIBRATION_Z, GAMMA_SENSITIVITY, PREDICTED_BIAS

    dg = s["diagnostics"]
    step = s.get("step_size") or {}
    print(f"\n{'diagnostic':<26} {'value':>10}   healthy when")
    rows = [
        ("R-hat of nL_n", R.num(dg.get("rhat"), "10.3f"), "< 1.05 (chains agree)"),
        ("ESS of nL_n", R.num(dg.get("ess"), "10.0f"), f"of {dg['chains'] * dg['draws']} draws"),
        ("MALA acceptance of ε", R.num(dg.get("mala_accept"), "10.3f"),
         f">= {LLC_ACCEPT:g} (small ε-bias; < 0.5: ε too large)"),
        ("predicted ε-bias of λ̂", R.num(dg.get("predicted_bias"), "+10.3g"),
         f"< {PREDICTED_BIAS:.0%} of λ̂ (SGLD's first-order bias: minibatch noise + discretization)"),
        ("drift z (2nd vs 1st half)", R.num(dg.get("drift_z"), "+10.1f"),
         f"|z| < {DRIFT_Z:g} (burn-in long enough)"),
        ("dλ̂/dlog γ", R.num(dg.get("gamma_sensitivity"), "+10.3g"),
         f"|·| < {GAMMA_SENSITIVITY:.0%} of λ̂ (the localization γ hardly shapes λ̂)"),
        *([("cold vs hot start z", R.num(dg["equilibration_z"], "+10.1f"),
            f"|z| < {EQUILIBRATION_Z:g} (λ̂ of chains from w* {dg['cold_start_llc']:.3g}, from a hot start "
            f"{dg['hot_start_llc']:.3g}, second halves)")] if dg.get("equilibration_z") is not None else []),
        ("unhealthy chains", f"{dg['unhealthy']} of {dg['chains']}", "0 (non-finite chains are excluded)"),
        ("step size ε", f"{s['settings']['step_size']:10.3g}", step.get("short", step.get("text", ""))),
    ]
    for name, val, when in rows:
        print(f"{R.ljust(name, 26)} {val:>10}   {when}")
    if s["settings"]["batch_size"] < s["n"]:
        part = dg.get("bias_minibatch")
        size = "" if part is None or not math.isfinite(part) else f" (predicted {part:+.3g} of the ε-bias above)"
        R.say(f"note: minibatch gradients (B = {s['settings']['batch_size']}) add noise that heats the chains and "
              f"biases λ̂ upward{size}, which the MALA check does not see; a larger --batch-size or a smaller "
              "--step-size shrinks it")
