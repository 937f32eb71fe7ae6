"""Run a command for which file modes count, also as root (tests of unreadable and unwritable paths).

Root passes every file-mode check through two capabilities, CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH, so ``chmod 000`` alone proves nothing in CI (which runs as root). A launcher
drops both from its capability bounding set before it executes the command (``prctl(PR_CAPBSET_DROP)``):
the program then has neither, and the kernel checks the modes against its user, root, the owner of
the test's files (the owner's bits of the mode apply). Other users: file modes count already; nothing
is dropped. :func:`modes_apply` says whether this works here (no CAP_SETPCAP: it does not).
"""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# A fresh, single-threaded interpreter drops the capabilities and executes the command (no
# preexec_fn: forking a process that runs threads, torch's for one, and calling into libc there can hang).
_LAUNCHER = """
import ctypes, os, sys
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2
libc = ctypes.CDLL(None, use_errno=True)
for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
    if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
        sys.exit("unprivileged: cannot drop capability %d: %s" % (cap, os.strerror(ctypes.get_errno())))
os.execv(sys.argv[1], sys.argv[1:])
"""


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, **kw)`` with file modes in force for the command (see the module doc);
    ``cmd[0]`` is a path (no search of PATH)."""
    cmd = [str(c) for c in cmd]
    if os.geteuid() == 0:
        cmd = [sys.executable, "-c", _LAUNCHER, *cmd]
    return subprocess.run(cmd, **kw)


@functools.lru_cache(maxsize=None)
def modes_apply() -> bool:
    """Whether :func:`run` gives a command that cannot open a file of mode 000 (tried once)."""
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "closed"
        f.write_text("x")
        f.chmod(0)
        r = run([sys.executable, "-c", f"open({str(f)!r}).read()"], capture_output=True, timeout=60)
        return r.returncode != 0 and "PermissionError" in r.stderr.decode()
