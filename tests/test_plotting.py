"""slt_thermo.plotting: every figure builds from results, has labels and legends, and saves a PNG.

The inputs are synthetic (no sampling, so no compilation): a Samples whose energies follow the
singular-regime law nβK ~ Gamma(λ, 1), and a free_energy_vs_n-shaped dataset.
"""

import math

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure

import slt_thermo as st
from slt_thermo import plotting
from slt_thermo.thermo import fit_free_energy

PNG = b"\x89PNG\r\n\x1a\n"


def fake_samples(betas, n=1000, lam=1.5, chains=3, draws=200, seed=0, nll0=2900.0):
    """Samples with nll = nL_n(w0) + Gamma(λ, 1)/β per draw (prior-like spread at β = 0)."""
    rng = np.random.default_rng(seed)
    betas = np.asarray(betas, dtype=float)
    nll = np.empty((betas.size, chains, draws))
    for i, b in enumerate(betas):
        scale = 1 / b if b > 0 else 50.0 * n
        nll[i] = nll0 + rng.gamma(lam, scale, size=(chains, draws))
    ds = xr.Dataset(
        {"nll": (("beta", "chain", "draw"), nll),
         "healthy": (("beta", "chain"), np.ones((betas.size, chains), bool))},
        coords={"beta": betas, "chain": np.arange(chains), "draw": np.arange(draws)},
        attrs={"n": n, "target": "fake(λ=3/2)", "true_rlct": "3/2", "num_draws": draws},
    )
    return st.Samples(ds)


def fake_free_energy_vs_n(ns=(100, 300, 1000, 3000), lam=1.5, m=1, nll_known=True):
    betas = st.ladder.power(8)
    ns = np.asarray(ns)
    nll0 = 1.4 * ns
    F = np.stack([b_n * betas + lam * np.log1p(n * betas) for n, b_n in zip(ns, nll0)])
    F_se = 0.05 + 0.01 * F / F.max()
    Var = np.stack([lam / (betas + 1 / n) ** 2 for n in ns])
    ds = xr.Dataset(
        {"F": (("n", "beta"), F), "F_se": (("n", "beta"), F_se),
         "E": (("n", "beta"), np.gradient(F, betas, axis=1)), "E_se": (("n", "beta"), F_se),
         "Var": (("n", "beta"), Var),
         "nll_true": ("n", nll0 if nll_known else np.full(ns.size, np.nan))},
        coords={"n": ns, "beta": betas},
    )
    ds["F_n"] = ds["F"].isel(beta=-1)
    ds.attrs.update(fit_free_energy(ns, ds["F_n"].values, F_se[:, -1], ds["nll_true"].values))
    ds.attrs["true_rlct"], ds.attrs["true_multiplicity"] = "3/2", m
    return ds


def _check(fig, path, nonempty_axes=1):
    assert isinstance(fig, Figure)
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5_000
    axes = [ax for ax in fig.axes if ax.has_data()]
    assert len(axes) >= nonempty_axes
    for ax in axes:
        assert ax.get_xlabel() or ax is not axes[-1]
    return axes


@pytest.fixture(scope="module")
def run():
    return fake_samples(st.ladder.around_wbic(1000, num=5))


def test_energy_vs_inverse_beta(run, tmp_path):
    path = tmp_path / "e.png"
    fig = plotting.energy_vs_inverse_beta(run, path=path)
    (ax,) = _check(fig, path)
    assert ax.get_xlabel() == "1/β" and "nL" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    ols = st.rlct(run, method="ols")
    # the fitted line's slope in the legend is the OLS estimator's value
    assert any(f"{ols.value:.3f}" in s for s in labels), labels
    assert any("exact slope" in s and "3/2" in s for s in labels)
    assert fig._repr_png_()[:8] == PNG  # shows itself in Jupyter


def test_specific_heat_samples_and_dataset(run, tmp_path):
    fig = plotting.specific_heat(run, path=tmp_path / "c.png")
    (ax,) = _check(fig, tmp_path / "c.png")
    assert ax.get_ylabel() == "C(β)"
    assert any("exact λ" in t.get_text() for t in ax.get_legend().get_texts())
    fig = plotting.specific_heat(fake_free_energy_vs_n(), path=tmp_path / "c2.png")
    (ax,) = _check(fig, tmp_path / "c2.png")
    assert ax.get_xlabel() == "nβ" and len(ax.get_legend().get_texts()) == 5  # 4 n + exact λ


def test_free_energy_from_samples_needs_beta_zero(tmp_path):
    ti = fake_samples(st.ladder.power(6))
    fig = plotting.free_energy(ti, path=tmp_path / "f.png")
    (ax,) = _check(fig, tmp_path / "f.png")
    curve = st.free_energy_curve(ti)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), curve["F"].values)
    with pytest.raises(st.InvalidArgumentError, match="start at 0"):
        plotting.free_energy(fake_samples([0.1, 0.2, 0.3]))


def test_free_energy_dataset_two_panels(tmp_path):
    fig = plotting.free_energy(fake_free_energy_vs_n(), path=tmp_path / "f.png")
    _, right = _check(fig, tmp_path / "f.png", nonempty_axes=2)
    assert right.get_xlabel() == "nβ" and right.get_xscale() == "log"
    # without nL_n(w0) there is only the raw panel
    fig = plotting.free_energy(fake_free_energy_vs_n(nll_known=False), path=tmp_path / "g.png")
    assert len(fig.axes) == 1


@pytest.mark.parametrize("known", [True, False])
def test_free_energy_vs_n(tmp_path, known):
    ds = fake_free_energy_vs_n(ns=(100, 300, 1000, 3000, 10000), nll_known=known)
    fig = plotting.free_energy_vs_n(ds, path=tmp_path / "fn.png")
    (ax,) = _check(fig, tmp_path / "fn.png")
    assert ax.get_xlabel() == "log n"
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(f"{ds.attrs['lambda_hat']:.3f}" in t for t in texts)
    assert any("exact λ = 3/2" in t for t in texts)
    # the fitted curve goes through the points (the fake F_n is smooth in log n)
    x = np.log(ds["n"].values)
    y = ax.containers[0].lines[0].get_ydata()  # the plotted points
    if known:
        np.testing.assert_allclose(y, ds["F_n"].values - ds["nll_true"].values)
    else:
        assert np.ptp(y) < 0.01 * np.ptp(ds["F_n"].values)  # the a·n term is taken out
    fit = ax.lines[0]
    np.testing.assert_allclose(np.interp(x, fit.get_xdata(), fit.get_ydata()), y, rtol=0, atol=0.3)


def test_traces(run, tmp_path):
    fig = plotting.traces(run, path=tmp_path / "t.png")
    axes = _check(fig, tmp_path / "t.png", nonempty_axes=5)
    assert all(len(ax.lines) == 3 for ax in axes)  # one line per chain
    many = fake_samples(st.ladder.power(12), draws=20)
    assert len(plotting.traces(many, max_rungs=4).axes) == 4
    with pytest.raises(st.InvalidArgumentError, match="per-draw"):
        plotting.traces(run, var="nope")


def test_ax_argument_and_bad_inputs(run):
    fig = Figure()
    ax = fig.subplots()
    assert plotting.energy_vs_inverse_beta(run, ax=ax) is fig
    for fn in (plotting.energy_vs_inverse_beta, plotting.traces):
        with pytest.raises(st.InvalidArgumentError, match="Samples"):
            fn(np.zeros(3))
    for fn in (plotting.free_energy, plotting.specific_heat, plotting.free_energy_vs_n):
        with pytest.raises(st.InvalidArgumentError):
            fn(xr.Dataset())


def test_truth_override_and_unknown(run):
    fig = plotting.energy_vs_inverse_beta(run, truth=2)
    assert any("λ = 2" in t.get_text() for t in fig.axes[0].get_legend().get_texts())
    ds = run.ds.copy()
    ds.attrs = {k: v for k, v in ds.attrs.items() if k != "true_rlct"}
    fig = plotting.energy_vs_inverse_beta(st.Samples(ds))
    assert not any("exact" in t.get_text() for t in fig.axes[0].get_legend().get_texts())
    assert math.isfinite(st.rlct(run, method="ols").value)


def test_llc_traces(tmp_path):
    beta = 0.1
    s = fake_samples([beta], chains=4, draws=100)  # nll = 2900 + Gamma(3/2, 1/β): λ̂ ≈ 3/2
    s.ds["healthy"][0, 3] = False
    nll0 = 2900.0
    value = beta * (s.nll.values[0, :3].mean() - nll0)
    fig = plotting.llc_traces(s, nll0, truth="3/2", estimate=(value, 0.1), lines={"other": 1.2},
                              path=tmp_path / "llc.png")
    top, bottom = _check(fig, tmp_path / "llc.png", nonempty_axes=2)
    np.testing.assert_allclose(top.lines[0].get_ydata(), beta * (s.nll.values[0, 0] - nll0))
    assert bottom.lines[0].get_ydata()[-1] == pytest.approx(beta * (s.nll.values[0, 0].mean() - nll0))
    assert bottom.lines[3].get_linestyle() == "--"  # the unhealthy chain
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:3] == [f"$\\hat\\lambda$ = {value:.3f} ± 0.100", "exact λ = 3/2 = 1.5", "other"]
    assert "chain 3 (unhealthy)" in labels
    with pytest.raises(st.InvalidArgumentError, match="one-β"):
        plotting.llc_traces(fake_samples([0.1, 0.2]), nll0)


def test_plotting_is_exported_lazily():
    import subprocess
    import sys

    code = ("import sys, slt_thermo as st; assert 'matplotlib' not in sys.modules; "
            "assert callable(st.plotting.llc_traces) and 'matplotlib' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
