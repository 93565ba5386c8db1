"""Placing the (β, chain) axis on several devices: ``jax.sharding`` over a 1-D ``Mesh``.

Every sampler runs its chains as one vmapped program over the flattened (β × chain) axis. With
``RunOptions(devices=…)`` the driver puts that axis's arrays (kernel states, accumulators,
health, β) on a ``NamedSharding`` that splits it over the devices, and XLA partitions the same
compiled program accordingly (computation follows data): no code change for the user, one
program for 1 or k devices. No computation mixes chains, so a chain sees the same keys and the
same arithmetic; only XLA's vectorization of a smaller per-device batch can change the last bits.
SGLD and SGD runs then match the one-device run to a few ulps; NUTS/HMC trajectories amplify
those bits (measured, benchmarks/scaling.py: a DLN with d = 192 differs by ~1e-3 relative after
15 warm-up steps with identical tree sizes), so long NUTS runs are other chains of the same
law — their means agree within error — rather than bitwise copies. The data are replicated.

Population annealing, AIS and BDMC split their particles instead (:func:`shard_particles`).

**Many hosts** (``jax.distributed``): start one process per host (or per GPU), each calling, before
anything else touches jax,

    jax.distributed.initialize(coordinator_address="host0:1234", num_processes=P, process_id=i)
    # on CPU hosts also: jax.config.update("jax_cpu_collectives_implementation", "gloo")

then run the same script with ``devices=jax.devices()`` (the global list: every process's
devices). Every process computes the same initial state from the same key and places its own
shards; each chunk's draws are gathered to every process (``process_allgather``), so each holds
the whole Samples — let process 0 (``jax.process_index() == 0``) write the files.
tests/test_parallel.py runs two processes on 127.0.0.1 and checks the one-process numbers.

``devices``: an int k (the first k of ``jax.devices()``), a sequence of devices, or a 1-D
``jax.sharding.Mesh``. On CPU, several host devices come from
``XLA_FLAGS=--xla_force_host_platform_device_count=k`` set before jax is imported.
"""

from __future__ import annotations

import numbers

import jax
import numpy as np

from .errors import InvalidArgumentError

AXIS = "chains"


def mesh(devices) -> jax.sharding.Mesh:
    """A 1-D Mesh with axis ``"chains"`` from ``devices`` (module docstring)."""
    if isinstance(devices, jax.sharding.Mesh):
        if len(devices.axis_names) != 1:
            raise InvalidArgumentError(f"`devices` Mesh must be 1-D, got axes {devices.axis_names}")
        return jax.sharding.Mesh(devices.devices.reshape(-1), (AXIS,))
    if isinstance(devices, numbers.Integral) and not isinstance(devices, bool):
        available = jax.devices()
        if not 1 <= devices <= len(available):
            raise InvalidArgumentError(
                f"`devices` = {devices}, but {len(available)} device(s) are visible ({available[0].platform}); on "
                "CPU set XLA_FLAGS=--xla_force_host_platform_device_count=k before importing jax")
        devices = available[:devices]
    try:
        devs = list(devices)
    except TypeError:
        raise InvalidArgumentError(f"`devices` must be an int, a sequence of jax devices or a Mesh, "
                                   f"got {type(devices).__name__}") from None
    if not devs or not all(isinstance(d, jax.Device) for d in devs):
        raise InvalidArgumentError("`devices` must be a non-empty sequence of jax devices")
    return jax.sharding.Mesh(np.array(devs), (AXIS,))


def _place(tree, m: jax.sharding.Mesh, spec: jax.sharding.PartitionSpec, is_split):
    """``tree``'s leaves as host values put on the mesh: split by ``spec`` where ``is_split(x)``,
    replicated elsewhere (in a multi-host run every process holds the same host value)."""
    split = jax.sharding.NamedSharding(m, spec)
    whole = jax.sharding.NamedSharding(m, jax.sharding.PartitionSpec())

    def place(x):
        x = to_host(x)
        return jax.device_put(x, split if is_split(x) else whole)

    return jax.tree_util.tree_map(place, tree)


def shard_leading(tree, m: jax.sharding.Mesh, size: int):
    """``tree`` with every leaf whose leading axis has length ``size`` split over the mesh along
    it, and every other leaf replicated."""
    return _place(tree, m, jax.sharding.PartitionSpec(AXIS), lambda x: x.ndim and x.shape[0] == size)


def shard_particles(tree, m: jax.sharding.Mesh, num_runs: int, num_particles: int):
    """``tree`` with every leaf shaped (num_runs, num_particles, ...) split over the mesh along
    the particle axis (population annealing's population; resampling gathers across devices),
    every other leaf replicated."""
    return _place(tree, m, jax.sharding.PartitionSpec(None, AXIS),
                  lambda x: x.ndim >= 2 and x.shape[:2] == (num_runs, num_particles))


def check_divisible(size: int, m: jax.sharding.Mesh, what: str) -> None:
    """Raise unless ``size`` splits evenly over the mesh's devices."""
    k = m.devices.size
    if size % k:
        raise InvalidArgumentError(f"{what} = {size} must be a multiple of the {k} devices to split it evenly; "
                                   "change the number of chains (or particles)")


def to_host(x) -> np.ndarray:
    """A device array as a numpy array on this host; an array split over several processes
    (a multi-host run) is gathered from all of them first (``process_allgather``), so every
    process holds the whole result."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def devices_of(tree) -> set:
    """The devices holding any leaf of ``tree`` (for checks: a sharded run uses all of them)."""
    out = set()
    for leaf in jax.tree_util.tree_leaves(tree):
        out |= set(getattr(leaf, "sharding", None).device_set) if hasattr(leaf, "sharding") else set()
    return out


__all__ = ["AXIS", "check_divisible", "devices_of", "mesh", "shard_leading", "shard_particles", "to_host"]
