"""The notebooks under notebooks/ execute without error (small settings), and are stored executed.

Each notebook reads SLT_THERMO_SMALL=1 and shrinks its runs; the code path is the same. The
stored copies carry the outputs of a full-size run (execute them with nbclient and save).
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
IDS = [p.name for p in NOTEBOOKS]


def test_the_walkthroughs_exist():
    assert {"01_estimate_rlct.ipynb", "02_free_energy_vs_n_and_beta.ipynb",
            "03_local_learning_coefficient.ipynb", "04_therml.ipynb", "05_sgd_vs_samplers.ipynb",
            "06_iso_classification.ipynb"} <= set(IDS)


def _errors(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.output_type == "error"]


def _images(nb):
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stored_with_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code), "store the notebook executed"
    assert not _errors(nb)
    assert _images(nb) >= 3
    outputs = str([c.get("outputs", []) for c in code])
    assert "[SMALL]" not in outputs  # the stored outputs are of the full-size run


def _execute(path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    return nb


# Executing a notebook costs a kernel, its imports and its own compilations (about a minute each
# on 2 cores even when small): they execute in the slow set. The stored copies of all of them
# (executed, no errors, figures, full size) are checked above in every run.
SLOW = {p.name for p in NOTEBOOKS}


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW else p
                                  for p in NOTEBOOKS], ids=IDS)
def test_executes_small(path, monkeypatch):
    monkeypatch.setenv("SLT_THERMO_SMALL", "1")  # the kernel inherits the environment
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    nb = _execute(path)
    assert not _errors(nb)
    assert _images(nb) >= 3
