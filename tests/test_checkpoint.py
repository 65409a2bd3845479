"""Checkpoint safety: safetensors only, clear errors, atomic writes."""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
from pathlib import Path

import pytest
import torch

from lsx.checkpoint import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    inspect_run,
    list_runs,
    load_checkpoint,
    read_header,
    save_checkpoint,
    weights_sha256,
)
from lsx.errors import CheckpointError
from lsx.files import atomic_write_with
from lsx.models import build_model, make_config

ROOT = Path(__file__).resolve().parents[1]


def make_run(path: Path, kind: str = "ae", **fields) -> torch.nn.Module:
    config = make_config(kind, input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16, **fields)
    model = build_model(config)
    save_checkpoint(model, config, path, data={"spec": "digits"})
    return model


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_pickle_renamed_to_safetensors_is_refused_and_never_run(tmp_path):
    make_run(tmp_path)
    marker = tmp_path / "marker.txt"
    (tmp_path / WEIGHTS_NAME).write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(CheckpointError, match="is a pickle or torch.save archive"):
        load_checkpoint(tmp_path)
    assert not marker.exists()


def test_torch_save_file_renamed_is_refused(tmp_path):
    make_run(tmp_path)
    torch.save({"w": torch.zeros(2)}, tmp_path / WEIGHTS_NAME)
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_checkpoint(tmp_path)


def test_folder_with_only_a_pickle_is_refused(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match=r"holds model.pt but no model.safetensors"):
        load_checkpoint(tmp_path)


def test_every_torch_load_in_lsx_passes_weights_only_true():
    calls = []
    for path in (ROOT / "lsx").rglob("*.py"):
        for line in path.read_text().splitlines():
            if "torch.load(" in line and not line.strip().startswith("#"):
                calls.append((path.name, line))
    assert calls, "expected the resume path to use torch.load"
    for name, line in calls:
        assert "weights_only=True" in line, f"{name}: {line}"
    loader = (ROOT / "lsx" / "checkpoint.py").read_text()
    assert "torch.load(" not in loader  # user-facing weights go through safetensors only


def _corrupt_variants(good: bytes) -> dict[str, bytes]:
    (n,) = struct.unpack("<Q", good[:8])
    header = good[8 : 8 + n]
    return {
        "header_too_large": struct.pack("<Q", 200_000_000) + good[8:],
        "two_bytes": good[:2],
        "bad_json": struct.pack("<Q", n) + b"{" * n + good[8 + n :],
        "truncated": good[:-4],
        "trailing": good + b"\0" * 8,
        "random": os.urandom(64),
        "header_only": struct.pack("<Q", n) + header,
    }


@pytest.mark.parametrize(
    "variant",
    ["header_too_large", "two_bytes", "bad_json", "truncated", "trailing", "random", "header_only"],
)
def test_crafted_weights_are_reported_as_corrupt(tmp_path, variant):
    make_run(tmp_path)
    good = (tmp_path / WEIGHTS_NAME).read_bytes()
    (tmp_path / WEIGHTS_NAME).write_bytes(_corrupt_variants(good)[variant])
    with pytest.raises(CheckpointError, match=r"corrupt or not a safetensors file|could not be"):
        load_checkpoint(tmp_path)


def test_wrong_latent_dim_names_the_tensor_both_shapes_and_the_field(tmp_path):
    make_run(tmp_path)
    header = json.loads((tmp_path / CONFIG_NAME).read_text())
    header["config"]["latent_dim"] = 4
    (tmp_path / CONFIG_NAME).write_text(json.dumps(header))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path)
    msg = str(info.value)
    assert "latent_dim=4" in msg
    assert re.search(r"encoder\.net\.\d+\.weight: file has \(3, 16\), config needs \(4, 16\)", msg)


def test_config_of_another_kind_is_explained(tmp_path):
    make_run(tmp_path, "vae")
    header = json.loads((tmp_path / CONFIG_NAME).read_text())
    header["config"] = {
        k: v for k, v in header["config"].items() if k not in ("beta", "likelihood")
    }
    header["config"]["kind"] = "ae"
    (tmp_path / CONFIG_NAME).write_text(json.dumps(header))
    with pytest.raises(CheckpointError, match=r"kind='ae'.*\n.*file has"):
        load_checkpoint(tmp_path)


def test_unknown_kind_in_config(tmp_path):
    make_run(tmp_path)
    header = json.loads((tmp_path / CONFIG_NAME).read_text())
    header["config"]["kind"] = "gan"
    (tmp_path / CONFIG_NAME).write_text(json.dumps(header))
    with pytest.raises(CheckpointError, match=r"unknown model kind 'gan'; known kinds: ae, dae"):
        load_checkpoint(tmp_path)


def test_missing_files_and_versions_give_distinct_errors(tmp_path):
    with pytest.raises(CheckpointError, match="is not a folder"):
        load_checkpoint(tmp_path / "nope")
    make_run(tmp_path)
    (tmp_path / CONFIG_NAME).write_text("{not json")
    with pytest.raises(CheckpointError, match="is not valid JSON"):
        load_checkpoint(tmp_path)
    (tmp_path / CONFIG_NAME).write_text(json.dumps({"format_version": 99, "lsx_version": "9.0"}))
    with pytest.raises(CheckpointError, match=r"format_version 99; this lsx .* reads 1.*lsx 9.0"):
        load_checkpoint(tmp_path)
    (tmp_path / CONFIG_NAME).unlink()
    with pytest.raises(CheckpointError, match="has no config.json"):
        load_checkpoint(tmp_path)
    other = tmp_path / "other"
    make_run(other)
    (other / WEIGHTS_NAME).unlink()
    with pytest.raises(CheckpointError, match="has no model.safetensors"):
        read_header(other)


def test_config_json_is_sorted_and_metadata_are_strings(tmp_path):
    from safetensors import safe_open

    make_run(tmp_path)
    text = (tmp_path / CONFIG_NAME).read_text()
    header = json.loads(text)
    assert text == json.dumps(header, indent=2, sort_keys=True) + "\n"
    assert header["kind"] == "ae"
    assert header["config"]["kind"] == "ae"
    with safe_open(str(tmp_path / WEIGHTS_NAME), "pt") as fh:
        meta = fh.metadata()
    assert meta == {"kind": "ae", "format_version": "1", "lsx_version": header["lsx_version"]}


def test_failed_write_leaves_previous_file_and_no_temp(tmp_path):
    model = make_run(tmp_path)
    before = weights_sha256(tmp_path)
    mode = (tmp_path / WEIGHTS_NAME).stat().st_mode

    def boom(path: Path) -> None:
        path.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write_with(tmp_path / WEIGHTS_NAME, boom)
    assert weights_sha256(tmp_path) == before
    assert (tmp_path / WEIGHTS_NAME).stat().st_mode == mode
    assert not list(tmp_path.glob(".tmp-*"))
    loaded, _ = load_checkpoint(tmp_path)
    assert torch.equal(
        loaded.state_dict()["encoder.net.1.weight"], model.state_dict()["encoder.net.1.weight"]
    )


def test_list_runs_lists_valid_runs_and_says_what_it_skipped(tmp_path):
    make_run(tmp_path / "good-ae")
    make_run(tmp_path / "good-vae", "vae")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hello")
    (tmp_path / "stray.txt").write_text("x")
    make_run(tmp_path / "broken")
    (tmp_path / "broken" / WEIGHTS_NAME).write_bytes(b"garbage!")
    torch.save({}, tmp_path / "junk" / "model.pth")
    runs, skipped = list_runs(tmp_path)
    assert [r.name for r in runs] == ["good-ae", "good-vae"]
    reasons = dict(skipped)
    assert set(reasons) == {"junk", "stray.txt", "broken"}
    assert "never unpickles" in reasons["junk"]
    assert "corrupt" in reasons["broken"]
    assert inspect_run(tmp_path / "good-vae").kind == "vae"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("stopped", r"incomplete: stopped at epoch 3/20 \(resume with python -m lsx train --out "),
        ("running", r"incomplete: still training, or interrupted, at epoch 3/20"),
        ("failed", r"incomplete: training failed at epoch 3/20: NaN again \(fix the cause"),
    ],
)
def test_list_runs_skips_incomplete_runs_and_says_how_to_resume(tmp_path, state, expected):
    from lsx.checkpoint import STATUS_NAME
    from lsx.files import atomic_write_json

    make_run(tmp_path / "done")
    atomic_write_json(tmp_path / "done" / STATUS_NAME, {"state": "completed", "epoch": 20})
    make_run(tmp_path / "early")
    atomic_write_json(tmp_path / "early" / STATUS_NAME, {"state": "early_stopped", "epoch": 9})
    make_run(tmp_path / "plain")  # save_checkpoint alone: no status.json, still a valid run
    make_run(tmp_path / "half")
    status = {"state": state, "epoch": 3, "epochs": 20, "message": "NaN again\nmore"}
    atomic_write_json(tmp_path / "half" / STATUS_NAME, status)
    runs, skipped = list_runs(tmp_path)
    assert [r.name for r in runs] == ["done", "early", "plain"]
    reason = dict(skipped)["half"]
    assert re.match(expected, reason), reason
    assert "--name half --resume" in reason
    load_checkpoint(tmp_path / "half")  # the last good checkpoint itself still loads


def test_a_run_folder_linked_from_outside_the_runs_folder_is_skipped(tmp_path):
    # Rule: the runs folder is the one place runs are read from. A link inside it to a run
    # elsewhere is skipped with how to fix it (the target is not named); an alias of a run that
    # lives in the folder itself is fine.
    root, elsewhere = tmp_path / "checkpoints", tmp_path / "private"
    make_run(root / "mine")
    make_run(elsewhere / "theirs")
    (root / "linked").symlink_to(elsewhere / "theirs", target_is_directory=True)
    (root / "alias").symlink_to(root / "mine", target_is_directory=True)
    (root / "relative").symlink_to(Path("..") / "private" / "theirs")
    runs, skipped = list_runs(root)
    assert [r.name for r in runs] == ["alias", "mine"]
    reasons = dict(skipped)
    assert set(reasons) == {"linked", "relative"}
    for name in ("linked", "relative"):
        assert reasons[name].startswith(f"{name} is a link to a folder outside {root}")
        assert "copy the run into the folder" in reasons[name]
        assert "LSX_CHECKPOINTS" in reasons[name]
        assert str(elsewhere) not in reasons[name]
