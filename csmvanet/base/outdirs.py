"""Output folders checked before a tool does its work: made when missing, and a file can be made in them.

A folder that cannot be written (permission denied, a read-only file system) is found at the start,
named in one line, instead of failing every output file in turn and naming a temporary file.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

PROBE_PREFIX = ".csmvanet-write-check."   # the file tried, removed at once


def _reason(e: OSError) -> str:
    return (e.strerror or type(e).__name__).lower()


def unwritable(folder: str | os.PathLike) -> str | None:
    """Why no file can be made in the existing ``folder`` ("permission denied", ...), or None when one
    can. Tried with a file that is removed at once: file modes alone do not tell (root, ACLs, mounts)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=folder)
    except OSError as e:
        return _reason(e)
    os.close(fd)
    os.unlink(probe)
    return None


def output_dir_problem(folder: str | os.PathLike) -> str | None:
    """Make ``folder`` (and its parents) when missing; the problem ("is a file, not a folder", "cannot
    make the folder (...)", "cannot write into the folder (...)") or None when files can be written there."""
    d = Path(folder)
    if d.exists() and not d.is_dir():
        return "is a file, not a folder"
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"cannot make the folder ({_reason(e)})"
    why = unwritable(d)
    return f"cannot write into the folder ({why})" if why else None
