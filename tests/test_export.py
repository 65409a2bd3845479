"""lsx.export and ``python -m lsx export``: CSV/Parquet/.npy equal the arrays; empty selections
and unknown tags are refused with a message."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch

from lsx.checkpoint import save_checkpoint
from lsx.cli import main
from lsx.data import load_dataset
from lsx.errors import ConfigError
from lsx.export import (
    export_run,
    export_table,
    latent_columns,
    read_table,
    table_bytes,
    write_table,
)
from lsx.models import build_model, make_config
from lsx.tags import save_tag
from lsx.train import data_info


def _table(n: int = 50, d: int = 3) -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(0)
    arrays = {
        "ids": np.arange(n) * 2,
        "z": rng.normal(size=(n, d)).astype(np.float32),
        "coords": rng.normal(size=(n, 2)).astype(np.float32),
        "err": rng.random(n).astype(np.float32),
        "labels": {"digit": np.array([str(i % 10) for i in range(n)], dtype=object)},
    }
    frame = export_table(
        arrays["ids"], 40, arrays["labels"], arrays["z"], arrays["coords"], arrays["err"], "t"
    )
    return frame, arrays


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet_equal_the_arrays(tmp_path, fmt):
    frame, a = _table()
    back = read_table(write_table(frame, tmp_path / f"sel.{fmt}"))
    np.testing.assert_array_equal(back["id"], a["ids"])
    assert back["split"].tolist() == ["train"] * 20 + ["test"] * 30  # ids 0..38 train, 40.. test
    np.testing.assert_array_equal(back["index"][20:], a["ids"][20:] - 40)
    np.testing.assert_allclose(latent_columns(back), a["z"], rtol=1e-6)
    np.testing.assert_allclose(back[["map_1", "map_2"]].to_numpy(), a["coords"], rtol=1e-6)
    np.testing.assert_allclose(back["recon_error"], a["err"], rtol=1e-6)
    assert back["label_digit"].astype(str).tolist() == a["labels"]["digit"].tolist()
    assert set(back["tag"]) == {"t"}


def test_npy_holds_the_latents():
    frame, a = _table()
    z = np.load(io.BytesIO(table_bytes(frame, "npy")), allow_pickle=False)
    np.testing.assert_array_equal(z, a["z"])


def test_empty_selection_and_bad_format_are_refused():
    with pytest.raises(ConfigError, match="Nothing to export"):
        export_table(np.array([], dtype=int), 0, {}, np.zeros((0, 2)), np.zeros((0, 2)), [])
    frame, _ = _table()
    with pytest.raises(ConfigError, match="Unknown export format"):
        table_bytes(frame, "xlsx")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    ds = load_dataset("digits")
    torch.manual_seed(0)
    config = make_config("vae", input_shape=ds.input_shape, latent_dim=3, hidden_dim=16)
    root = tmp_path_factory.mktemp("runs")
    save_checkpoint(build_model(config), config, root / "tiny", data=data_info(ds))
    return root / "tiny"


def test_export_run_and_the_cli_round_trip(run_dir, tmp_path, capsys):
    save_tag(run_dir, "some sevens", [1, 5, 1500])
    frame = export_run(run_dir, tag="some sevens")
    assert frame["id"].tolist() == [1, 5, 1500]
    assert frame.shape[1] == 3 + 1 + 3 + 2 + 1 + 1  # id split index, label, z, map, error, tag
    out = tmp_path / "x.parquet"
    code = main(["export", "--run", "tiny", "--root", str(run_dir.parent), "--tag",
                 "some sevens", "--format", "parquet", "--out", str(out)])  # fmt: skip
    assert code == 0
    assert "wrote 3 rows" in capsys.readouterr().out
    pd.testing.assert_frame_equal(read_table(out), frame)
    assert main(["export", "--run", str(run_dir), "--tag", "ghost", "--out", str(out)]) == 2
    assert "no tag 'ghost'" in capsys.readouterr().err
    assert main(["export", "--run", "nope", "--root", str(tmp_path)]) == 2
    assert "No run 'nope'" in capsys.readouterr().err
    assert main(["export", "--run", str(run_dir), "--ids", "1,x"]) == 2
    assert "comma-separated integers" in capsys.readouterr().err
