"""slt_thermo.io: results directories, atomic JSON and netCDF writes, checksummed samples files
that refuse to load damaged, parameter files and their names."""

import json
import os

import h5py
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import slt_thermo as st
from slt_thermo import io as st_io
from slt_thermo.errors import InvalidArgumentError, ResultsFileError

NESTED = {"layer1": {"W": np.arange(6.0).reshape(3, 2), "b": np.array([1.0, 2.0, 3.0])}, "out": np.array([7.0, 8.0, 9.0])}


class Unprintable:
    def __str__(self):
        raise RuntimeError("cannot serialize me")


def leftovers(directory):
    return sorted(p for p in os.listdir(directory) if p.startswith("."))


# ------------------------------------------------------------------------------ JSON
def test_write_json_is_strict_and_converts(tmp_path):
    from fractions import Fraction

    path = tmp_path / "s.json"
    st_io.write_json(path, {"nan": float("nan"), "inf": [1.0, float("inf")], "i": np.int64(3),
                            "f": np.float32(0.5), "a": np.arange(3), "lam": Fraction(3, 2), "s": {2, 1}})
    text = path.read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"nan": None, "inf": [1.0, None], "i": 3, "f": 0.5, "a": [0, 1, 2],
                                "lam": "3/2", "s": [1, 2]}
    assert text.endswith("\n") and leftovers(tmp_path) == []


def test_write_json_failing_midway_leaves_no_partial_file(tmp_path):
    path = tmp_path / "summary.json"
    with pytest.raises(RuntimeError, match="cannot serialize"):
        st_io.write_json(path, {"first": list(range(1000)), "bad": Unprintable()})
    assert not path.exists() and os.listdir(tmp_path) == []

    st_io.write_json(path, {"run": 1})
    with pytest.raises(RuntimeError):
        st_io.write_json(path, {"run": 2, "more": list(range(1000)), "bad": Unprintable()})
    assert json.loads(path.read_text(encoding="utf-8")) == {"run": 1}  # the previous complete file
    assert os.listdir(tmp_path) == ["summary.json"]


def test_atomic_path_killed_writer_keeps_the_old_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old complete content")
    with pytest.raises(KeyboardInterrupt):
        with st_io.atomic_path(path) as tmp:
            assert os.path.dirname(tmp) == str(tmp_path) and tmp.endswith(".bin")
            with open(tmp, "wb") as f:
                f.write(b"half of the ne")
            raise KeyboardInterrupt  # the process is stopped mid-write
    assert path.read_bytes() == b"old complete content" and leftovers(tmp_path) == []

    with st_io.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"new")
    assert path.read_bytes() == b"new" and leftovers(tmp_path) == []

    with pytest.raises(InvalidArgumentError, match="nothing was written"):
        with st_io.atomic_path(tmp_path / "never.txt"):
            pass
    assert not (tmp_path / "never.txt").exists()


# ------------------------------------------------------------------------------ results directories
def test_new_results_dir_is_new_and_errors_are_library_errors(tmp_path):
    made = [st_io.new_results_dir(str(tmp_path / "r"), "llc", "my model/v1") for _ in range(3)]
    assert len(set(made)) == 3 and all(os.path.isdir(d) for d in made)
    assert os.path.basename(made[0]).startswith("llc-my_model_v1-") and made[1].endswith("-2")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgumentError, match="cannot create"):
        st_io.new_results_dir(str(tmp_path / "file"), "rlct", "m")


# ------------------------------------------------------------------------------ parameter names and files
def test_param_names_match_the_samples_files():
    from slt_thermo.samplers.records import leaf_names

    trees = [NESTED, {"W1": np.ones(2), "W2": np.ones(3)}, np.ones(3), {"blocks": [np.ones(1), {"a": np.ones(1)}]}]
    for tree in trees:
        assert st_io.param_names(tree) == leaf_names(tree)
    assert st_io.param_names(NESTED) == ["layer1.W", "layer1.b", "out"]
    assert st_io.param_names({"blocks": [np.ones(1), {"a": np.ones(1)}]}) == ["blocks.0", "blocks.1.a"]
    assert st_io.param_names(np.ones(3)) == ["w"]


def test_save_and_load_params_round_trip(tmp_path):
    path = st_io.save_params(tmp_path / "p.npz", NESTED)
    with np.load(path) as f:
        assert sorted(f.files) == ["layer1.W", "layer1.b", "out"]
    template = {"layer1": {"W": jnp.zeros((3, 2)), "b": jnp.zeros(3)}, "out": jnp.zeros(3)}
    back = st_io.load_params(path, template)
    assert set(back) == {"layer1", "out"} and set(back["layer1"]) == {"W", "b"}
    for a, b in zip(st_io.param_names(back), st_io.param_names(NESTED)):
        assert a == b
    np.testing.assert_array_equal(back["layer1"]["W"], NESTED["layer1"]["W"])
    np.testing.assert_array_equal(back["out"], NESTED["out"])
    # exactly the path given, even without .npz; no temporary files left
    st_io.save_params(tmp_path / "plain", NESTED)
    assert (tmp_path / "plain").is_file() and not (tmp_path / "plain.npz").exists()
    assert leftovers(tmp_path) == []
    assert set(st_io.load_params(path)) == {"layer1.W", "layer1.b", "out"}  # no template: flat dict


def test_load_params_accepts_the_old_slash_names(tmp_path):
    np.savez(tmp_path / "old.npz", **{"layer1/W": NESTED["layer1"]["W"], "layer1/b": NESTED["layer1"]["b"],
                                      "out": NESTED["out"]})
    back = st_io.load_params(tmp_path / "old.npz", NESTED)
    np.testing.assert_array_equal(back["layer1"]["b"], NESTED["layer1"]["b"])


def test_load_params_errors_name_the_file_and_the_names(tmp_path):
    np.savez(tmp_path / "bad.npz", **{"layer1.W": np.ones((3, 2)), "hidden": np.ones(3), "out": np.ones(3)})
    with pytest.raises(InvalidArgumentError) as e:
        st_io.load_params(tmp_path / "bad.npz", NESTED)
    msg = str(e.value)
    assert "bad.npz" in msg and "missing: layer1.b" in msg and "extra: hidden" in msg

    np.savez(tmp_path / "shape.npz", **{"layer1.W": np.ones((2, 3)), "layer1.b": np.ones(3), "out": np.ones(3)})
    with pytest.raises(InvalidArgumentError, match=r"layer1.W in .*shape.npz has shape \(2, 3\); .* \(3, 2\)"):
        st_io.load_params(tmp_path / "shape.npz", NESTED)
    with pytest.raises(InvalidArgumentError, match="no such file"):
        st_io.load_params(tmp_path / "absent.npz", NESTED)
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(InvalidArgumentError, match="cannot read .*junk.npz"):
        st_io.load_params(tmp_path / "junk.npz", NESTED)
    with pytest.raises(InvalidArgumentError, match="several leaves named a.b"):
        st_io.save_params(tmp_path / "dup.npz", {"a.b": np.ones(1), "a": {"b": np.ones(1)}})


# ------------------------------------------------------------------------------ samples files
def small_samples():
    """A hand-made Samples (no sampler run): 2 β × 3 chains × 50 draws, one unhealthy chain."""
    rng = np.random.default_rng(0)
    ds = xr.Dataset(
        {"nll": (("beta", "chain", "draw"), rng.normal(100.0, 3.0, (2, 3, 50))),
         "w": (("beta", "chain", "draw", "w_dim_0"), rng.normal(size=(2, 3, 50, 2))),
         "healthy": (("beta", "chain"), np.array([[True, True, False], [True, True, True]]))},
        coords={"beta": [0.5, 1.0]}, attrs={"n": 20, "sampler": "hand", "param_names": "w"})
    return st.Samples(ds)


def data_bytes(path, name):
    """(offset, length) in the file of variable ``name``'s one stored chunk: its data, then the
    4-byte Fletcher-32 checksum."""
    with h5py.File(path, "r") as f:
        v = f[name]
        assert v.id.get_num_chunks() == 1
        info = v.id.get_chunk_info(0)
        return info.byte_offset, info.size


def test_samples_round_trip_with_checksums_and_no_leftovers(tmp_path):
    s = small_samples()
    path = s.save(tmp_path / "run.nc")
    xr.testing.assert_identical(st.load(path).ds, s.ds)
    with h5py.File(path, "r") as f:
        assert all(f[k].fletcher32 for k in ("nll", "w", "healthy", "beta"))
    # superblock version ≥ 2: the HDF5 formats whose metadata (object headers, chunk indexes) is
    # checksummed; version 0 files lost `w`'s numbers silently to one flipped chunk-index byte
    assert (tmp_path / "run.nc").read_bytes()[8] >= 2
    assert leftovers(tmp_path) == []
    # a loaded file saves again (its layout encodings are not carried over), still checksummed
    again = st.load(path).save(tmp_path / "again.nc")
    with h5py.File(again, "r") as f:
        assert f["nll"].fletcher32


def test_samples_save_creates_a_missing_directory(tmp_path):
    path = small_samples().save(tmp_path / "new" / "deeper" / "run.nc")
    assert os.path.isfile(path) and st.load(path).ds.sizes["draw"] == 50
    assert os.path.isfile(st_io.write_json(tmp_path / "json" / "summary.json", {"every": "writer"}))
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgumentError, match="cannot create the directory"):
        small_samples().save(tmp_path / "file" / "run.nc")


def test_samples_save_failing_midway_keeps_the_old_file(tmp_path):
    path = small_samples().save(tmp_path / "run.nc")
    bad = small_samples()
    bad.ds["nll"].attrs["unwritable"] = {"a dict": "netCDF has no such attribute type"}
    with pytest.raises(Exception):
        bad.save(path)
    xr.testing.assert_identical(st.load(path).ds, small_samples().ds)
    assert leftovers(tmp_path) == []


def test_flipped_data_byte_raises_instead_of_loading_changed_numbers(tmp_path):
    s = small_samples()
    path = s.save(tmp_path / "run.nc")
    offset, size = data_bytes(path, "nll")
    data = s["nll"].values.astype("<f8").tobytes()
    raw = bytearray((tmp_path / "run.nc").read_bytes())
    assert size == len(data) + 4 and bytes(raw[offset:offset + len(data)]) == data  # really the data
    raw[offset + len(data) // 2] ^= 0x10
    (tmp_path / "run.nc").write_bytes(bytes(raw))
    with pytest.raises(ResultsFileError, match=r"run\.nc.*corrupted: a data checksum does not match"):
        st.load(path)

    # the same flip in a file without checksums loads changed numbers: what the checksums prevent
    plain = tmp_path / "plain.nc"
    s.ds.to_netcdf(plain, engine="h5netcdf")
    with h5py.File(plain, "r") as f:
        offset = f["nll"].id.get_offset()
    raw = bytearray(plain.read_bytes())
    assert bytes(raw[offset:offset + len(data)]) == data
    raw[offset + len(data) // 2] ^= 0x10
    plain.write_bytes(bytes(raw))
    with xr.open_dataset(plain, engine="h5netcdf") as ds:
        assert not np.array_equal(ds["nll"].values, s["nll"].values)


@pytest.mark.parametrize("damage, cause", [
    ("missing", "no such file"),
    ("truncated", "truncated"),
    ("text", "not a netCDF-4/HDF5 file"),
    ("empty", "not a netCDF-4/HDF5 file"),
    ("directory", "is a directory"),
    ("foreign", "not a samples file"),
])
def test_load_damaged_or_foreign_file_names_path_and_cause(tmp_path, damage, cause):
    path = tmp_path / "run.nc"
    if damage == "truncated":
        small_samples().save(path)
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "text":
        path.write_text("beta,chain,draw,nll\n0.5,0,0,100.0\n")
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "directory":
        path.mkdir()
    elif damage == "foreign":
        st_io.write_netcdf(path, xr.Dataset({"temperature": ("time", np.arange(3.0))}))
    with pytest.raises(ResultsFileError, match=f"{path.name}.*{cause}") as err:
        st.load(path)
    assert str(path) in str(err.value)
    assert isinstance(err.value, st.SLTThermoError) and isinstance(err.value, OSError)
