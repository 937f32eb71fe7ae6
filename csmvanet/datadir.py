"""Kaldi-style data directories: reading and writing key-value lists (scp, utt2spk, ...)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from csmvanet.fileio import atomic_write_text


class DataDirError(ValueError):
    """A malformed data-dir file; the message names the file, the line or key, and the problem."""


def read_scp(path: str | Path, *, allow_empty_value: bool = False) -> dict[str, str]:
    """Read ``key value...`` lines into an insertion-ordered dict. Duplicate keys are an error."""
    path = Path(path)
    if not path.is_file():
        raise DataDirError(f"{path}: no such file")
    out: dict[str, str] = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            key = parts[0]
            value = parts[1].strip() if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                raise DataDirError(f"{path}:{n}: key {key!r} has no value")
            if key in out:
                raise DataDirError(f"{path}:{n}: duplicate key {key!r}")
            out[key] = value
    return out


def write_scp(path: str | Path, items: Mapping[str, object] | Iterable[tuple[str, object]], *,
              sort: bool = True) -> None:
    """Write ``key value`` lines atomically, sorted by key (C locale order) unless told otherwise."""
    pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
    if sort:
        pairs.sort(key=lambda kv: kv[0].encode())
    for k, _ in pairs:
        if not k or any(c.isspace() for c in k):
            raise DataDirError(f"{path}: invalid key {k!r} (empty or with white space)")
    atomic_write_text(path, "".join(f"{k} {v}\n" for k, v in pairs))
