"""slt_thermo.io: results directories, atomic JSON writes, parameter files and their names."""

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from slt_thermo import io as st_io
from slt_thermo.errors import InvalidArgumentError

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
