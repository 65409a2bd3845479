"""OOD detection (lsx.analysis.ood) on the shipped demo runs: real photos, uniform noise, blank
black and white images and inverted test images are flagged on every digit run, noise and blank
images on every texture run (see MUST_FLAG); held-out test images are not (false-positive rate
<= 2 %). The detector is fitted on one half of (at most) 500 test
images per run and the false-positive rate is measured on the other half, which neither the
scales nor the threshold saw. All 21 demo runs take about 20 s on 2 cores (one pass per run,
cached per run), so they all run by default.

The helpers (``open_demo``, ``ood_cases``, ``evaluate``) are also used by ``bench/ood.py``.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lsx.analysis.clusters import cluster_space
from lsx.analysis.embedding import encode_array
from lsx.analysis.knn import build_index
from lsx.analysis.lookup import lookup_images, ood_verdict, summary_row
from lsx.analysis.ood import SIGNALS, OodDetector, fit_detector, ood_signals, pixel_statistics
from lsx.checkpoint import load_checkpoint, read_header
from lsx.data import load_dataset
from lsx.data.uploads import prepare_upload
from lsx.errors import ConfigError, DataShapeError

CHECKPOINTS = Path(__file__).parents[2] / "checkpoints"
DEMOS = sorted(p.name for p in CHECKPOINTS.glob("demo-*") if (p / "model.safetensors").is_file())
N_TEST = 500  # test images per run at most: half fit the detector, half measure its FPR
MAX_FPR = 0.02
OOD_CLASSES = ("photo", "noise", "blank", "white", "inverted")
# What must be flagged, per dataset. On the procedural textures an all-white image IS a training
# class ("white solid": the nearest training image is 0.002 MSE away), so it is in distribution;
# downsized photos and inverted textures (red <-> cyan, blue <-> yellow, ...) are reconstructed,
# encoded and coloured like textures by these models and are caught only in part (bench/ood.py
# measures how often; docs/configured-latent-spaces.md reports it).
MUST_FLAG = {"textures": ("noise", "blank")}


# ------------------------------------------------------------------------------ helpers


def photos() -> dict[str, bytes]:
    """Three real RGB photos as PNG files (they go through the upload path)."""
    from skimage import data as skdata
    from sklearn.datasets import load_sample_image

    out = {}
    arrays = {
        "astronaut": skdata.astronaut(),
        "coffee": skdata.coffee(),
        "china": load_sample_image("china.jpg"),
    }
    for name, a in arrays.items():
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "PNG")
        out[name] = buf.getvalue()
    return out


@functools.cache
def _photo_bytes() -> tuple[tuple[str, bytes], ...]:
    return tuple(photos().items())


def ood_cases(input_shape: tuple[int, int, int], x_test: np.ndarray, seed: int = 0) -> dict:
    """Inputs that must be flagged, per class: ``photo`` (3 real photos resized and converted
    as uploads are), ``noise`` (20 uniform), ``blank`` (all 0), ``white`` (all 1) and
    ``inverted`` (``1 - x`` of up to 50 test images)."""
    shape = tuple(int(s) for s in input_shape)
    rng = np.random.default_rng(seed)
    x_photo = np.stack(
        [prepare_upload(data, shape, name=f"{name}.png").x for name, data in _photo_bytes()]
    )
    return {
        "photo": x_photo,
        "noise": rng.random((20, *shape), dtype=np.float32),
        "blank": np.zeros((1, *shape), dtype=np.float32),
        "white": np.ones((1, *shape), dtype=np.float32),
        "inverted": (1.0 - np.asarray(x_test[:50], dtype=np.float32)),
    }


@functools.cache
def open_demo(name: str) -> tuple:
    """A shipped demo run as the app opens it: (model, config, dataset, training latents)."""
    torch.set_num_threads(1)
    run_dir = CHECKPOINTS / name
    model, config = load_checkpoint(run_dir)
    model.eval().requires_grad_(False)
    data = read_header(run_dir)["data"]
    ds = load_dataset(
        data["spec"], image_size=data.get("image_size"), seed=int(data.get("seed", 0))
    )
    return model, config, ds, encode_array(model, ds.x_train)


def split_test(ds, n_max: int = N_TEST, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of (at most ``n_max``) seeded test images: (fit, held out)."""
    n = min(n_max, len(ds.x_test))
    ids = np.random.default_rng(seed).permutation(len(ds.x_test))[:n]
    return ds.x_test[np.sort(ids[: n // 2])], ds.x_test[np.sort(ids[n // 2 :])]


@functools.cache
def evaluate(name: str, n_max: int = N_TEST) -> dict:
    """FPR on held-out test images and detection rate per OOD class, for the page's verdict
    (:attr:`lsx.analysis.lookup.ImageLookup.ood`: detector, or'ed with the sphere rule for
    ``sae``), with the detector fitted on the other half of the test images."""
    model, config, ds, z_tr = open_demo(name)
    x_fit, x_held = split_test(ds, n_max)
    index = build_index(z_tr)
    space = cluster_space(model, z_tr, ds.labels_train, ds.label_names)
    detector = fit_detector(model, x_fit, index, space=space)

    def flagged(x: np.ndarray) -> np.ndarray:
        return lookup_images(model, space, x, index, 1, detector=detector, z_train=index).ood

    out = {
        "run": name,
        "kind": config.kind,
        "dataset": ds.spec,
        "signals": list(detector.signals_),
        "threshold": round(detector.threshold_, 3),
        "n_fit": len(x_fit),
        "n_held_out": len(x_held),
        "fpr": float(flagged(x_held).mean()),
    }
    cases = ood_cases(tuple(config.input_shape), x_held)
    out["detected"] = {c: float(flagged(x).mean()) for c, x in cases.items()}
    return out


# ------------------------------------------------------------------------------ demo runs


def _check(res: dict) -> None:
    assert res["fpr"] <= MAX_FPR, res
    for c in MUST_FLAG.get(res["dataset"], OOD_CLASSES):
        assert res["detected"][c] == 1.0, (c, res)


def test_demo_runs_are_shipped():
    assert len(DEMOS) >= 21, f"shipped demo runs missing; run `python -m lsx demo`: {DEMOS}"


@pytest.mark.parametrize("name", DEMOS)
def test_ood_is_flagged_and_held_out_test_images_are_not(name):
    _check(evaluate(name))


def test_the_astronaut_on_the_mnist_vae_leads_with_out_of_distribution():
    model, config, ds, z_tr = open_demo("demo-vae-mnist5k")
    space = cluster_space(model, z_tr, ds.labels_train, ds.label_names)
    detector = fit_detector(model, ds.x_test, z_tr, space=space)
    x = ood_cases(tuple(config.input_shape), ds.x_test)["photo"][:1]
    res = lookup_images(model, space, x, z_tr, 8, detector=detector, z_train=z_tr)
    verdict = ood_verdict(res, 0)
    assert verdict["ood"]
    assert verdict["score"] > verdict["threshold"]
    assert verdict["nearest"].startswith("digit ")
    assert any("reconstruction error" in r for r in verdict["reasons"]), verdict
    row = summary_row(res, 0)
    assert next(iter(row)) == "verdict"
    assert row["verdict"] == "out of distribution"
    assert row["OOD score"] > row["threshold"]


# ------------------------------------------------------------------------------ the detector


def _signals(n: int, seed: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "recon": np.exp(rng.normal(shift, 0.3, n)),
        "knn": np.exp(rng.normal(0.0, 0.3, n)),
    }


def test_detector_is_calibrated_on_fresh_reference_draws():
    det = OodDetector(alpha=0.01, seed=0).fit(_signals(2000, 0))
    assert det.signals_ == ("recon", "knn")
    assert det.fit(_signals(2000, 0)) is det  # fit returns self
    assert det.n_scale_ == 1000
    assert det.n_calibration_ == 1000
    assert det.alpha_ == pytest.approx(0.01)
    fpr = det.predict(_signals(20_000, 1)).mean()
    assert 0.003 <= fpr <= 0.02
    assert det.predict(_signals(200, 2, shift=3.0)).mean() == 1.0


def test_two_sided_signals_flag_too_small_values_and_one_sided_do_not():
    det = OodDetector().fit(_signals(400, 0))
    tiny = {"recon": np.array([1e-6, 1.0]), "knn": np.array([1.0, 1e-6])}
    np.testing.assert_array_equal(det.predict(tiny), [True, False])
    pct = det.percentiles(tiny)
    assert pct["recon"][0] == 0.0
    assert pct["knn"][1] == 0.0
    assert det.ratio_to_median(tiny)["recon"][0] < 1e-4
    assert "flags at most 1.0 %" in det.rule
    assert SIGNALS["knn"][1] is False


def test_a_constant_signal_is_left_out_and_the_threshold_is_the_max_for_small_sets():
    sig = _signals(60, 0)
    sig["knn"] = np.zeros(60)  # e.g. a non-spatial VQ-VAE: every latent is a codebook vector
    det = OodDetector(alpha=0.01).fit(sig)
    assert det.signals_ == ("recon",)
    assert det.alpha_ == pytest.approx(1 / 31)  # 30 calibration images: the max is the threshold
    assert det.threshold_ == pytest.approx(det.score(sig)[det.score(sig) > 0].max(), rel=0.5)


def test_detector_errors_say_what_to_do():
    with pytest.raises(ConfigError, match="not fitted yet"):
        OodDetector().score(_signals(5, 0))
    with pytest.raises(ConfigError, match="alpha must be a float"):
        OodDetector(alpha=0.7).fit(_signals(100, 0))
    with pytest.raises(DataShapeError, match="at least 20 held-out images"):
        OodDetector().fit(_signals(10, 0))
    with pytest.raises(DataShapeError, match="keys among"):
        OodDetector().fit({"colour": np.ones(50)})
    with pytest.raises(DataShapeError, match="one value per image"):
        OodDetector().fit({"recon": np.ones(50), "knn": np.ones(40)})
    det = OodDetector().fit(_signals(100, 0))
    with pytest.raises(DataShapeError, match="fitted on the signals"):
        det.score({"recon": np.ones(3)})
    with pytest.raises(DataShapeError, match="NaN or Inf"):
        det.score({"recon": np.array([np.nan]), "knn": np.ones(1)})


def test_pixel_statistics_signal_is_a_distance_to_the_reference_statistics():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 0.2, size=(200, 3, 8, 8)).astype(np.float32)
    stats = pixel_statistics(x)
    assert stats.shape == (200, 6 * 3 + 2)  # + saturation mean and spread for colour
    sig = {"recon": np.exp(rng.normal(0, 0.3, 200)), "pixels": stats}
    det = OodDetector().fit(sig)
    assert det.pixel_db_.shape == (100, stats.shape[1])
    bright = pixel_statistics(np.ones((2, 3, 8, 8), dtype=np.float32))
    flags = det.predict({"recon": np.ones(2), "pixels": bright})
    np.testing.assert_array_equal(flags, [True, True])
    assert det.percentiles({"recon": np.ones(2), "pixels": bright})["pixels"][0] == 100.0


def test_signals_of_a_tiny_vae_include_the_posterior_kl(tiny_dataset):
    from lsx.models import build_model, make_config

    model = build_model(make_config("vae", input_shape=(1, 8, 8), latent_dim=3, hidden_dim=8))
    model.eval()
    z_tr = encode_array(model, tiny_dataset.x_train)
    sig = ood_signals(model, tiny_dataset.x_test, z_tr)
    assert set(sig) == {"recon", "knn", "kl", "pixels"}
    assert all(len(v) == 16 for v in sig.values())
    assert (sig["kl"] >= 0).all()
    with pytest.raises(DataShapeError, match="training split"):
        ood_signals(model, tiny_dataset.x_test, z_tr[:, :2])
