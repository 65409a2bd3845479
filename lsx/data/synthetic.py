"""Procedural clothes-like textures: 6 patterns x 6 colours, 32x32 RGB, numpy only.

Each image is a base colour with a pattern drawn in a contrasting shade of the same colour, at a
random angle, period and phase, with a gentle brightness gradient and pixel noise. Everything is
vectorised over images (about 0.2 s for 4,000 images) and deterministic given the seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lsx.data.base import Dataset
from lsx.data.datasets import split_dataset
from lsx.errors import ConfigError
from lsx.files import atomic_write_with

PATTERNS = ("solid", "stripes", "checks", "dots", "zigzag", "plaid")
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.80, 0.12, 0.12),
    "green": (0.13, 0.58, 0.20),
    "blue": (0.12, 0.28, 0.80),
    "yellow": (0.95, 0.82, 0.12),
    "purple": (0.50, 0.18, 0.65),
    "white": (0.93, 0.93, 0.91),
}
IMAGE_SIZE = 32
PER_COMBINATION = 111  # 6 patterns x 6 colours x 111 = 3,996 images
NOISE_STD = 0.03


def generate_textures(
    n_per_combination: int = PER_COMBINATION, *, seed: int = 0, size: int = IMAGE_SIZE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw a balanced set of textures: ``n_per_combination`` per (pattern, colour).

    Parameters
    ----------
    n_per_combination : int
        Images per pattern-colour combination.
    seed : int
        Seed of every random choice; the same seed gives the same images.
    size : int
        Height and width in pixels.

    Returns
    -------
    x : ndarray of shape (n, 3, size, size), float32 in [0, 1]
    pattern : ndarray of shape (n,), int64, index into ``PATTERNS``
    colour : ndarray of shape (n,), int64, index into ``COLOURS``
    """
    rng = np.random.default_rng(seed)
    combo = np.repeat(np.arange(len(PATTERNS) * len(COLOURS)), n_per_combination)
    pattern, colour = np.divmod(combo, len(COLOURS))
    n = len(combo)
    u, v, period = _rotated_coords(rng, n, size)  # (n, size, size) in periods, (n, 1, 1) px
    mask = np.zeros((n, size, size), dtype=np.float32)  # 0 = base colour, 1 = pattern shade
    for k, name in enumerate(PATTERNS):
        idx = np.flatnonzero(pattern == k)
        if name != "solid":
            mask[idx] = _PATTERN_FNS[name](u[idx], v[idx], period[idx])
    base, shade = _colours(rng, colour)  # (n, 3) each
    x = (shade - base)[:, :, None, None] * mask[:, None]  # (n, 3, size, size), in place below
    x += base[:, :, None, None]
    x *= _lighting(rng, n, size)[:, None]  # gentle gradient, like light across cloth
    x += NOISE_STD * rng.standard_normal(size=x.shape, dtype=np.float32)
    return np.clip(x, 0.0, 1.0, out=x), pattern, colour


def load_textures(*, seed: int = 0) -> Dataset:
    """The ``textures`` dataset: 3,996 generated 32x32 RGB clothes-like textures.

    Parameters
    ----------
    seed : int
        Seed of the generator (a different seed gives different images). The train/test split
        itself is fixed: stratified over pattern x colour with ``SPLIT_SEED``.

    Returns
    -------
    Dataset
        ``input_shape`` (3, 32, 32); attributes ``"pattern"`` (primary) and ``"colour"``.
    """
    x, pattern, colour = generate_textures(seed=seed)
    note = (
        f"generated with seed {seed}: {len(PATTERNS)} patterns x {len(COLOURS)} colours x "
        f"{PER_COMBINATION} images, random angle, period, phase, lighting and pixel noise"
    )
    return split_dataset(
        "textures",
        x,
        {"pattern": pattern, "colour": colour},
        {"pattern": PATTERNS, "colour": tuple(COLOURS)},
        (note,),
    )


def _rotated_coords(
    rng: np.random.Generator, n: int, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel grid rotated by a random angle and divided by a random period, plus a phase."""
    angle = rng.uniform(0.0, np.pi, size=(n, 1, 1))
    period = rng.uniform(6.0, 11.0, size=(n, 1, 1))  # pixels per pattern repeat
    phase = rng.uniform(0.0, 1.0, size=(2, n, 1, 1))
    row, col = np.mgrid[0:size, 0:size].astype(np.float32) - (size - 1) / 2
    u = (np.cos(angle) * col + np.sin(angle) * row) / period + phase[0]
    v = (-np.sin(angle) * col + np.cos(angle) * row) / period + phase[1]
    return u.astype(np.float32), v.astype(np.float32), period.astype(np.float32)


def _band(t: np.ndarray, duty: float, period: np.ndarray) -> np.ndarray:
    """1 inside a band of width ``duty`` (in periods) repeating every period; edges antialiased."""
    dist = np.abs(np.mod(t + 0.5, 1.0) - 0.5)  # distance to the band centre, in periods
    return np.clip((duty / 2 - dist) * period + 0.5, 0.0, 1.0)  # +-0.5 px linear ramp


def _stripes(u: np.ndarray, v: np.ndarray, period: np.ndarray) -> np.ndarray:
    return _band(u, 0.5, period)


def _checks(u: np.ndarray, v: np.ndarray, period: np.ndarray) -> np.ndarray:
    a, b = _band(u, 0.5, period), _band(v, 0.5, period)
    return a + b - 2 * a * b  # soft XOR: a chequerboard


def _dots(u: np.ndarray, v: np.ndarray, period: np.ndarray) -> np.ndarray:
    du, dv = np.mod(u, 1.0) - 0.5, np.mod(v, 1.0) - 0.5
    radius_px = np.sqrt(du**2 + dv**2) * period  # distance to the nearest dot centre
    return np.clip(0.27 * period - radius_px + 0.5, 0.0, 1.0)


def _zigzag(u: np.ndarray, v: np.ndarray, period: np.ndarray) -> np.ndarray:
    tri = 2 * np.abs(np.mod(v, 1.0) - 0.5)  # triangle wave 0..1 along v
    return _band(u + 0.8 * tri, 0.35, period / 1.6)  # narrower ramp: the slope is steeper


def _plaid(u: np.ndarray, v: np.ndarray, period: np.ndarray) -> np.ndarray:
    # Tartan: broad half-tone bands both ways (overlap -> full shade) plus a thin line in
    # each gap, so it has three tones where checks have two.
    broad = 0.5 * (_band(u, 0.4, period) + _band(v, 0.4, period))
    thin = np.maximum(_band(u + 0.5, 0.08, period), _band(v + 0.5, 0.08, period))
    return np.maximum(broad, thin)


_PATTERN_FNS = {
    "stripes": _stripes,
    "checks": _checks,
    "dots": _dots,
    "zigzag": _zigzag,
    "plaid": _plaid,
}


def _colours(rng: np.random.Generator, colour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Jittered base colour per image and a contrasting shade of it for the pattern."""
    table = np.array(list(COLOURS.values()), dtype=np.float32)  # (n_colours, 3)
    base = np.clip(table[colour] + rng.normal(0.0, 0.04, size=(len(colour), 3)), 0.0, 1.0)
    luma = table @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # (n_colours,)
    light = (luma > 0.45)[colour][:, None]  # from the nominal colour: same rule per class
    shade = np.where(light, base * 0.35, base * 0.4 + 0.6)  # darken light, lighten dark
    return base.astype(np.float32), shade.astype(np.float32)


def _lighting(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Multiplicative linear brightness gradient, +-8 % across the image."""
    direction = rng.uniform(0.0, 2 * np.pi, size=(n, 1, 1))
    strength = rng.uniform(0.0, 0.08, size=(n, 1, 1))
    ramp = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    grad = np.cos(direction) * ramp[None, None, :] + np.sin(direction) * ramp[None, :, None]
    return (1.0 + strength * grad).astype(np.float32)  # (n, size, size)


# ------------------------------------------------------------------------------ large .npy sets

NPY_CLASSES = 10
NPY_SIZE = 16
NPY_CHUNK = 20_000  # rows generated at a time: ~20 MB of float32 intermediates


def write_pattern_npy(
    path: str | Path,
    n: int,
    *,
    size: int = NPY_SIZE,
    n_classes: int = NPY_CLASSES,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write a labelled synthetic image set of any size as ``npy:`` files, chunk by chunk.

    Each class is a smooth random grey pattern; an image is its class pattern shifted by up to 4
    pixels plus pixel noise, so classes overlap a little and a model has something to learn.
    Memory stays bounded by :data:`NPY_CHUNK` rows whatever ``n`` is (the images go straight
    into a memory-mapped ``.npy``), and the same seed gives the same files.

    Parameters
    ----------
    path : str or Path
        The images file (``.npy``); the labels go beside it as ``<stem>.labels.npy``.
    n : int
        Number of images (>= 1).
    size : int
        Height and width (4 to 256).
    n_classes : int
        Number of classes (2 to 1000).
    seed : int

    Returns
    -------
    images, labels : Path
        uint8 of shape (n, 1, size, size) and int64 of shape (n,); open them with
        ``lsx.data.lazy.open_source(f"npy:{images}")``.
    """
    for name, value, low, high in (
        ("n", n, 1, 10**9),
        ("size", size, 4, 256),
        ("n_classes", n_classes, 2, 1000),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ConfigError(f"{name} must be an int in [{low}, {high}]; got {value!r}.")
    path = Path(path)
    if path.suffix != ".npy":
        raise ConfigError(f"The images file must end in .npy; got {path.name!r}.")
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0, 1, size=(n_classes, size + 4, size + 4)).astype(np.float32)
    protos = (raw + np.roll(raw, 1, 1) + np.roll(raw, 1, 2) + np.roll(raw, 1, (1, 2))) / 4
    protos = (protos - protos.min()) / (np.ptp(protos) + 1e-6)  # full contrast
    y = rng.integers(0, n_classes, n).astype(np.int64)
    labels = path.with_name(path.stem + ".labels.npy")
    tmp = path.with_name(f".tmp-{path.name}")  # renamed when complete: no half-written file
    x = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, 1, size, size))
    grid = np.arange(size)
    for start in range(0, n, NPY_CHUNK):
        part = y[start : start + NPY_CHUNK]
        dy, dx = rng.integers(0, 5, (2, len(part)))
        rows = (dy[:, None] + grid)[:, :, None]  # (m, size, 1)
        cols = (dx[:, None] + grid)[:, None, :]  # (m, 1, size)
        img = protos[part[:, None, None], rows, cols]
        img = img + rng.normal(0, 0.08, img.shape).astype(np.float32)
        x[start : start + len(part), 0] = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    x.flush()
    del x

    def save_labels(tmp_path: Path) -> None:
        with open(tmp_path, "wb") as fh:  # a file object: np.save would append ".npy" to a name
            np.save(fh, y, allow_pickle=False)

    atomic_write_with(labels, save_labels)
    os.replace(tmp, path)
    return path, labels
