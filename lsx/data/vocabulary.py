"""Synonym vocabularies for text search (``lsx.analysis.text_search``).

A vocabulary file is JSON: ``{"striped": "stripes", "crimson": "colour:red", ...}`` (phrase ->
class name, or ``attribute:class`` when a name occurs in several attributes). A run folder may hold
one as ``vocabulary.json``; otherwise the built-in vocabulary of its dataset is used, if any.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from lsx.errors import DatasetError

VOCABULARY_NAME = "vocabulary.json"  # in a run folder
MAX_VOCABULARY_BYTES = 1_000_000

_NUMBER_WORDS = "zero one two three four five six seven eight nine".split()
_DIGITS = {w: str(i) for i, w in enumerate(_NUMBER_WORDS)}
BUILTIN: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "digits": MappingProxyType(_DIGITS),
        "mnist5k": MappingProxyType(_DIGITS),
        "textures": MappingProxyType(
            {
                "plain": "solid",
                "uni": "solid",
                "striped": "stripes",
                "stripe": "stripes",
                "pinstripe": "stripes",
                "checked": "checks",
                "check": "checks",
                "checkered": "checks",
                "chequered": "checks",
                "gingham": "checks",
                "dotted": "dots",
                "dot": "dots",
                "polka": "dots",
                "spotted": "dots",
                "zig zag": "zigzag",
                "zigzags": "zigzag",
                "chevron": "zigzag",
                "tartan": "plaid",
                "crimson": "red",
                "scarlet": "red",
                "navy": "blue",
                "violet": "purple",
                "lilac": "purple",
                "gold": "yellow",
                "golden": "yellow",
                "cream": "white",
                "ivory": "white",
            }
        ),
        "texture-patches": MappingProxyType({"bricks": "brick", "stones": "gravel"}),
    }
)


def read_vocabulary(path: str | Path) -> dict[str, str]:
    """A synonym vocabulary from a JSON file.

    Raises
    ------
    DatasetError
        Missing, too large, invalid JSON, or not an object of strings.
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_VOCABULARY_BYTES:
            raise DatasetError(f"The vocabulary file {path} is larger than 1 MB.")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetError(f"Cannot read the vocabulary file {path}: {err}.") from err
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise DatasetError(
            f"The vocabulary file {path} must be a JSON object of phrase -> class name, e.g. "
            '{"striped": "stripes", "crimson": "colour:red"}.'
        )
    return data


def vocabulary_for(run_dir: str | Path, dataset_spec: str) -> tuple[dict[str, str], str]:
    """The synonyms a run uses and where they come from.

    Returns
    -------
    synonyms : dict
        ``<run_dir>/vocabulary.json`` when present, else the built-in one of the dataset, else {}.
    source : str
        ``"run folder"``, ``"built-in (<dataset>)"`` or ``"none"``.
    """
    path = Path(run_dir) / VOCABULARY_NAME
    if path.is_file():
        return read_vocabulary(path), f"run folder ({VOCABULARY_NAME})"
    if dataset_spec in BUILTIN:
        return dict(BUILTIN[dataset_spec]), f"built-in ({dataset_spec})"
    return {}, "none"
