"""``python -m lsx eval``: every shipped demo kind prints its headline metrics (accuracy for sae,
atoms or codes used for scvae/vqvae, AU/MI/NLL for a VAE, reconstruction for all), as a table or
JSON; numbers checked against independent computations; unknown runs are messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lsx.checkpoint import load_checkpoint
from lsx.cli import main
from lsx.data import load_dataset

ROOT = Path(__file__).resolve().parents[1] / "checkpoints"
SMALL = ["--max-samples", "200", "--nll-samples", "10"]


def evaluate(capsys: pytest.CaptureFixture, run: str, *extra: str) -> dict:
    assert main(["eval", "--run", run, "--out", str(ROOT), *SMALL, *extra, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def values(report: dict) -> dict[str, float]:
    return {m["name"]: m["value"] for m in report["metrics"]}


def test_reconstruction_is_in_common_units_and_matches_a_direct_computation(capsys):
    report = evaluate(capsys, "demo-ae-digits")
    got = values(report)
    assert report["kind"] == "ae"
    assert report["label"] == "AE"  # an MLP on 8x8: not "CAE"
    assert (report["n_samples"], report["n_available"]) == (200, 360)
    assert list(got) == ["reconstruction MSE", "PSNR", "SSIM"]  # nothing kind-specific
    # oracle: the first 200 of the test split are not the sample, so recompute on all 360
    full = evaluate(capsys, "demo-ae-digits", "--max-samples", "360")
    model, _ = load_checkpoint(ROOT / "demo-ae-digits")
    x = load_dataset("digits").x_test
    with torch.inference_mode():
        x_hat = model.eval().decode(model.encode(torch.from_numpy(x.copy()))).numpy()
    mse = ((x_hat - x) ** 2).reshape(len(x), -1).mean(1)
    assert values(full)["reconstruction MSE"] == pytest.approx(mse.mean(), rel=1e-5)
    assert values(full)["PSNR"] == pytest.approx((10 * np.log10(1 / mse)).mean(), rel=1e-5)


def test_sae_prints_nearest_centre_accuracy_and_labels_in_sphere_as_not_accuracy(capsys):
    got = values(evaluate(capsys, "demo-sae-mnist5k"))
    assert got["nearest-centre accuracy (digit)"] >= 0.9  # the shipped demo: 0.98 on 500
    assert 0.0 <= got["inside own sphere (digit)"] <= 1.0
    assert "reconstruction MSE" in got
    main(["eval", "--run", "demo-sae-mnist5k", "--out", str(ROOT), *SMALL])
    text = capsys.readouterr().out
    assert text.startswith("demo-sae-mnist5k · sae (SAE) · mnist5k test split, 200 of 1,000")
    assert "nearest-centre accuracy (digit)" in text
    assert "not an accuracy" in text


def test_vae_prints_active_units_mutual_information_and_nll(capsys):
    report = evaluate(capsys, "demo-vae-mnist5k")
    got = values(report)
    assert 1 <= got["active units"] <= 16
    assert 0.0 < got["mutual information I(x; z)"] < np.log(200) + 0.5
    final = json.loads((ROOT / "demo-vae-mnist5k" / "metrics.jsonl").read_text().splitlines()[-1])
    # importance sampling tightens the bound: NLL below the negative ELBO the run logged
    assert 0.0 < got["NLL"] < final["test_loss"] + 2.0
    assert [m["unit"] for m in report["metrics"] if m["name"] == "NLL"] == ["nats"]


@pytest.mark.parametrize(
    ("run", "what", "total"),
    [("demo-scvae-mnist5k", "atoms", 64), ("demo-vqvae-mnist5k", "codebook vectors", 64)],
)
def test_dictionary_kinds_print_psnr_and_how_many_atoms_or_codes_are_used(capsys, run, what, total):
    report = evaluate(capsys, run)
    got = values(report)
    assert 1 <= got[f"{what} used"] <= total
    assert [m["unit"] for m in report["metrics"] if m["name"] == f"{what} used"] == [f"of {total}"]
    assert 1.0 <= got[f"{what} perplexity"] <= got[f"{what} used"] + 1e-9
    assert got["PSNR"] > 10.0


def test_an_unknown_run_is_a_message_naming_the_runs(capsys):
    assert main(["eval", "--run", "no-such-run", "--out", str(ROOT)]) == 2
    err = capsys.readouterr().err
    assert "No run 'no-such-run' in" in err
    assert "demo-vae-mnist5k" in err
    assert main(["eval", "--run", "demo-ae-digits", "--out", str(ROOT), "--max-samples", "0"]) == 2
    assert "--max-samples must be >= 1" in capsys.readouterr().err
