"""AppTest of the Latent map's interaction: decode anywhere, traversal, interpolation, sampling,
attribute arithmetic, tags (save, restart, delete with confirmation), exports, and the
shareable URL (every field reproduces the view; bad values give a message and the default)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lsx.app import state
from lsx.app.cache import THREADS_ENV
from lsx.app.generate import parse_dims
from lsx.errors import ConfigError
from lsx.tags import TAGS_NAME, read_tags, save_tag
from lsx.viz.generate import GRID_ID
from tests.app.test_latent_map_page import RUN, make_run

PAGE = str(Path(__file__).parents[2] / "pages" / "2_latent_map.py")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_run(tmp_path)
    return tmp_path


def page(monkeypatch, root: Path, **query: str) -> AppTest:
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(root))
    monkeypatch.setenv(THREADS_ENV, "1")
    at = AppTest.from_file(PAGE, default_timeout=60)
    for k, v in {"run": RUN, **query}.items():
        at.query_params[k] = v
    return at.run(timeout=60)


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [img.caption for i in at.get("image") for img in i.proto.imgs]  # st.image captions
    return "\n".join(parts + [w.value for w in at.warning] + [e.value for e in at.error])


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def panel(at: AppTest, name: str) -> AppTest:
    return at.radio(key=state.LM_GEN_PANEL).set_value(name).run(timeout=60)


def test_url_with_every_field_reproduces_the_view(monkeypatch, root):
    save_tag(root / RUN, "firsts", [0, 1, 2, 1500])
    query = {"proj": "pca", "seed": "3", "dims": "2", "color": "latent:1", "split": "test",
             "tag": "firsts"}  # fmt: skip
    at = page(monkeypatch, root, **query)
    ok(at)
    ss = at.session_state
    assert ss[state.RUN_DIR] == str(root / RUN)
    assert (ss[state.LM_SEED], ss[state.LM_SPLIT], ss[state.LM_3D]) == (3, "test", False)
    assert (ss[state.LM_COLOR], ss[state.LM_LATENT_DIM]) == ("latent", 1)
    assert ss[state.LM_TAG_SOURCE] == "firsts"
    assert "test split · PCA 2-D · coloured by z[1]" in texts(at)
    assert "Showing 4 of 4 selected (tag 'firsts'" in texts(at)
    assert at.query_params == {"run": RUN, **query}  # the URL still says the same view
    at.selectbox(key=state.LM_TAG_SOURCE).set_value("").run(timeout=60)
    at.radio(key=state.LM_SPLIT).set_value("train").run(timeout=60)
    assert at.query_params["split"] == "train"  # changing the view updates the URL
    assert "tag" not in at.query_params


def test_short_id_lists_travel_in_the_url(monkeypatch, root):
    at = page(monkeypatch, root, ids="5,7")
    ok(at)
    assert "Showing 2 of 2 selected (link" in texts(at)
    assert at.query_params["ids"] == "5,7"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"run": "no-such-run"}, "names the run 'no-such-run'"),
        ({"proj": "mds"}, "Unknown projection 'mds'"),
        ({"tag": "ghost"}, "no tag 'ghost'"),
        ({"ids": "5,99999"}, "not in this run's data"),
        ({"ids": "a,b"}, "comma-separated"),
        ({"color": "latent:99"}, "Latent dimension 99 is out of range"),
        ({"color": "bogus"}, "Colour 'bogus' is not available"),
        ({"seed": "-4"}, "seed '-4'"),
    ],
)
def test_bad_url_gives_a_message_and_the_default_view(monkeypatch, root, query, message):
    at = page(monkeypatch, root, **query)
    ok(at)
    assert message in texts(at)
    if "run" not in query:
        assert "Showing" in texts(at)  # the map is still served


def test_decode_anywhere_from_a_click_on_an_empty_spot(monkeypatch, root):
    at = page(monkeypatch, root)
    ok(at)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert any(t.get("name") == "click to decode" for t in fig["data"])
    click = {"x": 0.01, "y": -0.02, "customdata": GRID_ID}
    at.session_state[state.LM_CHART] = {"selection": {"points": [click], "box": [], "lasso": []}}
    at.run(timeout=60)
    ok(at)
    assert (at.session_state[state.LM_GEN_X], at.session_state[state.LM_GEN_Y]) == (0.01, -0.02)
    assert "Rule: PCA inverse (exact)" in texts(at)
    far = {"x": 1e4, "y": 1e4, "customdata": GRID_ID}
    at.session_state[state.LM_CHART] = {"selection": {"points": [far], "box": [], "lasso": []}}
    at.run(timeout=60)
    assert "**extrapolation**" in texts(at)
    assert at.get("download_button")  # decoded PNG (and nothing else selected: no export)


def test_traversal_interpolation_sampling_and_arithmetic(monkeypatch, root):
    at = page(monkeypatch, root)
    panel(at, "traverse")
    ok(at)
    assert "rows z[0], z[1], z[2]; columns -3 .. +3 std" in texts(at)
    at.text_input(key=state.LM_GEN_DIMS).set_value("0,7").run(timeout=60)
    assert "Latent dimension(s) [7] out of range" in texts(at)
    at.radio(key=state.LM_GEN_KIND).set_value("active").run(timeout=60)
    ok(at)
    panel(at, "interpolate")
    ok(at)
    assert "slerp path from sample 0 to sample 1" in texts(at)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    path = next(t for t in fig["data"] if t.get("name") == "interpolation path")
    assert len(path["text"]) == 8  # one map position per step
    at.number_input(key=state.LM_GEN_B).set_value(0).run(timeout=60)
    ok(at)
    assert "a point and itself" in texts(at)
    panel(at, "sample")
    assert "16 samples from the prior N(0, I) (seed 0)" in texts(at)
    panel(at, "edit")
    ok(at)
    assert "mean(class:1) - mean(class:0)" in texts(at)


def test_tags_save_survive_a_restart_and_delete_after_confirmation(monkeypatch, root):
    at = page(monkeypatch, root, ids="3,4,5")
    at.text_input(key=state.LM_TAG_NAME).set_value("../escape")
    form_submit = next(b for b in at.button if "Tag the selection" in str(b.label))
    form_submit.click().run(timeout=60)
    ok(at)
    assert "path or control characters" in texts(at)
    assert not (root / RUN / TAGS_NAME).exists()
    at.text_input(key=state.LM_TAG_NAME).set_value("three")
    next(b for b in at.button if "Tag the selection" in str(b.label)).click().run(timeout=60)
    assert read_tags(root / RUN)["three"].tolist() == [3, 4, 5]
    at2 = page(monkeypatch, root)  # a new session (another tab, or after a restart)
    ok(at2)
    assert "**three** (3)" in texts(at2)
    next(b for b in at2.button if b.label == "Delete tag ...").click().run(timeout=60)
    assert "Delete the tag 'three' (3 points)?" in texts(at2)
    assert "three" in read_tags(root / RUN)  # nothing deleted before the confirmation
    next(b for b in at2.button if b.label == "Yes, delete").click().run(timeout=60)
    ok(at2)
    assert read_tags(root / RUN) == {}


def test_colour_by_tag_and_export_buttons(monkeypatch, root):
    save_tag(root / RUN, "few", [0, 1])
    at = page(monkeypatch, root, color="tag", tag="few")
    ok(at)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert {"few", "(untagged)"} <= {t.get("name") for t in fig["data"]}
    labels = [b.proto.label for b in at.get("download_button")]
    assert {"CSV", "PARQUET", "Latents (.npy)"} <= set(labels)
    at = page(monkeypatch, root)
    assert "Nothing to export" in texts(at)


def test_parse_dims():
    assert parse_dims("0-2, 5", 8) == [0, 1, 2, 5]
    with pytest.raises(ConfigError, match="out of range"):
        parse_dims("9", 8)
    with pytest.raises(ConfigError, match="look like"):
        parse_dims("x", 8)
    assert np.array_equal(parse_dims("3", 4), [3])
    assert parse_dims("", 3) == [0, 1, 2]
    assert parse_dims(" ", 20) == list(range(8))
