"""Figures of tempered runs, for the CLI and the notebooks (matplotlib, Agg).

Every function takes results (a :class:`~slt_thermo.Samples` or the dataset of
:func:`~slt_thermo.free_energy_vs_n`), returns a ``matplotlib.figure.Figure`` and, given
``path``, also writes it as a PNG. Figures are built without pyplot, so nothing here touches the
global backend or leaks figures; in Jupyter a returned figure shows as the cell's value.

- :func:`energy_vs_inverse_beta` — E^β[nL_n] against 1/β with the weighted OLS line, whose
  slope is λ̂ (``st.rlct(run, "ols")``), and the exact slope when known;
- :func:`free_energy` — F(β) = −log Z(β) by thermodynamic integration (``st.free_energy_curve``),
  for a run whose ladder starts at β = 0, or for every n of a free_energy_vs_n dataset;
- :func:`specific_heat` — C(β) = β² Var^β[nL_n] (``st.observables(run)["specific_heat"]``),
  which approaches λ for β of order 1/log n;
- :func:`free_energy_vs_n` — the Bayes free energy F_n against log n with the fit
  F_n ≈ nL_n(w0) + λ log n − (m − 1) log log n + c;
- :func:`traces` — per-chain traces of a per-draw variable (default ``nll``), one panel per β;
- :func:`llc_traces` — a localized SGLD run of ``st.llc``: per-chain traces of β(nL_n(w) − nL_n(w*))
  and their running means, which settle on λ̂, beside the exact λ when it applies.

    from slt_thermo import plotting
    fig = plotting.energy_vs_inverse_beta(run, path="energy.png")
"""

from __future__ import annotations

import math
import os
from fractions import Fraction

import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._utils import known_rlct, weighted_least_squares
from .errors import InvalidArgumentError
from .results import Samples

__all__ = [
    "energy_vs_inverse_beta", "free_energy", "free_energy_vs_n", "llc_traces", "save", "specific_heat",
    "traces",
]

_DPI = 110


# ------------------------------------------------------------------------------------ helpers
class _Figure(Figure):
    """A Figure that shows itself as a PNG in Jupyter/IPython without pyplot or %matplotlib."""

    def _repr_png_(self):
        import io

        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=_DPI)
        return buf.getvalue()


def _figure(width=6.4, height=4.2, nrows=1, ncols=1, **kw):
    fig = _Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _axes(ax, **kw):
    """(figure, axes): a fresh one-panel figure, or the caller's axes."""
    if ax is not None:
        return ax.figure, ax
    fig, axes = _figure(**kw)
    return fig, axes[0, 0]


def save(fig: Figure, path) -> str:
    """Write ``fig`` as a PNG (or any format matplotlib knows from the suffix), write-then-rename
    (:func:`slt_thermo.io.atomic_path`: a killed process never leaves half an image; a missing
    directory is created). Returns the path."""
    from .io import atomic_path

    path = os.fspath(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=_DPI)
    return path


def _finish(fig, path):
    if path is not None:
        save(fig, path)
    return fig


def _truth(value, attrs) -> Fraction | None:
    """The exact λ: ``value`` if given (number or string), else ``attrs["true_rlct"]``."""
    return known_rlct(attrs if value is None else value)[0]


def _fmt_truth(lam: Fraction) -> str:
    return str(lam) if lam.denominator == 1 else f"{lam} = {float(lam):.4g}"


def _check_samples(samples, fn):
    if not isinstance(samples, Samples):
        raise InvalidArgumentError(
            f"`samples` must be slt_thermo.Samples for plotting.{fn}, got {type(samples).__name__}"
        )


def _is_fvn(obj) -> bool:
    return isinstance(obj, xr.Dataset) and {"F", "F_n"} <= set(obj.data_vars) and "n" in obj.dims


def _wls(X, y, se):
    """Weighted least squares: coefficients and their covariance (scaled by max(1, χ²_red))."""
    return weighted_least_squares(X, y, se)[:2]


def _plain_log_ticks(axis):
    """Log-axis tick labels as plain numbers (0.08, 0.1, 0.2) instead of 2×10⁻¹."""
    from matplotlib.ticker import FuncFormatter

    def minor(v, _):
        lead = f"{v:.0e}"[0]
        return f"{v:g}" if lead in "235" else ""

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(minor))


def _n_colors(k):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.1, 0.85, max(k, 1))]


# ------------------------------------------------------------------------------------ figures
def energy_vs_inverse_beta(samples: Samples, *, truth=None, path=None, ax=None) -> Figure:
    """E^β[nL_n] ± its Monte Carlo error against 1/β, with the weighted least-squares line
    (its slope is the OLS estimate of λ) and, when the exact λ is known, a line of that slope
    through the weighted centre of the points. β = 0 rungs are left out (1/β = ∞).

    ``truth``: the exact λ (default: the run's ``true_rlct`` attribute).
    """
    from .thermo import rung_stats

    _check_samples(samples, "energy_vs_inverse_beta")
    stats = rung_stats(samples)
    b = stats["beta"].values
    keep = b > 0
    if keep.sum() < 2:
        raise InvalidArgumentError("`samples` needs at least two rungs with β > 0 to plot E^β against 1/β")
    x, E, se = 1 / b[keep], stats["E"].values[keep], stats["E_se"].values[keep]
    fig, ax = _axes(ax)
    ax.errorbar(x, E, yerr=se, fmt="o", color="C0", ms=5, capsize=3, zorder=3,
                label="E$^\\beta$[nL$_n$] ± MC error (per rung)")
    X = np.stack([np.ones_like(x), x], axis=1)
    coef, cov = _wls(X, E, se)
    grid = np.linspace(x.min(), x.max(), 50)
    ax.plot(grid, coef[0] + coef[1] * grid, color="C1", lw=2,
            label=f"weighted OLS fit: slope $\\hat\\lambda$ = {coef[1]:.3f} ± {math.sqrt(cov[1, 1]):.3f}")
    lam = _truth(truth, samples.ds.attrs)
    if lam is not None:
        w = 1 / np.maximum(se, 1e-12) ** 2
        xm, ym = np.sum(w * x) / w.sum(), np.sum(w * E) / w.sum()
        ax.plot(grid, ym + float(lam) * (grid - xm), color="k", ls="--", lw=1.2,
                label=f"exact slope λ = {_fmt_truth(lam)}")
    n = samples.n
    if n >= 2 and x.min() <= math.log(n) <= x.max():
        ax.axvline(math.log(n), color="0.6", ls=":", lw=1)
        ax.annotate("1/β = log n", (math.log(n), 0.02), xycoords=("data", "axes fraction"),
                    ha="left", va="bottom", fontsize=8, color="0.4", xytext=(3, 0),
                    textcoords="offset points")
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.set_xlabel("1/β")
    ax.set_ylabel("E$^\\beta$[nL$_n$(w)]")
    ax.set_title(f"{samples.ds.attrs.get('target', '')}, n = {n}: energy vs temperature", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    return _finish(fig, path)


def free_energy(source, *, method="log_corrected_trapezoid", path=None) -> Figure:
    """F(β) = −log Z(β) by thermodynamic integration, with ±2 MC-error bands.

    ``source``: a :class:`Samples` whose ladder starts at β = 0 (``st.ladder.power``), or the
    dataset of :func:`~slt_thermo.free_energy_vs_n` (one curve per n). For the latter, when
    nL_n(w0) is known, a second panel shows F(β) − β·nL_n(w0), the part of the free energy that
    is not training loss (≈ λ log(βn) for βn large).
    """
    if isinstance(source, Samples):
        from .thermo import free_energy_curve

        curve = free_energy_curve(source, method=method)
        b, F, Fse = curve["beta"].values, curve["F"].values, curve["F_se"].values
        fig, ax = _axes(None)
        ax.plot(b, F, "o-", ms=3.5, color="C0", label="F(β) (TI from β = 0)")
        ax.fill_between(b, F - 2 * Fse, F + 2 * Fse, color="C0", alpha=0.25, label="± 2 MC errors")
        ax.set_xlabel("β")
        ax.set_ylabel("F(β) = −log Z(β)")
        ax.set_title(f"{source.ds.attrs.get('target', '')}, n = {source.n}: free energy", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        return _finish(fig, path)
    if not _is_fvn(source):
        raise InvalidArgumentError(
            "`source` must be Samples or the dataset returned by st.free_energy_vs_n, "
            f"got {type(source).__name__}"
        )
    ds = source
    ns, b = ds["n"].values, ds["beta"].values
    known = bool(np.all(np.isfinite(ds["nll_true"].values)))
    fig, axes = _figure(width=11 if known else 6.4, height=4.2, ncols=2 if known else 1)
    colors = _n_colors(len(ns))
    pos = b > 0
    for j, n in enumerate(ns):
        F, Fse = ds["F"].values[j], ds["F_se"].values[j]
        ax = axes[0, 0]
        ax.plot(b, F, "o-", ms=3, color=colors[j], label=f"n = {n}")
        ax.fill_between(b, F - 2 * Fse, F + 2 * Fse, color=colors[j], alpha=0.25)
        if known:
            G = (F - b * ds["nll_true"].values[j])[pos]
            x = n * b[pos]
            axes[0, 1].plot(x, G, "o-", ms=3, color=colors[j], label=f"n = {n}")
            axes[0, 1].fill_between(x, G - 2 * Fse[pos], G + 2 * Fse[pos], color=colors[j], alpha=0.25)
    axes[0, 0].set_xlabel("β")
    axes[0, 0].set_ylabel("F(β) = −log Z(β)")
    axes[0, 0].set_title("free energy by TI (bands: ± 2 MC errors)", fontsize=10)
    if known and pos.any():
        ax = axes[0, 1]
        lam = _truth(None, ds.attrs)
        if lam is not None:
            # slope λ in log(nβ), anchored at the largest n's β = 1 point
            j = len(ns) - 1
            x = ns[j] * b[pos]
            x = x[x >= 1]
            if x.size:
                G1 = float(ds["F"].values[j][-1] - ds["nll_true"].values[j])
                ax.plot(x, G1 + float(lam) * np.log(x / (ns[j] * b[-1])), color="k", ls="--", lw=1.2,
                        label=f"slope λ = {_fmt_truth(lam)} in log nβ (exact)")
        ax.set_xscale("log")
        ax.set_xlabel("nβ")
        ax.set_ylabel("F(β) − β·nL$_n$(w$_0$)")
        ax.set_title("free energy minus training loss at the truth: ≈ λ log nβ for nβ ≫ 1", fontsize=10)
    for ax in axes.ravel():
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
    return _finish(fig, path)


def specific_heat(source, *, truth=None, path=None, ax=None) -> Figure:
    """C(β) = β² Var^β[nL_n] ± its MC error against β (log axis), with the exact λ as a
    horizontal line (C → λ for β ∝ 1/log n) and β = 1/log n marked.

    ``source``: a :class:`Samples` (from ``st.observables``) or a free_energy_vs_n dataset
    (one curve per n). β = 0 rungs (C = 0) are left out.
    """
    fig, ax = _axes(ax)
    if isinstance(source, Samples):
        from .thermo import observables

        obs = observables(source)
        b = obs["beta"].values
        keep = b > 0
        ax.errorbar(b[keep], obs["specific_heat"].values[keep], yerr=obs["specific_heat_se"].values[keep],
                    fmt="o-", ms=5, capsize=3, color="C0", label="C(β) = β² Var$^\\beta$[nL$_n$] ± MC error")
        ns = [source.n]
        attrs = source.ds.attrs
        title = f"{attrs.get('target', '')}, n = {source.n}: specific heat"
    elif _is_fvn(source):
        ds = source
        ns = [int(v) for v in ds["n"].values]
        b = ds["beta"].values
        keep = b > 0
        colors = _n_colors(len(ns))
        for j, n in enumerate(ns):
            C = b[keep] ** 2 * ds["Var"].values[j][keep]
            ax.plot(n * b[keep], C, "o-", ms=3.5, color=colors[j], label=f"n = {n}")
        attrs = ds.attrs
        title = "specific heat C(β) = β² Var$^\\beta$[nL$_n$]: → λ for nβ ≫ 1"
    else:
        raise InvalidArgumentError(
            "`source` must be Samples or the dataset returned by st.free_energy_vs_n, "
            f"got {type(source).__name__}"
        )
    if keep.sum() < 1:
        raise InvalidArgumentError("`source` has no rung with β > 0")
    lam = _truth(truth, attrs)
    if lam is not None:
        ax.axhline(float(lam), color="k", ls="--", lw=1.2, label=f"exact λ = {_fmt_truth(lam)}")
    bmin, bmax = float(b[keep].min()), float(b[keep].max())
    single = isinstance(source, Samples)
    if single and ns[0] >= 2 and bmin <= 1 / math.log(ns[0]) <= bmax:
        ax.axvline(1 / math.log(ns[0]), color="0.6", ls=":", lw=1)
        ax.annotate("β = 1/log n", (1 / math.log(ns[0]), 0.02), xycoords=("data", "axes fraction"),
                    fontsize=8, color="0.4", xytext=(3, 0), textcoords="offset points")
    if bmax / bmin > 3:
        ax.set_xscale("log")
        if single and bmax / bmin < 100:
            _plain_log_ticks(ax.xaxis)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("β" if single else "nβ")
    ax.set_ylabel("C(β)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _finish(fig, path)


def free_energy_vs_n(ds: xr.Dataset, *, truth=None, multiplicity=None, path=None, ax=None) -> Figure:
    """The Bayes free energy F_n = F(β = 1) against log n with its weighted least-squares fit
    F_n ≈ nL_n(w0) + λ log n − (m − 1) log log n + c (``ds.attrs`` lambda_hat, m_hat).

    When nL_n(w0) is known (``ds["nll_true"]``) the plot shows F_n − nL_n(w0), whose slope in
    log n is λ; otherwise F_n − â·n with the training-loss rate â fitted alongside. With the exact λ (``truth`` or
    ``ds.attrs["true_rlct"]``), a dashed curve λ log n − (m − 1) log log n + c shows the truth.
    """
    if not _is_fvn(ds):
        raise InvalidArgumentError(
            f"`ds` must be the dataset returned by st.free_energy_vs_n, got {type(ds).__name__}"
        )
    ns = ds["n"].values.astype(float)
    Fn = ds["F_n"].values.astype(float)
    se = ds["F_se"].isel(beta=-1).values.astype(float)
    nll = ds["nll_true"].values.astype(float)
    known = bool(np.all(np.isfinite(nll)))
    logn = np.log(ns)
    cols = [logn, -np.log(np.log(ns)), np.ones_like(ns)]
    y = Fn - nll if known else Fn
    if not known:
        cols.append(ns)
    coef, cov = _wls(np.stack(cols, axis=1), y, se)
    a = 0.0 if known else float(coef[3])  # fitted training loss per example, when nL_n(w0) is unknown
    y = y - a * ns
    fig, ax = _axes(ax)
    ax.errorbar(logn, y, yerr=2 * se, fmt="o", ms=5, capsize=3, color="C0", zorder=3,
                label=("F$_n$ − nL$_n$(w$_0$)" if known else "F$_n$ − $\\hat a$n") + f" by {ds.attrs.get('free_energy_by', 'TI')} (± 2 MC errors)")
    g = np.linspace(logn.min(), logn.max(), 100)
    fit = np.stack([g, -np.log(g), np.ones_like(g)], axis=1) @ coef[:3]
    lam_hat = ds.attrs.get("lambda_hat", coef[0])
    lam_se = ds.attrs.get("lambda_se", math.sqrt(cov[0, 0]))
    m_hat = ds.attrs.get("m_hat", 1 + coef[1])
    m_se = ds.attrs.get("m_se", math.sqrt(cov[1, 1]))
    ax.plot(g, fit, color="C1", lw=2,
            label=f"fit: $\\hat\\lambda$ = {lam_hat:.3f} ± {lam_se:.3f}, $\\hat m$ = {m_hat:.2f} ± {m_se:.2f}")
    lam = _truth(truth, ds.attrs)
    if lam is not None:
        m = multiplicity if multiplicity is not None else ds.attrs.get("true_multiplicity")
        m = 1 if m in (None, "") else int(m)
        base = float(lam) * logn - (m - 1) * np.log(logn)
        w = 1 / np.maximum(se, 1e-12) ** 2
        c = float(np.sum(w * (y - base)) / w.sum())
        truth_curve = float(lam) * g - (m - 1) * np.log(g) + c
        ax.plot(g, truth_curve, color="k", ls="--", lw=1.2,
                label=f"exact λ = {_fmt_truth(lam)}, m = {m} (offset fitted)")
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.set_xlabel("log n")
    ax.set_ylabel("F$_n$ − nL$_n$(w$_0$)" if known else f"F$_n$ − $\\hat a$n   ($\\hat a$ = {a:.4g} fitted)")
    ax.set_title("Bayes free energy vs n: F$_n$ ≈ nL$_n$(w$_0$) + λ log n − (m−1) log log n + c",
                 fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    return _finish(fig, path)


def traces(samples: Samples, var: str = "nll", *, max_rungs: int = 6, path=None) -> Figure:
    """Per-chain traces of a per-draw variable (default the energy ``nll`` = nL_n(w)), one panel
    per β (at most ``max_rungs``, evenly spread over the ladder). Unhealthy chains are drawn
    dashed. Well-mixed chains overlap and show no trend."""
    _check_samples(samples, "traces")
    if var not in samples.ds or samples[var].dims != ("beta", "chain", "draw"):
        raise InvalidArgumentError(f"`var` {var!r} is not a per-draw (beta, chain, draw) variable of the samples")
    B = samples.betas.size
    idx = np.unique(np.round(np.linspace(0, B - 1, min(B, max_rungs))).astype(int))
    fig, axes = _figure(width=7.5, height=1.35 * len(idx) + 0.9, nrows=len(idx), sharex=True)
    vals = samples[var].values
    healthy = samples.healthy.values
    C = vals.shape[1]
    colors = [f"C{c % 10}" for c in range(C)]
    for row, i in enumerate(idx):
        ax = axes[row, 0]
        for c in range(C):
            ax.plot(vals[i, c], lw=0.6, alpha=0.8, color=colors[c], ls="-" if healthy[i, c] else "--",
                    label=f"chain {c}" if row == 0 else None)
        ax.text(0.99, 0.92, f"β = {samples.betas[i]:.4g}", transform=ax.transAxes, ha="right", va="top",
                fontsize=8, bbox=dict(facecolor="white", alpha=0.7, edgecolor="none"))
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    label = "nL$_n$(w)" if var == "nll" else var
    fig.supylabel(label, fontsize=10)
    axes[-1, 0].set_xlabel("draw (after warmup)")
    axes[0, 0].set_title(f"{samples.ds.attrs.get('target', '')}, n = {samples.n}: per-chain traces of {label}",
                         fontsize=10)
    if C <= 10:
        fig.legend(loc="outside lower center", ncols=min(C, 8), fontsize=8, frameon=False)
    return _finish(fig, path)


def llc_traces(samples: Samples, nll_center: float, *, beta: float | None = None, truth=None,
               estimate=None, lines=None, path=None) -> Figure:
    """The localized run behind ``st.llc``: per chain, β(nL_n(w) − nL_n(w*)) along the kept SGLD
    steps (top) and its running mean (bottom), whose average over chains is λ̂. Chains that
    settled agree and show no trend; unhealthy chains are drawn dashed and left out of λ̂.

    ``nll_center``: nL_n(w*) (``estimate.details["nll_center"]``); ``beta``: default the run's
    only β; ``estimate``: the :class:`~slt_thermo.Estimate` (or ``(value, stderr)``) drawn as a
    band; ``truth``: the exact λ to draw (a number or string such as ``"3/2"``; default none —
    the local λ at w* is the global λ only at the most singular true point); ``lines``: further
    horizontal reference lines, ``{label: value}``.
    """
    _check_samples(samples, "llc_traces")
    if samples.betas.size != 1:
        raise InvalidArgumentError(f"`samples` must be a one-β run (st.llc), got {samples.betas.size} β")
    beta = float(samples.betas[0]) if beta is None else float(beta)
    y = beta * (np.asarray(samples.nll.values[0], dtype=float) - float(nll_center))  # (chain, draw)
    healthy = samples.healthy.values[0]
    C, D = y.shape
    attrs = samples.ds.attrs
    thin = int(attrs.get("thinning", 1) or 1)
    start = int(attrs.get("num_warmup", 0) or 0)
    steps = start + thin * (np.arange(D) + 1)
    running = np.cumsum(y, axis=1) / np.arange(1, D + 1)
    if estimate is not None:
        value, se = (estimate.value, estimate.stderr) if hasattr(estimate, "value") else estimate
    else:
        ok = y[healthy] if healthy.any() else y
        value, se = float(np.mean(ok)), None
    lam = _truth(truth, {})
    fig, axes = _figure(width=7.5, height=6.0, nrows=2, sharex=True)
    colors = [f"C{c % 10}" for c in range(C)]
    for row, (data, lw, alpha) in enumerate(((y, 0.4, 0.45), (running, 1.2, 0.9))):
        ax = axes[row, 0]
        for c in range(C):
            ax.plot(steps, data[c], lw=lw, alpha=alpha, color=colors[c], ls="-" if healthy[c] else "--",
                    label=(f"chain {c}" if healthy[c] else f"chain {c} (unhealthy)") if row == 1 else None)
        text = f"$\\hat\\lambda$ = {value:.3f}" + ("" if se is None else f" ± {se:.3f}")
        ax.axhline(value, color="k", lw=1.3, label=text if row == 1 else None)
        if se is not None and math.isfinite(se):
            ax.axhspan(value - se, value + se, color="k", alpha=0.12, lw=0)
        if lam is not None:
            ax.axhline(float(lam), color="C3", ls="--", lw=1.3,
                       label=f"exact λ = {_fmt_truth(lam)}" if row == 1 else None)
        for label, v in (lines or {}).items():
            ax.axhline(float(v), color="0.35", ls=":", lw=1.5, label=label if row == 1 else None)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    if D > 1:  # keep the noisy raw traces from hiding the lines: clip to their central 99%
        lo, hi = np.nanpercentile(y, [0.5, 99.5])
        pad = 0.05 * (hi - lo)
        axes[0, 0].set_ylim(min(lo, value) - pad, max(hi, value, float(lam) if lam is not None else hi) + pad)
        tail = running[:, D // 10:]
        lo, hi = np.nanmin(tail), np.nanmax(tail)
        marks = [value] + ([float(lam)] if lam is not None else []) + [float(v) for v in (lines or {}).values()]
        lo, hi = min(lo, *marks), max(hi, *marks)
        pad = 0.08 * (hi - lo) + 1e-9
        axes[1, 0].set_ylim(lo - pad, hi + pad)
    axes[0, 0].set_ylabel("β(nL$_n$(w) − nL$_n$(w*))", fontsize=9)
    axes[1, 0].set_ylabel("running mean per chain", fontsize=9)
    axes[1, 0].set_xlabel("SGLD step" + (f" (the first {start}, burn-in, are not shown)" if start else ""))
    axes[0, 0].set_title(f"{attrs.get('target', '')}, n = {samples.n}: local learning coefficient at w* "
                         f"(β = {beta:.4g})", fontsize=10)
    handles, labels = axes[1, 0].get_legend_handles_labels()
    order = list(range(C, len(handles))) + list(range(C))  # the λ lines first, then the chains
    fig.legend([handles[i] for i in order], [labels[i] for i in order], loc="outside lower center",
               ncols=min(len(handles), 1 + math.ceil(C / max(1, len(handles) - C))), fontsize=8, frameon=False)
    return _finish(fig, path)
