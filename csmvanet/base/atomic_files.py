"""Atomic file writing: write to a temporary name in the same folder, then rename.

Temporary files carry their owner: ``.<stem>.<random>.<pid>@<host>.tmp<suffix>`` (``out.wav`` is
written as ``.out.k2j4h5l6.4711@node03.tmp.wav``). A process removes its own on the way out
(errors, SIGTERM, SIGINT); only SIGKILL leaves one behind. The clean-ups below remove a temporary
file only when its owner is gone: the host is this one and no process ``pid`` runs, or the one
that does started after the file was last written (the pid was reused). Files of other hosts (a
shared file system) and of living processes are left alone, so any number of runs may write into
one folder at once. Temporary files without an owner (written by versions before the rule) are
removed as before.
"""
from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
from pathlib import Path


TEMP_MARK = ".tmp"
_RANDOM_LEN = 8  # characters tempfile.mkstemp puts between prefix and suffix
# .<stem>.<random>[.<pid>@<host>].tmp<suffix>; names without the owner part come from older versions
_TEMP_NAME = re.compile(r"\.(?P<stem>.*)\.[a-z0-9_]{%d}(?:\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9_-]+))?%s(?P<suffix>.*)"
                        % (_RANDOM_LEN, re.escape(TEMP_MARK)), re.DOTALL)
_REUSE_MARGIN = 60.0  # s: a pid counts as reused only when its process started this long after the write


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname() or "localhost")[:24] or "localhost"


def owner_tag() -> str:
    """'<pid>@<host>' of this process, as temporary file names carry it."""
    return f"{os.getpid()}@{_host()}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success rename it to ``path``, else remove it.

    The temporary name keeps the suffix, so libraries that infer a format from it still work, and
    names its owner (see the module's doc), so that clean-ups leave it alone while the owner lives.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".{owner_tag()}{TEMP_MARK}{path.suffix}",
                               dir=path.parent)
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
    """Remove the temporary files :func:`atomic_path` made for ``path`` itself whose owner is gone
    (killed with SIGKILL). Temporary files of running processes stay. Returns how many were removed."""
    path = Path(path)
    return _remove_orphans(path.parent, lambda m: m["stem"] == path.stem and m["suffix"] == path.suffix)


def remove_stale_temps(folder: str | os.PathLike, suffix: str = "") -> int:
    """Remove the temporary files :func:`atomic_path` left in ``folder`` (not recursive) whose owner
    is gone (killed with SIGKILL); ``suffix`` (e.g. '.pth') narrows it to those files. Safe while
    other processes write into ``folder``. Returns how many were removed."""
    return _remove_orphans(Path(folder), lambda m: not suffix or m["suffix"] == suffix)


def owner_gone(name: str, mtime: float) -> bool:
    """Whether the owner of the temporary file ``name`` (last written at ``mtime``) is gone: no owner
    tag (an older version's file), or this host and no such process, or one that started after
    ``mtime`` (a reused pid). Another host's files: False (their processes cannot be seen)."""
    m = _TEMP_NAME.fullmatch(name)
    if m is None or m["pid"] is None:
        return m is not None
    if m["host"] != _host():
        return False
    pid = int(m["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        pass  # another user's process; it exists
    started = _process_start(pid)
    return started is not None and started > mtime + _REUSE_MARGIN


def _process_start(pid: int) -> float | None:
    """Start time (epoch seconds) of process ``pid`` (Linux /proc), inf when it has exited but is
    not reaped yet (a zombie), None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        if stat[0] == "Z":
            return float("inf")
        with open("/proc/stat") as f:
            btime = next(float(line.split()[1]) for line in f if line.startswith("btime "))
        return btime + int(stat[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _remove_orphans(folder: Path, match) -> int:
    n = 0
    if not folder.is_dir():
        return 0
    with os.scandir(folder) as it:
        for entry in it:
            m = _TEMP_NAME.fullmatch(entry.name)
            if m is None or not match(m):
                continue
            try:
                if entry.is_file(follow_symlinks=False) and owner_gone(entry.name, entry.stat().st_mtime):
                    os.unlink(entry.path)
                    n += 1
            except FileNotFoundError:
                pass  # its owner renamed or removed it meanwhile
    return n
