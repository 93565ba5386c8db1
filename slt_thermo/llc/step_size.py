"""The SGLD step size of an LLC run: the curvature at w*, the ``auto`` rule, the ε sweep.

``auto`` (the default of :func:`~slt_thermo.llc` and ``slt-thermo llc``): ε = 1/(4κ̂), κ̂ the
largest curvature of the localized log density at w* (:func:`max_curvature`), an eighth of the
Langevin stability limit 2/κ̂; at a singular w* the curvature grows away from it, so the run is
repeated (at most AUTO_MAX_HALVINGS times) with ε halved while its MALA acceptance is below
AUTO_ACCEPT or its predicted ε-bias exceeds PREDICTED_BIAS of λ̂, and with ε = 1/(4κ̂_reached)
(:func:`curvature_reached`: where the surviving chains went) when a chain goes non-finite.
``sweep``: :func:`sgld_step_size`, 11 candidates scored by short runs (minutes).
"""

from __future__ import annotations

import math
import warnings

import jax
import numpy as np

from ..errors import ConvergenceWarning, InvalidArgumentError, SLTThermoError
from ..samplers.sgld import sample_sgld
from ..target import Target
from ..thermo.stats import mean_se
from .._utils import num_params
from .diagnostics import PREDICTED_BIAS, drift_z, llc_from_samples

AUTO_ACCEPT = 0.9  # auto halves ε until the run's mean MALA acceptance reaches this ...
AUTO_MAX_HALVINGS = 4  # ... at most this many repeats


def default_beta(target) -> float:
    """β = 1/log n, the LLC's inverse temperature (Lau et al.; Watanabe's WBIC β)."""
    if target.n < 2:
        raise InvalidArgumentError("`target` has n < 2; pass `beta` explicitly")
    return 1.0 / math.log(target.n)


def auto_step(kappa: float, halvings: int = 0, passed: bool | None = None,
              kappa_reached: float | None = None) -> dict:
    """The ``auto`` step-size record: ε = 1/(4κ̂)/2^halvings with a text saying why, κ̂ the
    curvature at w* or, when larger, ``kappa_reached``: the curvature where the chains of an
    earlier attempt went (:func:`curvature_reached`). ``passed``: whether the last run passed the
    checks (None: not run yet)."""
    reached = kappa_reached is not None and kappa_reached > kappa
    k = kappa_reached if reached else kappa
    rule = ("1/(4κ̂_reached)" if reached else "1/(4κ̂)") + (f"/2^{halvings}" if halvings else "")
    text = f"auto: ε = {rule}, κ̂ = {kappa:.4g} the largest curvature of the localized log density at w*"
    if reached:
        text += (f", κ̂_reached = {kappa_reached:.4g} the largest where an earlier attempt's chains went "
                 "(they spread from w* into stiffer regions)")
    if halvings:
        text += (f"; halved {halvings}× until the run's MALA acceptance was >= {AUTO_ACCEPT} and its "
                 f"predicted ε-bias <= {PREDICTED_BIAS:.0%} of λ̂" if passed is None or passed
                 else f"; halved {halvings}× (MALA acceptance or predicted ε-bias still failing)")
    return {"step_size": 1 / (4 * k) / 2**halvings, "rule": "auto", "kappa": kappa,
            "kappa_reached": kappa_reached, "halvings": halvings, "text": text,
            "short": f"auto: {rule}, κ̂ = {k:.4g}"}


def curvature_reached(target: Target, samples, center, *, beta: float, gamma: float,
                      iters: int = 50) -> float:
    """The largest curvature of the localized log density where a run's healthy chains ended
    (``samples.state``): power iteration at every chain's last position at once, the max over
    chains; NaN when no chain is healthy or the products are not finite. At a singular w* the
    curvature is smallest; chains that spread along its flat directions meet stiffer regions
    (in deep nets, 10³–10⁴× stiffer), where an ε set at w* blows up."""
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    state = getattr(samples, "state", None)
    if state is None:
        return float("nan")
    healthy = np.asarray(state.healthy).reshape(-1)
    if not healthy.any():
        return float("nan")
    positions = jax.vmap(lambda u: ravel_pytree(u)[0])(state.kernel.position)[healthy]
    _, unravel = ravel_pytree(target.to_unconstrained(center))
    center_j = jax.tree_util.tree_map(jnp.asarray, center)

    # compiled per call, like max_curvature's products: ``unravel`` is this call's, and a
    # module-level jit keyed on it would keep one executable per call alive for good
    @jax.jit
    def power_iteration(tg, points, beta, gamma):  # |largest eigenvalue| of −∇² log p per row
        grad = jax.grad(lambda v: -tg.log_density_unconstrained(unravel(v), beta, center_j, gamma))

        def one(v):
            hvp = lambda t: jax.jvp(grad, (v,), (t,))[1]
            t0 = jax.random.normal(jax.random.PRNGKey(0), v.shape, v.dtype)

            def body(_, t):
                hv = hvp(t)
                return hv / jnp.linalg.norm(hv)

            t = jax.lax.fori_loop(0, iters, body, t0 / jnp.linalg.norm(t0))
            return jnp.abs(t @ hvp(t))

        return jax.vmap(one)(points)

    kappa = np.asarray(power_iteration(target, positions, float(beta), float(gamma)))
    kappa = kappa[np.isfinite(kappa)]
    return float(kappa.max()) if kappa.size else float("nan")


def first_step(step_size, target, center, *, key, beta, gamma, batch_size, preconditioner,
               control_variate, progress=False) -> dict:
    """The step-size record a run starts from: ``"auto"`` (1/(4κ̂)), ``"sweep"``
    (:func:`sgld_step_size`) or a given positive number. Keys: step_size, rule, text, short (and
    kappa/halvings for auto, bias_certified/table for sweep)."""
    if isinstance(step_size, str) and step_size == "auto":
        if preconditioner is not None:
            raise InvalidArgumentError("step_size='auto' (ε = 1/(4κ̂)) is for plain SGLD; with a "
                                       "preconditioner give a number or step_size='sweep'")
        kappa = max_curvature(target, center, beta=beta, gamma=gamma)
        if not (math.isfinite(kappa) and kappa > 0):
            raise SLTThermoError("step_size='auto' could not estimate the curvature at w* (non-finite "
                                 "Hessian); give a number")
        return auto_step(kappa)
    if step_size is None or (isinstance(step_size, str) and step_size == "sweep"):  # None: before 0.2
        if progress:
            print("llc: picking ε by sgld_step_size (11 step sizes × 8 chains × 2000 steps: minutes) …",
                  flush=True)
        eps, table = sgld_step_size(target, center, key=key, beta=beta, gamma=gamma, batch_size=batch_size,
                                    preconditioner=preconditioner, control_variate=control_variate)
        certified = bool(table.attrs.get("bias_certified"))
        return {"step_size": float(eps), "rule": "sweep", "bias_certified": certified,
                "table": table.to_dict(orient="records"), "short": "sweep: st.sgld_step_size",
                "text": "st.sgld_step_size sweep: " + (
                    f"the largest sound ε with predicted ε-bias <= {PREDICTED_BIAS:.0%}" if certified
                    else f"the smallest sound ε (predicted ε-bias above {PREDICTED_BIAS:.0%} everywhere)")
                + ("" if table.attrs.get("mixing", True)
                   else "; it did not mix within the sweep (λ̂ likely too low)")}
    try:
        ok = not isinstance(step_size, str) and 0 < float(step_size) < math.inf
    except (TypeError, ValueError):  # a list, an array of several values, an object
        ok = False
    if not ok:
        raise InvalidArgumentError(f"`step_size` must be 'auto', 'sweep' or a positive number, got {step_size!r}")
    return {"step_size": float(step_size), "rule": "given", "text": "given", "short": "given"}


def max_curvature(target: Target, center, *, beta: float | None = None, gamma: float = 100.0,
                  iters: int = 60, tol: float = 1e-4) -> float:
    """κ̂: the largest |eigenvalue| of −∇² log p(u) at ``center`` (= w*), by power iteration.

    The density is the one SGLD moves on: tempered (β, default 1/log n), localized (γ), prior and
    Jacobian included, in the sampler's unconstrained space, on the full data. Langevin steps are
    stable for ε < 2/κ̂; ε = 1/(4κ̂) keeps the discretization bias small where the curvature is
    largest (the ``slt-thermo llc`` default, a fast alternative to :func:`sgld_step_size`; at a
    singular w* the curvature grows away from it, so check the run's MALA acceptance). Hessian-
    vector products by forward-over-reverse autodiff, or by central differences of the gradient
    where autodiff gives NaN (e.g. w**k at w = 0). Returns NaN if the products are not finite.
    """
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    beta = default_beta(target) if beta is None else float(beta)
    flat, unravel = ravel_pytree(target.to_unconstrained(center))
    center_j = jax.tree_util.tree_map(jnp.asarray, center)

    def f(tg, v):
        return -tg.log_density_unconstrained(unravel(v), beta, center_j, gamma)

    grad = jax.grad(f, argnums=1)
    exact_hvp = jax.jit(lambda tg, v, t: jax.jvp(lambda x: grad(tg, x), (v,), (t,))[1])
    h = 1e-3 * (1.0 + float(jnp.max(jnp.abs(flat))) if flat.size else 1.0)
    fd_hvp = jax.jit(lambda tg, v, t: (grad(tg, v + h * t) - grad(tg, v - h * t)) / (2 * h))
    t = jax.random.normal(jax.random.PRNGKey(0), flat.shape, flat.dtype)
    t = t / jnp.linalg.norm(t)
    hvp = exact_hvp if bool(jnp.all(jnp.isfinite(exact_hvp(target, flat, t)))) else fd_hvp
    kappa = float("nan")
    for _ in range(iters):
        hv = hvp(target, flat, t)
        new = abs(float(t @ hv))
        norm = float(jnp.linalg.norm(hv))
        if not (math.isfinite(norm) and norm > 0):
            return float("nan")
        t = hv / norm
        if math.isfinite(kappa) and abs(new - kappa) <= tol * new:
            return new
        kappa = new
    return kappa


def sgld_step_size(
    target: Target,
    center,
    *,
    key,
    beta: float | None = None,
    gamma: float = 100.0,
    batch_size: int | None = None,
    candidates=None,
    num_chains: int = 8,
    num_steps: int = 2000,
    target_accept: float = 0.9,
    max_bias: float = PREDICTED_BIAS,
    preconditioner: str | None = None,
    control_variate: bool = False,
):
    """Pick an SGLD step size by a short sweep: stable, with a small predicted ε-bias, mixing.

    Each candidate ε (default: 11 geometric values from 1e-4/(nβ) to 10/(nβ): the curvature of
    βH grows like nβ, and so does the largest stable step; with ``preconditioner="rmsprop"``,
    from 1e-3/√κ̂ to 1/√κ̂, κ̂ = :func:`max_curvature`, since G ≈ 1/√curvature) runs ``num_chains``
    localized SGLD chains of ``num_steps`` steps from w*, discarding the first quarter, and
    estimates λ̂(ε) with its diagnostics. A candidate is

    - *sound* when every chain stays finite, the mean probability that exact MALA would accept a
      Langevin move of that ε along the chains is ≥ ``target_accept``, and λ̂(ε) ≤ d/2 (+4 se):
      a learning coefficient cannot exceed d/2, and an unstable step throws the chains out of
      w*'s basin onto flat regions where the acceptance looks fine;
    - *small-bias* when SGLD's predicted first-order ε-bias b(ε) (``details["predicted_bias"]``
      of :func:`llc`: minibatch noise plus discretization, measured at the sweep's draws; see
      :mod:`slt_thermo.samplers.sgld`) is at most ``max_bias`` of the level max(λ̂ − b) over
      the sound candidates (``table.attrs["llc_level"]``: a small ε's own λ̂ is still low
      after a short sweep at small γ);
    - *mixing* when the chains' slow observable has an integrated autocorrelation time
      τ = draws/ESS of at most half the burn-in (a too small step never leaves w*: huge τ) and
      neither it nor the nll trace drifts between its halves (|z| < 4). The slow observable is
      ‖w − w*‖² for plain SGLD (recorded by :func:`~slt_thermo.sample_sgld` as
      ``sq_distance``; the minibatch nll looks white even while the chains have barely started to
      spread along the flat directions that set λ, which relax in ~1/(εγ) steps where only the
      localization confines them) and the nll under RMSprop (G ≈ 1/√γ lets the dead-unit
      coordinates relax in ~1/(ε√γ) steps; what stays slow in ‖w − w*‖² is motion along
      symmetry orbits, A → cA, B → B/c, on which L_n is constant).

    The largest sound, small-bias ε is returned: it spreads the chains fastest, and its bias is
    bounded by prediction rather than read off λ̂(ε) across the sweep (which at small γ mixes
    the ε-bias with how far the chains got from w* in ``num_steps``: on noisy data λ̂(ε) rose
    from 9 to 48 over the sweep on deep_linear((10, 9, 8, 8, 8), 8), NUTS 37). If no sound ε
    has a small predicted bias, the smallest sound ε is returned with a warning; if the
    returned ε does not mix within the sweep, a warning says λ̂ is likely too low unless the
    run is much longer (typical at γ ≲ 1 and at the most singular true points of deep nets).
    Why prediction: SGLD's bias is first order in ε, and MALA acceptance, which uses exact
    gradients, cannot see its minibatch part, which dominates on noisy data (by nβ/B): on
    deep_linear((17, 16, 16), 1) at γ = 1 an ε with acceptance 0.91 put λ̂ 36% above NUTS, its
    predicted bias +37 against the observed +38. Returns ``(step_size, table)``: a pandas
    DataFrame of the candidates (``sound``, ``small_bias``, ``mixing``, ``predicted_bias`` and
    its parts, ``chosen``, ...), with ``bias_certified`` and ``mixing`` (of the chosen ε) in
    ``table.attrs``; raises :class:`SLTThermoError` if no candidate is sound.
    ``control_variate=True`` sweeps SGLD-CV (:func:`~slt_thermo.sample_sgld`), whose smaller
    minibatch part of b(ε) lets a larger ε pass the cap.
    """
    import pandas as pd

    beta = default_beta(target) if beta is None else float(beta)
    batch_size = min(target.n, 256) if batch_size is None else batch_size
    center = jax.tree_util.tree_map(lambda x: np.asarray(x, dtype=np.float32), center)
    if candidates is None:
        candidates = _default_candidates(target, center, beta, gamma, preconditioner)
    candidates = np.asarray(candidates, float)
    nll_center = float(target.nll(center))
    d = num_params(center)
    rows = [_sweep_row(target, center, float(eps), jax.random.fold_in(key, i), beta=beta, gamma=gamma,
                       batch_size=batch_size, num_chains=num_chains, num_steps=num_steps,
                       preconditioner=preconditioner, control_variate=control_variate,
                       nll_center=nll_center, d=d, target_accept=target_accept)
            for i, eps in enumerate(sorted(candidates))]
    table = pd.DataFrame(rows)
    sound = table[table["sound"]]
    if sound.empty:
        raise SLTThermoError(
            "no candidate step size is sound (finite, MALA acceptance >= "
            f"{target_accept}, LLC <= d/2):\n{table.to_string(index=False)}"
        )
    # the bias is judged against the level λ̂ − b of the best-spread sound candidate: at small γ a
    # small ε's own λ̂ is still low after the sweep (too slow), which would make the cap stricter
    level = float((sound["llc"] - sound["predicted_bias"]).max())
    table["small_bias"] = table["predicted_bias"].abs() <= max_bias * abs(level)
    ok = table[table["sound"] & table["small_bias"]]
    certified = not ok.empty
    if certified:  # the largest such ε: it spreads the chains fastest
        row = ok.loc[ok["step_size"].idxmax()]
    else:
        row = sound.loc[sound["step_size"].idxmin()]
        warnings.warn(
            f"sgld_step_size: every sound ε has a predicted ε-bias above {max_bias:.0%} of λ̂; using "
            f"the smallest, {row['step_size']:.3g} (predicted bias {row['predicted_bias']:.3g} on "
            f"λ̂ {row['llc']:.3g}). Consider smaller candidates or a larger batch_size", ConvergenceWarning, stacklevel=2,
        )
    chosen = float(row["step_size"])
    if not row["mixing"]:
        warnings.warn(
            f"sgld_step_size: the chosen ε = {chosen:.3g} does not mix within the sweep ({num_steps} "
            f"steps): ‖w − w*‖² has τ = {row['tau']:.0f} draws (nll: {row['tau_nll']:.0f}; limit "
            f"{(num_steps // 4) / 2:g}) and drift z = {row['drift_z']:+.1f} (nll: {row['drift_z_nll']:+.1f}). "
            "The chains may still be spreading from w* along flat directions, so λ̂ is likely too "
            "LOW unless the run is much longer than the sweep. Consider more steps, "
            "preconditioner='rmsprop', or a smaller gamma", ConvergenceWarning, stacklevel=2,
        )
    table["chosen"] = table["step_size"] == chosen
    table.attrs.update(bias_certified=certified, mixing=bool(row["mixing"]), llc_level=level)
    return chosen, table


def _sweep_row(target, center, eps, key, *, beta, gamma, batch_size, num_chains, num_steps,
               preconditioner, control_variate, nll_center, d, target_accept) -> dict:
    """One candidate ε of :func:`sgld_step_size`: a short run and its scores (see there)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = sample_sgld(target, [beta], step_size=eps, num_chains=num_chains,
                        num_steps=num_steps, num_burnin=num_steps // 4, batch_size=batch_size,
                        key=key, center=center, gamma=gamma,
                        preconditioner=preconditioner, control_variate=control_variate,
                        init=center, keep_params=False, progress=False)
    healthy = bool(s.healthy.values.all())
    row = {"step_size": eps, "healthy": healthy, "mala_accept": 0.0, "tau": float("inf"),
           "drift_z": float("nan"), "tau_nll": float("inf"), "drift_z_nll": float("nan"),
           "llc": float("nan"), "llc_se": float("nan"), "bias_minibatch": float("nan"),
           "bias_discretization": float("nan"), "predicted_bias": float("nan")}
    if healthy:
        est = llc_from_samples(s, nll_center, beta=beta, num_params=d, warn=False)
        det = est.details
        dist2 = np.asarray(s["sq_distance"].values[0], float)  # (chain, draw)
        _, _, ess_dist2 = mean_se(dist2)
        row.update(mala_accept=det["mala_accept"], llc=est.value, llc_se=est.stderr,
                   tau=dist2.size / max(ess_dist2, 1e-12), drift_z=drift_z(dist2),
                   tau_nll=s.nll.size / max(det["ess"], 1e-12), drift_z_nll=det["drift_z"],
                   bias_minibatch=det["bias_minibatch"],
                   bias_discretization=det["bias_discretization"],
                   predicted_bias=det["predicted_bias"])
    row["sound"] = bool(healthy and row["mala_accept"] >= target_accept
                        and row["llc"] - 4 * row["llc_se"] <= d / 2)
    slow_tau = row["tau"] if preconditioner is None else row["tau_nll"]
    row["mixing"] = bool(slow_tau <= (num_steps // 4) / 2 and abs(row["drift_z"]) < 4
                         and abs(row["drift_z_nll"]) < 4)
    return row


def _default_candidates(target, center, beta, gamma, preconditioner):
    """The sweep's ε grid. Plain SGLD: 11 values from 1e-4/(nβ) to 10/(nβ) (the curvature of βH
    grows like nβ, and so does the largest stable step). RMSprop: G ≈ 1/√h in a direction of
    curvature h (V ≈ E[g²] ≈ h once the chain has spread), so the stable bound is ε ≲ 2/√κ̂ with
    κ̂ = :func:`max_curvature`: 11 values from 1e-3/√κ̂ to 1/√κ̂."""
    if preconditioner is None:
        return np.geomspace(1e-4, 10.0, 11) / (target.n * beta)
    kappa = max_curvature(target, center, beta=beta, gamma=gamma)
    if not (math.isfinite(kappa) and kappa > 0):
        raise SLTThermoError("sgld_step_size: the curvature at `center` is not finite; give `candidates`")
    return np.geomspace(1e-3, 1.0, 11) / math.sqrt(kappa)
