"""lsx.analysis.segmentation: tiling, patch geometry, k-means on codes, channel conversion,
built-in photos, and bad input (too small, wrong k, uniform image)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from lsx.analysis.segmentation import (
    PHOTOS,
    load_photo,
    match_channels,
    resize_image,
    segment_image,
)
from lsx.errors import ConfigError, DataShapeError
from lsx.models import build_model, make_config
from lsx.viz.atoms import label_colors, segmentation_overlay


class PatchBrightness(nn.Module):
    """8x8 input -> 2x2 grid of 4x4 patches; the code of a patch is [bright, dark] one-hot."""

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.config = SimpleNamespace(kind="scvae", input_shape=(channels, 8, 8))
        self.register_buffer("atoms", torch.eye(2, 3))
        self.latent_shape = (3, 2, 2)
        self.seen: list[int] = []

    def code(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(len(x))
        mean = x.mean(1).unfold(1, 4, 4).unfold(2, 4, 4).mean((-1, -2))  # (B, 2, 2)
        bright = (mean > 0.5).float()
        return torch.stack([bright, 1 - bright], 1)  # (B, 2, 2, 2)


def halves(h: int, w: int, split: int) -> np.ndarray:
    img = np.zeros((1, h, w), np.float32)
    img[:, :, split:] = 1.0
    return img


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.ravel().tolist(), b.ravel().tolist(), strict=True))
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def test_two_regions_are_found_exactly_across_tiles():
    model = PatchBrightness()
    img = halves(20, 28, 12)  # 3 x 4 tiles of 8x8 (edge-padded), patches of 4x4
    seg = segment_image(model, img, 2, batch_size=5)
    assert seg.labels.shape == (20, 28)
    assert seg.grid_labels.shape == (5, 7)  # ceil(20/4) x ceil(28/4) patches
    assert seg.n_tiles == 12
    assert sum(model.seen) == 12
    assert seg.patch == (4, 4)
    assert seg.k == 2
    assert seg.notes == ()
    assert same_partition(seg.labels, (img[0] > 0.5).astype(int))


def test_grey_image_for_an_rgb_model_is_converted_and_said_so():
    seg = segment_image(PatchBrightness(channels=3), halves(16, 16, 8), 2)
    assert seg.notes == (
        "The image is greyscale but the model expects RGB: the grey channel was copied to R, G "
        "and B.",
    )
    rgb, note = match_channels(np.ones((3, 4, 4), np.float32) * [[[0.2]], [[0.4]], [[0.6]]], 1)
    assert rgb.shape == (1, 4, 4)
    assert "converted to grey" in note
    np.testing.assert_allclose(rgb, 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6, rtol=1e-6)


def test_an_image_smaller_than_one_patch_is_refused():
    with pytest.raises(DataShapeError, match=r"is 3x20 pixels, smaller than one patch .*4x4"):
        segment_image(PatchBrightness(), np.zeros((1, 3, 20), np.float32), 2)
    seg = segment_image(PatchBrightness(), halves(4, 8, 4), 2)  # exactly one patch high: fine
    assert seg.labels.shape == (4, 8)


@pytest.mark.parametrize("k", [1, 17, 2.0, True])
def test_k_out_of_range_is_a_config_error(k):
    with pytest.raises(ConfigError, match=r"k must be an int from 2 to 16; got"):
        segment_image(PatchBrightness(), halves(8, 8, 4), k)


def test_uniform_image_lowers_k_and_says_so():
    seg = segment_image(PatchBrightness(), np.zeros((1, 16, 16), np.float32), 4)
    assert seg.k == 1
    assert (seg.labels == 0).all()
    assert seg.notes == ("Only 1 distinct patch code(s) in this image: using k=1.",)
    with pytest.raises(DataShapeError, match=r"contains NaN"):
        segment_image(PatchBrightness(), np.full((1, 8, 8), np.nan, np.float32), 2)


def test_builtin_photos_load_offline():
    for name in PHOTOS:
        img = load_photo(name)
        assert img.ndim == 3
        assert img.shape[0] == 3
        assert img.dtype == np.float32
        assert 0.0 <= img.min()
        assert img.max() <= 1.0
        assert min(img.shape[1:]) >= 300
    with pytest.raises(ConfigError, match=r"Unknown photo 'lena'; built-in photos: china, "):
        load_photo("lena")


def test_real_models_segment_a_640x427_photo_and_a_vector_latent_works():
    china = resize_image(load_photo("china"), 0.5)
    assert china.shape == (3, 214, 320)
    torch.manual_seed(0)
    scvae = build_model(make_config("scvae", input_shape=(3, 32, 32), latent_dim=4,
                                    hidden_dim=16, spatial=True, n_atoms=16)).eval()  # fmt: skip
    seg = segment_image(scvae, china, 3)
    assert seg.labels.shape == (214, 320)
    assert seg.grid_labels.shape == (54, 80)
    assert set(np.unique(seg.labels)) <= {0, 1, 2}
    ae = build_model(make_config("ae", input_shape=(1, 16, 16), latent_dim=3, hidden_dim=16,
                                 arch="conv")).eval()  # fmt: skip
    seg = segment_image(ae, china[:, :40, :50], 2)  # vector latent: one patch per tile
    assert seg.patch == (16, 16)
    assert seg.grid_labels.shape == (3, 4)
    assert "converted to grey" in seg.notes[0]


def test_overlay_blends_the_segment_colours():
    img = np.full((3, 4, 5), 0.5, np.float32)
    labels = np.zeros((4, 5), np.int64)
    labels[:, 3:] = 1
    assert (segmentation_overlay(img, labels, alpha=0.0) == 128).all()
    full = segmentation_overlay(img, labels, alpha=1.0)
    colors = label_colors(2)
    assert (full[0, 0] == colors[0]).all()
    assert (full[0, 4] == colors[1]).all()
    with pytest.raises(DataShapeError, match=r"labels \(H, W\) of the same size"):
        segmentation_overlay(img, labels[:3])
    with pytest.raises(ConfigError, match=r"scale must be a number in \(0, 4\]"):
        resize_image(img, 0)
