"""lsx.wrap and lsx.export_run: modules trained outside lsx become lsx models (latents checked
against the modules themselves), refused with both shapes when decode(encode(x)) differs from x,
and exported as runs of a plugin kind (examples/own_vae, installed in a temporary path) whose
loaded model gives identical latents."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import lsx
from lsx.analysis import embed
from lsx.checkpoint import CONFIG_NAME, WEIGHTS_NAME, list_runs, load_checkpoint
from lsx.data import load_dataset
from lsx.errors import CheckpointError, ConfigError, DataShapeError
from tests.plugin_site import example_site, installed

ROOT = Path(__file__).resolve().parents[1]


def pair(latent: int = 3, out_side: int = 8) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Flatten(), nn.Linear(64, latent))
    dec = nn.Sequential(
        nn.Linear(latent, out_side * out_side),
        nn.Unflatten(1, (1, out_side, out_side)),
        nn.Sigmoid(),
    )
    return enc, dec


@pytest.fixture
def own_vae(monkeypatch, tmp_path):
    with installed(monkeypatch, *example_site(tmp_path)):
        from own_vae.model import ConvVAE

        yield ConvVAE


def test_import_lsx_stays_light_and_wrap_loads_on_first_use():
    code = (
        "import sys, lsx; assert 'torch' not in sys.modules, 'import lsx loaded torch'; "
        "from lsx import wrap, export_run; import lsx.wrapping as w; "
        "assert wrap is w.wrap and export_run is w.export_run; print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.stdout.strip() == "ok", proc.stderr
    with pytest.raises(AttributeError, match="no attribute 'wrapp'"):
        lsx.wrapp  # noqa: B018


def test_a_pair_of_modules_becomes_an_lsx_model():
    enc, dec = pair()
    model = lsx.wrap(enc, dec, (1, 8, 8), name="pair")
    assert model.latent_shape == (3,)
    assert model.config.kind == "wrapped"
    assert (model.config.latent_dim, model.config.input_shape) == (3, (1, 8, 8))
    assert model.config.name == "pair"
    assert not callable(getattr(model, "posterior", None))  # like an lsx kind without one
    assert sorted(model.state_dict()) == [
        "decoder.0.bias", "decoder.0.weight", "encoder.1.bias", "encoder.1.weight"
    ]  # fmt: skip
    x = np.array(load_dataset("digits").x_test[:50])  # a writable copy
    emb = embed(model, x)  # lsx's analysis takes it like its own models
    with torch.no_grad():
        z = enc(torch.as_tensor(x)).numpy()  # the oracle: the user's own module
        x_hat = dec(torch.as_tensor(z)).numpy()
    np.testing.assert_allclose(emb.z, z, rtol=0, atol=1e-6)
    mse = ((x_hat - x) ** 2).reshape(len(x), -1).mean(1)
    np.testing.assert_allclose(emb.recon_error, mse, rtol=1e-5)
    with torch.no_grad():
        total = float(model.loss(torch.as_tensor(x)).total)
    assert total == pytest.approx(mse.mean(), rel=1e-5)


def test_one_module_with_encode_decode_and_a_mean_logvar_encoder(own_vae):
    vae = own_vae(latent_dim=4, width=8)
    model = lsx.wrap(vae, None, (1, 28, 28))
    assert model.latent_shape == (4,)
    assert not model.training
    assert not vae.training  # the same module, not a copy
    x = torch.rand(5, 1, 28, 28)
    mu, logvar = vae.encode(x)
    assert torch.equal(model.encode(x), mu)  # a (mu, logvar) encoder: the latent is the mean
    got_mu, got_logvar = model.posterior(x)
    assert torch.equal(got_mu, mu)
    assert torch.equal(got_logvar, logvar)
    assert set(model.loss(x).terms) == {"recon", "kl"}
    same = lsx.wrap(vae.encode, vae.decode, (1, 28, 28))  # bound methods of one module
    assert sorted(same.export_state()) == sorted(vae.state_dict())


def test_decode_of_another_shape_is_refused_with_both_shapes():
    enc, dec = pair(out_side=7)
    with pytest.raises(DataShapeError, match=r"decode\(encode\(x\)\) has shape \(2, 1, 7, 7\) but x"
                       r" has shape \(2, 1, 8, 8\)"):  # fmt: skip
        lsx.wrap(enc, dec, (1, 8, 8))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((lambda x: x, nn.Identity(), (1, 8, 8)), r"encoder must be an nn.Module or a method"),
        ((nn.Identity(), None, (1, 8, 8)), r"needs an nn.Module with encode\(x\) and decode"),
        ((*pair(), (2, 8, 8)), r"input_shape must be \(channels, height, width\) with 1 or 3"),
        ((*pair(), (8, 8)), r"input_shape must be"),
    ],
)
def test_what_wrap_refuses(args, message):
    with pytest.raises(ConfigError, match=message):
        lsx.wrap(*args)


def test_export_run_round_trip_gives_identical_latents(own_vae, tmp_path):
    torch.manual_seed(1)
    vae = own_vae(latent_dim=6, width=8)
    wrapped = lsx.wrap(vae.encode, vae.decode, (1, 28, 28), name="mine")
    run = lsx.export_run(wrapped, tmp_path / "mine", "ownvae", data="mnist5k", hidden_dim=8)
    header = json.loads((run / CONFIG_NAME).read_text())
    assert header["kind"] == "ownvae"
    assert header["plugin"] == {"package": "own-vae", "version": "0.1.0"}
    assert header["data"]["spec"] == "mnist5k"
    model, config = load_checkpoint(run)
    assert (config.latent_dim, config.hidden_dim) == (6, 8)
    x = torch.as_tensor(np.array(load_dataset("mnist5k").x_test[:64]))
    with torch.no_grad():
        assert torch.equal(model.encode(x), wrapped.encode(x))
        assert torch.equal(model.decode(model.encode(x)), wrapped.reconstruct(x))
    (info,) = list_runs(tmp_path)[0]
    assert (info.name, info.kind) == ("mine", "ownvae")


def test_what_export_run_refuses(own_vae, tmp_path):
    vae = own_vae(latent_dim=6, width=8)
    wrapped = lsx.wrap(vae, None, (1, 28, 28))
    with pytest.raises(ConfigError, match=r"'vae' is a built-in kind; export_run writes a run"):
        lsx.export_run(wrapped, tmp_path / "a", "vae")
    with pytest.raises(ConfigError, match=r"install the package that provides kind 'nokind'.*"
                       r"Installed plugin kinds: ownvae"):  # fmt: skip
        lsx.export_run(wrapped, tmp_path / "a", "nokind")
    with pytest.raises(CheckpointError, match=r"do not fit a 'ownvae' model .*size mismatch.*"
                       r"Pass export_run the config fields"):  # fmt: skip
        lsx.export_run(wrapped, tmp_path / "a", "ownvae")  # default hidden_dim 32, wrapped 8
    with pytest.raises(DataShapeError, match=r"digits has images of shape \(1, 8, 8\); the model "
                       r"takes \(1, 28, 28\)"):  # fmt: skip
        lsx.export_run(wrapped, tmp_path / "a", "ownvae", data="digits", hidden_dim=8)
    with pytest.raises(ConfigError, match=r"export_run takes a model from lsx.wrap"):
        lsx.export_run(vae, tmp_path / "a", "ownvae")

    class Doubled(own_vae):  # same weights, other latents: the plugin would not be this model
        def encode(self, x):
            mu, logvar = super().encode(x)
            return 2 * mu, logvar

    doubled = Doubled(latent_dim=6, width=8)
    doubled.load_state_dict(vae.state_dict())
    with pytest.raises(CheckpointError, match=r"computes other latents .*nothing was written"):
        lsx.export_run(lsx.wrap(doubled, None, (1, 28, 28)), tmp_path / "a", "ownvae", hidden_dim=8)
    assert not (tmp_path / "a").exists()
    lsx.export_run(wrapped, tmp_path / "b", "ownvae", hidden_dim=8)
    with pytest.raises(CheckpointError, match=r"already holds a run; pick a new folder"):
        lsx.export_run(wrapped, tmp_path / "b", "ownvae", hidden_dim=8)
    lsx.export_run(wrapped, tmp_path / "b", "ownvae", hidden_dim=8, overwrite=True)
    assert (tmp_path / "b" / WEIGHTS_NAME).is_file()


def test_a_separate_posterior_is_the_models_posterior():
    enc, dec = pair()
    torch.manual_seed(2)
    to_logvar = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))

    def posterior(x):
        return enc(x), to_logvar(x)

    model = lsx.wrap(enc, dec, (1, 8, 8), posterior=posterior)
    x = torch.rand(4, 1, 8, 8)
    mu, logvar = model.posterior(x)
    with torch.no_grad():
        assert torch.equal(mu, enc(x))
        assert torch.equal(logvar, to_logvar(x))
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()  # the oracle
        assert float(model.loss(x).terms["kl"]) == pytest.approx(float(kl), rel=1e-5)
