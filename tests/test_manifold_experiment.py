"""``python -m lsx manifold-experiment`` end to end on a tiny budget, and its bad input."""

from __future__ import annotations

import json

import pytest

from lsx.cli import main
from lsx.experiments.manifold import stable_levels


def test_tiny_experiment_writes_both_tables_and_reuses_runs(tmp_path, capsys):
    argv = [
        "manifold-experiment", "--data", "digits", "--kinds", "ae", "vae", "--seeds", "0",
        "--epochs", "1", "--latent-dim", "4", "--hidden-dim", "8", "--n-images", "40",
        "--levels", "0.1", "0.4", "--rtols", "auto", "1e-3", "--out", str(tmp_path),
    ]  # fmt: skip
    assert main(argv) == 0
    table = (tmp_path / "table.md").read_text()
    assert "### Strata and ranks" in table
    assert "### Principal subspaces in the Hilbert space" in table
    assert "| CAE (ae) | 0.4 |" in table
    assert "rtol 1e-3: smooth seeds, strata" in table
    results = json.loads((tmp_path / "results.json").read_text())
    runs = results["runs"]
    assert [(r["kind"], r["seed"]) for r in runs] == [("ae", 0), ("vae", 0)]
    assert runs[0]["latent_shape"] == [4, 2, 2]
    assert [row["level"] for row in runs[0]["strata"]] == [0.0, 0.1, 0.4]
    assert runs[0]["train_s"] > 0
    capsys.readouterr()
    assert main(argv) == 0  # finished runs with the same settings are reused
    again = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert [r["reused"] for r in again] == [True, True]
    assert [r["reused"] for r in runs] == [False, False]
    assert again[0]["strata"] == runs[0]["strata"]  # the sweep is seeded


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--levels", "0.1", "2"], "out of range for 'gaussian'"),
        (["--rtols", "tiny"], "--rtols takes 'auto' or numbers in"),
        (["--perturbation", "rotate"], "must be one of 'gaussian', 'blur', 'occlusion'"),
    ],
)
def test_bad_settings_fail_before_training(tmp_path, capsys, extra, message):
    assert main(["manifold-experiment", "--out", str(tmp_path), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_stable_levels_count():
    rows = [
        {"modal_triple": "(3, 3, 3)", "modal_share": 1.0},
        {"modal_triple": "(3, 3, 3)", "modal_share": 0.95},
        {"modal_triple": "(3, 3, 3)", "modal_share": 0.5},
        {"modal_triple": "(2, 3, 3)", "modal_share": 1.0},
    ]
    assert stable_levels(rows) == 2


def test_one_seed_cells_say_n_equals_1():
    from lsx.experiments.manifold import _pm

    assert _pm([0.5]) == "0.50 (n = 1)"
    assert _pm([1.0, 3.0]) == "2.00 ± 1.41"
