"""LLC by SGLD: ``st.llc`` against devinterp 1.3.2 (PyTorch, CPU) on deep linear networks.

Two parts, both printed and written to ``benchmarks/results/llc_vs_devinterp.json``:

1. **Throughput and λ̂, side by side.** For DLNs from ~1e2 to ~1e4 parameters, the SAME chain is
   run by devinterp's ``estimate_learning_coeff_with_summary`` (its default ``SGLD`` sampler and
   ``LLCEstimator``) and by ``st.llc``: SGLD steps per second = chains × steps / wall time for
   both, the ratio, and both λ̂ against Aoyagi's λ (``m.rlct``). ``st.llc`` is timed twice: a
   first call (compilation included) and a second call with another key (jit cache hit); and
   once more with ``thinning = 10`` (same number of SGLD steps, a tenth of the recorded draws)
   and once recording only the last 4 draws ("SGLD-only"), because recorded draws of ``st.llc``
   also get a full-batch MALA acceptance check (2 gradient passes over all n examples), which
   devinterp does not compute: on at most 50 draws per chain by default (``diagnose_every``;
   before that default, on every draw, which made st.llc slower than devinterp at d ≳ 1e3).
2. **Accuracy table** (an approximation of Lau et al.'s DLN protocol, arXiv:2308.12108; see
   ``random_dlns``): λ̂ of ``st.llc`` against Aoyagi's λ for random m = 1 DLNs at n = 1e4,
   β = 1/log n, 8 chains × 5000 steps (1000 burn-in), batch min(n, 256), and by default
   **γ = 1 on noise-free data** (``--acc-gamma``, ``--acc-data``), because two effects that no
   sampler can remove put the LLC's own target far from λ in devinterp's usual setting (γ = 100,
   noisy data at the true parameter):

   - γ/2‖w − w*‖² truncates every direction whose posterior spread at this nβ exceeds 1/√γ:
     the dead-unit directions of deep nets have loss of degree 2L (L weight layers), spread
     (nβ)^{-1/2L}, so γ must be ≲ (nβ)^{1/L}. Measured (NUTS, exact localized posterior, population
     potential) on a depth-5 rank-1 net, λ = 12.5: γ = 100 gives 2.1 / 5.7 / 7.6 at n = 1e4 / 1e6 /
     1e8; γ = 1 gives 11.7 / 12.2 / 12.1. ``st.llc`` reports dλ̂/dlog γ (from the same draws) and
     warns when it is large.
   - On noisy data w* is not the minimum of L_n, and λ̂ at w* is ≈ λ − βν on average
     (REFERENCE §2.4): about λ/log n (−11% at n = 1e4) below λ: on deep_linear((9, 8, 10), 5)
     at γ = 100, 32.3 on data against 36.6 on the population potential.

   Columns: plain SGLD (``preconditioner=None``, as devinterp) at ε = 1/(2κ̂) (below), and of
   devinterp with the same settings on the first ``--acc-devinterp`` of them (devinterp runs
   ~8000 sequential steps per DLN: about a minute each on a loaded 2-core box);
   ``st.llc`` with its defaults otherwise (``preconditioner="rmsprop"``: adapted during
   burn-in, then held fixed; ε picked by ``st.sgld_step_size``) and its dλ̂/dlog γ; and
   **NUTS on the same localized tempered posterior** (4 chains × 500 draws after 500 warmup,
   tree depth ≤ 10, on the data's sufficient statistics: the same L_n, at a cost independent of
   n; ``--no-acc-nuts`` skips it): the value every SGLD λ̂ converges to as ε → 0. SGLD − NUTS
   is the sampler's error; NUTS − λ the estimator's own bias at this n·β and γ.

What is matched, exactly (both float32, both start every chain at w* = ``m.true_params``):

- model: ``models.deep_linear(widths, r, sigma=1/√2, prior_scale=1e3)``; the same weights are
  copied into a ``torch.nn.Sequential`` of bias-free ``nn.Linear`` layers (``W_i`` is the torch
  ``weight``, shape (out, in)); the same simulated data (n examples, x ~ N(0, I)).
- loss: devinterp's ``evaluate`` returns ℓ̄_B = mean over the batch of the per-example squared
  error Σ_out (f(x) − y)². With σ² = 1/2 the per-example Gaussian NLL is that squared error plus a
  constant, so devinterp's ``nbeta`` = nβ applied to ℓ̄_B is exactly slt_thermo's β applied to the
  minibatch H_B = (n/B) Σ_B −log p. (With ``F.mse_loss``, which also averages over the outputs,
  ``nbeta`` would have to be n·β·d_out.) Both record, per draw, the minibatch loss of the
  gradient pass of that step (at the point the step starts from).
- prior: slt_thermo's N(0, 1e3²) prior on every weight ⇔ devinterp ``weight_decay = 1e-6``
  (its SGLD adds weight_decay·w to the gradient: exactly ∇ of that Gaussian's −log density).
- SGLD step, both: Δw = (ε/2)(−nβ ∇ℓ̄_B − w/1e6 − γ(w − w*)) + N(0, ε I); ``lr`` = ε,
  ``localization`` = γ, ``noise_level`` = 1, no preconditioner, no bounding box.
- chains / steps: devinterp ``num_chains``, ``num_burnin_steps``, ``num_draws``,
  ``num_steps_bw_draws`` = ``st.llc``'s ``num_chains``, ``num_burnin``, draws, ``thinning``
  (``num_steps = num_burnin + draws × thinning``); batch size B for both.
- λ̂: devinterp nβ(mean recorded loss − init_loss); st β(mean recorded H_B − H(w*)). We pass
  devinterp ``init_loss`` = the full-data loss at w* (what st uses). devinterp's default
  init_loss (the mean over the first ``num_chains`` batches) is also reported: it is a noisy
  estimate of L_n(w*) whose error is multiplied by nβ (column ``dv λ̂ (default init)``).
- ε: the same for both, per model: ε = 1/(2κ̂) (a quarter of the Langevin stability limit 2/κ̂),
  with κ̂ = λ_max(β∇²H(w*) − ∇²log φ) + γ (st.max_curvature) on the full data. ``st.llc(step_size='sweep')``
  would run ``st.sgld_step_size`` (11 candidates × 8 chains × 2000 steps, 50 full-batch MALA
  checks per chain): minutes per model on 2 cores, so only with ``--picker`` (smallest model).
- Differences that remain: st draws each minibatch with replacement, devinterp's shuffled
  ``DataLoader`` without replacement within an epoch (so each of its chains averages the loss
  over whole epochs: far less minibatch noise in its per-chain λ̂, but the batch recorded at a
  step was never used by the preceding steps of the epoch, which shifts the recorded loss up a
  little; an extra devinterp run with a with-replacement sampler isolates this, column
  ``dv λ̂, with replacement``); st runs the chains vmapped in one XLA
  program, devinterp one after another (``cores=1``; ``cores=2``, one process per core, is timed
  once on the smallest model); PyTorch uses ``torch_threads`` intra-op threads (default 1: faster
  than 2 for these tiny matmuls, and on a shared machine far less sensitive to load).

devinterp lives in its own virtual environment (``--setup`` creates it; or by hand)::

    python3.11 -m venv ~/.cache/slt-thermo/devinterp-venv
    ~/.cache/slt-thermo/devinterp-venv/bin/pip install torch==2.13.0      # CPU build, first
    ~/.cache/slt-thermo/devinterp-venv/bin/pip install devinterp==1.3.2

(``SLT_DEVINTERP_VENV`` overrides the path.) This script re-runs itself in that environment
(``--worker``) for the devinterp part; settings and data go through a temporary .json/.npz, and
the worker writes its timings and loss traces back as JSON.

Run by hand, on an otherwise idle machine (it prints the load average it ran under)::

    python benchmarks/llc_vs_devinterp.py --setup     # once: the devinterp venv
    python benchmarks/llc_vs_devinterp.py --quick     # smoke run (2-3 minutes)
    python benchmarks/llc_vs_devinterp.py             # full (10-14 minutes on 2 shared cores)
    python benchmarks/llc_vs_devinterp.py --from-json benchmarks/results/llc_vs_devinterp.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _machine import cpu_seconds, load_avg
from _machine import machine_info as _machine_info

HERE = Path(__file__).resolve()
RESULTS = HERE.parent / "results" / "llc_vs_devinterp.json"
VENV = Path(os.environ.get("SLT_DEVINTERP_VENV", "~/.cache/slt-thermo/devinterp-venv")).expanduser()
DEVINTERP_VERSION = "1.3.2"
TORCH_VERSION = "2.13.0"

# (widths, r): every one has multiplicity m = 1 (checked at run time)
SIZES = [((10, 10, 10, 10), 4), ((30, 30, 30, 30), 6), ((70, 70, 70), 4)]
QUICK_SIZES = [((10, 10, 10, 10), 4), ((20, 20, 20), 4)]


# ============================================================================ devinterp side
def _sse_loss(model, data):
    """Mean over the batch of the per-example squared error (sum over outputs)."""
    x, y = data
    return ((model(x) - y) ** 2).sum(-1).mean()


def worker(npz_path, cfg_path, out_path):
    """Runs in the devinterp venv: one devinterp LLC estimate, timings and traces to JSON."""
    cfg = json.loads(Path(cfg_path).read_text())
    import torch

    torch.set_num_threads(cfg["torch_threads"])
    from importlib.metadata import version

    from torch import nn
    from torch.utils.data import DataLoader, RandomSampler, TensorDataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from devinterp.optim.sgld import SGLD
        from devinterp.slt.sampler import estimate_learning_coeff_with_summary
        from devinterp.utils import get_init_loss_multi_batch

    scale = cfg.get("loss_scale", 1.0)  # 1/(2σ²): the loss is then the per-example NLL (+ const)
    loss = _sse_loss if scale == 1.0 else (lambda model, data: scale * _sse_loss(model, data))
    d = np.load(npz_path)
    x, y = torch.from_numpy(d["x"]), torch.from_numpy(d["y"])
    Ws = [torch.from_numpy(d[f"W{i + 1}"]) for i in range(cfg["num_layers"])]
    model = nn.Sequential(*[nn.Linear(W.shape[1], W.shape[0], bias=False) for W in Ws])
    with torch.no_grad():
        for layer, W in zip(model, Ws):
            layer.weight.copy_(W)
        init_loss_full = scale * float(((model(x) - y) ** 2).sum(-1).double().mean())
    ds = TensorDataset(x, y)
    if cfg.get("replacement"):  # examples drawn with replacement, as st does (not devinterp's usual)
        loader = DataLoader(ds, batch_size=cfg["batch_size"],
                            sampler=RandomSampler(ds, replacement=True, num_samples=len(ds)))
    else:  # the usual devinterp loader: reshuffled epochs, without replacement within an epoch
        loader = DataLoader(ds, batch_size=cfg["batch_size"], shuffle=True)
    t0 = time.perf_counter()
    nb = sum(1 for _ in loader)
    loader_ms = (time.perf_counter() - t0) / nb * 1e3
    init_loss_default = get_init_loss_multi_batch(loader, cfg["num_chains"], model, loss,
                                                  torch.device("cpu"), cfg["seed"])
    optimizer_kwargs = {"lr": cfg["step_size"], "localization": cfg["gamma"],
                        "nbeta": cfg["nbeta"], "weight_decay": cfg["weight_decay"]}
    r0s, r0c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = estimate_learning_coeff_with_summary(
            model, loader, evaluate=loss, sampling_method=SGLD,
            optimizer_kwargs=optimizer_kwargs, num_draws=cfg["num_draws"],
            num_chains=cfg["num_chains"], num_burnin_steps=cfg["num_burnin"],
            num_steps_bw_draws=cfg["steps_bw_draws"], init_loss=init_loss_full,
            cores=cfg["cores"], seed=cfg["seed"], device="cpu", verbose=False,
        )
    wall = time.perf_counter() - t0
    r1s, r1c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(getattr(b, f) - getattr(a, f) for a, b in ((r0s, r1s), (r0c, r1c))
              for f in ("ru_utime", "ru_stime"))
    out = {
        "wall_s": wall, "cpu_s": cpu, "llc_mean": res["llc/mean"], "llc_std": res["llc/std"],
        "llc_per_chain": [res[f"llc-chain/{i}"] for i in range(cfg["num_chains"])],
        "loss_trace": np.asarray(res["loss/trace"], dtype=float).tolist(),
        "init_loss_full": init_loss_full, "init_loss_default": float(init_loss_default),
        "loader_ms_per_batch": loader_ms, "torch_threads": torch.get_num_threads(),
        "versions": {"devinterp": version("devinterp"), "torch": torch.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
    }
    Path(out_path).write_text(json.dumps(out))


def venv_python():
    return VENV / "bin" / "python"


def setup_venv():
    """Create the devinterp venv: torch (CPU) first, so devinterp's torch>=2.0.1 is satisfied."""
    py = venv_python()
    if not py.exists():
        base = getattr(sys, "_base_executable", None) or sys.executable
        subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run(pip + [f"torch=={TORCH_VERSION}"], check=True)
    subprocess.run(pip + [f"devinterp=={DEVINTERP_VERSION}", f"torch=={TORCH_VERSION}"], check=True)
    print(devinterp_versions())


def devinterp_versions():
    py = venv_python()
    if not py.exists():
        return None
    code = ("from importlib.metadata import version as v; import json; "
            "print(json.dumps({p: v(p) for p in ('devinterp', 'torch')}))")
    r = subprocess.run([str(py), "-c", code], check=False, capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 else None


def run_devinterp(m, data, cfg, tmp):
    """Run the worker in the devinterp venv; returns its JSON plus the process wall time."""
    tmp = Path(tmp)
    arrays = {"x": np.asarray(data["x"], np.float32), "y": np.asarray(data["y"], np.float32)}
    for i, name in enumerate(m.layers):
        arrays[f"W{i + 1}"] = np.asarray(m.true_params[name], np.float32)
    np.savez(tmp / "in.npz", **arrays)
    (tmp / "cfg.json").write_text(json.dumps({**cfg, "num_layers": len(m.layers)}))
    env = dict(os.environ, OMP_NUM_THREADS=str(cfg["torch_threads"]),
               MKL_NUM_THREADS=str(cfg["torch_threads"]))
    t0 = time.perf_counter()
    r = subprocess.run([str(venv_python()), str(HERE), "--worker", str(tmp / "in.npz"),
                        str(tmp / "cfg.json"), str(tmp / "out.json")],
                       check=False, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"devinterp worker failed:\n{r.stderr[-3000:]}")
    out = json.loads((tmp / "out.json").read_text())
    out["process_wall_s"] = time.perf_counter() - t0
    return out


# ============================================================================ slt_thermo side
def machine_info():
    return _machine_info() | {"devinterp_venv": str(VENV), "devinterp_versions": devinterp_versions()}


def kappa_max(target, center, beta, gamma):
    """κ̂ of the localized tempered log density at w* (st.max_curvature: prior included)."""
    import slt_thermo as st

    return st.max_curvature(target, center, beta=beta, gamma=gamma)

def make_model(widths, r, n, seed, noise_free=False):
    """The DLN, its simulated data and their Target. ``noise_free``: y = f_{w*}(x) exactly (the
    likelihood keeps σ² = 1/2), so L_n(w) − L_n(w*) = K_n(w) ≥ 0 and w* is an exact minimum of
    L_n with the local λ of the population potential (Σ̂ = XᵀX/n is positive definite). With
    noise, w* is not the minimum of L_n: λ̂ at w* is then ≈ λ − βν on average (REFERENCE §2.4),
    about λ/log n below λ (−11% at n = 1e4), whatever the sampler."""
    import jax

    import slt_thermo as st
    from slt_thermo import models

    m = models.deep_linear(widths=tuple(widths), r=r, sigma=2 ** -0.5, prior_scale=1e3, seed=seed)
    data = m.simulate(jax.random.PRNGKey(1000 + seed), n)
    if noise_free:
        data = dict(data, y=m.predict(m.true_params, data["x"]))
    return m, data, st.Target(m, data)


class _SufficientStats:
    """A DLN's L_n(w) − L_n(w*) from the data's second moments, as a population potential: the
    same function of w as the data NLL (Gaussian: quadratic in the product P), at a cost
    independent of n, so NUTS on it is cheap at any n. With D = P − P*, S = XᵀX/n and
    C = Xᵀ(XP*ᵀ − Y)/n (zero for noise-free data):
    L_n(w) − L_n(w*) = (tr(D S Dᵀ) + 2 tr(D C)) / (2σ²)."""

    def __init__(self, m, data):
        import jax.numpy as jnp

        x, y = np.asarray(data["x"], np.float64), np.asarray(data["y"], np.float64)
        p0 = np.asarray(m.product(m.true_params), np.float64)
        self.m, self.p0 = m, jnp.asarray(p0, jnp.float32)
        self.S = jnp.asarray(x.T @ x / len(x), jnp.float32)
        self.C = jnp.asarray(x.T @ (x @ p0.T - y) / len(x), jnp.float32)
        self.log_prior, self.init, self.name = m.log_prior, m.init, m.name

    def kl(self, params):
        import jax.numpy as jnp

        D = self.m.product(params) - self.p0
        return (jnp.sum((D @ self.S) * D) + 2 * jnp.sum(D * self.C.T)) / (2 * self.m.sigma**2)


def stats_target(m, data, target):
    """``Target.population`` of :class:`_SufficientStats`: nll(w) = H(w) − H(w*) of ``target``
    (checked at two points near w*, relative error < 1e-3)."""
    import jax

    import slt_thermo as st

    t = st.Target.population(_SufficientStats(m, data), target.n)
    x, y = np.asarray(data["x"], np.float64), np.asarray(data["y"], np.float64)

    def h(w):  # the data NLL up to a constant, in float64 (in float32, H ~ 1e5 rounds by ~1e-2)
        p = np.asarray(m.product(w), np.float64)
        return float(np.sum((y - x @ p.T) ** 2) / (2 * m.sigma**2))

    h0 = h(m.true_params)
    for k in (1, 2):  # w* + a prior draw shrunk to ~5e-3 per entry
        w = jax.tree_util.tree_map(lambda a, b: a + 5e-3 * b / (1e-12 + float(np.std(b))), m.true_params,
                                   m.init(jax.random.PRNGKey(k)))
        want, got = h(w) - h0, float(t.nll(w))
        if not abs(got - want) <= 1e-3 * abs(want) + 1e-2:
            raise AssertionError(f"sufficient-statistics nll {got} != data nll difference {want}")
    return t


def run_st(target, m, *, key, beta, eps, gamma, chains, burnin, draws, thinning, batch,
           preconditioner=None, control_variate=False):
    import jax

    import slt_thermo as st

    c0, t0 = cpu_seconds(), time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = st.llc(target, center=m.true_params, key=jax.random.PRNGKey(key), beta=beta,
                     step_size=eps, gamma=gamma, num_chains=chains,
                     num_steps=burnin + draws * thinning, num_burnin=burnin,
                     batch_size=batch, thinning=thinning, preconditioner=preconditioner,
                     control_variate=control_variate, progress=False)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    det = est.details
    return {
        "step_size": det["step_size"], "preconditioner": preconditioner or "none",
        "wall_s": wall, "cpu_s": cpu, "sampling_wall_s": float(det["samples"].ds.attrs["wall_time_s"]),
        "steps_per_s": chains * (burnin + draws * thinning) / wall,
        "llc": est.value, "llc_se": est.stderr, "per_chain": det["per_chain"],
        "rhat": det["rhat"], "ess": det["ess"], "mala_accept": det["mala_accept"],
        "mala_checks": det.get("mala_checks"),
        "drift_z": det["drift_z"], "nll_center": det["nll_center"],
        "gamma_sensitivity": det.get("gamma_sensitivity"),
        "gamma_sensitivity_se": det.get("gamma_sensitivity_se"),
        "predicted_bias": det.get("predicted_bias"), "bias_minibatch": det.get("bias_minibatch"),
        "warnings": sorted({str(w.message) for w in caught}),
    }


def run_nuts_reference(target, m, *, key, beta, gamma, chains, warmup, draws):
    """The exact localized posterior's βE[nL_n − nL_n(w*)] by NUTS (same data, n, β, γ, w*;
    ``target`` from :func:`stats_target`, tree depth ≤ 10): what every SGLD estimate converges
    to as ε → 0 and steps → ∞. Its gap to λ is the estimator's own finite-n / localization
    bias, not a sampler error."""
    import jax

    import slt_thermo as st

    t0 = time.perf_counter()
    s = st.sample_nuts(target, [beta], num_chains=chains, num_warmup=warmup, num_samples=draws,
                       key=jax.random.PRNGKey(key), init=m.true_params, center=m.true_params,
                       gamma=gamma, max_tree_depth=10, keep_params=False, progress=False)
    est = st.llc_from_samples(s, 0.0, beta=beta, warn=False)  # nll(w*) = 0 (stats_target)
    det = est.details
    return {"llc": est.value, "llc_se": est.stderr, "ess": det["ess"], "per_chain": det["per_chain"],
            "rhat": det["rhat"],
            "divergences": int(np.nansum(s["diverging"].values)),
            "chains": chains, "warmup": warmup, "draws": draws,
            "wall_s": time.perf_counter() - t0}


def mala_check_seconds(target, m, *, beta, eps, gamma, chains, reps=5):
    """Wall time of one full-batch MALA check (``st.llc``'s ``mala_accept``), per chain: the
    SGLD kernel's ``diagnose``, vmapped over ``chains`` chains at w*, jitted, best of ``reps``."""
    import jax
    import jax.numpy as jnp

    from slt_thermo.samplers.sgld import SGLDConfig

    center = jax.tree_util.tree_map(jnp.asarray, m.true_params)
    kernel = SGLDConfig(eps, 1, None, 0.99, 1e-8, False).build(target, center, gamma)
    u = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (chains,) + x.shape), center)
    betas = jnp.full((chains,), beta)
    state0 = jax.vmap(kernel.init)(jax.random.split(jax.random.PRNGKey(0), chains), u, betas)
    check = jax.jit(jax.vmap(kernel.diagnose))
    keys = jax.random.split(jax.random.PRNGKey(1), chains)
    jax.block_until_ready(check(keys, state0, betas))
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(check(keys, state0, betas))
        best = min(best, time.perf_counter() - t0)
    return best / chains


def dv_summary(dv, nbeta, num_chains):
    """devinterp λ̂ with the full-data and with its default init loss, and an ESS-based SE."""
    from slt_thermo.thermo.stats import mean_se

    trace = np.asarray(dv["loss_trace"])
    mean, se, _ = mean_se(trace)
    return {
        "llc": nbeta * (mean - dv["init_loss_full"]),
        "llc_devinterp_reported": dv["llc_mean"],
        "llc_default_init": nbeta * (mean - dv["init_loss_default"]),
        "llc_se": nbeta * se,
        "per_chain_se": float(np.std(dv["llc_per_chain"], ddof=1) / math.sqrt(num_chains)),
    }


# ============================================================================ part 1
def throughput(args, tmp, log):
    rows = []
    for widths, r in args.sizes:
        m, data, target = make_model(widths, r, args.n, seed=0)
        if m.multiplicity != 1:
            raise AssertionError(f"{m.name} has m = {m.multiplicity}")
        beta = 1 / math.log(args.n)
        kappa = kappa_max(target, m.true_params, beta, args.gamma)
        eps = 1 / (2 * kappa)
        lam = float(m.rlct)
        steps = args.burnin + args.draws
        row = {"widths": list(widths), "r": r, "d": m.num_params, "lambda": lam,
               "m": m.multiplicity, "kappa": kappa, "step_size": eps, "load_before": load_avg()}
        log(f"\n{m.name}: d = {m.num_params}, λ = {lam:g}, κ̂ = {kappa:.3g}, ε = {eps:.3g}")
        common = {"beta": beta, "eps": eps, "gamma": args.gamma, "chains": args.chains,
                  "burnin": args.burnin, "batch": args.batch}
        row["st_cold"] = run_st(target, m, key=1, draws=args.draws, thinning=1, **common)
        row["st_warm"] = run_st(target, m, key=2, draws=args.draws, thinning=1, **common)
        k = args.thin
        kd = args.draws // k
        burn_k = steps - kd * k  # same total steps
        common_k = {**common, "burnin": burn_k}
        row["st_thin_cold"] = run_st(target, m, key=3, draws=kd, thinning=k, **common_k)
        row["st_thin_warm"] = run_st(target, m, key=4, draws=kd, thinning=k, **common_k)
        row["thin"] = {"thinning": k, "draws": kd, "burnin": burn_k}
        # (almost) SGLD alone: the same steps, only 4 recorded draws (4 MALA checks per chain)
        common_4 = {**common, "burnin": steps - 4}
        run_st(target, m, key=5, draws=4, thinning=1, **common_4)  # compile
        row["st_sgld_only"] = run_st(target, m, key=6, draws=4, thinning=1, **common_4)
        row["mala_check_s"] = mala_check_seconds(target, m, beta=beta, eps=eps, gamma=args.gamma,
                                                 chains=args.chains)
        log(f"  st.llc  cold {row['st_cold']['wall_s']:.1f}s  warm {row['st_warm']['wall_s']:.1f}s  "
            f"thin{k} cold {row['st_thin_cold']['wall_s']:.1f}s warm {row['st_thin_warm']['wall_s']:.1f}s")
        row["load_mid"] = load_avg()
        if not args.no_devinterp:
            cfg = {"step_size": eps, "gamma": args.gamma, "nbeta": args.n * beta,
                   "weight_decay": 1e-6, "batch_size": args.batch, "num_chains": args.chains,
                   "num_draws": args.draws, "num_burnin": args.burnin, "steps_bw_draws": 1,
                   "seed": 0, "cores": 1, "torch_threads": args.torch_threads}
            dv = run_devinterp(m, data, cfg, tmp)
            dv.update(dv_summary(dv, args.n * beta, args.chains))
            dv["steps_per_s"] = args.chains * steps / dv["wall_s"]
            row["devinterp"] = {k_: v for k_, v in dv.items() if k_ != "loss_trace"}
            log(f"  devinterp  {dv['wall_s']:.1f}s  (loader {dv['loader_ms_per_batch']:.2f} ms/batch)")
            if args.dv_replacement:  # the same, but minibatches drawn with replacement, as st does
                dvr = run_devinterp(m, data, {**cfg, "replacement": True}, tmp)
                dvr.update(dv_summary(dvr, args.n * beta, args.chains))
                dvr["steps_per_s"] = args.chains * steps / dvr["wall_s"]
                row["devinterp_replacement"] = {k_: v for k_, v in dvr.items() if k_ != "loss_trace"}
                log(f"  devinterp (with replacement)  {dvr['wall_s']:.1f}s")
            if args.cores2 and (widths, r) == tuple(args.sizes[0]):
                dv2 = run_devinterp(m, data, {**cfg, "cores": 2}, tmp)
                dv2.update(dv_summary(dv2, args.n * beta, args.chains))
                dv2["steps_per_s"] = args.chains * steps / dv2["wall_s"]
                row["devinterp_cores2"] = {k_: v for k_, v in dv2.items() if k_ != "loss_trace"}
                log(f"  devinterp cores=2  {dv2['wall_s']:.1f}s  λ̂ reported {dv2['llc_mean']:.3g}")
        row["load_after"] = load_avg()
        rows.append(row)
    return rows


# ============================================================================ part 2
def random_dlns(rng, count, num_layers, width_range):
    """Random m = 1 DLNs: L weight layers uniform in num_layers, widths uniform in width_range
    (inclusive), true rank r uniform in 1..min(widths); redrawn until Aoyagi's m = 1."""
    from slt_thermo.exact import rlct_dln

    out = []
    while len(out) < count:
        L = int(rng.integers(num_layers[0], num_layers[1] + 1))
        widths = tuple(int(w) for w in rng.integers(width_range[0], width_range[1] + 1, size=L + 1))
        r = int(rng.integers(1, min(widths) + 1))
        if rlct_dln(widths, r).m == 1:
            out.append((widths, r))
    return out


def accuracy(args, tmp, log):
    rng = np.random.default_rng(args.seed)
    regimes = [("1", random_dlns(rng, args.acc_models[0], (2, 5), (5, 10)))]
    if args.acc_models[1]:
        regimes.append(("2 (CPU-scaled)", random_dlns(rng, args.acc_models[1], (2, 3), (10, 25))))
    beta = 1 / math.log(args.acc_n)
    gamma, noise_free = args.acc_gamma, args.acc_data == "noise-free"
    rows = []
    for regime, nets in regimes:
        for i, (widths, r) in enumerate(nets):
            m, data, target = make_model(widths, r, args.acc_n, seed=1 + i, noise_free=noise_free)
            kappa = kappa_max(target, m.true_params, beta, gamma)
            eps = 1 / (2 * kappa)
            lam = float(m.rlct)
            batch = min(args.acc_n, 256)
            row = {"regime": regime, "widths": list(widths), "r": r, "d": m.num_params,
                   "lambda": lam, "m": m.multiplicity, "step_size": eps, "load_before": load_avg()}
            row["st"] = run_st(target, m, key=10 + i, beta=beta, eps=eps, gamma=gamma,
                               chains=args.acc_chains, burnin=args.acc_burnin,
                               draws=args.acc_steps - args.acc_burnin, thinning=1, batch=batch)
            row["st_rmsprop"] = run_st(target, m, key=10 + i, beta=beta, eps=None, gamma=gamma,
                                       chains=args.acc_chains, burnin=args.acc_burnin,
                                       draws=args.acc_steps - args.acc_burnin, thinning=1,
                                       batch=batch, preconditioner="rmsprop",
                                       control_variate=args.acc_control_variate)
            if args.acc_nuts:
                row["nuts"] = run_nuts_reference(stats_target(m, data, target), m, key=20 + i,
                                                 beta=beta, gamma=gamma, chains=4, warmup=500, draws=500)
            if not args.no_devinterp and (args.acc_devinterp_all
                                          or (regime == "1" and i < args.acc_devinterp)):
                cfg = {"step_size": eps, "gamma": gamma, "nbeta": args.acc_n * beta,
                       "weight_decay": 1e-6, "batch_size": batch, "num_chains": args.acc_chains,
                       "num_draws": args.acc_steps - args.acc_burnin, "num_burnin": args.acc_burnin,
                       "steps_bw_draws": 1, "seed": 10 + i, "cores": 1,
                       "torch_threads": args.torch_threads}
                dv = run_devinterp(m, data, cfg, tmp)
                dv.update(dv_summary(dv, args.acc_n * beta, args.acc_chains))
                row["devinterp"] = {k: v for k, v in dv.items() if k != "loss_trace"}
            rows.append(row)
            dvs = f"  dv {row['devinterp']['llc']:.1f}" if "devinterp" in row else ""
            nuts = f"  NUTS {row['nuts']['llc']:.1f}" if "nuts" in row else ""
            log(f"  regime {regime} {m.name}: λ {lam:g}  st {row['st']['llc']:.1f}  "
                f"st rmsprop {row['st_rmsprop']['llc']:.1f}{nuts}{dvs}")
    picker = None
    if args.picker:
        import jax

        import slt_thermo as st

        widths, r = regimes[0][1][0]
        m, data, target = make_model(widths, r, args.acc_n, seed=1, noise_free=noise_free)
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = st.llc(target, center=m.true_params, key=jax.random.PRNGKey(99), step_size="sweep",
                         preconditioner="rmsprop", batch_size=256, thinning=1, progress=False)
        picker = {"widths": list(widths), "r": r, "lambda": float(m.rlct), "wall_s": time.perf_counter() - t0,
                  "step_size": est.details["step_size"], "llc": est.value, "llc_se": est.stderr,
                  "warnings": sorted({str(w.message) for w in caught})}
        log(f"  st.llc(step_size='sweep', rmsprop) on {m.name}: ε = {picker['step_size']:.3g}, λ̂ = "
            f"{est.value:.1f} ± {est.stderr:.1f} (λ = {float(m.rlct):g}), {picker['wall_s']:.0f}s")
    return rows, picker


# ============================================================================ printing
def _rel(x, lam):
    return f"{100 * (x - lam) / lam:+.0f}%"


def _z_vs_nuts(est, nuts):
    """(SGLD λ̂ − NUTS λ̂) in units of their combined standard error: the sampler's error."""
    return (est["llc"] - nuts["llc"]) / math.hypot(est["llc_se"], nuts["llc_se"])


def _per_chain_se(values):
    v = np.asarray(values, float)
    return float(v.std(ddof=1) / math.sqrt(v.size))


def step_cost_split(row, chains, burnin, draws):
    """Split the warm st.llc wall time into SGLD steps and MALA diagnostics.

    Current result files time one check directly (``mala_check_s``, per chain). Older ones (a
    check at every recorded draw): the warm run and the thinned one take the same SGLD steps and
    record ``draws`` resp. ``draws/k`` draws; wall = a·steps + b·checks gives a (s per
    chain-step) and b (s per chain-check).
    """
    if "mala_check_s" in row:  # timed directly (a check on every chain, vmapped, jitted)
        return float("nan"), row["mala_check_s"]
    warm, only = row["st_warm"], row.get("st_sgld_only")
    if only and warm.get("mala_checks") is not None:  # bounded checks: the split is too noisy
        return float("nan"), float("nan")
    k = row["thin"]["thinning"]
    steps = chains * (burnin + draws)
    d1, dk = chains * draws, chains * (draws // k)
    w1, wk = row["st_warm"]["wall_s"], row["st_thin_warm"]["wall_s"]
    b = (w1 - wk) / (d1 - dk)
    a = (wk - dk * b) / steps
    return a, b


def print_throughput(rows, args):
    k = args.thin
    print(f"\nSGLD throughput, {args.chains} chains, n = {args.n}, B = {args.batch}, γ = {args.gamma:g}, "
          f"β = 1/log n, {args.burnin} burn-in + {args.draws} draws (steps/s = chains × steps / wall)")
    print("| DLN | d | ε | devinterp steps/s | st cold | st warm | warm / dv | "
          f"st thin{k} warm | thin{k} / dv | st SGLD-only | SGLD-only / dv | MALA check ms/chain-check* | "
          "st CPU-s / dv CPU-s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        dv = r.get("devinterp")
        dvs = dv["steps_per_s"] if dv else float("nan")
        cold, warm = r["st_cold"]["steps_per_s"], r["st_warm"]["steps_per_s"]
        thin = r["st_thin_warm"]["steps_per_s"]
        _, b = step_cost_split(r, args.chains, args.burnin, args.draws)
        pure = r["st_sgld_only"]["steps_per_s"] if "st_sgld_only" in r else float("nan")
        cpu_ratio = (r["st_warm"]["cpu_s"] / dv["cpu_s"]) if dv else float("nan")
        print(f"| {tuple(r['widths'])} r={r['r']} | {r['d']} | {r['step_size']:.2g} | {dvs:.0f} | "
              f"{cold:.0f} | {warm:.0f} | {warm / dvs:.1f}× | {thin:.0f} | {thin / dvs:.1f}× | "
              f"{pure:.0f} | {pure / dvs:.1f}× | {1e3 * b:.1f} | {cpu_ratio:.2f} |")
    print("SGLD-only: a warm st.llc run of the same steps recording only the last 4 draws. "
          "* one full-batch MALA check (st.llc's mala_accept; by default on at most 50 draws per "
          "chain and a quarter of the steps' nominal cost), per chain, timed on its own")
    for r in rows:
        if "devinterp_cores2" in r:
            d2 = r["devinterp_cores2"]
            print(f"devinterp cores=2 on {tuple(r['widths'])}: {d2['steps_per_s']:.0f} steps/s; λ̂ it "
                  f"reports {d2['llc_mean']:.3g} (from its own callback), from its loss trace "
                  f"{d2['llc']:.3g}")
    print("\nλ̂ from the same runs (warm st run; ± ESS-based SE of the recorded-loss mean, [± SE from the "
          "spread of per-chain λ̂]; devinterp's own llc/mean equals the 'dv λ̂' column)")
    print("| DLN | λ (Aoyagi) | st λ̂ (key 2) | st λ̂ (key 1) | rel | dv λ̂ | rel | dv λ̂ (default init) | "
          "st − dv (z) | dv λ̂, with replacement | st MALA acc | st drift z |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        s, s1, dv, lam = r["st_warm"], r["st_cold"], r.get("devinterp"), r["lambda"]
        if dv:
            se_dv = max(dv["llc_se"], _per_chain_se(dv["llc_per_chain"]))
            z = (s["llc"] - dv["llc"]) / math.hypot(s["llc_se"], se_dv)
            dvt = (f"{dv['llc']:.1f} ± {dv['llc_se']:.1f} [{_per_chain_se(dv['llc_per_chain']):.1f}] | "
                   f"{_rel(dv['llc'], lam)} | {dv['llc_default_init']:.1f} | "
                   f"{s['llc'] - dv['llc']:+.1f} ({z:+.1f})")
        else:
            dvt = "– | – | – | –"
        rep = r.get("devinterp_replacement")
        rept = (f"{rep['llc']:.1f} ± {rep['llc_se']:.1f} [{_per_chain_se(rep['llc_per_chain']):.1f}]"
                if rep else "–")
        print(f"| {tuple(r['widths'])} r={r['r']} | {lam:g} | {s['llc']:.1f} ± {s['llc_se']:.1f} "
              f"[{_per_chain_se(s['per_chain']):.1f}] | {s1['llc']:.1f} ± {s1['llc_se']:.1f} | "
              f"{_rel(s['llc'], lam)} | {dvt} | {rept} | {s['mala_accept']:.3f} | {s['drift_z']:+.1f} |")
    print("z uses the larger of devinterp's two SEs: its shuffled loader covers the data in whole "
          "epochs, so its per-chain means carry almost no minibatch noise (the bracketed SE)")


def print_accuracy(rows, picker, args):
    gamma = getattr(args, "acc_gamma", args.gamma)  # older result files: one γ for both parts
    print(f"\nAccuracy (Lau et al.-style random m = 1 DLNs), n = {args.acc_n}, "
          f"{getattr(args, 'acc_data', 'noisy')} data, β = 1/log n, "
          f"{args.acc_chains} chains × {args.acc_steps} steps ({args.acc_burnin} burn-in), "
          f"B = {min(args.acc_n, 256)}, γ = {gamma:g}. Plain SGLD (st and devinterp) at "
          "ε = 1/(2κ̂); st rmsprop: preconditioner='rmsprop' (adapted in burn-in, then fixed), ε "
          "picked by st.sgld_step_size; NUTS: the exact localized posterior (4 chains × 500), "
          "what every SGLD λ̂ converges to. z = (SGLD − NUTS)/se: the sampler's error; "
          "NUTS vs λ: the estimator's own finite-n / localization bias")
    print("| regime | widths | r | d | λ | NUTS (exact) | rel | st plain ε=1/(2κ̂) | rel | z | "
          "st rmsprop | ε | rel | z | ε-bias pred. | dλ̂/dlog γ | dv λ̂ | rel |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        s, lam, nuts, rms = r["st"], r["lambda"], r.get("nuts"), r.get("st_rmsprop")
        dv = r.get("devinterp")
        dvt = f"{dv['llc']:.1f} ± {dv['llc_se']:.1f} | {_rel(dv['llc'], lam)}" if dv else "– | –"

        def z(e):
            return f"{_z_vs_nuts(e, nuts):+.1f}" if nuts else "–"

        nt = f"{nuts['llc']:.1f} ± {nuts['llc_se']:.1f} | {_rel(nuts['llc'], lam)}" if nuts else "– | –"
        sens = rms.get("gamma_sensitivity") if rms else None
        senst = f"{sens:+.2f} ± {rms['gamma_sensitivity_se']:.2f}" if sens is not None else "–"
        bias = rms.get("predicted_bias") if rms else None  # older result files: absent
        biast = f"{bias:+.2f}" if bias is not None else "–"
        rt = (f"{rms['llc']:.1f} ± {rms['llc_se']:.1f} | {rms['step_size']:.2g} | "
              f"{_rel(rms['llc'], lam)} | {z(rms)} | {biast} | {senst}") if rms else "– | – | – | – | – | –"
        print(f"| {r['regime']} | {tuple(r['widths'])} | {r['r']} | {r['d']} | {lam:g} | {nt} | "
              f"{s['llc']:.1f} ± {s['llc_se']:.1f} | {_rel(s['llc'], lam)} | {z(s)} | {rt} | {dvt} |")
    for regime in sorted({r["regime"] for r in rows}):
        rs = [r for r in rows if r["regime"] == regime]
        for name in ("nuts", "st", "st_rmsprop"):
            if not all(name in r for r in rs):
                continue
            errs = [abs(r[name]["llc"] - r["lambda"]) / r["lambda"] for r in rs]
            line = (f"regime {regime}, {name}: within 10% of λ on {sum(e <= 0.1 for e in errs)}/"
                    f"{len(rs)}; mean |rel err| {100 * np.mean(errs):.0f}%")
            if name != "nuts" and all("nuts" in r for r in rs):
                zs = [_z_vs_nuts(r[name], r["nuts"]) for r in rs]
                line += f"; within 3 se of NUTS on {sum(abs(x) <= 3 for x in zs)}/{len(rs)}"
            print(line)
    if picker:
        print(f"st.llc(step_size='sweep', rmsprop) on {tuple(picker['widths'])} r={picker['r']}: ε = "
              f"{picker['step_size']:.3g}, λ̂ = {picker['llc']:.1f} ± {picker['llc_se']:.1f} "
              f"(λ = {picker['lambda']:g}), {picker['wall_s']:.0f} s")


def reprint(path):
    res = json.loads(Path(path).read_text())
    saved = argparse.Namespace(**res["settings"])
    m = res["machine"]
    print(f"{res['timestamp']} | {m['platform']} | {m['cpu']} | {m['cpu_count']} CPUs | "
          f"devinterp {m['devinterp_versions']} | load avg start {m['load_avg_start']}, "
          f"end {m['load_avg_end']} | total {res['total_wall_s']:.0f} s")
    if res["throughput"]:
        print_throughput(res["throughput"], saved)
    print_accuracy(res["accuracy"], res["picker"], saved)


# ============================================================================ main
def _size(text):
    """'10,10,10,10:4' -> ((10, 10, 10, 10), 4)."""
    try:
        widths, r = text.split(":")
        return tuple(int(w) for w in widths.split(",")), int(r)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected W1,W2,...:R (e.g. 30,30,30,30:6), got {text!r}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--setup", action="store_true", help=f"create the devinterp venv at {VENV} and exit")
    p.add_argument("--quick", action="store_true", help="smoke run (small nets, short chains)")
    p.add_argument("--no-devinterp", action="store_true", help="slt_thermo only")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--chains", type=int, default=16)
    p.add_argument("--burnin", type=int, default=200)
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--gamma", type=float, default=100.0)
    p.add_argument("--thin", type=int, default=10, help="thinning of the extra st.llc timing")
    p.add_argument("--torch-threads", type=int, default=1)
    p.add_argument("--no-dv-replacement", dest="dv_replacement", action="store_false",
                   help="skip the extra devinterp run whose loader samples with replacement")
    p.add_argument("--no-cores2", dest="cores2", action="store_false",
                   help="skip the devinterp cores=2 timing on the smallest DLN")
    p.add_argument("--acc-n", type=int, default=10_000)
    p.add_argument("--acc-models", type=int, nargs=2, default=[4, 2], metavar=("R1", "R2"),
                   help="number of random DLNs in regimes 1 and 2 (default 4 2)")
    p.add_argument("--acc-chains", type=int, default=8)
    p.add_argument("--acc-steps", type=int, default=5000)
    p.add_argument("--acc-burnin", type=int, default=1000)
    p.add_argument("--acc-gamma", type=float, default=1.0,
                   help="localization γ of the accuracy table (γ = 100 truncates the dead-unit "
                        "directions of deep nets: NUTS's exact localized value is then far below λ)")
    p.add_argument("--acc-data", choices=("noise-free", "noisy"), default="noise-free",
                   help="noise-free: y = f_{w*}(x), w* an exact minimum of L_n, λ̂ → λ; noisy: "
                        "λ̂ at w* is ≈ λ − βν, ~λ/log n below λ")
    p.add_argument("--acc-control-variate", action="store_true",
                   help="the st.llc RMSprop column with control_variate=True (SGLD-CV)")
    p.add_argument("--acc-devinterp", type=int, default=3,
                   help="run devinterp on the first N regime-1 DLNs of the accuracy table (default 3)")
    p.add_argument("--acc-devinterp-all", action="store_true",
                   help="run devinterp on every DLN of the accuracy table")
    p.add_argument("--no-throughput", dest="throughput", action="store_false",
                   help="skip part 1 (throughput); run the accuracy table only")
    p.add_argument("--no-acc-nuts", dest="acc_nuts", action="store_false",
                   help="skip the NUTS reference (the exact localized posterior) per DLN "
                        "(on the data's sufficient statistics: under a minute each)")
    p.add_argument("--picker", action="store_true",
                   help="also run st.llc(step_size='sweep', preconditioner='rmsprop') (the ε sweep) on one regime-1 DLN: minutes")
    p.add_argument("--sizes", type=_size, nargs="+", default=None, metavar="W1,W2,...:R",
                   help="the throughput table's DLNs (widths, then the rank r of w*), e.g. "
                        "10,10,10,10:4 30,30,30,30:6 (default: the three of SIZES)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--from-json", type=Path, default=None, metavar="PATH",
                   help="re-print the tables of a saved result file; runs nothing")
    args = p.parse_args(argv)
    sizes = args.sizes
    args.sizes = sizes or SIZES
    if args.quick:
        args.sizes = sizes or QUICK_SIZES
        args.chains, args.burnin, args.draws = 4, 50, 50
        args.acc_models, args.acc_chains, args.acc_steps, args.acc_burnin = [2, 1], 4, 300, 100
        args.acc_devinterp_all = True
    return args


def main(argv=None):
    if argv is None and len(sys.argv) == 5 and sys.argv[1] == "--worker":
        return worker(*sys.argv[2:])
    args = parse_args(argv)
    if args.setup:
        return setup_venv()
    if args.from_json:
        return reprint(args.from_json)
    if not args.no_devinterp and devinterp_versions() is None:
        sys.exit(f"no devinterp venv at {VENV}: run `python {HERE.name} --setup` (or --no-devinterp)")
    import jax  # noqa: F401  (after the worker branch: the devinterp venv has no JAX)

    t_start = time.perf_counter()
    machine = machine_info()
    machine["load_avg_start"] = load_avg()
    v = machine["versions"]
    print(f"{machine['platform']} | {machine['cpu']} | {machine['cpu_count']} CPUs "
          f"({machine['cpus_usable']} usable) | jax {v['jax']} | slt-thermo {v['slt-thermo']} | "
          f"devinterp {machine['devinterp_versions']} (venv {VENV}, torch threads "
          f"{args.torch_threads}) | load avg {machine['load_avg_start']}")
    log = lambda s: print(s, file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = throughput(args, tmp, log) if args.throughput else []
        if rows:
            print_throughput(rows, args)
        acc, picker = accuracy(args, tmp, log)
        print_accuracy(acc, picker, args)
    machine["load_avg_end"] = load_avg()
    total = time.perf_counter() - t_start
    print(f"\ntotal wall time {total:.0f} s; load avg start {machine['load_avg_start']}, "
          f"end {machine['load_avg_end']}")
    settings = {k: (str(v_) if isinstance(v_, Path) else v_) for k, v_ in vars(args).items()}
    out = {"benchmark": "llc_vs_devinterp", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "command": " ".join([HERE.name] + sys.argv[1:]), "machine": machine,
           "settings": settings, "throughput": rows, "accuracy": acc, "picker": picker,
           "total_wall_s": total}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
