"""AppTest of the Lookup page: empty state, happy path (upload -> prediction, details, neighbours,
map), every bad-input case of issue 3 at once (per-file messages, the page keeps working), 50
files, size re-check, text search (hit, unknown and contradictory words), the centroid rule for
other kinds, and checkpoint errors."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from lsx.app import state
from lsx.app.cache import THREADS_ENV
from lsx.checkpoint import WEIGHTS_NAME, save_checkpoint
from lsx.config import TrainConfig
from lsx.data import load_dataset
from lsx.models import build_model, dataset_fields, make_config
from lsx.train import Trainer, data_info
from tests.data.upload_cases import bad_cases, encode, good_cases, gradient

PAGE = str(Path(__file__).parents[2] / "pages" / "3_lookup.py")
SAE, AE = "tiny-sae-digits", "tiny-ae-digits"


def make_run(
    root: Path, name: str, kind: str, epochs: int = 0, data: str = "digits", **fields
) -> Path:
    """A tiny run (the bundled 8x8 digits by default; seeded), saved as lsx saves runs."""
    ds = load_dataset(data)
    torch.manual_seed(0)
    fields = {"latent_dim": 10, "hidden_dim": 16, **fields}
    config = make_config(kind, **dataset_fields(kind, ds), **fields)
    model = build_model(config)
    if epochs:
        Trainer(model, ds, TrainConfig(epochs=epochs, batch_size=64, lr=3e-3)).fit()
    run_dir = root / name
    save_checkpoint(model.eval(), config, run_dir, train={"epochs": epochs}, data=data_info(ds))
    return run_dir


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("checkpoints")
    make_run(root, SAE, "sae")
    make_run(root, AE, "ae")
    return root


def page(monkeypatch: pytest.MonkeyPatch, root: Path, run: str | None = SAE) -> AppTest:
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(root))
    monkeypatch.setenv(THREADS_ENV, "1")
    at = AppTest.from_file(PAGE, default_timeout=60)
    if run is not None:
        at.session_state[state.RUN_DIR] = str(root / run)
    return at.run(timeout=60)


def upload(at: AppTest, files: dict[str, bytes]) -> AppTest:
    at.file_uploader(key=state.LU_UPLOADS).set_value(
        [(name, data, "application/octet-stream") for name, data in files.items()]
    )
    return at.run(timeout=60)


def frame(at: AppTest, column: str):
    """The first dataframe on the page that has ``column``."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def table(at: AppTest) -> list[dict]:
    """The per-file results table."""
    return frame(at, "status").to_dict("records")


def test_empty_checkpoints_folder(monkeypatch, tmp_path):
    at = page(monkeypatch, tmp_path, run=None)
    assert not at.exception
    assert "No trained runs" in at.info[0].value


def test_configured_run_without_uploads_shows_rule_metrics_and_text_box(monkeypatch, root):
    at = page(monkeypatch, root)
    assert not at.exception
    assert not at.error
    assert "nearest configured centre" in at.markdown[0].value
    assert "8×8 grey" in at.markdown[0].value
    accuracy = frame(at, "nearest centre")
    assert list(accuracy.columns) == ["attribute", "nearest centre", "kNN (k=5)", "linear probe"]
    assert 0.0 <= accuracy["nearest centre"][0] <= 1.0
    assert at.text_input(key=state.LU_QUERY)
    uploader = at.file_uploader(key=state.LU_UPLOADS)
    assert list(uploader.proto.type) == []  # every file reaches Python, which says why it refuses


def test_upload_gives_prediction_details_neighbours_and_map(monkeypatch, root):
    at = upload(page(monkeypatch, root), {"seven.png": encode(gradient().convert("L"))})
    assert not at.exception
    assert not at.error
    (row,) = table(at)
    assert row["status"] == "ok"
    assert row["digit"] in [str(d) for d in range(10)]
    assert "resized from 40x30 to 8x8" in row["notes"]
    details = frame(at, "predicted")
    assert list(details.columns) == [
        "attribute", "predicted", "distance", "margin", "percentile", "in sphere", "OOD"
    ]  # fmt: skip
    images = at.get("image")
    assert len(images) == 2  # input | reconstruction | residual, then the neighbour gallery
    assert "as the model sees it" in str(images[0].proto)
    assert str(images[1].proto).count("train #") == 8  # default k
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert any(t.get("name") == "uploads" for fig in charts for t in fig["data"])


def test_every_bad_input_gets_its_own_message_and_the_rest_still_works(monkeypatch, root):
    files = {**good_cases(), **{name: data for name, (data, _) in bad_cases().items()}}
    at = upload(page(monkeypatch, root), files)
    assert not at.exception
    rows = {r["file"]: r for r in table(at)}
    assert len(rows) == len(files)
    for name, (_, msg) in bad_cases().items():
        assert rows[name]["status"] != "ok"
        assert any(name in e.value for e in at.error)
        assert re.search(msg, rows[name]["status"]), rows[name]["status"]
    for name in good_cases():
        assert rows[name]["status"] == "ok", rows[name]
    assert "first frame" in rows["animated.png"]["notes"]
    assert "EXIF orientation 6" in rows["rotated.jpg"]["notes"]
    assert len(at.error) == len(bad_cases())


def test_fifty_files_at_once_and_a_fifty_first(monkeypatch, root):
    png = encode(gradient().convert("L"))
    at = page(monkeypatch, root)
    start = time.perf_counter()
    at = upload(at, {f"img{i:02d}.png": png for i in range(50)})
    assert time.perf_counter() - start < 30
    assert not at.exception
    assert [r["status"] for r in table(at)] == ["ok"] * 50
    at = upload(at, {f"img{i:02d}.png": png for i in range(51)})
    assert "first 50 are looked up" in at.warning[0].value
    assert len(table(at)) == 50


def test_upload_size_is_rechecked_in_python(monkeypatch, root):
    import lsx.app.lookup as lookup

    monkeypatch.setattr(lookup, "MAX_BYTES", 100)
    at = upload(page(monkeypatch, root), {"big.png": encode(gradient())})
    assert not at.exception
    assert "lsx reads at most" in at.error[0].value


def test_other_file_types_get_a_visible_message_naming_file_type_and_supported_types(
    monkeypatch, root
):
    # Streamlit's type= filter refused these in the browser with an icon whose reason showed only
    # on hover; now every file reaches Python and gets an st.error (issue 18, item 8).
    png = encode(gradient().convert("L"))
    files = {
        "drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg"/>',
        "anim.gif": b"GIF89a" + b"\x00" * 20,
        "evil.exe": b"MZ",
        "x.png\0.exe": png,
        "notes": png,
        "photo.PNG": png,
        "photo.jpeg": encode(gradient(), "JPEG"),
    }
    at = upload(page(monkeypatch, root), files)
    assert not at.exception
    rows = {r["file"]: r["status"] for r in table(at)}
    assert rows["photo.PNG"] == rows["photo.jpeg"] == "ok"
    expected = {
        "drawing.svg": "has the type SVG (.svg)",
        "anim.gif": "has the type GIF (.gif)",
        "evil.exe": "has the type EXE (.exe)",
        "x.png\\0.exe": "has the type EXE (.exe)",
        "notes": "has no file extension",
    }
    errors = [e.value for e in at.error]
    assert len(errors) == len(expected)
    for shown, why in expected.items():
        (msg,) = [e for e in errors if e.startswith(f"{shown} {why}")]
        assert "reads PNG, JPEG, WebP and BMP images (.png, .jpg, .jpeg, .webp, .bmp)" in msg
        assert "Convert it to PNG" in msg


def flat_png(width: int, height: int, level: int) -> bytes:
    """A flat grey PNG: 40 MP compresses to ~50 KB and decodes in ~0.1 s."""
    from PIL import Image

    return encode(Image.new("L", (width, height), level))


def test_a_session_decodes_at_most_its_budget_of_megapixels_a_minute(monkeypatch, root):
    # Twenty 40 MP PNGs cost 14 s of server time (issue 18): each session decodes at most
    # 200 MP of new uploads a minute; the rest wait, with one message saying how many and why.
    big = {f"big{i}.png": flat_png(7999, 5000, 10 * i) for i in range(6)}  # 6 x 40 MP
    at = upload(page(monkeypatch, root), {**big, "small.png": encode(gradient().convert("L"))})
    assert not at.exception
    rows = {r["file"]: r["status"] for r in table(at)}
    assert [rows[f"big{i}.png"] for i in range(5)] == ["ok"] * 5
    assert rows["small.png"] == "ok"  # 1,200 pixels still fit
    assert rows["big5.png"].startswith("not decoded yet: over this session's decode budget")
    (msg,) = [e.value for e in at.error]
    assert msg.startswith("1 of 7 images were not decoded (big5.png)")
    assert "decoded 200 megapixels of uploads in the last 60 s" in msg
    assert "at most 200 MP a minute" in msg
    log = at.session_state[state.LU_DECODE_LOG]
    assert sum(px for _, px in log) == 5 * 7999 * 5000 + 40 * 30
    at.run(timeout=60)  # files already decoded cost nothing again; big5 still waits
    assert sum(px for _, px in at.session_state[state.LU_DECODE_LOG]) == 5 * 7999 * 5000 + 1200
    assert {r["file"]: r["status"] for r in table(at)}["big5.png"] != "ok"
    at.session_state[state.LU_DECODE_LOG] = tuple((t - 61, px) for t, px in log)  # a minute on
    at.run(timeout=60)
    assert not at.exception
    assert [r["status"] for r in table(at)] == ["ok"] * 7
    assert not at.error


def test_text_search_hit_unknown_and_contradictory(monkeypatch, root):
    at = page(monkeypatch, root)
    at.text_input(key=state.LU_QUERY).set_value("Three").run(timeout=60)
    assert not at.exception
    assert any("**digit = 3**" in m.value for m in at.markdown)
    assert "12 images" not in str(at.get("image"))  # uses the k of the page (8)
    assert str(at.get("image")[0].proto).count("digit ") == 8
    at.text_input(key=state.LU_QUERY).set_value("banana").run(timeout=60)
    assert "Unknown word(s) 'banana'" in at.warning[0].value
    assert "digit: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in at.warning[0].value
    at.text_input(key=state.LU_QUERY).set_value("3 8").run(timeout=60)
    assert "contradictory" in at.warning[0].value
    assert not at.exception


def test_other_kinds_use_training_centroids_and_no_text_search(monkeypatch, root):
    at = upload(page(monkeypatch, root, AE), {"a.png": encode(gradient())})
    assert not at.exception
    assert "class centroid of the training latents" in at.markdown[0].value
    assert table(at)[0]["status"] == "ok"
    assert any("has no configuration" in c.value for c in at.caption)


def test_cross_dataset_database(monkeypatch, root):
    at = page(monkeypatch, root)
    at.selectbox(key=state.LU_DB).set_value("mnist5k").run(timeout=60)
    at = upload(at, {"a.png": encode(gradient())})
    assert not at.exception
    assert str(at.get("image")[1].proto).count("mnist5k #") == 8


def test_corrupt_weights_are_a_message(monkeypatch, tmp_path):
    run = make_run(tmp_path, "broken", "sae")
    (run / WEIGHTS_NAME).write_bytes(b"\x00" * 16)
    at = page(monkeypatch, tmp_path, "broken")
    assert not at.exception
    assert at.error


def test_overlapping_spheres_warn_and_held_out_classes_are_reported(monkeypatch, tmp_path):
    with pytest.warns(UserWarning, match="overlap by"):
        make_run(tmp_path, "odd", "sae", radius_fraction=1.5, held_out=(8, 9))
    at = page(monkeypatch, tmp_path, "odd")
    assert not at.exception
    assert any("overlap by" in w.value for w in at.warning)
    unseen = frame(at, "intra / inter distance")
    assert list(unseen["classes"]) == ["held out (never trained on)", "seen"]


REPO_CHECKPOINTS = Path(__file__).parents[2] / "checkpoints"


def demo_page(monkeypatch: pytest.MonkeyPatch, name: str) -> AppTest:
    if not (REPO_CHECKPOINTS / name / WEIGHTS_NAME).is_file():
        pytest.fail(
            f"the shipped demo run {name} is missing; run `python -m lsx demo --only {name}`"
        )
    return page(monkeypatch, REPO_CHECKPOINTS, name)


def astronaut_png() -> bytes:
    import io

    from PIL import Image
    from skimage.data import astronaut

    buf = io.BytesIO()
    Image.fromarray(astronaut()).save(buf, "PNG")
    return buf.getvalue()


def test_a_vae_run_shows_no_sphere_overlap_warnings(monkeypatch):
    # Centroid "spheres" of a VAE are no configured property: no overlap warning at all.
    at = demo_page(monkeypatch, "demo-vae-mnist5k")
    assert not at.exception
    assert not [w for w in at.warning if "overlap" in w.value]
    assert not [e for e in at.expander if "overlap" in e.label]


def test_a_configured_run_shows_its_overlaps_in_one_collapsed_expander(monkeypatch, tmp_path):
    with pytest.warns(UserWarning, match="overlap by"):
        make_run(tmp_path, "odd", "sae", radius_fraction=1.5)
    at = page(monkeypatch, tmp_path, "odd")
    assert not at.exception
    (box,) = [e for e in at.expander if "sphere overlaps" in e.label]
    assert not box.proto.expanded
    assert len(box.warning) == 1
    assert "overlap by" in box.warning[0].value
    assert not [w for w in at.warning if w not in box.warning]
    at = demo_page(monkeypatch, "demo-sae-mnist5k")
    assert not at.exception
    assert len([e for e in at.expander if "sphere overlaps" in e.label]) <= 1
    assert all("overlap" not in w.value for w in at.warning if w not in box.warning)


def test_a_photo_on_the_mnist_vae_leads_with_out_of_distribution(monkeypatch):
    at = upload(demo_page(monkeypatch, "demo-vae-mnist5k"), {"astronaut.png": astronaut_png()})
    assert not at.exception
    (row,) = table(at)
    assert list(row)[:3] == ["file", "status", "verdict"]
    assert row["verdict"] == "out of distribution"
    assert row["OOD"] is True
    assert row["OOD score"] > row["threshold"]
    badges = [m.value for m in at.markdown if "out of distribution" in m.value.lower()]
    assert badges, [m.value for m in at.markdown]
    card = next(m.value for m in at.markdown if m.value.startswith("**Out of distribution**"))
    assert "Nearest class would be digit" in card
    assert "reconstruction error" in card
    assert all(r["OOD"] for r in frame(at, "predicted").to_dict("records"))
    assert any("OOD rule" in c.value for c in at.caption)


def test_a_test_digit_on_the_mnist_vae_is_in_distribution(monkeypatch):
    from PIL import Image

    ds = load_dataset("mnist5k")
    img = Image.fromarray((ds.x_test[0, 0] * 255).astype("uint8"))
    at = upload(demo_page(monkeypatch, "demo-vae-mnist5k"), {"digit.png": encode(img)})
    assert not at.exception
    (row,) = table(at)
    assert row["verdict"] == "in distribution"
    assert row["digit"] == str(int(ds.y_test[0]))
