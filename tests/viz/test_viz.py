"""Figure and image builders of lsx.viz: point counts, customdata ids, 2-D vs 3-D traces, colour
modes, hover texts and display images."""

from __future__ import annotations

import sys

import numpy as np
import plotly.graph_objects as go
import pytest

from lsx.errors import DataShapeError
from lsx.viz import decode_triptych, hover_texts, latent_scatter, pair_tiles, to_uint8
from lsx.viz.images import heatmap_uint8, side_by_side
from lsx.viz.latent import MAX_LEGEND_CATEGORIES

RNG = np.random.default_rng(0)
N = 60
COORDS2 = RNG.normal(size=(N, 2)).astype(np.float32)
COORDS3 = RNG.normal(size=(N, 3)).astype(np.float32)
IDS = np.arange(100, 100 + N)
CODES = np.arange(N) % 3
NAMES = ("zero", "one", "two")


def all_ids(fig: go.Figure) -> list[int]:
    return sorted(int(i) for trace in fig.data for i in trace.customdata)


def test_2d_is_one_webgl_trace_with_ids_in_customdata():
    fig = latent_scatter(COORDS2, IDS)
    assert isinstance(fig, go.Figure)
    (trace,) = fig.data
    assert isinstance(trace, go.Scattergl)
    assert len(trace.x) == N
    assert all_ids(fig) == IDS.tolist()
    assert fig.layout.dragmode == "select"


def test_3d_uses_scatter3d():
    fig = latent_scatter(COORDS3, IDS, axis_titles=("PC 1", "PC 2", "PC 3"))
    (trace,) = fig.data
    assert isinstance(trace, go.Scatter3d)
    assert len(trace.z) == N
    assert fig.layout.scene.zaxis.title.text == "PC 3"


def test_categorical_colour_is_one_named_trace_per_present_class():
    fig = latent_scatter(COORDS2, IDS, color=CODES, categories=(*NAMES, "absent"), color_title="y")
    assert [t.name for t in fig.data] == list(NAMES)
    assert all(isinstance(t, go.Scattergl) for t in fig.data)
    assert sum(len(t.x) for t in fig.data) == N
    assert all_ids(fig) == IDS.tolist()
    first = fig.data[0]
    np.testing.assert_array_equal(first.customdata, IDS[CODES == 0])
    np.testing.assert_array_equal(first.x, COORDS2[CODES == 0, 0])
    assert fig.layout.legend.title.text == "y"
    assert len({t.marker.color for t in fig.data}) == 3


def test_many_categories_fall_back_to_one_trace_with_a_colour_bar():
    n_cat = MAX_LEGEND_CATEGORIES + 5
    codes = np.arange(N) % n_cat
    fig = latent_scatter(COORDS2, IDS, color=codes, categories=[f"c{i}" for i in range(n_cat)])
    (trace,) = fig.data
    assert trace.marker.showscale
    assert len(trace.marker.color) == N


def test_continuous_colour_has_a_colour_bar_and_hover_text():
    err = RNG.random(N).astype(np.float32)
    hover = [f"point {i}" for i in IDS]
    fig = latent_scatter(COORDS2, IDS, color=err, color_title="MSE", hover=hover)
    (trace,) = fig.data
    assert trace.marker.colorbar.title.text == "MSE"
    np.testing.assert_allclose(trace.marker.color, err)
    assert list(trace.text) == hover
    assert "%{text}" in trace.hovertemplate


def test_hover_texts_name_id_split_labels_and_error():
    texts = hover_texts(
        np.array([3, 10]),
        ["train", "test"],
        np.array([3, 0]),
        {"digit": ["3", "7"], "style": ["thin", "bold"]},
        np.array([0.5, 0.25]),
    )
    assert texts == [
        "id 3 · train #3<br>digit: 3<br>style: thin<br>error: 0.5",
        "id 10 · test #0<br>digit: 7<br>style: bold<br>error: 0.25",
    ]


@pytest.mark.parametrize(
    ("coords", "ids", "match"),
    [
        (np.zeros((5, 4)), np.arange(5), r"\(n_points, 2\) or \(n_points, 3\)"),
        (np.zeros((5, 2)), np.arange(4), "ids has 4 entries but coords has 5"),
    ],
)
def test_bad_shapes_say_what_to_pass(coords, ids, match):
    with pytest.raises(DataShapeError, match=match):
        latent_scatter(coords, ids)


def test_to_uint8_grey_and_rgb_with_upscaling():
    grey = np.linspace(0, 1, 16, dtype=np.float32).reshape(1, 4, 4)
    img = to_uint8(grey, scale=3)
    assert img.shape == (12, 12)
    assert img.dtype == np.uint8
    assert (img[0, 0], img[-1, -1]) == (0, 255)
    rgb = to_uint8(np.full((3, 2, 2), 2.0, dtype=np.float32))  # clipped to 1
    assert rgb.shape == (2, 2, 3)
    assert (rgb == 255).all()


def test_pair_tiles_put_input_beside_reconstruction():
    x = np.zeros((4, 1, 8, 8), dtype=np.float32)
    x_hat = np.ones_like(x)
    tiles = pair_tiles(x, x_hat, target_px=64)
    assert len(tiles) == 4
    assert tiles[0].shape == (64, 64 * 2 + 2)
    assert (tiles[0][:, :64] == 0).all()
    assert (tiles[0][:, -64:] == 255).all()
    with pytest.raises(DataShapeError, match="both have shape"):
        pair_tiles(x, x_hat[:2])


def test_decode_triptych_residual_heat_map():
    x = np.zeros((1, 8, 8), dtype=np.float32)
    x_hat = x.copy()
    x_hat[0, 2, 3] = 0.5
    images, captions, summary = decode_triptych(x, x_hat, target_px=16)
    assert [img.shape[:2] for img in images] == [(16, 16)] * 3
    assert images[2].shape == (16, 16, 3)
    assert images[2][4, 6].sum() > images[2][0, 0].sum()  # the wrong pixel is bright
    assert captions == ["input", "reconstruction", "|residual|"]
    assert "max |residual| 0.500" in summary


def test_heatmap_and_side_by_side_checks():
    assert heatmap_uint8(np.zeros((2, 2)), vmax=0.0).shape == (2, 2, 3)
    joined = side_by_side([np.zeros((4, 4), np.uint8), np.zeros((4, 5, 3), np.uint8)], gap=1)
    assert joined.shape == (4, 10, 3)
    with pytest.raises(DataShapeError, match="one height"):
        side_by_side([np.zeros((4, 4), np.uint8), np.zeros((5, 4), np.uint8)])


def test_viz_does_not_import_streamlit():
    import lsx.viz  # noqa: F401

    assert "lsx.viz" in sys.modules
    for name in ("lsx.viz.latent", "lsx.viz.images"):
        assert "streamlit" not in sys.modules[name].__dict__
