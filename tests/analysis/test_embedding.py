"""encode_array / reconstruct_array / embed / decode_array: shapes, batching, no mutation."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from lsx.analysis import Embedding, decode_array, embed, encode_array, reconstruct_array
from lsx.errors import ConfigError, DataShapeError
from lsx.models import MODELS, build_model, make_config


def _state_hash(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def test_encode_array_vector_latent_matches_model_encode(vector_model, images):
    z = encode_array(vector_model, images)
    assert z.shape == (10, 3)
    assert z.dtype == np.float32
    with torch.inference_mode():
        expected = vector_model.encode(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(z, expected, rtol=1e-6, atol=1e-6)


def test_encode_array_flattens_spatial_latent(spatial_model, images):
    assert spatial_model.latent_shape == (2, 2, 2)
    z = encode_array(spatial_model, images)
    assert z.shape == (10, 8)
    assert z.dtype == np.float32
    with torch.inference_mode():
        expected = spatial_model.encode(torch.from_numpy(images)).flatten(1).numpy()
    np.testing.assert_allclose(z, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_every_kind_embeds(kind, images):
    model = build_model(make_config(kind, input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16))
    emb = embed(model.eval(), images)
    assert emb.z.shape == (10, 3)
    assert emb.recon_error.shape == (10,)
    assert np.isfinite(emb.z).all()
    assert (emb.recon_error >= 0).all()


@pytest.mark.parametrize("model_name", ["vector_model", "spatial_model"])
def test_batching_does_not_change_results(model_name, images, request):
    model = request.getfixturevalue(model_name)
    for fn in (encode_array, reconstruct_array):
        np.testing.assert_allclose(
            fn(model, images, batch_size=3), fn(model, images, batch_size=512), atol=1e-6
        )
    small, large = embed(model, images, batch_size=3), embed(model, images)
    np.testing.assert_allclose(small.z, large.z, atol=1e-6)
    np.testing.assert_allclose(small.recon_error, large.recon_error, atol=1e-7)


@pytest.mark.parametrize("model_name", ["vector_model", "spatial_model"])
def test_embed_matches_separate_passes(model_name, images, request):
    model = request.getfixturevalue(model_name)
    emb = embed(model, images, batch_size=4)
    assert isinstance(emb, Embedding)
    assert emb.n_samples == 10
    assert emb.z.dtype == emb.recon_error.dtype == np.float32
    x_hat = reconstruct_array(model, images)
    assert x_hat.shape == images.shape
    assert x_hat.dtype == np.float32
    expected = ((x_hat - images) ** 2).reshape(10, -1).mean(axis=1)
    np.testing.assert_allclose(emb.recon_error, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(emb.z, encode_array(model, images), atol=1e-6)


def test_embedding_is_frozen(vector_model, images):
    emb = embed(vector_model, images)
    with pytest.raises(dataclasses.FrozenInstanceError):
        emb.z = emb.z  # type: ignore[misc]


@pytest.mark.parametrize("model_name", ["vector_model", "spatial_model"])
def test_decode_array_inverts_encode_array(model_name, images, request):
    model = request.getfixturevalue(model_name)
    z = encode_array(model, images)
    x_hat = decode_array(model, z, batch_size=3)
    assert x_hat.shape == images.shape
    assert x_hat.dtype == np.float32
    np.testing.assert_allclose(x_hat, reconstruct_array(model, images), atol=1e-6)
    # unflattened latents and a single flat latent are accepted too
    z_full = z.reshape(len(z), *model.latent_shape)
    np.testing.assert_allclose(decode_array(model, z_full), x_hat, atol=1e-6)
    np.testing.assert_allclose(decode_array(model, z[0]), x_hat[:1], atol=1e-6)


def test_decode_array_rejects_wrong_latent_size(spatial_model):
    with pytest.raises(DataShapeError, match=r"decodes latents of shape \(2, 2, 2\) \(8 numbers"):
        decode_array(spatial_model, np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(DataShapeError, match="NaN or Inf"):
        decode_array(spatial_model, np.full((1, 8), np.nan, dtype=np.float32))


def test_model_is_not_mutated(vector_model, images):
    model = vector_model.train()  # whatever mode it is in, it stays in
    before = _state_hash(model)
    params_grad = [p.requires_grad for p in model.parameters()]
    embed(model, images)
    encode_array(model, images)
    decode_array(model, np.zeros((2, 3), dtype=np.float32))
    assert model.training
    assert _state_hash(model) == before
    assert [p.requires_grad for p in model.parameters()] == params_grad
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_float64_and_empty_inputs(vector_model, images):
    np.testing.assert_allclose(
        encode_array(vector_model, images.astype(np.float64)),
        encode_array(vector_model, images),
        atol=1e-6,
    )
    empty = embed(vector_model, np.zeros((0, 1, 8, 8), dtype=np.float32))
    assert empty.z.shape == (0, 3)
    assert empty.recon_error.shape == (0,)


def test_wrong_image_shape_says_what_is_expected(vector_model):
    with pytest.raises(
        DataShapeError, match=r"expects images of shape \(n, 1, 8, 8\); got .*\(10, 1, 7, 8\)"
    ):
        encode_array(vector_model, np.zeros((10, 1, 7, 8), dtype=np.float32))
    with pytest.raises(DataShapeError, match="expects images of shape"):
        embed(vector_model, np.zeros((10, 64), dtype=np.float32))


def test_non_finite_and_non_numeric_images_are_refused(vector_model, images):
    images[3, 0, 1, 1] = np.nan
    with pytest.raises(DataShapeError, match="1 NaN or Inf values"):
        embed(vector_model, images)
    with pytest.raises(DataShapeError, match="must be numeric"):
        encode_array(vector_model, np.full((2, 1, 8, 8), "a"))


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_bad_batch_size(vector_model, images, batch_size):
    with pytest.raises(ConfigError, match="batch_size must be an int >= 1"):
        encode_array(vector_model, images, batch_size=batch_size)
