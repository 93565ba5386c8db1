"""The `slt-thermo` demo job runs and prints E^β[nL_n] beside the exact value."""

import pytest

from slt_thermo import cli


def test_demo_prints_energy_per_beta(capsys):
    assert cli.main(["--n", "50", "--d", "2", "--num-betas", "3", "--chains", "2",
                     "--warmup", "100", "--samples", "100"]) == 0
    out = capsys.readouterr().out
    assert "E^β[nL_n] sampled" in out and "exact" in out
    rows = [line for line in out.splitlines() if line[:9].strip().replace(".", "").isdigit()]
    assert len(rows) == 3


def test_bad_argument_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--chains", "0"])
    assert e.value.code == 2
    assert "--chains must be >= 1" in capsys.readouterr().err
