"""Work along an annealing protocol: the second law and Jarzynski's equality, measured.

Annealing from the prior (β = 0) to β along a ladder, each particle does the work
W = Σ_k (β_k − β_{k−1}) H(x_{k−1}) (H = nL_n, the dimensionless work of a protocol that raises β
while the state relaxes under a kernel leaving p^{β_k} invariant: annealed Langevin/MALA, HMC;
:func:`slt_thermo.ais` computes it as −log w). With ΔF = −log Z(β) (the prior's Z is 1):

- second law: ⟨W⟩ ≥ ΔF, the dissipated work ⟨W⟩ − ΔF ≥ 0, zero only for a quasi-static protocol;
- Jarzynski (1997): ⟨e^{−W}⟩ = e^{−ΔF}, so −log mean e^{−W} estimates ΔF (biased up for few
  particles: dominated by the rare low-work paths).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidArgumentError


def work_statistics(result, log_z: float | None = None) -> dict:
    """Work statistics of an AIS run from the prior (:func:`~slt_thermo.ais`): W = −log w of each
    particle (w its final importance weight), ⟨W⟩ ± se, ΔF = −log Z (from ``log_z`` if given —
    e.g. thermodynamic integration or an exact value — else the run's own estimate), the
    dissipated work ⟨W⟩ − ΔF (≥ 0 by the second law) and Jarzynski's log⟨e^{−W}⟩ (= log Z) with
    its delta-method error √(1/ESS − 1/N)."""
    from scipy.special import logsumexp

    lw = getattr(result, "log_weights", None)
    if lw is None:
        raise InvalidArgumentError("`result` must be an slt_thermo.ais result (it has the final log weights)")
    W = -np.asarray(lw, np.float64).ravel()
    W = W[np.isfinite(W)]
    if W.size < 2:
        raise InvalidArgumentError("`result` has fewer than 2 finite work values")
    mean, se = float(W.mean()), float(W.std(ddof=1) / math.sqrt(W.size))
    jarzynski = float(logsumexp(-W) - math.log(W.size))
    w = np.exp(-W - (-W).max())
    ess = float(w.sum() ** 2 / np.sum(w**2))
    if log_z is None:
        log_z = float(result.rungs["log_z"].values[-1])
    return {"work_mean": mean, "work_se": se, "delta_F": -log_z, "dissipated": mean + log_z,
            "dissipated_se": se, "jarzynski_log_z": jarzynski,
            "jarzynski_log_z_se": math.sqrt(max(1 / ess - 1 / W.size, 0.0)), "log_z": log_z,
            "num_particles": int(W.size)}


__all__ = ["work_statistics"]
