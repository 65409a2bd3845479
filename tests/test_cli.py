"""The CLI's listing commands and the reproducible demo checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from lsx.checkpoint import METRICS_NAME, list_runs
from lsx.cli import main
from lsx.demos import DEMOS
from lsx.files import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "checkpoints"


def test_every_demo_checkpoint_is_shipped_valid_and_small():
    runs, skipped = list_runs(SHIPPED)
    names = {r.name for r in runs}
    assert {name for name, *_ in DEMOS} <= names
    assert not [s for s in skipped if s[0].startswith("demo-")]
    for name, kind, data, _, train in DEMOS:
        run = SHIPPED / name
        assert (run / "model.safetensors").stat().st_size < 3_000_000
        header = json.loads((run / "config.json").read_text())
        assert header["kind"] == kind
        assert header["data"]["spec"] == data
        assert header["train"]["epochs"] == train["epochs"]
        assert len(read_jsonl(run / METRICS_NAME)) == train["epochs"]


def test_demo_regeneration_is_deterministic_and_matches_the_shipped_run(tmp_path):
    name = "demo-ae-digits"
    for out in (tmp_path / "a", tmp_path / "b"):
        assert main(["demo", "--only", name, "--out", str(out)]) == 0
    a = load_file(tmp_path / "a" / name / "model.safetensors")
    b = load_file(tmp_path / "b" / name / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "a" / name / "train_state.pt").exists()
    assert not list((tmp_path / "a").glob(".tmp-*"))
    # Against the shipped run: same config; the same loss up to CPU kernel differences.
    ours = json.loads((tmp_path / "a" / name / "config.json").read_text())
    shipped = json.loads((SHIPPED / name / "config.json").read_text())
    assert ours["config"] == shipped["config"]
    assert ours["data"]["hash"] == shipped["data"]["hash"]
    loss = read_jsonl(tmp_path / "a" / name / METRICS_NAME)[-1]["test_loss"]
    shipped_loss = read_jsonl(SHIPPED / name / METRICS_NAME)[-1]["test_loss"]
    assert abs(loss - shipped_loss) / shipped_loss < 0.05


def test_listing_commands_print_what_is_there(capsys, tmp_path):
    assert main(["runs", "--out", str(SHIPPED)]) == 0
    out = capsys.readouterr().out
    assert "demo-vae-mnist5k" in out
    assert "vae" in out
    (tmp_path / "junk").mkdir()
    assert main(["runs", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "skipped junk: " in out
    assert "no runs in" in out
    assert main(["datasets"]) == 0
    assert "textures" in capsys.readouterr().out
    assert main(["kinds"]) == 0
    assert "noise_level=0.3" in capsys.readouterr().out


def test_python_m_lsx_train_module_entry_point(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lsx.train",
            "--model",
            "vae",
            "--data",
            "digits",
            "--out",
            str(tmp_path),
            "--name",
            "m",
            "--epochs",
            "1",
            "--latent-dim",
            "2",
            "--beta",
            "0.5",
            "--no-progress",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    header = json.loads((tmp_path / "m" / "config.json").read_text())
    assert header["config"]["beta"] == 0.5
    assert header["data"]["hash"]


def test_a_closed_pipe_ends_a_listing_quietly():
    # the reader goes away before the listing is printed (as `lsx runs | head` does)
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "lsx", "runs"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141
    assert b"Traceback" not in err
