"""The tempered posterior: prior + per-example log-likelihood + data.

A :class:`Target` is everything a sampler needs to draw from

    p^β(w | D_n) ∝ φ(w) exp(−β H(w)),     H(w) = n L_n(w) = −Σ_i log p(y_i | x_i, w),

optionally localized by exp(−γ/2 ‖w − w*‖²). β multiplies the likelihood only; the prior is never
tempered. β is always a traced argument, so one compiled program serves a whole β-ladder.

Parameters live in the model's own ("constrained") space: a uniform prior on [−1, 1] means
params in [−1, 1]. Samplers move in an unconstrained space obtained with numpyro's bijections
(``biject_to(support)``); :meth:`Target.log_density_unconstrained` adds the log-Jacobian so that
the pushed-forward density is exactly the one above. Users never see the unconstrained space:
samples are reported in model space.

A Target is a JAX pytree whose only leaves are the data and the hyperparameters ``hyper``, so
it can be passed to ``jax.jit`` functions without baking either into the compiled program: targets
that differ only by their hyperparameters (:meth:`Target.with_hyper`, e.g. TherML's multipliers
over a grid) share one compiled sampler, exactly as the β of a ladder do.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import register_pytree_node_class

from ._utils import check_beta
from ._target_inputs import _as_hyper, _check_observables, _validate_data, check_key
from .errors import InvalidArgumentError, LikelihoodError

Params = Any
Data = Any


class _Spec:
    """Static part of a Target (functions and metadata); hashed by identity for jit caching."""

    def __init__(self, *, log_prior, log_likelihood, init, support, n, population_kl, model, name,
                 sample_prior=None, observables=None):
        self.log_prior = log_prior
        self.log_likelihood = log_likelihood
        self.init = init
        self.support = support
        self.n = n
        self.population_kl = population_kl
        self.model = model
        self.name = name
        self.sample_prior = sample_prior
        self.observables = observables
        self.observable_names = None  # filled on first use (static: part of the compile key)
        self.likelihood_dtype = None  # mixed precision: the likelihood's compute dtype (with_precision)


def _model_method(model, name):
    f = getattr(model, name, None)
    return f if callable(f) else None


def _flat_transforms(support, params):
    """numpyro bijections (unconstrained → support), one per leaf of `params`."""
    from numpyro.distributions import constraints
    from numpyro.distributions.transforms import biject_to

    leaves, treedef = jax.tree_util.tree_flatten(params)
    if support is None:
        return [None] * len(leaves), treedef
    sup_leaves = jax.tree_util.tree_leaves(
        support, is_leaf=lambda s: isinstance(s, constraints.Constraint)
    )
    if len(sup_leaves) != len(leaves):
        raise InvalidArgumentError(
            f"`support` has {len(sup_leaves)} leaves but the parameters have {len(leaves)}; "
            "give one numpyro constraint per parameter array"
        )
    out = []
    for s in sup_leaves:
        out.append(None if s is constraints.real else biject_to(s))
    return out, treedef


@register_pytree_node_class
class Target:
    """Prior + per-example log-likelihood + data, with the tempered log density.

    Construct with ``Target(model, data)`` for a zoo (or any :class:`Model`-like) object,
    ``Target.population(model, n)`` for the deterministic population potential nK(w),
    ``Target.from_functions(log_prior, log_likelihood, data, init)`` or
    ``Target.from_numpyro(model_fn, *args, **kwargs)``.

    Every public density method takes parameters in model space:

    - :meth:`log_likelihood` — log p(y_i | x_i, w), one value per example, shape ``(n,)``;
    - :meth:`nll` — H(w) = n L_n(w) = −Σ_i log p(y_i | x_i, w) (normalizers included);
    - :meth:`nll_batch` — unbiased minibatch estimate of H(w), scaled to n;
    - :meth:`log_prior` — log φ(w) (normalized where the model says so);
    - :meth:`log_density` — log φ(w) − β H(w) − γ/2 ‖w − center‖².
    """

    def __init__(self, model, data, *, hyper=None, validate: bool = True):
        for attr in ("log_prior", "log_likelihood"):
            if not callable(getattr(model, attr, None)):
                raise InvalidArgumentError(
                    f"`model` must have a callable `{attr}`; got {type(model).__name__}. "
                    "Use Target.from_functions for bare functions."
                )
        n = _validate_data(data)
        self._spec = _Spec(
            log_prior=model.log_prior,
            log_likelihood=model.log_likelihood,
            init=getattr(model, "init", None),
            support=getattr(model, "support", None),
            n=n,
            population_kl=None,
            model=model,
            name=getattr(model, "name", type(model).__name__),
            sample_prior=_model_method(model, "sample_prior"),
            observables=_model_method(model, "observables"),
        )
        self.data = jax.tree_util.tree_map(jnp.asarray, data)
        self.hyper = _as_hyper(getattr(model, "hyper", None) if hyper is None else hyper)
        if validate:
            self._validate()

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_functions(cls, log_prior, log_likelihood, data, init, *, support=None, name="custom",
                       sample_prior=None, observables=None, hyper=None):
        """Build a Target from bare functions.

        Args:
            log_prior: ``params -> scalar`` log φ(w).
            log_likelihood: ``(params, data) -> (n,)`` log p(y_i|x_i, w) per example; with
                ``hyper``, ``(params, data, hyper) -> (n,)``.
            data: pytree of arrays, examples on axis 0.
            init: ``key -> params`` or a params pytree (the initial point for every chain).
            support: optional pytree of numpyro constraints matching params (default: real).
            sample_prior: optional ``key -> params``, an exact draw from φ (population annealing,
                AIS and BDMC start from it).
            observables: optional ``(params, data) -> dict[str, scalar]``, recorded per draw by
                every sampler (see :meth:`observables`).
            hyper: optional pytree of hyperparameters passed to ``log_likelihood`` as a traced
                argument (see :meth:`with_hyper`).
        """
        optional = (("sample_prior", sample_prior), ("observables", observables))
        for argname, f in (("log_prior", log_prior), ("log_likelihood", log_likelihood), *optional):
            if not callable(f) and not (f is None and argname in dict(optional)):
                raise InvalidArgumentError(f"`{argname}` must be callable, got {type(f).__name__}")
        model = _FunctionModel(log_prior, log_likelihood, init, support, name, sample_prior,
                               observables)
        return cls(model, data, hyper=hyper)

    @classmethod
    def population(cls, model, n: int, *, hyper=None):
        """The deterministic population potential: H(w) = n·K(w) instead of the data NLL.

        With no data noise the thermodynamics is exactly computable (REFERENCE §0, §2.2), which
        makes these targets the main exact fixtures for samplers and estimators. The model must
        know K(w) (method ``kl``; ``kl(params, hyper)`` when the model has hyperparameters).
        """
        if not callable(getattr(model, "kl", None)):
            raise InvalidArgumentError(
                f"`model` {getattr(model, 'name', type(model).__name__)} does not know its "
                "population potential K(w) (no `kl` method); use Target(model, data)"
            )
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InvalidArgumentError(f"`n` must be an integer >= 1, got {n!r}")
        self = object.__new__(cls)
        self._spec = _Spec(
            log_prior=model.log_prior,
            log_likelihood=None,
            init=getattr(model, "init", None),
            support=getattr(model, "support", None),
            n=int(n),
            population_kl=model.kl,
            model=model,
            name=getattr(model, "name", type(model).__name__) + " (population)",
            sample_prior=_model_method(model, "sample_prior"),
            observables=_model_method(model, "observables"),
        )
        self.data = None
        self.hyper = _as_hyper(getattr(model, "hyper", None) if hyper is None else hyper)
        self._validate()
        return self

    @classmethod
    def from_numpyro(cls, model_fn, *args, **kwargs):
        """Build a Target from a numpyro model.

        Observed sites form the likelihood (their leading axis indexes the examples, as in a
        ``numpyro.plate``), latent sites form the prior. Sampling happens in numpyro's
        unconstrained space with the log-Jacobian added to the prior, exactly as numpyro does.
        ``nll_batch`` evaluates the full data and subsamples (numpyro models receive their
        data as arguments we cannot slice); use :meth:`from_functions` for cheap minibatches.
        :meth:`sample_prior` runs the model's latent sites from their priors.
        """
        from ._numpyro import numpyro_parts

        parts = numpyro_parts(model_fn, args, kwargs)
        model = _FunctionModel(
            parts.log_prior, parts.log_likelihood, parts.init, parts.support,
            getattr(model_fn, "__name__", "numpyro_model"), parts.sample_prior,
        )
        return cls(model, parts.data)

    # ----------------------------------------------------------------- pytree protocol
    def tree_flatten(self):
        return (self.data, self.hyper), self._spec

    @classmethod
    def tree_unflatten(cls, spec, children):
        self = object.__new__(cls)
        self._spec = spec
        self.data, self.hyper = children
        return self

    def with_hyper(self, hyper=None, **updates):
        """The same target with other hyperparameter values (``hyper`` whole, or ``updates`` of
        named entries of a dict ``hyper``), sharing every compiled program with this one.

        The structure and shapes must stay those of the current ``hyper``: values vary over a
        sweep, the model does not. Works under ``jax.vmap``/``jit`` (traced values).
        """
        if self.hyper is None:
            raise InvalidArgumentError(
                "this target has no hyperparameters; build it with `hyper=` (or give the model a "
                "`hyper` attribute) to vary them")
        if hyper is None:
            if not isinstance(self.hyper, dict):
                raise InvalidArgumentError("keyword updates need a dict `hyper`; pass the whole pytree")
            unknown = set(updates) - set(self.hyper)
            if unknown:
                raise InvalidArgumentError(
                    f"unknown hyperparameter(s) {sorted(unknown)}; this target has {sorted(self.hyper)}")
            hyper = {**self.hyper, **updates}
        elif updates:
            raise InvalidArgumentError("give either `hyper` or keyword updates, not both")
        new = _as_hyper(hyper)
        old_leaves, old_def = jax.tree_util.tree_flatten(self.hyper)
        new_leaves, new_def = jax.tree_util.tree_flatten(new)
        if new_def != old_def or any(jnp.shape(a) != jnp.shape(b) for a, b in zip(old_leaves, new_leaves)):
            raise InvalidArgumentError(
                f"`hyper` must keep the structure and shapes of {self.hyper!r}; build a new Target "
                "to change the model")
        out = object.__new__(Target)
        out._spec, out.data, out.hyper = self._spec, self.data, new
        return out

    def with_precision(self, dtype="bfloat16"):
        """The same target with its per-example log-likelihood computed in ``dtype`` (e.g.
        ``"bfloat16"``: the parameters and floating data are cast down for the likelihood, its
        values cast back up), while the chains' state, the prior, gradients' accumulation into the
        state and every sum over examples stay in the default precision. Mixed precision trades
        accuracy for speed on accelerators with fast low-precision units. Measured
        (``benchmarks/scaling.py``, CPU): on linear regression (n = 1000) the sampled law barely
        moves but nL_n evaluated in bf16 is 0.75 nats low (52 se; ½log 2π alone rounds to 0.918);
        NUTS on a deep linear net adapts a 5–10× smaller step and stops mixing (ESS 6, R-hat 1.96);
        bf16 is 2–5× *slower* on CPU. Check a run against full precision before trusting it.
        ``dtype=None`` restores full precision."""
        import copy

        if dtype is not None:
            dtype = jnp.dtype(dtype)
            if not jnp.issubdtype(dtype, jnp.floating):
                raise InvalidArgumentError(f"`dtype` must be a floating type, got {dtype}")
        spec = copy.copy(self._spec)
        spec.likelihood_dtype = dtype
        out = object.__new__(Target)
        out._spec, out.data, out.hyper = spec, self.data, self.hyper
        return out

    # ----------------------------------------------------------------- properties
    @property
    def n(self) -> int:
        """Number of examples (the n in H = nL_n)."""
        return self._spec.n

    @property
    def model(self):
        return self._spec.model

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def is_population(self) -> bool:
        return self._spec.population_kl is not None

    @property
    def support(self):
        return self._spec.support

    @property
    def observable_names(self) -> tuple[str, ...]:
        """Names of the observables recorded per draw, sorted (as JAX orders a dict pytree);
        empty when the target declares none."""
        spec = self._spec
        if spec.observables is None:
            return ()
        if spec.observable_names is None:
            params = self.init(jax.random.PRNGKey(0))
            out = jax.eval_shape(lambda p, d: spec.observables(p, d), params, self.data)
            spec.observable_names = _check_observables(out)
        return spec.observable_names

    # ----------------------------------------------------------------- densities
    def log_prior(self, params):
        """log φ(w)."""
        return jnp.asarray(self._spec.log_prior(params))

    def log_likelihood(self, params):
        """log p(y_i | x_i, w) for each example, shape (n,).

        In population mode every example contributes −K(w), so the sum is −nK(w).
        """
        if self.is_population:
            return jnp.full((self.n,), -self._kl(params))
        return jnp.asarray(self._loglik(params, self.data))

    def _loglik(self, params, data):
        low = self._spec.likelihood_dtype
        if low is not None:  # mixed precision: compute low, return in the default float
            cast = lambda a: a.astype(low) if jnp.issubdtype(jnp.result_type(a), jnp.floating) else a  # noqa: E731
            params, data = jax.tree_util.tree_map(cast, params), jax.tree_util.tree_map(cast, data)
        out = (self._spec.log_likelihood(params, data) if self.hyper is None
               else self._spec.log_likelihood(params, data, self.hyper))
        return out if low is None else jnp.asarray(out).astype(jnp.result_type(float))

    def _kl(self, params):
        if self.hyper is None:
            return self._spec.population_kl(params)
        return self._spec.population_kl(params, self.hyper)

    def nll(self, params):
        """H(w) = n L_n(w) = −Σ_i log p(y_i|x_i, w) on the full data (n K(w) in population mode)."""
        if self.is_population:
            return self.n * self._kl(params)
        return -jnp.sum(self._loglik(params, self.data))

    def nll_batch(self, params, idx):
        """Unbiased minibatch estimate of H(w): −(n/|idx|) Σ_{i ∈ idx} log p(y_i|x_i, w)."""
        if self.is_population:
            return self.nll(params)
        idx = jnp.asarray(idx)
        batch = jax.tree_util.tree_map(lambda a: a[idx], self.data)
        return -(self.n / idx.shape[0]) * jnp.sum(self._loglik(params, batch))

    def log_density(self, params, beta, center=None, gamma=0.0, idx=None):
        """log φ(w) − β H(w) − (γ/2)‖w − center‖², unnormalized, in model space.

        β is never baked in: pass it traced. The prior is not tempered. With ``idx`` (minibatch
        indices) H is the unbiased minibatch estimate :meth:`nll_batch`.
        """
        if not isinstance(beta, jax.core.Tracer):
            check_beta(beta)
        nll = self.nll(params) if idx is None else self.nll_batch(params, idx)
        out = self.log_prior(params) - beta * nll
        if center is not None:
            out = out - 0.5 * gamma * sq_distance(params, center)
        return out

    # ----------------------------------------------------------------- unconstrained space
    def to_unconstrained(self, params):
        """Map model-space params to the sampler's unconstrained space."""
        transforms, treedef = _flat_transforms(self.support, params)
        leaves = jax.tree_util.tree_leaves(params)
        out = [x if t is None else t.inv(x) for t, x in zip(transforms, leaves)]
        return jax.tree_util.tree_unflatten(treedef, out)

    def to_constrained(self, u):
        """Map unconstrained params back to model space."""
        transforms, treedef = _flat_transforms(self.support, u)
        leaves = jax.tree_util.tree_leaves(u)
        out = [x if t is None else t(x) for t, x in zip(transforms, leaves)]
        return jax.tree_util.tree_unflatten(treedef, out)

    def constrain_with_logdet(self, u):
        """(w, log|det ∂w/∂u|): model-space params and the log-Jacobian of the map from ``u``."""
        transforms, treedef = _flat_transforms(self.support, u)
        leaves = jax.tree_util.tree_leaves(u)
        w_leaves, logdet = [], 0.0
        for t, x in zip(transforms, leaves):
            if t is None:
                w_leaves.append(x)
            else:
                w = t(x)
                w_leaves.append(w)
                logdet = logdet + jnp.sum(t.log_abs_det_jacobian(x, w))
        return jax.tree_util.tree_unflatten(treedef, w_leaves), logdet

    def log_density_unconstrained(self, u, beta, center=None, gamma=0.0, idx=None):
        """The tempered log density pushed to unconstrained space (log-Jacobian included)."""
        w, logdet = self.constrain_with_logdet(u)
        return self.log_density(w, beta, center, gamma, idx) + logdet

    # ----------------------------------------------------------------- observables
    def observables(self, params) -> dict:
        """The declared observables at ``params`` (model space): ``{name: scalar}``, ``{}`` when
        the target declares none. Samplers record them per draw (``Samples[name]``) and population
        annealing reports their weighted means and covariances with H per rung, so
        ``st.susceptibility(run, "D", "C")`` works by name."""
        if self._spec.observables is None:
            return {}
        out = self._spec.observables(params, self.data)
        names = self.observable_names
        return {k: jnp.asarray(out[k]) for k in names}

    # ----------------------------------------------------------------- prior draws
    def sample_prior(self, key, shape=()):
        """Exact draws from the prior φ in model space, with leading axes ``shape``.

        From the model's ``sample_prior(key)``, ``from_functions(..., sample_prior=fn)``, or, for
        ``from_numpyro`` targets, the model's latent sites run from their priors. Raises
        :class:`~slt_thermo.InvalidArgumentError` when the target cannot draw from its prior.
        """
        check_key(key)
        fn = self._spec.sample_prior
        if fn is None:
            raise InvalidArgumentError(
                f"the model {self.name!r} cannot draw from its prior: give it a "
                "`sample_prior(key)` method (or Target.from_functions(..., sample_prior=fn))")
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if not shape:
            return fn(key)
        num = math.prod(shape)
        draws = jax.vmap(fn)(jax.random.split(key, num))
        return jax.tree_util.tree_map(lambda x: x.reshape(shape + x.shape[1:]), draws)

    # ----------------------------------------------------------------- init
    def init(self, key):
        """An initial point in model space (the model's ``init``; else uniform in (−2, 2)
        in unconstrained space, numpyro's ``init_to_uniform``)."""
        init = self._spec.init
        if callable(init):
            return init(key)
        if init is None:
            raise InvalidArgumentError(
                "this target has no `init`; pass `init=` (a params pytree) to the sampler"
            )
        return jax.tree_util.tree_map(jnp.asarray, init)

    # ----------------------------------------------------------------- validation
    def _validate(self):
        params = self.init(jax.random.PRNGKey(0))
        lp = np.asarray(self.log_prior(params))
        if lp.shape != ():
            raise LikelihoodError(f"`log_prior` must return a scalar, got shape {lp.shape}")
        if not np.isfinite(lp):
            raise LikelihoodError(
                f"`log_prior` is {lp} at the initial point; the init must lie in the prior's support"
            )
        self.observable_names  # checks the observables' output (names and scalars)
        if self.is_population:
            k = np.asarray(self._kl(params))
            if k.shape != () or not np.isfinite(k):
                raise LikelihoodError(f"`kl` must return a finite scalar at init, got {k!r}")
            return
        ll = np.asarray(self._loglik(params, self.data))
        if ll.shape != (self.n,):
            raise LikelihoodError(
                f"`log_likelihood` must return one value per example, shape ({self.n},), "
                f"got shape {ll.shape}; do not sum over the examples"
            )
        if not np.all(np.isfinite(ll)):
            bad = int(np.sum(~np.isfinite(ll)))
            raise LikelihoodError(
                f"`log_likelihood` is non-finite for {bad} example(s) at the initial point"
            )

    def __repr__(self):
        kind = "population" if self.is_population else "data"
        return f"Target({self.name!r}, n={self.n}, {kind})"


class _FunctionModel:
    """Adapter: bare functions seen as a Model."""

    def __init__(self, log_prior, log_likelihood, init, support, name, sample_prior=None,
                 observables=None):
        self.log_prior = log_prior
        self.log_likelihood = log_likelihood
        self.init = init
        self.support = support
        self.name = name
        if sample_prior is not None:
            self.sample_prior = sample_prior
        if observables is not None:
            self.observables = observables


def sq_distance(params, center):
    """‖w − w*‖² summed over every leaf of the params pytree."""
    diffs = jax.tree_util.tree_map(lambda a, b: jnp.sum((a - b) ** 2), params, center)
    return sum(jax.tree_util.tree_leaves(diffs))


__all__ = ["Target", "check_beta", "sq_distance"]
