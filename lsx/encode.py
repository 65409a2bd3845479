"""Encoding a dataset with a run: which data and size (the run's own by default), opened as a
source that is read batch by batch. ``python -m lsx encode`` (:mod:`lsx.commands.encode`)
streams it into a latent store with :func:`lsx.latents.writer.encode_to_store`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsx.data import FOLDER_PREFIX, is_lazy, open_data
from lsx.data.lazy import DatasetSource, ImageSource
from lsx.errors import ConfigError


def encode_target(
    header: dict[str, Any], run_dir: Path, data: str | None = None, image_size: int | None = None
) -> tuple[str, int | None]:
    """The data spec and image size to encode a run with.

    Parameters
    ----------
    header : dict
        The run's ``config.json`` (:func:`lsx.checkpoint.read_header`).
    run_dir : Path
        The run folder (named in the error).
    data : str or None
        A spec to encode instead of the run's own dataset.
    image_size : int or None
        A size to resize to; default: the run's own size for its own data, the model's input
        size for a ``folder:``, else the data's native size.

    Raises
    ------
    ConfigError
        No ``data`` given and the run does not record its dataset.
    """
    recorded = header.get("data", {})
    spec = data or recorded.get("spec")
    if not spec:
        raise ConfigError(f"{run_dir} does not record its dataset; pass --data SPEC.")
    if image_size is None and data is None:
        image_size = recorded.get("image_size")  # the run's own data at the run's own size
    if image_size is None and spec.startswith(FOLDER_PREFIX):
        image_size = int(header.get("config", {}).get("input_shape", [0, 32])[1])
    return spec, image_size


def open_encode_source(spec: str, image_size: int | None = None) -> ImageSource:
    """``spec`` as a source read batch by batch: ``npy:`` and ``folder:`` lazily (never loaded
    whole, whatever their size), a built-in dataset from memory (:class:`DatasetSource`)."""
    data = open_data(spec, image_size, lazy=True)
    return data if is_lazy(data) else DatasetSource(data)
