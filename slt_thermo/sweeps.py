"""Runs that sample over a grid: the free energy F(β) as a function of n.

Estimators (:mod:`slt_thermo.thermo`) are pure functions of Samples; a sweep drives a sampler over
many targets (nested datasets of growing n) and hands each run to them. The post-processing that
turns a sweep into the free-energy report (closed-form F_n where the model knows it, the TI
discretization error, the fit with the exact multiplicity held fixed) lives here too, so the
command line only prints it.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from .errors import ConvergenceWarning, InvalidArgumentError
from .thermo import fit_free_energy, free_energy_curve, ladder, rung_stats, ti_free_energy


def _unit_path(checkpoint: str, i: int, n: int) -> str:
    import os

    return os.path.join(checkpoint, f"unit-{i:03d}-n{n}.nc")


def _unit_fingerprint(n, betas, key, sampler, method, sampler_kwargs) -> str:
    """What a saved unit must share with the sweep that reads it back (a stable text)."""
    import hashlib

    import jax

    text = repr((n, np.asarray(betas, float).round(15).tolist(), np.asarray(jax.random.key_data(key)).tolist(),
                 getattr(sampler, "__name__", repr(sampler)), method, sorted((k, repr(v)) for k, v in sampler_kwargs.items())))
    return hashlib.sha256(text.encode()).hexdigest()


def _load_unit(path: str, fingerprint: str):
    """A finished unit's (curve, stats, nll_true), or None when absent or from another sweep."""
    import os

    from .io import read_netcdf

    if not os.path.exists(path):
        return None
    ds = read_netcdf(path)
    if ds.attrs.get("fingerprint") != fingerprint:
        raise InvalidArgumentError(f"checkpoint {path} is from a different sweep (other ns, ladder, key, sampler or "
                                   "settings); use a new `checkpoint` directory")
    return (ds[["F", "F_se"]], ds[["E", "E_se", "Var"]], float(ds.attrs["nll_true"]))


def _save_unit(path: str, fingerprint: str, curve, stats, nll_true: float) -> None:
    from .io import write_netcdf

    ds = xr.Dataset({k: ("beta", np.asarray(v.values, float)) for k, v in
                     {"F": curve["F"], "F_se": curve["F_se"], "E": stats["E"], "E_se": stats["E_se"],
                      "Var": stats["Var"]}.items()})
    ds.attrs.update(fingerprint=fingerprint, nll_true=nll_true)
    write_netcdf(path, ds)


def free_energy_vs_n(model_or_factory, ns, betas=None, *, key, data=None, method="log_corrected_trapezoid",
                     sampler=None, checkpoint: str | None = None, **sampler_kwargs) -> xr.Dataset:
    """F(β) over (n, β) on nested subsets of one dataset, and a fit of the Bayes free energy

        F_n ≈ n L_n(w0) + λ log n − (m − 1) log log n + c.

    Args:
        model_or_factory: a zoo-style Model (``simulate``, ``true_params``): one dataset of
            max(ns) examples is simulated (or ``data`` used) and its first n examples form each
            target; or a callable ``n -> Target`` (e.g. ``lambda n: Target.population(m, n)``).
            n L_n(w0) comes from the target's model's ``true_params``; where unknown it is
            fitted as a·n.
        ns: increasing dataset sizes.
        betas: the ladder for every n, from β = 0 to β = 1; default ``ladder.ti(max(ns))``
            (β = 0, then 24 geometric rungs from 0.01/max(ns)), which with the default log-β
            rule integrates the exact fixtures to 1e-3 nats up to n = 1e7. A power ladder's
            quadrature error grows with n (tens of nats at n = 1e7) and biases λ̂ and m̂.
        key: PRNG key; sampler_kwargs go to the sampler (default ``sample_nuts``).
        checkpoint: a directory: each finished n (a *unit*) is written there as it completes
            (write-then-rename: a killed sweep never leaves a half-written file), and a sweep
            called again with the same directory and arguments loads the finished units and runs
            only the rest — the same final numbers as an uninterrupted sweep (each unit's key is
            ``fold_in(key, i)``). A unit written by a different sweep raises. A Ctrl-C while a
            unit samples raises ``KeyboardInterrupt`` (its partial draws are not saved as a unit).
        sampler: ``sample_nuts`` (default) or any ladder sampler returning Samples, whose F comes
            by TI with ``method``; or ``st.population_annealing``, run on the same fixed ladder,
            whose F(β) = −log Ẑ(β) needs no quadrature (its errors from the independent runs:
            pass ``num_particles`` and ``num_runs`` ≥ 2). For singular models at large n prefer
            PA: NUTS on K = w1²w2² at n = 1e7 meets arms ~3000× narrower than long, diverges,
            and under-estimates E^β (F_n 0.3–0.4 nats low, z ≈ −3 to −5), while PA with
            4 × 1000 particles is within 2 se (tests/test_estimators.py).

    Returns:
        xarray.Dataset over (n, beta) with ``F``, ``F_se``, ``E``, ``E_se``, ``Var``; over n with
        ``F_n`` (F at β = 1), ``nll_true`` (n L_n(w0), NaN if unknown); attrs ``lambda_hat``,
        ``lambda_se``, ``m_hat``, ``m_se`` from a weighted least-squares fit.
    """
    import jax

    from .samplers import population_annealing, sample_nuts
    from .target import Target

    ns = [int(v) for v in ns]
    if len(ns) < 3 or any(b <= a for a, b in zip(ns, ns[1:])) or ns[0] < 2:
        raise InvalidArgumentError(f"`ns` must be >= 3 increasing sizes >= 2, got {ns!r}")
    betas = ladder.ti(ns[-1]) if betas is None else np.asarray(betas, dtype=float)
    if betas[0] != 0 or abs(betas[-1] - 1.0) > 1e-12:
        raise InvalidArgumentError("`betas` must run from 0 to 1 (use st.ladder.ti(n) or st.ladder.power(num))")
    sampler = sample_nuts if sampler is None else sampler
    is_model = hasattr(model_or_factory, "log_likelihood") and hasattr(model_or_factory, "simulate")
    if is_model:
        model = model_or_factory
        if data is None:
            key, sub = jax.random.split(key)
            data = model.simulate(sub, ns[-1])

        def make(n):
            return Target(model, jax.tree_util.tree_map(lambda a: a[:n], data))
    elif callable(model_or_factory):
        make = model_or_factory
    else:
        raise InvalidArgumentError("`model_or_factory` must be a Model or a callable n -> Target")

    if checkpoint is not None:
        import os

        os.makedirs(checkpoint, exist_ok=True)
    rows = []
    for i, n in enumerate(ns):
        sub = jax.random.fold_in(key, i)
        if checkpoint is not None:
            fp = _unit_fingerprint(n, betas, sub, sampler, method, sampler_kwargs)
            done = _load_unit(_unit_path(checkpoint, i, n), fp)
            if done is not None:
                rows.append(done)
                continue
        target = make(n)
        if sampler is population_annealing:
            pa = population_annealing(target, betas=betas, key=sub, **sampler_kwargs).rungs
            curve = xr.Dataset({"F": -pa["log_z"], "F_se": pa["log_z_se"]})
            stats = pa[["E", "E_se", "Var"]]
        else:
            run = sampler(target, betas, key=sub, **sampler_kwargs)
            if run.ds.attrs.get("interrupted"):  # a Ctrl-C: a partial run is not a finished n
                raise KeyboardInterrupt(f"free_energy_vs_n: interrupted while sampling n = {n}")
            curve = free_energy_curve(run, method=method)
            stats = rung_stats(run)
            _warn_unmixed(stats, n)
        w0 = getattr(target.model, "true_params", None)
        nll_true = float(target.nll(w0)) if w0 is not None else float("nan")
        rows.append((curve, stats, nll_true))
        if checkpoint is not None:
            _save_unit(_unit_path(checkpoint, i, n), fp, curve, stats, nll_true)

    ds = xr.Dataset(
        {
            "F": (("n", "beta"), np.stack([r[0]["F"].values for r in rows])),
            "F_se": (("n", "beta"), np.stack([r[0]["F_se"].values for r in rows])),
            "E": (("n", "beta"), np.stack([r[1]["E"].values for r in rows])),
            "E_se": (("n", "beta"), np.stack([r[1]["E_se"].values for r in rows])),
            "Var": (("n", "beta"), np.stack([r[1]["Var"].values for r in rows])),
            "nll_true": ("n", np.array([r[2] for r in rows])),
        },
        coords={"n": ns, "beta": betas},
    )
    ds["F_n"] = ds["F"].isel(beta=-1)
    fit = fit_free_energy(np.array(ns), ds["F_n"].values, ds["F_se"].isel(beta=-1).values,
                          ds["nll_true"].values)
    ds.attrs.update(fit, free_energy_by="population annealing" if sampler is population_annealing else "TI")
    return ds


def _warn_unmixed(stats, n, threshold=1.05):
    bad = stats["beta"].values[stats["rhat"].values > threshold]
    if bad.size:
        warnings.warn(
            f"n = {n}: R-hat of nL_n > {threshold} at β = {', '.join(f'{b:.3g}' for b in bad)}; "
            "the chains disagree there and F(β) from them is unreliable (more warmup, more "
            "chains, or sampler=st.population_annealing)", ConvergenceWarning, stacklevel=3)


def exact_free_energies(model, data, ns) -> list[float] | None:
    """F_n = −log Z_n at β = 1 in closed form on each nested subset ``data[:n]``, for models that
    know it (``exact_thermo(data, beta)``, e.g. linear regression); else None."""
    import jax

    exact = getattr(model, "exact_thermo", None)
    if data is None or not callable(exact):
        return None
    try:
        return [float(exact(jax.tree_util.tree_map(lambda a, n=n: a[:n], data), 1.0).F) for n in ns]
    except Exception:  # the closed form does not apply to these settings
        return None


def discretization_errors(ds: xr.Dataset) -> list[float]:
    """Per n of a :func:`free_energy_vs_n` dataset, the TI discretization error of F_n
    (Richardson: the same rule on every other rung)."""
    betas = ds["beta"].values
    return [float(ti_free_energy(betas, ds["E"].values[i], ds["Var"].values[i])
                  .details["discretization_error"]) for i in range(ds.sizes["n"])]


def fit_fixed_m(ds: xr.Dataset, m) -> dict | None:
    """λ̂ of a :func:`free_energy_vs_n` dataset with the exact multiplicity ``m`` held fixed
    (:func:`~slt_thermo.thermo.fit_free_energy` with ``m``): far tighter than fitting λ and m
    together when m is known. None when m or nL_n(w0) is unknown."""
    nll = ds["nll_true"].values
    if m is None or not np.all(np.isfinite(nll)):
        return None
    fit = fit_free_energy(ds["n"].values, ds["F_n"].values, ds["F_se"].isel(beta=-1).values, nll, m=int(m))
    return {"m": int(m), "lambda_hat": fit["lambda_hat"], "lambda_se": fit["lambda_se"],
            "reduced_chi2": fit["fit_reduced_chi2"]}


__all__ = ["discretization_errors", "exact_free_energies", "fit_fixed_m", "free_energy_vs_n"]
