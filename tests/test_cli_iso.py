"""`slt-thermo iso`: usage errors, the command's plumbing on faked library results (tables, files,
show), and (slow) the end-to-end run with reduced settings. The science is tested in test_therml."""

import json
import os

import numpy as np
import pytest
import xarray as xr

from slt_thermo import cli

BAD = [
    (["iso", "--h", "1"], "argument --h: must be smaller than --lam (1) and --gam (1), got 1"),
    (["iso", "--gam", "0.04", "--h", "0.05"], "argument --h: must be smaller than --lam"),
    (["iso", "--alpha", "0"], "argument --alpha: must be a positive number, got '0'"),
    (["iso", "--lam", "-1"], "argument --lam: must be a positive number"),
    (["iso", "--steps", "0"], "argument --steps: must be an integer >= 1, got 0"),
    (["iso", "--equilibration", "5"], "argument --equilibration: must be an integer >= 10, got 5"),
    (["iso", "--transfer-k", "nan"], "argument --transfer-k: must be a finite number"),
    (["iso", "--transfer-steps", "x"], "argument --transfer-steps"),
    (["iso", "--surface", "--surface-step", "1"], "argument --surface-step: must be smaller than --lam"),
    (["iso", "--n", "0"], "argument --n"),
]


def call(argv):
    try:
        return cli.main(argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_arguments_are_one_line(argv, message, capsys, tmp_path):
    assert call(argv + ["--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("slt-thermo iso: error: ") and message in err, err
    assert "Traceback" not in err and captured.out == ""
    assert not os.listdir(tmp_path)  # nothing written


def test_help(capsys):
    assert call(["iso", "--help"]) == 0
    text = capsys.readouterr().out
    assert "usage: slt-thermo iso" in text and "--transfer-k" in text and "--surface" in text


def _fake_library(monkeypatch):
    """therml.iso_classification, iso_transfer and equilibrium_surface replaced by tables of the
    right shape (what they compute is tested in test_therml); records the keywords they got."""
    from slt_thermo import therml

    calls = {}

    def iso(model, data, *, lam, gam, key, num_steps, **kw):
        calls["iso"] = dict(lam=lam, gam=gam, num_steps=num_steps, **kw)
        s = np.arange(num_steps + 1.0)
        cols = {"lam": lam + 0.03 * s, "gam": gam - 0.01 * s, "R": 36 + 0.2 * s, "D": 102 - 0.2 * s,
                "C": 3.8 + 1e-3 * s, "F": 142 + 3 * s, "dC_dlam": np.r_[np.nan, -0.7 * np.ones(num_steps)],
                "dC_dgam": np.r_[np.nan, -3.0 * np.ones(num_steps)]}
        t = xr.Dataset({k: ("step", v) for k, v in cols.items()}, coords={"step": np.arange(num_steps + 1)},
                       attrs={"alpha": kw["alpha"], "h": kw["h"], "equilibration": kw["equilibration"],
                              "eta_max": 2.0, "R_eq_err": 1e-3, "D_eq_err": 1e-3, "C_eq_err": 2e-4})
        return therml.IsoProcess(t, {})

    def transfer(model, source, target, *, lam, gam, key, num_steps, k, **kw):
        calls["transfer"] = dict(lam=lam, gam=gam, k=k, num_steps=num_steps, **kw)
        t = np.linspace(0, 1, num_steps + 1)
        cols = {"t": t, "lam": lam + k * t, "gam": gam * (1 + 3 * t), "R": 50 + t, "D": 84 + t, "C": 7.6 + 0 * t,
                "F": 138 + t, "accuracy": 0.95 + 0 * t, "accuracy_target": 0.7 + 0.25 * (t > 0),
                "dC_dlam": -np.ones_like(t), "dC_dgam": -0.5 * np.ones_like(t), "dC_dt": np.ones_like(t),
                "capped": (np.arange(num_steps + 1) == 1).astype(float), "C_finetune": 7.6 + t,
                "accuracy_finetune": 0.95 + 0 * t, "accuracy_target_finetune": 0.7 + 0.25 * (t > 0.5)}
        ds = xr.Dataset({n: ("step", v) for n, v in cols.items()}, coords={"step": np.arange(num_steps + 1)},
                        attrs={"k": k, "h": 0.05, "equilibration": kw["equilibration"], "eta_max": 2.0,
                               "C_eq_err": np.float64(0.01), "scratch_C": 8.8, "scratch_accuracy": 0.958,
                               "scratch_C_start": 8.7, "scratch_accuracy_start": 0.958})
        return therml.Transfer(ds, {})

    def surface(model, data, lambdas, gammas, *, key, num_steps, rounds):
        calls["surface"] = dict(lambdas=lambdas, gammas=gammas, num_steps=num_steps, rounds=rounds)
        L, G = np.meshgrid(lambdas, gammas, indexing="ij")
        F = 80 * L + 2 * G - 3 * (L - 1) ** 2 - (G - 1) ** 2  # concave; D, C its exact slopes
        D, C = 80 - 6 * (L - 1), 2 - 2 * (G - 1)
        return xr.Dataset({"F": (("lam", "gam"), F), "R": (("lam", "gam"), F - L * D - G * C),
                           "D": (("lam", "gam"), D), "C": (("lam", "gam"), C),
                           "F_err": (("lam", "gam"), np.full(F.shape, 1e-4))},
                          coords={"lam": np.asarray(lambdas, float), "gam": np.asarray(gammas, float)})

    monkeypatch.setattr(therml, "iso_classification", iso)
    monkeypatch.setattr(therml, "iso_transfer", transfer)
    monkeypatch.setattr(therml, "equilibrium_surface", surface)
    return calls


def _summary(out):
    (d,) = [p for p in os.listdir(out) if os.path.isdir(os.path.join(out, p))]
    with open(os.path.join(out, d, "summary.json"), encoding="utf-8") as f:
        return os.path.join(out, d), json.load(f)


def test_iso_command_plumbing_and_show(tmp_path, capsys, monkeypatch):
    """The options reach the library; the tables, the checks, summary.json, the three PNGs and
    `show` (faked library results)."""
    calls = _fake_library(monkeypatch)
    out = str(tmp_path / "iso")
    assert cli.main(["iso", "--lam", "1.2", "--alpha", "0.02", "--steps", "3", "--equilibration", "100",
                     "--transfer-k", "-0.25", "--transfer-steps", "4", "--surface", "--surface-steps", "50",
                     "--out", out]) == 0
    text = capsys.readouterr().out
    assert calls["iso"]["lam"] == 1.2 and calls["iso"]["alpha"] == 0.02 and calls["iso"]["num_steps"] == 3
    assert calls["iso"]["equilibration"] == 100 and calls["iso"]["init_steps"] == 20000
    assert calls["transfer"]["k"] == -0.25 and calls["transfer"]["num_steps"] == 4
    assert calls["transfer"]["lam"] == 1.0 and calls["transfer"]["gam"] == 0.5
    assert calls["surface"]["lambdas"] == [0.95, 1.2, 1.45] and calls["surface"]["num_steps"] == 50
    assert "Remark 10" in text and "C − C₀" in text and "fine-tuning:" in text and "from scratch:" in text
    assert "1 of 4 γ steps capped" in text and "concave    holds" in text and "C = ∂F/∂γ  holds" in text
    d, s = _summary(out)
    assert s["command"] == "iso" and len(s["iso"]["rows"]) == 4 and len(s["transfer"]["rows"]) == 5
    assert s["iso"]["rows"][0]["dC_dlam"] is None  # the start has no derivative (NaN → null)
    assert s["transfer"]["scratch_C"] == 8.8 and s["surface"]["checks"]["concavity"] < 0
    assert s["files"]["plots"] == ["iso_process.png", "iso_transfer.png", "iso_surface.png"]
    for name in s["files"]["plots"]:
        with open(os.path.join(d, name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["show", d, "--no-plots"]) == 0
    assert "Remark 10" in capsys.readouterr().out

    out2 = str(tmp_path / "iso2")
    assert cli.main(["iso", "--no-transfer", "--no-plots", "--out", out2]) == 0
    text = capsys.readouterr().out
    assert "transfer" not in text.split("iso-classification (eq. 31)")[1]
    _, s = _summary(out2)
    assert s["transfer"] is None and s["surface"] is None and s["files"]["plots"] == []


@pytest.mark.slow
def test_iso_end_to_end_reduced(tmp_path, capsys):
    """The real library calls with reduced settings: every number finite, the files written."""
    out = str(tmp_path / "iso")
    assert cli.main(["iso", "--steps", "2", "--equilibration", "50", "--init-steps", "200", "--transfer-steps", "3",
                     "--transfer-equilibration", "50", "--transfer-init-steps", "200", "--surface",
                     "--surface-steps", "200", "--out", out]) == 0
    text = capsys.readouterr().out
    assert "Remark 10" in text and "from scratch:" in text and "concave" in text
    d, s = _summary(out)
    assert all(np.isfinite([r[k] for r in s["iso"]["rows"] for k in ("lam", "gam", "R", "D", "C", "F")]))
    assert all(np.isfinite([r[k] for r in s["transfer"]["rows"] for k in ("t", "gam", "C", "C_finetune")]))
    assert s["transfer"]["rows"][-1]["t"] == pytest.approx(1.0) and len(s["files"]["plots"]) == 3
    assert np.all(np.isfinite(s["surface"]["F"]))
