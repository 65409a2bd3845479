"""``python -m lsx reproduce --budget quick``: every claim's pipeline end to end (not its
verdict), the report format, reuse of finished runs, and the verdict rule."""

from __future__ import annotations

import json
import time

import pytest

from lsx.cli import main
from lsx.experiments.common import compare, pm
from lsx.experiments.reproduce import CLAIMS


def test_quick_budget_writes_a_report_per_claim_and_reuses_runs(tmp_path, capsys):
    start = time.perf_counter()
    assert main(["reproduce", "--budget", "quick", "--out", str(tmp_path)]) == 0
    assert time.perf_counter() - start < 60  # the CI budget for all four claims
    for claim in CLAIMS:
        report = json.loads((tmp_path / f"{claim}.json").read_text())
        assert report["claim"] == claim
        assert report["budget"] == "quick"
        assert report["seeds"] == [0]
        assert report["verdict"] == "no verdict (n = 1)"  # one seed: never a verdict
        assert report["verdicts"]
        assert report["wall_s"] > 0
        assert report["command"] == f"python -m lsx reproduce {claim} --budget quick --seeds 1"
        md = (tmp_path / f"{claim}.md").read_text()
        assert md.index("## Verdict rule") < md.index("## Results") < md.index("## Verdicts")
        assert report["rule"] in md
        assert "± 0.0" not in md
    sae = json.loads((tmp_path / "sae.json").read_text())
    row = sae["rows"][0]
    for key in ("sae_nearest", "pixels_logreg", "ae_knn5", "ae_logreg", "supervised"):
        assert 0.0 <= row[key] <= 1.0
    assert row["pixels_logreg"] > 0.9  # raw pixels are a strong baseline on digits
    assert "(n = 1)" in sae["table"]
    assert not row["sae_reused"]
    atoms = json.loads((tmp_path / "atoms.json").read_text())
    vq = ["vqvae", "vqvae-ema", "vqvae-ema-restart-kmeans"]
    assert [r["model"] for r in atoms["rows"]] == ["scvae", *vq, "vae", "ae"]
    assert atoms["best_vqvae"] in vq
    best_psnr = max(r["psnr"] for r in atoms["rows"] if r["model"] in vq)
    assert next(r for r in atoms["rows"] if r["model"] == atoms["best_vqvae"])["psnr"] == best_psnr
    assert atoms["verdicts"][0]["setting"].endswith(f"{atoms['best_vqvae']} (best VQ-VAE) (PSNR)")
    assert all(r["restarts"] == 0 for r in atoms["rows"] if r["model"] in vq[:2])  # restarts off
    cons = json.loads((tmp_path / "consistency.json").read_text())
    assert {r["consistency"] for r in cons["rows"]} == {0.0, 1e-3, 1e-2, 1e-1, 1.0}
    assert cons["settings"]["latent_dim"] == 32
    assert cons["settings"]["arch"] == "conv"
    out = capsys.readouterr().out
    assert all(claim in out for claim in CLAIMS)
    # again: the finished runs are reused (same full config and data hash)
    assert main(["reproduce", "sae", "--budget", "quick", "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "sae.json").read_text())["rows"][0]
    assert again["sae_reused"]
    assert again["ae_reused"]
    assert again["sae_nearest"] == row["sae_nearest"]


def test_unknown_claim_and_bad_seeds_are_messages(tmp_path, capsys):
    assert main(["reproduce", "nope", "--budget", "quick", "--out", str(tmp_path)]) == 2
    assert "Unknown claim 'nope'. Choose from sae, atoms" in capsys.readouterr().err
    assert main(["reproduce", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert "--seeds takes a number of seeds >= 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("a", "b", "higher", "expected"),
    [
        ([0.9, 0.92, 0.91], [0.8, 0.81, 0.79], True, "wins"),
        ([0.9, 0.92, 0.91], [0.8, 0.81, 0.79], False, "loses"),
        ([0.9, 0.95, 0.85], [0.88, 0.9, 0.86], True, "ties"),  # gap 0.02 < 0.05 + 0.02
        ([0.9], [0.8, 0.81], True, "n = 1"),
    ],
)
def test_verdict_rule(a, b, higher, expected):
    assert compare(a, b, higher_is_better=higher) == expected


def test_cells_print_n_equals_1_for_one_value():
    assert pm([0.5]) == "0.50 (n = 1)"
    assert pm([1.0, 3.0]) == "2.00 ± 1.41"
    assert pm([None]) == "–"
