"""Atomic file writing: write to a temporary name in the same folder, then rename."""
from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from pathlib import Path


TEMP_MARK = ".tmp"
_RANDOM_LEN = 8  # characters tempfile.mkstemp puts between prefix and suffix


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success rename it to ``path``, else remove it.

    The temporary name keeps the suffix, so libraries that infer a format from it still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{TEMP_MARK}{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the mode a plain open() would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, errors="surrogateescape")  # bytes read with surrogateescape go back as they were


def remove_temps_of(path: str | os.PathLike) -> int:
    """Remove the temporary files :func:`atomic_path` made for ``path`` itself and left behind when
    its process was killed (SIGKILL). Safe while other processes write other files into the same
    folder (parallel jobs); call it before writing ``path``. Returns how many were removed."""
    path = Path(path)
    pattern = glob.escape(f".{path.stem}.") + "?" * _RANDOM_LEN + glob.escape(f"{TEMP_MARK}{path.suffix}")
    n = 0
    if path.parent.is_dir():
        for p in path.parent.glob(pattern):
            if p.is_file():
                p.unlink(missing_ok=True)
                n += 1
    return n


def remove_stale_temps(folder: str | os.PathLike, suffix: str = "") -> int:
    """Remove temporary files that :func:`atomic_path` left in ``folder`` (not recursive) when its
    process was killed (SIGKILL leaves no chance to clean up). Call it only while no other process
    writes into ``folder``; ``suffix`` (e.g. '.pth') narrows it to those files. Returns how many
    were removed."""
    n = 0
    folder = Path(folder)
    if folder.is_dir():
        for p in folder.glob(f".*{TEMP_MARK}{suffix}" if suffix else f".*{TEMP_MARK}*"):
            if p.is_file():
                p.unlink(missing_ok=True)
                n += 1
    return n
