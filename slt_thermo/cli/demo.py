"""``slt-thermo demo``: tempered NUTS on Bayesian linear regression against its exact E^β[nL_n]."""

from __future__ import annotations

import math

from ._args import Formatter, int_at_least

HELP = "tempered NUTS on linear regression against the exact E^β[nL_n]"


def add_parser(sub):
    """The ``demo`` subparser."""
    p = sub.add_parser(
        "demo", help=HELP, formatter_class=Formatter,
        description="A small tempered NUTS run on Bayesian linear regression, whose tempered evidence "
                    "is exact: prints E^β[nL_n] per β beside the closed form.")
    p.add_argument("--n", type=int_at_least(2), default=200, help="dataset size")
    p.add_argument("--d", type=int_at_least(1), default=3, help="number of parameters")
    p.add_argument("--num-betas", type=int_at_least(1), default=8, help="rungs of the β ladder")
    p.add_argument("--chains", type=int_at_least(1), default=4, help="chains per β")
    p.add_argument("--warmup", type=int_at_least(1), default=300, help="warmup steps per chain")
    p.add_argument("--samples", type=int_at_least(4), default=500, help="draws per chain")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="PRNG seed")
    return p


def run(args, argv) -> int:
    """Sample, and print E^β[nL_n] per β beside the closed form."""
    import jax
    import numpy as np

    import slt_thermo as st
    from slt_thermo import models

    model = models.linear_regression(d=args.d)
    data = model.simulate(jax.random.PRNGKey(args.seed), args.n)
    target = st.Target(model, data)
    betas = np.round(np.geomspace(1 / math.log(args.n) / 4, 1.0, args.num_betas), 6)
    print(f"{model.name}, n = {args.n}: tempered NUTS on {len(betas)} β × {args.chains} chains "
          f"({args.warmup} warmup + {args.samples} draws each), one compiled program")
    samples = st.sample_nuts(target, betas, num_chains=args.chains, num_warmup=args.warmup,
                             num_samples=args.samples, key=jax.random.PRNGKey(args.seed + 1))
    table = samples.summary()
    print(f"\n{'beta':>9} {'E^β[nL_n] sampled':>22} {'exact':>12} {'z':>6} {'R-hat':>6} {'ESS':>6}")
    for b in samples.betas:
        row = table.loc[b]
        exact_E = model.exact_thermo(data, b).E
        z = (row.nll_mean - exact_E) / row.nll_mcse
        print(f"{b:9.4f} {row.nll_mean:13.3f} ± {row.nll_mcse:6.3f} {exact_E:12.3f} {z:6.2f} "
              f"{row.nll_rhat:6.3f} {row.nll_ess_bulk:6.0f}")
    print(f"\nwall time {samples.ds.attrs['wall_time_s']:.1f} s; exact λ = d/2 = {model.rlct}")
    return 0
