"""The panels of TherML's Figs. 3–8 for one parameter point: marginals over x and z, and the
K × K channels (matplotlib, no pyplot state)."""

from __future__ import annotations

import numpy as np

from .model import tables


def channels(params, p_xy, noise=None) -> dict:
    """The distributions the paper's panels show, from the model's tables and the true p(x, y):
    p(x); g(x) = Σ_z q(z)q(x|z) (the generative marginal); d(x) = Σ_x' p(x') Σ_z e(z|x')q(x|z)
    (data encoded then decoded); q(z); e(z) = Σ_x p(x)e(z|x); e(z|y) for y = 0, 1; and the
    matrices e(z|x) (x, z), q(x|z) (z, x), q(x'|x) = Σ_z e(z|x)q(x'|z) (x, x'). ``noise``: the
    model's noise draws (``Model.noise``) when it has encoder noise."""
    t = {k: np.exp(np.asarray(v, np.float64)) for k, v in tables(params, noise).items()}
    p = np.asarray(p_xy, np.float64)
    px = p.sum(axis=1)
    e, dec, qz = t["log_e"], t["log_dec"], t["log_qz"]
    recon = e @ dec
    return {"p_x": px, "g_x": qz @ dec, "d_x": px @ recon, "q_z": qz, "e_z": px @ e,
            "e_z_y0": (p[:, 0] / p[:, 0].sum()) @ e, "e_z_y1": (p[:, 1] / p[:, 1].sum()) @ e,
            "e_z_given_x": e, "q_x_given_z": dec, "q_x_given_x": recon}


def posterior_channels(run, model, p_xy, beta: float, *, max_draws: int = 400) -> dict:
    """The channels of :func:`channels` averaged over the σS-posterior draws of ``run`` at
    ``beta`` = 1/σ (the Bayesian predictive encoder, decoder and classifier of a σ > 0 point:
    what the paper's panels show for an optimized θ at σ = 0). ``model`` is the run's
    :class:`~slt_thermo.therml.Model` (frozen parameters and noise draws come from it); at most
    ``max_draws`` draws, evenly spaced over the healthy chains."""
    import jax

    from ..errors import InvalidArgumentError

    sub = run.sel_beta(beta)
    ds = sub.ds.isel(beta=0) if "beta" in sub.ds.dims else sub.ds
    healthy = np.asarray(ds["healthy"].values, bool)
    names = run.param_names
    if not names:
        raise InvalidArgumentError("`run` kept no parameters (keep_params=False)")
    flat = {k: np.asarray(ds[k].values)[healthy].reshape((-1,) + ds[k].shape[2:]) for k in names}
    N = next(iter(flat.values())).shape[0]
    idx = np.linspace(0, N - 1, min(max_draws, N)).round().astype(int)
    out = None
    for i in idx:
        full = model.full({k: jax.numpy.asarray(v[i]) for k, v in flat.items()})
        c = channels(full, p_xy, model.noise)
        out = c if out is None else {k: out[k] + c[k] for k in c}
    return {k: v / idx.size for k, v in out.items()}


def panels(params, p_xy, *, noise=None, title: str = "", path: str | None = None, precomputed: dict | None = None):
    """One figure: p(x), g(x), d(x); q(z), e(z), e(z|y=0), e(z|y=1); the matrices e(z|x),
    q(x|z), q(x'|x). Saved to ``path`` (write-then-rename) when given; returns the Figure.
    ``precomputed``: channels to draw instead of those of ``params`` (e.g.
    :func:`posterior_channels` of a σ > 0 run; pass ``params=None``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    c = precomputed if precomputed is not None else channels(params, p_xy, noise)
    fig = Figure(figsize=(13, 2.8))
    FigureCanvasAgg(fig)
    ax = fig.subplots(1, 5)
    k = np.arange(c["p_x"].size)
    for name, style in (("p_x", "k-"), ("g_x", "C0--"), ("d_x", "C1:")):
        ax[0].plot(k, c[name], style, label=name.replace("_", "(") + ")")
    ax[0].set_xlabel("x")
    ax[0].legend(fontsize=7)
    for name, style in (("q_z", "k-"), ("e_z", "C0--"), ("e_z_y0", "C2:"), ("e_z_y1", "C3:")):
        label = {"q_z": "q(z)", "e_z": "e(z)", "e_z_y0": "e(z|y=0)", "e_z_y1": "e(z|y=1)"}[name]
        ax[1].plot(k, c[name], style, label=label)
    ax[1].set_xlabel("z")
    ax[1].legend(fontsize=7)
    for a, name, (xl, yl) in zip(ax[2:], ("e_z_given_x", "q_x_given_z", "q_x_given_x"),
                                 (("z", "x"), ("x", "z"), ("x'", "x"))):
        a.imshow(c[name], origin="lower", cmap="viridis", aspect="auto")
        a.set_xlabel(xl)
        a.set_ylabel(yl)
        a.set_title({"e_z_given_x": "e(z|x)", "q_x_given_z": "q(x|z)", "q_x_given_x": "q(x'|x)"}[name], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if path is not None:
        from ..plotting import save

        save(fig, path)
    return fig
