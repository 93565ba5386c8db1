"""Files a run leaves behind: results directories, atomic writes, checksummed netCDF, JSON
summaries, parameter files.

Every file is written under a temporary name in its own directory and renamed into place
(:func:`atomic_path`), so a process killed mid-write leaves either the previous complete file or
none, never half of one. netCDF files carry HDF5 Fletcher-32 checksums on their data
(:func:`write_netcdf`), and :func:`read_netcdf` turns a missing, truncated, corrupted or foreign
file into a :class:`~slt_thermo.errors.ResultsFileError` naming the path and the cause.
Parameter files (``.npz``) name each array of a parameter pytree by its path, nested keys joined
by ``"."`` (:func:`param_names`), the same names the parameters carry in a samples file, so a
point read from a run's draws can be saved and handed back as ``--center``.

This module imports neither jax nor numpy at import time (the CLI's ``--help`` stays fast).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import re
import secrets
from fractions import Fraction

from .errors import InvalidArgumentError, ResultsFileError

__all__ = ["atomic_path", "load_params", "new_results_dir", "param_names", "read_netcdf", "save_params",
           "write_json", "write_netcdf"]


# ------------------------------------------------------------------------------ results directories
def new_results_dir(parent: str, command: str, slug: str) -> str:
    """Create and return a fresh directory ``parent/command-slug-YYYYmmdd-HHMMSS[-k]``.

    Never returns an existing directory: a second run within the same second gets ``-2``, ``-3``, …
    (``os.mkdir`` decides, so concurrent runs cannot collide). ``parent`` is created if needed.
    Raises :class:`~slt_thermo.errors.InvalidArgumentError` when it cannot be.
    """
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", slug) or "model"
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as err:
        raise InvalidArgumentError(f"cannot create {parent!r}: {err.strerror}") from None
    base = os.path.join(parent, f"{command}-{slug}-{stamp}")
    for k in range(1, 10_000):
        path = base if k == 1 else f"{base}-{k}"
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
        except OSError as err:
            raise InvalidArgumentError(f"cannot create {path!r}: {err.strerror}") from None
    raise InvalidArgumentError(f"too many results directories named {base}-*")


# ------------------------------------------------------------------------------ atomic writes
def _fsync(path: str, *, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        if directory:  # some platforms cannot open a directory: the rename is still atomic
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def _make_parent(directory: str) -> None:
    if not directory or os.path.isdir(directory):
        return
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as err:
        raise InvalidArgumentError(f"cannot create the directory {directory!r}: {err.strerror}") from None


@contextlib.contextmanager
def atomic_path(path):
    """Context manager yielding a temporary path next to ``path``; write the file there.

    On a normal exit the temporary file is flushed to disk (fsync) and renamed onto ``path``
    (``os.replace``, atomic on POSIX and Windows); on an exception it is deleted and ``path`` is
    left as it was. The temporary name keeps ``path``'s extension (writers such as ``np.savez``
    or netCDF engines may look at it) and starts with a dot::

        with atomic_path("out/samples.nc") as tmp:
            ds.to_netcdf(tmp, engine="h5netcdf")

    A missing parent directory of ``path`` is created first (``os.makedirs``), so every writer
    built on it saves into a new directory; :class:`~slt_thermo.errors.InvalidArgumentError`
    when it cannot be.
    """
    path = os.fspath(path)
    directory, name = os.path.split(path)
    _make_parent(directory)
    stem, ext = os.path.splitext(name)
    tmp = os.path.join(directory, f".{stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{ext}")
    try:
        yield tmp
        if not os.path.isfile(tmp):
            raise InvalidArgumentError(f"nothing was written to the temporary file {tmp!r} for {path!r}")
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync(directory or ".", directory=True)


# ------------------------------------------------------------------------------ netCDF
_ENGINE = "h5netcdf"
_LIBVER = ("v110", "latest")  # HDF5 object formats whose metadata is checksummed (write_netcdf)
_FILTERABLE = "biufcmM"  # HDF5 filters need fixed-size elements: string variables go unchecked
_KEEP_ENCODING = ("dtype", "_FillValue")  # a loaded file's layout encodings would not fit a new one
# substrings of h5py's error messages → the cause a user can act on
_CAUSES = (
    ("signature not found", "not a netCDF-4/HDF5 file (a foreign, empty or text file?)"),
    ("truncated file", "truncated: shorter than its header says (an interrupted write or copy?)"),
    ("checksum", "corrupted: a checksum does not match (the file changed on disk)"),
    ("filter returned failure", "corrupted: a data checksum does not match (the file changed on disk)"),
)


def _checksum_encoding(ds) -> dict:
    """``to_netcdf`` encodings asking for a Fletcher-32 checksum on every variable HDF5 can
    filter (numeric, boolean or time, with at least one dimension: HDF5 filters chunked data
    only); of a variable's own encoding only ``dtype`` and ``_FillValue`` are kept."""
    enc = {}
    for name, var in ds.variables.items():
        e = {k: v for k, v in var.encoding.items() if k in _KEEP_ENCODING}
        if var.ndim and var.dtype.kind in _FILTERABLE:
            e["fletcher32"] = True
        enc[name] = e
    return enc


def write_netcdf(path, ds) -> str:
    """Write the ``xarray.Dataset`` ``ds`` to ``path`` (netCDF-4 via h5netcdf), atomically
    (:func:`atomic_path`: a missing directory is created) and with an HDF5 Fletcher-32 checksum
    on each variable's data, so a changed byte makes :func:`read_netcdf` raise instead of
    returning changed numbers. Returns ``path``.

    The file uses the HDF5 1.10 object formats (``libver=("v110", "latest")``, readable by HDF5
    ≥ 1.10 and netCDF-C built on it), whose metadata (object headers with the numeric
    attributes, chunk indexes) carry checksums too; with the default 1.8 formats a flipped byte
    in a chunk index changed a variable's numbers without any error. Not covered: string
    attributes, which HDF5 keeps in its unchecksummed global heap."""
    from xarray.backends import H5NetCDFStore

    with atomic_path(path) as tmp:
        store = H5NetCDFStore.open(tmp, mode="w", driver_kwds={"libver": _LIBVER})
        try:
            ds.dump_to_store(store, encoding=_checksum_encoding(ds))
        finally:
            store.close()
    return os.fspath(path)


def _cause(err: BaseException) -> str:
    if isinstance(err, FileNotFoundError):
        return "no such file"
    if isinstance(err, IsADirectoryError):
        return "it is a directory"
    text = str(err)
    for key, cause in _CAUSES:
        if key in text:
            return cause
    return "damaged or not a netCDF results file"


def _touch(name, obj) -> None:
    """Read an HDF5 object's attributes (``visititems`` callback: returns None to go on)."""
    dict(obj.attrs)


def read_netcdf(path):
    """The ``xarray.Dataset`` in the netCDF file ``path``, loaded into memory (every checksum
    verified). Raises :class:`~slt_thermo.errors.ResultsFileError` naming the path and the
    cause when the file is missing, truncated, corrupted or not netCDF-4."""
    import h5py
    import xarray as xr

    path = os.fspath(path)
    if not os.path.exists(path):
        raise ResultsFileError(f"cannot read {path!r}: no such file")
    try:
        with h5py.File(path, "r") as f:  # h5py reports damaged structure cleanly; h5netcdf would
            f.visititems(_touch)  # leave a half-made File that complains when it is collected
        with xr.open_dataset(path, engine=_ENGINE) as ds:
            return ds.load()
    except MemoryError:
        raise
    except Exception as err:  # any failure to parse the file is the file's fault
        raise ResultsFileError(f"cannot read {path!r}: {_cause(err)} ({type(err).__name__}: {err})") from err


# ------------------------------------------------------------------------------ run states
STATE_FILE = "state.pkl"


def save_state(directory, state) -> str:
    """Write a run's state (a RunState or AnnealState: device arrays gathered to numpy) to
    ``directory/state.pkl``, write-then-rename, with a SHA-256 of the payload: a killed process
    leaves the previous state or the new one, and a damaged file is refused on reading."""
    import hashlib
    import pickle

    import jax

    from .parallel import to_host

    os.makedirs(directory, exist_ok=True)
    host = jax.tree_util.tree_map(lambda x: to_host(x) if isinstance(x, jax.Array) else x, state)
    payload = pickle.dumps(host, protocol=pickle.HIGHEST_PROTOCOL)
    path = os.path.join(directory, STATE_FILE)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
    return path


def load_state(directory):
    """The state :func:`save_state` wrote in ``directory``, or None when there is none. Only load
    states you wrote: the file is a pickle."""
    import hashlib
    import pickle

    path = os.path.join(directory, STATE_FILE)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        digest, _, payload = f.read().partition(b"\n")
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise InvalidArgumentError(f"{path} is damaged (its checksum does not match); delete it to start over")
    return pickle.loads(payload)


# ------------------------------------------------------------------------------ JSON
def _jsonable(x):
    """``json.dumps``'s fallback: numpy scalars and arrays, Fractions (as "3/2"), sets, else str."""
    import numpy as np

    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Fraction):
        return str(x)
    if isinstance(x, set):
        return sorted(x)
    return str(x)


def _clean_floats(obj):
    """NaN/inf → None, recursively, so the JSON is strict."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_floats(v) for v in obj]
    return obj


def write_json(path, obj) -> str:
    """Write ``obj`` as strict, indented UTF-8 JSON to ``path`` atomically; return ``path``.

    Non-finite floats become ``null``; numpy scalars and arrays, Fractions and sets are converted,
    anything else is written as its ``str``. The whole text is built before any file is opened,
    and written through :func:`atomic_path`, so a failure (or a kill) leaves ``path`` untouched.
    """
    plain = json.loads(json.dumps(obj, default=_jsonable))  # numpy → Python, so NaNs are floats
    text = json.dumps(_clean_floats(plain), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    return os.fspath(path)


# ------------------------------------------------------------------------------ parameter files
def param_names(tree) -> list[str]:
    """The name of each leaf of a parameter pytree, in ``jax.tree_util`` leaf order.

    A leaf's name is its path, the keys joined by ``"."``: ``{"layer1": {"W": …}, "out": …}``
    gives ``["layer1.W", "out"]``; sequence entries count by index (``"blocks.0.W"``); a bare
    array is ``"w"``. These are the names of the parameter variables in a samples file.
    """
    import jax

    names = []
    for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]:
        parts = []
        for k in path:
            for attr in ("key", "name", "idx"):
                if hasattr(k, attr):
                    parts.append(str(getattr(k, attr)))
                    break
        names.append(".".join(parts) if parts else "w")
    return names


def save_params(path, params) -> str:
    """Save a parameter pytree to ``path`` as an ``.npz``, one array per :func:`param_names` name.

    Written atomically, to exactly ``path`` (no ``.npz`` is appended). Read it back with
    :func:`load_params`, or pass it to ``slt-thermo llc --center``.
    """
    import jax
    import numpy as np

    names = param_names(params)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InvalidArgumentError(f"`params` has several leaves named {', '.join(dup)}; rename the keys")
    arrays = {n: np.asarray(x) for n, x in zip(names, jax.tree_util.tree_leaves(params))}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return os.fspath(path)


def _read_npz(path) -> dict:
    import numpy as np

    if not os.path.isfile(path):
        raise InvalidArgumentError(f"no such file {os.fspath(path)!r}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: np.asarray(f[k]) for k in f.files}
    except Exception as err:
        raise InvalidArgumentError(f"cannot read {os.fspath(path)!r} as an .npz: {err}") from None
    if not arrays:
        raise InvalidArgumentError(f"{os.fspath(path)!r} holds no arrays")
    return arrays


def load_params(path, template=None):
    """Read an ``.npz`` of parameters into the pytree structure of ``template``.

    The arrays are matched to ``template``'s leaves by :func:`param_names`. For backward
    compatibility, names with nested keys joined by ``"/"`` (the spelling of ``slt-thermo llc
    --center`` files before the names were unified) are accepted and read as ``"."``. A file
    with one array fits a template with one leaf whatever its name (``np.savez(FILE, w)``).
    Arrays keep their saved dtype. With ``template=None``, returns the flat dict name → array.

    Raises :class:`~slt_thermo.errors.InvalidArgumentError` naming the file: when it is missing or
    unreadable, when its names differ from the template's (listing the missing and the extra
    ones), or when an array's shape differs from the template leaf's.
    """
    arrays = _read_npz(path)
    if template is None:
        return arrays
    import jax
    import numpy as np

    names = param_names(template)
    leaves, treedef = jax.tree_util.tree_flatten(template)
    if len(names) == 1 and len(arrays) == 1:
        arrays = {names[0]: next(iter(arrays.values()))}
    wanted, saved = set(names), sorted(arrays)
    arrays = {(k if k in wanted else k.replace("/", ".")): v for k, v in arrays.items()}
    if set(arrays) != wanted:
        missing = [n for n in names if n not in arrays]
        extra = sorted(set(arrays) - wanted)
        raise InvalidArgumentError(
            f"{os.fspath(path)} has arrays {', '.join(saved)}; the model's parameters are "
            f"{', '.join(names)} (missing: {', '.join(missing) or 'none'}; extra: {', '.join(extra) or 'none'}; "
            "save with slt_thermo.io.save_params(FILE, params))")
    out = []
    for name, leaf in zip(names, leaves):
        a = arrays[name]
        if a.shape != np.shape(leaf):
            raise InvalidArgumentError(f"{name} in {os.fspath(path)} has shape {a.shape}; the model's {name} "
                                       f"has shape {np.shape(leaf)}")
        out.append(a)
    return jax.tree_util.tree_unflatten(treedef, out)
