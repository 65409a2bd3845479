"""vqvae: nearest-code assignment against a brute-force cdist, straight-through gradients, the
loss terms, code shapes and config errors."""

from __future__ import annotations

import pytest
import torch

from lsx.errors import ConfigError
from lsx.models import build_model, make_config


def vqvae(**kw):
    fields = dict(input_shape=(3, 16, 16), latent_dim=4, hidden_dim=16, spatial=True, arch="conv")
    return build_model(make_config("vqvae", **{**fields, **kw}))


def test_codes_are_the_nearest_codebook_vectors():
    model = vqvae(n_codes=10).eval()
    with torch.no_grad():
        model.codebook.normal_()  # spread the codes so ties are impossible
    x = torch.rand(5, 3, 16, 16)
    idx = model.code(x)
    assert idx.shape == (5, 4, 4)
    assert idx.dtype == torch.int64
    z_e = model.encoder(x).movedim(1, -1).reshape(-1, 4)  # (B*h*w, n)
    brute = torch.cdist(z_e, model.codebook).argmin(1)
    assert torch.equal(idx.reshape(-1), brute)
    z_q = model.encode(x)  # the codebook vector at every position
    torch.testing.assert_close(z_q.movedim(1, -1), model.codebook[idx])


def test_straight_through_gradients_reach_the_encoder():
    model = vqvae()
    losses = model.loss(torch.rand(4, 3, 16, 16))
    losses.terms["recon"].backward(retain_graph=True)
    enc = model.encoder.net[0].weight.grad
    assert enc is not None
    assert enc.abs().sum() > 0
    assert model.codebook.grad is None  # recon does not move the codes (sg[e - z_e])
    model.zero_grad()
    losses.terms["codebook"].backward()
    assert model.codebook.grad.abs().sum() > 0
    assert model.encoder.net[0].weight.grad is None or (
        model.encoder.net[0].weight.grad.abs().sum() == 0
    )  # the codebook term moves only the codes


def test_loss_is_recon_plus_codebook_plus_weighted_commitment():
    model = vqvae(commitment=0.4)
    losses = model.loss(torch.rand(4, 3, 16, 16))
    t = losses.terms
    assert set(t) == {"recon", "codebook", "commitment"}
    torch.testing.assert_close(t["codebook"], t["commitment"])  # same value, other gradients
    torch.testing.assert_close(losses.total, t["recon"] + t["codebook"] + 0.4 * t["commitment"])


def test_vector_latent_gets_one_code_per_image():
    model = build_model(make_config("vqvae", input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16))
    assert model.code(torch.rand(6, 1, 8, 8)).shape == (6, 1, 1)
    assert model.encode(torch.rand(6, 1, 8, 8)).shape == (6, 3)


@pytest.mark.parametrize(
    ("field", "value", "msg"),
    [
        ("n_codes", 1, r"'n_codes' field of VQVAEConfig must be an int >= 2"),
        ("n_codes", "64", r"'n_codes' field of VQVAEConfig must be an int"),
        ("commitment", -0.25, r"'commitment' field of VQVAEConfig must be a finite number >= 0"),
    ],
)
def test_invalid_codebook_settings_are_config_errors(field, value, msg):
    with pytest.raises(ConfigError, match=msg):
        make_config("vqvae", **{field: value})
