"""Where one SGLD step's time goes: the minibatch gradient, the Gaussian noise, the rest.

    python benchmarks/sgld_step_cost.py [--chains 16] [--batch 100] [--steps 400] [--out PATH]

For the DLNs of ``llc_vs_devinterp.py``'s throughput table (n = 1e4, B = 100, 16 chains, γ = 100),
times T steps of the SGLD kernel alone (``SGLDConfig(...).build(...).step``, vmapped over chains,
one ``lax.scan``, jitted, best of 5 warm calls) and, separately, what bounds it:

- ``gradient``: only the vmapped minibatch gradient of the localized log density (what every
  SGLD implementation must compute): the compute ceiling of any SGLD step on this machine;
- ``noise``: only the N(0, 1) draws, chains × d per step (JAX's threefry PRNG);
- ``plain`` / ``rmsprop`` / ``control_variate``: the full step with those options.

If ``--devinterp-json`` (default ``benchmarks/results/llc_vs_devinterp.json``) holds a throughput table, each row also gets
devinterp's measured steps/s and the ratios, so the ceiling on "× devinterp" is explicit. Writes
JSON (default ``benchmarks/results/sgld_step_cost.json``). The driver around the kernel (recording,
MALA checks) is not in these figures; ``llc_vs_devinterp.py`` measures whole runs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from _machine import load_avg, machine_info
from llc_vs_devinterp import SIZES, make_model

RESULTS = Path(__file__).parent / "results"


def best_seconds(fn, *args, reps=5):
    import jax

    jax.block_until_ready(fn(*args))  # compile
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def step_costs(widths, r, *, n, chains, batch, steps, gamma=100.0):
    import jax
    import jax.numpy as jnp

    from slt_thermo.samplers.sgld import SGLDConfig

    m, _, target = make_model(widths, r, n, seed=0)  # the throughput table's model and data
    beta = 1 / math.log(n)
    center = jax.tree_util.tree_map(jnp.asarray, m.true_params)
    u = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (chains,) + x.shape), center)
    betas = jnp.full((chains,), beta)
    key = jax.random.PRNGKey(1)
    d = m.num_params
    row = {"widths": list(widths), "r": r, "d": d}

    def kernel_seconds(**options):
        cfg = SGLDConfig(1e-7, batch, options.get("preconditioner"), 0.99, 1e-8, False,
                         steps // 2, options.get("control_variate", False))
        kernel = cfg.build(target, center, gamma)
        s0 = jax.vmap(kernel.init)(jax.random.split(jax.random.PRNGKey(0), chains), u, betas)

        @jax.jit
        def run(s, key):
            def body(s, k):
                s = jax.vmap(kernel.step)(jax.random.split(k, chains), s, betas)[0]  # (state, info)
                return s, s.nll
            return jax.lax.scan(body, s, jax.random.split(key, steps))

        return best_seconds(run, s0, key)

    @jax.jit
    def gradient_only(u, key):
        grad = jax.grad(lambda v, i: target.log_density_unconstrained(v, beta, center, gamma, i))

        def body(u, k):
            idx = jax.random.randint(k, (chains, batch), 0, n)
            g = jax.vmap(grad)(u, idx)
            return jax.tree_util.tree_map(lambda a, b: a + 1e-9 * b, u, g), None
        return jax.lax.scan(body, u, jax.random.split(key, steps))[0]

    @jax.jit
    def noise_only(x, key):
        def body(x, k):
            return x + jax.random.normal(k, x.shape, x.dtype), None
        return jax.lax.scan(body, x, jax.random.split(key, steps))[0]

    seconds = {
        "gradient": best_seconds(gradient_only, u, key),
        "noise": best_seconds(noise_only, jnp.zeros((chains, d)), key),
        "plain": kernel_seconds(),
        "rmsprop": kernel_seconds(preconditioner="rmsprop"),
        "control_variate": kernel_seconds(control_variate=True),
    }
    for name, s in seconds.items():
        row[f"{name}_ms_per_step"] = 1e3 * s / steps
        row[f"{name}_chain_steps_per_s"] = chains * steps / s
    return row


def devinterp_steps_per_s(path):
    try:
        rows = json.loads(path.read_text()).get("throughput") or []
    except (OSError, ValueError):
        return {}
    return {tuple(r["widths"]): r["devinterp"]["steps_per_s"] for r in rows if "devinterp" in r}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--chains", type=int, default=16)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--quick", action="store_true", help="smallest DLN only, 50 steps")
    p.add_argument("--devinterp-json", type=Path, default=RESULTS / "llc_vs_devinterp.json",
                   help="an llc_vs_devinterp.py result whose throughput rows give devinterp's steps/s")
    p.add_argument("--out", type=Path, default=RESULTS / "sgld_step_cost.json")
    args = p.parse_args(argv)
    sizes = SIZES[:1] if args.quick else SIZES
    steps = 50 if args.quick else args.steps
    info = machine_info()
    print(" | ".join(str(v) for v in (info.get("platform"), info.get("cpu"),
                                     f"{info.get('cpu_count')} CPUs", info.get("jax_backend"))))
    load0 = load_avg()
    dv = devinterp_steps_per_s(args.devinterp_json)
    rows = []
    for widths, r in sizes:
        row = step_costs(widths, r, n=args.n, chains=args.chains, batch=args.batch, steps=steps)
        if tuple(widths) in dv:
            row["devinterp_steps_per_s"] = dv[tuple(widths)]
        rows.append(row)
        print(f"{widths}: d = {row['d']}", file=sys.stderr)

    print(f"\nOne SGLD step, {args.chains} chains, n = {args.n}, B = {args.batch}, {steps} steps "
          "(chain-steps/s; ms per step of all chains)")
    print("| DLN | d | gradient only | noise only (ms) | plain | rmsprop | control_variate | "
          "devinterp | plain / dv | gradient-only / dv |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        cell = lambda k: f"{row[f'{k}_chain_steps_per_s']:.0f} ({row[f'{k}_ms_per_step']:.2f})"
        dvs = row.get("devinterp_steps_per_s")
        ratio = lambda k: f"{row[f'{k}_chain_steps_per_s'] / dvs:.1f}×" if dvs else "–"
        print(f"| {tuple(row['widths'])} | {row['d']} | {cell('gradient')} | "
              f"{row['noise_ms_per_step']:.2f} | {cell('plain')} | {cell('rmsprop')} | "
              f"{cell('control_variate')} | {f'{dvs:.0f}' if dvs else '–'} | {ratio('plain')} | "
              f"{ratio('gradient')} |")
    payload = {"benchmark": "sgld_step_cost", "command": " ".join(sys.argv),
               "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": info,
               "settings": {"n": args.n, "chains": args.chains, "batch": args.batch, "steps": steps},
               "load_avg_start": load0, "load_avg_end": load_avg(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2, default=float))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
