"""The ``slt-thermo`` command.

For now it has one job, run bare: a small tempered NUTS run on a zoo model (Bayesian linear
regression, whose tempered evidence is exact) that prints E^β[nL_n] per β beside the closed
form. Later issues add ``rlct``, ``free-energy``, ``llc``, ``models`` and ``show``.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np


def _demo(args) -> int:
    import jax

    import slt_thermo as st
    from slt_thermo import models

    model = models.linear_regression(d=args.d)
    data = model.simulate(jax.random.PRNGKey(args.seed), args.n)
    target = st.Target(model, data)
    betas = np.round(np.geomspace(1 / math.log(args.n) / 4, 1.0, args.num_betas), 6)
    print(f"{model.name}, n = {args.n}: tempered NUTS on {len(betas)} β × {args.chains} chains "
          f"({args.warmup} warmup + {args.samples} draws each), one compiled program")
    run = st.sample_nuts(target, betas, num_chains=args.chains, num_warmup=args.warmup,
                         num_samples=args.samples, key=jax.random.PRNGKey(args.seed + 1))
    table = run.summary()
    print(f"\n{'beta':>9} {'E^β[nL_n] sampled':>22} {'exact':>12} {'z':>6} {'R-hat':>6} {'ESS':>6}")
    for b in run.betas:
        row = table.loc[b]
        exact_E = model.exact_thermo(data, b).E
        z = (row.nll_mean - exact_E) / row.nll_mcse
        print(f"{b:9.4f} {row.nll_mean:13.3f} ± {row.nll_mcse:6.3f} {exact_E:12.3f} {z:6.2f} "
              f"{row.nll_rhat:6.3f} {row.nll_ess_bulk:6.0f}")
    print(f"\nwall time {run.ds.attrs['wall_time_s']:.1f} s; exact λ = d/2 = {model.rlct}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="slt-thermo",
        description="Thermodynamics of Bayesian learning (SLT). Run bare for a demo: tempered "
        "NUTS on Bayesian linear regression, E^β[nL_n] per β against the exact value.",
    )
    parser.add_argument("--n", type=int, default=200, help="dataset size (default 200)")
    parser.add_argument("--d", type=int, default=3, help="number of parameters (default 3)")
    parser.add_argument("--num-betas", type=int, default=8, help="rungs of the β ladder")
    parser.add_argument("--chains", type=int, default=4, help="chains per β")
    parser.add_argument("--warmup", type=int, default=300, help="warmup steps per chain")
    parser.add_argument("--samples", type=int, default=500, help="draws per chain")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed")
    args = parser.parse_args(argv)
    for name in ("n", "d", "num_betas", "chains", "warmup", "samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    try:
        return _demo(args)
    except Exception as exc:  # one line, no traceback, for the user
        from slt_thermo.errors import SLTThermoError

        if isinstance(exc, SLTThermoError):
            print(f"slt-thermo: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
