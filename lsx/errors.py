"""Errors that lsx raises on bad input. Each message says what was wrong, what was received and
what to do. Anything else that escapes lsx is a bug."""

from __future__ import annotations


class LsxError(Exception):
    """Base class of every error lsx raises on purpose."""


class ConfigError(LsxError, ValueError):
    """A config field, model kind, dataset name or option is invalid."""


class DataShapeError(LsxError, ValueError):
    """An array or tensor has the wrong shape, dtype or non-finite values."""


class DatasetError(LsxError, ValueError):
    """A dataset cannot be loaded: empty folder, one class, no readable image, ..."""


class CheckpointError(LsxError):
    """A checkpoint folder is missing files, corrupt, of another version or of other shapes."""


class TrainingError(LsxError):
    """Training stopped for a reason the user can act on (non-finite loss, busy run dir, ...)."""
