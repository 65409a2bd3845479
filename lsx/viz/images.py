"""Images for display: float arrays in [0, 1] in, upscaled ``uint8`` arrays out.

Plotly hover labels cannot show images (plotly/plotly.js#1323), so the app shows selected samples
as an image gallery and one sample as an input | reconstruction | residual triptych. Upscaling is
nearest-neighbour so 8x8 digits stay crisp. No Streamlit here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from plotly.colors import get_colorscale, sample_colorscale

from lsx.errors import DataShapeError

RESIDUAL_SCALE = "Inferno"  # dark = no error, bright = large error
GALLERY_PX = 64  # about this many pixels per gallery image side
TRIPTYCH_PX = 112  # about this many pixels per decode-panel image side (3 fit a column)
_PAD_VALUE = 255  # white gaps between images


def _as_chw(x: np.ndarray, name: str = "image") -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise DataShapeError(
            f"{name} must have shape (C, H, W) with C = 1 or 3, or (H, W); got {x.shape}."
        )
    return x


def scale_for(height: int, target_px: int) -> int:
    """Integer upscaling factor that brings ``height`` pixels close to ``target_px``.

    Parameters
    ----------
    height : int
        Image height in pixels.
    target_px : int
        Wanted height after upscaling.

    Returns
    -------
    int
        At least 1 (images are never shrunk).
    """
    return max(1, round(target_px / max(height, 1)))


def to_uint8(x: np.ndarray, *, scale: int = 1) -> np.ndarray:
    """One image in [0, 1] as ``uint8`` for ``st.image``, upscaled by an integer factor.

    Parameters
    ----------
    x : ndarray of shape (C, H, W) with C = 1 or 3, or (H, W)
        Values are clipped to [0, 1].
    scale : int, default=1
        Nearest-neighbour upscaling factor.

    Returns
    -------
    ndarray of shape (H * scale, W * scale) (grey) or (H * scale, W * scale, 3) (RGB), uint8
    """
    x = _as_chw(x)
    img = np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)  # (C, H, W)
    img = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
    if scale > 1:
        img = img.repeat(scale, axis=0).repeat(scale, axis=1)
    return img


def _lut(scale_name: str) -> np.ndarray:
    """256 x 3 uint8 lookup table sampled from a Plotly colour scale."""
    colors = sample_colorscale(get_colorscale(scale_name), np.linspace(0, 1, 256).tolist())
    rgb = [[float(v) for v in c[c.index("(") + 1 : -1].split(",")[:3]] for c in colors]
    return np.rint(np.asarray(rgb)).astype(np.uint8)


def heatmap_uint8(values: np.ndarray, *, vmax: float, scale: int = 1) -> np.ndarray:
    """A (H, W) array of non-negative values as an RGB heat map (``RESIDUAL_SCALE``).

    Parameters
    ----------
    values : ndarray of shape (H, W)
    vmax : float
        Value shown at the bright end; 0 maps to the dark end.
    scale : int, default=1
        Nearest-neighbour upscaling factor.

    Returns
    -------
    ndarray of shape (H * scale, W * scale, 3), uint8
    """
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2:
        raise DataShapeError(f"A heat map needs a (H, W) array; got shape {values.shape}.")
    level = np.clip(values / max(float(vmax), 1e-12), 0.0, 1.0)
    img = _lut(RESIDUAL_SCALE)[np.rint(level * 255).astype(np.int64)]  # (H, W, 3)
    if scale > 1:
        img = img.repeat(scale, axis=0).repeat(scale, axis=1)
    return img


def side_by_side(images: Sequence[np.ndarray], *, gap: int = 2) -> np.ndarray:
    """Join images of one height left to right with white gaps (grey ones become RGB if mixed).

    Parameters
    ----------
    images : sequence of ndarray of shape (H, W) or (H, W, 3), uint8
    gap : int, default=2
        Pixels between images.

    Returns
    -------
    ndarray of shape (H, total_width) or (H, total_width, 3), uint8
    """
    if not images:
        raise DataShapeError("side_by_side needs at least one image.")
    rgb = any(img.ndim == 3 for img in images)
    tiles = [
        np.repeat(img[..., None], 3, axis=2) if rgb and img.ndim == 2 else img for img in images
    ]
    h = tiles[0].shape[0]
    if any(t.shape[0] != h for t in tiles):
        raise DataShapeError(
            f"side_by_side needs images of one height; got {[t.shape for t in tiles]}."
        )
    spacer = np.full((h, gap, 3) if rgb else (h, gap), _PAD_VALUE, dtype=np.uint8)
    parts: list[np.ndarray] = []
    for i, tile in enumerate(tiles):
        if i:
            parts.append(spacer)
        parts.append(tile)
    return np.concatenate(parts, axis=1)


def pair_tiles(
    x: np.ndarray, x_hat: np.ndarray, *, target_px: int = GALLERY_PX
) -> list[np.ndarray]:
    """Each input beside its reconstruction, as one image per sample (for a gallery).

    Parameters
    ----------
    x, x_hat : ndarrays of shape (n, C, H, W) in [0, 1]
        Inputs and their reconstructions.
    target_px : int, default=64
        About this many pixels per image side after upscaling.

    Returns
    -------
    list of n ndarrays of shape (H * s, 2 * W * s + 2) or (..., 3), uint8
        Left: input; right: reconstruction.
    """
    x, x_hat = np.asarray(x), np.asarray(x_hat)
    if x.shape != x_hat.shape or x.ndim != 4:
        raise DataShapeError(
            f"Inputs and reconstructions must both have shape (n, C, H, W); got {x.shape} and "
            f"{x_hat.shape}."
        )
    s = scale_for(x.shape[2], target_px)
    return [
        side_by_side([to_uint8(a, scale=s), to_uint8(b, scale=s)])
        for a, b in zip(x, x_hat, strict=True)
    ]


def decode_triptych(
    x: np.ndarray, x_hat: np.ndarray, *, target_px: int = TRIPTYCH_PX
) -> tuple[list[np.ndarray], list[str], str]:
    """Input, reconstruction and absolute residual of one sample, with captions.

    Parameters
    ----------
    x, x_hat : ndarrays of shape (C, H, W) in [0, 1]
        One input and its reconstruction.
    target_px : int, default=112
        About this many pixels per image side after upscaling.

    Returns
    -------
    images : list of 3 uint8 ndarrays
        Input, reconstruction, ``|x - x_hat|`` (mean over channels) as a heat map scaled to its
        own maximum.
    captions : list of 3 str
        Short (``st.image`` widens an image to its caption).
    summary : str
        The MSE and the largest absolute residual, e.g. ``"MSE 0.0094 · max |residual| 0.770"``.
    """
    x, x_hat = _as_chw(x, "x"), _as_chw(x_hat, "x_hat")
    if x.shape != x_hat.shape:
        raise DataShapeError(f"x {x.shape} and x_hat {x_hat.shape} must have the same shape.")
    s = scale_for(x.shape[1], target_px)
    residual = np.abs(x - x_hat).mean(axis=0)  # (H, W)
    vmax = float(residual.max())
    mse = float(np.mean((x - x_hat) ** 2))
    images = [
        to_uint8(x, scale=s),
        to_uint8(x_hat, scale=s),
        heatmap_uint8(residual, vmax=vmax, scale=s),
    ]
    summary = f"MSE {mse:.4f} · max |residual| {vmax:.3f} (brightest pixel)"
    return images, ["input", "reconstruction", "|residual|"], summary
