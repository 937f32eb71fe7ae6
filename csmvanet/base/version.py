"""Provenance, the one source of it: the package version and the git revision of the source tree.

Every record of what produced a result uses these two: train.log and run.sh, packed models
(metadata ``csmvanet_version``, ``git_hash``) and RESULTS.md. The revision is the full HEAD hash,
followed by ``-dirty`` when tracked files differ from HEAD, or ``unknown`` outside a git checkout.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

__version__ = "0.1.0"


def git_hash() -> str:
    """Full HEAD hash of the checkout holding the csmvanet package (+ ``-dirty``); ``unknown`` without git."""
    repo = Path(__file__).resolve().parents[2]   # csmvanet/base/version.py -> the checkout
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        if out.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
