"""lsx.analysis.quality: SSIM and PSNR against scikit-image (the oracle), perfect and noisy
reconstructions, the small-image window, the table."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

from lsx.analysis.quality import psnr, quality_table, reconstruction_quality, ssim
from lsx.errors import DataShapeError

RNG = np.random.default_rng(0)


def noisy_pair(shape):
    x = RNG.uniform(size=shape)
    return x, np.clip(x + RNG.normal(0, 0.1, size=shape), 0, 1)


@pytest.mark.parametrize("shape", [(3, 1, 28, 28), (2, 3, 32, 32), (2, 3, 16, 40)])
def test_ssim_and_psnr_match_scikit_image(shape):
    x, y = noisy_pair(shape)
    ref = [
        structural_similarity(
            a, b, channel_axis=0, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=1.0,
        )
        for a, b in zip(x, y, strict=True)
    ]  # fmt: skip
    np.testing.assert_allclose(ssim(x, y), ref, rtol=0, atol=1e-10)
    ref_psnr = [peak_signal_noise_ratio(a, b, data_range=1.0) for a, b in zip(x, y, strict=True)]
    np.testing.assert_allclose(psnr(x, y), ref_psnr, rtol=1e-10)


def test_small_images_use_a_window_that_fits():
    x, y = noisy_pair((4, 1, 8, 8))  # skimage refuses 8x8 with an 11-pixel window
    s = ssim(x, y)
    assert s.shape == (4,)
    assert np.all((s > 0) & (s < 1))
    np.testing.assert_allclose(ssim(x, x), 1.0)
    assert ssim(x, y).mean() > ssim(x, np.clip(y + RNG.normal(0, 0.3, y.shape), 0, 1)).mean()
    with pytest.raises(DataShapeError, match=r"SSIM needs images of at least 3x3 pixels; got 2x5"):
        ssim(x[:, :, :2, :5], y[:, :, :2, :5])
    with pytest.raises(DataShapeError, match=r"must both have shape \(n, C, H, W\)"):
        psnr(x, y[:2])


class Shrink(nn.Module):
    """A fake autoencoder whose reconstruction is ``factor * x``."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor
        self.config = SimpleNamespace(kind="ae", input_shape=(1, 12, 12))
        self.latent_shape = (144,)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.factor * z.view(-1, 1, 12, 12)


def test_reconstruction_quality_and_table():
    x = RNG.uniform(size=(10, 1, 12, 12)).astype(np.float32)
    perfect = reconstruction_quality(Shrink(1.0), x, batch_size=3)
    assert perfect.summary() == pytest.approx({"mse": 0.0, "psnr": 100.0, "ssim": 1.0})
    half = reconstruction_quality(Shrink(0.5), x, batch_size=4)
    np.testing.assert_allclose(half.mse, ((x / 2) ** 2).reshape(10, -1).mean(1), rtol=1e-5)
    np.testing.assert_allclose(half.psnr, 10 * np.log10(1 / half.mse), rtol=1e-5)
    rows = quality_table({"good": Shrink(0.9), "bad": Shrink(0.5)}, x)
    assert [r["model"] for r in rows] == ["good", "bad"]
    assert rows[0]["psnr"] > rows[1]["psnr"]
    assert rows[0]["ssim"] > rows[1]["ssim"]
    assert rows[0]["latent_numel"] == 144
