"""Latent-space configurations of the ``sae`` kind: where the class centres sit and how large the
class spheres are (Gabdullin 2024, arXiv 2402.08441; docs/methods.md).

The paper fixes neither the centres nor the radii (NOT FOUND in P1). lsx offers these named
designs, one per attribute sub-space of ``d`` dimensions holding ``n`` classes:

- ``onehot``: scaled one-hot axes ``scale * e_i`` (needs d >= n; pairwise distance sqrt(2) scale);
- ``simplex``: the n vertices of a regular simplex centred on the origin, norm ``scale``
  (needs d >= n - 1; the most separated design for its dimension);
- ``an_root``: a seeded random subset of the A_{d-1} root system {e_i - e_j} / sqrt(2), the
  design of the author's follow-up work (arXiv 2510.04090; needs n <= d (d - 1));
- ``random``: seeded random unit vectors picked greedily far apart (any n and d);
- ``file``: user-supplied centres (JSON or CSV, :func:`read_centers_file`);
- ``auto``: ``simplex`` when it fits the sub-space, else ``random`` (lsx default).

Radii are ``radius_fraction`` times half the minimum centre distance: per class (half the
distance to that class's nearest other centre) or shared (half the smallest distance of all).
A fraction of at most 1 never lets spheres overlap; :func:`sphere_overlaps` lists any overlap.
Everything here is numpy and deterministic for a given seed.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from lsx.errors import ConfigError

DESIGNS = ("auto", "onehot", "simplex", "an_root", "random", "file")
RADIUS_MODES = ("per_class", "shared")
MAX_CENTERS_FILE_BYTES = 5_000_000
_RANDOM_CANDIDATES = 64  # candidates per centre for the greedy far-apart pick


def design_fits(design: str, n: int, d: int) -> str | None:
    """None when ``design`` can place ``n`` centres in ``d`` dimensions, else the reason."""
    if design == "onehot" and d < n:
        return f"'onehot' needs at least as many dimensions as classes ({n}); got {d}"
    if design == "simplex" and d < n - 1:
        return f"'simplex' needs at least n_classes - 1 = {n - 1} dimensions; got {d}"
    if design == "an_root" and n > d * (d - 1):
        return f"'an_root' in {d} dimensions has only {d * (d - 1)} vectors; {n} classes asked"
    return None


def resolve_design(design: str, n: int, d: int) -> str:
    """``auto`` -> ``simplex`` when it fits, else ``random``; other names unchanged."""
    if design != "auto":
        return design
    return "simplex" if design_fits("simplex", n, d) is None else "random"


def _pad(c: np.ndarray, d: int) -> np.ndarray:
    return np.hstack([c, np.zeros((len(c), d - c.shape[1]))]) if c.shape[1] < d else c


def helmert_basis(n: int) -> np.ndarray:
    """Orthonormal basis (rows) of the sum-zero subspace of R^n, shape (n - 1, n)."""
    rows = []
    for k in range(1, n):
        row = np.zeros(n)
        row[:k], row[k] = 1.0, -float(k)
        rows.append(row / math.sqrt(k * (k + 1)))
    return np.asarray(rows).reshape(n - 1, n)


def make_centers(design: str, n: int, d: int, *, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    """Centres of ``n`` classes in ``d`` dimensions, shape (n, d), float64.

    Parameters
    ----------
    design : {"auto", "onehot", "simplex", "an_root", "random"}
    n, d : int
        Classes and dimensions of the sub-space.
    scale : float
        Distance of every centre from the origin.
    seed : int
        Seed of ``an_root`` and ``random``.

    Raises
    ------
    ConfigError
        The design does not fit (see :func:`design_fits`) or is unknown.
    """
    design = resolve_design(design, n, d)
    why = design_fits(design, n, d)
    if why is not None:
        raise ConfigError(f"Cannot place {n} centres in {d} dimensions: {why}.")
    if design == "onehot":
        c = np.eye(n)
    elif design == "simplex":
        c = (np.eye(n) - 1.0 / n) @ helmert_basis(n).T  # (n, n - 1), rows of equal norm
        c /= np.linalg.norm(c, axis=1, keepdims=True)
    elif design == "an_root":
        rng = np.random.default_rng(seed)
        pairs = [(i, j) for i in range(d) for j in range(d) if i != j]
        c = np.zeros((n, d))
        for k, p in enumerate(rng.permutation(len(pairs))[:n]):
            i, j = pairs[p]
            c[k, i], c[k, j] = 1.0, -1.0
        c /= math.sqrt(2.0)
    elif design == "random":
        c = _far_apart(n, d, seed)
    else:
        raise ConfigError(f"Unknown centre design {design!r}; known: {', '.join(DESIGNS)}.")
    return scale * _pad(c, d)


def _far_apart(n: int, d: int, seed: int) -> np.ndarray:
    """Greedy max-min pick among seeded random unit vectors (evenly spaced on a line if d = 1)."""
    if d == 1:
        return np.linspace(-1.0, 1.0, n)[:, None]
    rng = np.random.default_rng(seed)
    cand = rng.standard_normal((_RANDOM_CANDIDATES * n, d))
    cand /= np.linalg.norm(cand, axis=1, keepdims=True)
    picked = [0]
    nearest = np.linalg.norm(cand - cand[0], axis=1)  # distance of each candidate to the picks
    for _ in range(n - 1):
        k = int(nearest.argmax())
        picked.append(k)
        nearest = np.minimum(nearest, np.linalg.norm(cand - cand[k], axis=1))
    return cand[picked]


def pairwise(c: np.ndarray) -> np.ndarray:
    """Distances between centres, shape (n, n), with +inf on the diagonal."""
    dist = np.linalg.norm(c[:, None, :] - c[None, :, :], axis=-1)
    np.fill_diagonal(dist, np.inf)
    return dist


def make_radii(c: np.ndarray, fraction: float, mode: str = "per_class") -> np.ndarray:
    """Radii ``fraction * (min centre distance) / 2``, per class or shared, shape (n,)."""
    nearest = pairwise(c).min(axis=1)  # (n,)
    if mode == "shared":
        nearest = np.full(len(c), nearest.min())
    elif mode != "per_class":
        raise ConfigError(f"Unknown radius mode {mode!r}; known: {', '.join(RADIUS_MODES)}.")
    return fraction * nearest / 2.0


def sphere_overlaps(c: np.ndarray, r: np.ndarray) -> list[tuple[int, int, float]]:
    """Pairs of spheres that overlap: ``(i, j, r_i + r_j - distance)``, largest overlap first."""
    dist = pairwise(np.asarray(c, dtype=np.float64))
    out = []
    for i in range(len(c)):
        for j in range(i + 1, len(c)):
            excess = float(r[i] + r[j] - dist[i, j])
            if excess > 1e-12:
                out.append((i, j, excess))
    return sorted(out, key=lambda t: -t[2])


def read_centers_file(
    path: str | Path, n_classes: tuple[int, ...], dims: tuple[int, ...]
) -> tuple[tuple[float, ...], ...]:
    """User-supplied centres, checked against the attributes' class counts and dimensions.

    Formats:
    - JSON: a list of rows (one attribute), a list of such lists (one per attribute), or an
      object ``{"<attribute>": [rows], ...}`` in attribute order;
    - CSV: one row of numbers per class, the attributes' rows one after the other (a first
      line that is not numeric is taken as a header and skipped).

    Returns
    -------
    tuple of rows
        All attributes' rows concatenated, ``sum(n_classes)`` rows, attribute ``a``'s rows
        having ``dims[a]`` numbers each.

    Raises
    ------
    ConfigError
        Missing or unreadable file, wrong number of rows (classes) or columns (dimensions),
        non-finite values, or two identical centres.
    """
    path = Path(path).expanduser()
    try:
        if path.stat().st_size > MAX_CENTERS_FILE_BYTES:
            raise ConfigError(f"Centres file {path} is larger than 5 MB; is it the right file?")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"Cannot read the centres file {path}: {err}.") from err
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"Centres file {path} is not valid JSON: {err}.") from err
        groups = _json_groups(data, path)
    elif path.suffix.lower() == ".csv":
        rows = [r for r in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in r)]
        if rows and not _numeric(rows[0]):
            rows = rows[1:]  # header
        groups, start = [], 0
        for n in n_classes:
            groups.append(rows[start : start + n])
            start += n
        if start != len(rows):
            raise ConfigError(
                f"Centres file {path} has {len(rows)} rows but the label attributes have "
                f"{sum(n_classes)} classes in all (n_classes={list(n_classes)}); write one row "
                "per class."
            )
    else:
        raise ConfigError(f"Centres file {path} must end in .json or .csv; got {path.suffix!r}.")
    return check_centers(groups, n_classes, dims, str(path))


def _numeric(row: list[str]) -> bool:
    try:
        [float(v) for v in row]
    except ValueError:
        return False
    return True


def _json_groups(data: object, path: Path) -> list:
    if isinstance(data, dict):
        return list(data.values())
    if isinstance(data, list) and data and all(isinstance(g, list) for g in data):
        nested = all(isinstance(r, list) for g in data for r in g)
        return data if nested else [data]
    raise ConfigError(
        f"Centres file {path} must hold a list of rows, a list of such lists (one per "
        "attribute) or an object attribute -> rows."
    )


def check_centers(
    groups: list, n_classes: tuple[int, ...], dims: tuple[int, ...], source: str = "centers"
) -> tuple[tuple[float, ...], ...]:
    """Validate per-attribute centre rows; return them flattened (see :func:`read_centers_file`)."""
    if len(groups) != len(n_classes):
        raise ConfigError(
            f"{source} gives centres for {len(groups)} attribute(s) but the config has "
            f"{len(n_classes)} (n_classes={list(n_classes)})."
        )
    out: list[tuple[float, ...]] = []
    for a, (rows, n, d) in enumerate(zip(groups, n_classes, dims, strict=True)):
        if len(rows) != n:
            raise ConfigError(
                f"{source}: attribute {a} has {len(rows)} centres but {n} classes; write one "
                "centre per class, in class order."
            )
        try:
            c = np.asarray([[float(v) for v in row] for row in rows], dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{source}: attribute {a} has a non-numeric value ({err}).") from err
        if c.ndim != 2 or c.shape[1] != d:
            got = sorted({len(row) for row in rows})
            raise ConfigError(
                f"{source}: attribute {a}'s centres have {got} numbers per row but its latent "
                f"sub-space has {d} dimensions; set latent_dim / attribute_dims to match."
            )
        if not np.isfinite(c).all():
            raise ConfigError(f"{source}: attribute {a} has NaN or Inf values.")
        if pairwise(c).min() < 1e-6:
            raise ConfigError(f"{source}: attribute {a} has two identical centres.")
        out += [tuple(float(v) for v in row) for row in c]
    return tuple(out)


def resolve_centers(
    design: str,
    n_classes: tuple[int, ...],
    dims: tuple[int, ...],
    centers: tuple[tuple[float, ...], ...],
    centers_file: str,
) -> tuple[tuple[float, ...], ...]:
    """Check a config's centre settings; return the user-supplied rows (``()`` for designs).

    ``centers`` wins over ``centers_file``: the file is read once, when the config is first
    made, and its rows are kept in the config, so a checkpoint loads without the file.

    Raises
    ------
    ConfigError
        A design that does not fit an attribute's sub-space, centres given without
        ``configuration='file'``, or bad user centres.
    """
    if design != "file":
        if centers or centers_file:
            raise ConfigError(
                f"SAEConfig: centers / centers_file are given but configuration={design!r}; "
                "set configuration='file' to use them."
            )
        for a, (k, d) in enumerate(zip(n_classes, dims, strict=True)):
            why = design_fits(resolve_design(design, k, d), k, d)
            if why is not None:
                raise ConfigError(
                    f"SAEConfig: attribute {a} ({k} classes in {d} latent dims): {why}. "
                    "Raise latent_dim / attribute_dims or use configuration='random'."
                )
        return ()
    if centers:  # given inline, or read from the file when the config was first made
        groups, start = [], 0
        for k in n_classes:
            groups.append(list(centers[start : start + k]))
            start += k
        if start != len(centers):
            raise ConfigError(
                f"SAEConfig: centers has {len(centers)} rows but n_classes={list(n_classes)} "
                f"needs {start}."
            )
        return check_centers(groups, n_classes, dims)
    if centers_file:
        return read_centers_file(centers_file, n_classes, dims)
    raise ConfigError("SAEConfig: configuration='file' needs centers_file (a JSON or CSV path).")
