"""GPU-path options of the trainer, checked on the CPU: bf16 autocast, torch.compile, and no
host-device synchronisation per step beyond one flag."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from torch import nn

from lsx.config import TrainConfig
from lsx.errors import ConfigError
from lsx.models import build_model, make_config
from lsx.train import Trainer, autocast_networks


def tiny_model(kind: str = "vae") -> nn.Module:
    torch.manual_seed(0)
    return build_model(make_config(kind, input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16))


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 3, "batch_size": 8, "lr": 1e-2, "device": "cpu", **kw})


def test_new_fields_are_validated_with_the_allowed_values():
    with pytest.raises(ConfigError, match=r"'precision' field .* one of 'fp32', 'tf32', 'bf16'"):
        TrainConfig(precision="fp16")
    with pytest.raises(ConfigError, match=r"'compile' field .* 'off', 'default'"):
        TrainConfig(compile="yes")
    with pytest.raises(ConfigError, match=r"'workers' field of TrainConfig must be an int >= 0"):
        TrainConfig(workers=-1)


def test_bf16_trains_finite_close_to_fp32_and_runs_the_networks_in_bf16(tiny_dataset):
    fp32 = Trainer(tiny_model(), tiny_dataset, cfg()).fit().history
    trainer = Trainer(tiny_model(), tiny_dataset, cfg(precision="bf16"))
    seen: dict[str, set] = {"linear": set(), "loss_input": set()}
    first_linear = next(m for m in trainer.model.modules() if isinstance(m, nn.Linear))
    first_linear.register_forward_hook(lambda m, i, out: seen["linear"].add(out.dtype))
    trainer.model.decoder.register_forward_hook(lambda m, i, out: seen["loss_input"].add(out.dtype))
    bf16 = trainer.fit().history
    assert seen["linear"] == {torch.bfloat16}  # the matmuls ran in bf16 ...
    assert seen["loss_input"] == {torch.float32}  # ... the loss got float32 (BCE is fp32-only)
    assert all(math.isfinite(h[k]) for h in bf16 for k in ("train_loss", "test_loss"))
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert bf16[-1]["test_loss"] < bf16[0]["test_loss"]
    assert bf16[-1]["test_loss"] == pytest.approx(fp32[-1]["test_loss"], rel=0.05)
    assert bf16[-1]["test_loss"] != fp32[-1]["test_loss"]  # it did change the arithmetic
    # the model is left as it was: float32 forward, no wrapper on its networks
    assert "forward" not in vars(trainer.model.decoder)
    assert trainer.model.decode(torch.zeros(1, 2)).dtype == torch.float32


def test_autocast_networks_is_a_no_op_when_disabled():
    model = tiny_model("ae")
    with autocast_networks(model, "cpu", enabled=False):
        assert "forward" not in vars(model.encoder)
        assert model.encode(torch.rand(2, 1, 8, 8)).dtype == torch.float32


@pytest.mark.parametrize(("option", "mode"), [("default", None), ("max-autotune", "max-autotune")])
def test_compile_option_wraps_the_training_step(tiny_dataset, monkeypatch, option, mode):
    calls = []

    def fake_compile(module, mode=None, **kw):
        calls.append((type(module).__name__, mode))
        return module  # eager: this test checks the plumbing; the slow test really compiles

    monkeypatch.setattr(torch, "compile", fake_compile)
    result = Trainer(tiny_model("ae"), tiny_dataset, cfg(epochs=1, compile=option)).fit()
    assert calls == [("_Objective", mode)]
    assert math.isfinite(result.history[0]["train_loss"])
    Trainer(tiny_model("ae"), tiny_dataset, cfg(epochs=1)).fit()
    assert len(calls) == 1  # compile="off" does not compile


@pytest.mark.slow
def test_compiled_training_matches_eager(tiny_dataset):
    eager = Trainer(tiny_model("ae"), tiny_dataset, cfg(epochs=2)).fit().history
    compiled = Trainer(tiny_model("ae"), tiny_dataset, cfg(epochs=2, compile="default"))
    history = compiled.fit().history
    for a, b in zip(history, eager, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-4)


def test_one_host_read_per_step_and_two_per_epoch(tiny_dataset, monkeypatch):
    """Count the tensor-to-host reads lsx makes while training (torch.optim's CPU step counters
    are torch's); the models' input check reads nothing inside the trainer (trusted_inputs)."""
    reads: list[str] = []

    def counting(name):
        original = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.startswith("lsx."):
                reads.append(f"{caller}.{name}")
            return original(self, *args, **kwargs)

        return read

    for name in ("__bool__", "__float__", "__int__", "item", "tolist", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, counting(name))
    epochs, steps = 2, 2 * 48 // 8
    Trainer(tiny_model("ae"), tiny_dataset, cfg(epochs=epochs)).fit()
    assert reads.count("lsx.train.trainer.__bool__") == steps  # the finite-step flag
    assert len(reads) == steps + 2 * epochs, reads  # + train sums and test sums per epoch


def test_app_form_offers_the_new_fields_and_its_command_line_reads_them_back(tmp_path):
    """The Train page builds its form from TrainConfig and runs the CLI with string values."""
    import dataclasses

    from lsx.app.train_form import TrainRequest, train_specs
    from lsx.cli import build_parser

    specs = {s.name: s for s in train_specs()}
    assert specs["precision"].choices == ("fp32", "tf32", "bf16")
    assert specs["compile"].choices == ("off", "default", "reduce-overhead", "max-autotune")
    assert (specs["workers"].kind, specs["workers"].low) == ("int", 0)
    wanted = {"precision": "bf16", "compile": "max-autotune", "workers": 2}
    argv = TrainRequest(tmp_path, "r", "ae", "digits", train_fields=wanted).argv()
    args = build_parser().parse_args(argv[argv.index("train") :])
    got = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    assert TrainConfig(**{k: v for k, v in got.items() if v is not None}) == TrainConfig(**wanted)
