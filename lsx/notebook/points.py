"""What the notebook map shows, on the Python side: points, colourings, frames, thumbnails."""

from __future__ import annotations

from typing import Any

import numpy as np

from lsx.errors import ConfigError
from lsx.notebook.images import png_data_url

THUMB_PX = 72  # hover thumbnails are drawn this many pixels wide


class Points:
    """What the map shows, kept on the Python side: ids, coordinates, labels, latents, images."""

    def __init__(self, ids, xy, z, recon_error, labels, label_names, images=None, model=None):
        self.ids = np.asarray(ids, dtype=np.int64)  # (n,)
        self.xy = np.ascontiguousarray(xy, dtype=np.float32)  # (n, 2)
        self.z = np.asarray(z)  # (n, latent_numel)
        self.recon_error = None if recon_error is None else np.asarray(recon_error, np.float32)
        self.labels = {k: np.asarray(v) for k, v in labels.items()}  # attribute -> (n,)
        self.label_names = dict(label_names)  # attribute -> class names
        self.images = images  # (n, C, H, W) in [0, 1] or None (no thumbnails)
        self.model = model  # for decode(); None for a store without its run
        self.index = {int(i): k for k, i in enumerate(self.ids)}


# ------------------------------------------------------------------------------ colours, frames


def color_values(points: Points, color: str | int) -> tuple[str, str, np.ndarray, tuple]:
    """(kind, title, values (n,), category names) of a colouring; ConfigError if unknown."""
    dims = points.z.shape[1]
    if isinstance(color, str) and color.startswith("dim:"):
        color = color[4:]
    if isinstance(color, int) or (isinstance(color, str) and color.isdigit()):
        k = int(color)
        if not 0 <= k < dims:
            raise ConfigError(f"Latent dimension {k} is out of range; use 0 to {dims - 1}.")
        return "continuous", f"latent dim {k}", np.asarray(points.z[:, k], np.float32), ()
    if color == "error":
        if points.recon_error is None:
            raise ConfigError("These points have no reconstruction error; colour by 'label'.")
        return "continuous", "reconstruction error", points.recon_error, ()
    attr = next(iter(points.labels), None) if color == "label" else color
    if attr is None:
        return "category", "", np.zeros(points.ids.size, np.float32), ("all",)
    if attr not in points.labels:
        options = ["label", *points.labels, "error", f"0..{dims - 1}"]
        raise ConfigError(f"Unknown colour {color!r}; use one of {', '.join(options)}.")
    names = tuple(points.label_names.get(attr, ()))
    y = points.labels[attr]
    if len(names) <= int(y.max(initial=0)):
        names = tuple(str(v) for v in range(int(y.max(initial=0)) + 1))
    return "category", attr, y.astype(np.float32), names


def points_frame(points: Points, rows: np.ndarray) -> Any:
    """DataFrame of ``rows``: id, x, y, each label (its class name), recon_error, z0, z1, ..."""
    import pandas as pd

    cols: dict[str, Any] = {
        "id": points.ids[rows],
        "x": points.xy[rows, 0],
        "y": points.xy[rows, 1],
    }
    for attr, y in points.labels.items():
        names = points.label_names.get(attr, ())
        cols[attr] = [names[v] if 0 <= v < len(names) else str(v) for v in y[rows].tolist()]
    if points.recon_error is not None:
        cols["recon_error"] = points.recon_error[rows]
    z = np.asarray(points.z[rows], dtype=np.float32)
    cols.update({f"z{k}": z[:, k] for k in range(z.shape[1])})
    return pd.DataFrame(cols)


def positions(points: Points, ids: Any) -> list[int]:
    ids = [int(i) for i in np.asarray(list(ids) if ids is not None else [], dtype=np.int64)]
    missing = [i for i in ids if i not in points.index]
    if missing:
        raise ConfigError(
            f"{len(missing)} id(s) are not on this map (first: {missing[:5]}); ids run over "
            f"{points.ids.size} points, e.g. {points.ids[:5].tolist()}."
        )
    return [points.index[i] for i in ids]


def thumbnails(points: Points, rows: list[int]) -> dict[str, str]:
    """``{position: PNG data URL}`` of the inputs at positions ``rows`` ({} without images)."""
    if points.images is None:
        return {}
    n = points.ids.size
    return {str(i): png_data_url(points.images[i], THUMB_PX) for i in rows if 0 <= i < n}
