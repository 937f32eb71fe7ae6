"""Kaldi scp pipe entries (``cmd |``): run the command, collect its standard output, never hang.

The command runs through ``/bin/sh`` in a session and process group of its own, with no standard
input. When it writes nothing (to stdout or stderr) for :func:`pipe_timeout` seconds, or whatever
reads it stops early (an error, SIGTERM, SIGINT), the whole group -- the shell and every process
it started -- is killed with SIGKILL before the shell is reaped, so nothing of it keeps running.
Where SIGTERM still has its default action (a tool that does not catch it), it ends the process
through :class:`SystemExit` (status 143) while a command runs, so that the group goes too. (A reader
killed with SIGKILL cannot do this; its commands run on until they end or write to the closed pipe.)

The limit: environment variable ``CSMVANET_PIPE_TIMEOUT`` in seconds, default 300; 0 waits
forever. It bounds silence, not the total time: a command streaming a long file for an hour is fine.
"""
from __future__ import annotations

import contextlib
import math
import os
import selectors
import signal
import subprocess
import threading

__all__ = ["PIPE_TIMEOUT_ENV", "DEFAULT_PIPE_TIMEOUT", "PipeError", "pipe_timeout", "run_pipe"]

PIPE_TIMEOUT_ENV = "CSMVANET_PIPE_TIMEOUT"
DEFAULT_PIPE_TIMEOUT = 300.0
_STDERR_KEPT = 8192   # bytes of the command's stderr kept for the message


class PipeError(ValueError):
    """The command failed, timed out, or its timeout setting is wrong; the message says which."""


def pipe_timeout() -> float:
    """Seconds a pipe command may stay silent (``$CSMVANET_PIPE_TIMEOUT``, default 300); inf for none."""
    raw = os.environ.get(PIPE_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_PIPE_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if math.isnan(value) or value < 0:
        raise PipeError(f"{PIPE_TIMEOUT_ENV}={raw!r}: expected seconds >= 0 (0 = no limit)")
    return value if value > 0 else math.inf


def run_pipe(cmd: str, timeout: float | None = None) -> bytes:
    """Standard output of the shell command ``cmd``; :class:`PipeError` (one line: the last line of
    its stderr, its status or signal, or the timeout) when it fails or stays silent ``timeout``
    seconds (default :func:`pipe_timeout`)."""
    limit = pipe_timeout() if timeout is None else (float(timeout) or math.inf)
    wait_s = None if math.isinf(limit) else limit
    proc = subprocess.Popen(cmd, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    out, err = bytearray(), bytearray()
    ended = False
    try:
        with _sigterm_unwinds():
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                sel.register(proc.stderr, selectors.EVENT_READ)
                while sel.get_map():
                    ready = sel.select(wait_s)
                    if not ready:
                        raise PipeError(_silent(limit))
                    for key, _ in ready:
                        chunk = os.read(key.fd, 1 << 16)
                        if not chunk:
                            sel.unregister(key.fileobj)
                        elif key.fileobj is proc.stdout:
                            out += chunk
                        else:
                            err = (err + chunk)[-_STDERR_KEPT:]
            try:
                proc.wait(wait_s)   # both streams closed: the shell is about to exit
            except subprocess.TimeoutExpired:
                raise PipeError(_silent(limit)) from None
            ended = True
    finally:
        if not ended:   # timeout, error, SIGTERM/SIGINT: the group goes before the shell is reaped
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.stdout.close()
        proc.stderr.close()
        if not ended:
            proc.wait()
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        if proc.returncode < 0:
            what = f"command was killed by {_signal_name(-proc.returncode)}"
        else:
            what = f"command failed with status {proc.returncode}"
        raise PipeError(what + (f" ({lines[-1].strip()})" if lines else ""))
    return bytes(out)


@contextlib.contextmanager
def _sigterm_unwinds():
    """SIGTERM raises SystemExit(143) within the block where it would otherwise end the process at
    once (its default action, main thread), so that ``finally`` blocks run."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def _silent(limit: float) -> str:
    return (f"no output for {limit:g} s: stopped it and its child processes (to wait longer set "
            f"{PIPE_TIMEOUT_ENV}=seconds, default {DEFAULT_PIPE_TIMEOUT:g}; 0 = no limit)")


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
