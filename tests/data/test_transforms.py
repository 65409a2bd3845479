"""Transform sets: geometry against scikit-image, colour against scikit-image, seeding, the named
sets' magnitudes, and the refusal of sets that do not fit the data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import hsv2rgb, rgb2hsv
from skimage.transform import AffineTransform, rotate, warp

from lsx.data.transforms import (
    TRANSFORM_SETS,
    Op,
    TransformSet,
    affine_warp,
    default_set,
    get_set,
    hsv_to_rgb,
    resolve_set,
    rgb_to_hsv,
)
from lsx.errors import ConfigError, DataShapeError


def bar_image() -> np.ndarray:
    img = np.zeros((28, 28), np.float32)
    img[6:12, 8:20] = 1.0
    img[14:24, 14:17] = 0.5
    return img


def one(t: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(t)[None, None]


def warp1(img, angle=0.0, scale=1.0, dx=0.0, dy=0.0) -> np.ndarray:
    t = [torch.tensor([v], dtype=torch.float32) for v in (angle, scale, dx, dy)]
    return affine_warp(one(img), *t)[0, 0].numpy()


def test_affine_warp_matches_scikit_image_rotation_shift_and_scale():
    img = bar_image()
    ref = rotate(img, 30, order=1, mode="constant", cval=0)  # counter-clockwise, about the centre
    np.testing.assert_allclose(warp1(img, angle=30), ref, atol=1e-5)
    ref = warp(img, AffineTransform(translation=(3, -2)).inverse, order=1, cval=0)
    np.testing.assert_allclose(warp1(img, dx=3, dy=-2), ref, atol=1e-5)
    c = np.array([13.5, 13.5])  # pixel centres, as align_corners=False
    about_centre = (
        AffineTransform(translation=-c)
        + AffineTransform(scale=1.2)
        + AffineTransform(translation=c)
    )
    ref = warp(img, about_centre.inverse, order=1, cval=0)
    np.testing.assert_allclose(warp1(img, scale=1.2), ref, atol=1e-5)


def test_combined_map_on_a_non_square_image_matches_scikit_image():
    img = bar_image()[:20]  # 20 x 28
    c = np.array([13.5, 9.5])
    combined = (
        AffineTransform(translation=-c)
        + AffineTransform(scale=1.1, rotation=np.deg2rad(-25))  # skimage's y axis points down
        + AffineTransform(translation=c + np.array([2.0, -1.0]))
    )
    ref = warp(img, combined.inverse, order=1, cval=0)
    np.testing.assert_allclose(warp1(img, angle=25, scale=1.1, dx=2, dy=-1), ref, atol=1e-5)


def test_hsv_round_trip_matches_scikit_image():
    rgb = torch.rand(4, 3, 5, 5)
    hsv = rgb_to_hsv(rgb)
    ref = rgb2hsv(rgb.permute(0, 2, 3, 1).numpy(), channel_axis=-1)
    np.testing.assert_allclose(hsv.permute(0, 2, 3, 1).numpy(), ref, atol=1e-5)
    back = hsv2rgb(ref, channel_axis=-1).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(hsv_to_rgb(hsv).numpy(), back, atol=1e-5)
    torch.testing.assert_close(hsv_to_rgb(hsv), rgb, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(TRANSFORM_SETS))
def test_every_set_keeps_shape_and_range_and_is_seeded(name):
    tset = TRANSFORM_SETS[name]
    x = torch.rand(6, 3, 16, 16)
    a = tset(x, generator=torch.Generator().manual_seed(3))
    b = tset(x, generator=torch.Generator().manual_seed(3))
    c = tset(x, generator=torch.Generator().manual_seed(4))
    assert a.shape == x.shape
    assert float(a.min()) >= 0.0
    assert float(a.max()) <= 1.0
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, x)


def test_flips_are_exact_and_each_sample_draws_its_own():
    x = torch.rand(64, 1, 6, 6)
    out = TransformSet("h", (Op("hflip", 0.5),), "")(x, generator=torch.Generator().manual_seed(0))
    flipped = np.array([torch.equal(o, torch.flip(i, (2,))) for o, i in zip(out, x, strict=True)])
    kept = np.array([torch.equal(o, i) for o, i in zip(out, x, strict=True)])
    assert (flipped | kept).all()
    assert 16 < flipped.sum() < 48  # p = 0.5 per sample


def centroid_x(img: torch.Tensor) -> torch.Tensor:
    cols = torch.arange(img.shape[-1], dtype=img.dtype)
    return (img.sum(-2) * cols).sum(-1) / img.sum((-2, -1))


def test_translate_magnitude_and_strength_follow_the_published_set():
    img = torch.zeros(400, 1, 28, 28)
    img[:, :, 11:17, 11:17] = 1.0  # a centred square, far from the border
    shift = TRANSFORM_SETS["simple"].op("translate")
    gen = torch.Generator().manual_seed(0)
    moved = centroid_x(shift(img, generator=gen)[:, 0]) - 13.5
    assert float(moved.abs().max()) <= 0.05 * 28 + 1e-3  # translate=(0.05, 0.05)
    assert float(moved.abs().max()) > 0.8 * 0.05 * 28  # the whole range is used
    strong = centroid_x(shift(img, strength=2.0, generator=gen)[:, 0]) - 13.5
    assert float(strong.abs().max()) > 0.05 * 28 * 1.5


def test_scale_and_crop_change_the_mass_as_their_ranges_say():
    img = torch.zeros(300, 1, 32, 32)
    img[:, :, 12:20, 12:20] = 1.0
    gen = torch.Generator().manual_seed(1)
    mass = TRANSFORM_SETS["large"].op("scale")(img, generator=gen).sum((1, 2, 3)) / 64
    assert 0.75**2 - 0.02 <= float(mass.min()) < 0.7
    assert 1.4 < float(mass.max()) <= 1.25**2 + 0.02
    crop = TRANSFORM_SETS["crops"](img, generator=gen).sum((1, 2, 3)) / 64
    assert 0.98 <= float(crop.min())  # a crop only magnifies (blob stays inside mostly)
    assert float(crop.max()) <= 1 / 0.7**2 + 0.05


def test_colour_jitter_changes_colour_but_never_the_layout():
    x = torch.zeros(8, 3, 8, 8)
    x[:, 0, :4] = 0.8  # red top half
    out = TRANSFORM_SETS["simple_jitter"].op("hue")(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, :, 4:], x[:, :, 4:])  # black stays black
    assert not torch.allclose(out[:, :, :4], x[:, :, :4])


def test_default_sets_per_data():
    assert default_set((1, 28, 28)) == "simple"
    assert default_set((3, 32, 32)) == "textures"
    assert resolve_set("", (1, 8, 8), "digits").name == "simple"
    assert resolve_set("flips_crops", (1, 32, 32), "texture-patches").name == "flips_crops"


def test_unknown_set_is_refused_with_the_known_names():
    with pytest.raises(
        ConfigError, match=r"Unknown transform set 'simpel' \(did you mean 'simple'"
    ):
        get_set("simpel")


def test_colour_jitter_on_greyscale_is_refused():
    with pytest.raises(ConfigError, match=r"'textures' includes colour jitter, which needs RGB"):
        resolve_set("textures", (1, 32, 32), "texture-patches")
    with pytest.raises(ConfigError, match=r"needs RGB images, but the data has 1 channel"):
        TRANSFORM_SETS["large_jitter"](torch.rand(2, 1, 8, 8))


def test_flips_on_digits_are_refused():
    with pytest.raises(ConfigError, match=r"does not preserve the meaning of digits"):
        resolve_set("flips", (1, 28, 28), "mnist5k")


def test_bad_strength_and_shape_are_refused():
    with pytest.raises(ConfigError, match=r"transform_strength must be a finite number in \(0, 3"):
        TRANSFORM_SETS["simple"](torch.rand(2, 1, 8, 8), strength=float("nan"))
    with pytest.raises(DataShapeError, match=r"Transforms take a batch"):
        TRANSFORM_SETS["simple"](torch.rand(1, 8, 8))
    with pytest.raises(ConfigError, match=r"has no op 'hue'; its ops are rotate, translate, scale"):
        TRANSFORM_SETS["simple"].op("hue")
