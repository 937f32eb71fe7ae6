"""Process memory: keep freed memory for reuse instead of returning it to the kernel (glibc).

Chunked enhancement allocates the same large tensors for every segment (the paper config's attention
maps over an 8 s segment are over 100 MB each). glibc serves every allocation above its mmap
threshold (at most 32 MiB) with a fresh ``mmap`` and returns it with ``munmap`` when freed, so each
segment faults all of that memory in again page by page: on a 1-hour file most of the CPU time went
to the kernel and RSS swung by 2 GB per segment. :func:`retain_freed_memory` makes glibc take every
allocation from its heap and keep freed memory there (``mallopt(M_MMAP_MAX, 0)`` and a trim
threshold of 2 GiB - 1), so the next segment reuses the same pages: RSS stays at its peak of one
segment instead of swinging, and page faults happen once. The setting is process-wide and only
affects later allocations; the enhancement CLI turns it on, the Python API on request
(``Enhancer(..., retain_memory=True)``). Elsewhere than glibc (macOS, musl) it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import resource

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
_done: bool | None = None


def retain_freed_memory() -> bool:
    """Keep freed memory in the process for reuse (glibc); True if the setting is in effect."""
    global _done
    if _done is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            _done = False
        else:
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            _done = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1))
    return _done


def cpu_usage(who: int = resource.RUSAGE_SELF) -> dict:
    """User and system CPU seconds, minor/major page faults and peak RSS (MiB) of this process (or its
    finished children: ``resource.RUSAGE_CHILDREN``), as /usr/bin/time -v reports them."""
    r = resource.getrusage(who)
    return {"user_s": r.ru_utime, "sys_s": r.ru_stime, "minor_faults": r.ru_minflt, "major_faults": r.ru_majflt,
            "peak_rss_mib": r.ru_maxrss / 1024}


__all__ = ["cpu_usage", "retain_freed_memory"]
