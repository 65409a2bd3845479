"""Per-epoch latent snapshots (lsx.snapshots, TrainConfig.snapshots): written atomically for a
fixed sample, one file per epoch plus epoch 0, and without changing the training run."""

from __future__ import annotations

import json

import numpy as np
import torch

from lsx.config import TrainConfig
from lsx.models import build_model, make_config
from lsx.snapshots import INDEX_NAME, SNAPSHOT_DIR, read_snapshots, snapshot_epochs
from lsx.train import Trainer


def fit(ds, run_dir, snapshots: int, epochs: int = 3):
    torch.manual_seed(0)
    config = make_config("vae", input_shape=ds.input_shape, latent_dim=2, hidden_dim=16)
    model = build_model(config)
    cfg = TrainConfig(epochs=epochs, batch_size=8, device="cpu", snapshots=snapshots)
    result = Trainer(model, ds, cfg, run_dir).fit()
    return model, result


def test_snapshots_per_epoch_of_a_fixed_per_class_sample(tiny_dataset, tmp_path):
    model, _ = fit(tiny_dataset, tmp_path, snapshots=6)
    assert snapshot_epochs(tmp_path) == [0, 1, 2, 3]
    index = json.loads((tmp_path / SNAPSHOT_DIR / INDEX_NAME).read_text())
    assert index["split"] == "test"
    assert len(index["ids"]) == 6
    assert np.bincount(index["labels"]).tolist() == [3, 3]  # per class, not the first 6
    assert index["labels"] == tiny_dataset.y_test[index["ids"]].tolist()
    frames = read_snapshots(tmp_path, [0, 3])
    assert frames[0].shape == (6, 2)
    assert frames[0].dtype == np.float32
    assert not np.allclose(frames[0], frames[1])  # the latent space moved while training
    with torch.no_grad():  # the last snapshot is the trained model's encoding
        x = torch.from_numpy(tiny_dataset.x_test[index["ids"]].copy())
        np.testing.assert_allclose(frames[1], model.eval().encode(x).numpy(), atol=1e-6)
    assert not list((tmp_path / SNAPSHOT_DIR).glob(".tmp-*"))


def test_snapshots_do_not_change_the_training_run(tiny_dataset, tmp_path):
    with_snaps, a = fit(tiny_dataset, tmp_path / "a", snapshots=10)
    without, b = fit(tiny_dataset, tmp_path / "b", snapshots=0)
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    for key, value in with_snaps.state_dict().items():
        assert torch.equal(value, without.state_dict()[key]), key
    assert not (tmp_path / "b" / SNAPSHOT_DIR).exists()  # off by default (opt-in)


def test_resume_keeps_the_sample_and_adds_the_new_epochs(tiny_dataset, tmp_path):
    fit(tiny_dataset, tmp_path, snapshots=4, epochs=2)
    first = json.loads((tmp_path / SNAPSHOT_DIR / INDEX_NAME).read_text())
    torch.manual_seed(0)
    config = make_config("vae", input_shape=tiny_dataset.input_shape, latent_dim=2, hidden_dim=16)
    cfg = TrainConfig(epochs=4, batch_size=8, device="cpu", snapshots=4)
    trainer = Trainer(build_model(config), tiny_dataset, cfg, tmp_path)
    trainer.resume()
    trainer.fit()
    assert snapshot_epochs(tmp_path) == [0, 1, 2, 3, 4]
    assert json.loads((tmp_path / SNAPSHOT_DIR / INDEX_NAME).read_text()) == first
