"""Population annealing (PA), annealed importance sampling (AIS) and the BDMC sandwich.

All three anneal a population of particles through tempered posteriors
p^β(w) ∝ φ(w) exp(−β H(w)), H = nL_n, from β = 0 (the prior, sampled exactly with
:meth:`Target.sample_prior <slt_thermo.Target.sample_prior>`, or ``init_particles``) upward, and
read the partition function off the importance weights (REFERENCE §3.1–3.3):

- :func:`population_annealing` — at each rung reweight by ω_j = exp(−Δβ H(w_j)) (log space),
  Q_k = mean_j ω_j, resample (systematic / multinomial / residual), move at the new β.
  log Ẑ(β_k) = Σ_{l<k} log Q_l (Ẑ is unbiased, log Ẑ biased low by ≈ ρ_f/(2R)). With
  ``betas=None`` the ladder is adaptive: Δβ is found by bisection so that the weight ESS is
  ``target_ess``·R. ``num_runs`` independent runs are combined by Machta's weighted averaging.
- :func:`ais` — the same without resampling (Neal 2001, Jarzynski): log w accumulates,
  log Ẑ = log mean_i w_i.
- :func:`bdmc` — forward AIS (stochastic lower bound) and reverse AIS from an exact posterior
  sample (stochastic upper bound), Grosse, Ghahramani & Adams 2015.

**Moves.** Every MCMC move is a one-chain kernel in the :class:`~slt_thermo.samplers.run.Kernel`
style, vmapped over the particles (and over the independent runs). ``mcmc`` is one of

- ``"hmc"`` (default), ``"mala"``, ``"nuts"``: *population-tuned* kernels. The particles' weighted
  covariance Σ defines the preconditioner C (``precondition="dense"``: chol Σ; ``"diag"``: √diag Σ),
  i.e. the kernels run in whitened coordinates z = C⁻¹u with an identity mass matrix. The step size
  ε (in z) is carried over from rung to rung and nudged after every half-sweep by the mean
  acceptance, log ε += clip(ā − target_accept, ±0.7), so it follows the geometry as β grows
  without any per-rung warmup. **Cross-tuning:** the population moves in two halves (A = the
  first ⌊R/2⌋ particles, B = the rest; resampled indices are sorted, so families stay
  contiguous): A moves with the C of B's current positions, then B with the C of A's new
  positions. The preconditioner of a particle's kernel never depends on that particle's own
  position (only the scalar ε sees its past acceptance, with weight ~1/R). (Tuning every kernel
  from a covariance that includes the particle itself contracts the population by O(1/R) per
  move; over ~50 rungs this biased log Ẑ by +0.5 nats at R = 400 on linear regression with
  d = 10, n = 1000 in development; the cross-tuned halves remove it.) HMC uses
  ``num_leapfrog`` steps (default ⌈(π/2)/ε⌉, a quarter period of a unit Gaussian, at most
  ``max_leapfrog``) with ε jittered ±20% per particle; MALA is the exact Langevin proposal of
  :func:`~slt_thermo.samplers.mala.scaled_langevin` in whitened coordinates; NUTS is numpyro's,
  in z, with ε set (not adapted) per half-sweep.
- any sampler config with ``.build(target, center, gamma) -> Kernel`` (e.g.
  :class:`~slt_thermo.samplers.nuts.HMCConfig`, :class:`~slt_thermo.samplers.mala.MALAConfig`):
  the kernel is re-initialized at every rung at the new β, so its *own* warmup adaptation runs
  during its first ``config.num_warmup`` steps of each rung (numpyro adapts only while its
  counter is below num_warmup), then it samples with the adapted step size.
- ``exact_sampler=f`` (the "perfect transition" hook of the exact tests): the move is replaced
  by fresh independent draws ``f(key, beta, num) -> params`` (model space, leading axis num),
  which must be jax-traceable with β traced. With it, PA/AIS/BDMC reproduce the closed forms of
  REFERENCE §3.1–3.3 exactly in expectation.

Gradient evaluations are counted exactly (``grad_evals``): for the built-in kernels 1 per particle
per rung (the gradient at the new β) plus the leapfrog steps (HMC: L per sweep, MALA: 1,
NUTS: its tree size). Forward-only energy evaluations are not counted.

**Compilation.** Everything that runs per particle (reweighting, resampling, tuning, all sweeps,
the target's observables) is one jit-compiled function per run, taking β, Δβ and the number of
sweeps as traced arguments; the Python loop is over rungs only.

**Observables.** When the target declares observables (``Target.observables``), they are
evaluated at every particle after each rung's move (in the same compiled function; nothing is
done when there are none) and reported per rung like E and Var of H: weighted means with
family-clustered (within-run) or run-spread errors, and their covariances with H and each other
(``rungs["obs_mean"]``, ``["obs_cov"]``, ... see :class:`AnnealingResult`); the final population
carries them per particle.

**Resumption.** The rung loop is an explicit :class:`AnnealState` (device particles, the ladder
so far, the per-rung columns, log Ẑ and its bookkeeping, the rung counter, β, the wall time and a
fingerprint of settings, key and initial particles) advanced by a function state → state. Rung k
draws its keys from ``fold_in(key, k)``, so ``RunOptions(max_chunks=k)`` (stop after k rungs;
``attrs["complete"] = 0``) followed by ``RunOptions(resume=result.state)`` with the same
arguments reproduces the uninterrupted run exactly, for fixed and adaptive ladders alike.

**Layout.** :mod:`.resampling` (one function per scheme), :mod:`.tuning` (preconditioner,
whitening, step size), :mod:`.moves` (the kernels), :mod:`.rung` (one compiled rung),
:mod:`.anneal` (the rung loop, :class:`AnnealState`), :mod:`.results` (:class:`AnnealingResult`,
:class:`BDMCResult`), :mod:`.api` (the public functions, one shared set-up).

**Errors.** The within-run standard error of log Ẑ(β_k) by the delta method under perfect mixing,
Var ≈ Σ_{l≤k} (1/ESS_l − 1/R) (so ρ_f ≈ Σ (R/ESS_l − 1), REFERENCE §3.1), is a lower bound when
the moves mix imperfectly; the genealogy's, (ρ_t − 1)/R with ρ_t = R Σ_j ν_j² over the Eve
families (Chan & Lai 2013; ρ_t ≈ ρ_f under perfect mixing, WMK 2015), sees the families that
imperfect moves lose. The reported ``log_z_se`` is the larger of the genealogy's and the delta
method's (with ``num_runs`` ≥ 2: of the genealogy's and the spread of the runs). Population
annealing doubles its sweeps while ρ_t − 1 > COLLAPSE_RATIO·ρ_f (up to MAX_SWEEP_FACTOR ×
``mcmc_steps``) and warns when that was not enough (``benchmarks/pa_coverage.py``: coverage of
2 se from 55–70% to 95% on linear regressions at d = 5–50).
"""

# MOVES, SCHEMES, PRECONDITIONS and the particle / tuning types that pickled AnnealStates of the
# one-module layout name stay reachable here
from .anneal import AnnealingStalledError, AnnealState
from .api import ais, bdmc, population_annealing
from .moves import MOVES as MOVES
from .resampling import SCHEMES as SCHEMES
from .resampling import resample
from .results import AnnealingResult, BDMCResult
from .rung import _State as _State
from .tuning import PRECONDITIONS as PRECONDITIONS
from .tuning import _Tuning as _Tuning

__all__ = ["AnnealState", "AnnealingResult", "AnnealingStalledError", "BDMCResult", "ais", "bdmc",
           "population_annealing", "resample"]
