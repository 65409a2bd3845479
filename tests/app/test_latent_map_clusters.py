"""AppTest of the Latent map's cluster additions (issue 3): configured centres and spheres drawn on
the map (on by default for sae runs, opt-in for the centroid rule of other kinds), colouring by
predicted / in-sphere / correct, the cluster sanity table with ranked mistakes; a multi-attribute
run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lsx.app import state
from lsx.app.cache import THREADS_ENV
from lsx.viz.generate import GRID_NAME
from tests.app.test_lookup_page import AE, SAE, make_run

PAGE = str(Path(__file__).parents[2] / "pages" / "2_latent_map.py")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("checkpoints")
    make_run(root, SAE, "sae")
    make_run(root, AE, "ae")
    return root


def page(monkeypatch: pytest.MonkeyPatch, root: Path, run: str) -> AppTest:
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(root))
    monkeypatch.setenv(THREADS_ENV, "1")
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[state.RUN_DIR] = str(root / run)
    return at.run(timeout=60)


def traces(at: AppTest) -> list[dict]:
    (chart,) = at.get("plotly_chart")
    return json.loads(chart.proto.spec)["data"]


def sanity(at: AppTest):
    return next(d.value for d in at.dataframe if "purity" in d.value.columns)


def test_configured_centres_spheres_and_sanity_table(monkeypatch, root):
    at = page(monkeypatch, root, SAE)
    assert not at.exception
    assert not at.error
    data = traces(at)
    centres = [t for t in data if t.get("name") == "centres"]
    assert len(centres) == 1
    assert centres[0]["text"] == [str(d) for d in range(10)]
    assert sum(1 for t in data if str(t.get("name", "")).startswith("sphere ")) == 10
    assert any("projected exactly" in c.value for c in at.caption)  # PCA is linear
    table = sanity(at)
    assert list(table["class"]) == [str(d) for d in range(10)]
    assert table["n"].sum() == 1797
    assert ((table["purity"].dropna() >= 0) & (table["purity"].dropna() <= 1)).all()
    assert any("misassigned points" in m.value for m in at.markdown)
    mistakes = next(
        d.value for d in at.dataframe if "assigned" in d.value.columns and "id" in d.value.columns
    )
    assert (mistakes["true"] != mistakes["assigned"]).all()
    assert list(mistakes["margin"]) == sorted(mistakes["margin"], reverse=True)
    n_images = len(at.get("image"))
    at.toggle(key=state.LM_MISASSIGNED_IMAGES).set_value(True).run(timeout=60)
    assert len(at.get("image")) == n_images + 1  # the gallery of the ranked mistakes
    at.sidebar.toggle(key=state.LM_CENTERS).set_value(False).run(timeout=60)
    assert not [t for t in traces(at) if t.get("name") == "centres"]


@pytest.mark.parametrize(
    ("option", "legend"),
    [
        ("predicted:digit", {str(d) for d in range(10)}),
        ("correct:digit", {"wrong", "right"}),
        ("in_sphere:digit", {"outside", "inside"}),
    ],
)
def test_cluster_colourings(monkeypatch, root, option, legend):
    at = page(monkeypatch, root, SAE)
    at.sidebar.selectbox(key=state.LM_COLOR).set_value(option).run(timeout=60)
    assert not at.exception
    names = {t["name"] for t in traces(at) if "customdata" in t} - {GRID_NAME}  # not overlays
    assert names <= legend
    assert names  # at least one category present
    assert option.split(":")[0] in {"predicted", "correct", "in_sphere"}


def test_other_kinds_get_centroids_and_say_so(monkeypatch, root):
    at = page(monkeypatch, root, AE)
    assert not at.exception
    assert not [t for t in traces(at) if t.get("name") == "centres"]  # opt-in for centroids
    assert any("class centroid" in c.value for c in at.caption)  # the sanity table's rule
    assert sanity(at)["n"].sum() == 1797
    at.sidebar.toggle(key=state.LM_CENTERS).set_value(True).run(timeout=60)
    assert [t for t in traces(at) if t.get("name") == "centres"]
    assert any("Centres of **digit** (nearest class centroid" in c.value for c in at.caption)


def test_multi_attribute_run_has_a_sanity_table_per_attribute(monkeypatch, root):
    make_run(root, "tiny-sae-textures", "sae", data="textures")
    at = page(monkeypatch, root, "tiny-sae-textures")
    assert not at.exception
    assert list(sanity(at)["class"])[:2] == ["solid", "stripes"]
    at.radio(key=state.LM_SANITY_ATTR).set_value("colour").run(timeout=60)
    assert list(sanity(at)["class"])[:2] == ["red", "green"]
    at.sidebar.selectbox(key=state.LM_COLOR).set_value("label:colour").run(timeout=60)
    centres = next(t for t in traces(at) if t.get("name") == "centres")
    assert centres["text"][0] == "red"  # the coloured attribute's centres
