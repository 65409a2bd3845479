"""lsx: the latent-space explorer for autoencoders.

Train or load an autoencoder, then explore and measure its latent space. The library stands on
its own (no Streamlit here); the app in ``app.py`` and ``pages/`` is a thin layer over it.

    >>> from lsx.data import load_dataset
    >>> from lsx.checkpoint import load_checkpoint
"""

from __future__ import annotations

__version__ = "0.1.0"

from lsx.errors import (  # noqa: E402
    CheckpointError,
    ConfigError,
    DatasetError,
    DataShapeError,
    LsxError,
    TrainingError,
)

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataShapeError",
    "DatasetError",
    "LsxError",
    "TrainingError",
    "__version__",
]
