"""Images for the notebook: PNG data URLs (hover thumbnails) and :func:`show_grid`."""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np

from lsx.errors import ConfigError, DataShapeError


def png_data_url(image: np.ndarray, width: int) -> str:
    from PIL import Image

    arr = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
    arr = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr[:3], 0, -1)  # (H, W) or (H, W, 3)
    img = Image.fromarray((arr * 255).round().astype(np.uint8))
    scale = max(1, width // img.width)
    img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def show_grid(images: np.ndarray, ncols: int = 8, scale: int = 2, pad: int = 2) -> Any:
    """A grid of images as a PIL image (a notebook cell displays it).

    Parameters
    ----------
    images : ndarray of shape (n, C, H, W) or (n, H, W), values in [0, 1]
        C is 1 (grey) or 3 (RGB); e.g. ``widget.decode()`` or ``lsx.analysis.decode_array(...)``.
    ncols : int
        Images per row.
    scale : int
        Pixel repetition (2: each image pixel becomes 2x2).
    pad : int
        White pixels between images.

    Returns
    -------
    PIL.Image.Image

    Raises
    ------
    DataShapeError
        Not 3-D/4-D, an empty array, or a channel count other than 1 or 3.
    """
    from PIL import Image

    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3) or len(x) == 0:
        raise DataShapeError(
            "show_grid takes a non-empty array of images of shape (n, C, H, W) with C = 1 or 3 "
            f"(or (n, H, W)); got shape {np.shape(images)}."
        )
    if ncols < 1 or scale < 1 or pad < 0:
        raise ConfigError(
            f"show_grid: ncols and scale must be >= 1, pad >= 0; got {ncols}, {scale}, {pad}."
        )
    n, c, h, w = x.shape
    cols, rows = min(ncols, n), math.ceil(n / ncols)
    grid = np.ones((c, rows * (h + pad) + pad, cols * (w + pad) + pad), dtype=np.float32)
    for k in range(n):
        r, q = divmod(k, cols)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        grid[:, top : top + h, left : left + w] = np.clip(x[k], 0, 1)
    arr = (grid[0] if c == 1 else np.moveaxis(grid, 0, -1)) * 255
    img = Image.fromarray(arr.round().astype(np.uint8))
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
