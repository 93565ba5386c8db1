"""slt_thermo.models.load: zoo names with their defaults, parameter overrides, FILE.py:FUNC, errors."""

import tempfile

import pytest

import slt_thermo as st
from slt_thermo import models
from slt_thermo.errors import InvalidArgumentError, SLTThermoError

# subprocesses run outside the checkout, so they import the installed package (the source tree
# lacks slt_thermo.models, which the install maps from models/), as CI's `pytest` does
OUTSIDE = tempfile.gettempdir()


def test_zoo_names_use_the_zoo_defaults():
    m = models.load("reduced_rank")
    assert m.name == "reduced_rank(M=2, N=2, H=1, r=1)" and str(m.rlct) == "3/2"
    for name, (defaults, text) in models.ZOO.items():
        assert callable(getattr(models, name)) and text
        assert models.load(name).name == getattr(models, name)(**defaults).name


def test_parameters_override_the_defaults_one_by_one():
    m = models.load("reduced_rank", M=3, N=3)
    assert (m.M, m.N, m.H, m.r) == (3, 3, 1, 1)
    assert models.load("deep_linear", widths=(3, 2, 3)).widths == (3, 2, 3)
    assert models.load("monomial", k=(1,)).k == (1,)


def test_file_and_function(tmp_path):
    f = tmp_path / "mine.py"
    f.write_text("from slt_thermo import models\n"
                 "def make_model(k=2):\n    return models.monomial(k=k)\n"
                 "def other(d=1):\n    return models.linear_regression(d)\n")
    assert models.load(f"{f}:make_model", k=1).k == (1,)
    assert models.load(str(f)).k == (2,)  # FILE.py alone calls make_model
    assert models.load(f"{f}:other", d=2).d == 2
    assert models.split_spec(f"{f}:other") == (str(f), "other") and models.split_spec("x.py") == ("x.py", "make_model")


@pytest.mark.parametrize("spec, params, argument, message", [
    ("resnet", {}, "spec", "unknown model 'resnet'; choose one of monomial"),
    ("reduced_rank", {"Q": 1}, "params", "reduced_rank: got an unexpected keyword argument 'Q' (it takes M, N, H, r"),
    ("reduced_rank", {"r": 5}, "params", "reduced_rank(M=2, N=2, H=1, r=5): "),
    ("no/such/file.py:make", {}, "spec", "is neither a zoo model"),
])
def test_zoo_errors(spec, params, argument, message):
    with pytest.raises(InvalidArgumentError) as e:
        models.load(spec, **params)
    assert message in str(e.value) and e.value.argument == argument


def test_file_errors(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def make_nothing():\n    return 42\n"
                 "def make_broken():\n    raise RuntimeError('boom')\n")
    bad = tmp_path / "bad.py"
    bad.write_text("import no_such_module_anywhere\n")
    cases = [
        (f"{f}:make_nothing", {}, "spec", ("m.py:make_nothing returned int; it must return a slt_thermo.Target "
                                           "or a Model with log_prior, log_likelihood, init, simulate"), None),
        (f"{f}:make_broken", {}, "spec", "m.py:make_broken() raised RuntimeError: boom", RuntimeError),
        (f"{f}:make_broken", {"x": 1}, "params", "m.py:make_broken: got an unexpected keyword", None),
        (f"{f}:absent", {}, "spec", "has no function 'absent'", None),
        (str(bad), {}, "spec", "importing", ModuleNotFoundError),
    ]
    for spec, params, argument, message, cause in cases:
        with pytest.raises(InvalidArgumentError) as e:
            models.load(spec, **params)
        assert message in str(e.value) and e.value.argument == argument, str(e.value)
        assert isinstance(e.value, SLTThermoError)
        if cause is not None:  # the user's exception is kept for its traceback
            assert isinstance(e.value.__cause__, cause)


def test_a_function_may_return_a_target(tmp_path):
    f = tmp_path / "t.py"
    f.write_text("import jax\nimport slt_thermo as st\nfrom slt_thermo import models\n"
                 "def make_target(n=20):\n    m = models.monomial(k=1)\n"
                 "    return st.Target(m, m.simulate(jax.random.PRNGKey(0), n))\n")
    t = models.load(f"{f}:make_target", n=30)
    assert isinstance(t, st.Target) and t.n == 30


@pytest.mark.parametrize("first", ["from slt_thermo.models import Monomial",
                                   "from slt_thermo.models.monomial import Monomial"])
def test_lazy_zoo_keeps_functions_named_like_their_modules(first):
    """The zoo loads on first use; whatever loads the submodule `monomial` first, `models.monomial`
    stays the function (as with eager imports), and ZOO/load need no jax until a model is built."""
    import subprocess
    import sys

    code = ("import sys, types\n"
            "from slt_thermo import models\n"
            "models.ZOO, models.split_spec('a.py:f')\n"
            f"{first}\n"
            "assert not isinstance(models.monomial, types.ModuleType), models.monomial\n"
            "assert models.monomial(k=1).k == (1,) and models.load('monomial').k == (1, 2)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=OUTSIDE, check=False)
    assert p.returncode == 0, p.stderr
