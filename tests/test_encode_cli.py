"""``python -m lsx encode``: a run's dataset, an npy file and bad input, through lsx.cli.main."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lsx.analysis.embedding import embed
from lsx.checkpoint import load_checkpoint, read_config, save_checkpoint
from lsx.cli import main
from lsx.data import load_dataset
from lsx.latents.store import open_store, store_dir_for
from lsx.models import build_model, dataset_fields, make_config
from lsx.train import data_info


@pytest.fixture
def run(tmp_path):
    ds = load_dataset("digits")
    torch.manual_seed(0)
    config = make_config("ae", **dataset_fields("ae", ds), latent_dim=4, hidden_dim=16)
    save_checkpoint(build_model(config).eval(), config, tmp_path / "run", data=data_info(ds))
    return tmp_path / "run"


def _argv(run, *more):
    return ["encode", "--run", str(run), "--device", "cpu", *more]


def test_encode_the_runs_own_dataset(run, capsys):
    assert main(_argv(run, "--batch-size", "256")) == 0
    out, err = capsys.readouterr()
    store_dir = store_dir_for(run, "digits", "all")
    last = out.strip().splitlines()[-1]
    assert last.startswith("1,797 rows x 4 dims in ")
    assert "rows/s" in last
    assert last.endswith(str(store_dir))
    assert "1,797/1,797 rows (100 %)" in err
    ds = load_dataset("digits")
    model, _ = load_checkpoint(run)
    store = open_store(store_dir)
    x = np.concatenate([ds.x_train, ds.x_test])
    np.testing.assert_array_equal(store.z, embed(model, x, batch_size=256).z)
    assert store.manifest["batch_size"] == 256


def test_encode_an_npy_test_split_then_a_retrained_run_recomputes(run, tmp_path, capsys):
    x = np.random.default_rng(0).integers(0, 256, size=(300, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "d.npy", x)
    spec = f"npy:{tmp_path / 'd.npy'}"
    assert main(_argv(run, "--data", spec, "--split", "test")) == 0
    store = open_store(store_dir_for(run, spec, "test"))
    assert store.n == 30
    capsys.readouterr()
    torch.manual_seed(1)  # "retrain": other weights in the same run folder
    config = read_config(run)
    save_checkpoint(build_model(config).eval(), config, run, data=data_info(load_dataset("digits")))
    assert main(_argv(run, "--data", spec, "--split", "test")) == 0
    assert "recomputed: the store was made with checkpoint_sha" in capsys.readouterr().err


def test_bad_input_prints_the_message_and_exits_2(run, tmp_path, capsys):
    assert main(_argv(run, "--data", "npy:" + str(tmp_path / "missing.npy"))) == 2
    assert "does not exist" in capsys.readouterr().err
    np.save(tmp_path / "big.npy", np.zeros((10, 16, 16), dtype=np.uint8))
    assert main(_argv(run, "--data", f"npy:{tmp_path / 'big.npy'}")) == 2
    assert "--image-size 8" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(_argv(run, "--data", f"folder:{tmp_path / 'empty'}")) == 2
    assert "no class subfolders" in capsys.readouterr().err
    assert main(_argv(run, "--data", "digitz")) == 2
    assert "did you mean 'digits'" in capsys.readouterr().err
