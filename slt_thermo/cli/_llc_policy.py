"""Science the ``llc`` command still holds, to move into :mod:`slt_thermo.llc` (issue 23): the
``auto`` step-size policy (ε = 1/(4κ̂), halved until the run passes its checks) and the
nearest-minimum correction ΔH. Not parsing or printing, so it sits apart from the command."""

from __future__ import annotations

import math
import warnings

from . import _report as R
from ._args import UsageError

LLC_ACCEPT = 0.9  # --step-size auto halves ε until the run's mean MALA acceptance reaches this
LLC_MAX_HALVINGS = 4


def sample_until_accepted(args, target, center, beta, batch, preconditioner, step, key):
    """st.llc at ``step``; under ``auto``, halve ε and run again while the run fails the checks
    (finite chains, MALA acceptance >= LLC_ACCEPT, small predicted ε-bias), at most
    LLC_MAX_HALVINGS times. Returns (estimate, final step record, the last run's warnings)."""
    import slt_thermo as st

    from ..errors import SLTThermoError
    from ..llc import PREDICTED_BIAS, predicted_bias_too_large

    attempts = []
    while True:  # auto: the curvature grows away from a singular w*; halve ε until the run accepts it
        last = step["rule"] != "auto" or step["halvings"] >= LLC_MAX_HALVINGS
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            try:
                est = st.llc(target, center, key=key, beta=beta, step_size=step["step_size"], gamma=args.gamma,
                             num_chains=args.chains, num_steps=args.steps, num_burnin=args.burnin,
                             batch_size=batch, preconditioner=preconditioner, eval_full_nll_every=args.thinning,
                             control_variate=args.control_variate,
                             check_equilibration=args.check_equilibration, progress=True)
                acc, bad = est.details["mala_accept"], est.details["unhealthy"]
                bias = est.details["predicted_bias"]
            except SLTThermoError:
                if last:
                    raise
                est, acc, bad, bias = None, float("nan"), args.chains, float("nan")
        attempts.append({"step_size": step["step_size"], "mala_accept": acc, "unhealthy": bad,
                         "predicted_bias": bias})
        small_bias = est is not None and not predicted_bias_too_large(bias, est.value)
        passed = bad == 0 and acc >= LLC_ACCEPT and small_bias
        if last or passed:
            break
        why = (f"{bad} chain(s) went non-finite" if bad else f"MALA acceptance {acc:.3f} < {LLC_ACCEPT}"
               if acc < LLC_ACCEPT else f"predicted ε-bias {bias:+.3g} > {PREDICTED_BIAS:.0%} of λ̂")
        step = _auto_step(step["kappa"], step["halvings"] + 1)
        print(f"{why}: halving ε to {step['step_size']:.3g} and running again …", flush=True)
    if step["rule"] == "auto":
        step = _auto_step(step["kappa"], step["halvings"], passed)
    step["attempts"] = attempts
    return est, step, R.unique_warnings(rec)


def _auto_step(kappa, halvings, ok=None):
    """``ok``: whether the last run passed (finite, MALA acceptance >= LLC_ACCEPT, predicted ε-bias
    <= PREDICTED_BIAS of λ̂)."""
    from ..llc import PREDICTED_BIAS

    rule = "1/(4κ̂)" + (f"/2^{halvings}" if halvings else "")
    text = f"auto: ε = {rule}, κ̂ = {kappa:.4g} the largest curvature of the localized log density at w*"
    if halvings:
        text += (f"; halved {halvings}× until the run's MALA acceptance was >= {LLC_ACCEPT} and its predicted "
                 f"ε-bias <= {PREDICTED_BIAS:.0%} of λ̂" if ok is None or ok
                 else f"; halved {halvings}× (MALA acceptance or predicted ε-bias still failing)")
    return {"step_size": 1 / (4 * kappa) / 2**halvings, "rule": "auto", "kappa": kappa, "halvings": halvings,
            "text": text, "short": f"auto: {rule}, κ̂ = {kappa:.4g}"}


def llc_step_size(args, target, center, beta, batch, preconditioner, key):
    """The first step-size record: auto (1/(4κ̂)), sweep (st.sgld_step_size) or given."""
    import slt_thermo as st

    from ..llc import PREDICTED_BIAS

    if args.step_size == "auto":
        kappa = st.max_curvature(target, center, beta=beta, gamma=args.gamma)
        if not (math.isfinite(kappa) and kappa > 0):
            raise UsageError("--step-size", "auto could not estimate the curvature at w* (non-finite Hessian); "
                                            "give --step-size EPS")
        return _auto_step(kappa, 0)
    if args.step_size == "sweep":
        print("picking ε by st.sgld_step_size (11 step sizes × 8 chains × 2000 steps: minutes) …", flush=True)
        eps, table = st.sgld_step_size(target, center, key=key, beta=beta, gamma=args.gamma, batch_size=batch,
                                       preconditioner=preconditioner, control_variate=args.control_variate)
        certified = bool(table.attrs.get("bias_certified"))
        return {"step_size": float(eps), "rule": "sweep", "bias_certified": certified,
                "table": table.to_dict(orient="records"), "short": "sweep: st.sgld_step_size",
                "text": "st.sgld_step_size sweep: " + (
                    f"the largest sound ε with predicted ε-bias <= {PREDICTED_BIAS:.0%}" if certified
                    else f"the smallest sound ε (predicted ε-bias above {PREDICTED_BIAS:.0%} everywhere)") + (
                    "" if table.attrs.get("mixing", True) else "; it did not mix within the sweep (λ̂ likely too low)")}
    return {"step_size": float(args.step_size), "rule": "given", "text": "given by --step-size",
            "short": "given by --step-size"}


def nearest_minimum(target, center, maxiter=300):
    """nL_n at ŵ, the minimum of L_n that L-BFGS reaches from w* (None when too large or failed).
    The LLC assumes w* minimizes L_n; if it does not, λ̂ is lower by about β(nL_n(w*) − nL_n(ŵ))."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.flatten_util import ravel_pytree
    from scipy.optimize import minimize

    flat, unravel = ravel_pytree(target.to_unconstrained(center))
    if flat.size > 100_000:
        return None
    vg = jax.jit(jax.value_and_grad(lambda tg, v: tg.nll(tg.to_constrained(unravel(v))), argnums=1))

    def fun(v):
        val, g = vg(target, jnp.asarray(v, flat.dtype))
        return float(val), np.asarray(g, dtype=float)

    h0 = float(target.nll(center))
    try:
        with np.errstate(all="ignore"):
            # start a hair off w*: at a saddle of L_n (∇L_n(w*) = 0, e.g. w* = 0 in a tanh net) L-BFGS
            # would not move at all
            start = np.asarray(flat, dtype=float) + 1e-3 * np.random.default_rng(0).standard_normal(flat.size)
            r = minimize(fun, start, jac=True, method="L-BFGS-B",
                         options={"maxiter": maxiter, "gtol": 1e-12, "ftol": 1e-15})
        h = float(r.fun)
    except Exception:
        return None
    if not np.all(np.isfinite(r.jac)):  # e.g. NaN gradients of w**k at w = 0: no answer
        return None
    if not math.isfinite(h):
        return None
    h = min(h, h0)
    return {"nll_min": h, "delta": h0 - h, "iterations": int(r.nit)}
