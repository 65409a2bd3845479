""":func:`explore`: a run, a model and data, or a latent store, turned into map points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from lsx.analysis import embed, project
from lsx.checkpoint import CONFIG_NAME, WEIGHTS_NAME, load_checkpoint, read_header
from lsx.data import Dataset, load_dataset
from lsx.errors import CheckpointError, ConfigError, DataShapeError
from lsx.latents import MANIFEST_NAME, LatentStore, open_store
from lsx.notebook.points import Points
from lsx.notebook.widget import widget_class
from lsx.paths import find_run

WHAT = (
    "Pass a run folder (e.g. checkpoints/demo-vae-mnist5k), a run name listed by `lsx runs`, a "
    "loaded model with data=..., or a latent store (lsx.latents.open_store)."
)


# ------------------------------------------------------------------------------ explore


def explore(
    run_or_model: str | Path | nn.Module | LatentStore,
    data: Dataset | str | np.ndarray | None = None,
    *,
    split: str = "test",
    color: str | int = "label",
    method: str = "pca",
    max_points: int | None = None,
    seed: int = 0,
    xy: np.ndarray | None = None,
) -> Any:
    """Open the interactive latent map of a run, a model and data, or a latent store.

    Parameters
    ----------
    run_or_model : str, Path, nn.Module or LatentStore
        A run folder, a run name (looked up in the checkpoint folders, ``lsx runs``), a loaded
        model (then ``data`` is required), or an opened latent store.
    data : Dataset, str, ndarray or None
        The images to map: a Dataset, a dataset spec (``"mnist5k"``, ``"folder:PATH"``) or an
        array of shape (n, C, H, W) in [0, 1]. Default for a run: the dataset it was trained on.
    split : {"test", "train", "all"}
        Which split of a Dataset to map ("all": train then test; ids count on across both).
    color : str or int
        ``"label"`` (the primary attribute), another label attribute, ``"error"``, or a latent
        dimension (``3`` or ``"dim:3"``).
    method : {"pca", "umap", "tsne"}
        How the latents are projected to 2-D (:func:`lsx.analysis.project`).
    max_points : int or None
        Map a seeded random subset of at most this many points (ids stay the original ones).
    seed : int
        Seed of the projection and of the subset.
    xy : ndarray of shape (n, 2) or None
        Coordinates to show instead of projecting (one row per point, before any subset).

    Returns
    -------
    ExploreWidget
        Display it; then read ``.selection`` (ids) and ``.selection_frame()`` (a DataFrame).

    Raises
    ------
    CheckpointError
        A path that is neither a run folder nor a latent store.
    DataShapeError
        Images of another shape than the model's input, an empty dataset, ``xy`` of the wrong
        shape.
    ConfigError
        A model without ``data``, an unknown split, colour or method.
    """
    widget = widget_class()  # first: without anywidget, say so before any work
    if isinstance(run_or_model, LatentStore):
        points = _store_points(run_or_model, data)
        title = f"{run_or_model.path.name} ({points.ids.size} of {run_or_model.n} rows)"
    elif isinstance(run_or_model, nn.Module):
        if data is None:
            raise ConfigError(
                "explore(model) needs data=...: a Dataset, a dataset name such as 'mnist5k', or "
                f"an array of images of shape (n, {_shape_text(run_or_model)})."
            )
        points = _model_points(run_or_model, data, split)
        title = f"{run_or_model.config.kind} model"
    elif isinstance(run_or_model, str | Path):
        path = _resolve_path(run_or_model)
        if (path / MANIFEST_NAME).is_file() and not (path / CONFIG_NAME).is_file():
            return explore(
                open_store(path),
                data,
                split=split,
                color=color,
                method=method,
                max_points=max_points,
                seed=seed,
                xy=xy,
            )
        model, _ = load_checkpoint(path)
        header = read_header(path)
        if data is None:
            recorded = header.get("data") or {}
            if not recorded.get("spec"):
                raise ConfigError(f"{path} does not record its dataset; pass data=... to explore.")
            data = load_dataset(
                recorded["spec"],
                image_size=recorded.get("image_size"),
                seed=int(recorded.get("seed", 0)),
            )
        points = _model_points(model, data, split)
        title = path.name
    else:
        raise ConfigError(f"explore() got a {type(run_or_model).__name__}. {WHAT}")
    points = _subset(points, max_points, seed)
    _set_xy(points, xy, method, seed)
    return widget(points, color=color, title=title)


def _resolve_path(value: str | Path) -> Path:
    path = Path(value).expanduser()
    if not path.exists() and isinstance(value, str):
        path = find_run(value) or path
    if not path.is_dir():
        raise CheckpointError(f"{value!s} is not a folder. {WHAT}")
    is_run = (path / CONFIG_NAME).is_file() and (path / WEIGHTS_NAME).is_file()
    if not is_run and not (path / MANIFEST_NAME).is_file():
        raise CheckpointError(
            f"{path} is not a run folder (it has no {CONFIG_NAME} + {WEIGHTS_NAME}) nor a latent "
            f"store (no {MANIFEST_NAME}). {WHAT}"
        )
    return path


def _shape_text(model: nn.Module) -> str:
    return ", ".join(map(str, _input_shape(model)))


def _input_shape(model: nn.Module) -> tuple[int, ...]:
    return tuple(getattr(getattr(model, "config", None), "input_shape", ("C", "H", "W")))


def _as_images(model: nn.Module, data: Dataset | str | np.ndarray, split: str) -> tuple:
    """(x, labels, label_names) of ``data``; clear errors for a wrong shape or no images."""
    if split not in ("test", "train", "all"):
        raise ConfigError(f"split must be 'test', 'train' or 'all'; got {split!r}.")
    if isinstance(data, str):
        data = load_dataset(data)
    if isinstance(data, Dataset):
        parts = ("train", "test") if split == "all" else (split,)
        x = np.concatenate([getattr(data, f"x_{p}") for p in parts])
        labels = {
            a: np.concatenate([getattr(data, f"labels_{p}")[a] for p in parts])
            for a in data.label_names
        }
        names = dict(data.label_names)
    else:
        x = np.asarray(data)
        labels, names = {}, {}
    expected = _input_shape(model)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise DataShapeError(
            f"explore: the {model.config.kind} model takes images of shape (n, "
            f"{', '.join(map(str, expected))}); data has shape {x.shape}. Pass the dataset the "
            "model was trained on (or images resized to its input shape)."
        )
    if len(x) < 3:
        raise DataShapeError(
            f"explore: data holds {len(x)} image(s); pass at least 3 images of shape (n, "
            f"{', '.join(map(str, expected))}) to draw a map."
        )
    return x, labels, names


def _model_points(model: nn.Module, data: Dataset | str | np.ndarray, split: str) -> Points:
    x, labels, names = _as_images(model, data, split)
    model.eval()
    emb = embed(model, x)
    return Points(
        np.arange(len(x)),
        np.zeros((len(x), 2)),
        emb.z,
        emb.recon_error,
        labels,
        names,
        images=x,
        model=model,
    )


def _store_points(store: LatentStore, data: Any) -> Points:
    if store.n < 3:
        raise DataShapeError(f"explore: the store {store.path} holds {store.n} rows; need >= 3.")
    run_dir = store.path.parents[1]  # <run>/stores/<slug>
    model = None
    if (run_dir / CONFIG_NAME).is_file() and (run_dir / WEIGHTS_NAME).is_file():
        model, _ = load_checkpoint(run_dir)
    images = np.asarray(data) if isinstance(data, np.ndarray) else None
    if images is not None and len(images) != store.n:
        raise DataShapeError(
            f"explore: data has {len(images)} images but the store has {store.n} rows; pass the "
            "images the store was encoded from (same order), or no data (no thumbnails)."
        )
    return Points(
        store.rows,
        np.zeros((store.n, 2)),
        store.z,
        store.recon_error,
        store.labels,
        store.label_names,
        images=images,
        model=model,
    )


def _subset(points: Points, max_points: int | None, seed: int) -> Points:
    n = points.ids.size
    if max_points is None or max_points >= n:
        return points
    if max_points < 3:
        raise ConfigError(f"max_points must be >= 3 (or None for all); got {max_points}.")
    keep = np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))
    return Points(
        points.ids[keep],
        points.xy[keep],
        points.z[keep],
        None if points.recon_error is None else points.recon_error[keep],
        {a: y[keep] for a, y in points.labels.items()},
        points.label_names,
        None if points.images is None else points.images[keep],
        points.model,
    )


def _set_xy(points: Points, xy: np.ndarray | None, method: str, seed: int) -> None:
    n = points.ids.size
    if xy is not None:
        xy = np.asarray(xy, dtype=np.float32)
        if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) not in (n, int(points.ids.max()) + 1):
            raise DataShapeError(f"explore: xy must have shape ({n}, 2); got {xy.shape}.")
        points.xy = np.ascontiguousarray(xy if len(xy) == n else xy[points.ids])
    else:
        points.xy = project(np.asarray(points.z, dtype=np.float32), method, 2, seed=seed)
