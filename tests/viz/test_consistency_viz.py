"""Figures and tiles of the Consistency page: traces, segments, shapes and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from lsx.errors import DataShapeError
from lsx.viz.consistency import gallery_tiles, pair_map, score_distributions, transform_colors


def test_pair_map_draws_one_segment_per_pair_and_transform():
    rng = np.random.default_rng(0)
    origin = rng.normal(size=(3, 2))
    moved = {"rotate": origin + 1, "all": origin - 1}
    fig = pair_map(rng.normal(size=(50, 2)), origin, moved, ids=np.array([4, 5, 6]))
    types = [t.type for t in fig.data]
    assert types.count("scattergl") == 1  # only the background is WebGL
    lines = [t for t in fig.data if t.mode == "lines"]
    assert [t.name for t in lines] == ["rotate", "all"]
    assert list(lines[0].x[:3]) == [origin[0, 0], origin[0, 0] + 1, None]
    assert len(lines[0].x) == 9  # 3 segments, None-separated
    assert "id 5 · rotate" in fig.data[2].text[1]
    assert transform_colors(["all"])["all"] == "#222222"
    with pytest.raises(DataShapeError, match=r"rotate has 2 points but origin has 3"):
        pair_map(origin, origin, {"rotate": origin[:2]})


def test_score_distributions_groups_runs():
    fig = score_distributions({"a": {"rotate": np.ones(4)}, "b": {"rotate": np.zeros(4)}})
    assert [t.name for t in fig.data] == ["a", "b"]
    assert fig.layout.boxmode == "group"


def test_gallery_tiles_stack_input_over_reconstruction():
    tiles = gallery_tiles(np.zeros((2, 1, 8, 8)), np.ones((2, 1, 8, 8)))
    assert len(tiles) == 2
    h = tiles[0].shape[0]
    assert tiles[0].dtype == np.uint8
    assert tiles[0][0, 0] == 0
    assert tiles[0][h - 1, 0] == 255
    with pytest.raises(DataShapeError, match=r"must both have shape \(m, C, H, W\)"):
        gallery_tiles(np.zeros((2, 1, 8, 8)), np.zeros((1, 1, 8, 8)))
