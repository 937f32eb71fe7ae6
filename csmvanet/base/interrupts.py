"""SIGTERM and SIGINT in batch tools: stop cleanly, say what was finished, exit non-zero.

run.pl, Slurm and the kill command send SIGTERM; Ctrl-C sends SIGINT. Inside :func:`stop_on_signals`
both raise :class:`Interrupted` in the main thread, so every ``finally`` and ``except BaseException``
on the way out runs: :func:`csmvanet.base.atomic_files.atomic_path` removes its temporary file, the process pool
terminates its workers. The entry point catches it, prints one line (:func:`interrupted_line`)
and returns :attr:`Interrupted.status` (128 + the signal number, as a shell reports it).
SIGKILL cannot be caught: its temporary files start with '.', name their owner's pid and host,
and are removed by the next run once that process is gone (:func:`csmvanet.base.atomic_files.remove_stale_temps`).

An exception must not be raised inside a callback that C code calls: soundfile's in-memory reads
and writes run Python callbacks from libsndfile, and cffi prints an exception raised there and drops
it (the signal would be lost and the encoded bytes left incomplete). :func:`signals_deferred`
holds SIGTERM and SIGINT back for the length of such a call and delivers them when it returns.
"""
from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["Interrupted", "stop_on_signals", "signals_deferred", "say_when_interrupted", "interrupted_line"]


class Interrupted(BaseException):
    """SIGTERM or SIGINT arrived; ``finished`` may say what was complete by then."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.finished: str | None = None

    @property
    def status(self) -> int:
        return 128 + self.signum


def _raise(signum, frame):
    raise Interrupted(signum)


@contextlib.contextmanager
def stop_on_signals():
    """Within the block, SIGTERM and SIGINT raise :class:`Interrupted` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _raise) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def signals_deferred():
    """Within the block, SIGTERM and SIGINT are recorded; on leaving it, the handlers that were in
    place get them (in arrival order), so whatever they raise is raised here, outside any callback.
    Handlers that are not Python functions (default, ignore) are left as they are."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers run in the main thread only: nothing to hold back here
        return
    arrived: list[int] = []
    old = {}
    for s in (signal.SIGTERM, signal.SIGINT):
        handler = signal.getsignal(s)
        if callable(handler):
            old[s] = handler
            signal.signal(s, lambda signum, frame: arrived.append(signum))
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        for signum in arrived:
            old[signum](signum, None)


@contextlib.contextmanager
def say_when_interrupted(finished):
    """Within the block, an :class:`Interrupted` on its way out gets ``finished()`` (a line saying
    what was complete) unless an inner block already set one."""
    try:
        yield
    except Interrupted as e:
        if e.finished is None:
            e.finished = finished()
        raise


def interrupted_line(prog: str, e: Interrupted, finished: str | None = None) -> str:
    """'<prog>: stopped by SIGTERM: <what was finished>; no temporary files left'."""
    done = finished or e.finished or "nothing was finished"
    return f"{prog}: stopped by {e.name}: {done}; no temporary files left, nothing half-written"
