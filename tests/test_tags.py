"""lsx.tags: one tag file per run, atomic, survives a restart; bad names get a clear message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lsx.tags import (
    SEVERAL,
    TAGS_NAME,
    UNTAGGED,
    TagError,
    check_tag_name,
    delete_tag,
    read_tags,
    save_tag,
    tag_ids,
    tag_labels,
)


def test_round_trip_survives_a_restart(tmp_path):
    assert read_tags(tmp_path) == {}
    save_tag(tmp_path, "  blurry 7s ", [17, 3, 3, 204])
    save_tag(tmp_path, "outliers", np.array([5]))
    doc = json.loads((tmp_path / TAGS_NAME).read_text())
    assert doc["tags"]["blurry 7s"]["ids"] == [3, 17, 204]  # stripped name, sorted unique ids
    assert not (tmp_path / "config.json").exists()  # never inside config.json
    code = (
        "import sys; from lsx.tags import read_tags; "
        "print({k: v.tolist() for k, v in read_tags(sys.argv[1]).items()})"
    )  # a fresh interpreter: what a restarted server reads
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).parents[1])  # fmt: skip
    assert out.stdout.strip() == "{'blurry 7s': [3, 17, 204], 'outliers': [5]}"
    remaining = delete_tag(tmp_path, "outliers")
    assert list(remaining) == ["blurry 7s"]
    assert list(read_tags(tmp_path)) == ["blurry 7s"]
    assert list(tmp_path.iterdir()) == [tmp_path / TAGS_NAME]  # no temp or lock files left


def test_two_writers_keep_each_others_tags(tmp_path):
    # two tabs = two sessions that each read, edit and write: neither loses the other's tag
    save_tag(tmp_path, "a", [1])
    save_tag(tmp_path, "b", [2])
    save_tag(tmp_path, "a", [1, 4])  # replace
    assert {k: v.tolist() for k, v in read_tags(tmp_path).items()} == {"a": [1, 4], "b": [2]}


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("../evil", "path or control characters"),
        ("a/b", "path or control characters"),
        ("a\\b", "path or control characters"),
        ("tab\there", "path or control characters"),
        ("x" * 10_000, "10,000 characters long"),
        ("   ", "empty"),
        (7, "must be text"),
    ],
)
def test_bad_tag_names(tmp_path, name, match):
    with pytest.raises(TagError, match=match):
        save_tag(tmp_path, name, [1])
    assert not (tmp_path / TAGS_NAME).exists()


def test_bad_ids_missing_tags_and_corrupt_files(tmp_path):
    with pytest.raises(TagError, match="would be empty"):
        save_tag(tmp_path, "none", [])
    with pytest.raises(TagError, match="below 10"):
        save_tag(tmp_path, "big", [3, 10], n_samples=10)
    with pytest.raises(TagError, match="no tag 'ghost'"):
        tag_ids(tmp_path, "ghost")
    with pytest.raises(TagError, match="no tag 'ghost'"):
        delete_tag(tmp_path, "ghost")
    (tmp_path / TAGS_NAME).write_text('{"tags": {"x": {"ids": [-1]}}}')
    with pytest.raises(TagError, match="ids >= 0"):
        read_tags(tmp_path)
    (tmp_path / TAGS_NAME).write_text("not json")
    with pytest.raises(TagError, match="not valid JSON"):
        read_tags(tmp_path)
    with pytest.raises(TagError, match="does not exist"):
        save_tag(tmp_path / "missing", "a", [1])
    assert check_tag_name("ok: 7s (blurry)") == "ok: 7s (blurry)"


def test_tag_labels_for_colouring():
    tags = {"a": np.array([1, 2]), "b": np.array([2, 3])}
    assert tag_labels(tags, np.array([0, 1, 2, 3])).tolist() == [UNTAGGED, "a", SEVERAL, "b"]
