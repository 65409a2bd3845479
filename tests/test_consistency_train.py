"""Consistency regularisation as a training option: the trainer, the CLI flags, resume, the bad
input of the issue, and the experiment command (tiny settings)."""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

import pytest
import torch

from lsx.checkpoint import METRICS_NAME
from lsx.cli import main
from lsx.config import TrainConfig
from lsx.data.transforms import TRANSFORM_SETS
from lsx.errors import ConfigError
from lsx.experiments.consistency import format_table, variants
from lsx.files import read_jsonl
from lsx.losses import diag_gaussian_kl
from lsx.models import build_model, make_config
from lsx.train import Trainer


def tiny(kind: str):
    torch.manual_seed(0)
    return build_model(make_config(kind, input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16))


@pytest.mark.parametrize("kind", ["vae", "iwae", "ae"])
def test_trainer_logs_the_consistency_term_and_keeps_the_plain_test_loss(kind, tiny_dataset):
    cfg = TrainConfig(epochs=2, batch_size=16, consistency=1.0, transforms="simple")
    result = Trainer(tiny(kind), tiny_dataset, cfg).fit()
    last = result.history[-1]
    assert last["train_consistency"] > 0
    assert "test_consistency" not in last  # the test loss is the model's own loss
    plain = Trainer(tiny(kind), tiny_dataset, TrainConfig(epochs=2, batch_size=16)).fit()
    assert "train_consistency" not in plain.history[-1]


def test_consistency_lowers_the_pair_kl_it_penalises(tiny_dataset):
    x = torch.from_numpy(tiny_dataset.x_test.copy())
    kls = []
    for lam in (0.0, 50.0):
        model = tiny("vae")
        extra = {"consistency": lam, "transforms": "large"} if lam else {}
        Trainer(model, tiny_dataset, TrainConfig(epochs=15, batch_size=16, lr=3e-3, **extra)).fit()
        model.eval()
        with torch.no_grad():
            x_t = TRANSFORM_SETS["large"](x, generator=torch.Generator().manual_seed(0))
            kls.append(float(diag_gaussian_kl(*model.posterior(x_t), *model.posterior(x)).mean()))
    assert kls[1] < 0.5 * kls[0]


def test_unsuitable_set_is_refused_before_training(tiny_dataset):
    cfg = TrainConfig(epochs=1, consistency=1.0, transforms="large_jitter")
    with pytest.raises(ConfigError, match=r"'large_jitter' includes colour jitter.*Use 'large'"):
        Trainer(tiny("vae"), tiny_dataset, cfg)


def test_cli_flags_record_the_options_and_resume_keeps_them(tmp_path, capsys):
    argv = ["train", "--model", "vae", "--data", "digits", "--out", str(tmp_path), "--name", "cr",
            "--epochs", "1", "--latent-dim", "2", "--hidden-dim", "16", "--no-progress",
            "--consistency", "0.5", "--transforms", "large",
            "--transform-strength", "0.5"]  # fmt: skip
    assert main(argv) == 0
    header = json.loads((tmp_path / "cr" / "config.json").read_text())
    assert header["train"]["consistency"] == 0.5
    assert header["train"]["transforms"] == "large"
    assert header["train"]["transform_strength"] == 0.5
    resume = ["train", "--out", str(tmp_path), "--name", "cr", "--resume", "--epochs", "2",
              "--no-progress"]  # fmt: skip
    assert main(resume) == 0
    metrics = read_jsonl(tmp_path / "cr" / METRICS_NAME)
    assert len(metrics) == 2
    assert all("train_consistency" in m for m in metrics)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--consistency", "-1"],
            "'consistency' field of TrainConfig must be a finite number >= 0",
        ),
        (["--consistency", "nan"], "'consistency' field of TrainConfig must be a finite number"),
        (["--consistency", "1", "--transforms", "spin"], "Unknown transform set 'spin'"),
        (
            ["--consistency", "1", "--transforms", "flips"],
            "does not preserve the meaning of digits",
        ),
        (["--model", "iwae", "--k", "0"], "'k' field of IWAEConfig must be an int >= 1"),
    ],
)
def test_cli_bad_input_is_a_message_not_a_traceback(tmp_path, capsys, flags, message):
    argv = ["train", "--data", "digits", "--out", str(tmp_path), "--name", "bad", "--epochs", "1",
            "--no-progress", *flags]  # fmt: skip
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bad" / "model.safetensors").exists()


def test_experiment_variants_and_table():
    names = [(v[0], v[1], v[4]) for v in variants(4.0, 5, [1.0])]
    assert names[:2] == [("vae", "vae", 0.0), ("vae", "vae-cr1", 1.0)]
    assert names[3] == ("beta-vae (beta=4)", "beta-vae-cr1", 1.0)
    assert names[4:] == [("iwae (k=5)", "iwae", 0.0), ("iwae (k=5)", "iwae-cr1", 1.0)]
    rows = [
        {"variant": "vae", "consistency": 0.0, "AU": 4, "accuracy": 0.8, "MI (nats)": None},
        {"variant": "vae", "consistency": 0.0, "AU": 6, "accuracy": 0.9, "MI (nats)": None},
    ]
    table = format_table(rows).splitlines()
    assert table[0].startswith("| model | CR lambda | seeds | AU | MI (nats) | NLL (nats)")
    assert table[2].startswith("| vae | – (plain) | 2 | 5.0 ± 1.4 | – | – | 0.850 ± 0.071 |")


def test_experiment_command_runs_and_reuses_finished_runs(tmp_path, capsys):
    argv = ["consistency-experiment", "--data", "digits", "--seeds", "0", "--epochs", "1",
            "--consistency", "1", "--hidden-dim", "16", "--nll-samples", "2",
            "--eval-points", "40", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["runs"]) == 6
    assert {r["consistency"] for r in results["runs"]} == {0.0, 1.0}
    assert all(r["NLL (nats)"] > 0 for r in results["runs"])
    table = (tmp_path / "table.md").read_text()
    assert "| iwae (k=5) | 1 | 1 |" in table
    assert main(argv) == 0  # again: every run is reused, none retrained
    again = json.loads((tmp_path / "results.json").read_text())
    assert all(r["train_s"] == 0.0 for r in again["runs"])
    assert main([*argv[:-2], "--consistency", "-1", "--out", str(tmp_path)]) == 2
    assert "must be a finite number >= 0" in capsys.readouterr().err


def test_experiment_settings_default_to_the_issue():
    from lsx.cli import build_parser

    args = build_parser().parse_args(["consistency-experiment"])
    assert isinstance(args, Namespace)
    assert args.data == "mnist5k"
    assert args.seeds == [0, 1, 2]
    assert Path(args.out).name == "consistency"


def test_experiment_retrains_when_beta_k_or_the_data_change(tmp_path):
    # issue 15: the run names omit beta and k, and reuse used to compare training settings only
    from lsx.checkpoint import read_header
    from lsx.config import TrainConfig as TC
    from lsx.data import load_dataset
    from lsx.experiments.common import reusable

    base = ["consistency-experiment", "--data", "digits", "--seeds", "0", "--epochs", "1",
            "--consistency", "1", "--hidden-dim", "16", "--nll-samples", "2",
            "--eval-points", "40", "--out", str(tmp_path)]  # fmt: skip
    assert main(base) == 0
    assert main([*base, "--beta", "2", "--k", "2"]) == 0
    runs = {(r["variant"], r["consistency"]): r for r in read_results(tmp_path)}
    assert runs[("vae", 0.0)]["reused"]  # unchanged: reused
    for key in [("beta-vae (beta=2)", 0.0), ("beta-vae (beta=2)", 1.0), ("iwae (k=2)", 0.0)]:
        assert not runs[key]["reused"], key  # retrained, not the beta=4 / k=5 numbers
    run_dir = Path(runs[("beta-vae (beta=2)", 0.0)]["run"])
    assert read_header(run_dir)["config"]["beta"] == 2.0
    assert read_header(Path(runs[("iwae (k=2)", 0.0)]["run"]))["config"]["k"] == 2
    # the same folder with data of another content hash is not reusable
    model_dir = Path(runs[("vae", 0.0)]["run"])
    header = read_header(model_dir)
    ds = load_dataset("digits")
    from lsx.models import config_from_json_dict

    config = config_from_json_dict(header["config"])
    train = TC(**header["train"])
    assert reusable(model_dir, config, train, ds.content_hash)
    assert not reusable(model_dir, config, train, "0123456789abcdef")


def read_results(folder: Path) -> list[dict]:
    return json.loads((folder / "results.json").read_text())["runs"]


def test_one_seed_prints_n_equals_1_not_a_zero_std():
    rows = [{"variant": "vae", "consistency": 0.0, "AU": 4, "accuracy": 0.8, "MI (nats)": None}]
    line = format_table(rows).splitlines()[2]
    assert "± 0.00" not in line
    assert "| 4.0 (n = 1) | – | – | 0.800 (n = 1) |" in line
