"""The package's error types (user errors: the message names the file or key and the problem)."""
from __future__ import annotations


class EnhanceError(ValueError):
    """Input that cannot be enhanced; the message names the file (or key) and the problem."""


class ModelFileError(EnhanceError):
    """A model path that cannot be used: missing files, not a model, checksum mismatch, ..."""


class TrainingError(RuntimeError):
    """Training cannot go on (bad config, diverged, ...); the message says why."""


class ConfigError(TrainingError, ValueError):
    """A config key or value that is not valid; the message names the key and lists the valid ones."""


def last_line(e: BaseException) -> str:
    """The last line of an exception's message (its type's name when it has none)."""
    s = str(e).strip()
    return s.splitlines()[-1] if s else type(e).__name__
