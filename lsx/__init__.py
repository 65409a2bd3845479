"""lsx: the latent-space explorer for autoencoders.

Train or load an autoencoder, then explore and measure its latent space. The library stands on
its own (no Streamlit here); the app in ``app.py`` and ``pages/`` is a thin layer over it.

    >>> import lsx
    >>> model = lsx.wrap(my_vae.encode, my_vae.decode, (1, 28, 28))  # a model trained elsewhere
    >>> lsx.export_run(model, "checkpoints/my-vae", "ownvae", data="mnist5k")  # a plugin kind's run

(docs/own-model.md walks through it.)

``wrap`` and ``export_run`` (:mod:`lsx.wrapping`) load torch and the model registry, so they are
imported on first use: ``import lsx`` (and so every ``lsx.*`` import) stays light.
"""

from __future__ import annotations

from typing import Any

from lsx.errors import (
    CheckpointError,
    ConfigError,
    DatasetError,
    DataShapeError,
    LsxError,
    TrainingError,
)
from lsx.version import __version__

_LAZY = ("wrap", "export_run", "WrappedModel")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from lsx import wrapping  # lazy: see the module docstring

        return getattr(wrapping, name)
    raise AttributeError(f"module 'lsx' has no attribute {name!r}")


__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataShapeError",
    "DatasetError",
    "LsxError",
    "TrainingError",
    "WrappedModel",
    "__version__",
    "export_run",
    "wrap",
]
