"""``python -m lsx search``: text search and image lookup from the command line."""

from __future__ import annotations

import json

import pytest
import torch

from lsx.checkpoint import save_checkpoint
from lsx.cli import main
from lsx.data import load_dataset
from lsx.models import build_model, dataset_fields, make_config
from lsx.train import data_info
from tests.data.upload_cases import encode, gradient


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    ds = load_dataset("digits")
    for kind in ("sae", "ae"):
        torch.manual_seed(0)
        config = make_config(kind, **dataset_fields(kind, ds), latent_dim=10, hidden_dim=16)
        save_checkpoint(build_model(config).eval(), config, root / kind, data=data_info(ds))
    return root


def test_text_search_prints_the_parsed_query_and_results(runs, capsys):
    assert main(["search", "--run", str(runs / "sae"), "--text", "Seven", "-k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["query"] == {"digit": "7"}
    assert len(out["results"]) == 3
    assert "configured centre" in out["rule"]


def test_image_lookup_reports_each_file(runs, tmp_path, capsys):
    good, bad = tmp_path / "a.png", tmp_path / "b.png"
    good.write_bytes(encode(gradient()))
    bad.write_bytes(b"nope")
    rc = main(["search", "--run", str(runs / "ae"), "--image", str(good), str(bad), "-k", "2"])
    captured = capsys.readouterr()
    assert rc == 1  # one file could not be read
    assert "class centroid" in captured.out
    assert "digit: " in captured.out
    assert "nearest: " in captured.out
    assert "b.png is not an image lsx can read" in captured.err


def test_text_search_needs_a_configured_run_and_known_words(runs, capsys):
    assert main(["search", "--run", str(runs / "ae"), "--text", "7"]) == 2
    assert "Use an sae run" in capsys.readouterr().err
    assert main(["search", "--run", str(runs / "sae"), "--text", "seven eight"]) == 2
    assert "contradictory" in capsys.readouterr().err
