"""Semantics-preserving image transforms for consistency regularisation, in plain torch.

The named sets follow the official CR-VAE augmentations (docs/methods.md; Sinha & Dieng,
NeurIPS 2021): ``simple`` = RandomAffine(degrees=15, translate=(0.05, 0.05), scale=(0.9, 1.1)),
``large`` = RandomAffine(degrees=30, translate=(0.1, 0.1), scale=(0.75, 1.25)), ``*_jitter`` adds
ColorJitter(brightness=0.2, contrast=0.5, hue=0.2). No torchvision (its import fails with the
pinned CPU torch): rotation, translation, scaling and crops are one
``F.affine_grid`` + ``F.grid_sample`` per batch (one random matrix per sample, zero fill as
torchvision's default), flips are ``torch.flip``, brightness and contrast are per-sample
intensity maps, hue is an RGB -> HSV -> RGB round trip.

Each set is a tuple of primitive ops, so analysis can score every op on its own
(:meth:`TransformSet.op`). Randomness comes from the ``generator`` argument (seeded) or, during
training, from torch's global RNG (which the trainer seeds and saves for resume).
``strength`` scales every magnitude (1 = the published values).

Sets per dataset (lsx choices, docs/methods.md says which set the paper used per dataset is NOT
FOUND): ``simple``/``large`` for digits and MNIST; ``flips``, ``crops``, ``flips_crops`` and
``textures`` (flips + crops + colour jitter) for textures. Colour jitter needs RGB images, and
flips are refused for digit datasets (a mirrored 2 or 7 is not a digit of the same class).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lsx.errors import ConfigError, DataShapeError

GEOMETRIC = ("rotate", "translate", "scale", "crop")
PHOTOMETRIC = ("brightness", "contrast", "hue")
FLIPS = ("hflip", "vflip")
OPS = (*FLIPS, *GEOMETRIC, *PHOTOMETRIC)
DIGIT_DATASETS = ("digits", "mnist5k")  # flipped digits change (or lose) their class
MAX_STRENGTH = 3.0


@dataclass(frozen=True)
class Op:
    """One primitive random transform and its magnitude at strength 1.

    ``rotate``: degrees (uniform in +-amount); ``translate``: fraction of the side (per axis);
    ``scale``: +-fraction around 1; ``crop``: largest share of the side cut away (the kept
    square is resized back); ``hflip``/``vflip``: probability; ``brightness``/``contrast``:
    +-factor around 1; ``hue``: +-shift as a fraction of the colour circle.
    """

    name: str
    amount: float

    def scaled(self, strength: float) -> float:
        """The magnitude at ``strength`` (flip probabilities stay as they are)."""
        if self.name in FLIPS:
            return self.amount
        limit = {"hue": 0.5, "crop": 0.9, "scale": 0.9, "translate": 0.45}.get(self.name, math.inf)
        return min(self.amount * strength, limit)


@dataclass(frozen=True)
class TransformSet:
    """A named set of ops applied in a fixed order: flips, one affine resampling, intensities."""

    name: str
    ops: tuple[Op, ...]
    summary: str

    @property
    def needs_rgb(self) -> bool:
        return any(op.name in PHOTOMETRIC for op in self.ops)

    @property
    def has_flips(self) -> bool:
        return any(op.name in FLIPS for op in self.ops)

    @property
    def op_names(self) -> tuple[str, ...]:
        return tuple(op.name for op in self.ops)

    def op(self, name: str) -> TransformSet:
        """The set reduced to one of its ops (for per-transform consistency scores)."""
        kept = tuple(op for op in self.ops if op.name == name)
        if not kept:
            raise ConfigError(
                f"The transform set {self.name!r} has no op {name!r}; its ops are "
                f"{', '.join(self.op_names)}."
            )
        return TransformSet(f"{self.name}:{name}", kept, f"{name} from {self.name}")

    def __call__(
        self,
        x: torch.Tensor,
        *,
        strength: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Transform a batch, one random draw per sample.

        Parameters
        ----------
        x : Tensor of shape (batch, C, H, W), values in [0, 1]
        strength : float, default=1.0
            Multiplies every magnitude; in (0, 3].
        generator : torch.Generator or None
            Source of randomness; None uses torch's global RNG.

        Returns
        -------
        Tensor of the same shape, in [0, 1]
        """
        check_strength(strength)
        if x.dim() != 4:
            raise DataShapeError(f"Transforms take a batch (batch, C, H, W); got {tuple(x.shape)}.")
        if self.needs_rgb and x.shape[1] != 3:
            raise ConfigError(_rgb_message(self.name, x.shape[1]))
        amounts = {op.name: op.scaled(strength) for op in self.ops}
        for name in FLIPS:
            if name in amounts:
                x = _flip(x, amounts[name], dims=(3,) if name == "hflip" else (2,), gen=generator)
        if any(name in amounts for name in GEOMETRIC):
            x = _affine(x, amounts, generator)
        if "brightness" in amounts:
            x = (x * _uniform(len(x), 1.0, amounts["brightness"], x, generator)).clamp(0, 1)
        if "contrast" in amounts:
            mean = x.mean(dim=(1, 2, 3), keepdim=True)  # grey level of each image
            c = _uniform(len(x), 1.0, amounts["contrast"], x, generator)
            x = ((x - mean) * c + mean).clamp(0, 1)
        if "hue" in amounts:
            x = _hue_shift(x, amounts["hue"], generator)
        return x


def _affine_set(name: str, degrees: float, translate: float, scale: float, summary: str) -> list:
    ops = (Op("rotate", degrees), Op("translate", translate), Op("scale", scale))
    jitter = (Op("brightness", 0.2), Op("contrast", 0.5), Op("hue", 0.2))
    return [
        TransformSet(name, ops, summary),
        TransformSet(f"{name}_jitter", ops + jitter, summary + " + colour jitter (RGB only)"),
    ]


_SETS = [
    *_affine_set("simple", 15.0, 0.05, 0.1, "small affine: rotate 15°, shift 5 %, scale 0.9–1.1"),
    *_affine_set("large", 30.0, 0.1, 0.25, "large affine: rotate 30°, shift 10 %, scale 0.75–1.25"),
    TransformSet("flips", (Op("hflip", 0.5), Op("vflip", 0.5)), "random horizontal/vertical flips"),
    TransformSet("crops", (Op("crop", 0.3),), "random crops of 70–100 % of the side, resized back"),
    TransformSet(
        "flips_crops",
        (Op("hflip", 0.5), Op("vflip", 0.5), Op("crop", 0.3)),
        "flips + crops (textures, grey or RGB)",
    ),
    TransformSet(
        "textures",
        (Op("hflip", 0.5), Op("vflip", 0.5), Op("crop", 0.3))
        + (Op("brightness", 0.2), Op("contrast", 0.5), Op("hue", 0.2)),
        "flips + crops + colour jitter (RGB textures)",
    ),
]
TRANSFORM_SETS: dict[str, TransformSet] = {s.name: s for s in _SETS}


def check_strength(strength: float) -> None:
    ok = isinstance(strength, int | float) and not isinstance(strength, bool)
    if not ok or not 0.0 < strength <= MAX_STRENGTH:
        raise ConfigError(
            f"transform_strength must be a finite number in (0, {MAX_STRENGTH}] (1 = the "
            f"published magnitudes). Got {strength!r} instead."
        )


def get_set(name: str) -> TransformSet:
    """The named set; ConfigError listing the known sets (and the closest name) otherwise."""
    if name not in TRANSFORM_SETS:
        close = difflib.get_close_matches(str(name), TRANSFORM_SETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"Unknown transform set {name!r}{hint}; known sets: {', '.join(TRANSFORM_SETS)}."
        )
    return TRANSFORM_SETS[name]


def default_set(input_shape: Sequence[int]) -> str:
    """The set used when none is named: ``simple`` for grey images, ``textures`` for RGB."""
    return "textures" if int(input_shape[0]) == 3 else "simple"


def _rgb_message(name: str, channels: int) -> str:
    return (
        f"The transform set {name!r} includes colour jitter, which needs RGB images, but the data "
        f"has {channels} channel(s). Use {name.replace('_jitter', '')!r} for greyscale data (or "
        "'flips_crops' for textures)."
    )


def resolve_set(name: str, input_shape: Sequence[int], dataset: str | None = None) -> TransformSet:
    """The set to use for this data: ``""`` picks :func:`default_set`; unsuitable sets are refused.

    Parameters
    ----------
    name : str
        A key of ``TRANSFORM_SETS``, or ``""`` for the default of the data.
    input_shape : (C, H, W)
    dataset : str or None
        The dataset's spec (``"mnist5k"``, ``"folder:..."``); flips are refused for digits.

    Raises
    ------
    ConfigError
        Unknown set, colour jitter on greyscale data, or flips on a digit dataset.
    """
    chosen = get_set(name or default_set(input_shape))
    channels = int(input_shape[0])
    if chosen.needs_rgb and channels != 3:
        raise ConfigError(_rgb_message(chosen.name, channels))
    if chosen.has_flips and dataset in DIGIT_DATASETS:
        raise ConfigError(
            f"The transform set {chosen.name!r} flips images, which does not preserve the "
            f"meaning of digits (dataset {dataset!r}: a mirrored 2 is no 2). Use 'simple' or "
            "'large' for digits."
        )
    return chosen


# ------------------------------------------------------------------------------ primitives


def _rand(n: int, like: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """n uniform numbers in [0, 1), drawn on the CPU (same stream on every device)."""
    return torch.rand(n, generator=gen).to(device=like.device, dtype=like.dtype)


def _uniform(
    n: int, center: float, half: float, like: torch.Tensor, gen: torch.Generator | None
) -> torch.Tensor:
    """Per-sample factors uniform in [max(0, center - half), center + half], shape (n, 1, 1, 1)."""
    low, high = max(0.0, center - half), center + half
    return (low + (high - low) * _rand(n, like, gen)).view(n, 1, 1, 1)


def _flip(x: torch.Tensor, p: float, dims: tuple[int, ...], gen: torch.Generator | None):
    hit = (_rand(len(x), x, gen) < p).view(-1, 1, 1, 1)
    return torch.where(hit, torch.flip(x, dims), x)


def _affine(x: torch.Tensor, amounts: dict[str, float], gen: torch.Generator | None):
    """Rotation, translation, scaling and crops as one resampling with a per-sample matrix."""
    n, _, h, w = x.shape
    angle = amounts.get("rotate", 0.0) * (2 * _rand(n, x, gen) - 1)  # degrees
    s = 1.0 + amounts.get("scale", 0.0) * (2 * _rand(n, x, gen) - 1)
    tx = amounts.get("translate", 0.0) * w * (2 * _rand(n, x, gen) - 1)  # pixels
    ty = amounts.get("translate", 0.0) * h * (2 * _rand(n, x, gen) - 1)
    if "crop" in amounts:  # keep a square of side c, anywhere inside, and blow it up by 1/c
        c = 1.0 - amounts["crop"] * _rand(n, x, gen)  # kept share of the side
        ox = (1.0 - c) * w / 2 * (2 * _rand(n, x, gen) - 1)  # centre of the kept square
        oy = (1.0 - c) * h / 2 * (2 * _rand(n, x, gen) - 1)
        s, tx, ty = s / c, (tx - ox) / c, (ty - oy) / c  # then p'' = (p' - o) / c
    return affine_warp(x, angle, s, tx, ty)


def affine_warp(
    x: torch.Tensor,
    angle: torch.Tensor,
    scale: torch.Tensor,
    shift_x: torch.Tensor,
    shift_y: torch.Tensor,
) -> torch.Tensor:
    """Rotate (degrees, counter-clockwise as displayed), scale about the centre, then shift.

    The forward map in pixels around the image centre is p' = scale * R(angle) p + shift
    (torchvision's RandomAffine order); outside pixels are filled with 0, resampling is bilinear.

    Parameters
    ----------
    x : Tensor of shape (n, C, H, W)
    angle, scale, shift_x, shift_y : Tensors of shape (n,)
        Per-sample parameters; shifts in pixels (x to the right, y down).

    Returns
    -------
    Tensor of shape (n, C, H, W)
    """
    _, _, h, w = x.shape
    rad = torch.deg2rad(angle.to(x))
    cos, sin, s = torch.cos(rad), torch.sin(rad), scale.to(x)
    # y points down in images: a counter-clockwise turn on screen is R(-angle) in (x, y) pixels,
    # so the forward map is [[s cos, s sin], [-s sin, s cos]] p + shift; its inverse is
    # R(angle) / s. affine_grid wants that inverse (output -> input) in [-1, 1] coordinates:
    # D A^-1 D^-1 with D = diag(2 / w, 2 / h), and the shift -D A^-1 D^-1 (D shift).
    a, b, c, d = cos / s, -sin / s * (h / w), sin / s * (w / h), cos / s
    tx, ty = 2.0 * shift_x.to(x) / w, 2.0 * shift_y.to(x) / h
    theta = torch.stack(
        [torch.stack([a, b, -(a * tx + b * ty)], -1), torch.stack([c, d, -(c * tx + d * ty)], -1)],
        1,
    )  # (n, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> HSV with hue in [0, 1)."""
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(
        maxc == r,
        (g - b) / safe,
        torch.where(maxc == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe),
    )
    hue = torch.where(delta > 0, (hue / 6.0) % 1.0, torch.zeros_like(hue))
    sat = torch.where(
        maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), 0 * maxc
    )
    return torch.stack([hue, sat, maxc], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    h, s, v = x.unbind(1)
    k = torch.stack([(5.0 + 6.0 * h) % 6.0, (3.0 + 6.0 * h) % 6.0, (1.0 + 6.0 * h) % 6.0], 1)
    return v[:, None] - v[:, None] * s[:, None] * (torch.minimum(k, 4.0 - k).clamp(0.0, 1.0))


def _hue_shift(x: torch.Tensor, amount: float, gen: torch.Generator | None) -> torch.Tensor:
    hsv = rgb_to_hsv(x)
    shift = amount * (2 * _rand(len(x), x, gen) - 1)
    hue = (hsv[:, 0] + shift.view(-1, 1, 1)) % 1.0
    return hsv_to_rgb(torch.stack([hue, hsv[:, 1], hsv[:, 2]], 1)).clamp(0, 1)
