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

:class:`RowStore` keeps what accumulates over a whole file (the VAD probabilities) outside the malloc
heap. Kept as one small array per read block, those arrays landed in the holes the network's large
temporary tensors left in the heap, pinned them, and the next segment's tensors needed new memory
above them: peak RSS rose with the file length (bundled model, 2 s segments, one small array kept
per segment: +60 MB over 800 segments, about 23 min of audio; flat without the kept arrays).
:class:`HeapGuard` bounds what fragmentation by other buffers that outlive a segment can still add.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import resource

import numpy as np

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


class HeapGuard:
    """Bounds what heap fragmentation adds to RSS over a long run (glibc, Linux; elsewhere a no-op).

    With freed memory kept (:func:`retain_freed_memory`), every buffer that outlives a segment (a
    read block, an output block on its way to the file) can split the holes the segment's large
    tensors left, and a later segment then needs fresh memory above them: RSS rose in steps of
    20-40 MB every few hundred segments. :meth:`check` (after each segment) takes the RSS after the
    first ``settle`` calls as the baseline and, whenever RSS exceeds it by more than ``margin`` (a
    share), returns the free heap memory to the kernel (``malloc_trim``): the next segment faults its
    pages in once more, and RSS is back at the working set."""

    def __init__(self, settle: int = 3, margin: float = 0.05):
        self.settle, self.margin, self.calls, self.base, self.trims = settle, margin, 0, None, 0
        self._trim = None
        if retain_freed_memory():
            try:
                self._trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
                self._statm = open("/proc/self/statm", "rb", buffering=0)
            except (OSError, AttributeError):
                self._trim = None

    def rss(self) -> int:
        """Resident pages now."""
        self._statm.seek(0)
        return int(self._statm.read().split()[1])

    def check(self) -> None:
        if self._trim is None:
            return
        self.calls += 1
        if self.calls < self.settle:
            return
        now = self.rss()
        if self.base is None:
            self.base = now
        elif now > self.base * (1.0 + self.margin):
            self._trim(0)
            self.trims += 1


class RowStore:
    """Rows ``[n, C]`` appended over a whole file, held in one anonymous memory map (not in the
    malloc heap, so it pins no freed memory there) whose capacity doubles when full: a handful of
    maps for any length, and no allocation per append."""

    def __init__(self, channels: int, dtype=np.float32, rows: int = 4096):
        self.channels, self.dtype, self.rows = int(channels), np.dtype(dtype), 0
        self._buf = self._new(max(int(rows), 1))

    def _new(self, rows: int) -> np.ndarray:
        size = max(rows * self.channels * self.dtype.itemsize, 1)
        return np.frombuffer(mmap.mmap(-1, size), self.dtype, rows * self.channels).reshape(rows, self.channels)

    def append(self, x: np.ndarray) -> None:
        x = np.asarray(x, self.dtype).reshape(-1, self.channels)
        need = self.rows + len(x)
        if need > len(self._buf):
            grown = self._new(max(need, 2 * len(self._buf)))
            grown[:self.rows] = self._buf[:self.rows]
            self._buf = grown          # the old map is unmapped when its last view goes
        self._buf[self.rows:need] = x
        self.rows = need

    def __len__(self) -> int:
        return self.rows

    def array(self) -> np.ndarray:
        """A copy of the rows as an ordinary array (``[0, C]`` when none were appended)."""
        return np.array(self._buf[:self.rows])


__all__ = ["HeapGuard", "RowStore", "cpu_usage", "retain_freed_memory"]
