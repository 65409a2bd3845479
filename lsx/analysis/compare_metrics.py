"""Which numbers of two runs can be subtracted: training metrics by unit, and reconstruction in
common units on the same samples.

A run's ``metrics.jsonl`` logs its own loss terms, and their units depend on the kind: the
Gaussian-posterior kinds (``vae``, ``iwae``) log ``recon`` as -log p(x|z) in nats summed over the
pixels of an image, the others as the per-pixel MSE; ``loss`` is each kind's own objective (with
its own weights). Subtracting a VAE's 88 nats from an AE's 0.015 MSE gives a meaningless
"change -0.9998". :func:`metric_rows` says which terms share a unit and leaves B − A empty for
the others; :func:`reconstruction_rows` puts every pair in common units (per-pixel MSE and PSNR of
``decode(encode(x))`` on the samples both runs encoded).

Pure functions: dicts and arrays in, rows (lists of dicts) out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lsx.analysis.quality import MSE_FLOOR
from lsx.errors import DataShapeError
from lsx.models import MODELS

SPLITS = ("train_", "test_")
# how a logged key reads to someone who has not seen the model's code (keys stay unchanged)
NOTES = {
    "in_sphere": "share inside its own class's sphere; not an accuracy",
    "recon": "reconstruction term of the training loss",
    "loss": "the kind's training objective",
}


def term_unit(kind: str, term: str) -> str:
    """The unit a run of ``kind`` logs its loss term ``term`` in.

    Parameters
    ----------
    kind : str
        A key of :data:`lsx.models.MODELS`.
    term : str
        A ``Losses.terms`` key (``recon``, ``kl``, ...) or ``loss``.

    Returns
    -------
    str
        E.g. ``"MSE per pixel"``, ``"nats per image"``, ``"the VAE objective"``; terms only one
        kind has get ``"<label> <term>"`` (comparable only with the same kind).
    """
    spec = MODELS[kind]
    if term == "recon":
        return "nats per image (-log p(x|z))" if spec.has_posterior else "MSE per pixel"
    if term == "kl" and spec.has_posterior:
        return "nats per image (KL to the prior)"
    if term == "loss":
        return f"the {spec.label} objective"
    return f"{spec.label} {term}"


def _num(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok and math.isfinite(value) else None


def _why_not(key: str, kind_a: str, kind_b: str, same_data: bool) -> str | None:
    """None when A's and B's ``key`` can be subtracted; else why not."""
    if not key.startswith(SPLITS):
        return None  # epoch, seconds, samples_per_s: the same units for every kind
    if not same_data:
        return "no: measured on different data"
    term = key.split("_", 1)[1]
    unit_a, unit_b = term_unit(kind_a, term), term_unit(kind_b, term)
    return None if unit_a == unit_b else f"no: {unit_a} vs {unit_b}"


def metric_rows(
    metrics_a: Mapping[str, Any],
    metrics_b: Mapping[str, Any],
    kind_a: str,
    kind_b: str,
    *,
    same_data: bool = True,
) -> list[dict[str, Any]]:
    """Every final metric of two runs, with B − A only where the two share a unit.

    Parameters
    ----------
    metrics_a, metrics_b : mapping
        The last ``metrics.jsonl`` record of each run.
    kind_a, kind_b : str
        The runs' kinds.
    same_data : bool, default=True
        False when the runs were trained on different datasets: no loss term is comparable.

    Returns
    -------
    list of dict
        ``{"metric", "A", "B", "B − A", "change", "comparable", "note"}`` per key either run
        has (a side without it is None); ``B − A`` and ``change`` (relative to A) are None when
        ``comparable`` is not ``"yes"``.
    """
    keys = list(metrics_a) + [k for k in metrics_b if k not in metrics_a]
    rows = []
    for key in keys:
        va, vb = _num(metrics_a.get(key)), _num(metrics_b.get(key))
        if va is None and vb is None:
            continue
        if va is None or vb is None:
            why = f"no: only {'A' if vb is None else 'B'} logs it"
        else:
            why = _why_not(key, kind_a, kind_b, same_data)
        diff = vb - va if why is None else None
        rel = diff / abs(va) if diff is not None and va else None
        term = key.split("_", 1)[1] if key.startswith(SPLITS) else key
        rows.append(
            {"metric": key, "A": va, "B": vb, "B − A": diff, "change": rel,
             "comparable": why or "yes", "note": NOTES.get(term, "")}
        )  # fmt: skip
    return rows


def psnr_from_mse(mse: np.ndarray) -> np.ndarray:
    """PSNR in dB of images in [0, 1] from their per-pixel MSE (floored as lsx.analysis.quality
    does)."""
    return 10.0 * np.log10(1.0 / np.maximum(np.asarray(mse, dtype=np.float64), MSE_FLOOR))


def reconstruction_rows(err_a: np.ndarray, err_b: np.ndarray) -> list[dict[str, Any]]:
    """Reconstruction of the same samples by A and B, in units every kind shares.

    Parameters
    ----------
    err_a, err_b : ndarrays of shape (n_samples,)
        Per-image mean squared error of ``decode(encode(x))`` (pixels in [0, 1]), row i the same
        sample in both.

    Returns
    -------
    list of dict
        Two rows, ``"MSE per pixel"`` (mean over the images; lower is better) and ``"PSNR (dB)"``
        (mean of the per-image PSNR; higher is better): ``{"metric", "A", "B", "B − A",
        "change"}``.

    Raises
    ------
    DataShapeError
        The two arrays do not have the same length, or hold no sample.
    """
    a, b = np.asarray(err_a, dtype=np.float64), np.asarray(err_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise DataShapeError(
            f"err_a and err_b must be per-sample errors of the same samples; got shapes {a.shape} "
            f"and {b.shape}."
        )
    rows = []
    for name, va, vb in (
        ("MSE per pixel", a.mean(), b.mean()),
        ("PSNR (dB)", psnr_from_mse(a).mean(), psnr_from_mse(b).mean()),
    ):
        diff = float(vb - va)
        rel = diff / abs(va) if va else None
        rows.append({"metric": name, "A": float(va), "B": float(vb), "B − A": diff, "change": rel})
    return rows
