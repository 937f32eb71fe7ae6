"""A process pool for batch jobs that notices a worker's death.

``multiprocessing.Pool`` replaces a worker killed by a signal (the out-of-memory killer's SIGKILL)
but loses the task it was running, and the parent waits for that result forever. :func:`run_jobs`
gives every worker its own pipe, knows which job each one holds, and watches the processes: when
one dies, the batch stops at once with :class:`WorkerDied` naming the job and the signal.

Workers ignore SIGINT (Ctrl-C reaches the whole process group; the parent decides) and are
terminated whenever the parent leaves the loop early (an error, a signal, the generator closed).
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
from multiprocessing.connection import wait
from typing import Any, Callable, Iterable, Iterator

__all__ = ["WorkerDied", "run_jobs", "fork_context"]


class WorkerDied(ChildProcessError):
    """A worker process ended while it held a job (killed by a signal, or exited)."""


def fork_context():
    """``fork`` where the platform has it (workers share the parent's imports), else the default."""
    return mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()


def _worker(func, initializer, conn) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)   # unwinds: the job's temporary files are removed
    if initializer is not None:
        initializer()
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        start, chunk = msg
        for i, job in enumerate(chunk):
            try:
                out = (start + i, True, func(job))
            except Exception as e:  # noqa: BLE001 - handed to the parent, which raises it
                out = (start + i, False, e)
            try:
                conn.send(out)
            except Exception as e:  # noqa: BLE001 - an unpicklable result or exception
                conn.send((start + i, False, RuntimeError(f"{type(e).__name__}: {e}")))


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (as the out-of-memory killer does)" if -exitcode == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {exitcode}"


def run_jobs(func: Callable[[Any], Any], jobs: Iterable[Any], nj: int, *, ordered: bool = True,
             chunksize: int = 1, describe: Callable[[Any], str] = repr, initializer: Callable | None = None,
             context=None, env: dict[str, str] | None = None) -> Iterator[Any]:
    """Yield ``func(job)`` for every job, computed in ``nj`` worker processes.

    ``ordered``: in the order of ``jobs`` (else as they finish). ``chunksize`` jobs are sent to a
    worker at a time. An exception raised by ``func`` is raised here. When a worker dies,
    :class:`WorkerDied` is raised naming ``describe(job)`` of the job it held. ``env``: variables
    set while the workers start (e.g. one BLAS thread each). ``nj <= 1`` runs in this process.
    """
    jobs = list(jobs)
    if nj <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield func(job)
        return
    ctx = context or fork_context()
    nj = min(int(nj), len(jobs))
    chunksize = max(1, int(chunksize))
    chunks = [(i, jobs[i:i + chunksize]) for i in range(0, len(jobs), chunksize)]
    chunks.reverse()  # pop() from the end hands them out in order
    workers = []  # [process, parent end of the pipe, (start, chunk) held or None, results received]
    saved = {k: os.environ.get(k) for k in (env or {})}
    try:
        os.environ.update(env or {})
        for _ in range(nj):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(func, initializer, child), daemon=True)
            proc.start()
            child.close()
            workers.append([proc, parent, None, 0])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    pending: dict[int, Any] = {}
    next_out = 0
    done = False
    try:
        def hand_out(w):
            if chunks:
                w[2], w[3] = chunks.pop(), 0
                w[1].send(w[2])
            else:
                w[2] = None

        def drain(w) -> list:
            """Results the worker has sent; hands it the next chunk when it finished its own."""
            out = []
            while w[2] is not None and w[1].poll():
                try:
                    index, ok, value = w[1].recv()
                except (EOFError, OSError):
                    break
                if not ok:
                    raise value
                out.append((index, value))
                w[3] += 1
                if w[3] == len(w[2][1]):
                    hand_out(w)
            return out

        for w in workers:
            hand_out(w)
        while any(w[2] is not None for w in workers):
            busy = [w for w in workers if w[2] is not None]
            wait([w[1] for w in busy] + [w[0].sentinel for w in busy])
            for w in busy:
                results = drain(w)
                if w[2] is not None and not w[0].is_alive():
                    results += drain(w)  # what it sent just before it died
                    if w[2] is not None:
                        w[0].join()
                        job = w[2][1][w[3]]
                        raise WorkerDied(f"worker process {w[0].pid} {_how_it_ended(w[0].exitcode)} while "
                                         f"working on {describe(job)}; the batch stopped")
                for index, value in results:
                    if ordered:
                        pending[index] = value
                    else:
                        yield value
            if ordered:
                while next_out in pending:
                    yield pending.pop(next_out)
                    next_out += 1
        done = True
    finally:
        for proc, conn, _, _ in workers:
            if done:
                with contextlib.suppress(OSError):
                    conn.send(None)
            else:
                proc.terminate()
        for proc, conn, _, _ in workers:
            proc.join(timeout=5 if done else 2)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()
